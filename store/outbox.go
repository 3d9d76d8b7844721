package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Outbound is a mail waiting in the durable outbox. Its bytes are the
// complete message, composed once when it is queued, so every retry sends
// the same bytes with the same Message-ID. They are the bytes of the
// Message that records it (Blob); a schema-1 record carries them inline
// (Raw). Readers get Raw filled either way.
type Outbound struct {
	ID          uint64    `json:"id"`
	TicketID    uint64    `json:"ticket_id"`
	MessageSeq  uint64    `json:"message_seq"` // the Message that records it on the ticket
	From        string    `json:"from"`        // envelope sender
	To          []string  `json:"to"`          // envelope recipients
	Blob        uint64    `json:"blob,omitempty"`
	Raw         []byte    `json:"raw,omitempty"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastError   string    `json:"last_error,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// dueKey orders the outbox_due index by time, then ID. Times before 1970
// (a zero NextAttempt) sort first, as "due long ago".
func dueKey(at time.Time, id uint64) []byte {
	ns := at.UnixNano()
	if at.IsZero() || ns < 0 {
		ns = 0
	}
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(ns))
	binary.BigEndian.PutUint64(k[8:], id)
	return k
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
	o := &Outbound{ID: id, TicketID: m.TicketID, MessageSeq: m.Seq, From: from, To: to, Blob: m.Blob, NextAttempt: now, CreatedAt: now}
	if err := t.putOutbound(bucketOutbox, o); err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	if err := t.bucket(bucketOutboxDue).Put(dueKey(now, id), nil); err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	o.Raw = raw
	return o, nil
}

// putOutbound stores o in bucket name, without the bytes when they are in
// a blob.
func (t *Tx) putOutbound(name []byte, o *Outbound) error {
	rec := *o
	if rec.Blob != 0 {
		rec.Raw = nil
	}
	return putJSON(t.bucket(name), u64(o.ID), &rec)
}

// outbound reads one outbound mail of bucket name with its bytes.
func (t *Tx) outbound(name []byte, id uint64) (*Outbound, error) {
	var o Outbound
	if err := getJSON(t.bucket(name), u64(id), &o); err != nil {
		return nil, fmt.Errorf("outbox %d: %w", id, err)
	}
	if o.Blob != 0 {
		raw, err := t.blob(o.Blob)
		if err != nil {
			return nil, fmt.Errorf("outbox %d: %w", id, err)
		}
		o.Raw = raw
	}
	return &o, nil
}

// idKey is the msgids key of a bare Message-ID; it must agree with
// threading.IDKey, which the daemon checks at start.
func idKey(id string) string {
	if id == "" {
		return ""
	}
	return "<" + id + ">"
}

// OutboxDue returns up to limit (0: no limit) outbound mails due at now,
// the earliest due first. It reads the due index, so its cost does not grow
// with the mail waiting for later.
func (db *DB) OutboxDue(now time.Time, limit int) ([]Outbound, error) {
	out, _, err := db.outboxDue(now, nil, limit, nil)
	return out, err
}

// OutboxDueAfter is OutboxDue for the mails that come after the one
// queued with ID afterID to be sent at afterAt, in OutboxDue's order.
func (db *DB) OutboxDueAfter(now, afterAt time.Time, afterID uint64, limit int) ([]Outbound, error) {
	out, _, err := db.outboxDue(now, dueKey(afterAt, afterID), limit, nil)
	return out, err
}

// OutboxDueSkipping is OutboxDue without the mails for whose ID skip
// reports true: they are neither read nor counted against limit, only
// counted in skipped. A sender that has mail sent and not yet recorded
// would otherwise read those mails, bytes and all, at every call.
func (db *DB) OutboxDueSkipping(now time.Time, limit int, skip func(id uint64) bool) (out []Outbound, skipped int, err error) {
	return db.outboxDue(now, nil, limit, skip)
}

func (db *DB) outboxDue(now time.Time, after []byte, limit int, skip func(uint64) bool) (out []Outbound, skipped int, err error) {
	err = db.View(func(tx *Tx) error {
		end := dueKey(now, ^uint64(0))
		c := tx.bucket(bucketOutboxDue).Cursor()
		k, _ := c.First()
		if after != nil {
			if k, _ = c.Seek(after); bytes.Equal(k, after) {
				k, _ = c.Next()
			}
		}
		for ; k != nil && bytes.Compare(k, end) <= 0; k, _ = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			id := binary.BigEndian.Uint64(k[8:])
			if skip != nil && skip(id) {
				skipped++
				continue
			}
			o, err := tx.outbound(bucketOutbox, id)
			if err != nil {
				return err
			}
			out = append(out, *o)
		}
		return nil
	})
	return out, skipped, err
}

// OutboxNextDue returns the earliest next attempt of any queued mail.
func (db *DB) OutboxNextDue() (time.Time, bool, error) {
	var next time.Time
	var found bool
	err := db.View(func(tx *Tx) error {
		k, _ := tx.bucket(bucketOutboxDue).Cursor().First()
		if k == nil {
			return nil
		}
		o, err := tx.outboxRecord(binary.BigEndian.Uint64(k[8:]))
		if err != nil {
			return err
		}
		next, found = o.NextAttempt, true
		return nil
	})
	return next, found, err
}

// outboxRecord reads a queued mail without its bytes.
func (t *Tx) outboxRecord(id uint64) (*Outbound, error) {
	var o Outbound
	if err := getJSON(t.bucket(bucketOutbox), u64(id), &o); err != nil {
		return nil, fmt.Errorf("outbox %d: %w", id, err)
	}
	return &o, nil
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

// finishOutbound applies fn to queued mail id, in tx. fn changes o and
// returns the new delivery state of its message; o is written back to the
// outbox unless fn removed it, and the due index follows o.NextAttempt.
// The message itself is not rewritten: the state goes to deliveries.
func (t *Tx) finishOutbound(id uint64, fn func(o *Outbound) (d *Delivery, keep bool, err error)) error {
	o, err := t.outboxRecord(id)
	if err != nil {
		return err
	}
	mk := msgKey(o.TicketID, o.MessageSeq)
	// An unfiled mail has no message to record the delivery on.
	if !o.Unfiled() && t.bucket(bucketMessages).Get(mk) == nil {
		return fmt.Errorf("outbox %d: message %d/%d: %w", id, o.TicketID, o.MessageSeq, ErrNotFound)
	}
	due := t.bucket(bucketOutboxDue)
	if err := due.Delete(dueKey(o.NextAttempt, id)); err != nil {
		return fmt.Errorf("outbox %d: %w", id, err)
	}
	d, keep, err := fn(o)
	if err != nil {
		return fmt.Errorf("outbox %d: %w", id, err)
	}
	if keep {
		if err := t.putOutbound(bucketOutbox, o); err != nil {
			return fmt.Errorf("outbox %d: %w", id, err)
		}
		if err := due.Put(dueKey(o.NextAttempt, id), nil); err != nil {
			return fmt.Errorf("outbox %d: %w", id, err)
		}
	} else if err := t.bucket(bucketOutbox).Delete(u64(id)); err != nil {
		return fmt.Errorf("outbox %d: %w", id, err)
	}
	if o.Unfiled() {
		return nil
	}
	if err := t.setDelivery(mk, d); err != nil {
		return fmt.Errorf("outbox %d: %w", id, err)
	}
	return nil
}

// OutboxSent removes a sent mail from the outbox and records the delivery.
func (db *DB) OutboxSent(id uint64, at time.Time) error {
	return db.Update(func(tx *Tx) error { return tx.outboxSent(id, at) })
}

// outboxHead is the part of an Outbound a delivery needs: the outbox
// worker records thousands a second, and decoding only these fields
// costs half as much.
type outboxHead struct {
	TicketID    uint64    `json:"ticket_id"`
	MessageSeq  uint64    `json:"message_seq"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
}

// outboxSent is finishOutbound for a delivery, reading only the head.
func (t *Tx) outboxSent(id uint64, at time.Time) error {
	var o outboxHead
	if err := getJSON(t.bucket(bucketOutbox), u64(id), &o); err != nil {
		return fmt.Errorf("outbox %d: %w", id, err)
	}
	unfiled := (&Outbound{TicketID: o.TicketID, MessageSeq: o.MessageSeq}).Unfiled()
	mk := msgKey(o.TicketID, o.MessageSeq)
	if !unfiled && t.bucket(bucketMessages).Get(mk) == nil {
		return fmt.Errorf("outbox %d: message %d/%d: %w", id, o.TicketID, o.MessageSeq, ErrNotFound)
	}
	if err := t.bucket(bucketOutboxDue).Delete(dueKey(o.NextAttempt, id)); err != nil {
		return fmt.Errorf("outbox %d: %w", id, err)
	}
	if err := t.bucket(bucketOutbox).Delete(u64(id)); err != nil {
		return fmt.Errorf("outbox %d: %w", id, err)
	}
	if unfiled {
		return nil
	}
	if err := t.setDelivery(mk, &Delivery{Status: "sent", Attempts: o.Attempts + 1, SentAt: at}); err != nil {
		return fmt.Errorf("outbox %d: %w", id, err)
	}
	return nil
}

// SentAt is one delivery for OutboxSentBatch.
type SentAt struct {
	ID uint64
	At time.Time
}

// OutboxSentBatch records many deliveries in one transaction (group
// commit): the outbox worker sends on while the previous deliveries are
// being recorded. Mails no longer queued (recorded before) are skipped, so
// a repeated batch is harmless; any other failure records none of them.
func (db *DB) OutboxSentBatch(sent []SentAt) error {
	if len(sent) == 0 {
		return nil
	}
	return db.Update(func(tx *Tx) error {
		for _, s := range sent {
			if err := tx.outboxSent(s.ID, s.At); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		return nil
	})
}

// OutboxRetry records a failed attempt and when to try again.
func (db *DB) OutboxRetry(id uint64, attempts int, next time.Time, lastErr string) error {
	return db.Update(func(tx *Tx) error {
		return tx.finishOutbound(id, func(o *Outbound) (*Delivery, bool, error) {
			o.Attempts, o.NextAttempt, o.LastError = attempts, next, lastErr
			return &Delivery{Status: "queued", Attempts: attempts, LastError: lastErr}, true, nil
		})
	})
}

// OutboxDead gives up on a mail: it moves to the dead bucket and its
// message is marked failed, visible in `tickets show`.
func (db *DB) OutboxDead(id uint64, attempts int, lastErr string) error {
	return db.Update(func(tx *Tx) error {
		return tx.finishOutbound(id, func(o *Outbound) (*Delivery, bool, error) {
			o.Attempts, o.LastError = attempts, lastErr
			return &Delivery{Status: "failed", Attempts: attempts, LastError: lastErr}, false, tx.putOutbound(bucketDead, o)
		})
	})
}
