package inbox_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/helpdesk/helpdesk/inbox"
	"github.com/helpdesk/helpdesk/internal/mailtest"
)

// TestDeliversInOrderAndFlagsAfterCommit: every new mail reaches the
// handler once, in UID order, unread on the server while the handler runs
// (BODY.PEEK and flag-after-commit), and is \Seen afterwards; a quarantined
// one also gets the keyword.
func TestDeliversInOrderAndFlagsAfterCommit(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	var uids []uint32
	for i := 1; i <= 5; i++ {
		uids = append(uids, uint32(d.Append(t, "support", "INBOX", testMail(i))))
	}
	probe := newProber(t, d, "support")

	st := newMemStore()
	// t.Errorf may be called from the handler's goroutine (not t.Fatal):
	// Run, and so the handler, ends before the test does.
	st.setBefore(func(ctx context.Context, dl inbox.Delivery) (inbox.Disposition, error) {
		if seen, err := probe.seen(dl.UID); err != nil || seen {
			t.Errorf("uid %d at Handle: seen=%v err=%v, want unseen", dl.UID, seen, err)
		}
		return inbox.Disposition{Quarantined: dl.UID == uids[3]}, nil
	})
	mb := inbox.New(config(d, "support"), st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "5 mails flagged", func() bool { return mb.Stats().Flagged == 5 })
	r.stop()

	commits := st.commits()
	if got := commitUIDs(commits); !slices.Equal(got, uids) {
		t.Errorf("handled UIDs = %v, want %v", got, uids)
	}
	validity := d.UIDValidity(t, "support", "INBOX")
	for i, c := range commits {
		if c.Mailbox != "mb-support" || c.UIDValidity != validity {
			t.Errorf("delivery %d: mailbox %q uidvalidity %d, want mb-support %d", i, c.Mailbox, c.UIDValidity, validity)
		}
		if !bytes.Equal(c.Raw, testMail(i+1)) {
			t.Errorf("delivery %d: raw bytes differ from the appended mail:\n%q", i, c.Raw)
		}
	}
	for _, uid := range uids {
		flags := d.Flags(t, "support", "INBOX", imap.UID(uid))
		if !hasFlag(flags, imap.FlagSeen) {
			t.Errorf("uid %d not \\Seen after handling: %v", uid, flags)
		}
		if want := uid == uids[3]; hasFlag(flags, inbox.QuarantineKeyword) != want {
			t.Errorf("uid %d: flags %v, quarantine keyword wanted: %v", uid, flags, want)
		}
	}
	if p, _ := st.PendingFlags("mb-support", validity); len(p) != 0 {
		t.Errorf("pending flags left: %v", p)
	}
	if cp, _ := st.Checkpoint("mb-support"); cp != (inbox.Checkpoint{UIDValidity: validity, LastUID: uids[4]}) {
		t.Errorf("checkpoint = %+v", cp)
	}
	s := mb.Stats()
	if s.Fetched != 5 || s.Handled != 5 || s.Quarantined != 1 || s.Flagged != 5 || s.Errors != 0 || s.Reconnects != 0 {
		t.Errorf("stats = %+v", s)
	}
	if s.LastSync.IsZero() {
		t.Error("LastSync not set")
	}
}

// TestMoveTo: handled mail leaves INBOX for MoveTo (created when missing),
// read; nothing is expunged from INBOX but what MOVE removes.
func TestMoveTo(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"a": password, "b": password})
	for user, folder := range map[string]string{"a": "Archive", "b": "Done/Helpdesk"} {
		t.Run(folder, func(t *testing.T) {
			t.Parallel()
			for i := 1; i <= 3; i++ {
				d.Append(t, user, "INBOX", testMail(i))
			}
			st := newMemStore()
			cfg := config(d, user)
			cfg.MoveTo = folder
			mb := inbox.New(cfg, st, st, testLogger(t))
			r := run(t, mb)
			eventually(t, 10*time.Second, "3 mails moved", func() bool { return mb.Stats().Flagged == 3 })
			r.stop()

			if got := d.UIDs(t, user, "INBOX"); len(got) != 0 {
				t.Errorf("INBOX still holds %v", got)
			}
			moved := d.UIDs(t, user, folder)
			if len(moved) != 3 {
				t.Fatalf("%s holds %v, want 3 mails", folder, moved)
			}
			for _, uid := range moved {
				if flags := d.Flags(t, user, folder, uid); !hasFlag(flags, imap.FlagSeen) {
					t.Errorf("moved uid %d not \\Seen: %v", uid, flags)
				}
			}
			if got := len(st.commits()); got != 3 {
				t.Errorf("handled %d mails, want 3", got)
			}
		})
	}
}

// TestHandlerErrorRetriesSameUID: a failing handler leaves its mail unread
// on the server, no later UID is handled before it, and it is handed over
// again until it succeeds.
func TestHandlerErrorRetriesSameUID(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	u1 := uint32(d.Append(t, "support", "INBOX", testMail(1)))
	u2 := uint32(d.Append(t, "support", "INBOX", testMail(2)))
	u3 := uint32(d.Append(t, "support", "INBOX", testMail(3)))
	probe := newProber(t, d, "support")

	st := newMemStore()
	const failures = 2
	st.setBefore(func(ctx context.Context, dl inbox.Delivery) (inbox.Disposition, error) {
		if dl.UID != u2 {
			return inbox.Disposition{}, nil
		}
		attempt := st.attemptsFor(u2)
		if attempt > 1 {
			// Retried: the earlier mail was flagged, this one was not, and
			// the later one has not been touched.
			seen1, err1 := probe.seen(u1)
			seen2, err2 := probe.seen(u2)
			if err1 != nil || err2 != nil || !seen1 || seen2 || st.attemptsFor(u3) != 0 {
				t.Errorf("attempt %d: uid1 seen=%v (%v), uid2 seen=%v (%v), uid3 attempts=%d; want true, false, 0",
					attempt, seen1, err1, seen2, err2, st.attemptsFor(u3))
			}
		}
		if attempt <= failures {
			return inbox.Disposition{}, errors.New("disk full")
		}
		return inbox.Disposition{}, nil
	})
	cfg := config(d, "support")
	cfg.FetchBatch = 10 // all three in one batch: the error must stop it midway
	mb := inbox.New(cfg, st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "3 mails flagged", func() bool { return mb.Stats().Flagged == 3 })
	r.stop()

	if got := commitUIDs(st.commits()); !slices.Equal(got, []uint32{u1, u2, u3}) {
		t.Errorf("committed UIDs = %v, want %v", got, []uint32{u1, u2, u3})
	}
	if n := st.attemptsFor(u2); n != failures+1 {
		t.Errorf("uid %d handed over %d times, want %d", u2, n, failures+1)
	}
	if n := st.attemptsFor(u1) + st.attemptsFor(u3); n != 2 {
		t.Errorf("uids %d and %d handed over %d times in all, want once each", u1, u3, n)
	}
	for _, uid := range []uint32{u1, u2, u3} {
		if !hasFlag(d.Flags(t, "support", "INBOX", imap.UID(uid)), imap.FlagSeen) {
			t.Errorf("uid %d not \\Seen at the end", uid)
		}
	}
	if s := mb.Stats(); s.Errors != failures || s.Reconnects != failures {
		t.Errorf("stats = %+v, want %d errors and reconnects", s, failures)
	}
}

// TestHandlerPanicIsRetried: a panic is an error like any other.
func TestHandlerPanicIsRetried(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	uid := uint32(d.Append(t, "support", "INBOX", testMail(1)))
	st := newMemStore()
	st.setBefore(func(ctx context.Context, dl inbox.Delivery) (inbox.Disposition, error) {
		if st.attemptsFor(dl.UID) == 1 {
			panic("boom")
		}
		return inbox.Disposition{}, nil
	})
	mb := inbox.New(config(d, "support"), st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "mail flagged", func() bool { return mb.Stats().Flagged == 1 })
	r.stop()
	if s := mb.Stats(); s.Panics != 1 || st.attemptsFor(uid) != 2 {
		t.Errorf("panics %d, attempts %d; want 1 and 2", s.Panics, st.attemptsFor(uid))
	}
}

// TestPendingFlagsFlushedOnStart: mail committed by a previous run that
// crashed before flagging is flagged (or moved) without being handed over
// again; UIDs already gone are just forgotten.
func TestPendingFlagsFlushedOnStart(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"flag": password, "move": password})
	for user, moveTo := range map[string]string{"flag": "", "move": "Archive"} {
		t.Run(user, func(t *testing.T) {
			t.Parallel()
			var uids []uint32
			for i := 1; i <= 4; i++ {
				uids = append(uids, uint32(d.Append(t, user, "INBOX", testMail(i))))
			}
			validity := d.UIDValidity(t, user, "INBOX")
			cfg := config(d, user)
			cfg.MoveTo = moveTo
			st := newMemStore()
			// uids[0] was flagged before the crash, uids[1:3] were not; 9999
			// never existed (or was moved away).
			st.seed(cfg.Name, inbox.Checkpoint{UIDValidity: validity, LastUID: uids[2]}, uids[1], uids[2], 9999)
			st.seedQuarantined(cfg.Name, validity, uids[2]) // and gets the keyword too
			st.seed("other-mailbox", inbox.Checkpoint{UIDValidity: validity, LastUID: 1}, uids[3])

			mb := inbox.New(cfg, st, st, testLogger(t))
			r := run(t, mb)
			eventually(t, 10*time.Second, "new mail handled", func() bool { return mb.Stats().Handled == 1 })
			eventually(t, 10*time.Second, "flags set", func() bool { return mb.Stats().Flagged == 3 })
			r.stop()

			if got := commitUIDs(st.commits()); !slices.Equal(got, uids[3:]) {
				t.Errorf("handled %v, want only %v", got, uids[3:])
			}
			if p, _ := st.PendingFlags(cfg.Name, validity); len(p) != 0 {
				t.Errorf("pending flags left: %v", p)
			}
			if p, _ := st.PendingFlags("other-mailbox", validity); len(p) != 1 {
				t.Errorf("another mailbox's pending flags were touched: %v", p)
			}
			if moveTo == "" {
				if flags := d.Flags(t, user, "INBOX", imap.UID(uids[0])); hasFlag(flags, imap.FlagSeen) {
					t.Errorf("uid %d (not pending) was flagged: %v", uids[0], flags)
				}
				for _, uid := range uids[1:] {
					flags := d.Flags(t, user, "INBOX", imap.UID(uid))
					if !hasFlag(flags, imap.FlagSeen) {
						t.Errorf("uid %d not \\Seen", uid)
					}
					if want := uid == uids[2]; hasFlag(flags, inbox.QuarantineKeyword) != want {
						t.Errorf("uid %d: flags %v, quarantine keyword wanted: %v", uid, flags, want)
					}
				}
				return
			}
			if got := d.UIDs(t, user, "INBOX"); !slices.Equal(got, []imap.UID{imap.UID(uids[0])}) {
				t.Errorf("INBOX holds %v, want only the never-pending uid %d", got, uids[0])
			}
			if got := d.UIDs(t, user, moveTo); len(got) != 3 {
				t.Errorf("%s holds %v, want 3 mails", moveTo, got)
			}
		})
	}
}

// TestIDLEDeliversPromptly: with a one-minute poll interval, a new mail is
// handled within seconds because IDLE reports it.
func TestIDLEDeliversPromptly(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	st := newMemStore()
	cfg := config(d, "support")
	cfg.PollInterval = time.Minute
	mb := inbox.New(cfg, st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "first round", func() bool { return !mb.Stats().LastSync.IsZero() })

	for i := 1; i <= 2; i++ {
		uid := uint32(d.Append(t, "support", "INBOX", testMail(i)))
		// Far below the poll interval: only IDLE can deliver this in time.
		eventually(t, 10*time.Second, fmt.Sprintf("mail %d delivered through IDLE", i), func() bool {
			return mb.Stats().Flagged == uint64(i)
		})
		if got := commitUIDs(st.commits()); got[len(got)-1] != uid {
			t.Errorf("handled %v, want uid %d last", got, uid)
		}
	}
	r.stop()
	if s := mb.Stats(); s.Errors != 0 {
		t.Errorf("stats = %+v, want no errors", s)
	}
}

// TestPollAndPoke: without IDLE, Poke triggers a check at once.
func TestPollAndPoke(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	st := newMemStore()
	cfg := config(d, "support")
	cfg.IDLE = false
	mb := inbox.New(cfg, st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "first round", func() bool { return !mb.Stats().LastSync.IsZero() })
	d.Append(t, "support", "INBOX", testMail(1))
	mb.Poke()
	eventually(t, 10*time.Second, "poked delivery", func() bool { return mb.Stats().Flagged == 1 })
	r.stop()
}

// TestUIDValidityChange: when the folder's UIDVALIDITY changes, everything
// in it is handed over again (the handler dedupes), including mail whose
// new UIDs are at or below the old checkpoint.
func TestUIDValidityChange(t *testing.T) {
	t.Parallel()
	t.Run("INBOX renumbered", func(t *testing.T) {
		t.Parallel()
		d := mailtest.StartDovecot(t, map[string]string{"support": password})
		d.Append(t, "support", "INBOX", testMail(1))
		d.Append(t, "support", "INBOX", testMail(2))
		old := d.UIDValidity(t, "support", "INBOX")
		st := newMemStore()
		mb := inbox.New(config(d, "support"), st, st, testLogger(t))
		r := run(t, mb)
		eventually(t, 10*time.Second, "2 mails flagged", func() bool { return mb.Stats().Flagged == 2 })

		d.ResetUIDValidity(t, "support", "INBOX") // restarts Dovecot under the loop
		eventually(t, 10*time.Second, "mails handed over again", func() bool { return len(st.commits()) == 4 })
		eventually(t, 10*time.Second, "flagged again", func() bool { return mb.Stats().Flagged == 4 })
		r.stop()

		validity := d.UIDValidity(t, "support", "INBOX")
		if validity == old {
			t.Fatal("UIDVALIDITY did not change")
		}
		for i, c := range st.commits()[2:] {
			if c.UIDValidity != validity || !c.Duplicate {
				t.Errorf("redelivery %d: uidvalidity %d duplicate %v, want %d true", i, c.UIDValidity, c.Duplicate, validity)
			}
		}
		if cp, _ := st.Checkpoint("mb-support"); cp.UIDValidity != validity {
			t.Errorf("checkpoint %+v not under the new UIDVALIDITY %d", cp, validity)
		}
	})
	t.Run("folder recreated", func(t *testing.T) {
		t.Parallel()
		d := mailtest.StartDovecot(t, map[string]string{"support": password})
		d.Append(t, "support", "Support", testMail(1))
		d.Append(t, "support", "Support", testMail(2))
		st := newMemStore()
		cfg := config(d, "support")
		cfg.Folder = "Support"
		mb := inbox.New(cfg, st, st, testLogger(t))
		r := run(t, mb)
		eventually(t, 10*time.Second, "2 mails flagged", func() bool { return mb.Stats().Flagged == 2 })
		r.stop()

		// New mail gets UIDs 1 and 2 again: at or below the old checkpoint.
		// (The loop is stopped meanwhile: Dovecot 2.3 may keep serving a
		// session the old view of a folder deleted under it.)
		d.RecreateMailbox(t, "support", "Support")
		u3 := d.Append(t, "support", "Support", testMail(3))
		u4 := d.Append(t, "support", "Support", testMail(4))
		if u4 > 2 {
			t.Fatalf("recreated folder gave UIDs %d, %d; the test needs them at or below 2", u3, u4)
		}
		mb = inbox.New(cfg, st, st, testLogger(t))
		r = run(t, mb)
		eventually(t, 10*time.Second, "new mails handled", func() bool { return mb.Stats().Flagged == 2 })
		r.stop()
		commits := st.commits()
		if len(commits) != 4 {
			t.Fatalf("handled %d mails in all, want 4", len(commits))
		}
		got := commits[2:]
		if got[0].MessageID != "<3@test>" || got[1].MessageID != "<4@test>" || got[0].Duplicate || got[1].Duplicate {
			t.Errorf("after recreation handled %+v, want <3@test> then <4@test>", got)
		}
	})
}

// TestReconnectsAfterServerRestart: Dovecot goes down while the handler is
// committing a mail. The commit stands, the flag fails; the loop reconnects
// when Dovecot is back, flags the committed mail without handing it over
// again, and handles mail that arrived meanwhile.
func TestReconnectsAfterServerRestart(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	u1 := uint32(d.Append(t, "support", "INBOX", testMail(1)))
	st := newMemStore()
	inHandle, release := make(chan struct{}), make(chan struct{})
	st.setBefore(func(ctx context.Context, dl inbox.Delivery) (inbox.Disposition, error) {
		if dl.UID == u1 && st.attemptsFor(u1) == 1 {
			close(inHandle)
			<-release
		}
		return inbox.Disposition{}, nil
	})
	mb := inbox.New(config(d, "support"), st, st, testLogger(t))
	r := run(t, mb)

	<-inHandle
	d.Stop()
	close(release)
	eventually(t, 10*time.Second, "the failure noticed", func() bool {
		s := mb.Stats()
		return s.Errors >= 2 && !s.Connected // the flag, then a refused connection
	})
	if mb.Stats().Flagged != 0 {
		t.Fatal("flagged although the server was down")
	}
	d.Start()
	u2 := uint32(d.Append(t, "support", "INBOX", testMail(2)))
	eventually(t, 10*time.Second, "both mails flagged", func() bool { return mb.Stats().Flagged == 2 })
	r.stop()

	if got := commitUIDs(st.commits()); !slices.Equal(got, []uint32{u1, u2}) {
		t.Errorf("committed %v, want %v (each once)", got, []uint32{u1, u2})
	}
	for _, uid := range []uint32{u1, u2} {
		if !hasFlag(d.Flags(t, "support", "INBOX", imap.UID(uid)), imap.FlagSeen) {
			t.Errorf("uid %d not \\Seen", uid)
		}
	}
	if s := mb.Stats(); s.Reconnects < 2 {
		t.Errorf("stats = %+v, want at least 2 reconnects", s)
	}
}

// TestCancelWaitsForHandler: cancelling Run does not interrupt a handler
// mid-commit (its context stays alive) and Run returns right after it; a
// cancel while idle returns promptly; nothing committed is left unflagged
// once the loop runs again.
func TestCancelWaitsForHandler(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	u1 := uint32(d.Append(t, "support", "INBOX", testMail(1)))
	d.Append(t, "support", "INBOX", testMail(2))
	st := newMemStore()
	inHandle, release := make(chan struct{}), make(chan struct{})
	handlerCtxErr := make(chan error, 1)
	st.setBefore(func(ctx context.Context, dl inbox.Delivery) (inbox.Disposition, error) {
		if dl.UID == u1 && st.attemptsFor(u1) == 1 {
			close(inHandle)
			<-release
			handlerCtxErr <- ctx.Err()
		}
		return inbox.Disposition{}, nil
	})
	cfg := config(d, "support")
	mb := inbox.New(cfg, st, st, testLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mb.Run(ctx) }()

	<-inHandle
	cancel()
	// Longer than the shutdown grace, after which the connection is closed
	// under the session: the handler must still be waited for.
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while the handler was still committing", err)
	case <-time.After(1500 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after the handler finished")
	}
	if err := <-handlerCtxErr; err != nil {
		t.Errorf("the handler's context was cancelled by the shutdown: %v", err)
	}
	if got := commitUIDs(st.commits()); !slices.Equal(got, []uint32{u1}) {
		t.Errorf("committed %v, want only uid %d (no new work after cancel)", got, u1)
	}

	// Second run: handles the rest, then a cancel while idle returns.
	mb2 := inbox.New(cfg, st, st, testLogger(t))
	r := run(t, mb2)
	eventually(t, 10*time.Second, "the rest handled", func() bool { return len(st.commits()) == 2 })
	eventually(t, 10*time.Second, "idle", func() bool { return !mb2.Stats().LastSync.IsZero() })
	r.stop()
	validity := d.UIDValidity(t, "support", "INBOX")
	if p, _ := st.PendingFlags(cfg.Name, validity); len(p) != 0 {
		t.Errorf("pending flags left: %v", p)
	}
	for _, uid := range d.UIDs(t, "support", "INBOX") {
		if !hasFlag(d.Flags(t, "support", "INBOX", uid), imap.FlagSeen) {
			t.Errorf("uid %d not \\Seen", uid)
		}
	}
}

// TestCheck covers the transports and what Check reports.
func TestCheck(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	ctx := context.Background()
	check := func(mutate func(*inbox.Config)) error {
		cfg := config(d, "support")
		mutate(&cfg)
		return inbox.New(cfg, nil, nil, testLogger(t)).Check(ctx)
	}
	ok := map[string]func(*inbox.Config){
		"none": func(*inbox.Config) {},
		"starttls": func(c *inbox.Config) {
			c.TLS, c.RootCAs = inbox.TLSStartTLS, d.Cert.Pool
		},
		"tls": func(c *inbox.Config) {
			c.TLS, c.Port, c.RootCAs = inbox.TLSImplicit, d.IMAPSPort, d.Cert.Pool
		},
		"tls insecure": func(c *inbox.Config) {
			c.TLS, c.Port, c.InsecureSkipVerify = inbox.TLSImplicit, d.IMAPSPort, true
		},
		"move to missing folder": func(c *inbox.Config) { c.MoveTo = "Nowhere" },
	}
	for name, mutate := range ok {
		if err := check(mutate); err != nil {
			t.Errorf("%s: Check = %v", name, err)
		}
	}
	// Check created nothing.
	list, err := d.Client(t, "support").List("", "Nowhere", nil).Collect()
	if err != nil || len(list) != 0 {
		t.Errorf("Check created MoveTo: %v %v", list, err)
	}

	bad := map[string]struct {
		mutate func(*inbox.Config)
		want   string
	}{
		"untrusted cert":        {func(c *inbox.Config) { c.TLS, c.Port = inbox.TLSImplicit, d.IMAPSPort }, "certificate"},
		"tls to plaintext port": {func(c *inbox.Config) { c.TLS = inbox.TLSImplicit }, "tls handshake"},
		"missing folder":        {func(c *inbox.Config) { c.Folder = "Nope" }, `select "Nope"`},
		"invalid config":        {func(c *inbox.Config) { c.TLS = "ssl" }, "invalid config"},
	}
	for name, b := range bad {
		err := check(b.mutate)
		if err == nil || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), "mb-support") {
			t.Errorf("%s: Check = %v, want an error naming the mailbox and containing %q", name, err, b.want)
		}
	}
}

// TestCheckWrongPassword runs on its own Dovecot: a failed login delays the
// next logins from the same address.
func TestCheckWrongPassword(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	cfg := config(d, "support")
	cfg.Password = "wrong"
	err := inbox.New(cfg, nil, nil, testLogger(t)).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), `login to 127.0.0.1:`) || !strings.Contains(err.Error(), `as "support"`) {
		t.Errorf("Check with a wrong password = %v, want a login error naming the user", err)
	}
	if strings.Contains(fmt.Sprint(err), "wrong") {
		t.Errorf("error leaks the password: %v", err)
	}
}

// TestRunRecoversFromFailingLogin: a disabled account makes sessions fail;
// once enabled again the loop gets in and delivers.
func TestRunRecoversFromFailingLogin(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	d.Append(t, "support", "INBOX", testMail(1))
	d.DisableUser(t, "support")
	st := newMemStore()
	mb := inbox.New(config(d, "support"), st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "a failed login", func() bool { return mb.Stats().Errors >= 1 })
	d.EnableUser(t, "support")
	mb.Poke() // skip the rest of the backoff
	// Dovecot delays logins after a failure by a few seconds.
	eventually(t, 30*time.Second, "delivery after re-enabling", func() bool { return mb.Stats().Flagged == 1 })
	r.stop()
}

// TestRunInvalidConfig: a configuration no retry can fix is returned.
func TestRunInvalidConfig(t *testing.T) {
	t.Parallel()
	st := newMemStore()
	err := inbox.New(inbox.Config{Name: "x", Host: "localhost"}, st, st, nil).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "username is empty") {
		t.Errorf("Run = %v, want a config error", err)
	}
}

// TestCancelWhileServerDown: Run returns promptly when cancelled during
// its backoff, even with nothing to connect to.
func TestCancelWhileServerDown(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	d.Stop()
	st := newMemStore()
	cfg := config(d, "support")
	cfg.MinBackoff, cfg.MaxBackoff = time.Hour, time.Hour
	mb := inbox.New(cfg, st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "a failed connect", func() bool { return mb.Stats().Errors == 1 })
	r.stop()
}

// BenchmarkDeliver measures the loop end to end against Dovecot: b.N mails
// of about 5 KB dropped into the maildir, then fetched, handed to an
// in-memory handler and flagged \Seen, 100 per batch.
//
//	go test -run '^$' -bench Deliver -benchtime 5000x ./inbox/
func BenchmarkDeliver(b *testing.B) {
	d := mailtest.StartDovecot(b, map[string]string{"support": password})
	body := bytes.Repeat([]byte("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy\r\n"), 70)
	raws := make([][]byte, b.N)
	for i := range raws {
		raws[i] = append(testMail(i+1), body...)
	}
	d.DeliverMaildir(b, "support", "INBOX", raws...)
	st := newMemStore()
	cfg := config(d, "support")
	cfg.FetchBatch = 100
	mb := inbox.New(cfg, st, st, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)

	b.ResetTimer()
	start := time.Now()
	go func() { done <- mb.Run(ctx) }()
	for mb.Stats().Flagged < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "mails/s")
}
