package ticket

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

	"github.com/helpdesk/helpdesk/autoreply"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

var clock = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

type harness struct {
	t   *testing.T
	db  *store.DB
	eng *Engine
	uid uint32
	now time.Time
}

func newHarness(t *testing.T, mutate ...func(*Config)) *harness {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "hd.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(); err != nil {
			t.Errorf("store Check: %v", err)
		}
		db.Close()
	})
	cfg := Config{
		SubjectPrefix:    "Ticket",
		Domain:           "helpdesk.example.com",
		Mailboxes:        []Mailbox{{Name: "support", Address: "support@example.com"}},
		Agents:           []Agent{{Email: "alice@example.com", Name: "Alice"}},
		AutoreplyEnabled: true,
		MaxPerSender:     5,
		Per:              time.Hour,
		GlobalMaxPerHour: 1000,
		MaxMessageBytes:  1 << 20,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	tmpl, err := autoreply.LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, db: db, now: clock}
	h.eng = New(db, cfg, tmpl, slog.New(slog.DiscardHandler))
	h.eng.SetClock(func() time.Time { return h.now })
	return h
}

func (h *harness) handle(raw string) Result {
	h.t.Helper()
	h.uid++
	res, err := h.eng.Handle(context.Background(), Inbound{Mailbox: "support", UIDValidity: 1, UID: h.uid, Raw: []byte(strings.ReplaceAll(raw, "\n", "\r\n"))})
	if err != nil {
		h.t.Fatalf("Handle: %v", err)
	}
	return res
}

// outbox is the queued mail to customers: everything but the
// notifications to agents.
func (h *harness) outbox() []store.Outbound {
	h.t.Helper()
	var out []store.Outbound
	for _, o := range h.outboxAll() {
		if h.kindOf(o) != store.KindNotification {
			out = append(out, o)
		}
	}
	return out
}

// outboxAll is every queued mail, oldest first.
func (h *harness) outboxAll() []store.Outbound {
	h.t.Helper()
	due, err := h.db.OutboxDue(h.now.Add(24*time.Hour), 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return due
}

// kindOf is the kind of the message that records an outbound mail.
func (h *harness) kindOf(o store.Outbound) string {
	h.t.Helper()
	if o.Unfiled() {
		return "unfiled"
	}
	var kind string
	err := h.db.View(func(tx *store.Tx) error {
		m, err := tx.Message(o.TicketID, o.MessageSeq)
		if err == nil {
			kind = m.Kind
		}
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return kind
}

func (h *harness) ticket(id uint64) *store.Ticket {
	h.t.Helper()
	var tk *store.Ticket
	h.db.View(func(tx *store.Tx) error {
		var err error
		tk, err = tx.Ticket(id)
		return err
	})
	if tk == nil {
		h.t.Fatalf("ticket %d missing", id)
	}
	return tk
}

func msg(from, subject, id string, extra ...string) string {
	idLine := ""
	if id != "" {
		idLine = "Message-ID: <" + id + ">\n"
	}
	return fmt.Sprintf("From: %s\nTo: support@example.com\nSubject: %s\n%sDate: Tue, 24 Nov 2026 10:00:00 +0000\n%s\nbody of %s\n",
		from, subject, idLine, strings.Join(extra, ""), subject)
}

func TestSameMailTwiceIsOneTicketOneAck(t *testing.T) {
	for _, id := range []string{"once@example.org", ""} {
		t.Run("message-id="+id, func(t *testing.T) {
			h := newHarness(t)
			first := h.handle(msg("ann@example.org", "Printer", id))
			second := h.handle(msg("ann@example.org", "Printer", id))
			if first.Rule != threading.RuleNew || !first.Acked {
				t.Fatalf("first: %+v", first)
			}
			if second.Rule != threading.RuleDuplicate || second.TicketID != first.TicketID || second.Acked {
				t.Fatalf("second: %+v", second)
			}
			if n := len(h.outbox()); n != 1 {
				t.Errorf("%d outbound mails, want 1", n)
			}
			if h.ticket(1).MessageCount != 3 {
				t.Errorf("message count %d, want 3 (mail + ack + notification to alice)", h.ticket(1).MessageCount)
			}
		})
	}
}

func TestAcknowledgementIsThreadedAndMarked(t *testing.T) {
	h := newHarness(t)
	h.handle(msg("Ann Example <ann@example.org>", "Printer offline", "p1@example.org", "References: <older@example.org>\n"))
	out := h.outbox()
	if len(out) != 1 {
		t.Fatalf("%d outbound", len(out))
	}
	r, err := mail.CreateReader(bytes.NewReader(out[0].Raw))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := r.Header.Subject()
	for name, c := range map[string][2]string{
		"Subject":                  {subject, "[Ticket#1]"},
		"Auto-Submitted":           {r.Header.Get("Auto-Submitted"), "auto-replied"},
		"X-Auto-Response-Suppress": {r.Header.Get("X-Auto-Response-Suppress"), "All"},
		"In-Reply-To":              {r.Header.Get("In-Reply-To"), "<p1@example.org>"},
		"References":               {r.Header.Get("References"), "<older@example.org> <p1@example.org>"},
		"To":                       {r.Header.Get("To"), "ann@example.org"},
	} {
		if !strings.Contains(c[0], c[1]) {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if out[0].From != "support@example.com" || len(out[0].To) != 1 || out[0].To[0] != "ann@example.org" {
		t.Errorf("envelope %s → %v", out[0].From, out[0].To)
	}
}

func TestAcknowledgementRateLimits(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxPerSender = 3; c.GlobalMaxPerHour = 4 })
	for i := range 5 {
		h.handle(msg("ann@example.org", fmt.Sprintf("issue %d", i), fmt.Sprintf("a%d@example.org", i)))
	}
	if n := len(h.outbox()); n != 3 {
		t.Fatalf("%d acks to one sender, want 3", n)
	}
	h.handle(msg("bob@example.org", "bob 1", "b1@example.org"))
	r := h.handle(msg("carl@example.org", "carl 1", "c1@example.org"))
	if n := len(h.outbox()); n != 4 || r.Acked || !strings.Contains(r.Reason, "global") {
		t.Fatalf("%d acks after global cap (last: %+v), want 4", n, r)
	}
	h.now = h.now.Add(2 * time.Hour)
	if r := h.handle(msg("ann@example.org", "later", "a9@example.org")); !r.Acked {
		t.Errorf("window did not slide: %+v", r)
	}
}

func TestCustomerReplyReopensButAutoReplyDoesNot(t *testing.T) {
	h := newHarness(t)
	h.handle(msg("ann@example.org", "Wifi", "w1@example.org"))
	setStatus := func(s string) {
		h.db.Update(func(tx *store.Tx) error {
			tk, _ := tx.Ticket(1)
			tk.Status = s
			return tx.UpdateTicket(tk)
		})
	}
	setStatus(store.StatusPending)
	r := h.handle(msg("ann@example.org", "Automatic reply: [Ticket#1] Wifi", "w2@example.org", "Auto-Submitted: auto-replied\n"))
	if r.TicketID != 1 || h.ticket(1).Status != store.StatusPending {
		t.Fatalf("auto-reply: %+v, status %s", r, h.ticket(1).Status)
	}
	r = h.handle(msg("ann@example.org", "Re: [Ticket#1] Wifi", "w3@example.org"))
	if r.Rule != threading.RuleSubjectTag || h.ticket(1).Status != store.StatusOpen {
		t.Fatalf("reply: %+v, status %s", r, h.ticket(1).Status)
	}
	setStatus(store.StatusResolved)
	h.handle(msg("ann@example.org", "Re: [Ticket#1] Wifi", "w4@example.org"))
	if s := h.ticket(1).Status; s != store.StatusOpen {
		t.Fatalf("resolved ticket not reopened: %s", s)
	}
}

func TestStrangerCannotJoinByTicketNumber(t *testing.T) {
	h := newHarness(t)
	h.handle(msg("ann@example.org", "Payroll question", "s1@example.org"))
	r := h.handle(msg("mallory@evil.example", "Re: [Ticket#1] Payroll question", "s2@evil.example"))
	if r.Rule != threading.RuleNew || r.TicketID != 2 {
		t.Fatalf("stranger: %+v", r)
	}
	if h.ticket(1).MessageCount != 3 {
		t.Errorf("ticket 1 changed: %d messages, want 3 (mail + ack + notification)", h.ticket(1).MessageCount)
	}
}

func TestHeaderInjectionThroughSubjectIsNeutralised(t *testing.T) {
	h := newHarness(t)
	// An encoded-word that decodes to CR LF followed by a header.
	h.handle(msg("ann@example.org", "=?utf-8?q?Hello=0D=0ABcc:_victim@example.net?=", "inj@example.org"))
	// The acknowledgement and the notification to alice both carry the subject.
	out := h.outboxAll()
	if len(out) != 2 {
		t.Fatalf("%d outbound, want ack + notification", len(out))
	}
	for _, o := range out {
		head, _, _ := bytes.Cut(o.Raw, []byte("\r\n\r\n"))
		for _, line := range strings.Split(string(head), "\r\n") {
			if strings.HasPrefix(strings.ToLower(line), "bcc:") {
				t.Fatalf("injected header in outbound mail: %q", line)
			}
		}
		if len(o.To) != 1 {
			t.Errorf("recipients %v", o.To)
		}
	}
}

func TestBrokenMailIsQuarantinedNotDropped(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxMessageBytes = 2000 })
	big := msg("ann@example.org", "huge", "big@example.org") + strings.Repeat("x", 3000)
	r := h.handle(big)
	if !r.Quarantined || !strings.Contains(r.Reason, "too large") {
		t.Fatalf("oversized: %+v", r)
	}
	r = h.handle("this is not a mail at all")
	if !r.Quarantined && r.TicketID == 0 {
		t.Fatalf("garbage neither quarantined nor a ticket: %+v", r)
	}
	again := h.handle(big)
	if again.Rule != threading.RuleDuplicate {
		t.Errorf("re-fetch of a quarantined mail: %+v", again)
	}
	var qs []store.Quarantined
	h.db.View(func(tx *store.Tx) error { qs, _ = tx.ListQuarantine(); return nil })
	if len(qs) < 1 || qs[0].Reason == "" {
		t.Fatalf("quarantine %+v", qs)
	}
	// Only the oversized mail's sender gets a notice (quarantine_test.go).
	if out := h.outbox(); len(out) != 1 || out[0].To[0] != "ann@example.org" || !out[0].Unfiled() {
		t.Errorf("outbound mail for broken input: %+v", out)
	}
}

// Every raw message of the shared corpus ends in a ticket or in quarantine
// with a reason, without a panic; bounces, out-of-office and other
// automated mails get no acknowledgement.
func TestCorpusEveryMailKeptAutomatedNeverAcked(t *testing.T) {
	dir := filepath.Join("..", "threading", "testdata", "corpus")
	categories := readManifest(t, filepath.Join(dir, "manifest.tsv"))
	h := newHarness(t, func(c *Config) { c.MaxPerSender = 1000; c.MaxMessageBytes = 25 << 20 })
	var tickets, quarantined, acked int
	for path, category := range categories {
		raw, err := os.ReadFile(filepath.Join(dir, path))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		h.uid++
		res, err := h.eng.Handle(context.Background(), Inbound{Mailbox: "support", UIDValidity: 1, UID: h.uid, Raw: raw})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch {
		case res.Quarantined:
			quarantined++
			if res.Reason == "" {
				t.Errorf("%s quarantined without a reason", path)
			}
		case res.TicketID != 0:
			tickets++
		case res.Rule == threading.RuleDuplicate:
		default:
			t.Errorf("%s: neither ticket nor quarantine: %+v", path, res)
		}
		if res.Acked {
			acked++
			if category == "bounce" || category == "ooo" || category == "autoreply" {
				t.Errorf("%s (%s) was acknowledged", path, category)
			}
		}
	}
	t.Logf("corpus: %d mails → %d tickets, %d quarantined, %d acknowledged", len(categories), tickets, quarantined, acked)
	if len(categories) < 250 {
		t.Errorf("only %d corpus mails found", len(categories))
	}
}

// readManifest returns path → category for the raw messages of the corpus.
func readManifest(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := make(map[string]string)
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 5 || cols[3] != "raw" {
			continue
		}
		out[cols[0]] = cols[4]
	}
	return out
}
