package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Check verifies the invariants that hold between buckets and returns every
// violation found, joined. A healthy database returns nil.
//
//   - every ticket is indexed once under its status and its requester, and
//     every index entry points to a ticket with that value;
//   - every message belongs to an existing ticket, has raw bytes, and a
//     ticket's message_count equals its number of messages;
//   - every msgids entry points to an existing message or quarantined mail;
//   - every message's raw bytes exist: its blob (schema 2) or its entry in
//     raw (schema 1); every blob belongs to exactly one message, quarantined
//     mail or staging, and a claimed blob's chunks are numbered 0, 1, …;
//   - every queued or dead outbound mail points to an existing message and
//     shares its blob, or is unfiled (no message, its bytes inline), and
//     every queued one is in outbox_due under its next attempt, which lists
//     nothing else; every deliveries entry belongs to an existing message;
//   - every hold parses and is stored under its own kind and address;
//   - a quarantined mail's key (when it has one) is indexed to it;
//   - no ticket ID exceeds the ticket sequence;
//   - a ticket's merged_into names another existing ticket, and following
//     merged_into from any ticket ends at an unmerged one (no cycle).
func (db *DB) Check() error {
	var errs []error
	bad := func(format string, args ...any) {
		if len(errs) < 100 {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	err := db.View(func(tx *Tx) error {
		tickets := tx.bucket(bucketTickets)
		seq := tickets.Sequence()
		counts := make(map[uint64]int)
		err := tickets.ForEach(func(k, v []byte) error {
			id := binary.BigEndian.Uint64(k)
			var tk Ticket
			if err := json.Unmarshal(v, &tk); err != nil {
				bad("ticket %d: %v", id, err)
				return nil
			}
			if tk.ID != id {
				bad("ticket key %d holds id %d", id, tk.ID)
			}
			if id > seq {
				bad("ticket %d above sequence %d", id, seq)
			}
			if tx.bucket(bucketByStatus).Get(indexKey(tk.Status, id)) == nil {
				bad("ticket %d not indexed under status %q", id, tk.Status)
			}
			if tx.bucket(bucketByRequester).Get(indexKey(tk.Requester, id)) == nil {
				bad("ticket %d not indexed under requester %q", id, tk.Requester)
			}
			counts[id] = 0
			return nil
		})
		if err != nil {
			return err
		}
		err = tickets.ForEach(func(k, v []byte) error {
			id := binary.BigEndian.Uint64(k)
			for hops, cur := 0, id; ; hops++ {
				var tk Ticket
				if json.Unmarshal(tickets.Get(u64(cur)), &tk) != nil || tk.MergedInto == 0 {
					return nil
				}
				switch {
				case tk.MergedInto == cur:
					bad("ticket %d: merged into itself", cur)
					return nil
				case tickets.Get(u64(tk.MergedInto)) == nil:
					bad("ticket %d: merged into missing ticket %d", cur, tk.MergedInto)
					return nil
				case hops > len(counts):
					bad("ticket %d: merged_into chain has a cycle", id)
					return nil
				}
				cur = tk.MergedInto
			}
		})
		if err != nil {
			return err
		}
		checkIndex := func(name []byte, field func(*Ticket) string) {
			_ = tx.bucket(name).ForEach(func(k, _ []byte) error {
				i := len(k) - 9
				if i < 0 || k[i] != 0 {
					bad("%s: malformed key %q", name, k)
					return nil
				}
				id := binary.BigEndian.Uint64(k[i+1:])
				tk, err := tx.Ticket(id)
				if err != nil {
					bad("%s: entry for missing ticket %d", name, id)
				} else if field(tk) != string(k[:i]) {
					bad("%s: stale entry %q for ticket %d", name, k[:i], id)
				}
				return nil
			})
		}
		checkIndex(bucketByStatus, func(t *Ticket) string { return t.Status })
		checkIndex(bucketByRequester, func(t *Ticket) string { return t.Requester })

		blobs, err := tx.blobChunks()
		if err != nil {
			return err
		}
		owners := make(map[uint64]string, len(blobs))
		own := func(blob uint64, who string) {
			if blob == 0 {
				return
			}
			if prev, dup := owners[blob]; dup {
				bad("blob %d belongs to both %s and %s", blob, prev, who)
				return
			}
			owners[blob] = who
			if _, ok := blobs[blob]; !ok {
				bad("%s: blob %d missing", who, blob)
			}
		}
		raw := tx.bucket(bucketRaw)
		msgBlobs := make(map[string]uint64)
		err = tx.bucket(bucketMessages).ForEach(func(k, v []byte) error {
			ticketID, seq, ok := splitMsgKey(k)
			if !ok {
				bad("messages: malformed key %x", k)
				return nil
			}
			if _, exists := counts[ticketID]; !exists {
				bad("message %d/%d: ticket missing", ticketID, seq)
				return nil
			}
			counts[ticketID]++
			var m Message
			if err := tx.decodeMessage(v, &m); err != nil {
				bad("message %d/%d: %v", ticketID, seq, err)
				return nil
			}
			msgBlobs[string(k)] = m.Blob
			who := fmt.Sprintf("message %d/%d", ticketID, seq)
			if m.Blob != 0 {
				own(m.Blob, who)
			} else if raw.Get(k) == nil {
				bad("%s: raw bytes missing", who)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for id, n := range counts {
			tk, err := tx.Ticket(id)
			if err == nil && tk.MessageCount != n {
				bad("ticket %d: message_count %d, has %d messages", id, tk.MessageCount, n)
			}
		}
		err = tx.bucket(bucketMsgIDs).ForEach(func(k, v []byte) error {
			ticketID, seq, ok := splitMsgKey(v)
			switch {
			case !ok:
				bad("msgids %q: malformed value", k)
			case ticketID == 0:
				if tx.bucket(bucketQuarantine).Get(u64(seq)) == nil {
					bad("msgids %q: quarantined mail %d missing", k, seq)
				}
			case tx.bucket(bucketMessages).Get(v) == nil:
				bad("msgids %q: message %d/%d missing", k, ticketID, seq)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, name := range [][]byte{bucketOutbox, bucketDead} {
			err = tx.bucket(name).ForEach(func(k, v []byte) error {
				var o Outbound
				if err := json.Unmarshal(v, &o); err != nil {
					bad("%s %x: %v", name, k, err)
					return nil
				}
				mk := msgKey(o.TicketID, o.MessageSeq)
				if o.Unfiled() {
					if o.Blob != 0 {
						bad("%s %d: unfiled mail with blob %d", name, o.ID, o.Blob)
					}
				} else if tx.bucket(bucketMessages).Get(mk) == nil {
					bad("%s %d: message %d/%d missing", name, o.ID, o.TicketID, o.MessageSeq)
				} else if o.Blob != msgBlobs[string(mk)] {
					bad("%s %d: blob %d, its message's is %d", name, o.ID, o.Blob, msgBlobs[string(mk)])
				}
				if o.Blob == 0 && o.Raw == nil {
					bad("%s %d: no bytes", name, o.ID)
				}
				if string(name) == string(bucketOutbox) && tx.bucket(bucketOutboxDue).Get(dueKey(o.NextAttempt, o.ID)) == nil {
					bad("outbox %d: not in outbox_due at its next attempt %v", o.ID, o.NextAttempt)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		err = tx.bucket(bucketDeliveries).ForEach(func(k, v []byte) error {
			if _, ok := msgBlobs[string(k)]; !ok {
				bad("deliveries: entry for missing message %x", k)
			}
			var d Delivery
			if err := json.Unmarshal(v, &d); err != nil {
				bad("deliveries %x: %v", k, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.bucket(bucketOutboxDue).ForEach(func(k, _ []byte) error {
			if len(k) != 16 {
				bad("outbox_due: malformed key %x", k)
				return nil
			}
			id := binary.BigEndian.Uint64(k[8:])
			o, err := tx.outboxRecord(id)
			if err != nil {
				bad("outbox_due: entry for missing outbox %d", id)
			} else if !bytes.Equal(dueKey(o.NextAttempt, id), k) {
				bad("outbox_due: stale entry for outbox %d", id)
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.bucket(bucketQuarantine).ForEach(func(k, v []byte) error {
			var q Quarantined
			if err := json.Unmarshal(v, &q); err != nil {
				bad("quarantine %x: %v", k, err)
				return nil
			}
			own(q.Blob, fmt.Sprintf("quarantined mail %d", q.ID))
			if q.Key != "" && !bytes.Equal(tx.bucket(bucketMsgIDs).Get([]byte(q.Key)), msgKey(0, q.ID)) {
				bad("quarantined mail %d: its key %q does not point to it", q.ID, q.Key)
			}
			return nil
		})
		if err != nil {
			return err
		}
		tx.checkHolds(bad)
		err = tx.bucket(bucketStaged).ForEach(func(k, _ []byte) error {
			if len(k) != 8 {
				bad("staged: malformed key %x", k)
				return nil
			}
			id := binary.BigEndian.Uint64(k)
			if _, ok := owners[id]; ok {
				bad("staged blob %d is also claimed by %s", id, owners[id])
				return nil
			}
			// A blob being staged may not have all its chunks yet.
			owners[id] = "staging"
			return nil
		})
		if err != nil {
			return err
		}
		for id, chunks := range blobs {
			if _, ok := owners[id]; !ok {
				bad("blob %d belongs to nothing", id)
			} else if owners[id] != "staging" && chunks.gap {
				bad("blob %d: chunks not numbered 0 to %d", id, chunks.n-1)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	return errors.Join(errs...)
}

// blobInfo is what Check needs to know of a blob's chunks.
type blobInfo struct {
	n   uint32 // chunks seen
	gap bool   // a chunk number out of sequence
}

// blobChunks lists every blob with its chunk count.
func (t *Tx) blobChunks() (map[uint64]*blobInfo, error) {
	out := make(map[uint64]*blobInfo)
	err := t.bucket(bucketBlobs).ForEach(func(k, _ []byte) error {
		if len(k) != 12 {
			return fmt.Errorf("blobs: malformed key %x", k)
		}

		id, chunk := binary.BigEndian.Uint64(k), binary.BigEndian.Uint32(k[8:])
		bi := out[id]
		if bi == nil {
			bi = &blobInfo{}
			out[id] = bi
		}
		if chunk != bi.n {
			bi.gap = true
		}
		bi.n++
		return nil
	})
	return out, err
}
