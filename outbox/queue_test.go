package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// memQueue is an in-memory Queue that checks the worker's use of it: an
// item is sent, retried or killed only while pending.
type memQueue struct {
	mu        sync.Mutex
	lastID    uint64
	items     map[uint64]*memEntry
	order     []uint64 // ids in enqueue order, which is oldest first
	head      int      // order[:head] are all sent or dead
	changed   chan struct{}
	failSent  int // fail this many Sent calls
	failDue   int // fail this many Due calls
	misuse    []string
	sentCalls int
	sentCount int                 // items in state sent
	onSent    func(sentCount int) // called with mu held
	nextCalls int                 // NextDue calls: the worker is about to sleep
	dueCalls  int                 // Due calls
	listed    int                 // items Due handed out
}

type memEntry struct {
	Item
	state   string // pending, sent, dead
	retries int
}

func newMemQueue() *memQueue {
	return &memQueue{items: make(map[uint64]*memEntry), changed: make(chan struct{})}
}

var errDisk = errors.New("disk on fire")

// add enqueues a message due now and returns its id.
func (q *memQueue) add(from string, to []string, raw []byte) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.lastID++
	q.items[q.lastID] = &memEntry{Item: Item{ID: q.lastID, From: from, To: to, Raw: raw}, state: "pending"}
	q.order = append(q.order, q.lastID)
	q.notifyLocked()
	return q.lastID
}

func (q *memQueue) notifyLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

func (q *memQueue) Due(now time.Time, limit int, skip func(id uint64) bool) ([]Item, int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.dueCalls++
	if q.failDue > 0 {
		q.failDue--
		return nil, 0, errDisk
	}
	for q.head < len(q.order) && q.items[q.order[q.head]].state != "pending" {
		q.head++
	}
	var out []Item
	skipped := 0
	for _, id := range q.order[q.head:] {
		if len(out) == limit {
			break
		}
		e := q.items[id]
		switch {
		case e.state != "pending" || e.NextAttempt.After(now):
		case skip != nil && skip(id):
			skipped++
		default:
			out = append(out, e.Item)
		}
	}
	q.listed += len(out)
	return out, skipped, nil
}

func (q *memQueue) NextDue() (time.Time, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.nextCalls++
	q.notifyLocked()
	var next time.Time
	ok := false
	for _, e := range q.items {
		if e.state == "pending" && (!ok || e.NextAttempt.Before(next)) {
			next, ok = e.NextAttempt, true
		}
	}
	return next, ok, nil
}

func (q *memQueue) pendingLocked(op string, id uint64) (*memEntry, error) {
	e := q.items[id]
	if e == nil || e.state != "pending" {
		q.misuse = append(q.misuse, fmt.Sprintf("%s(%d) on a non-pending item", op, id))
		return nil, fmt.Errorf("%s: item %d not pending", op, id)
	}
	return e, nil
}

func (q *memQueue) Sent(id uint64, _ time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sentCalls++
	if q.failSent > 0 {
		q.failSent--
		return errDisk
	}
	e, err := q.pendingLocked("Sent", id)
	if err != nil {
		return err
	}
	e.state = "sent"
	q.sentCount++
	if q.onSent != nil {
		q.onSent(q.sentCount)
	}
	q.notifyLocked()
	return nil
}

func (q *memQueue) Retry(id uint64, attempts int, next time.Time, lastErr string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.pendingLocked("Retry", id)
	if err != nil {
		return err
	}
	if attempts != e.Attempts+1 {
		q.misuse = append(q.misuse, fmt.Sprintf("Retry(%d) attempts %d after %d", id, attempts, e.Attempts))
	}
	e.Attempts, e.NextAttempt, e.LastError = attempts, next, lastErr
	e.retries++
	q.notifyLocked()
	return nil
}

func (q *memQueue) Dead(id uint64, attempts int, lastErr string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.pendingLocked("Dead", id)
	if err != nil {
		return err
	}
	e.state, e.Attempts, e.LastError = "dead", attempts, lastErr
	q.notifyLocked()
	return nil
}

// get returns a copy of item id's entry.
func (q *memQueue) get(id uint64) memEntry {
	q.mu.Lock()
	defer q.mu.Unlock()
	return *q.items[id]
}

// waitUntil blocks until cond holds for the queue or fails the test after
// timeout (a generous bound, not a performance assertion).
func (q *memQueue) waitUntil(t testing.TB, what string, timeout time.Duration, cond func(q *memQueue) bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		q.mu.Lock()
		ch := q.changed
		q.mu.Unlock()
		if cond(q) {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
	}
}

func (q *memQueue) state(id uint64) string { return q.get(id).state }

func (q *memQueue) checkUse(t testing.TB) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.misuse {
		t.Errorf("queue misuse: %s", m)
	}
}

// startWorker runs w until the test ends and checks that Run returned nil
// and that the queue was used correctly.
func startWorker(t testing.TB, w *Worker, q *memQueue) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		q.checkUse(t)
	})
}
