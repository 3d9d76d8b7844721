// Package inbox runs one IMAP loop per mailbox: connect, log in, select
// the folder, fetch every message above the checkpoint, hand its raw bytes
// to a Handler, and only then flag it \Seen (or move it). It reconnects
// forever with jittered exponential backoff and waits for new mail with IDLE
// or by polling.
//
// Invariants:
//
//   - No mail is lost. A message is flagged or moved only after
//     Handler.Handle returned nil for it, i.e. after the handler committed it
//     durably. A handler error stops the round before any later UID is
//     handled, and the same UID is retried after a backoff; nothing is ever
//     skipped because it failed.
//   - Messages are handed to the handler in ascending UID order, one at a
//     time, or in groups to a BatchHandler (pipeline.go: a reader goroutine
//     streams the next messages, within a bounded read-ahead, while the
//     handler commits a group), and are fetched with BODY.PEEK[] so that
//     reading never sets \Seen.
//   - The checkpoint (State.Checkpoint) is owned by the handler: it records
//     (UIDVALIDITY, last UID) in the same transaction that stores the mail,
//     together with a "pending flag" for that UID. After a crash between the
//     commit and the flag, the loop flushes the pending flags before reading
//     anything new. When the folder's UIDVALIDITY differs from the
//     checkpoint's, every message is fetched again from UID 1; the handler
//     recognises the ones it already has (by Message-ID).
//   - Handled mail is marked \Seen, plus QuarantineKeyword when quarantined,
//     then moved to Config.MoveTo if set. A pending flag records only the
//     UID, so mail flagged after a crash gets \Seen (and the move) but not
//     the keyword.
//   - The server is never asked to EXPUNGE or delete anything.
//
// The package depends on go-imap only; it knows nothing of tickets or the
// store.
package inbox

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// QuarantineKeyword is the IMAP keyword set on mail whose Disposition is
// Quarantined, so that a human can find it in a mail client.
const QuarantineKeyword = "$HelpdeskQuarantine"

// Delivery is one message handed to the Handler.
type Delivery struct {
	Mailbox     string // Config.Name
	UIDValidity uint32
	UID         uint32
	Raw         []byte // the message exactly as the server stored it; nil when Spooled
	// Spooled holds the message instead of Raw when it was big enough to
	// be streamed into the handler's Spooler.
	Spooled Spooled
	// Prepared is what the handler's Prepare returned for this message
	// (Preparer), handed to HandleBatch; nil otherwise.
	Prepared any
}

// Size is the message's size in bytes.
func (d Delivery) Size() int {
	if d.Spooled != nil {
		return d.Spooled.Size()
	}
	return len(d.Raw)
}

// SpoolSize is the size from which a message is streamed into the
// handler's Spooler, when it has one, instead of read into memory.
const SpoolSize = 4 << 20

// Spooler is an optional part of a Handler: a message of SpoolSize bytes
// or more is streamed from the server into Spool as it arrives, so the
// daemon never holds a big mail (a 25 MB attachment) in memory, and its
// Delivery carries what Spool returned instead of Raw. The loop calls
// Discard on every spooled message once it is done with it, whether the
// handler committed it (Discard must then do nothing) or not (the round
// ended first: it is fetched and spooled again later).
type Spooler interface {
	Spool(r io.Reader) (Spooled, error)
	Discard(Spooled)
}

// Spooled is a message kept by a Spooler.
type Spooled interface {
	Size() int
}

// Pending is a committed mail whose flags are not yet set on the server.
type Pending struct {
	UID uint32
	// Quarantined: the mail also gets QuarantineKeyword.
	Quarantined bool
}

// Disposition is the handler's verdict on a committed message.
type Disposition struct {
	// Quarantined also sets QuarantineKeyword on the message.
	Quarantined bool
}

// Handler stores a mail durably.
//
// A nil error means the mail is committed (or is a known duplicate): the
// mail may now be flagged on the server. In the same transaction the
// handler advances the mailbox checkpoint and records a pending flag for
// (mailbox, uidvalidity, uid); see State.
//
// An error means a temporary failure: the loop stops the round and hands
// the same UID again later, after a backoff. Handle is never called for a
// later UID of the mailbox before the earlier one succeeded.
//
// The context passed to Handle is not cancelled when Run's context is: a
// shutdown waits for the handler to finish its commit rather than abort it.
// Handle must therefore not block forever. A panic in Handle is recovered
// and treated as an error.
type Handler interface {
	Handle(ctx context.Context, d Delivery) (Disposition, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, d Delivery) (Disposition, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, d Delivery) (Disposition, error) { return f(ctx, d) }

// Checkpoint is the last UID of a mailbox the handler committed, under the
// folder's UIDVALIDITY at the time. The zero value means nothing yet.
type Checkpoint struct {
	UIDValidity, LastUID uint32
}

// State is the loop's read access to what the handler committed, plus the
// one write it makes itself: forgetting pending flags once they are set on
// the server.
type State interface {
	// Checkpoint returns the mailbox's checkpoint (zero if none).
	Checkpoint(mailbox string) (Checkpoint, error)
	// PendingFlags returns the mails committed under uidValidity but not
	// yet flagged (or moved) on the server, in UID order.
	PendingFlags(mailbox string, uidValidity uint32) ([]Pending, error)
	// ClearPendingFlags forgets pending flags that are now set. UIDs that
	// are not pending must be ignored.
	ClearPendingFlags(mailbox string, uidValidity uint32, uids []uint32) error
}

// Stats are counters for metrics. They only grow, except Connected and
// LastSync.
type Stats struct {
	Fetched     uint64 // messages read from the server
	Spooled     uint64 // of which streamed into the handler's Spooler
	Handled     uint64 // messages the handler committed
	Quarantined uint64 // of which quarantined
	Flagged     uint64 // messages flagged or moved (including pending ones)
	Errors      uint64 // sessions ended by an error (each logged once)
	Reconnects  uint64 // sessions started after a failure
	Panics      uint64 // handler panics (counted in Errors too)
	Connected   bool
	LastSync    time.Time // end of the last round that completed
}

// Mailbox is the loop for one mailbox. Its methods are safe for concurrent
// use, but Run must not be called twice at the same time.
type Mailbox struct {
	cfg  Config
	h    Handler
	st   State
	log  *slog.Logger
	poke chan struct{}

	fetched, spooled, handled, quarantined, flagged atomic.Uint64
	errors, reconnects, panics                      atomic.Uint64
	connected                                       atomic.Bool
	lastSync                                        atomic.Int64 // unix nanoseconds
}

// New returns the loop for cfg; it does no I/O. A nil log discards logs.
// Configuration errors are reported by Run and Check.
func New(cfg Config, h Handler, st State, log *slog.Logger) *Mailbox {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	return &Mailbox{
		cfg:  cfg,
		h:    h,
		st:   st,
		log:  log.With("mailbox", cfg.Name),
		poke: make(chan struct{}, 1),
	}
}

// Name returns Config.Name.
func (m *Mailbox) Name() string { return m.cfg.Name }

// Poke wakes the loop now: it ends the current IDLE or poll wait, or the
// backoff after an error, and checks for new mail. It never blocks.
func (m *Mailbox) Poke() {
	select {
	case m.poke <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot of the counters.
func (m *Mailbox) Stats() Stats {
	s := Stats{
		Fetched:     m.fetched.Load(),
		Spooled:     m.spooled.Load(),
		Handled:     m.handled.Load(),
		Quarantined: m.quarantined.Load(),
		Flagged:     m.flagged.Load(),
		Errors:      m.errors.Load(),
		Reconnects:  m.reconnects.Load(),
		Panics:      m.panics.Load(),
		Connected:   m.connected.Load(),
	}
	if ns := m.lastSync.Load(); ns != 0 {
		s.LastSync = time.Unix(0, ns)
	}
	return s
}

// Run watches the mailbox until ctx is cancelled, then returns nil once the
// message being handled (if any) is committed. Any error (network, server,
// handler) ends the session; Run logs it once and reconnects after a
// jittered exponential backoff between MinBackoff and MaxBackoff. Only an
// invalid Config makes Run return an error.
func (m *Mailbox) Run(ctx context.Context) error {
	if err := m.cfg.validate(); err != nil {
		return err
	}
	failures := 0
	for first := true; ; first = false {
		if !first {
			m.reconnects.Add(1)
		}
		synced, err := m.session(ctx)
		if ctx.Err() != nil {
			m.log.Info("mailbox loop stopped")
			return nil
		}
		if synced {
			// The server worked for a while: start the backoff afresh.
			failures = 0
		}
		if err == nil {
			err = errors.New("session ended without an error") // not expected; retry anyway
		}
		delay := backoff(failures, m.cfg.MinBackoff, m.cfg.MaxBackoff)
		failures++
		m.errors.Add(1)
		m.log.Warn("mailbox session failed", "err", err, "retry_in", delay.Round(time.Millisecond))
		if !m.sleep(ctx, delay) {
			m.log.Info("mailbox loop stopped")
			return nil
		}
	}
}

// sleep waits for d, a Poke or ctx; it reports false if ctx is done.
func (m *Mailbox) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-m.poke:
	case <-t.C:
	}
	return true
}

// backoff returns the delay before attempt n+1 after n consecutive
// failures: min·2ⁿ capped at max, with "equal jitter" (a random point in
// its upper half, never below min) so that many mailboxes failing together
// do not reconnect in lockstep.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	if half > 0 {
		d = half + rand.N(half+1)
	}
	return max(d, lo)
}
