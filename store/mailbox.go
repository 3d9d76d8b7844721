package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Checkpoint is how far a mailbox has been committed.
type Checkpoint struct {
	UIDValidity uint32 `json:"uid_validity"`
	LastUID     uint32 `json:"last_uid"`
}

// Checkpoint returns the mailbox's checkpoint; the zero value if none.
func (t *Tx) Checkpoint(mailbox string) (Checkpoint, error) {
	var cp Checkpoint
	err := getJSON(t.bucket(bucketCheckpoints), []byte(mailbox), &cp)
	if errors.Is(err, ErrNotFound) {
		return Checkpoint{}, nil
	}
	if err != nil {
		return cp, fmt.Errorf("checkpoint %s: %w", mailbox, err)
	}
	return cp, nil
}

// AdvanceCheckpoint records that uid of mailbox (at uidValidity) is
// committed. A new UIDVALIDITY replaces the old checkpoint; within one
// UIDVALIDITY the checkpoint only moves forward.
func (t *Tx) AdvanceCheckpoint(mailbox string, uidValidity, uid uint32) error {
	cp, err := t.Checkpoint(mailbox)
	if err != nil {
		return err
	}
	if cp.UIDValidity == uidValidity && cp.LastUID >= uid {
		return nil
	}
	if cp.UIDValidity != uidValidity {
		cp = Checkpoint{UIDValidity: uidValidity}
	}
	cp.LastUID = uid
	return putJSON(t.bucket(bucketCheckpoints), []byte(mailbox), cp)
}

func pendingFlagPrefix(mailbox string, uidValidity uint32) []byte {
	k := make([]byte, 0, len(mailbox)+5)
	k = append(k, mailbox...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uidValidity)
}

// AddPendingFlag records that a committed mail still has to be flagged
// \Seen (or moved) on the server, and, when quarantined, marked with the
// quarantine keyword too: a crash before the flags are set must not lose
// the mark a person looks for in their mail client.
func (t *Tx) AddPendingFlag(mailbox string, uidValidity, uid uint32, quarantined bool) error {
	k := binary.BigEndian.AppendUint32(pendingFlagPrefix(mailbox, uidValidity), uid)
	var v []byte
	if quarantined {
		v = pendingQuarantined
	}
	return t.bucket(bucketPendingFlags).Put(k, v)
}

// pendingQuarantined is the value of a pending flag whose mail was
// quarantined (schema 1 to 4 stored every value empty: not quarantined).
var pendingQuarantined = []byte{'q'}

// PendingFlag is a committed mail not yet flagged on the server.
type PendingFlag struct {
	UID         uint32
	Quarantined bool
}

// PendingFlags returns the mails of mailbox at uidValidity still to be
// flagged, in UID order. Entries of an older UIDVALIDITY are dropped: those
// UIDs mean nothing any more, and the re-fetch of that mailbox dedupes.
func (db *DB) PendingFlags(mailbox string, uidValidity uint32) ([]PendingFlag, error) {
	var pending []PendingFlag
	err := db.Update(func(tx *Tx) error {
		b := tx.bucket(bucketPendingFlags)
		box := append([]byte(mailbox), 0)
		want := pendingFlagPrefix(mailbox, uidValidity)
		var stale [][]byte
		c := b.Cursor()
		for k, v := c.Seek(box); k != nil && bytes.HasPrefix(k, box); k, v = c.Next() {
			if len(k) != len(want)+4 {
				continue
			}
			if !bytes.HasPrefix(k, want) {
				stale = append(stale, bytes.Clone(k))
				continue
			}
			pending = append(pending, PendingFlag{UID: binary.BigEndian.Uint32(k[len(want):]), Quarantined: bytes.Equal(v, pendingQuarantined)})
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pending flags of %s: %w", mailbox, err)
	}
	return pending, nil
}

// ClearPendingFlags forgets pending flags once the server has them.
func (db *DB) ClearPendingFlags(mailbox string, uidValidity uint32, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	err := db.Update(func(tx *Tx) error {
		b := tx.bucket(bucketPendingFlags)
		prefix := pendingFlagPrefix(mailbox, uidValidity)
		for _, uid := range uids {
			if err := b.Delete(binary.BigEndian.AppendUint32(bytes.Clone(prefix), uid)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("clear pending flags of %s: %w", mailbox, err)
	}
	return nil
}

// MailboxCheckpoint reads a checkpoint in its own transaction.
func (db *DB) MailboxCheckpoint(mailbox string) (Checkpoint, error) {
	var cp Checkpoint
	err := db.View(func(tx *Tx) error {
		var err error
		cp, err = tx.Checkpoint(mailbox)
		return err
	})
	return cp, err
}
