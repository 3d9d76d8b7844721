package store

import (
	"bytes"
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
	// Blob holds the raw bytes; a schema-1 record has them in Raw instead.
	Blob uint64 `json:"blob,omitempty"`
	// Raw is the mail as received. Quarantine stores it in a blob; the
	// record itself keeps it only in schema 1.
	Raw []byte `json:"raw,omitempty"`
	// Key is the dedupe key the mail is indexed under in msgids; "" in
	// records written before it was kept (Unquarantine then searches).
	Key string `json:"key,omitempty"`
}

// Quarantine stores q and its bytes (q.Raw) with the next quarantine ID,
// indexing dedupeKey so a re-fetch of the same mail is recognised.
func (t *Tx) Quarantine(q *Quarantined, dedupeKey string) error {
	blob, err := t.putBlob(q.Raw)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return t.quarantine(q, blob, dedupeKey)
}

// QuarantineStaged is Quarantine for bytes written ahead by DB.Stage;
// q.Raw is ignored.
func (t *Tx) QuarantineStaged(q *Quarantined, s *Staged, dedupeKey string) error {
	if err := t.claim(s); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return t.quarantine(q, s.id, dedupeKey)
}

func (t *Tx) quarantine(q *Quarantined, blob uint64, dedupeKey string) error {
	b := t.bucket(bucketQuarantine)
	id, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	q.ID, q.Blob, q.Key = id, blob, dedupeKey
	rec := *q
	rec.Raw = nil
	if err := putJSON(b, u64(id), &rec); err != nil {
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

// QuarantinedRaw returns a copy of the bytes of quarantined mail id.
func (t *Tx) QuarantinedRaw(id uint64) ([]byte, error) {
	q, err := t.Quarantined(id)
	if err != nil {
		return nil, err
	}
	return q.Raw, nil
}

// Quarantined returns quarantined mail id with its bytes, or ErrNotFound.
func (t *Tx) Quarantined(id uint64) (*Quarantined, error) {
	var q Quarantined
	if err := getJSON(t.bucket(bucketQuarantine), u64(id), &q); err != nil {
		return nil, fmt.Errorf("quarantined %d: %w", id, err)
	}
	if q.Blob != 0 {
		raw, err := t.blob(q.Blob)
		if err != nil {
			return nil, fmt.Errorf("quarantined %d: %w", id, err)
		}
		q.Raw = raw
	}
	return &q, nil
}

// Unquarantine removes quarantined mail id (its record, its bytes and its
// msgids entry) and returns it with its bytes and Key. The caller stores
// the mail elsewhere in the same transaction and indexes Key again
// (IndexLike), so that a re-fetch of the mail still finds it; Check
// reports a key that points nowhere.
func (t *Tx) Unquarantine(id uint64) (*Quarantined, error) {
	q, err := t.Quarantined(id)
	if err != nil {
		return nil, err
	}
	ids := t.bucket(bucketMsgIDs)
	entry := msgKey(0, id)
	var keys [][]byte
	if q.Key != "" && bytes.Equal(ids.Get([]byte(q.Key)), entry) {
		keys = [][]byte{[]byte(q.Key)}
	} else if keys, err = t.msgIDsPointingTo(entry); err != nil {
		return nil, fmt.Errorf("unquarantine %d: %w", id, err)
	}
	q.Key = ""
	for _, k := range keys {
		if q.Key == "" {
			q.Key = string(k)
		}
		if err := ids.Delete(k); err != nil {
			return nil, fmt.Errorf("unquarantine %d: %w", id, err)
		}
	}
	if q.Blob != 0 {
		if err := t.deleteBlob(q.Blob); err != nil {
			return nil, fmt.Errorf("unquarantine %d: %w", id, err)
		}
	}
	if err := t.bucket(bucketQuarantine).Delete(u64(id)); err != nil {
		return nil, fmt.Errorf("unquarantine %d: %w", id, err)
	}
	return q, nil
}

// IndexLike indexes dedupe key under the message that key like points to,
// so that two keys of one mail (the checksum it was quarantined under and
// the Message-ID it was stored under) both find it. A key already indexed
// is left as it is.
func (t *Tx) IndexLike(key, like string) error {
	ids := t.bucket(bucketMsgIDs)
	if key == "" || key == like || ids.Get([]byte(key)) != nil {
		return nil
	}
	v := ids.Get([]byte(like))
	if v == nil {
		return fmt.Errorf("index %s like %s: %w", key, like, ErrNotFound)
	}
	if err := ids.Put([]byte(key), bytes.Clone(v)); err != nil {
		return fmt.Errorf("index %s like %s: %w", key, like, err)
	}
	return nil
}
