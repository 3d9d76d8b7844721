package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHoldsExpireAndArePruned(t *testing.T) {
	db := openTest(t)
	err := db.Update(func(tx *Tx) error {
		for _, h := range []*Hold{
			{Kind: HoldUndeliverable, Addr: "ann@example.org", Since: t0, Until: t0.Add(time.Hour), Reason: "5.1.1"},
			{Kind: HoldPaused, Addr: "loop@example.org", Since: t0, Until: t0.Add(24 * time.Hour), Reason: "breaker"},
		} {
			if err := tx.PutHold(h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if _, ok := tx.ActiveHold(HoldUndeliverable, "ann@example.org", t0.Add(59*time.Minute)); !ok {
			t.Error("undeliverable hold not in force within its hour")
		}
		if _, ok := tx.ActiveHold(HoldUndeliverable, "ann@example.org", t0.Add(time.Hour)); ok {
			t.Error("undeliverable hold still in force at its end")
		}
		if _, ok := tx.ActiveHold(HoldPaused, "ann@example.org", t0); ok {
			t.Error("a hold of one kind answered for the other")
		}
		hs, err := tx.Holds(t0.Add(2 * time.Hour))
		if err != nil || len(hs) != 1 || hs[0].Addr != "loop@example.org" {
			t.Errorf("holds after two hours: %+v %v", hs, err)
		}
		return nil
	})
	// A new hold removes the expired one from the bucket.
	later := t0.Add(2 * time.Hour)
	err = db.Update(func(tx *Tx) error {
		return tx.PutHold(&Hold{Kind: HoldPaused, Addr: "bob@example.org", Since: later, Until: later.Add(time.Hour)})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if n := tx.bucket(bucketHolds).Stats().KeyN; n != 2 {
			t.Errorf("%d holds stored, want 2 (the expired one pruned)", n)
		}
		return nil
	})
	err = db.Update(func(tx *Tx) error { return tx.PutHold(&Hold{Kind: "vacation", Addr: "x@example.org"}) })
	if err == nil {
		t.Error("a hold of unknown kind was stored")
	}
}

func TestCheckReportsAMisfiledHold(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "hd.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Update(func(tx *Tx) error {
		return putJSON(tx.bucket(bucketHolds), holdKey(HoldPaused, "a@example.org"), &Hold{Kind: HoldPaused, Addr: "b@example.org"})
	})
	if err := db.Check(); err == nil || !strings.Contains(err.Error(), "holds") {
		t.Fatalf("Check: %v", err)
	}
}

// An unfiled mail goes through the outbox like any other and leaves
// nothing behind once sent; a dead one stays dead.
func TestUnfiledMailLifecycle(t *testing.T) {
	db := openTest(t)
	var ids []uint64
	err := db.Update(func(tx *Tx) error {
		for _, raw := range []string{"notice 1", "notice 2"} {
			o, err := tx.EnqueueUnfiled("support@example.com", []string{"ann@example.org"}, []byte(raw), t0)
			if err != nil {
				return err
			}
			ids = append(ids, o.ID)
		}
		_, err := tx.EnqueueUnfiled("support@example.com", nil, nil, t0)
		if err == nil {
			t.Error("an unfiled mail without bytes was queued")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	due, err := db.OutboxDue(t0, 0)
	if err != nil || len(due) != 2 || string(due[0].Raw) != "notice 1" || !due[0].Unfiled() {
		t.Fatalf("due: %+v %v", due, err)
	}
	if err := db.OutboxRetry(ids[0], 1, t0.Add(time.Minute), "451"); err != nil {
		t.Fatal(err)
	}
	if err := db.OutboxSent(ids[0], t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := db.OutboxDead(ids[1], 1, "550 no such user"); err != nil {
		t.Fatal(err)
	}
	if q, dead, _ := db.OutboxLen(); q != 0 || dead != 1 {
		t.Errorf("queued %d dead %d, want 0 and 1", q, dead)
	}
}

func TestUnquarantineReturnsTheMailAndItsKey(t *testing.T) {
	db := openTest(t)
	raw := []byte("From: ann@example.org\r\n\r\nbig")
	var id uint64
	err := db.Update(func(tx *Tx) error {
		q := &Quarantined{Mailbox: "support", UIDValidity: 1, UID: 9, Reason: "too large", Raw: raw}
		if err := tx.Quarantine(q, "<big@example.org>"); err != nil {
			return err
		}
		id = q.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		q, err := tx.Quarantined(id)
		if err != nil || !bytes.Equal(q.Raw, raw) || q.Key != "<big@example.org>" {
			t.Errorf("Quarantined: %+v %v", q, err)
		}
		if _, err := tx.Quarantined(id + 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing record: %v", err)
		}
		if _, err := tx.MessageByKey("<big@example.org>"); !errors.Is(err, ErrNotFound) {
			t.Errorf("MessageByKey of a quarantined mail: %v", err)
		}
		return nil
	})
	// Released into a ticket: the message takes a key of its own and the
	// quarantine key follows it.
	err = db.Update(func(tx *Tx) error {
		q, err := tx.Unquarantine(id)
		if err != nil {
			return err
		}
		if q.Key != "<big@example.org>" || !bytes.Equal(q.Raw, raw) {
			t.Errorf("Unquarantine: %+v", q)
		}
		tk := newTicket(t, tx, "ann@example.org", StatusNew)
		m := &Message{TicketID: tk.ID, MessageID: "big@example.org", Direction: DirectionIn, Kind: KindCustomer}
		if err := tx.AddMessage(m, q.Raw, "sha256:feed"); err != nil {
			return err
		}
		if err := tx.IndexLike(q.Key, "sha256:feed"); err != nil {
			return err
		}
		if err := tx.IndexLike("<other@example.org>", "sha256:nothing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("IndexLike of an unknown key: %v", err)
		}
		got, err := tx.MessageByKey(q.Key)
		if err != nil || got.Seq != m.Seq {
			t.Errorf("MessageByKey after release: %+v %v", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		if qs, _ := tx.ListQuarantine(); len(qs) != 0 {
			t.Errorf("quarantine still lists %+v", qs)
		}
		return nil
	})
	if err := db.Update(func(tx *Tx) error { _, err := tx.Unquarantine(id); return err }); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Unquarantine: %v", err)
	}
}

// A schema-1 record does not remember its key: Unquarantine finds it.
func TestUnquarantineSchema1Record(t *testing.T) {
	db := openFixtureV1(t)
	err := db.Update(func(tx *Tx) error {
		qs, err := tx.ListQuarantine()
		if err != nil || len(qs) != 1 {
			t.Fatalf("fixture quarantine: %+v %v", qs, err)
		}
		q, err := tx.Unquarantine(qs[0].ID)
		if err != nil {
			return err
		}
		if q.Key != "sha256:00" || string(q.Raw) != "junk" {
			t.Errorf("schema-1 record: key %q raw %q", q.Key, q.Raw)
		}
		if tx.KnownKey("sha256:00") {
			t.Error("key still indexed")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}
