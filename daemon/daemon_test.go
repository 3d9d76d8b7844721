package daemon_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/mail"

	"github.com/helpdesk/helpdesk/config"
	"github.com/helpdesk/helpdesk/daemon"
	"github.com/helpdesk/helpdesk/internal/mailtest"
	"github.com/helpdesk/helpdesk/store"
)

const (
	supportAddr = "support@example.com"
	domain      = "helpdesk.example.com"
)

// env is one helpdesk wired to a real Dovecot and an SMTP sink.
type env struct {
	t    *testing.T
	dove *mailtest.Dovecot
	smtp *mailtest.SMTPSink
	cfg  *config.Config

	d      *daemon.Daemon
	cancel context.CancelFunc
	done   chan error
}

func newEnv(t *testing.T, smtpOpts mailtest.SMTPOptions) *env {
	t.Helper()
	dove := mailtest.StartDovecot(t, map[string]string{"support": "secret"})
	sink := mailtest.StartSMTP(t, smtpOpts)
	smtpTLS := config.TLSNone
	if smtpOpts.TLS {
		smtpTLS = config.TLSStartTLS
	}
	cfg := &config.Config{
		Database: filepath.Join(t.TempDir(), "helpdesk.db"),
		Log:      config.Log{Level: "debug", Format: "text"},
		HTTP:     config.HTTP{Listen: "127.0.0.1:0"},
		Ticket:   config.Ticket{SubjectPrefix: "Ticket", Domain: domain},
		SMTP: config.SMTP{Host: sink.Host, Port: sink.Port, TLS: smtpTLS, Username: smtpOpts.Username,
			Password: smtpOpts.Password, HELO: domain, Timeout: 5 * time.Second},
		Mailboxes: []config.Mailbox{{
			Name: "support", Address: supportAddr,
			// Implicit TLS with a certificate the test trusts: the real thing.
			IMAP: config.IMAP{Host: dove.Host, Port: dove.IMAPSPort, TLS: config.TLSImplicit,
				Username: "support", Password: "secret", Folder: "INBOX"},
			PollInterval: 2 * time.Second, IDLE: true,
		}},
		// No agents: these tests are about the customer mail loop; agent_test.go adds them.
		Autoreply: config.Autoreply{Enabled: true, MaxPerSender: 5, Per: time.Hour, GlobalMaxPerHour: 1000},
		Outbox:    config.Outbox{MaxAttempts: 20, MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond},
		Limits:    config.Limits{MaxMessageBytes: 25 << 20},
	}
	e := &env{t: t, dove: dove, smtp: sink, cfg: cfg}
	t.Cleanup(e.stop)
	return e
}

// start runs the daemon in the background until stop.
func (e *env) start() {
	e.t.Helper()
	d, err := daemon.Open(daemon.Options{
		Config:  e.cfg,
		Log:     slog.New(slog.NewTextHandler(newTestWriter(e.t), &slog.HandlerOptions{Level: slog.LevelDebug})),
		RootCAs: e.dove.Cert.Pool,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.d, e.cancel, e.done = d, cancel, make(chan error, 1)
	go func() { e.done <- d.Run(ctx) }()
}

// stop drains the daemon, checks the database invariants and closes it.
func (e *env) stop() {
	if e.d == nil {
		return
	}
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		e.t.Fatal("daemon did not drain within 20s")
	}
	if err := e.d.DB().Check(); err != nil {
		e.t.Errorf("store Check: %v", err)
	}
	e.d.Close()
	e.d = nil
}

// testWriter sends log lines to t.Log until the test's cleanup starts;
// goroutines that log later (a send finishing after shutdown) are dropped
// instead of panicking the test binary.
type testWriter struct {
	t    *testing.T
	mu   *sync.Mutex
	done *bool
}

func newTestWriter(t *testing.T) testWriter {
	w := testWriter{t: t, mu: new(sync.Mutex), done: new(bool)}
	t.Cleanup(func() {
		w.mu.Lock()
		*w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !*w.done {
		w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

// deliver puts a mail into the support INBOX as an MTA would.
func (e *env) deliver(raw string) imap.UID {
	e.t.Helper()
	return e.dove.Append(e.t, "support", "INBOX", []byte(strings.ReplaceAll(raw, "\n", "\r\n")))
}

func (e *env) view(fn func(tx *store.Tx) error) {
	e.t.Helper()
	if err := e.d.DB().View(fn); err != nil {
		e.t.Fatal(err)
	}
}

// eventually polls cond until it holds or 15 s pass.
func (e *env) eventually(what string, cond func(tx *store.Tx) bool) {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var ok bool
		e.view(func(tx *store.Tx) error { ok = cond(tx); return nil })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) ticketCount() int {
	var n int
	e.view(func(tx *store.Tx) error {
		tks, err := tx.ListTickets(store.ListOptions{})
		n = len(tks)
		return err
	})
	return n
}

func (e *env) messages(id uint64) []store.Message {
	var msgs []store.Message
	e.view(func(tx *store.Tx) error {
		var err error
		msgs, err = tx.Messages(id)
		return err
	})
	return msgs
}

func header(t *testing.T, raw []byte) *mail.Header {
	t.Helper()
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse sent mail: %v", err)
	}
	return &r.Header
}

func mailFrom(from, subject, msgid string, extra ...string) string {
	return fmt.Sprintf("From: %s\nTo: IT Support <support@example.com>\nSubject: %s\nMessage-ID: <%s>\nDate: Tue, 24 Nov 2026 10:00:00 +0000\n%sContent-Type: text/plain; charset=utf-8\n\nHello, this is %s.\n",
		from, subject, msgid, strings.Join(extra, ""), msgid)
}

func TestNewMailBecomesTicketWithAcknowledgement(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{TLS: true, Username: "helpdesk", Password: "smtp-secret"})
	uid := e.deliver(mailFrom("Ann Example <ann@example.org>", "Printer on 3rd floor offline", "p1@example.org"))
	e.start()

	got := e.smtp.WaitFor(t, 1, 15*time.Second)
	ack := got[0]
	h := header(t, ack.Data)
	subject, _ := h.Subject()
	checks := map[string][2]string{
		"subject tag":              {subject, "[Ticket#1]"},
		"Auto-Submitted":           {h.Get("Auto-Submitted"), "auto-replied"},
		"X-Auto-Response-Suppress": {h.Get("X-Auto-Response-Suppress"), "All"},
		"In-Reply-To":              {h.Get("In-Reply-To"), "<p1@example.org>"},
		"Message-ID domain":        {h.Get("Message-Id"), "@" + domain + ">"},
	}
	for name, c := range checks {
		if !strings.Contains(c[0], c[1]) {
			t.Errorf("ack %s = %q, want it to contain %q", name, c[0], c[1])
		}
	}
	if !slices.Equal(ack.To, []string{"ann@example.org"}) || !ack.TLS || ack.User != "helpdesk" {
		t.Errorf("ack envelope to=%v tls=%v user=%q", ack.To, ack.TLS, ack.User)
	}
	e.eventually("ticket 1", func(tx *store.Tx) bool { return tx.TicketExists(1) })
	e.view(func(tx *store.Tx) error {
		tk, _ := tx.Ticket(1)
		if tk.Requester != "ann@example.org" || tk.Status != store.StatusNew || tk.Subject != "Printer on 3rd floor offline" {
			t.Errorf("ticket %+v", tk)
		}
		return nil
	})
	waitSeen(t, e, uid)
}

// waitSeen waits until the server has \Seen on uid: the flag follows the commit.
func waitSeen(t *testing.T, e *env, uid imap.UID) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(e.dove.Flags(t, "support", "INBOX", uid), imap.FlagSeen) {
		if time.Now().After(deadline) {
			t.Fatalf("uid %d never flagged \\Seen", uid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestFollowUpsThreadIntoTheirTicket(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	e.start()
	e.deliver(mailFrom("Ann <ann@example.org>", "VPN drops every hour", "v1@example.org", "Cc: Bob <bob@example.org>\n"))
	ack := e.smtp.WaitFor(t, 1, 15*time.Second)[0]
	ackID := header(t, ack.Data).Get("Message-Id")

	// By our token, even with a changed subject.
	e.deliver(mailFrom("Ann <ann@example.org>", "other words", "v2@example.org",
		"In-Reply-To: "+ackID+"\n", "References: <v1@example.org> "+ackID+"\n"))
	// By a known References id that is not ours (a reply to her own first mail).
	e.deliver(mailFrom("Ann <ann@example.org>", "forgot to say", "v3@example.org", "References: <v1@example.org>\n"))
	// By subject tag, from the CC'd colleague (a participant).
	e.deliver(mailFrom("Bob <bob@example.org>", "Re: [Ticket#1] VPN drops every hour", "v4@example.org"))
	e.eventually("four messages on ticket 1", func(tx *store.Tx) bool {
		tk, err := tx.Ticket(1)
		return err == nil && tk.MessageCount == 5 // 4 inbound + the ack
	})
	// A stranger who knows the number starts a ticket of their own.
	e.deliver(mailFrom("Mallory <mallory@evil.example>", "Re: [Ticket#1] VPN drops every hour", "m1@evil.example"))
	e.eventually("ticket 2", func(tx *store.Tx) bool { return tx.TicketExists(2) })

	var rules []string
	for _, m := range e.messages(1) {
		if m.Direction == store.DirectionIn {
			rules = append(rules, m.MatchedBy)
		}
	}
	if want := []string{"new", "token", "references", "subject_tag"}; !slices.Equal(rules, want) {
		t.Errorf("matched_by on ticket 1 = %v, want %v", rules, want)
	}
	e.view(func(tx *store.Tx) error {
		tk, _ := tx.Ticket(2)
		if tk.Requester != "mallory@evil.example" {
			t.Errorf("ticket 2 requester %q", tk.Requester)
		}
		tk1, _ := tx.Ticket(1)
		if !slices.Equal(tk1.CC, []string{"bob@example.org"}) {
			t.Errorf("ticket 1 cc %v", tk1.CC)
		}
		return nil
	})
	// Follow-ups get no second acknowledgement; the stranger's new ticket gets one.
	time.Sleep(300 * time.Millisecond)
	if n := len(e.smtp.Messages()); n != 2 {
		t.Errorf("%d mails sent, want 2 acknowledgements", n)
	}
}

func TestAutomatedMailGetsNoAcknowledgement(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	e.start()
	cases := []string{
		mailFrom("Ann <ann@example.org>", "Out of office", "a1@example.org", "Auto-Submitted: auto-replied\n"),
		mailFrom("News <news@example.org>", "Weekly", "a2@example.org", "List-Id: <news.example.org>\n"),
		mailFrom("Bulk <bulk@example.org>", "Offer", "a3@example.org", "Precedence: bulk\n"),
		mailFrom("MAILER-DAEMON <mailer-daemon@example.org>", "Undelivered Mail Returned to Sender", "a4@example.org"),
		mailFrom("Ops <noreply@example.org>", "Your invoice", "a5@example.org"),
	}
	for _, raw := range cases {
		e.deliver(raw)
	}
	// A person's mail last: once its ack is out, the automated ones were handled.
	e.deliver(mailFrom("Ann <ann@example.org>", "Real question", "human@example.org"))
	got := e.smtp.WaitFor(t, 1, 15*time.Second)
	e.eventually("all six tickets", func(tx *store.Tx) bool { return tx.TicketExists(6) })
	time.Sleep(300 * time.Millisecond)
	if got = e.smtp.Messages(); len(got) != 1 || !strings.Contains(string(got[0].Data), "human@example.org") {
		t.Fatalf("sent %d mails; want exactly the one ack to the human mail", len(got))
	}
	for id := uint64(1); id <= 5; id++ {
		m := e.messages(id)[0]
		if m.Automated == "" {
			t.Errorf("ticket %d (%s) not classified automated", id, m.Subject)
		}
	}
}

// A crash after the commit and before the \Seen flag: on restart the mail
// is flagged from the pending list, and even a full re-fetch (checkpoint
// lost) creates nothing twice.
func TestRestartAfterCommitBeforeFlagIsANoOp(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	uid := e.deliver(mailFrom("Ann <ann@example.org>", "Laptop broken", "l1@example.org"))
	e.start()
	e.smtp.WaitFor(t, 1, 15*time.Second)
	waitSeen(t, e, uid)
	e.stop()

	// Undo what happened after the commit: the flag on the server and the
	// checkpoint, as if the process had died right after the commit.
	c := e.dove.Client(t, "support")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	rewindCheckpoint(t, e.cfg.Database, "support", uid)

	e.start()
	waitSeen(t, e, uid)
	time.Sleep(500 * time.Millisecond)
	if n := e.ticketCount(); n != 1 {
		t.Errorf("%d tickets after re-fetch, want 1", n)
	}
	if n := len(e.smtp.Messages()); n != 1 {
		t.Errorf("%d acknowledgements after re-fetch, want 1", n)
	}
	if n := len(e.messages(1)); n != 2 {
		t.Errorf("ticket 1 has %d messages, want 2", n)
	}
}

// rewindCheckpoint moves a mailbox checkpoint back to before uid and adds
// nothing else, with the daemon stopped.
func rewindCheckpoint(t *testing.T, path, mailbox string, uid imap.UID) {
	t.Helper()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cp, _ := db.MailboxCheckpoint(mailbox)
	err = db.Update(func(tx *store.Tx) error {
		// A new UIDVALIDITY value resets; then restore the real one at uid-1.
		if err := tx.AdvanceCheckpoint(mailbox, cp.UIDValidity+1, 0); err != nil {
			return err
		}
		return tx.AdvanceCheckpoint(mailbox, cp.UIDValidity, uint32(uid)-1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := db.MailboxCheckpoint(mailbox); got.LastUID != uint32(uid)-1 {
		t.Fatalf("checkpoint not rewound: %+v", got)
	}
}

// Stopping serve in the middle of a backlog and starting it again yields
// every ticket once and every acknowledgement once.
func TestStopMidIngestAndRestart(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	const n = 40
	for i := range n {
		e.deliver(mailFrom(fmt.Sprintf("User %d <u%d@example.org>", i, i), fmt.Sprintf("Problem %d", i), fmt.Sprintf("b%d@example.org", i)))
	}
	e.start()
	e.eventually("a few tickets", func(tx *store.Tx) bool { return tx.TicketExists(3) })
	e.stop()
	stoppedAt := e.ticketCountFromFile()
	e.start()
	e.eventually("every ticket", func(tx *store.Tx) bool { return tx.TicketExists(n) })
	got := e.smtp.WaitFor(t, n, 20*time.Second)
	time.Sleep(300 * time.Millisecond)
	got = e.smtp.Messages()
	t.Logf("stopped after %d of %d tickets", stoppedAt, n)
	if c := e.ticketCount(); c != n {
		t.Errorf("%d tickets, want %d", c, n)
	}
	ids := map[string]bool{}
	rcpts := map[string]int{}
	for _, m := range got {
		ids[header(t, m.Data).Get("Message-Id")] = true
		rcpts[m.To[0]]++
	}
	if len(got) != n || len(ids) != n || len(rcpts) != n {
		t.Errorf("%d mails, %d distinct Message-IDs, %d recipients; want %d of each", len(got), len(ids), len(rcpts), n)
	}
}

func (e *env) ticketCountFromFile() int {
	db, err := store.Open(e.cfg.Database, store.Options{ReadOnly: true})
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	var n int
	db.View(func(tx *store.Tx) error {
		tks, _ := tx.ListTickets(store.ListOptions{})
		n = len(tks)
		return nil
	})
	return n
}

// The acknowledgement survives an SMTP server that says 451 and one that is
// down, also across a restart of helpdesk, and is delivered exactly once.
func TestOutboxRetriesUntilSMTPIsBack(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	e.smtp.FailWith(451, "4.3.0 try again later")
	e.start()
	e.deliver(mailFrom("Ann <ann@example.org>", "Monitor flickers", "f1@example.org"))
	e.eventually("a failed attempt recorded", func(tx *store.Tx) bool {
		msgs, _ := tx.Messages(1)
		return len(msgs) == 2 && msgs[1].Delivery != nil && msgs[1].Delivery.Attempts >= 1 &&
			strings.Contains(msgs[1].Delivery.LastError, "451")
	})
	// Now the server is gone altogether, and helpdesk restarts meanwhile.
	e.smtp.Stop()
	e.smtp.FailWith(0, "")
	e.stop()
	e.start()
	time.Sleep(500 * time.Millisecond)
	if n := len(e.smtp.Messages()); n != 0 {
		t.Fatalf("%d mails accepted while the server was down", n)
	}
	e.smtp.Start()
	got := e.smtp.WaitFor(t, 1, 15*time.Second)
	time.Sleep(500 * time.Millisecond)
	if got = e.smtp.Messages(); len(got) != 1 {
		t.Fatalf("%d deliveries, want 1", len(got))
	}
	e.eventually("delivery recorded", func(tx *store.Tx) bool {
		msgs, _ := tx.Messages(1)
		return msgs[1].Delivery.Status == "sent"
	})
	if q, _, _ := e.d.DB().OutboxLen(); q != 0 {
		t.Errorf("%d mails still queued", q)
	}
}

func TestMoveToArchive(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	e.cfg.Mailboxes[0].IMAP.MoveTo = "Archive"
	e.deliver(mailFrom("Ann <ann@example.org>", "Keyboard", "k1@example.org"))
	e.start()
	e.eventually("ticket 1", func(tx *store.Tx) bool { return tx.TicketExists(1) })
	deadline := time.Now().Add(10 * time.Second)
	for len(e.dove.UIDs(t, "support", "Archive")) != 1 || len(e.dove.UIDs(t, "support", "INBOX")) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("INBOX %v, Archive %v", e.dove.UIDs(t, "support", "INBOX"), e.dove.UIDs(t, "support", "Archive"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
