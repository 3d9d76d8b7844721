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
	// dueBatch is how many items one Due call fetches.
	dueBatch = 50
	// maxSleep bounds the wait between rounds even when nothing is due, so
	// an item enqueued without a Kick is still sent eventually.
	maxSleep = time.Minute
)

// Worker delivers the queue's due items through Sender, one at a time.
// Set the fields, then call Run once; Kick and Stats may be called from any
// goroutine at any time, also before Run.
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

	// unrecorded holds items the relay accepted but Queue.Sent failed to
	// record: they are recorded again, never sent again. Only Run touches
	// it.
	unrecorded map[uint64]time.Time
}

// Stats counts outcomes since the Worker was created.
type Stats struct {
	Sent, Retried, Dead uint64
}

// Stats returns the counters.
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
// send, but lets the one in flight finish and be recorded; then Run returns
// nil. Queue errors are logged and retried after MinBackoff.
func (w *Worker) Run(ctx context.Context) error {
	log := w.logger()
	w.unrecorded = make(map[uint64]time.Time)
	kick := w.kickChan()
	for {
		if ctx.Err() != nil {
			return nil
		}
		n, ok := w.round(ctx, log)
		if ctx.Err() != nil {
			return nil
		}
		var wait time.Duration
		switch {
		case !ok:
			wait = w.minBackoff()
		case n == dueBatch:
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

// round handles one batch of due items and returns its size. ok is false
// when the queue failed, so the caller should back off.
func (w *Worker) round(ctx context.Context, log *slog.Logger) (n int, ok bool) {
	items, err := w.Queue.Due(w.now(), dueBatch)
	if err != nil {
		log.Error("outbox: list due mail", "err", err)
		return 0, false
	}
	ok = true
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		if !w.deliver(ctx, log, it) {
			ok = false
		}
	}
	return len(items), ok
}

// deliver sends one item and records the outcome. It returns false when the
// outcome could not be recorded.
func (w *Worker) deliver(ctx context.Context, log *slog.Logger, it Item) bool {
	log = log.With("outbox_id", it.ID, "attempt", it.Attempts+1)
	if at, ok := w.unrecorded[it.ID]; ok {
		// Accepted by the relay already; only the bookkeeping failed.
		return w.recordSent(log, it, at)
	}

	// The send gets a context that outlives ctx: a message half
	// transmitted when shutdown begins is finished, not abandoned. The
	// Sender's own timeout still bounds it.
	err := w.send(context.WithoutCancel(ctx), it)
	now := w.now()
	if err == nil {
		w.unrecorded[it.ID] = now
		return w.recordSent(log, it, now)
	}

	attempts := it.Attempts + 1
	lastErr := err.Error()
	if IsPermanent(err) || attempts >= w.maxAttempts() {
		if qerr := w.Queue.Dead(it.ID, attempts, lastErr); qerr != nil {
			log.Error("outbox: record dead mail", "err", qerr, "send_err", err)
			return false
		}
		w.dead.Add(1)
		log.Warn("outbox: giving up on mail", "err", err, "permanent", IsPermanent(err))
		if w.OnDead != nil {
			it.Attempts, it.LastError = attempts, lastErr
			w.OnDead(it, err)
		}
		return true
	}
	next := now.Add(w.backoff(attempts))
	if qerr := w.Queue.Retry(it.ID, attempts, next, lastErr); qerr != nil {
		log.Error("outbox: record failed attempt", "err", qerr, "send_err", err)
		return false
	}
	w.retried.Add(1)
	log.Info("outbox: delivery failed, will retry", "err", err, "next_attempt", next)
	return true
}

func (w *Worker) recordSent(log *slog.Logger, it Item, at time.Time) bool {
	if err := w.Queue.Sent(it.ID, at); err != nil {
		log.Error("outbox: record sent mail (will not send it again)", "err", err)
		return false
	}
	delete(w.unrecorded, it.ID)
	w.sent.Add(1)
	log.Info("outbox: mail sent", "to", it.To)
	return true
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
