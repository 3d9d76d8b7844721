package daemon_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/helpdesk/helpdesk/config"
	"github.com/helpdesk/helpdesk/internal/mailtest"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

const (
	aliceAddr = "alice@example.com"
	bobAddr   = "bob@example.com"
	annAddr   = "ann@example.org"
)

// newAgentEnv is newEnv with two agents in one team.
func newAgentEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, mailtest.SMTPOptions{})
	e.cfg.Agents = []config.Agent{
		{Email: aliceAddr, Name: "Alice Smith", Teams: []string{"l1"}},
		{Email: bobAddr, Name: "Bob Jones", Teams: []string{"l1"}},
	}
	return e
}

// outMail is one mail the SMTP sink accepted, parsed.
type outMail struct {
	To  []string // envelope recipients
	Raw []byte
	*threading.Message
}

func (e *env) sent() []outMail {
	e.t.Helper()
	var out []outMail
	for _, r := range e.smtp.Messages() {
		m, err := threading.Parse(r.Data, threading.Limits{})
		if err != nil {
			e.t.Fatalf("sent mail does not parse: %v", err)
		}
		out = append(out, outMail{To: r.To, Raw: r.Data, Message: m})
	}
	return out
}

// sentTo waits until n mails were sent to addr in all and returns them.
func (e *env) sentTo(addr string, n int) []outMail {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var got []outMail
		for _, m := range e.sent() {
			if slices.Contains(m.To, addr) {
				got = append(got, m)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d mails to %s within 15s, want %d", len(got), addr, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle waits until the outbox is empty and then a little longer, so a
// mail that should not be sent would have been.
func (e *env) settle() {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		q, _, err := e.d.DB().OutboxLen()
		if err != nil {
			e.t.Fatal(err)
		}
		if q == 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d mails still queued after 15s", q)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
}

func (e *env) ticket(id uint64) *store.Ticket {
	e.t.Helper()
	var tk *store.Ticket
	e.view(func(tx *store.Tx) error {
		var err error
		tk, err = tx.Ticket(id)
		return err
	})
	return tk
}

// agentReply is what a mail client sends when an agent answers a
// notification: new text on top, the notification quoted below, and the
// headers a client and its submission server add.
func agentReply(from, msgid, notificationID, body string, extra ...string) string {
	return fmt.Sprintf("Received: from laptop.internal (10.0.0.7) by smtp.example.com\n"+
		"From: %s\nTo: support@example.com\nSubject: Re: [Ticket#1] Printer offline\nMessage-ID: <%s>\n"+
		"In-Reply-To: <%s>\nReferences: <c1@example.org> <%s>\nDate: Tue, 24 Nov 2026 11:00:00 +0000\n"+
		"X-Originating-IP: [10.0.0.7]\nUser-Agent: Mozilla/5.0 Thunderbird/128.0\n%sContent-Type: text/plain; charset=utf-8\n\n"+
		"%s\n\n-- \nAlice Smith | IT | +1 555 0100\n\n"+
		"On Tue, Nov 24, 2026 at 10:00 AM Ann Example via support <support@example.com> wrote:\n> My printer shows error 49.\n> Status: new\n",
		from, msgid, notificationID, notificationID, strings.Join(extra, ""), body)
}

// openTicket delivers ann's first mail and returns the notification each
// agent got, by address.
func (e *env) openTicket(subject, msgid string) map[string]outMail {
	e.t.Helper()
	before := map[string]int{aliceAddr: len(e.sentToNow(aliceAddr)), bobAddr: len(e.sentToNow(bobAddr))}
	e.deliver(fmt.Sprintf("From: Ann Example <%s>\nTo: IT Support <support@example.com>\nCc: Dan <dan@example.org>\nSubject: %s\nMessage-ID: <%s>\nDate: Tue, 24 Nov 2026 10:00:00 +0000\nContent-Type: text/plain; charset=utf-8\n\nMy printer shows error 49.\n",
		annAddr, subject, msgid))
	out := map[string]outMail{}
	for addr, n := range before {
		out[addr] = e.sentTo(addr, n+1)[n]
	}
	return out
}

func (e *env) sentToNow(addr string) []outMail {
	var got []outMail
	for _, m := range e.sent() {
		if slices.Contains(m.To, addr) {
			got = append(got, m)
		}
	}
	return got
}

func TestAgentReplyIsRelayedToTheCustomer(t *testing.T) {
	e := newAgentEnv(t)
	e.start()
	notes := e.openTicket("Printer offline", "c1@example.org")
	n := notes[aliceAddr]
	if n.Header.Get("Auto-Submitted") != "auto-generated" || !strings.Contains(n.Subject, "[Ticket#1]") ||
		!strings.Contains(n.Text, "My printer shows error 49.") || !strings.Contains(n.Text, "#priority") {
		t.Fatalf("notification:\n%s", n.Raw)
	}
	if len(n.To) != 1 {
		t.Errorf("one notification per agent, got recipients %v", n.To)
	}
	e.deliver(agentReply("Alice Smith <alice@example.com>", "a1@mail.example.com", n.MessageID,
		"#priority high\n\nHello Ann,\nplease switch it off and on again."))
	got := e.sentTo(annAddr, 2) // the acknowledgement, then the answer
	rel := got[1]
	if !slices.Equal(rel.To, []string{annAddr, "dan@example.org"}) {
		t.Errorf("relay recipients %v", rel.To)
	}
	if want := "Hello Ann,\nplease switch it off and on again.\n"; rel.Text != want {
		t.Errorf("relayed text %q, want %q", rel.Text, want)
	}
	if !slices.Equal(rel.InReplyTo, []string{"c1@example.org"}) || !slices.Contains(rel.References, "c1@example.org") {
		t.Errorf("relay In-Reply-To %v References %v", rel.InReplyTo, rel.References)
	}
	if !strings.HasPrefix(rel.Subject, "[Ticket#1]") || rel.From.Addr != "support@example.com" {
		t.Errorf("relay subject %q from %s", rel.Subject, rel.From.Addr)
	}
	raw := strings.ToLower(string(rel.Raw))
	for _, leak := range []string{"received:", "x-originating-ip", "user-agent", "10.0.0.7", aliceAddr, "#priority", "+1 555", "wrote:"} {
		if strings.Contains(raw, leak) {
			t.Errorf("relay contains %q:\n%s", leak, rel.Raw)
		}
	}
	e.eventually("priority high, status pending", func(tx *store.Tx) bool {
		tk, err := tx.Ticket(1)
		return err == nil && tk.Priority == "high" && tk.Status == store.StatusPending
	})

	// `helpdesk tickets show 1 --json` reads this endpoint while serve runs.
	resp, err := http.Get("http://" + e.d.AdminAddr() + "/api/tickets/1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var shown struct {
		Messages []map[string]any `json:"messages"`
	}
	if err := json.Unmarshal(body, &shown); err != nil {
		t.Fatalf("tickets show JSON: %v\n%s", err, body)
	}
	var kinds []string
	for _, m := range shown.Messages {
		_, hasRule := m["matched_by"]
		kind, _ := m["kind"].(string)
		if !hasRule || kind == "" {
			t.Errorf("message without kind or matched_by: %v", m)
		}
		kinds = append(kinds, fmt.Sprintf("%s/%s/%v", m["direction"], kind, m["matched_by"]))
	}
	want := []string{"in/customer/new", "out/autoreply/", "out/notification/", "out/notification/", "in/agent/token", "out/agent/"}
	if !slices.Equal(kinds, want) {
		t.Errorf("messages (direction/kind/matched_by) = %v, want %v", kinds, want)
	}
}

func TestNotesCommandsAndErrorsNeverReachTheCustomer(t *testing.T) {
	e := newAgentEnv(t)
	e.start()
	notes := e.openTicket("Printer offline", "c1@example.org")
	e.sentTo(annAddr, 1) // the acknowledgement

	// bob leaves a note: alice, who acted before, gets it; ann never.
	e.deliver(agentReply("Alice <alice@example.com>", "a1@mail.example.com", notes[aliceAddr].MessageID, "#assign me"))
	e.deliver(agentReply("Bob <bob@example.com>", "b1@mail.example.com", notes[bobAddr].MessageID, "#note\nToner is empty, ordered."))
	note := e.sentTo(aliceAddr, 2)[1]
	if !strings.Contains(note.Text, "Toner is empty, ordered.") || !strings.Contains(note.Text, "Internal note from Bob Jones") {
		t.Errorf("note copy to alice:\n%s", note.Text)
	}
	// An unknown command: an error reply to alice, nothing applied.
	e.deliver(agentReply("Alice <alice@example.com>", "a2@mail.example.com", notes[aliceAddr].MessageID, "#prioritty high\nHello Ann"))
	errReply := e.sentTo(aliceAddr, 3)[2]
	if !strings.Contains(errReply.Text, `unknown command "#prioritty" (did you mean #priority?)`) ||
		errReply.Header.Get("Auto-Submitted") != "auto-replied" || !slices.Equal(errReply.InReplyTo, []string{"a2@mail.example.com"}) {
		t.Errorf("error reply:\n%s", errReply.Raw)
	}
	// #close alone.
	e.deliver(agentReply("Alice <alice@example.com>", "a3@mail.example.com", notes[aliceAddr].MessageID, "#close"))
	e.eventually("ticket closed", func(tx *store.Tx) bool {
		tk, err := tx.Ticket(1)
		return err == nil && tk.Status == store.StatusClosed
	})
	e.settle()
	if got := e.sentToNow(annAddr); len(got) != 1 {
		t.Errorf("ann received %d mails, want only the acknowledgement", len(got))
	}
	if got := e.sentToNow("dan@example.org"); len(got) != 0 {
		t.Errorf("dan received %d mails", len(got))
	}
	tk := e.ticket(1)
	if tk.Priority != "normal" || tk.Assignee != aliceAddr {
		t.Errorf("priority %s assignee %s", tk.Priority, tk.Assignee)
	}
	var kinds []string
	for _, m := range e.messages(1) {
		if m.Direction == store.DirectionIn {
			kinds = append(kinds, m.Kind)
		}
	}
	if want := []string{"customer", "agent", "note", "agent", "agent"}; !slices.Equal(kinds, want) {
		t.Errorf("inbound kinds %v, want %v", kinds, want)
	}
}

func TestForgedAgentMailReachesNoCustomer(t *testing.T) {
	e := newAgentEnv(t)
	e.cfg.Security.TrustedAuthservID = "mx.example.com"
	e.start()
	notes := e.openTicket("Printer offline", "c1@example.org")
	other := e.openTicket("Scanner jammed", "s1@example.org")
	e.sentTo(annAddr, 2) // two acknowledgements
	pass := "Authentication-Results: mx.example.com; dkim=pass header.d=example.com\n"
	forged := []string{
		// No token at all, only the subject tag.
		strings.Replace(agentReply("Alice <alice@example.com>", "f1@evil.example", "x@evil.example", "#close\nDone."),
			"In-Reply-To: <x@evil.example>\nReferences: <c1@example.org> <x@evil.example>\n", "", 1),
		// Bob's token, alice's address.
		agentReply("Alice <alice@example.com>", "f2@evil.example", notes[bobAddr].MessageID, "#close\nDone.", pass),
		// Alice's token of ticket 2 with the number changed to 1.
		agentReply("Alice <alice@example.com>", "f3@evil.example", strings.Replace(other[aliceAddr].MessageID, "hd.2.", "hd.1.", 1), "#close\nDone.", pass),
		// Alice's token, but authentication failed.
		agentReply("Alice <alice@example.com>", "f4@evil.example", notes[aliceAddr].MessageID, "#close\nDone.",
			"Authentication-Results: mx.example.com; dkim=fail header.d=example.com; spf=fail smtp.mailfrom=example.com\n"),
	}
	for _, raw := range forged {
		e.deliver(raw)
	}
	// The real alice last: once her change shows, the forged mails were handled.
	e.deliver(agentReply("Alice <alice@example.com>", "a1@mail.example.com", notes[aliceAddr].MessageID, "#priority urgent", pass))
	e.eventually("alice's authenticated command", func(tx *store.Tx) bool {
		tk, err := tx.Ticket(1)
		return err == nil && tk.Priority == "urgent"
	})
	e.settle()
	if got := e.sentToNow(annAddr); len(got) != 2 {
		t.Errorf("ann received %d mails, want the two acknowledgements", len(got))
	}
	if got := e.sentToNow("dan@example.org"); len(got) != 0 {
		t.Errorf("dan received %d mails", len(got))
	}
	if tk := e.ticket(1); tk.Status != store.StatusNew {
		t.Errorf("forged #close applied: status %s", tk.Status)
	}
	var forgedKinds []string
	for _, m := range e.messages(1) {
		if strings.HasSuffix(m.MessageID, "@evil.example") {
			forgedKinds = append(forgedKinds, m.Kind)
		}
	}
	if want := []string{"customer", "customer", "customer", "customer"}; !slices.Equal(forgedKinds, want) {
		t.Errorf("forged mails stored on ticket 1 as %v, want %v", forgedKinds, want)
	}
}
