package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Holds stop automatic mail (acknowledgements, notices, notifications,
// error replies) to one address for a while. They are written by the ticket
// engine in the transaction of the mail that caused them and read by it
// before every automatic mail. An expired hold is inert; PutHold removes
// expired ones as it goes, so the bucket stays as small as the set of
// addresses held recently.
var bucketHolds = []byte("holds")

// Hold kinds.
const (
	// HoldUndeliverable: a delivery report said mail to the address failed
	// permanently.
	HoldUndeliverable = "undeliverable"
	// HoldPaused: the circuit breaker tripped; too much automatic mail to
	// the address was refused by its rate limit.
	HoldPaused = "paused"
)

// Hold is one address on hold. Addresses are lower-case.
type Hold struct {
	Kind     string    `json:"kind"`
	Addr     string    `json:"addr"`
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Reason   string    `json:"reason"`
	TicketID uint64    `json:"ticket_id,omitempty"` // the ticket whose mail caused it; 0 when none
}

// Active reports whether the hold is in force at now.
func (h *Hold) Active(now time.Time) bool { return now.Before(h.Until) }

func holdKey(kind, addr string) []byte {
	k := make([]byte, 0, len(kind)+1+len(addr))
	k = append(k, kind...)
	k = append(k, 0)
	return append(k, addr...)
}

func validHoldKind(kind string) bool { return kind == HoldUndeliverable || kind == HoldPaused }

// PutHold records h, replacing the hold of the same kind on the same
// address, and removes every hold that expired before h.Since.
func (t *Tx) PutHold(h *Hold) error {
	if !validHoldKind(h.Kind) || h.Addr == "" {
		return fmt.Errorf("put hold %q on %q: bad kind or empty address", h.Kind, h.Addr)
	}
	b := t.bucket(bucketHolds)
	var expired [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var old Hold
		if json.Unmarshal(v, &old) == nil && !old.Until.After(h.Since) {
			expired = append(expired, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put hold on %s: %w", h.Addr, err)
	}
	for _, k := range expired {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("put hold on %s: %w", h.Addr, err)
		}
	}
	if err := putJSON(b, holdKey(h.Kind, h.Addr), h); err != nil {
		return fmt.Errorf("put hold on %s: %w", h.Addr, err)
	}
	return nil
}

// ActiveHold returns the hold of kind on addr when it is in force at now.
func (t *Tx) ActiveHold(kind, addr string, now time.Time) (*Hold, bool) {
	b := t.bucket(bucketHolds)
	if b == nil {
		// A database opened read-only before its migration to schema 3.
		return nil, false
	}
	var h Hold
	if getJSON(b, holdKey(kind, addr), &h) != nil || !h.Active(now) {
		return nil, false
	}
	return &h, true
}

// DeleteHold lifts the hold of kind on addr; lifting none is no error.
func (t *Tx) DeleteHold(kind, addr string) error {
	if err := t.bucket(bucketHolds).Delete(holdKey(kind, addr)); err != nil {
		return fmt.Errorf("delete hold on %s: %w", addr, err)
	}
	return nil
}

// Holds lists the holds in force at now, by kind and then address.
func (t *Tx) Holds(now time.Time) ([]Hold, error) {
	out := []Hold{}
	b := t.bucket(bucketHolds)
	if b == nil {
		return out, nil
	}
	err := b.ForEach(func(k, v []byte) error {
		var h Hold
		if err := json.Unmarshal(v, &h); err != nil {
			return fmt.Errorf("hold %q: %w", k, err)
		}
		if h.Active(now) {
			out = append(out, h)
		}
		return nil
	})
	return out, err
}

// checkHolds is Check's part for the holds bucket: every value parses, and
// its kind and address are those of its key.
func (t *Tx) checkHolds(bad func(format string, args ...any)) {
	b := t.bucket(bucketHolds)
	if b == nil {
		bad("holds: bucket missing")
		return
	}
	_ = b.ForEach(func(k, v []byte) error {
		var h Hold
		switch {
		case json.Unmarshal(v, &h) != nil:
			bad("holds %q: malformed value", k)
		case !validHoldKind(h.Kind):
			bad("holds %q: unknown kind %q", k, h.Kind)
		case !bytes.Equal(holdKey(h.Kind, h.Addr), k):
			bad("holds %q: holds %s of %q", k, h.Kind, h.Addr)
		}
		return nil
	})
}

// EnqueueUnfiled queues, due now, a mail that belongs to no ticket: a
// notice to the sender of a quarantined mail, an alert to the
// administrator. It has no Message (TicketID and MessageSeq are 0) and
// keeps its bytes in the record itself; once sent, only the log tells of
// it, and a dead one stays in the dead bucket like any other.
func (t *Tx) EnqueueUnfiled(from string, to []string, raw []byte, now time.Time) (*Outbound, error) {
	if len(raw) == 0 {
		return nil, errors.New("enqueue unfiled mail: no bytes")
	}
	b := t.bucket(bucketOutbox)
	id, err := b.NextSequence()
	if err != nil {
		return nil, fmt.Errorf("enqueue unfiled mail: %w", err)
	}
	o := &Outbound{ID: id, From: from, To: to, Raw: raw, NextAttempt: now, CreatedAt: now}
	if err := t.putOutbound(bucketOutbox, o); err != nil {
		return nil, fmt.Errorf("enqueue unfiled mail: %w", err)
	}
	if err := t.bucket(bucketOutboxDue).Put(dueKey(now, id), nil); err != nil {
		return nil, fmt.Errorf("enqueue unfiled mail: %w", err)
	}
	return o, nil
}

// Unfiled reports whether o belongs to no ticket (EnqueueUnfiled).
func (o *Outbound) Unfiled() bool { return o.TicketID == 0 && o.MessageSeq == 0 }

// MessageByKey returns the message indexed under a dedupe key ("<id>" or
// "sha256:<hex>"): a mail stored on a ticket, or one we sent. A key of a
// quarantined mail, or none, is ErrNotFound.
func (t *Tx) MessageByKey(key string) (*Message, error) {
	v := t.bucket(bucketMsgIDs).Get([]byte(key))
	ticketID, seq, ok := splitMsgKey(v)
	if !ok || ticketID == 0 {
		return nil, fmt.Errorf("message %s: %w", key, ErrNotFound)
	}
	return t.Message(ticketID, seq)
}

// msgIDsPointingTo lists the msgids keys whose value is v (a full scan:
// only for records written before they remembered their key).
func (t *Tx) msgIDsPointingTo(v []byte) ([][]byte, error) {
	var keys [][]byte
	err := t.bucket(bucketMsgIDs).ForEach(func(k, val []byte) error {
		if bytes.Equal(val, v) {
			keys = append(keys, bytes.Clone(k))
		}
		return nil
	})
	return keys, err
}
