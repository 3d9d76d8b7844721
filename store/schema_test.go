package store

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var updateFixture = flag.Bool("update-fixture", false, "rewrite testdata/schema-v1.db (only while currentSchema is 1)")

const fixtureV1 = "testdata/schema-v1.db"

// openFixtureV1 opens a copy of the schema-1 fixture, migrated by Open; it
// is closed when the test ends.
func openFixtureV1(t *testing.T) *DB {
	t.Helper()
	data, err := os.ReadFile(fixtureV1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "old.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// writeFixtureV1 fills a schema-1 database with one of everything.
func writeFixtureV1(t *testing.T, path string) {
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	err = db.Update(func(tx *Tx) error {
		tk := &Ticket{Subject: "Printer", Status: StatusOpen, Priority: "normal", Mailbox: "support",
			Requester: "ann@example.org", CC: []string{"bob@example.org"}, CreatedAt: at, UpdatedAt: at,
			LastCustomerMessageID: "p1@example.org", ThreadIDs: []string{"p1@example.org"}}
		if err := tx.CreateTicket(tk); err != nil {
			return err
		}
		if err := tx.AddMessage(&Message{TicketID: tk.ID, MessageID: "p1@example.org", Direction: DirectionIn,
			Kind: KindCustomer, From: "ann@example.org", Text: "It shows error 49.", MatchedBy: "new",
			Mailbox: "support", UIDValidity: 7, UID: 1}, []byte("raw p1"), "<p1@example.org>"); err != nil {
			return err
		}
		if _, err := tx.Enqueue(&Message{TicketID: tk.ID, MessageID: "ack1@helpdesk.example.com", Kind: KindAutoreply},
			"support@example.com", []string{"ann@example.org"}, []byte("raw ack"), at); err != nil {
			return err
		}
		if err := tx.AdvanceCheckpoint("support", 7, 1); err != nil {
			return err
		}
		if err := tx.AddPendingFlag("support", 7, 1, false); err != nil {
			return err
		}
		if _, err := tx.Allow("ack:ann@example.org", at, time.Hour, 5); err != nil {
			return err
		}
		return tx.Quarantine(&Quarantined{Mailbox: "support", UIDValidity: 7, UID: 2, Reason: "unparseable", Raw: []byte("junk")}, "sha256:00")
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A database written by the first released schema opens with this binary,
// migrates, and keeps every record and invariant.
func TestOpensSchemaV1Database(t *testing.T) {
	if *updateFixture {
		if currentSchema != 1 {
			t.Fatal("the v1 fixture can only be written by a schema-1 binary")
		}
		os.Remove(fixtureV1)
		writeFixtureV1(t, fixtureV1)
	}
	db := openFixtureV1(t)
	if err := db.Check(); err != nil {
		t.Fatalf("Check after migration: %v", err)
	}
	db.View(func(tx *Tx) error {
		tk, err := tx.Ticket(1)
		if err != nil || tk.Requester != "ann@example.org" || tk.Status != StatusOpen {
			t.Errorf("ticket 1: %+v %v", tk, err)
		}
		msgs, _ := tx.Messages(1)
		if len(msgs) != 2 || msgs[0].Text != "It shows error 49." {
			t.Errorf("messages: %+v", msgs)
		}
		if id, ok := tx.TicketByMessageID("<p1@example.org>"); !ok || id != 1 {
			t.Error("Message-ID index lost")
		}
		if !tx.IsQuarantined("sha256:00") {
			t.Error("quarantine lost")
		}
		return nil
	})
	if cp, _ := db.MailboxCheckpoint("support"); cp != (Checkpoint{UIDValidity: 7, LastUID: 1}) {
		t.Errorf("checkpoint %+v", cp)
	}
	if due, _ := db.OutboxDue(time.Now(), 0); len(due) != 1 {
		t.Errorf("outbox %d", len(due))
	}
	if uids, _ := db.PendingFlags("support", 7); len(uids) != 1 {
		t.Errorf("pending flags %v", uids)
	}
	if len(db.Secret()) != 32 {
		t.Error("token secret lost: every reply would stop threading")
	}
}

// A database written by a newer binary is refused, not read or changed: the
// way a schema-4 binary meets a file that may hold binary message records.
func TestNewerSchemaRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "helpdesk.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, u64(currentSchema+1))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if db, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		if db != nil {
			db.Close()
		}
		t.Fatalf("Open of a newer schema: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("the refused file was changed")
	}
}
