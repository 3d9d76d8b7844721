package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Worker defaults, used when the field is zero.
const (
	DefaultMaxAttempts = 20
	DefaultMinBackoff  = 30 * time.Second
	DefaultMaxBackoff  = time.Hour
)

const (
	// dueBatch is how many items one Due call fetches, besides those sent
	// and still being recorded (Due returns them too, first).
	dueBatch = 100
	// maxSleep bounds the wait between rounds even when nothing is due, so
	// an item enqueued without a Kick is still sent eventually.
	maxSleep = time.Minute
)

// Worker delivers the queue's due items through Sender, one at a time.
// Set the fields, then call Run once; Kick and Stats may be called from any
// goroutine at any time, also before Run.
//
// Sending and recording overlap: a delivered item is handed to a recorder
// goroutine, which records every delivery that piled up meanwhile in one
// call (Queue.Sent, or one BatchQueue.SentBatch), while the next mails go
// out. An item handed over is never sent again, even when Due still
// returns it because its recording has not committed yet.
type Worker struct {
	Queue  Queue
	Sender Sender
	Log    *slog.Logger // default slog.Default()
	// MaxAttempts is the number of attempts after which a temporary failure
	// makes an item dead; default DefaultMaxAttempts.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the delay after a temporary failure:
	// MinBackoff·2^(attempts-1), at most MaxBackoff, of which the upper half
	// is random so that retries spread out.
	MinBackoff, MaxBackoff time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// OnDead, if set, is called after an item was recorded dead, with the
	// item as recorded (Attempts and LastError updated) and the last error.
	OnDead func(Item, error)

	kickOnce sync.Once
	kick     chan struct{}
	sent     atomic.Uint64
	retried  atomic.Uint64
	dead     atomic.Uint64
}

// BatchQueue is a Queue that can record many deliveries in one
// transaction. SentBatch must skip items that are no longer pending (so a
// repeated batch is harmless) and record either all others or none.
type BatchQueue interface {
	Queue
	SentBatch(sent []Delivered) error
}

// CursorQueue is a Queue that can list the due items that come after a
// given one in Due's order (NextAttempt, then ID), so that a busy worker
// does not read again the items it handed over and is still recording.
type CursorQueue interface {
	Queue
	DueAfter(now time.Time, after Item, limit int) ([]Item, error)
}

// Delivered is one delivery for BatchQueue.SentBatch.
type Delivered struct {
	ID uint64
	At time.Time
}

const (
	// maxRecordBatch bounds one SentBatch.
	maxRecordBatch = 1000
	// recordGather is how long the recorder lets deliveries pile up after
	// the first before it records them: a burst then costs one commit per
	// few milliseconds instead of one per mail or two, which leaves the
	// CPU to the sending. It is also how much longer a crash may leave an
	// accepted mail unrecorded (and so sent again after the restart).
	recordGather = 5 * time.Millisecond
)

// Stats counts outcomes since the Worker was created.
type Stats struct {
	Sent, Retried, Dead uint64
}

// Stats returns the counters. Sent counts deliveries recorded in the queue.
func (w *Worker) Stats() Stats {
	return Stats{Sent: w.sent.Load(), Retried: w.retried.Load(), Dead: w.dead.Load()}
}

// Kick wakes Run without blocking, typically after a commit that enqueued
// mail. Kicks while Run is busy coalesce into one more round.
func (w *Worker) Kick() {
	select {
	case w.kickChan() <- struct{}{}:
	default:
	}
}

func (w *Worker) kickChan() chan struct{} {
	w.kickOnce.Do(func() { w.kick = make(chan struct{}, 1) })
	return w.kick
}

// Run sends everything due, then sleeps until the next item is due or Kick
// is called, and again, until ctx is cancelled. Cancellation starts no new
// send, but lets the one in flight finish and every delivery be recorded;
// then Run returns nil. Queue errors are logged and retried after
// MinBackoff.
func (w *Worker) Run(ctx context.Context) error {
	log := w.logger()
	rec := newRecorder(w, log)
	defer rec.close()
	kick := w.kickChan()
	var cursor *Item
	for {
		if ctx.Err() != nil {
			return nil
		}
		n, fresh, full, last, ok := w.round(ctx, log, rec, cursor)
		// Go on after the last item while full batches come; start from
		// the first due item again once the end is reached, which also
		// picks up anything queued behind the cursor meanwhile.
		cursor = nil
		if ok && full && last != nil {
			cursor = last
		}
		if ctx.Err() != nil {
			return nil
		}
		var wait time.Duration
		switch {
		case !ok:
			wait = w.minBackoff()
		case fresh == 0 && n > 0:
			// Everything due is sent: wait for its recording (if it is not
			// done yet), not for the clock.
			if progress := rec.progress(); progress != nil {
				select {
				case <-ctx.Done():
					return nil
				case <-progress:
				}
			}
			continue
		case full:
			continue // more may be due right now
		default:
			wait = w.untilNextDue(log)
			if wait <= 0 && n == 0 {
				// NextDue says something is due but Due gave nothing: a
				// queue inconsistency. Do not spin on it.
				wait = w.minBackoff()
			}
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// round handles one batch of due items, from the first or after cursor:
// n were due (those Due skipped included), the last of those
// listed last, and fresh of them were not already handed to the recorder;
// full is whether the queue listed as many as it was asked for, so that
// more may be due. ok is false when the queue failed, so the caller should
// back off.
func (w *Worker) round(ctx context.Context, log *slog.Logger, rec *recorder, cursor *Item) (n, fresh int, full bool, last *Item, ok bool) {
	res := w.due(rec, cursor)
	items := res.items
	if res.err != nil {
		log.Error("outbox: list due mail", "err", res.err)
		return 0, 0, false, nil, false
	}
	if len(items) > 0 {
		last = &items[len(items)-1]
	}
	ok = true
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		if rec.handled(it.ID, res.since) {
			continue // accepted by the relay already; only the bookkeeping is, or was, pending
		}
		fresh++
		if !w.deliver(ctx, log, it, rec) {
			ok = false
		}
	}
	return len(items) + res.skipped, fresh, len(items) >= res.limit, last, ok
}

// dueResult is one Due (or DueAfter) and what the recorder said before it.
type dueResult struct {
	items   []Item
	skipped int // left out by Due: sent, being recorded
	err     error
	limit   int
	since   uint64 // for recorder.handled
}

// due lists due items: on a CursorQueue after cursor, else from the
// first, without those being recorded. A panic in the queue is an error.
func (w *Worker) due(rec *recorder, cursor *Item) (res dueResult) {
	defer func() {
		if r := recover(); r != nil {
			res.items, res.err = nil, fmt.Errorf("panic in queue: %v", r)
		}
	}()
	res.since = rec.snapshot()
	res.limit = dueBatch
	if cq, isCursor := w.Queue.(CursorQueue); isCursor && cursor != nil {
		res.items, res.err = cq.DueAfter(w.now(), *cursor, res.limit)
		return res
	}
	res.items, res.skipped, res.err = w.Queue.Due(w.now(), res.limit, func(id uint64) bool { return rec.handled(id, res.since) })
	return res
}

// deliver sends one item and records the outcome: a failure at once, a
// delivery through the recorder. It returns false when a failure could not
// be recorded.
func (w *Worker) deliver(ctx context.Context, log *slog.Logger, it Item, rec *recorder) bool {
	// The send gets a context that outlives ctx: a message half
	// transmitted when shutdown begins is finished, not abandoned. The
	// Sender's own timeout still bounds it.
	err := w.send(context.WithoutCancel(ctx), it)
	now := w.now()
	if err == nil {
		rec.add(it, now)
		return true
	}

	attempts := it.Attempts + 1
	lastErr := err.Error()
	if IsPermanent(err) || attempts >= w.maxAttempts() {
		if qerr := w.Queue.Dead(it.ID, attempts, lastErr); qerr != nil {
			log.Error("outbox: record dead mail", "outbox_id", it.ID, "err", qerr, "send_err", err)
			return false
		}
		w.dead.Add(1)
		log.Warn("outbox: giving up on mail", "outbox_id", it.ID, "attempt", attempts, "err", err, "permanent", IsPermanent(err))
		if w.OnDead != nil {
			it.Attempts, it.LastError = attempts, lastErr
			w.OnDead(it, err)
		}
		return true
	}
	next := now.Add(w.backoff(attempts))
	if qerr := w.Queue.Retry(it.ID, attempts, next, lastErr); qerr != nil {
		log.Error("outbox: record failed attempt", "outbox_id", it.ID, "err", qerr, "send_err", err)
		return false
	}
	w.retried.Add(1)
	log.Info("outbox: delivery failed, will retry", "outbox_id", it.ID, "attempt", attempts, "err", err, "next_attempt", next)
	return true
}

// recorder records deliveries in the queue on a goroutine of its own,
// grouping what arrives while a recording is in progress. An item stays
// in it, and is never sent again, until its delivery is recorded; a
// failed recording is retried after MinBackoff for as long as the worker
// runs.
type recorder struct {
	w   *Worker
	log *slog.Logger

	mu      sync.Mutex
	pending []recordItem        // handed over, not yet being recorded
	inside  map[uint64]struct{} // pending or being recorded
	// A Due that began before a recording committed may still return the
	// items it recorded: recent keeps them, with the generation (a count
	// of recordings) that recorded them, until no such Due can be running.
	gen      uint64
	lastSnap uint64
	recent   map[uint64]uint64
	wake     chan struct{} // something was added (cap 1)
	done     chan struct{} // closed and replaced after each recording
	closing  bool
	exited   chan struct{}
}

type recordItem struct {
	it Item
	at time.Time
}

// recordGiveUp bounds the attempts at recording what is left at shutdown.
const recordGiveUp = 5

func newRecorder(w *Worker, log *slog.Logger) *recorder {
	r := &recorder{
		w: w, log: log,
		inside: make(map[uint64]struct{}),
		recent: make(map[uint64]uint64),
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go r.run()
	return r
}

// snapshot is called before each Due: it returns the generation to pass
// to handled for that Due's items, and forgets what every later Due will
// see recorded.
func (r *recorder) snapshot() (gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, g := range r.recent {
		if g <= r.lastSnap {
			delete(r.recent, id)
		}
	}
	r.lastSnap = r.gen
	return r.gen
}

// handled reports whether item id, seen by a Due that began after
// snapshot returned since, has been sent already.
func (r *recorder) handled(id, since uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.inside[id]; ok {
		return true
	}
	g, ok := r.recent[id]
	return ok && g > since
}

func (r *recorder) add(it Item, at time.Time) {
	r.mu.Lock()
	r.pending = append(r.pending, recordItem{it: it, at: at})
	r.inside[it.ID] = struct{}{}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// progress is closed when the next recording finishes; nil when nothing
// is waiting to be recorded.
func (r *recorder) progress() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.inside) == 0 {
		return nil
	}
	return r.done
}

// close records what is left (giving up after a few failures, with an
// error in the log) and stops the goroutine.
func (r *recorder) close() {
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	<-r.exited
}

func (r *recorder) run() {
	defer close(r.exited)
	failures := 0
	for {
		r.mu.Lock()
		batch := r.pending[:min(len(r.pending), maxRecordBatch)]
		closing := r.closing
		r.mu.Unlock()
		if len(batch) == 0 {
			if closing {
				return
			}
			<-r.wake
			r.mu.Lock()
			closing = r.closing
			r.mu.Unlock()
			if !closing {
				time.Sleep(recordGather)
			}
			continue
		}
		recorded, err := r.record(batch)
		r.mu.Lock()
		r.gen++
		for _, ri := range batch[:recorded] {
			delete(r.inside, ri.it.ID)
			r.recent[ri.it.ID] = r.gen
		}
		r.pending = r.pending[recorded:]
		close(r.done)
		r.done = make(chan struct{})
		closing = r.closing
		left := len(r.pending)
		r.mu.Unlock()
		if err == nil {
			failures = 0
			continue
		}
		failures++
		if closing && failures >= recordGiveUp {
			r.log.Error("outbox: giving up recording sent mail at shutdown; it will be sent again", "count", left, "err", err)
			return
		}
		t := time.NewTimer(r.w.minBackoff())
		if closing {
			<-t.C
		} else {
			select {
			case <-t.C:
			case <-r.wake:
			}
		}
		t.Stop()
	}
}

// record records batch, in one SentBatch when the queue has it, else item
// by item, and returns how many leading items are recorded.
func (r *recorder) record(batch []recordItem) (int, error) {
	if bq, ok := r.w.Queue.(BatchQueue); ok && len(batch) > 1 {
		sent := make([]Delivered, len(batch))
		for i, ri := range batch {
			sent[i] = Delivered{ID: ri.it.ID, At: ri.at}
		}
		if err := bq.SentBatch(sent); err != nil {
			r.log.Error("outbox: record sent mail (will not send it again)", "count", len(batch), "err", err)
			return 0, err
		}
		r.w.sent.Add(uint64(len(batch)))
		for _, ri := range batch {
			r.log.Info("outbox: mail sent", "outbox_id", ri.it.ID, "to", ri.it.To)
		}
		return len(batch), nil
	}
	for i, ri := range batch {
		if err := r.w.Queue.Sent(ri.it.ID, ri.at); err != nil {
			r.log.Error("outbox: record sent mail (will not send it again)", "outbox_id", ri.it.ID, "err", err)
			return i, err
		}
		r.w.sent.Add(1)
		r.log.Info("outbox: mail sent", "outbox_id", ri.it.ID, "to", ri.it.To)
	}
	return len(batch), nil
}

// send calls the Sender, turning a panic into a temporary error so that
// one bad item cannot stop delivery of the others.
func (w *Worker) send(ctx context.Context, it Item) (err error) {
	defer func() {
		if r := recover(); r != nil {
			w.logger().Error("outbox: panic in sender", "outbox_id", it.ID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic in sender: %v", r)
		}
	}()
	return w.Sender.Send(ctx, it.From, it.To, it.Raw)
}

// untilNextDue is how long to sleep before the next round.
func (w *Worker) untilNextDue(log *slog.Logger) time.Duration {
	next, ok, err := w.Queue.NextDue()
	if err != nil {
		log.Error("outbox: find next due mail", "err", err)
		return w.minBackoff()
	}
	if !ok {
		return maxSleep
	}
	return min(next.Sub(w.now()), maxSleep)
}

// backoff is the delay after the attempts-th failed attempt (attempts ≥ 1):
// d = MinBackoff·2^(attempts-1) capped at MaxBackoff, then a random point
// in [d/2, d].
func (w *Worker) backoff(attempts int) time.Duration {
	lo, hi := w.minBackoff(), w.maxBackoff()
	d := lo
	for i := 1; i < attempts && d < hi; i++ {
		if d > hi/2 {
			d = hi // doubling would pass the cap (or overflow)
			break
		}
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}

func (w *Worker) logger() *slog.Logger {
	if w.Log != nil {
		return w.Log
	}
	return slog.Default()
}

func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Worker) maxAttempts() int {
	if w.MaxAttempts > 0 {
		return w.MaxAttempts
	}
	return DefaultMaxAttempts
}

func (w *Worker) minBackoff() time.Duration {
	if w.MinBackoff > 0 {
		return w.MinBackoff
	}
	return DefaultMinBackoff
}

func (w *Worker) maxBackoff() time.Duration {
	if w.MaxBackoff > 0 {
		return max(w.MaxBackoff, w.minBackoff())
	}
	return max(DefaultMaxBackoff, w.minBackoff())
}
