package inbox

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// BatchHandler is a Handler that can commit several mails in one go (one
// transaction for many: group commit). A loop whose handler has it fetches
// with the pipeline below.
type BatchHandler interface {
	Handler
	// HandleBatch commits ds in order, each mail all or nothing, and
	// returns the dispositions of the leading mails that are committed.
	// When that is fewer than len(ds), err says why the next one was not
	// (a temporary failure, as for Handle); that mail and the ones after
	// it are handed over again later. Its context is not cancelled by a
	// shutdown, as for Handle.
	HandleBatch(ctx context.Context, ds []Delivery) ([]Disposition, error)
}

// Preparer is an optional part of a BatchHandler: Prepare does the work on
// a message that needs no transaction (parsing, classifying) as soon as it
// is read, on as many goroutines as there are CPUs, while earlier mail is
// being committed; HandleBatch gets the result in Delivery.Prepared. It
// must be safe for concurrent use. A panic in it leaves Prepared nil.
type Preparer interface {
	Prepare(d Delivery) any
}

const (
	// readAhead bounds the bytes read from the server and not yet handed
	// to the handler (plus the one message being read, whatever its size).
	// With maxGroupBytes it sets the daemon's working set: each byte in a
	// group is held about three times at its commit (the mail, bbolt's
	// page copy, the records). A group's bytes are given back once it is
	// committed, so during a backlog the reader and the committing group
	// share it, and a group is about half of it (0.95 MB on average over
	// the bench's 5,000 mails). 4 MiB made the groups twice as large and
	// ingest about 9 % faster, for 18 MB more peak RSS on a backlog than
	// 2 MiB, which would break the 64 MB target (BENCHMARKS.md).
	readAhead = 2 << 20
	// maxGroupMails and maxGroupBytes bound one HandleBatch: the handler
	// gets what has been read while it committed the previous group, so
	// the group grows with the backlog and stays at one mail when mail
	// trickles in.
	maxGroupMails = 256
	maxGroupBytes = 2 << 20
	// bigMessage: once a message this large has been handled, its buffer
	// is handed back to the operating system at once, so that two big
	// mails in a row never cost twice their size in memory.
	bigMessage = 8 << 20
)

// fetchPipelined is round's fast path for a BatchHandler. It fetches uids
// (ascending) with UID FETCH commands of FetchBatch UIDs each; a reader
// goroutine reads the messages while the handler commits the ones read
// before, in groups; handled mail is flagged with STOREs sent while the
// fetching goes on, and moved (MoveTo) once it is over. It stops at the
// first UID the server skips or returns out of order (round resolves that
// the careful way), at the first handler error, and when ctx is cancelled.
// n is the number of leading UIDs handled; they are flagged (and their
// pending flags cleared) before it returns, unless err says otherwise.
func (m *Mailbox) fetchPipelined(ctx context.Context, s *session, bh BatchHandler, uids []imap.UID) (n int, err error) {
	prep, _ := bh.(Preparer)
	r := m.startReader(s, uids, prep)
	var (
		handled, quarantined []imap.UID
		stores               []*imapclient.FetchCommand
		stopErr              error
	)
	for ctx.Err() == nil && stopErr == nil {
		group, ok := r.group()
		if !ok {
			break
		}
		ds := make([]Delivery, len(group))
		size, big := 0, false
		for i, f := range group {
			ds[i] = f.delivery(m, s)
			size += f.inMemory()
			big = big || f.inMemory() >= bigMessage
		}
		start := time.Now()
		disps, herr := m.handleBatch(ctx, bh, ds)
		for _, f := range group {
			m.discard(f)
		}
		m.log.Debug("group handled", "mails", len(ds), "bytes", size, "took", time.Since(start))
		var done, quar []imap.UID
		for i, d := range disps[:min(len(disps), len(group))] {
			uid := group[i].uid
			m.handled.Add(1)
			done = append(done, uid)
			if d.Quarantined {
				m.quarantined.Add(1)
				quar = append(quar, uid)
			}
			s.lastHandled = max(s.lastHandled, uint32(uid))
			m.log.Debug("mail handled", "uid", uid, "size", group[i].size(), "quarantined", d.Quarantined)
		}
		n += len(done)
		handled, quarantined = append(handled, done...), append(quarantined, quar...)
		if len(done) > 0 {
			// Sent now, answered after the FETCHes before it: the server
			// works through commands in order.
			stores = append(stores, m.storeAsync(s, done, imap.FlagSeen))
			if len(quar) > 0 && s.keywords {
				stores = append(stores, m.storeAsync(s, quar, imap.Flag(QuarantineKeyword)))
			}
		}
		if herr != nil {
			stopErr = herr
		} else if len(done) < len(ds) {
			stopErr = errors.New("handler committed fewer mails than it was given, without an error")
		}
		r.release(size)
		if big {
			// The big buffer is garbage now (nothing below uses the group);
			// without this the heap would only be collected once it had
			// grown by as much again.
			debug.FreeOSMemory()
		}
	}
	readErr := r.stop()
	if len(quarantined) > 0 && !s.keywords {
		m.log.Warn("folder does not accept keywords: quarantined mail not marked", "uids", imap.UIDSetNum(quarantined...).String())
	}
	if len(handled) > 0 {
		if ferr := m.finishFlags(s, handled, stores); ferr != nil {
			return n, errors.Join(stopErr, ferr)
		}
	}
	if stopErr != nil {
		return n, stopErr
	}
	return n, readErr
}

// handleBatch calls the BatchHandler as handle calls the Handler: with a
// context a shutdown does not cancel, and a panic turned into an error.
func (m *Mailbox) handleBatch(ctx context.Context, bh BatchHandler, ds []Delivery) (disps []Disposition, err error) {
	defer func() {
		if r := recover(); r != nil {
			m.panics.Add(1)
			disps, err = nil, fmt.Errorf("handler panicked: %v", r)
			m.log.Error("handler panicked", "uids", fmt.Sprintf("%d-%d", ds[0].UID, ds[len(ds)-1].UID), "panic", r, "stack", string(debug.Stack()))
		}
	}()
	disps, err = bh.HandleBatch(context.WithoutCancel(ctx), ds)
	if err != nil {
		err = fmt.Errorf("handle uid %d: %w", ds[min(len(disps), len(ds)-1)].UID, err)
	}
	return disps, err
}

// storeAsync sends UID STORE +FLAGS.SILENT without waiting for the answer.
func (m *Mailbox) storeAsync(s *session, uids []imap.UID, flag imap.Flag) *imapclient.FetchCommand {
	return s.c.Store(imap.UIDSetNum(uids...), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{flag}}, nil)
}

// finishFlags waits for the STOREs, moves the handled mail if configured,
// and forgets the pending flags.
func (m *Mailbox) finishFlags(s *session, handled []imap.UID, stores []*imapclient.FetchCommand) error {
	var errs []error
	for _, cmd := range stores {
		if err := m.await(s.c, cmd.Close); err != nil {
			errs = append(errs, fmt.Errorf("store flags: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if m.cfg.MoveTo != "" {
		err := m.await(s.c, func() error {
			_, err := s.c.Move(imap.UIDSetNum(handled...), m.cfg.MoveTo).Wait()
			return err
		})
		if err != nil {
			return fmt.Errorf("move uids %s to %q: %w", imap.UIDSetNum(handled...), m.cfg.MoveTo, err)
		}
	}
	m.flagged.Add(uint64(len(handled)))
	if err := m.st.ClearPendingFlags(m.cfg.Name, s.uidValidity, uint32s(handled)); err != nil {
		return fmt.Errorf("clear pending flags: %w", err)
	}
	return nil
}

// reader reads the messages of the UID FETCH commands on a goroutine of
// its own, strictly in UID order, into a queue bounded by readAhead; with
// a Preparer, workers prepare each message as it arrives and group hands
// out only prepared ones.
type reader struct {
	m    *Mailbox
	s    *session
	prep Preparer
	work chan *fetched // to the preparing workers
	wg   sync.WaitGroup

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []*fetched
	queued  int   // bytes in queue and handed out, not yet released
	done    bool  // the goroutine has finished
	stopped bool  // the consumer wants no more
	err     error // why reading ended early; nil at the end or at a gap
}

func (m *Mailbox) startReader(s *session, uids []imap.UID, prep Preparer) *reader {
	r := &reader{m: m, s: s, prep: prep}
	r.cond = sync.NewCond(&r.mu)
	if prep != nil {
		r.work = make(chan *fetched, 64)
		// One CPU fewer than there are: the group commit is serial and
		// the bottleneck of a backlog; workers on every CPU delayed it
		// (BENCHMARKS.md).
		for range max(1, runtime.GOMAXPROCS(0)-1) {
			r.wg.Go(r.prepare)
		}
	}
	go r.run(uids)
	return r
}

// prepare is a worker: it prepares messages until the reader is done.
func (r *reader) prepare() {
	for f := range r.work {
		p := r.prepareOne(f)
		r.mu.Lock()
		f.prepared, f.ready = p, true
		r.cond.Broadcast()
		r.mu.Unlock()
	}
}

func (r *reader) prepareOne(f *fetched) (p any) {
	defer func() {
		if recover() != nil {
			// HandleBatch prepares it again, where the panic is handled.
			p = nil
		}
	}()
	return r.prep.Prepare(f.delivery(r.m, r.s))
}

// group waits for at least one message and returns every one read since,
// within the group bounds. ok is false when no message will come.
func (r *reader) group() (g []*fetched, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for (len(r.queue) == 0 || !r.queue[0].ready) && !r.done {
		r.cond.Wait()
	}
	if len(r.queue) == 0 {
		return nil, false
	}
	size := 0
	for len(r.queue) > 0 && r.queue[0].ready && len(g) < maxGroupMails && (len(g) == 0 || size+r.queue[0].inMemory() <= maxGroupBytes) {
		size += r.queue[0].inMemory()
		g = append(g, r.queue[0])
		r.queue[0] = nil
		r.queue = r.queue[1:]
	}
	return g, true
}

// release gives back the read-ahead taken by a handled group.
func (r *reader) release(size int) {
	r.mu.Lock()
	r.queued -= size
	r.cond.Broadcast()
	r.mu.Unlock()
}

// stop tells the goroutine to read nothing more, waits until it has
// drained the FETCH commands (the connection is then free for other
// commands), and returns the error that ended reading, if any.
func (r *reader) stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.cond.Broadcast()
	for !r.done {
		r.cond.Wait()
	}
	for _, f := range r.queue {
		r.m.discard(f)
	}
	r.queue = nil
	return r.err
}

func (r *reader) run(uids []imap.UID) {
	m, c := r.m, r.s.c
	var cmds []*imapclient.FetchCommand
	var chunks [][]imap.UID
	for rest := uids; len(rest) > 0; {
		k := min(len(rest), m.cfg.FetchBatch)
		chunks, rest = append(chunks, rest[:k]), rest[k:]
	}
	opts := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
	issue := func() {
		if len(cmds) < len(chunks) {
			cmds = append(cmds, c.Fetch(imap.UIDSetNum(chunks[len(cmds)]...), opts))
		}
	}
	var err error
	closed := 0 // cmds[:closed] are read to the end
	defer func() {
		// Read what is left of every FETCH issued, so the connection can
		// take the STOREs and the next round.
		for _, cmd := range cmds[closed:] {
			if cerr := m.await(c, cmd.Close); cerr != nil && err == nil {
				err = fmt.Errorf("fetch: %w", cerr)
			}
		}
		if r.work != nil {
			// The workers finish what they have, then leave.
			close(r.work)
			r.wg.Wait()
		}
		r.mu.Lock()
		r.err, r.done = err, true
		r.cond.Broadcast()
		r.mu.Unlock()
	}()
	// One FETCH at a time: Dovecot may run pipelined FETCH commands in
	// parallel and interleave their answers, and a message of the second
	// that nobody reads yet would stall the connection under the first.
	// The server streams each one; the reader is never the one waiting.
	issue()
	for ci, chunk := range chunks {
		cmd := cmds[ci]
		for _, want := range chunk {
			if !r.wait() {
				return
			}
			var msg *fetched
			if err = m.await(c, func() (err error) {
				msg, err = m.nextMessageReserving(cmd, r.reserve)
				return err
			}); err != nil {
				err = fmt.Errorf("fetch uid %d: %w", want, err)
				return
			}
			if msg == nil || msg.uid != want {
				m.discard(msg)
				return // end of the responses, or a gap: round resolves it
			}
			if !msg.hasBody {
				err = fmt.Errorf("fetch uid %d: the server returned no body", msg.uid)
				return
			}
			m.fetched.Add(1)
			msg.ready = r.work == nil
			r.mu.Lock()
			r.queue = append(r.queue, msg)
			r.queued += msg.inMemory()
			r.cond.Broadcast()
			r.mu.Unlock()
			if r.work != nil {
				r.work <- msg
			}
		}
		closed++
		if err = m.await(c, cmd.Close); err != nil {
			err = fmt.Errorf("fetch uids %s: %w", imap.UIDSetNum(chunk...), err)
			return
		}
		issue()
	}
}

// reserve is called with the size of the next message before it is read.
// A big one waits until everything read before it is handled, and the heap
// is trimmed first: it is then the only big thing in memory.
func (r *reader) reserve(size int64) {
	if size < bigMessage {
		return
	}
	r.mu.Lock()
	for r.queued > 0 && !r.stopped {
		r.cond.Wait()
	}
	r.mu.Unlock()
	debug.FreeOSMemory()
}

// wait blocks while the read-ahead is used up; false when stopped.
func (r *reader) wait() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.queued >= readAhead && !r.stopped {
		r.cond.Wait()
	}
	return !r.stopped
}
