package store

import (
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Carrying small writes in a busy writer's transaction.
//
// bbolt has one writer at a time, and each commit costs two fdatasyncs.
// While a backlog is ingested the ingest commits group after group, and the
// outbox records the acknowledgements it has just sent: with a transaction
// of its own every few milliseconds, it took the writer lock between two
// groups (a Go mutex hands itself to a waiter that has waited long, and
// the ingest goroutine lost its CPU in the handover) and added its own
// fsyncs. An execution trace of a 5,000-mail backlog put that at 0.24 s of
// the 1.57 s run (BENCHMARKS.md). So a writer that commits often
// (UpdateCarrying) takes along the small writes queued by ride, in the same
// transaction and the same fsync.
//
// A rider is applied first, before the carrier's own fn: when one fails,
// the transaction is rolled back before fn ever ran, fn is run again in a
// transaction of its own, and every rider of that transaction goes alone,
// so a rider can neither fail nor delay its carrier's commit by more than
// a rollback, and each rider learns its own outcome.

// ridePatience is how long a rider waits for a carrier, and how recently
// one must have finished for a new rider to wait for the next: carriers
// follow each other closely while a backlog lasts (a group takes about
// 10 ms), and when they stop, the riders left go alone after this long.
// It bounds the delay carrying adds to a rider's commit.
const ridePatience = 20 * time.Millisecond

// errRideAlone tells a waiting rider that its carrier did not commit it.
var errRideAlone = errors.New("store: not carried; commit alone")

type rider struct {
	fn   func(*Tx) error
	done chan error // 1-buffered: nil when committed by a carrier, or errRideAlone
}

// carriers is the queue of riders and what ride needs to know of carriers.
type carriers struct {
	mu      sync.Mutex
	running int
	lastEnd time.Time
	waiting []*rider
}

// ride commits fn, in the transaction of a carrier if one is running or
// has just finished, else in one of its own. fn must leave no effect
// outside the transaction: it may be rolled back with a carrier's and run
// again. It returns fn's error, or the commit's.
func (db *DB) ride(fn func(*Tx) error) error {
	c := &db.carriers
	c.mu.Lock()
	if c.running == 0 && time.Since(c.lastEnd) >= ridePatience {
		c.mu.Unlock()
		return db.Update(fn)
	}
	r := &rider{fn: fn, done: make(chan error, 1)}
	c.waiting = append(c.waiting, r)
	c.mu.Unlock()

	t := time.NewTimer(ridePatience)
	defer t.Stop()
	var err error
	select {
	case err = <-r.done:
	case <-t.C:
		if c.withdraw(r) {
			err = errRideAlone
		} else {
			err = <-r.done // taken meanwhile: the carrier has the outcome
		}
	}
	if err == errRideAlone {
		return db.Update(fn)
	}
	return err
}

// withdraw removes r from the queue, reporting whether it was still there.
func (c *carriers) withdraw(r *rider) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, w := range c.waiting {
		if w == r {
			c.waiting = append(c.waiting[:i], c.waiting[i+1:]...)
			return true
		}
	}
	return false
}

func (c *carriers) start() {
	c.mu.Lock()
	c.running++
	c.mu.Unlock()
}

func (c *carriers) take() []*rider {
	c.mu.Lock()
	defer c.mu.Unlock()
	taken := c.waiting
	c.waiting = nil
	return taken
}

func (c *carriers) end() {
	c.mu.Lock()
	c.running--
	c.lastEnd = time.Now()
	c.mu.Unlock()
}

// UpdateCarrying is Update for a writer that commits often (the ingest's
// group commit): its transaction also commits the writes other goroutines
// queued meanwhile (see ride). fn runs once, as with Update, and only
// fn's error or the commit's is returned.
func (db *DB) UpdateCarrying(fn func(*Tx) error) error {
	c := &db.carriers
	c.start()
	var (
		taken       []*rider
		riderFailed bool
		outcome     = errRideAlone
	)
	defer func() {
		// Also when fn panics: the riders go alone.
		for _, r := range taken {
			r.done <- outcome
		}
		c.end()
	}()
	err := db.bolt.Update(func(btx *bolt.Tx) error {
		tx := &Tx{tx: btx, trim: db.trim}
		taken = c.take()
		for _, r := range taken {
			if err := carry(tx, r.fn); err != nil {
				riderFailed = true
				return err
			}
		}
		return fn(tx)
	})
	db.trim.trimAfterWrite(db.bolt)
	if riderFailed {
		return db.Update(fn)
	}
	if err == nil {
		outcome = nil
	}
	return err
}

// carry runs a rider's fn, a panic included in its error, so that a
// rider's fault can never look like its carrier's.
func carry(tx *Tx, fn func(*Tx) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("carried write panicked: %v", p)
		}
	}()
	return fn(tx)
}
