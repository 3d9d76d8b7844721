package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// benchOutbox fills a database with n queued auto-replies of about 1 KB.
func benchOutbox(b *testing.B, n int) (*DB, []uint64) {
	b.Helper()
	db, err := Open(filepath.Join(b.TempDir(), "hd.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	raw := make([]byte, 1200)
	var ids []uint64
	err = db.Update(func(tx *Tx) error {
		for i := range n {
			tk := &Ticket{Subject: "s", Status: StatusNew, Requester: fmt.Sprintf("c%d@example.org", i), CreatedAt: t0, UpdatedAt: t0}
			if err := tx.CreateTicket(tk); err != nil {
				return err
			}
			o, err := tx.Enqueue(&Message{TicketID: tk.ID, MessageID: fmt.Sprintf("ack%d@h", i), Kind: KindAutoreply,
				Text: "Thank you for your message. We will get back to you shortly.", From: "support@example.com", To: []string{tk.Requester}},
				"support@example.com", []string{tk.Requester}, raw, t0)
			if err != nil {
				return err
			}
			ids = append(ids, o.ID)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return db, ids
}

// BenchmarkOutboxDue is the cost per item of listing due mail.
func BenchmarkOutboxDue(b *testing.B) {
	db, _ := benchOutbox(b, 1000)
	b.ResetTimer()
	for range b.N {
		if due, err := db.OutboxDue(t0, 100); err != nil || len(due) != 100 {
			b.Fatal(len(due), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/item")
}

// BenchmarkOutboxSentBatch is the cost per item of recording deliveries
// 100 at a time (fsync off: the CPU cost).
func BenchmarkOutboxSentBatch(b *testing.B) {
	// A pool refilled between rounds: setting up b.N×100 items at once
	// would take longer than the benchmark.
	const pool = 5000
	var db *DB
	var ids []uint64
	b.StopTimer()
	for i := range b.N {
		if i%(pool/100) == 0 {
			db, ids = benchOutbox(b, pool) // closed at cleanup
		}
		batch := make([]SentAt, 100)
		for j := range batch {
			batch[j] = SentAt{ID: ids[i%(pool/100)*100+j], At: t0.Add(time.Second)}
		}
		b.StartTimer()
		if err := db.OutboxSentBatch(batch); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/item")
}
