package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// openTest opens a fresh database and checks its invariants when the test ends.
func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "hd.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
		db.Close()
	})
	return db
}

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func newTicket(t *testing.T, tx *Tx, requester, status string) *Ticket {
	t.Helper()
	tk := &Ticket{Subject: "s", Status: status, Priority: "normal", Requester: requester, CreatedAt: t0, UpdatedAt: t0}
	if err := tx.CreateTicket(tk); err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestOpenCreatesPrivateFileAndKeepsSecret(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "hd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	secret := db.Secret()
	if len(secret) != 32 {
		t.Fatalf("secret is %d bytes", len(secret))
	}
	db.Close()
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !bytes.Equal(db.Secret(), secret) {
		t.Error("secret changed across reopen")
	}
}

func TestOpenLockedReturnsErrLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = Open(path, Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v, want ErrLocked", err)
	}
}

func TestTicketIDsIncreaseAndIndexesFollowUpdates(t *testing.T) {
	db := openTest(t)
	err := db.Update(func(tx *Tx) error {
		a := newTicket(t, tx, "ann@example.org", StatusNew)
		b := newTicket(t, tx, "bob@example.org", StatusNew)
		if a.ID != 1 || b.ID != 2 {
			t.Fatalf("ids %d %d", a.ID, b.ID)
		}
		b.Status = StatusOpen
		b.Requester = "carl@example.org"
		return tx.UpdateTicket(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		got, _ := tx.ListTickets(ListOptions{Status: StatusNew})
		if len(got) != 1 || got[0].ID != 1 {
			t.Errorf("new tickets: %+v", got)
		}
		got, _ = tx.ListTickets(ListOptions{Requester: "BOB@example.org"})
		if len(got) != 0 {
			t.Errorf("bob still indexed: %+v", got)
		}
		got, _ = tx.ListTickets(ListOptions{Requester: "carl@example.org"})
		if len(got) != 1 || got[0].ID != 2 {
			t.Errorf("carl: %+v", got)
		}
		if c := tx.CountByStatus(); c[StatusNew] != 1 || c[StatusOpen] != 1 {
			t.Errorf("counts %v", c)
		}
		return nil
	})
}

func TestListTicketsNewestFirstWithPaging(t *testing.T) {
	db := openTest(t)
	db.Update(func(tx *Tx) error {
		for i := 0; i < 10; i++ {
			st := StatusOpen
			if i%2 == 0 {
				st = StatusClosed
			}
			newTicket(t, tx, "x@example.org", st)
		}
		return nil
	})
	ids := func(ts []Ticket) (out []uint64) {
		for _, tk := range ts {
			out = append(out, tk.ID)
		}
		return out
	}
	db.View(func(tx *Tx) error {
		all, _ := tx.ListTickets(ListOptions{Limit: 3})
		if got := ids(all); len(got) != 3 || got[0] != 10 || got[2] != 8 {
			t.Errorf("first page %v", got)
		}
		open, _ := tx.ListTickets(ListOptions{Status: StatusOpen, Limit: 2})
		if got := ids(open); len(got) != 2 || got[0] != 10 || got[1] != 8 {
			t.Errorf("open page 1 %v", got)
		}
		open, _ = tx.ListTickets(ListOptions{Status: StatusOpen, BeforeID: 8})
		if got := ids(open); len(got) != 3 || got[0] != 6 || got[2] != 2 {
			t.Errorf("open page 2 %v", got)
		}
		closed, _ := tx.ListTickets(ListOptions{Status: StatusClosed})
		if got := ids(closed); len(got) != 5 || got[0] != 9 {
			t.Errorf("closed %v", got)
		}
		none, _ := tx.ListTickets(ListOptions{Status: "pending"})
		if len(none) != 0 {
			t.Errorf("pending %v", ids(none))
		}
		return nil
	})
}

func TestAddMessageDedupesAndRollsBack(t *testing.T) {
	db := openTest(t)
	var id uint64
	err := db.Update(func(tx *Tx) error {
		tk := newTicket(t, tx, "ann@example.org", StatusNew)
		id = tk.ID
		return tx.AddMessage(&Message{TicketID: id, MessageID: "a@x", Kind: KindCustomer}, []byte("raw a"), "<a@x>")
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *Tx) error {
		if err := tx.AddMessage(&Message{TicketID: id, MessageID: "b@x"}, []byte("raw b"), "<b@x>"); err != nil {
			return err
		}
		return tx.AddMessage(&Message{TicketID: id, MessageID: "a@x"}, []byte("again"), "<a@x>")
	})
	if !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate add: %v", err)
	}
	db.View(func(tx *Tx) error {
		msgs, _ := tx.Messages(id)
		if len(msgs) != 1 {
			t.Errorf("messages after rollback: %d", len(msgs))
		}
		if _, ok := tx.TicketByMessageID("<b@x>"); ok {
			t.Error("rolled-back key indexed")
		}
		if got, ok := tx.TicketByMessageID("<a@x>"); !ok || got != id {
			t.Errorf("lookup a: %d %v", got, ok)
		}
		raw, _ := tx.Raw(id, msgs[0].Seq)
		if string(raw) != "raw a" {
			t.Errorf("raw %q", raw)
		}
		tk, _ := tx.Ticket(id)
		if tk.MessageCount != 1 {
			t.Errorf("count %d", tk.MessageCount)
		}
		return nil
	})
}

func TestCheckpointOnlyMovesForwardWithinUIDValidity(t *testing.T) {
	db := openTest(t)
	steps := []struct {
		validity, uid uint32
		want          Checkpoint
	}{
		{7, 5, Checkpoint{7, 5}},
		{7, 3, Checkpoint{7, 5}},
		{7, 9, Checkpoint{7, 9}},
		{8, 2, Checkpoint{8, 2}},
	}
	for _, s := range steps {
		db.Update(func(tx *Tx) error { return tx.AdvanceCheckpoint("support", s.validity, s.uid) })
		got, err := db.MailboxCheckpoint("support")
		if err != nil || got != s.want {
			t.Errorf("after (%d,%d): %+v %v, want %+v", s.validity, s.uid, got, err, s.want)
		}
	}
}

func TestPendingFlags(t *testing.T) {
	db := openTest(t)
	db.Update(func(tx *Tx) error {
		tx.AddPendingFlag("support", 1, 3, true)
		tx.AddPendingFlag("support", 1, 1, false)
		tx.AddPendingFlag("support", 2, 9, false)
		tx.AddPendingFlag("support2", 1, 4, false)
		return nil
	})
	got, err := db.PendingFlags("support", 1)
	if want := []PendingFlag{{UID: 1}, {UID: 3, Quarantined: true}}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("pending %v %v, want %v", got, err, want)
	}
	if err := db.ClearPendingFlags("support", 1, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	got, _ = db.PendingFlags("support", 1)
	if want := []PendingFlag{{UID: 3, Quarantined: true}}; !slices.Equal(got, want) {
		t.Fatalf("after clear %v", got)
	}
	// Reading one UIDVALIDITY dropped the other one's entries.
	got, _ = db.PendingFlags("support", 2)
	if len(got) != 0 {
		t.Fatalf("stale entries kept: %v", got)
	}
	got, _ = db.PendingFlags("support2", 1)
	if len(got) != 1 {
		t.Fatalf("other mailbox: %v", got)
	}
}

func TestOutboxLifecycle(t *testing.T) {
	db := openTest(t)
	var ticketID uint64
	var sentID, deadID uint64
	db.Update(func(tx *Tx) error {
		ticketID = newTicket(t, tx, "ann@example.org", StatusNew).ID
		o, err := tx.Enqueue(&Message{TicketID: ticketID, MessageID: "ack1@hd", Kind: KindAutoreply}, "support@example.com", []string{"ann@example.org"}, []byte("ack 1"), t0)
		if err != nil {
			t.Fatal(err)
		}
		sentID = o.ID
		o, err = tx.Enqueue(&Message{TicketID: ticketID, MessageID: "ack2@hd", Kind: KindAutoreply}, "support@example.com", []string{"gone@example.org"}, []byte("ack 2"), t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		deadID = o.ID
		return nil
	})
	due, err := db.OutboxDue(t0, 10)
	if err != nil || len(due) != 1 || due[0].ID != sentID || string(due[0].Raw) != "ack 1" {
		t.Fatalf("due at t0: %+v %v", due, err)
	}
	next, ok, _ := db.OutboxNextDue()
	if !ok || !next.Equal(t0) {
		t.Fatalf("next due %v %v", next, ok)
	}
	if err := db.OutboxRetry(sentID, 1, t0.Add(time.Hour), "451 try later"); err != nil {
		t.Fatal(err)
	}
	if due, _ := db.OutboxDue(t0.Add(2*time.Minute), 10); len(due) != 1 || due[0].ID != deadID {
		t.Fatalf("due after retry: %+v", due)
	}
	if err := db.OutboxSent(sentID, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.OutboxDead(deadID, 3, "550 no such user"); err != nil {
		t.Fatal(err)
	}
	q, d, _ := db.OutboxLen()
	if q != 0 || d != 1 {
		t.Fatalf("queued %d dead %d", q, d)
	}
	db.View(func(tx *Tx) error {
		msgs, _ := tx.Messages(ticketID)
		if len(msgs) != 2 {
			t.Fatalf("messages %d", len(msgs))
		}
		if d := msgs[0].Delivery; d == nil || d.Status != "sent" || d.Attempts != 2 {
			t.Errorf("first delivery %+v", d)
		}
		if d := msgs[1].Delivery; d == nil || d.Status != "failed" || d.LastError != "550 no such user" {
			t.Errorf("second delivery %+v", d)
		}
		if _, ok := tx.TicketByMessageID("<ack1@hd>"); !ok {
			t.Error("outbound Message-ID not indexed")
		}
		return nil
	})
	if err := db.OutboxSent(sentID, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Sent: %v", err)
	}
}

func TestAllowSlidingWindowPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hd.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	allow := func(db *DB, at time.Time) bool {
		var ok bool
		if err := db.Update(func(tx *Tx) error {
			var err error
			ok, err = tx.Allow("ack:ann@example.org", at, time.Hour, 2)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !allow(db, t0) || !allow(db, t0.Add(time.Minute)) {
		t.Fatal("first two refused")
	}
	if allow(db, t0.Add(2*time.Minute)) {
		t.Fatal("third allowed")
	}
	db.Close()
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if allow(db, t0.Add(30*time.Minute)) {
		t.Fatal("limit forgotten across reopen")
	}
	if !allow(db, t0.Add(61*time.Minute)) {
		t.Fatal("window did not slide")
	}
}

func TestQuarantineIsKnownButNotATicket(t *testing.T) {
	db := openTest(t)
	db.Update(func(tx *Tx) error {
		return tx.Quarantine(&Quarantined{Mailbox: "support", UID: 4, Reason: "unparseable", Raw: []byte("junk")}, "sha256:abc")
	})
	db.View(func(tx *Tx) error {
		if !tx.KnownKey("sha256:abc") || !tx.IsQuarantined("sha256:abc") {
			t.Error("quarantined key not known")
		}
		if _, ok := tx.TicketByMessageID("sha256:abc"); ok {
			t.Error("quarantined mail resolves to a ticket")
		}
		qs, _ := tx.ListQuarantine()
		if len(qs) != 1 || qs[0].Reason != "unparseable" || qs[0].Raw != nil {
			t.Errorf("list %+v", qs)
		}
		return nil
	})
}

func TestCheckFindsBrokenInvariants(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "hd.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Update(func(tx *Tx) error {
		tk := newTicket(t, tx, "ann@example.org", StatusNew)
		return tx.AddMessage(&Message{TicketID: tk.ID, MessageID: "a@x"}, []byte("raw"), "<a@x>")
	})
	if err := db.Check(); err != nil {
		t.Fatalf("healthy database: %v", err)
	}
	db.Update(func(tx *Tx) error {
		tx.bucket(bucketByStatus).Put(indexKey(StatusClosed, 1), nil)   // stale index entry
		tx.deleteBlob(1)                                                // raw bytes lost
		tx.bucket(bucketMsgIDs).Put([]byte("<ghost@x>"), msgKey(1, 99)) // dangling id
		return nil
	})
	err = db.Check()
	if err == nil {
		t.Fatal("Check passed a broken database")
	}
	for _, want := range []string{"stale entry \"closed\"", "message 1/1: blob 1 missing", "<ghost@x>"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("Check error lacks %q: %v", want, err)
		}
	}
}

func TestBackupIsAUsableDatabase(t *testing.T) {
	db := openTest(t)
	db.Update(func(tx *Tx) error {
		newTicket(t, tx, "ann@example.org", StatusNew)
		return nil
	})
	var buf bytes.Buffer
	n, err := db.Backup(&buf)
	if err != nil || n == 0 {
		t.Fatalf("backup %d %v", n, err)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	os.WriteFile(path, buf.Bytes(), 0o600)
	b, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Secret(), db.Secret()) {
		t.Error("backup lost the secret")
	}
	b.View(func(tx *Tx) error {
		if !tx.TicketExists(1) {
			t.Error("ticket missing from backup")
		}
		return nil
	})
}
