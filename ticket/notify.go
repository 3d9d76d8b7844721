package ticket

import (
	"fmt"
	"slices"
	"strings"

	"github.com/helpdesk/helpdesk/agent"
	"github.com/helpdesk/helpdesk/outbox"
	"github.com/helpdesk/helpdesk/quote"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

// recipient is one address a notification goes to: an agent, or a team's
// distribution address. The notification's token is bound to Addr.
type recipient struct {
	Name, Addr string
}

// route returns who hears of a customer's mail on tk: the assignee, else
// the team (its Email, else its members), else every agent.
func (e *Engine) route(tk *store.Ticket) []recipient {
	if a, ok := e.agents[tk.Assignee]; ok {
		return []recipient{{a.Name, a.Email}}
	}
	if t, ok := e.teams[strings.ToLower(tk.Team)]; ok && tk.Team != "" {
		if t.Email != "" {
			return []recipient{{t.Name, t.Email}}
		}
		if members := e.members(t.Name); len(members) > 0 {
			return members
		}
	}
	return e.members("")
}

// members lists the agents of team (every agent for ""), in configuration
// order, so notifications are queued in a stable order.
func (e *Engine) members(team string) []recipient {
	var out []recipient
	for _, a := range e.cfg.Agents {
		a.Email = strings.ToLower(a.Email)
		if team == "" || slices.ContainsFunc(a.Teams, func(t string) bool { return strings.EqualFold(t, team) }) {
			out = append(out, recipient{a.Name, a.Email})
		}
	}
	return out
}

// notifyCustomerMail tells the agents about a customer's mail m on tk.
func (s *step) notifyCustomerMail(tk *store.Ticket, m *store.Message, isNew bool) error {
	who := displayAddr(s.msg.From.Name, s.msg.From.Addr)
	lead := who + " replied:"
	if isNew {
		lead = "New ticket from " + who + ":"
	}
	fromName := s.msg.From.Name
	if fromName == "" {
		fromName = s.msg.From.Addr
	}
	n := notice{
		fromName: fromName,
		lead:     lead,
		text:     m.Text,
		strip:    true,
		attach:   m.Attachments,
		replyTo:  s.mb.Address,
		inReply:  s.msg.MessageID,
		footer:   "Reply to this mail to answer " + fromName + "; the answer goes out from " + s.mb.Address + " without the quoted text.",
	}
	for _, r := range s.e.route(tk) {
		if err := s.notify(tk, r, n); err != nil {
			return err
		}
	}
	return nil
}

// notice is the content of one notification to an agent.
type notice struct {
	fromName string // display name before " via <mailbox>"
	lead     string // first line, e.g. "Ann <ann@example.org> replied:"
	text     string
	strip    bool // show only the new text of text (quote.Split)
	attach   []store.Attachment
	replyTo  string
	inReply  string // Message-ID the notification is about
	footer   string // what replying does
}

// notify queues one notification of n about tk to r, unless r may get no
// automatic mail now (allowAuto).
func (s *step) notify(tk *store.Ticket, r recipient, n notice) error {
	e := s.e
	if ok, why, err := s.allowAuto(r.Addr, autoNotification); err != nil || !ok {
		if err == nil {
			s.problems = append(s.problems, "notification to "+r.Addr+": "+why)
		}
		return err
	}
	var b strings.Builder
	b.WriteString(n.lead + "\n\n")
	text := strings.TrimSpace(n.text)
	if n.strip {
		reply, quoted := quote.Split(n.text)
		text = strings.TrimSpace(reply)
		if quoted = strings.TrimSpace(quoted); quoted != "" {
			text += fmt.Sprintf("\n\n[%d quoted or signature lines not shown: helpdesk tickets show %d]",
				strings.Count(quoted, "\n")+1, tk.ID)
		}
	}
	switch {
	case text != "":
		b.WriteString(text + "\n")
	case n.strip:
		b.WriteString("(no text)\n")
	}
	if len(n.attach) > 0 {
		b.WriteString("\nAttachments:")
		for _, a := range n.attach {
			name := a.Filename
			if name == "" {
				name = "(unnamed " + a.ContentType + ")"
			}
			fmt.Fprintf(&b, " %s (%s);", name, byteSize(a.Size))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n" + e.facts(tk))
	if n.footer != "" {
		b.WriteString(n.footer + "\n\n")
	}
	b.WriteString(agent.Help())

	env := outbox.Envelope{
		From:       outbox.Address{Name: n.fromName + " via " + s.mb.Name, Addr: s.mb.Address},
		To:         []outbox.Address{{Name: r.Name, Addr: r.Addr}},
		ReplyTo:    []outbox.Address{{Addr: n.replyTo}},
		Subject:    threading.AddTag(tk.Subject, e.cfg.SubjectPrefix, tk.ID),
		Text:       b.String(),
		MessageID:  e.tokens.NewMessageID(tk.ID, r.Addr),
		InReplyTo:  n.inReply,
		References: threadOf(tk, n.inReply),
		Date:       s.now,
		Headers: [][2]string{
			{"Auto-Submitted", "auto-generated"},
			{"X-Auto-Response-Suppress", "All"},
		},
	}
	ok, err := s.enqueue(tk.ID, store.KindNotification, env)
	if ok {
		s.res.Notified++
	}
	return err
}

// facts is the block of ticket facts in notifications.
func (e *Engine) facts(tk *store.Ticket) string {
	line := strings.Repeat("-", 64) + "\n"
	orNone := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return s
	}
	cc := "(none)"
	if len(tk.CC) > 0 {
		cc = strings.Join(tk.CC, ", ")
	}
	assignee := tk.Assignee
	if a, ok := e.agents[assignee]; ok && a.Name != "" {
		assignee = a.Name + " <" + a.Email + ">"
	}
	var b strings.Builder
	b.WriteString(line)
	fmt.Fprintf(&b, "Ticket:    %s\n", threading.AddTag(tk.Subject, e.cfg.SubjectPrefix, tk.ID))
	fmt.Fprintf(&b, "Status:    %-12s Priority: %s\n", tk.Status, tk.Priority)
	fmt.Fprintf(&b, "Requester: %s\n", displayAddr(tk.RequesterName, tk.Requester))
	fmt.Fprintf(&b, "CC:        %s\n", cc)
	fmt.Fprintf(&b, "Assignee:  %s\n", orNone(assignee))
	fmt.Fprintf(&b, "Team:      %s\n", orNone(tk.Team))
	if tk.MergedInto != 0 {
		fmt.Fprintf(&b, "Merged into ticket #%d\n", tk.MergedInto)
	}
	b.WriteString(line)
	return b.String()
}

// enqueue composes env and queues it with its record on ticket id. A mail
// that cannot be composed (an address that cannot be written into a
// header) is skipped and reported, not an error: the inbound mail is
// still stored.
func (s *step) enqueue(id uint64, kind string, env outbox.Envelope) (bool, error) {
	raw, err := outbox.Compose(env)
	if err != nil {
		s.problems = append(s.problems, fmt.Sprintf("%s to %v: %v", kind, addrsOf(env.To), err))
		return false, nil
	}
	if err := s.enqueueRaw(id, kind, env, raw); err != nil {
		return false, err
	}
	return true, nil
}

func addrsOf(as []outbox.Address) []string {
	out := []string{}
	for _, a := range as {
		out = append(out, a.Addr)
	}
	return out
}

// threadOf is the References of a mail in tk's conversation answering id.
func threadOf(tk *store.Ticket, id string) []string {
	refs := slices.Clone(tk.ThreadIDs)
	if id != "" && !slices.Contains(refs, id) {
		refs = append(refs, id)
	}
	return refs
}

func displayAddr(name, addr string) string {
	if name == "" {
		return addr
	}
	return name + " <" + addr + ">"
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
