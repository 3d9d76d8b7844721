package store

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkGroupCommit stores groups of 150 mails of 26 KB (a ticket and a
// message each) in one transaction, fsync off: the CPU cost of a group
// commit per mail.
func BenchmarkGroupCommit(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "hd.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	raw := make([]byte, 26<<10)
	text := strings.Repeat("My printer shows error 49 since this morning. ", 8<<10/46)
	b.ResetTimer()
	n := 0
	for range b.N {
		err := db.Update(func(tx *Tx) error {
			for range 150 {
				n++
				tk := &Ticket{Subject: "s", Status: StatusNew, Requester: fmt.Sprintf("c%d@example.org", n%5000), CreatedAt: t0, UpdatedAt: t0}
				if err := tx.CreateTicket(tk); err != nil {
					return err
				}
				m := &Message{TicketID: tk.ID, MessageID: fmt.Sprintf("m%d@x", n), Text: text, From: tk.Requester}
				if err := tx.AddMessage(m, raw, "<"+m.MessageID+">"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*150), "ns/mail")
}
