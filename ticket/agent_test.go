package ticket

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

const (
	alice   = "alice@example.com"
	bob     = "bob@example.com"
	carol   = "carol@example.com"
	l2Team  = "l2-team@example.com"
	comment = "support-comment@example.com"
	ann     = "ann@example.org"
)

// agentConfig has three agents in two teams, the second with a team
// address, and a comment address on the mailbox.
func agentConfig(c *Config) {
	c.Mailboxes = []Mailbox{{Name: "support", Address: "support@example.com", CommentAddress: comment}}
	c.Agents = []Agent{
		{Email: alice, Name: "Alice Smith", Teams: []string{"l1"}},
		{Email: bob, Name: "Bob Jones", Teams: []string{"l1"}},
		{Email: carol, Name: "Carol", Teams: []string{"L2"}},
	}
	c.Teams = []Team{{Name: "L2", Email: l2Team}}
}

// sent is one queued outbound mail, parsed back.
type sent struct {
	store.Outbound
	Kind string
	*threading.Message
}

// queued returns the outbound mails queued since the n-th (0-based).
func (h *harness) queuedSince(n int) []sent {
	h.t.Helper()
	var out []sent
	for _, o := range h.outboxAll()[n:] {
		m, err := threading.Parse(o.Raw, threading.Limits{})
		if err != nil {
			h.t.Fatalf("outbound %d does not parse: %v", o.ID, err)
		}
		out = append(out, sent{Outbound: o, Kind: h.kindOf(o), Message: m})
	}
	return out
}

func (h *harness) queuedCount() int { return len(h.outboxAll()) }

func to(ss []sent, addr string) []sent {
	var out []sent
	for _, s := range ss {
		if slices.Contains(s.Outbound.To, addr) {
			out = append(out, s)
		}
	}
	return out
}

func recipients(ss []sent) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Outbound.To...)
	}
	slices.Sort(out)
	return out
}

// customerMail is a mail from the customer; cc may be "".
func customerMail(subject, id, cc string, extra ...string) string {
	if cc != "" {
		extra = append([]string{"Cc: " + cc + "\n"}, extra...)
	}
	return fmt.Sprintf("From: Ann Example <%s>\nTo: support@example.com\nSubject: %s\nMessage-ID: <%s>\nDate: Tue, 24 Nov 2026 10:00:00 +0000\n%s\nMy printer shows error 49.\n\nOn Mon, Nov 23, 2026 at 9:00 AM Someone <x@example.org> wrote:\n> old quoted text\n",
		ann, subject, id, strings.Join(extra, ""))
}

// replyMail is a reply from 'from' to the mail with id parent, with body
// above a quote of the parent, as mail clients write it.
func replyMail(from, toAddr, subject, id, parent, body string, extra ...string) string {
	threadHdr := ""
	if parent != "" {
		threadHdr = "In-Reply-To: <" + parent + ">\nReferences: <c1@example.org> <" + parent + ">\n"
	}
	return fmt.Sprintf("From: %s\nTo: %s\nSubject: %s\nMessage-ID: <%s>\nDate: Tue, 24 Nov 2026 11:00:00 +0000\n%s%s\n%s\n\nOn Tue, Nov 24, 2026 at 10:00 AM Ann via support <support@example.com> wrote:\n> My printer shows error 49.\n> Status: new\n",
		from, toAddr, subject, id, threadHdr, strings.Join(extra, ""), body)
}

// startTicket opens ticket 1 from ann (Cc her colleague dan) and returns
// the notification each agent got, by address.
func startTicket(h *harness) map[string]sent {
	h.t.Helper()
	n := h.queuedCount()
	if r := h.handle(customerMail("Printer offline", "c1@example.org", "Dan <dan@example.org>")); r.TicketID != 1 || r.Notified != 3 {
		h.t.Fatalf("new ticket: %+v", r)
	}
	out := map[string]sent{}
	for _, s := range h.queuedSince(n) {
		if s.Kind == store.KindNotification {
			out[s.Outbound.To[0]] = s
		}
	}
	return out
}

func (h *harness) setTicket(id uint64, fn func(*store.Ticket)) {
	h.t.Helper()
	err := h.db.Update(func(tx *store.Tx) error {
		tk, err := tx.Ticket(id)
		if err != nil {
			return err
		}
		fn(tk)
		return tx.UpdateTicket(tk)
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) messages(id uint64) []store.Message {
	h.t.Helper()
	var msgs []store.Message
	h.db.View(func(tx *store.Tx) error {
		var err error
		msgs, err = tx.Messages(id)
		return err
	})
	return msgs
}

func (h *harness) lastInbound(id uint64) store.Message {
	h.t.Helper()
	msgs := h.messages(id)
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Direction == store.DirectionIn {
			return msgs[i]
		}
	}
	h.t.Fatalf("ticket %d has no inbound message", id)
	return store.Message{}
}

func TestNewTicketNotifiesEveryAgentWithTheirOwnToken(t *testing.T) {
	h := newHarness(t, agentConfig)
	notes := startTicket(h)
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range notes {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, []string{alice, bob, carol}) {
		t.Fatalf("notified %v, want every agent once", got)
	}
	for addr, n := range notes {
		id, bound, ok := h.eng.tokens.Verify(n.MessageID, addr)
		if !ok || !bound || id != 1 {
			t.Errorf("%s: Message-ID %s does not verify for them (%d %v %v)", addr, n.MessageID, id, bound, ok)
		}
		for other := range notes {
			if _, _, ok := h.eng.tokens.Verify(n.MessageID, other); ok && other != addr {
				t.Errorf("%s's token verifies for %s", addr, other)
			}
		}
		checks := map[string][2]string{
			"Auto-Submitted": {n.Header.Get("Auto-Submitted"), "auto-generated"},
			"From":           {n.Header.Get("From"), `"Ann Example via support" <support@example.com>`},
			"Reply-To":       {n.Header.Get("Reply-To"), "support@example.com"},
			"Subject":        {n.Subject, "[Ticket#1] Printer offline"},
			"In-Reply-To":    {n.Header.Get("In-Reply-To"), "<c1@example.org>"},
			"text":           {n.Text, "New ticket from Ann Example <ann@example.org>:\n\nMy printer shows error 49."},
			"status":         {n.Text, "Status:    new          Priority: normal"},
			"requester":      {n.Text, "Requester: Ann Example <ann@example.org>"},
			"cc":             {n.Text, "CC:        dan@example.org"},
			"assignee":       {n.Text, "Assignee:  (none)"},
			"help":           {n.Text, "#priority low|normal|high|urgent"},
		}
		for name, c := range checks {
			if !strings.Contains(c[0], c[1]) {
				t.Errorf("%s: %s = %q, want %q", addr, name, c[0], c[1])
			}
		}
		if strings.Contains(n.Text, "old quoted text") {
			t.Errorf("%s: quoted history in notification:\n%s", addr, n.Text)
		}
		if len(n.Outbound.To) != 1 || n.Outbound.To[0] != addr {
			t.Errorf("envelope recipients %v", n.Outbound.To)
		}
	}
}

func TestNotificationRouting(t *testing.T) {
	for _, c := range []struct {
		name string
		set  func(*store.Ticket)
		want []string
	}{
		{"assignee", func(tk *store.Ticket) { tk.Assignee = bob; tk.Team = "l1" }, []string{bob}},
		{"team members", func(tk *store.Ticket) { tk.Team = "l1" }, []string{alice, bob}},
		{"team address", func(tk *store.Ticket) { tk.Team = "L2" }, []string{l2Team}},
		{"unknown team falls back to everyone", func(tk *store.Ticket) { tk.Team = "gone" }, []string{alice, bob, carol}},
		{"former agent as assignee falls back", func(tk *store.Ticket) { tk.Assignee = "left@example.com" }, []string{alice, bob, carol}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, agentConfig)
			startTicket(h)
			h.setTicket(1, c.set)
			n := h.queuedCount()
			r := h.handle(customerMail("Re: [Ticket#1] Printer offline", "c2@example.org", ""))
			got := h.queuedSince(n)
			if r.TicketID != 1 || !slices.Equal(recipients(got), c.want) {
				t.Fatalf("notified %v (result %+v), want %v", recipients(got), r, c.want)
			}
			for _, s := range got {
				if !strings.Contains(s.Text, "Ann Example <ann@example.org> replied:") || s.Kind != store.KindNotification {
					t.Errorf("notification to %v (%s):\n%s", s.Outbound.To, s.Kind, s.Text)
				}
			}
		})
	}
}

func TestAutomatedCustomerMailNeitherReopensNorNotifies(t *testing.T) {
	h := newHarness(t, agentConfig)
	startTicket(h)
	h.setTicket(1, func(tk *store.Ticket) { tk.Status = store.StatusPending; tk.Assignee = carol })
	n := h.queuedCount()
	h.handle(customerMail("Automatic reply: [Ticket#1] Printer offline", "ooo@example.org", "", "Auto-Submitted: auto-replied\n"))
	h.handle(customerMail("Re: [Ticket#1] Printer offline", "list@example.org", "", "Precedence: bulk\n"))
	if got := h.queuedSince(n); len(got) != 0 || h.ticket(1).Status != store.StatusPending {
		t.Fatalf("automated mail: status %s, queued to %v", h.ticket(1).Status, recipients(got))
	}
	r := h.handle(customerMail("Re: [Ticket#1] Printer offline", "c3@example.org", ""))
	got := h.queuedSince(n)
	if h.ticket(1).Status != store.StatusOpen || r.Notified != 1 || !slices.Equal(recipients(got), []string{carol}) {
		t.Fatalf("reply to pending: status %s, notified %v", h.ticket(1).Status, recipients(got))
	}
	if !strings.Contains(got[0].Text, "Status:    open") {
		t.Errorf("notification shows the status before the reopen:\n%s", got[0].Text)
	}
}

func TestAgentReplyIsStrippedRelayedAndThreaded(t *testing.T) {
	h := newHarness(t, agentConfig)
	notes := startTicket(h)
	// A second customer mail, so the relay must thread under the latest.
	h.handle(customerMail("Re: [Ticket#1] Printer offline", "c2@example.org", "", "References: <c1@example.org>\n"))
	n := h.queuedCount()
	r := h.handle(replyMail("Alice Smith <alice@example.com>", "support@example.com", "Re: [Ticket#1] Printer offline",
		"a1@mail.example.com", notes[alice].MessageID,
		"#priority high\n\nHello Ann,\nplease switch it off and on again.\n\n-- \nAlice Smith\nIT department, +1 555 0100",
		"Received: from laptop.internal (10.0.0.7)\n", "X-Originating-IP: [10.0.0.7]\n", "User-Agent: Thunderbird/128.0\n"))
	if r.Rule != threading.RuleToken || r.Kind != store.KindAgent || !r.Relayed || r.Suspect != "" {
		t.Fatalf("agent reply: %+v", r)
	}
	tk := h.ticket(1)
	if tk.Priority != "high" || tk.Status != store.StatusPending {
		t.Errorf("ticket priority %s status %s, want high pending", tk.Priority, tk.Status)
	}
	got := h.queuedSince(n)
	if len(got) != 1 {
		t.Fatalf("queued %d mails, want the relay only: %v", len(got), recipients(got))
	}
	rel := got[0]
	if rel.Kind != store.KindAgent || !slices.Equal(rel.Outbound.To, []string{ann, "dan@example.org"}) || rel.Outbound.From != "support@example.com" {
		t.Errorf("relay kind %s envelope %s → %v", rel.Kind, rel.Outbound.From, rel.Outbound.To)
	}
	if want := "Hello Ann,\nplease switch it off and on again.\n"; rel.Text != want {
		t.Errorf("relayed text %q, want %q", rel.Text, want)
	}
	if !slices.Equal(rel.InReplyTo, []string{"c2@example.org"}) || !slices.Equal(rel.References, []string{"c1@example.org", "c2@example.org"}) {
		t.Errorf("relay In-Reply-To %v References %v", rel.InReplyTo, rel.References)
	}
	if rel.Subject != "[Ticket#1] Re: Printer offline" || rel.Header.Get("From") != `"Alice Smith via support" <support@example.com>` {
		t.Errorf("relay subject %q from %q", rel.Subject, rel.Header.Get("From"))
	}
	raw := strings.ToLower(string(rel.Raw))
	for _, leak := range []string{"received:", "x-originating-ip", "user-agent", "10.0.0.7", "thunderbird", alice, "a1@mail.example.com", "auto-submitted", "#priority"} {
		if strings.Contains(raw, leak) {
			t.Errorf("relay contains %q:\n%s", leak, rel.Raw)
		}
	}
	if _, bound, ok := h.eng.tokens.Verify(rel.MessageID, ann); !ok || bound {
		t.Errorf("relay Message-ID %s is not a customer token", rel.MessageID)
	}
	// The customer's answer to the relay threads by its token and reopens.
	r = h.handle(customerMail("Re: [Ticket#1] Re: Printer offline", "c3@example.org", "", "In-Reply-To: <"+rel.MessageID+">\n"))
	if r.TicketID != 1 || r.Rule != threading.RuleToken || h.ticket(1).Status != store.StatusOpen {
		t.Errorf("customer answer to relay: %+v, status %s", r, h.ticket(1).Status)
	}
	// The same agent mail fetched again changes nothing and sends nothing.
	n = h.queuedCount()
	if r := h.handle(replyMail(alice, "support@example.com", "Re: x", "a1@mail.example.com", notes[alice].MessageID, "#close")); r.Rule != threading.RuleDuplicate {
		t.Errorf("re-fetch: %+v", r)
	}
	if h.queuedCount() != n || h.ticket(1).Status != store.StatusOpen {
		t.Errorf("re-fetch of an agent mail acted again")
	}
}

func TestAgentAnsweringPartOfTheRecipientsDirectly(t *testing.T) {
	h := newHarness(t, agentConfig)
	notes := startTicket(h)
	n := h.queuedCount()
	// Alice put Ann herself in Cc: only Dan still needs a copy.
	h.handle(replyMail(alice, "support@example.com", "Re: [Ticket#1] Printer offline", "a1@mail.example.com",
		notes[alice].MessageID, "Fixed it.", "Cc: ann@example.org\n"))
	got := h.queuedSince(n)
	if len(got) != 1 || !slices.Equal(got[0].Outbound.To, []string{"dan@example.org"}) || got[0].Header.Get("To") != "<dan@example.org>" {
		t.Fatalf("relay to %v, want only dan", recipients(got))
	}
	// Both already have it: no relay, still recorded and pending.
	n = h.queuedCount()
	r := h.handle(replyMail(alice, "support@example.com", "Re: [Ticket#1] Printer offline", "a2@mail.example.com",
		notes[alice].MessageID, "Fixed it again.", "Cc: ann@example.org, Dan <dan@example.org>\n"))
	if got := h.queuedSince(n); len(got) != 0 || r.Relayed || r.Kind != store.KindAgent || h.ticket(1).Status != store.StatusPending {
		t.Fatalf("relay to %v (%+v), want none", recipients(got), r)
	}
}

func TestCommandsOnlyChangeTheTicketAndSendNothingToTheCustomer(t *testing.T) {
	h := newHarness(t, agentConfig)
	notes := startTicket(h)
	n := h.queuedCount()
	r := h.handle(replyMail(alice, "support@example.com", "Re: [Ticket#1] Printer offline", "a1@mail.example.com", notes[alice].MessageID,
		"#assign bob\n#team l1\n#priority urgent\n#cc +Eve <eve@example.org>\n#cc -dan@example.org\n#resolve"))
	tk := h.ticket(1)
	if r.Relayed || r.Rejected || tk.Status != store.StatusResolved || tk.Assignee != bob || tk.Team != "l1" ||
		tk.Priority != "urgent" || !slices.Equal(tk.CC, []string{"eve@example.org"}) {
		t.Fatalf("result %+v, ticket %+v", r, tk)
	}
	got := h.queuedSince(n)
	if !slices.Equal(recipients(got), []string{bob}) || !strings.Contains(got[0].Text, "Alice Smith <alice@example.com> assigned this ticket to you.") {
		t.Fatalf("queued %v, want only the assignment notice to bob", recipients(got))
	}
	if id, bound, ok := h.eng.tokens.Verify(got[0].MessageID, bob); !ok || !bound || id != 1 {
		t.Errorf("assignment notice token does not verify for bob")
	}
	// #close alone, and #assign me (no notice to oneself), resolved by name.
	n = h.queuedCount()
	h.handle(replyMail("Bob <bob@example.com>", "support@example.com", "Re: x", "b1@mail.example.com", got[0].MessageID, "#close"))
	h.handle(replyMail(alice, "support@example.com", "Re: x", "a2@mail.example.com", notes[alice].MessageID, "#assign me"))
	if q := h.queuedSince(n); len(q) != 0 {
		t.Errorf("commands-only mails queued %v", recipients(q))
	}
	if tk := h.ticket(1); tk.Status != store.StatusClosed || tk.Assignee != alice {
		t.Errorf("status %s assignee %s", tk.Status, tk.Assignee)
	}
	for i, c := range []struct{ name, want string }{
		{"Carol", carol},             // the configured name
		{"bob", bob},                 // local part and first name
		{"smith", bob},               // a last name is not resolved: refused, unchanged
		{"ALICE@example.com", alice}, // an address, any case
	} {
		h.handle(replyMail(alice, "support@example.com", "Re: x", fmt.Sprintf("as%d@mail.example.com", i), notes[alice].MessageID, "#assign "+c.name))
		if tk := h.ticket(1); tk.Assignee != c.want {
			t.Errorf("#assign %s: assignee %s, want %s", c.name, tk.Assignee, c.want)
		}
	}
}

func TestNotesReachOnlyTheOtherAgentsOfTheTicket(t *testing.T) {
	h := newHarness(t, agentConfig)
	notes := startTicket(h)
	h.setTicket(1, func(tk *store.Ticket) { tk.Assignee = alice })
	n := h.queuedCount()
	r := h.handle(replyMail(bob, "support@example.com", "Re: [Ticket#1] Printer offline", "b1@mail.example.com", notes[bob].MessageID,
		"#note\nThe toner log says it is empty."))
	got := h.queuedSince(n)
	if r.Kind != store.KindNote || r.Relayed || !slices.Equal(recipients(got), []string{alice}) {
		t.Fatalf("note: %+v, queued to %v, want alice only", r, recipients(got))
	}
	if !strings.Contains(got[0].Text, "Internal note from Bob Jones <bob@example.com>:\n\nThe toner log says it is empty.") ||
		got[0].Header.Get("Reply-To") != "<"+comment+">" || got[0].Header.Get("From") != `"Bob Jones via support" <support@example.com>` {
		t.Errorf("note copy:\n%s\n%v", got[0].Text, got[0].Header.Get("Reply-To"))
	}
	if h.ticket(1).Status != store.StatusNew {
		t.Errorf("a note changed the status to %s", h.ticket(1).Status)
	}
	// Carol writes to the comment address: a note to the assignee and to
	// bob, who acted; never to the customer.
	n = h.queuedCount()
	r = h.handle(replyMail(carol, comment, "Re: [Ticket#1] Printer offline", "k1@mail.example.com", notes[carol].MessageID,
		"I ordered toner."))
	got = h.queuedSince(n)
	if r.Kind != store.KindNote || !slices.Equal(recipients(got), []string{alice, bob}) {
		t.Fatalf("comment address: %+v, queued to %v", r, recipients(got))
	}
	// The customer writing to the comment address is plain customer mail,
	// and a later ticket never takes the comment address as a CC.
	r = h.handle(strings.Replace(customerMail("Re: [Ticket#1] Printer offline", "c2@example.org", ""), "To: support@example.com", "To: "+comment, 1))
	if r.Kind != store.KindCustomer {
		t.Errorf("customer to comment address: %+v", r)
	}
	h.handle(customerMail("Scanner", "s1@example.org", comment+", alice@example.com, l2-team@example.com"))
	if cc := h.ticket(2).CC; len(cc) != 0 {
		t.Errorf("ticket 2 CC %v: our addresses and agents must not be CCs", cc)
	}
	for _, s := range h.queuedSince(0) {
		if slices.Contains(s.Outbound.To, ann) && s.Kind != store.KindAutoreply {
			t.Errorf("the customer received a %s mail", s.Kind)
		}
	}
}

func TestBadCommandsGetAnErrorReplyAndApplyNothing(t *testing.T) {
	for _, c := range []struct {
		body, want string
	}{
		{"#prio high\nHello", `unknown command "#prio" (did you mean #priority?)`},
		{"#assign nobody\nHello", `no agent named "nobody"`},
		{"#assign x@example.com", "x@example.com is not an agent"},
		{"#team sales", `no team named "sales" (teams: L2, l1)`},
		{"#merge 1", "cannot merge ticket #1 into itself"},
		{"#merge 99", "there is no ticket #99"},
		{"#cc -zed@example.org", "zed@example.org is not a Cc of this ticket"},
		{"#cc +support@example.com", "one of our own addresses"},
		{"#cc +ann@example.org", "is the requester"},
		{"#close\n#open", "contradicts"},
		{"#priority high\n#assign bob\n#team nope\nHello Ann", `no team named "nope"`},
	} {
		t.Run(c.body, func(t *testing.T) {
			h := newHarness(t, agentConfig)
			notes := startTicket(h)
			before := *h.ticket(1)
			n := h.queuedCount()
			r := h.handle(replyMail(alice, "support@example.com", "Re: [Ticket#1] Printer offline", "a1@mail.example.com", notes[alice].MessageID, c.body))
			got := h.queuedSince(n)
			if !r.Rejected || r.Relayed || len(got) != 1 || !slices.Equal(got[0].Outbound.To, []string{alice}) {
				t.Fatalf("result %+v, queued to %v; want one error reply to alice", r, recipients(got))
			}
			e := got[0]
			if !strings.Contains(e.Text, c.want) || !strings.Contains(e.Text, "nothing was sent to the customer") {
				t.Errorf("error reply lacks %q:\n%s", c.want, e.Text)
			}
			if e.Header.Get("Auto-Submitted") != "auto-replied" || !slices.Equal(e.InReplyTo, []string{"a1@mail.example.com"}) || !strings.HasPrefix(e.Subject, "[Ticket#1]") {
				t.Errorf("error reply headers: Auto-Submitted %q In-Reply-To %v Subject %q", e.Header.Get("Auto-Submitted"), e.InReplyTo, e.Subject)
			}
			after := h.ticket(1)
			if after.Status != before.Status || after.Priority != before.Priority || after.Assignee != before.Assignee ||
				after.Team != before.Team || !slices.Equal(after.CC, before.CC) || after.MergedInto != 0 {
				t.Errorf("ticket changed: %+v → %+v", before, *after)
			}
			// The error reply carries alice's token: a corrected reply to it acts.
			r = h.handle(replyMail(alice, "support@example.com", "Re: x", "a2@mail.example.com", e.MessageID, "#priority low"))
			if r.Rejected || h.ticket(1).Priority != "low" {
				t.Errorf("corrected reply to the error reply: %+v, priority %s", r, h.ticket(1).Priority)
			}
		})
	}
}

func TestForgedAgentMailChangesNothingAndReachesNoCustomer(t *testing.T) {
	authRequired := func(c *Config) { agentConfig(c); c.TrustedAuthservID = "mx.example.com" }
	for _, c := range []struct {
		name   string
		cfg    func(*Config)
		mail   func(notes map[string]sent, ticket2 map[string]sent) string
		reason string
	}{
		{"no token", agentConfig, func(map[string]sent, map[string]sent) string {
			return replyMail(alice, "support@example.com", "Re: [Ticket#1] Printer offline", "f1@evil.example", "", "#close\nDone.")
		}, "no notification token"},
		{"another agent's token", agentConfig, func(notes, _ map[string]sent) string {
			return replyMail(alice, "support@example.com", "Re: [Ticket#1] Printer offline", "f1@evil.example", notes[bob].MessageID, "#close\nDone.")
		}, "is not valid for alice@example.com"},
		{"token of another ticket, number altered", agentConfig, func(_, t2 map[string]sent) string {
			forged := strings.Replace(t2[alice].MessageID, "hd.2.", "hd.1.", 1)
			return replyMail(alice, "support@example.com", "Re: [Ticket#1] Printer offline", "f1@evil.example", forged, "#close\nDone.")
		}, "is not valid for alice@example.com"},
		{"no Authentication-Results when required", authRequired, func(notes, _ map[string]sent) string {
			return replyMail(alice, "support@example.com", "Re: [Ticket#1] Printer offline", "f1@evil.example", notes[alice].MessageID, "#close\nDone.")
		}, "no Authentication-Results from mx.example.com"},
		{"failed Authentication-Results", authRequired, func(notes, _ map[string]sent) string {
			return replyMail(alice, "support@example.com", "Re: [Ticket#1] Printer offline", "f1@evil.example", notes[alice].MessageID, "#close\nDone.",
				"Authentication-Results: mx.example.com; dkim=fail header.d=example.com; spf=softfail smtp.mailfrom=example.com\n",
				"Authentication-Results: mx.example.com.evil; dkim=pass header.d=example.com\n")
		}, "no result from mx.example.com aligned"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.cfg)
			notes := startTicket(h)
			n := h.queuedCount()
			h.handle(customerMail("Second problem", "t2@example.org", ""))
			t2 := map[string]sent{}
			for _, s := range h.queuedSince(n) {
				if s.Kind == store.KindNotification {
					t2[s.Outbound.To[0]] = s
				}
			}
			before := *h.ticket(1)
			n = h.queuedCount()
			r := h.handle(c.mail(notes, t2))
			if r.TicketID != 1 || r.Kind != store.KindCustomer || !strings.Contains(r.Suspect, c.reason) {
				t.Fatalf("forged mail: %+v, want customer mail on ticket 1 suspected because %q", r, c.reason)
			}
			if got := h.queuedSince(n); len(got) != 0 {
				t.Errorf("forged mail queued mail to %v", recipients(got))
			}
			after := h.ticket(1)
			if after.Status != before.Status || after.Priority != before.Priority || after.Assignee != before.Assignee || after.LastCustomerMessageID != before.LastCustomerMessageID {
				t.Errorf("forged mail changed the ticket: %+v → %+v", before, *after)
			}
			if m := h.lastInbound(1); m.Kind != store.KindCustomer || !strings.Contains(strings.Join(m.Warnings, "\n"), "suspected spoof") {
				t.Errorf("stored as %s with warnings %v", m.Kind, m.Warnings)
			}
		})
	}
	t.Run("passing Authentication-Results acts", func(t *testing.T) {
		h := newHarness(t, authRequired)
		notes := startTicket(h)
		r := h.handle(replyMail(alice, "support@example.com", "Re: [Ticket#1] Printer offline", "a1@mail.example.com", notes[alice].MessageID, "#close",
			"Authentication-Results: mx.example.com; dkim=pass header.d=example.com\n"))
		if r.Suspect != "" || r.Kind != store.KindAgent || h.ticket(1).Status != store.StatusClosed {
			t.Fatalf("authenticated agent: %+v, status %s", r, h.ticket(1).Status)
		}
	})
}

func TestAgentAnsweringTheCustomerDirectlyIsRecordedNotRelayed(t *testing.T) {
	direct := func(extra ...string) string {
		return fmt.Sprintf("From: Alice Smith <alice@example.com>\nTo: Ann <ann@example.org>\nCc: support@example.com\nSubject: Re: Printer offline\nMessage-ID: <d1@mail.example.com>\nIn-Reply-To: <c1@example.org>\nReferences: <c1@example.org>\n%s\n#close\nTry the other tray.\n", strings.Join(extra, ""))
	}
	h := newHarness(t, agentConfig)
	startTicket(h)
	n := h.queuedCount()
	r := h.handle(direct())
	if r.Rule != threading.RuleReferences || r.Kind != store.KindAgent || r.Relayed || r.Suspect != "" {
		t.Fatalf("direct answer: %+v", r)
	}
	if got := h.queuedSince(n); len(got) != 0 {
		t.Errorf("direct answer queued mail to %v", recipients(got))
	}
	tk := h.ticket(1)
	if tk.Status != store.StatusNew || !slices.Contains(tk.ThreadIDs, "d1@mail.example.com") {
		t.Errorf("direct answer: status %s (commands must not apply), thread %v", tk.Status, tk.ThreadIDs)
	}

	// With Authentication-Results required, only an authenticated one counts.
	h = newHarness(t, func(c *Config) { agentConfig(c); c.TrustedAuthservID = "mx.example.com" })
	startTicket(h)
	if r := h.handle(direct()); r.Kind != store.KindCustomer || r.Suspect == "" {
		t.Errorf("unauthenticated direct answer: %+v", r)
	}
	r = h.handle(strings.Replace(direct("Authentication-Results: mx.example.com; spf=pass smtp.mailfrom=alice@example.com\n"), "d1@", "d2@", 1))
	if r.Kind != store.KindAgent || r.Suspect != "" {
		t.Errorf("authenticated direct answer: %+v", r)
	}
}

func TestAgentOutOfOfficeDoesNothing(t *testing.T) {
	h := newHarness(t, agentConfig)
	notes := startTicket(h)
	n := h.queuedCount()
	r := h.handle(replyMail(alice, "support@example.com", "Out of Office: [Ticket#1] Printer offline", "o1@mail.example.com", notes[alice].MessageID,
		"#close\nI am away until Monday.", "Auto-Submitted: auto-replied\n"))
	if r.Kind != store.KindAgent || r.Relayed || r.Rejected || h.queuedCount() != n || h.ticket(1).Status != store.StatusNew {
		t.Fatalf("agent out-of-office: %+v, status %s", r, h.ticket(1).Status)
	}
	if m := h.lastInbound(1); m.Automated == "" {
		t.Errorf("out-of-office not marked automated")
	}
}

func TestTeamAddressTokenWorksForTeamMembersOnly(t *testing.T) {
	h := newHarness(t, agentConfig)
	startTicket(h)
	h.setTicket(1, func(tk *store.Ticket) { tk.Team = "L2" })
	n := h.queuedCount()
	h.handle(customerMail("Re: [Ticket#1] Printer offline", "c2@example.org", ""))
	got := h.queuedSince(n)
	if !slices.Equal(recipients(got), []string{l2Team}) {
		t.Fatalf("notified %v", recipients(got))
	}
	r := h.handle(replyMail(alice, "support@example.com", "Re: x", "a1@mail.example.com", got[0].MessageID, "#close"))
	if r.Suspect == "" || h.ticket(1).Status == store.StatusClosed {
		t.Fatalf("non-member with the team token: %+v", r)
	}
	r = h.handle(replyMail(carol, "support@example.com", "Re: x", "k1@mail.example.com", got[0].MessageID, "#close"))
	if r.Suspect != "" || r.Kind != store.KindAgent || h.ticket(1).Status != store.StatusClosed {
		t.Fatalf("member with the team token: %+v, status %s", r, h.ticket(1).Status)
	}
}

func TestMergeRedirectsLaterMail(t *testing.T) {
	h := newHarness(t, agentConfig)
	startTicket(h)
	n := h.queuedCount()
	h.handle(customerMail("Printer still offline", "t2@example.org", ""))
	t2 := map[string]sent{}
	for _, s := range h.queuedSince(n) {
		t2[s.Outbound.To[0]] = s
	}
	r := h.handle(replyMail(alice, "support@example.com", "Re: [Ticket#2] Printer still offline", "m1@mail.example.com", t2[alice].MessageID, "#merge [Ticket#1]"))
	if r.Rejected || r.TicketID != 2 {
		t.Fatalf("merge: %+v", r)
	}
	src, dst := h.ticket(2), h.ticket(1)
	if src.MergedInto != 1 || src.Status != store.StatusClosed || dst.MergedInto != 0 {
		t.Fatalf("after merge: #2 merged_into %d status %s, #1 merged_into %d", src.MergedInto, src.Status, dst.MergedInto)
	}
	if m := h.lastInbound(1); m.Kind != store.KindNote || !strings.Contains(m.Text, "merged ticket #2") || m.From != alice {
		t.Errorf("merge record on #1: %s from %s: %q", m.Kind, m.From, m.Text)
	}
	// Ann answers ticket 2 by its tag: the mail lands on ticket 1.
	r = h.handle(customerMail("Re: [Ticket#2] Printer still offline", "t2b@example.org", ""))
	if r.TicketID != 1 || !strings.Contains(strings.Join(h.lastInbound(1).Warnings, ";"), "ticket #2 was merged into #1") {
		t.Fatalf("mail for merged ticket: %+v", r)
	}
	// An agent answering ticket 2's old notification answers on ticket 1.
	n = h.queuedCount()
	r = h.handle(replyMail(bob, "support@example.com", "Re: x", "b1@mail.example.com", t2[bob].MessageID, "On it."))
	got := h.queuedSince(n)
	if r.TicketID != 1 || !r.Relayed || len(got) != 1 || !strings.HasPrefix(got[0].Subject, "[Ticket#1]") ||
		!slices.Equal(got[0].InReplyTo, []string{"t2b@example.org"}) {
		t.Fatalf("agent reply via merged ticket: %+v, %v", r, recipients(got))
	}
	// Merging back is refused; a chain resolves to its end.
	n = h.queuedCount()
	r = h.handle(replyMail(alice, "support@example.com", "Re: x", "m2@mail.example.com", startTicketToken(t, h, 1, alice), "#merge 2"))
	if !r.Rejected || !strings.Contains(h.queuedSince(n)[0].Text, "was merged into this ticket") {
		t.Errorf("merge back: %+v", r)
	}
	h.handle(customerMail("Third", "t3@example.org", ""))
	h.handle(replyMail(alice, "support@example.com", "Re: x", "m3@mail.example.com", startTicketToken(t, h, 3, alice), "#merge 2"))
	if tk := h.ticket(3); tk.MergedInto != 1 {
		t.Errorf("merge into a merged ticket: #3 merged_into %d, want 1", tk.MergedInto)
	}
}

// startTicketToken returns a fresh token of agent for ticket id, as its
// next notification would carry.
func startTicketToken(t *testing.T, h *harness, id uint64, agent string) string {
	t.Helper()
	return h.eng.tokens.NewMessageID(id, agent)
}

func TestCCsJoinAndStrangersNeverTakeOver(t *testing.T) {
	h := newHarness(t, agentConfig)
	notes := startTicket(h)
	// Dan, a CC, answers by subject tag: he joins ticket 1.
	r := h.handle(strings.Replace(customerMail("Re: [Ticket#1] Printer offline", "d1@example.org", ""), "Ann Example <ann@example.org>", "Dan <dan@example.org>", 1))
	if r.TicketID != 1 || r.Rule != threading.RuleSubjectTag {
		t.Fatalf("CC's reply: %+v", r)
	}
	// A stranger BCC'd or forwarded the thread replies by References.
	r = h.handle(strings.Replace(customerMail("Re: Printer offline", "x1@example.net", "", "References: <c1@example.org>\n"), "Ann Example <ann@example.org>", "Xavier <xavier@example.net>", 1))
	tk := h.ticket(1)
	if r.TicketID != 1 || tk.Requester != ann || slices.Contains(tk.CC, "xavier@example.net") || tk.LastCustomerMessageID != "d1@example.org" {
		t.Fatalf("stranger's reply: %+v; ticket requester %s cc %v last %s", r, tk.Requester, tk.CC, tk.LastCustomerMessageID)
	}
	// A stranger by subject tag alone opens their own ticket.
	if r := h.handle(strings.Replace(customerMail("Re: [Ticket#1] Printer offline", "x2@example.net", ""), "Ann Example <ann@example.org>", "xavier@example.net", 1)); r.TicketID != 2 {
		t.Errorf("stranger by tag: %+v", r)
	}
	n := h.queuedCount()
	h.handle(replyMail(alice, "support@example.com", "Re: x", "a1@mail.example.com", notes[alice].MessageID, "Fixed."))
	got := h.queuedSince(n)
	if len(got) != 1 || !slices.Equal(got[0].Outbound.To, []string{ann, "dan@example.org"}) || !slices.Equal(got[0].InReplyTo, []string{"d1@example.org"}) {
		t.Fatalf("relay to %v in reply to %v", recipients(got), got[0].InReplyTo)
	}
}

func TestOutboundMailComesFromTheTicketsMailbox(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		agentConfig(c)
		c.Mailboxes = append(c.Mailboxes, Mailbox{Name: "sales", Address: "sales@example.com"})
	})
	handleVia := func(mailbox, raw string) Result {
		h.uid++
		res, err := h.eng.Handle(t.Context(), Inbound{Mailbox: mailbox, UIDValidity: 1, UID: h.uid, Raw: []byte(strings.ReplaceAll(raw, "\n", "\r\n"))})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	handleVia("sales", strings.Replace(customerMail("Quote please", "q1@example.org", ""), "To: support@example.com", "To: sales@example.com", 1))
	var note sent
	for _, s := range h.queuedSince(0) {
		if slices.Equal(s.Outbound.To, []string{alice}) {
			note = s
		}
	}
	if note.Header.Get("Reply-To") != "<sales@example.com>" {
		t.Fatalf("notification Reply-To %q", note.Header.Get("Reply-To"))
	}
	// Alice's answer arrives through the support mailbox nonetheless.
	n := h.queuedCount()
	handleVia("support", replyMail(alice, "support@example.com", "Re: [Ticket#1] Quote please", "a1@mail.example.com", note.MessageID, "Here it is."))
	got := h.queuedSince(n)
	if len(got) != 1 || got[0].Outbound.From != "sales@example.com" || got[0].Message.From.Addr != "sales@example.com" {
		t.Fatalf("relay %+v", recipients(got))
	}
}

func TestForgedTokenOfUnknownTicketOpensNothingAsTheAgent(t *testing.T) {
	h := newHarness(t, agentConfig)
	notes := startTicket(h)
	forged := strings.Replace(notes[alice].MessageID, "hd.1.", "hd.7.", 1)
	raw := strings.Replace(replyMail(alice, "support@example.com", "Hello", "f1@evil.example", forged, "#close\nDone."),
		"References: <c1@example.org> ", "References: ", 1)
	n := h.queuedCount()
	r := h.handle(raw)
	if r.Rule != threading.RuleNew || r.TicketID != 2 || !strings.Contains(r.Suspect, "not valid for alice@example.com") {
		t.Fatalf("forged token of an unknown ticket: %+v", r)
	}
	if got := h.queuedSince(n); len(got) != 0 {
		t.Errorf("queued mail to %v", recipients(got))
	}
	if m := h.lastInbound(2); m.Kind != store.KindCustomer || len(m.Warnings) == 0 {
		t.Errorf("stored as %s, warnings %v", m.Kind, m.Warnings)
	}
}
