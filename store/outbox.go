package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Outbound is a mail waiting in the durable outbox. Raw is the complete
// message, composed once when it is queued, so every retry sends the same
// bytes with the same Message-ID.
type Outbound struct {
	ID          uint64    `json:"id"`
	TicketID    uint64    `json:"ticket_id"`
	MessageSeq  uint64    `json:"message_seq"` // the Message that records it on the ticket
	From        string    `json:"from"`        // envelope sender
	To          []string  `json:"to"`          // envelope recipients
	Raw         []byte    `json:"raw"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// Enqueue records an outbound mail on its ticket (m, with Delivery queued)
// and puts it in the outbox, due now. Both happen in the caller's
// transaction, together with whatever caused the mail.
func (t *Tx) Enqueue(m *Message, from string, to []string, raw []byte, now time.Time) (*Outbound, error) {
	m.Direction = DirectionOut
	m.Delivery = &Delivery{Status: "queued"}
	if err := t.AddMessage(m, raw, idKey(m.MessageID)); err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	b := t.bucket(bucketOutbox)
	id, err := b.NextSequence()
	if err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	o := &Outbound{ID: id, TicketID: m.TicketID, MessageSeq: m.Seq, From: from, To: to, Raw: raw, NextAttempt: now, CreatedAt: now}
	if err := putJSON(b, u64(id), o); err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	return o, nil
}

// idKey is the msgids key of a bare Message-ID; it must agree with
// threading.IDKey, which the daemon checks at start.
func idKey(id string) string {
	if id == "" {
		return ""
	}
	return "<" + id + ">"
}

// OutboxDue returns up to limit outbound mails due at now, oldest first.
func (db *DB) OutboxDue(now time.Time, limit int) ([]Outbound, error) {
	var out []Outbound
	err := db.View(func(tx *Tx) error {
		return tx.bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			if limit > 0 && len(out) >= limit {
				return nil
			}
			var o Outbound
			if err := json.Unmarshal(v, &o); err != nil {
				return fmt.Errorf("outbox %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if !o.NextAttempt.After(now) {
				out = append(out, o)
			}
			return nil
		})
	})
	return out, err
}

// OutboxNextDue returns the earliest next attempt of any queued mail.
func (db *DB) OutboxNextDue() (time.Time, bool, error) {
	var next time.Time
	var found bool
	err := db.View(func(tx *Tx) error {
		return tx.bucket(bucketOutbox).ForEach(func(_, v []byte) error {
			var o Outbound
			if err := json.Unmarshal(v, &o); err != nil {
				return err
			}
			if !found || o.NextAttempt.Before(next) {
				next, found = o.NextAttempt, true
			}
			return nil
		})
	})
	return next, found, err
}

// OutboxLen returns how many mails are queued and how many are dead.
func (db *DB) OutboxLen() (queued, dead int, err error) {
	err = db.View(func(tx *Tx) error {
		queued = tx.bucket(bucketOutbox).Stats().KeyN
		dead = tx.bucket(bucketDead).Stats().KeyN
		return nil
	})
	return queued, dead, err
}

func (db *DB) finishOutbound(id uint64, fn func(tx *Tx, o *Outbound, m *Message) error) error {
	return db.Update(func(tx *Tx) error {
		var o Outbound
		if err := getJSON(tx.bucket(bucketOutbox), u64(id), &o); err != nil {
			return fmt.Errorf("outbox %d: %w", id, err)
		}
		m, err := tx.Message(o.TicketID, o.MessageSeq)
		if err != nil {
			return fmt.Errorf("outbox %d: %w", id, err)
		}
		if err := fn(tx, &o, m); err != nil {
			return fmt.Errorf("outbox %d: %w", id, err)
		}
		return tx.UpdateMessage(m)
	})
}

// OutboxSent removes a sent mail from the outbox and records the delivery.
func (db *DB) OutboxSent(id uint64, at time.Time) error {
	return db.finishOutbound(id, func(tx *Tx, o *Outbound, m *Message) error {
		m.Delivery = &Delivery{Status: "sent", Attempts: o.Attempts + 1, SentAt: at}
		return tx.bucket(bucketOutbox).Delete(u64(id))
	})
}

// OutboxRetry records a failed attempt and when to try again.
func (db *DB) OutboxRetry(id uint64, attempts int, next time.Time, lastErr string) error {
	return db.finishOutbound(id, func(tx *Tx, o *Outbound, m *Message) error {
		o.Attempts, o.NextAttempt, o.LastError = attempts, next, lastErr
		m.Delivery = &Delivery{Status: "queued", Attempts: attempts, LastError: lastErr}
		return putJSON(tx.bucket(bucketOutbox), u64(id), o)
	})
}

// OutboxDead gives up on a mail: it moves to the dead bucket and its
// message is marked failed, visible in `tickets show`.
func (db *DB) OutboxDead(id uint64, attempts int, lastErr string) error {
	return db.finishOutbound(id, func(tx *Tx, o *Outbound, m *Message) error {
		o.Attempts, o.LastError = attempts, lastErr
		m.Delivery = &Delivery{Status: "failed", Attempts: attempts, LastError: lastErr}
		if err := putJSON(tx.bucket(bucketDead), u64(id), o); err != nil {
			return err
		}
		return tx.bucket(bucketOutbox).Delete(u64(id))
	})
}

// rateState is the recent hits of one rate-limit key.
type rateState struct {
	Hits []time.Time `json:"hits"`
}

// Allow is a sliding-window rate limit kept in the database, so it holds
// across restarts: it reports whether one more event for key fits max
// events per window at now, and if so records it.
func (t *Tx) Allow(key string, now time.Time, window time.Duration, max int) (bool, error) {
	b := t.bucket(bucketRateLimit)
	var st rateState
	if err := getJSON(b, []byte(key), &st); err != nil && !errors.Is(err, ErrNotFound) {
		return false, fmt.Errorf("rate limit %s: %w", key, err)
	}
	kept := st.Hits[:0]
	for _, h := range st.Hits {
		if now.Sub(h) < window {
			kept = append(kept, h)
		}
	}
	st.Hits = kept
	if len(st.Hits) >= max {
		return false, putJSON(b, []byte(key), st)
	}
	st.Hits = append(st.Hits, now)
	return true, putJSON(b, []byte(key), st)
}
