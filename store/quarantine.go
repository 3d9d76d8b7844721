package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// Quarantined is a mail that could not become part of a ticket, kept raw
// with the reason, so an operator can look at it and replay or release it.
type Quarantined struct {
	ID          uint64    `json:"id"`
	Mailbox     string    `json:"mailbox"`
	UIDValidity uint32    `json:"uid_validity"`
	UID         uint32    `json:"uid"`
	Reason      string    `json:"reason"`
	From        string    `json:"from,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	Size        int       `json:"size"`
	ReceivedAt  time.Time `json:"received_at"`
	Raw         []byte    `json:"raw,omitempty"`
}

// Quarantine stores q with the next quarantine ID, indexing dedupeKey so a
// re-fetch of the same mail is recognised.
func (t *Tx) Quarantine(q *Quarantined, dedupeKey string) error {
	b := t.bucket(bucketQuarantine)
	id, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	q.ID = id
	if err := putJSON(b, u64(id), q); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	if dedupeKey != "" {
		// A quarantined mail is indexed under ticket 0, a ticket that never exists.
		if err := t.bucket(bucketMsgIDs).Put([]byte(dedupeKey), msgKey(0, id)); err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
	}
	return nil
}

// IsQuarantined reports whether a dedupe key belongs to a quarantined mail.
func (t *Tx) IsQuarantined(key string) bool {
	ticketID, _, ok := splitMsgKey(t.bucket(bucketMsgIDs).Get([]byte(key)))
	return ok && ticketID == 0
}

// ListQuarantine returns the quarantined mails without their raw bytes.
func (t *Tx) ListQuarantine() ([]Quarantined, error) {
	var out []Quarantined
	err := t.bucket(bucketQuarantine).ForEach(func(k, v []byte) error {
		var q Quarantined
		if err := json.Unmarshal(v, &q); err != nil {
			return err
		}
		q.Raw = nil
		out = append(out, q)
		return nil
	})
	return out, err
}
