package store

import (
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
//   - every queued or dead outbound mail points to an existing message;
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

		raw := tx.bucket(bucketRaw)
		err = tx.bucket(bucketMessages).ForEach(func(k, _ []byte) error {
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
			if raw.Get(k) == nil {
				bad("message %d/%d: raw bytes missing", ticketID, seq)
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
				if tx.bucket(bucketMessages).Get(msgKey(o.TicketID, o.MessageSeq)) == nil {
					bad("%s %d: message %d/%d missing", name, o.ID, o.TicketID, o.MessageSeq)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	return errors.Join(errs...)
}
