package store

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// benchText is about n bytes of mail text as threading extracts it: short
// lines, a quoted part with addresses in angle brackets, some non-ASCII.
func benchText(n int) string {
	const para = "Hello support team,\n\nsince this morning the printer on the 3rd floor shows \"error 49\" and\n" +
		"prints nothing. We switched it off & on again – no change. Grüße aus Köln!\n\n" +
		"> On Tue, 24 Nov 2026, Support <support@example.com> wrote:\n> Please tell us the model.\n\n"
	return strings.Repeat(para, n/len(para)+1)[:n]
}

// benchMessage is an inbound customer mail with every usual field set.
func benchMessage(ticketID uint64, i int, text string) *Message {
	return &Message{
		TicketID: ticketID, MessageID: fmt.Sprintf("m%d.20261124@mail.example.org", i),
		Direction: DirectionIn, Kind: KindCustomer,
		From: "ann@example.org", FromName: "Ann Example",
		To: []string{"support@example.com"}, Cc: []string{"bob@example.org"},
		Date: t0, Subject: "Printer on 3rd floor offline", Text: text,
		Attachments: []Attachment{{Filename: "error.jpg", ContentType: "image/jpeg", Size: 48213}},
		InReplyTo:   []string{"ack1.t1@helpdesk.example.com"},
		References:  []string{"root@mail.example.org", "ack1.t1@helpdesk.example.com"},
		MatchedBy:   "token", Mailbox: "support", UIDValidity: 7, UID: uint32(i + 1),
		Size: 26000, RawSHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		ReceivedAt: t0,
	}
}

func openBench(b *testing.B) *DB {
	b.Helper()
	db, err := Open(filepath.Join(b.TempDir(), "hd.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

// inGroups runs op b.N times, in transactions of up to 100 ops (the group
// commit of ingest), fsync off: the CPU cost of an op with its share of the
// commit.
func inGroups(b *testing.B, db *DB, op func(tx *Tx, i int) error) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		err := db.Update(func(tx *Tx) error {
			for j := 0; j < 100 && i < b.N; j, i = j+1, i+1 {
				if err := op(tx, i); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddMessage stores a mail with 20 KB of text (and 2 KB of raw
// bytes, so the text dominates) on an existing ticket.
func BenchmarkAddMessage(b *testing.B) {
	db := openBench(b)
	var ticketID uint64
	if err := db.Update(func(tx *Tx) error {
		tk := &Ticket{Subject: "s", Status: StatusOpen, Requester: "ann@example.org", CreatedAt: t0, UpdatedAt: t0}
		err := tx.CreateTicket(tk)
		ticketID = tk.ID
		return err
	}); err != nil {
		b.Fatal(err)
	}
	text, raw := benchText(20<<10), make([]byte, 2<<10)
	inGroups(b, db, func(tx *Tx, i int) error {
		m := benchMessage(ticketID, i, text)
		return tx.AddMessage(m, raw, "<"+m.MessageID+">")
	})
}

// BenchmarkMessageRead reads one stored message with 20 KB of text.
func BenchmarkMessageRead(b *testing.B) {
	db := openBench(b)
	var ticketID, seq uint64
	if err := db.Update(func(tx *Tx) error {
		tk := &Ticket{Subject: "s", Status: StatusOpen, Requester: "ann@example.org", CreatedAt: t0, UpdatedAt: t0}
		if err := tx.CreateTicket(tk); err != nil {
			return err
		}
		m := benchMessage(tk.ID, 1, benchText(20<<10))
		ticketID = tk.ID
		err := tx.AddMessage(m, []byte("raw"), "<"+m.MessageID+">")
		seq = m.Seq
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	err := db.View(func(tx *Tx) error {
		for range b.N {
			m, err := tx.Message(ticketID, seq)
			if err != nil {
				return err
			}
			if len(m.Text) != 20<<10 {
				return fmt.Errorf("text of %d bytes", len(m.Text))
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkTicketRoundTrip is what ingest does to a ticket per new mail:
// create it, read it back, store it changed.
func BenchmarkTicketRoundTrip(b *testing.B) {
	db := openBench(b)
	inGroups(b, db, func(tx *Tx, i int) error {
		tk := &Ticket{Subject: "Printer on 3rd floor offline", Status: StatusNew, Priority: "normal", Mailbox: "support",
			Requester: fmt.Sprintf("c%d@example.org", i%5000), RequesterName: "Ann Example", CC: []string{"bob@example.org"},
			CreatedAt: t0, UpdatedAt: t0, LastCustomerMessageID: fmt.Sprintf("m%d@mail.example.org", i),
			ThreadIDs: []string{fmt.Sprintf("m%d@mail.example.org", i)}}
		if err := tx.CreateTicket(tk); err != nil {
			return err
		}
		got, err := tx.Ticket(tk.ID)
		if err != nil {
			return err
		}
		got.MessageCount++
		return tx.UpdateTicket(got)
	})
}

// BenchmarkEnqueueAck queues an acknowledgement of 1.2 KB (its message with
// the text, the blob, the outbox record and its due entry) on an existing
// ticket, as ingest does for every new ticket.
func BenchmarkEnqueueAck(b *testing.B) {
	db := openBench(b)
	var ticketID uint64
	if err := db.Update(func(tx *Tx) error {
		tk := &Ticket{Subject: "s", Status: StatusNew, Requester: "ann@example.org", CreatedAt: t0, UpdatedAt: t0}
		err := tx.CreateTicket(tk)
		ticketID = tk.ID
		return err
	}); err != nil {
		b.Fatal(err)
	}
	text := benchText(900)
	raw := make([]byte, 1200)
	inGroups(b, db, func(tx *Tx, i int) error {
		m := &Message{TicketID: ticketID, MessageID: fmt.Sprintf("ack%d.t1@helpdesk.example.com", i), Kind: KindAutoreply,
			From: "support@example.com", To: []string{"ann@example.org"}, Date: t0, Subject: "[Ticket#1] Re: Printer",
			Text: text, Attachments: []Attachment{}, InReplyTo: []string{"m1@mail.example.org"},
			References: []string{"m1@mail.example.org"}, Size: len(raw), ReceivedAt: t0}
		_, err := tx.Enqueue(m, "support@example.com", []string{"ann@example.org"}, raw, t0)
		return err
	})
}

// BenchmarkMessageRecord compares the record layouts of a message with
// 20 KB of text, without bbolt: encoding/json's (legacy, still read), text
// first (schema 4, still read) and binary (written since schema 5).
func BenchmarkMessageRecord(b *testing.B) {
	m := benchMessage(1, 1, benchText(20<<10))
	m.Seq, m.Blob = 1, 1
	legacy, err := json.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	binaryRec, err := encodeMessage(m)
	if err != nil {
		b.Fatal(err)
	}
	textFirst := textFirstRecord(b, m)
	b.Run("encode/legacy", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/binary", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := encodeMessage(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	for name, v := range map[string][]byte{"legacy": legacy, "text-first": textFirst, "binary": binaryRec} {
		b.Run("decode/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var got Message
				if err := decodeMessage(v, &got); err != nil || len(got.Text) != len(m.Text) {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTicketCount compares two ways of adding one to a ticket's
// message count: decoding and encoding the whole ticket, as before, and
// rewriting the count at the end of the record (countMessage).
func BenchmarkTicketCount(b *testing.B) {
	tk := &Ticket{ID: 42, Subject: "Printer on 3rd floor offline", Status: StatusOpen, Priority: "normal", Mailbox: "support",
		Requester: "ann@example.org", RequesterName: "Ann Example", CC: []string{"bob@example.org"},
		CreatedAt: t0, UpdatedAt: t0, MessageCount: 3, LastCustomerMessageID: "m3@mail.example.org",
		ThreadIDs: []string{"m1@mail.example.org", "ack1.t42@helpdesk.example.com", "m3@mail.example.org"}}
	b.Run("decode-encode", func(b *testing.B) {
		v, _ := json.Marshal(tk)
		b.ReportAllocs()
		for b.Loop() {
			var got Ticket
			if err := json.Unmarshal(v, &got); err != nil {
				b.Fatal(err)
			}
			got.MessageCount++
			if _, err := json.Marshal(&got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("count-last", func(b *testing.B) {
		db := openBench(b)
		if err := db.Update(func(tx *Tx) error { return putTicket(tx.bucket(bucketTickets), tk) }); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		// One transaction: what is measured is the rewrite, not a commit.
		err := db.Update(func(tx *Tx) error {
			for range b.N {
				if err := tx.countMessage(tk.ID); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	})
}
