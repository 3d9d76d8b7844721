package ticket

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/helpdesk/helpdesk/agent"
	"github.com/helpdesk/helpdesk/outbox"
	"github.com/helpdesk/helpdesk/quote"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

// maxErrorRepliesPerHour bounds command error replies to one agent, so a
// broken client or a loop with an agent's auto-responder cannot make us
// send mail without end.
const maxErrorRepliesPerHour = 30

// agentRecord stores an agent's mail that acts on nothing: a direct answer
// to the customer (who already has it), or the agent's automated mail.
func (s *step) agentRecord(tk *store.Ticket, key string, r role) error {
	if r == roleDirect {
		tk.UpdatedAt = s.now
		if s.msg.MessageID != "" {
			// The customer has this mail: later relays reference it too.
			tk.ThreadIDs = appendThreadID(tk.ThreadIDs, s.msg.MessageID)
		}
		if err := s.tx.UpdateTicket(tk); err != nil {
			return err
		}
	}
	_, err := s.storeInbound(tk.ID, store.KindAgent, key)
	return err
}

// plan is what an agent's commands do, resolved and validated.
type plan struct {
	status       string // "" unchanged
	assignee     string // agent address; "" unchanged
	team         string // configured spelling; "" unchanged
	priority     string // "" unchanged
	ccAdd, ccDel []string
	merge        *store.Ticket // target (end of its merge chain); nil none
}

// apply changes tk as the plan says.
func (p plan) apply(tk *store.Ticket) {
	if p.status != "" {
		tk.Status = p.status
	}
	if p.assignee != "" {
		tk.Assignee = p.assignee
	}
	if p.team != "" {
		tk.Team = p.team
	}
	if p.priority != "" {
		tk.Priority = p.priority
	}
	for _, a := range p.ccAdd {
		if !slices.Contains(tk.CC, a) {
			tk.CC = append(tk.CC, a)
		}
	}
	tk.CC = slices.DeleteFunc(tk.CC, func(a string) bool { return slices.Contains(p.ccDel, a) })
	if p.merge != nil {
		tk.MergedInto = p.merge.ID
		tk.Status = store.StatusClosed
	}
}

// agentAction applies a verified agent's mail: commands, then relay to the
// customer or a note to the other agents.
func (s *step) agentAction(ag Agent, tk *store.Ticket, key string) error {
	p := agent.Parse(quote.Strip(s.msg.Text))
	pl, errs, err := s.e.resolve(s.tx, ag, tk, p)
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return s.reject(ag, tk, key, errs)
	}
	note := p.IsNote() || sentTo(s.msg, s.via.CommentAddress) || sentTo(s.msg, s.mb.CommentAddress)
	body := strings.TrimSpace(p.Body)

	// Work on a copy: if the relay cannot be composed, nothing is applied.
	next := *tk
	next.CC, next.ThreadIDs = slices.Clone(tk.CC), slices.Clone(tk.ThreadIDs)
	pl.apply(&next)
	next.UpdatedAt = s.now
	var relay *outbox.Envelope
	var relayRaw []byte
	if !note && body != "" {
		if pl.status == "" && pl.merge == nil {
			next.Status = store.StatusPending
		}
		if env, ok := s.relayEnvelope(ag, &next, body); ok {
			raw, err := outbox.Compose(env)
			if err != nil {
				return s.reject(ag, tk, key, []agent.Error{{Text: "(your text)", Problem: "cannot be sent to the customer: " + err.Error()}})
			}
			s.warnHeld(slices.Concat(env.To, env.Cc))
			relay, relayRaw = &env, raw
			next.ThreadIDs = appendThreadID(next.ThreadIDs, env.MessageID)
		}
	}
	if err := s.tx.UpdateTicket(&next); err != nil {
		return err
	}
	if pl.merge != nil {
		pl.merge.UpdatedAt = s.now
		if err := s.tx.UpdateTicket(pl.merge); err != nil {
			return err
		}
	}
	kind := store.KindAgent
	if note {
		kind = store.KindNote
	}
	if n := len(s.msg.Attachments); n > 0 && !note {
		s.warnings = append(s.warnings, fmt.Sprintf("%d attachment(s) of the agent's mail not relayed", n))
	}
	if _, err := s.storeInbound(next.ID, kind, key); err != nil {
		return err
	}
	if relay != nil {
		if err := s.enqueueRaw(next.ID, store.KindAgent, *relay, relayRaw); err != nil {
			return err
		}
		s.res.Relayed = true
	}

	told := map[string]bool{ag.Email: true}
	if note && body != "" {
		others, err := s.e.ticketAgents(s.tx, &next)
		if err != nil {
			return err
		}
		replyTo, footer := s.mb.Address, "Start your reply with #note to add a note; without it, your reply goes to the customer."
		if s.mb.CommentAddress != "" {
			replyTo, footer = s.mb.CommentAddress, "Replies to this mail go to "+s.mb.CommentAddress+" and stay internal notes."
		}
		for _, r := range others {
			if told[r.Addr] {
				continue
			}
			told[r.Addr] = true
			err := s.notify(&next, r, notice{
				fromName: nameOr(ag), lead: "Internal note from " + displayAddr(ag.Name, ag.Email) + ":",
				text: body, replyTo: replyTo, inReply: s.msg.MessageID, footer: footer,
			})
			if err != nil {
				return err
			}
		}
	}
	if next.Assignee != tk.Assignee && !told[next.Assignee] {
		if a, ok := s.e.agents[next.Assignee]; ok {
			err := s.notify(&next, recipient{a.Name, a.Email}, notice{
				fromName: nameOr(ag), lead: displayAddr(ag.Name, ag.Email) + " assigned this ticket to you.",
				replyTo: s.mb.Address, inReply: s.msg.MessageID,
				footer: "Reply to this mail to answer the customer.",
			})
			if err != nil {
				return err
			}
		}
	}
	if pl.merge != nil {
		return s.recordMerge(ag, &next, pl.merge)
	}
	return nil
}

// relayEnvelope is the customer-facing copy of an agent's answer: to the
// requester and CCs who were not already recipients of the agent's mail,
// from the mailbox, threaded under the customer's latest message. Nothing
// of the agent's header is carried over.
func (s *step) relayEnvelope(ag Agent, tk *store.Ticket, body string) (outbox.Envelope, bool) {
	already := make(map[string]bool)
	for _, a := range slices.Concat(s.msg.To, s.msg.Cc) {
		already[a.Addr] = true
	}
	var rcpts []outbox.Address
	if !already[tk.Requester] {
		rcpts = append(rcpts, outbox.Address{Name: tk.RequesterName, Addr: tk.Requester})
	}
	for _, cc := range tk.CC {
		if !already[cc] {
			rcpts = append(rcpts, outbox.Address{Addr: cc})
		}
	}
	if len(rcpts) == 0 {
		return outbox.Envelope{}, false
	}
	return outbox.Envelope{
		From:       outbox.Address{Name: nameOr(ag) + " via " + s.mb.Name, Addr: s.mb.Address},
		To:         rcpts[:1],
		Cc:         rcpts[1:],
		Subject:    threading.AddTag("Re: "+tk.Subject, s.e.cfg.SubjectPrefix, tk.ID),
		Text:       body + "\n",
		MessageID:  s.e.tokens.NewMessageID(tk.ID, ""),
		InReplyTo:  tk.LastCustomerMessageID,
		References: slices.Clone(tk.ThreadIDs),
		Date:       s.now,
	}, true
}

// reject stores the agent's mail unapplied and answers with the errors.
func (s *step) reject(ag Agent, tk *store.Ticket, key string, errs []agent.Error) error {
	s.res.Rejected = true
	if _, err := s.storeInbound(tk.ID, store.KindAgent, key); err != nil {
		return err
	}
	ok, why, err := s.allowAuto(ag.Email, autoAgentError)
	if err != nil {
		return err
	}
	if !ok {
		s.problems = append(s.problems, "command error reply to "+ag.Email+": "+why)
		return nil
	}
	tag := threading.AddTag("", s.e.cfg.SubjectPrefix, tk.ID)
	var b strings.Builder
	fmt.Fprintf(&b, "Your mail about %s %s was not applied:\nnothing was changed and nothing was sent to the customer.\n\n", tag, tk.Subject)
	for _, e := range errs {
		if e.Line > 0 {
			b.WriteString("  " + e.Error() + "\n")
		} else {
			b.WriteString("  " + e.Text + ": " + e.Problem + "\n")
		}
	}
	b.WriteString("\nCorrect the commands and reply to this mail.\n\n")
	b.WriteString(agent.Help())
	env := outbox.Envelope{
		From:    outbox.Address{Name: s.mb.Name, Addr: s.mb.Address},
		To:      []outbox.Address{{Name: ag.Name, Addr: ag.Email}},
		Subject: threading.AddTag("Commands not applied: "+tk.Subject, s.e.cfg.SubjectPrefix, tk.ID),
		Text:    b.String(),
		// Bound to the agent: a corrected reply to this mail acts like a
		// reply to the notification.
		MessageID:  s.e.tokens.NewMessageID(tk.ID, ag.Email),
		InReplyTo:  s.msg.MessageID,
		References: threadReferences(s.msg),
		Date:       s.now,
		Headers: [][2]string{
			{"Auto-Submitted", "auto-replied"},
			{"X-Auto-Response-Suppress", "All"},
		},
	}
	ok, err = s.enqueue(tk.ID, store.KindNotification, env)
	if ok {
		s.res.Notified++
	}
	return err
}

// resolve checks an agent's commands against the configuration and the
// store. errs holds Parse's errors and every command that cannot be
// applied; err is a database failure.
func (e *Engine) resolve(tx *store.Tx, ag Agent, tk *store.Ticket, p agent.Parsed) (pl plan, errs []agent.Error, err error) {
	errs = slices.Clone(p.Errors)
	bad := func(c agent.Command, format string, args ...any) {
		text := "#" + string(c.Kind)
		if c.Arg != "" {
			text += " " + c.Arg
		}
		errs = append(errs, agent.Error{Line: c.Line, Text: text, Problem: fmt.Sprintf(format, args...)})
	}
	pl.status, _ = p.Status()
	for _, c := range p.Commands {
		switch c.Kind {
		case agent.KindAssign:
			addr, problem := e.resolveAgent(ag, c.Arg)
			if problem != "" {
				bad(c, "%s", problem)
			}
			pl.assignee = addr
		case agent.KindTeam:
			t, ok := e.teams[c.Arg]
			if !ok {
				bad(c, "no team named %q (teams: %s)", c.Arg, e.teamNames())
			}
			pl.team = t.Name
		case agent.KindPriority:
			pl.priority = c.Arg
		case agent.KindCC:
			addr := c.Arg[1:]
			switch {
			case c.Arg[0] == '-' && !slices.Contains(tk.CC, addr):
				bad(c, "%s is not a Cc of this ticket", addr)
			case c.Arg[0] == '-':
				pl.ccDel = append(pl.ccDel, addr)
			case addr == tk.Requester:
				bad(c, "%s is the requester", addr)
			case e.isOwn(addr):
				bad(c, "%s is one of our own addresses", addr)
			case e.isAgent(addr):
				bad(c, "%s is an agent; agents get notifications, not copies of the customer's mail", addr)
			default:
				pl.ccAdd = append(pl.ccAdd, addr)
			}
		case agent.KindMerge:
			n, perr := strconv.ParseUint(c.Arg, 10, 64)
			dst, terr := tx.Ticket(n)
			switch {
			case perr != nil || errors.Is(terr, store.ErrNotFound):
				bad(c, "there is no ticket #%s", c.Arg)
				continue
			case terr != nil:
				return pl, nil, terr
			}
			if dst, err = mergeEnd(tx, dst); err != nil {
				return pl, nil, err
			}
			if dst.ID == tk.ID {
				if n == tk.ID {
					bad(c, "cannot merge ticket #%d into itself", tk.ID)
				} else {
					bad(c, "ticket #%d was merged into this ticket #%d; cannot merge back", n, tk.ID)
				}
				continue
			}
			pl.merge = dst
		}
	}
	return pl, errs, nil
}

// resolveAgent turns #assign's argument into an agent address: "me", an
// agent's address, or a name matching one agent's address local part, full
// name or first name (case-insensitively).
func (e *Engine) resolveAgent(me Agent, arg string) (addr, problem string) {
	if arg == "me" {
		return me.Email, ""
	}
	if strings.Contains(arg, "@") {
		if _, ok := e.agents[arg]; ok {
			return arg, ""
		}
		return "", arg + " is not an agent"
	}
	var found []string
	for _, a := range e.cfg.Agents {
		email := strings.ToLower(a.Email)
		local, _, _ := strings.Cut(email, "@")
		name := strings.ToLower(strings.TrimSpace(a.Name))
		first, _, _ := strings.Cut(name, " ")
		if (local == arg || name == arg || first == arg) && !slices.Contains(found, email) {
			found = append(found, email)
		}
	}
	switch len(found) {
	case 1:
		return found[0], ""
	case 0:
		return "", fmt.Sprintf("no agent named %q", arg)
	}
	return "", fmt.Sprintf("%q matches several agents (%s); write the address", arg, strings.Join(found, ", "))
}

func (e *Engine) teamNames() string {
	var names []string
	for _, t := range e.teams {
		names = append(names, t.Name)
	}
	if len(names) == 0 {
		return "none configured"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// ticketAgents are the agents of tk: its assignee, then every agent who
// acted on it (wrote an agent message or a note), in order.
func (e *Engine) ticketAgents(tx *store.Tx, tk *store.Ticket) ([]recipient, error) {
	var out []recipient
	add := func(addr string) {
		a, ok := e.agents[addr]
		if ok && !slices.ContainsFunc(out, func(r recipient) bool { return r.Addr == addr }) {
			out = append(out, recipient{a.Name, a.Email})
		}
	}
	add(tk.Assignee)
	msgs, err := tx.Messages(tk.ID)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if m.Direction == store.DirectionIn && (m.Kind == store.KindAgent || m.Kind == store.KindNote) && m.Automated == "" {
			add(m.From)
		}
	}
	return out, nil
}

// mergeEnd follows tk's merged_into chain to the ticket mail now goes to.
func mergeEnd(tx *store.Tx, tk *store.Ticket) (*store.Ticket, error) {
	seen := map[uint64]bool{tk.ID: true}
	for tk.MergedInto != 0 && !seen[tk.MergedInto] {
		next, err := tx.Ticket(tk.MergedInto)
		if errors.Is(err, store.ErrNotFound) {
			// QUIRK: a dangling merged_into (Check reports it) keeps the
			// mail on the last ticket that exists rather than losing it.
			break
		}
		if err != nil {
			return nil, err
		}
		seen[next.ID] = true
		tk = next
	}
	return tk, nil
}

// recordMerge leaves an internal note on the target of a merge, so
// `tickets show` of either ticket tells what happened. It is a record, not
// a mail: nothing is sent.
func (s *step) recordMerge(ag Agent, src, dst *store.Ticket) error {
	env := outbox.Envelope{
		From:    outbox.Address{Name: s.mb.Name, Addr: s.mb.Address},
		To:      []outbox.Address{{Addr: s.mb.Address}},
		Subject: threading.AddTag(dst.Subject, s.e.cfg.SubjectPrefix, dst.ID),
		Text: fmt.Sprintf("%s merged ticket #%d (%q, from %s) into this ticket.\n"+
			"Its messages stay on ticket #%d; mail for it now arrives here.\n",
			displayAddr(ag.Name, ag.Email), src.ID, src.Subject, src.Requester, src.ID),
		MessageID: s.e.tokens.NewMessageID(dst.ID, ""),
		Date:      s.now,
	}
	raw, err := outbox.Compose(env)
	if err != nil {
		s.problems = append(s.problems, "merge note: "+err.Error())
		return nil
	}
	m := &store.Message{
		TicketID: dst.ID, MessageID: env.MessageID, Direction: store.DirectionIn, Kind: store.KindNote,
		From: ag.Email, FromName: ag.Name, To: []string{s.mb.Address}, Date: s.now, Subject: env.Subject,
		Text: env.Text, Attachments: []store.Attachment{}, Size: len(raw), ReceivedAt: s.now,
	}
	return s.tx.AddMessage(m, raw, threading.IDKey(env.MessageID))
}

// enqueueRaw queues an already composed mail with its record on ticket id.
func (s *step) enqueueRaw(id uint64, kind string, env outbox.Envelope, raw []byte) error {
	m := &store.Message{
		TicketID: id, MessageID: env.MessageID, Kind: kind, From: env.From.Addr, FromName: env.From.Name,
		To: addrsOf(env.To), Cc: addrsOf(env.Cc), Date: s.now, Subject: env.Subject, Text: env.Text,
		Attachments: []store.Attachment{}, References: env.References, Size: len(raw), ReceivedAt: s.now,
	}
	if env.InReplyTo != "" {
		m.InReplyTo = []string{env.InReplyTo}
	}
	if _, err := s.tx.Enqueue(m, env.From.Addr, slices.Concat(m.To, m.Cc), raw, s.now); err != nil {
		return err
	}
	s.queued++
	return nil
}

// sentTo reports whether addr (not "") is among msg's To/Cc.
func sentTo(msg *threading.Message, addr string) bool {
	return addr != "" && slices.ContainsFunc(slices.Concat(msg.To, msg.Cc), func(a threading.Address) bool { return a.Addr == addr })
}

func nameOr(a Agent) string {
	if a.Name != "" {
		return a.Name
	}
	return a.Email
}
