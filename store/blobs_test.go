package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"testing/iotest"
	"time"
)

// bigRaw is n bytes that differ chunk to chunk, so a chunk out of place
// shows.
func bigRaw(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/blobChunk)
	}
	return b
}

func TestBigMessageIsChunkedAndReadBack(t *testing.T) {
	db := openTest(t)
	raw := bigRaw(2*blobChunk + 123)
	var tk *Ticket
	err := db.Update(func(tx *Tx) error {
		tk = newTicket(t, tx, "ann@example.org", StatusNew)
		return tx.AddMessage(&Message{TicketID: tk.ID, MessageID: "big@x"}, raw, "<big@x>")
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		got, err := tx.Raw(tk.ID, 1)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("raw: %d bytes, %v; want %d bytes back", len(got), err, len(raw))
		}
		if n, _ := tx.blobSize(1); n != len(raw) {
			t.Errorf("blob size %d", n)
		}
		return nil
	})
}

func TestStagedMailIsClaimedOnceAndOrphansAreRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw := bigRaw(stageThreshold + 3*blobChunk/2)
	if !NeedsStaging(len(raw)) || NeedsStaging(1000) {
		t.Fatal("NeedsStaging disagrees with the threshold")
	}
	kept, err := db.Stage(raw)
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := db.Stage(bigRaw(blobChunk))
	if err != nil {
		t.Fatal(err)
	}
	dropped, err := db.Stage([]byte("a duplicate"))
	if err != nil {
		t.Fatal(err)
	}
	var tk *Ticket
	err = db.Update(func(tx *Tx) error {
		tk = newTicket(t, tx, "ann@example.org", StatusNew)
		return tx.AddStagedMessage(&Message{TicketID: tk.ID, MessageID: "big@x", Size: len(raw)}, kept, "<big@x>")
	})
	if err != nil {
		t.Fatal(err)
	}
	// A second claim of the same bytes must fail, not share them.
	err = db.Update(func(tx *Tx) error {
		return tx.AddStagedMessage(&Message{TicketID: tk.ID, MessageID: "again@x"}, kept, "<again@x>")
	})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("second claim: %v, want ErrNotFound", err)
	}
	if err := db.Unstage(dropped); err != nil {
		t.Fatal(err)
	}
	if err := db.Unstage(kept); err != nil { // claimed: left alone
		t.Fatal(err)
	}
	if err := db.Check(); err != nil {
		t.Fatalf("Check with a blob still staged: %v", err)
	}
	db.Close()

	// The orphan (a crash between Stage and the claim) goes at the next Open.
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if _, ok := tx.blobSize(orphan.id); ok {
			t.Error("orphaned staged blob survived Open")
		}
		if _, ok := tx.blobSize(dropped.id); ok {
			t.Error("unstaged blob survived Unstage")
		}
		got, err := tx.Raw(tk.ID, 1)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("claimed raw: %d bytes, %v", len(got), err)
		}
		return nil
	})
}

func TestQuarantineKeepsBytesInABlob(t *testing.T) {
	db := openTest(t)
	raw := bigRaw(stageThreshold + 10)
	s, err := db.Stage(raw)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *Tx) error {
		if err := tx.Quarantine(&Quarantined{Mailbox: "support", UID: 1, Reason: "unparseable", Raw: []byte("junk")}, "sha256:01"); err != nil {
			return err
		}
		return tx.QuarantineStaged(&Quarantined{Mailbox: "support", UID: 2, Reason: "too large"}, s, "sha256:02")
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if got, err := tx.QuarantinedRaw(1); err != nil || string(got) != "junk" {
			t.Errorf("quarantined 1: %q %v", got, err)
		}
		if got, err := tx.QuarantinedRaw(2); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("quarantined 2: %d bytes %v", len(got), err)
		}
		// The record itself stays small: the bytes are not in its JSON.
		if v := tx.bucket(bucketQuarantine).Get(u64(2)); len(v) > 1000 {
			t.Errorf("quarantine record is %d bytes", len(v))
		}
		return nil
	})
}

func TestOutboxDueFollowsTheIndex(t *testing.T) {
	db := openTest(t)
	var ids []uint64
	err := db.Update(func(tx *Tx) error {
		tk := newTicket(t, tx, "ann@example.org", StatusNew)
		for i, id := range []string{"a@h", "b@h", "c@h"} {
			o, err := tx.Enqueue(&Message{TicketID: tk.ID, MessageID: id}, "support@example.com",
				[]string{"ann@example.org"}, []byte("raw "+id), t0.Add(time.Duration(i)*time.Second))
			if err != nil {
				return err
			}
			ids = append(ids, o.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The first one failed and waits an hour: the others come first.
	if err := db.OutboxRetry(ids[0], 1, t0.Add(time.Hour), "421 busy"); err != nil {
		t.Fatal(err)
	}
	due, err := db.OutboxDue(t0.Add(time.Minute), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 2 || due[0].ID != ids[1] || due[1].ID != ids[2] || string(due[0].Raw) != "raw b@h" {
		t.Fatalf("due at +1m: %+v", due)
	}
	if due, _ := db.OutboxDue(t0.Add(time.Minute), 1); len(due) != 1 || due[0].ID != ids[1] {
		t.Errorf("limit 1: %+v", due)
	}
	if due, _ := db.OutboxDueAfter(t0.Add(time.Minute), due[0].NextAttempt, due[0].ID, 0); len(due) != 1 || due[0].ID != ids[2] {
		t.Errorf("after the first: %+v", due)
	}
	if due, _ := db.OutboxDueAfter(t0.Add(time.Minute), due[1].NextAttempt, due[1].ID, 0); len(due) != 0 {
		t.Errorf("after the last: %+v", due)
	}
	// Skipping the first due one: the limit counts only what is listed.
	skip := func(id uint64) bool { return id == ids[1] }
	if due, skipped, err := db.OutboxDueSkipping(t0.Add(time.Minute), 1, skip); err != nil || skipped != 1 || len(due) != 1 || due[0].ID != ids[2] || string(due[0].Raw) != "raw c@h" {
		t.Errorf("skipping %d: %+v, skipped %d, %v", ids[1], due, skipped, err)
	}
	if next, ok, err := db.OutboxNextDue(); err != nil || !ok || !next.Equal(t0.Add(time.Second)) {
		t.Errorf("next due %v %v %v", next, ok, err)
	}
	// A batch records both; a repeat of it is harmless.
	batch := []SentAt{{ids[1], t0.Add(time.Minute)}, {ids[2], t0.Add(time.Minute)}}
	if err := db.OutboxSentBatch(batch); err != nil {
		t.Fatal(err)
	}
	if err := db.OutboxSentBatch(batch); err != nil {
		t.Errorf("repeated batch: %v", err)
	}
	if next, ok, _ := db.OutboxNextDue(); !ok || !next.Equal(t0.Add(time.Hour)) {
		t.Errorf("next due after the batch: %v %v", next, ok)
	}
	if due, _ := db.OutboxDue(t0.Add(2*time.Hour), 0); len(due) != 1 || due[0].Attempts != 1 || string(due[0].Raw) != "raw a@h" {
		t.Errorf("due later: %+v", due)
	}
	db.View(func(tx *Tx) error {
		m, err := tx.Message(1, 3)
		if err != nil || m.Delivery == nil || m.Delivery.Status != "sent" {
			t.Errorf("message of a batch-sent mail: %+v %v", m, err)
		}
		// The record does not carry the bytes a second time.
		if v := tx.bucket(bucketOutbox).Get(u64(ids[0])); bytes.Contains(v, []byte(`"raw"`)) {
			t.Errorf("outbox record holds the raw bytes: %s", v)
		}
		return nil
	})
}

func TestAllowCostStaysFlatForLargeLimits(t *testing.T) {
	db := openTest(t)
	allowed := 0
	err := db.Update(func(tx *Tx) error {
		for i := range 1200 {
			ok, err := tx.Allow("ack:*", t0.Add(time.Duration(i)*time.Second), time.Hour, 1000)
			if err != nil {
				return err
			}
			if ok {
				allowed++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if allowed != 1000 {
		t.Errorf("allowed %d of 1200 within the hour, want 1000", allowed)
	}
	db.View(func(tx *Tx) error {
		if v := tx.bucket(bucketRateLimit).Get([]byte("ack:*")); len(v) > 600 {
			t.Errorf("rate state is %d bytes after 1,000 hits: it grows with the limit", len(v))
		}
		return nil
	})
	// An hour and a slot after the first hits, they are forgotten.
	db.Update(func(tx *Tx) error {
		ok, err := tx.Allow("ack:*", t0.Add(time.Hour+2*time.Minute), time.Hour, 1000)
		if err != nil || !ok {
			t.Errorf("after the window: %v %v", ok, err)
		}
		return nil
	})
}

func TestAllowReadsSchema1Hits(t *testing.T) {
	db := openTest(t)
	old, _ := json.Marshal(rateState{Hits: []time.Time{t0, t0.Add(time.Minute)}})
	db.Update(func(tx *Tx) error { return tx.bucket(bucketRateLimit).Put([]byte("ack:ann"), old) })
	db.Update(func(tx *Tx) error {
		if ok, _ := tx.Allow("ack:ann", t0.Add(2*time.Minute), time.Hour, 2); ok {
			t.Error("schema-1 hits not counted")
		}
		// A shorter window (a new configuration) keeps the hits it has.
		if ok, _ := tx.Allow("ack:ann", t0.Add(3*time.Minute), 30*time.Minute, 2); ok {
			t.Error("hits lost when the window changed")
		}
		if ok, _ := tx.Allow("ack:ann", t0.Add(2*time.Hour), 30*time.Minute, 2); !ok {
			t.Error("hits never expire after a window change")
		}
		return nil
	})
}

func TestDeliveryStateOverlayAndUpdateMessage(t *testing.T) {
	db := openTest(t)
	var o *Outbound
	err := db.Update(func(tx *Tx) error {
		tk := newTicket(t, tx, "ann@example.org", StatusNew)
		var err error
		o, err = tx.Enqueue(&Message{TicketID: tk.ID, MessageID: "ack@h"}, "support@example.com", []string{"ann@example.org"}, []byte("raw"), t0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.OutboxSent(o.ID, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	status := func() string {
		var s string
		db.View(func(tx *Tx) error {
			m, err := tx.Message(o.TicketID, o.MessageSeq)
			msgs, err2 := tx.Messages(o.TicketID)
			if err != nil || err2 != nil || len(msgs) != 1 || m.Delivery == nil || msgs[0].Delivery == nil || msgs[0].Delivery.Status != m.Delivery.Status {
				t.Fatalf("message %+v %v, messages %+v %v", m, err, msgs, err2)
			}
			s = m.Delivery.Status
			return nil
		})
		return s
	}
	if got := status(); got != "sent" {
		t.Fatalf("after Sent: %q", got)
	}
	// A later change of the message itself (a bounce) wins over the
	// recorded state.
	err = db.Update(func(tx *Tx) error {
		m, err := tx.Message(o.TicketID, o.MessageSeq)
		if err != nil {
			return err
		}
		m.Delivery.Status = "bounced"
		return tx.UpdateMessage(m)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := status(); got != "bounced" {
		t.Errorf("after UpdateMessage: %q", got)
	}
}

// Databases written by the first builds of schema 2 kept a chunk as a plain
// value rather than a bucket: they read, check and delete the same.
func TestEarlyChunksAsValuesStillRead(t *testing.T) {
	db := openTest(t)
	raw := bigRaw(blobChunk + 10)
	err := db.Update(func(tx *Tx) error {
		b := tx.bucket(bucketBlobs)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := b.Put(blobKey(id, 0), raw[:blobChunk]); err != nil {
			return err
		}
		if err := b.Put(blobKey(id, 1), raw[blobChunk:]); err != nil {
			return err
		}
		return tx.quarantine(&Quarantined{Mailbox: "support", UID: 1, Reason: "old"}, id, "sha256:aa")
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if got, err := tx.QuarantinedRaw(1); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("early chunks read back as %d bytes, %v", len(got), err)
		}
		return nil
	})
	if err := db.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	db.Update(func(tx *Tx) error {
		if err := tx.deleteBlob(1); err != nil {
			t.Errorf("delete: %v", err)
		}
		if _, ok := tx.blobSize(1); ok {
			t.Error("early chunks survived deleteBlob")
		}
		// Check would now find the quarantined mail's blob missing.
		if err := tx.bucket(bucketMsgIDs).Delete([]byte("sha256:aa")); err != nil {
			return err
		}
		return tx.bucket(bucketQuarantine).Delete(u64(1))
	})
}

// failingReader returns data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestStageFromStreamsAndReadsBack(t *testing.T) {
	db := openTest(t)
	for _, n := range []int{0, 1, blobChunk, stageTxBytes, stageTxBytes + 1, 3*stageTxBytes + 17} {
		raw := bigRaw(n)
		// One byte at a time: StageFrom must fill its buffer itself.
		s, err := db.StageFrom(iotest.OneByteReader(bytes.NewReader(raw)))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if s.Size() != n {
			t.Errorf("%d bytes: Size %d", n, s.Size())
		}
		got, err := io.ReadAll(db.ReadStaged(s))
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("%d bytes: read back %d bytes, %v", n, len(got), err)
		}
		// The reader follows the bytes after the claim too.
		m := &Message{MessageID: "s@x", Size: n}
		err = db.Update(func(tx *Tx) error {
			m.TicketID = newTicket(t, tx, "ann@example.org", StatusNew).ID
			return tx.AddStagedMessage(m, s, fmt.Sprintf("<s%d@x>", n))
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(db.ReadStaged(s)); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("%d bytes, claimed: read back %d bytes, %v", n, len(got), err)
		}
		db.View(func(tx *Tx) error {
			if got, err := tx.Raw(m.TicketID, m.Seq); err != nil || !bytes.Equal(got, raw) {
				t.Errorf("%d bytes: stored raw %d bytes, %v", n, len(got), err)
			}
			return nil
		})
	}
	if err := db.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestStageFromReadErrorLeavesNothingStaged(t *testing.T) {
	db := openTest(t)
	boom := errors.New("connection reset")
	_, err := db.StageFrom(&failingReader{data: bigRaw(stageTxBytes + 5), err: boom})
	if !errors.Is(err, boom) {
		t.Fatalf("StageFrom: %v, want the read error", err)
	}
	db.View(func(tx *Tx) error {
		if k, _ := tx.bucket(bucketStaged).Cursor().First(); k != nil {
			t.Error("a failed StageFrom left a staged entry")
		}
		if k, _ := tx.bucket(bucketBlobs).Cursor().First(); k != nil {
			t.Errorf("a failed StageFrom left blob chunks (%x)", k)
		}
		return nil
	})
	// A removed blob reads as missing, not as empty.
	if _, err := io.ReadAll(db.ReadStaged(&Staged{id: 99})); !errors.Is(err, ErrNotFound) {
		t.Errorf("reading a missing blob: %v, want ErrNotFound", err)
	}
}
