package ticket

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/helpdesk/helpdesk/autoreply"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

func (h *harness) quarantine() []store.Quarantined {
	h.t.Helper()
	var qs []store.Quarantined
	if err := h.db.View(func(tx *store.Tx) error {
		var err error
		qs, err = tx.ListQuarantine()
		return err
	}); err != nil {
		h.t.Fatal(err)
	}
	return qs
}

func (h *harness) raw(ticketID uint64, seq uint64) []byte {
	h.t.Helper()
	var raw []byte
	if err := h.db.View(func(tx *store.Tx) error {
		var err error
		raw, err = tx.Raw(ticketID, seq)
		return err
	}); err != nil {
		h.t.Fatal(err)
	}
	return raw
}

// A panic before or inside the transaction (which then rolls back)
// quarantines the mail: the inbox's retry of the same UID finds it and
// does not loop. Replayed once the bug is gone, it becomes a ticket.
func TestPanicQuarantinesTheMailInsteadOfLooping(t *testing.T) {
	for _, stage := range []string{"prepare", "transaction"} {
		t.Run(stage, func(t *testing.T) { testPanicAt(t, stage) })
	}
}

func testPanicAt(t *testing.T, stage string) {
	h := newHarness(t)
	logs := h.captureLog()
	h.eng.fault = func(at string) {
		if at == stage {
			panic("injected fault")
		}
	}
	mail := msg("Ann <ann@example.org>", "Printer", "p1@example.org")
	r := h.handle(mail)
	if !r.Quarantined || !strings.Contains(r.Reason, "panic while handling the mail: injected fault") {
		t.Fatalf("panic: %+v", r)
	}
	if logs.count("level=ERROR") != 1 || logs.count("stack=") != 1 {
		t.Errorf("panic not logged once with its stack")
	}
	if h.db.View(func(tx *store.Tx) error {
		if tx.TicketExists(1) {
			t.Error("the panicked transaction was committed")
		}
		return nil
	}); len(h.outboxAll()) != 0 {
		t.Errorf("mail queued by a panicked transaction")
	}
	// The inbox retries the same UID: a duplicate now, still one record.
	h.uid--
	if again := h.handle(mail); again.Rule != threading.RuleDuplicate || !again.Quarantined {
		t.Errorf("retry of the same UID: %+v", again)
	}
	qs := h.quarantine()
	if len(qs) != 1 || qs[0].From != "ann@example.org" || qs[0].Subject != "Printer" {
		t.Fatalf("quarantine %+v", qs)
	}
	// Still broken: replay refuses and keeps the record.
	if _, err := h.eng.Replay(context.Background(), qs[0].ID); !errors.Is(err, ErrStillQuarantined) {
		t.Errorf("replay while the bug is there: %v", err)
	}
	h.eng.fault = nil
	r, err := h.eng.Replay(context.Background(), qs[0].ID)
	if err != nil || r.TicketID != 1 || r.Rule != threading.RuleNew || !r.Acked || r.Quarantined {
		t.Fatalf("replay: %+v %v", r, err)
	}
	if len(h.quarantine()) != 0 {
		t.Error("replayed mail still quarantined")
	}
	h.uid--
	if again := h.handle(mail); again.Rule != threading.RuleDuplicate || again.TicketID != 1 || again.Quarantined {
		t.Errorf("re-fetch after the replay: %+v", again)
	}
	if _, err := h.eng.Replay(context.Background(), qs[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second replay: %v", err)
	}
}

// An oversized mail gets one polite notice, composed like any outbound
// mail, in the quarantine's transaction; automated senders get none.
func TestOversizedMailGetsOneNotice(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxMessageBytes = 4000 })
	big := func(from, id string, extra ...string) string {
		return msg(from, "=?utf-8?q?Scan_of_contract=0D=0ABcc:_victim@example.net?=", id, extra...) + strings.Repeat("x", 5000)
	}
	r := h.handle(big("Ann Example <ann@example.org>", "big1@example.org"))
	if !r.Quarantined || !r.Notice || !strings.Contains(r.Reason, "too large") {
		t.Fatalf("oversized: %+v", r)
	}
	out := h.outboxAll()
	if len(out) != 1 || !out[0].Unfiled() || out[0].To[0] != "ann@example.org" || out[0].From != "support@example.com" {
		t.Fatalf("notice: %+v", out)
	}
	n, err := threading.Parse(out[0].Raw, threading.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Hello Ann Example,", "more than the\n3 KB this help desk accepts", "It has not been lost"} {
		if !strings.Contains(n.Text, want) {
			t.Errorf("notice text lacks %q:\n%s", want, n.Text)
		}
	}
	if n.InReplyTo[0] != "big1@example.org" || n.Header.Get("Auto-Submitted") != "auto-replied" || !autoreply.Classify(n, autoreply.Own{}).Automated {
		t.Errorf("notice header: %v", n.Header)
	}
	head, _, _ := bytes.Cut(out[0].Raw, []byte("\r\n\r\n"))
	if bytes.Contains(bytes.ToLower(head), []byte("\r\nbcc:")) {
		t.Errorf("header injected through the subject:\n%s", head)
	}
	// One per sender within the window; none to automated senders.
	for _, m := range []string{
		big("Ann Example <ann@example.org>", "big2@example.org"),
		big("Robot <robot@example.org>", "big3@example.org", "Auto-Submitted: auto-generated\n"),
		big("Billing <noreply@example.org>", "big4@example.org"),
	} {
		if r := h.handle(m); !r.Quarantined || r.Notice {
			t.Errorf("second or automated oversized mail: %+v", r)
		}
	}
	if n := len(h.outboxAll()); n != 1 {
		t.Errorf("%d notices, want 1", n)
	}
	if qs := h.quarantine(); len(qs) != 4 || qs[0].From != "ann@example.org" || qs[0].Key != "<big1@example.org>" {
		t.Errorf("quarantine %+v", qs)
	}
}

// After the operator raised the limit, replay turns the mail into a ticket;
// both keys of the mail then find it, whichever engine fetches it again.
func TestReplayAfterRaisingTheLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxMessageBytes = 4000 })
	big := msg("ann@example.org", "Contract", "big@example.org") + strings.Repeat("y", 5000)
	h.handle(big)
	noID := strings.Replace(big, "Message-ID: <big@example.org>\n", "", 1)
	h.handle(noID)
	qs := h.quarantine()
	if len(qs) != 2 {
		t.Fatalf("quarantine %+v", qs)
	}
	if _, err := h.eng.Replay(context.Background(), qs[0].ID); !errors.Is(err, ErrStillQuarantined) || !strings.Contains(err.Error(), "too large") {
		t.Errorf("replay under the same limit: %v", err)
	}
	raised := *h.eng
	raised.cfg.MaxMessageBytes = 1 << 20
	raised.log = slog.New(slog.DiscardHandler)
	for i, q := range qs {
		r, err := raised.Replay(context.Background(), q.ID)
		if err != nil || r.TicketID != uint64(i+1) || !r.Acked {
			t.Fatalf("replay %d: %+v %v", q.ID, r, err)
		}
	}
	if len(h.quarantine()) != 0 {
		t.Error("quarantine not empty after replay")
	}
	if got := h.raw(1, h.lastInbound(1).Seq); len(got) != len(big)+strings.Count(big, "\n") {
		t.Errorf("stored %d bytes", len(got))
	}
	// The small-limit engine re-fetching them finds the tickets.
	for i, m := range []string{big, noID} {
		if r := h.handle(m); r.Rule != threading.RuleDuplicate || r.TicketID != uint64(i+1) || r.Quarantined {
			t.Errorf("re-fetch %d: %+v", i, r)
		}
	}
}

func TestReleaseForcesEvenGarbageIntoATicket(t *testing.T) {
	h := newHarness(t)
	garbage := "\x00\x01\x02 not a mail at all, no header \xff\xfe"
	r := h.handle(garbage)
	if !r.Quarantined {
		t.Fatalf("garbage: %+v", r)
	}
	noFrom := "Subject: Who am I\nMessage-ID: <nofrom@example.org>\n\nhello\n"
	h.handle(noFrom)
	qs := h.quarantine()
	if len(qs) != 2 {
		t.Fatalf("quarantine %+v", qs)
	}
	if _, err := h.eng.Replay(context.Background(), qs[0].ID); !errors.Is(err, ErrStillQuarantined) {
		t.Errorf("replay of garbage: %v", err)
	}
	for i, q := range qs {
		r, err := h.eng.Release(context.Background(), q.ID)
		if err != nil || r.TicketID != uint64(i+1) || r.Rule != ruleReleased || r.Acked {
			t.Fatalf("release %d: %+v %v", q.ID, r, err)
		}
	}
	if len(h.outboxAll()) != 0 {
		t.Error("release sent mail")
	}
	tk := h.ticket(1)
	m := h.lastInbound(1)
	if tk.Subject != "(no subject)" || !strings.Contains(m.Text, "not a mail at all") ||
		!strings.Contains(strings.Join(m.Warnings, "\n"), "released from quarantine") {
		t.Errorf("released garbage: %+v %+v", tk, m)
	}
	if got := h.raw(1, m.Seq); string(got) != strings.ReplaceAll(garbage, "\n", "\r\n") {
		t.Errorf("raw not kept: %q", got)
	}
	if tk := h.ticket(2); tk.Subject != "Who am I" || tk.Requester != "" {
		t.Errorf("released mail without From: %+v", tk)
	}
	// Re-fetched, both are recognised.
	h.uid = 0
	for i, m := range []string{garbage, noFrom} {
		if r := h.handle(m); r.Rule != threading.RuleDuplicate || r.TicketID != uint64(i+1) {
			t.Errorf("re-fetch %d: %+v", i, r)
		}
	}
	if _, err := h.eng.Release(context.Background(), 99); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("release of an unknown id: %v", err)
	}
}
