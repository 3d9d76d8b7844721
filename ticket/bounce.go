package ticket

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/helpdesk/helpdesk/autoreply"
	"github.com/helpdesk/helpdesk/bounce"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

// Delivery reports. A mail the classifier calls automated that
// bounce.Parse reads as a failure or delay report is handled by bounced
// instead of the customer rules:
//
//   - The mail that bounced is found by the report's original Message-ID,
//     else by the report's own In-Reply-To; it must be one we sent (an
//     outbound message on a ticket). Failing that, the ticket is found by
//     the original's References (again only ids of our outbound mail), and
//     then by the ordinary threading of the report itself. A report that
//     threads nowhere is kept like any automated mail, on a new ticket
//     that gets no acknowledgement and no notification.
//   - The report is stored on that ticket as an inbound message with
//     Automated "bounce" and one warning per failed recipient. It never
//     reopens the ticket, never causes an acknowledgement and never mails a
//     customer.
//   - The bounced message's Delivery becomes "bounced" with the
//     diagnostic (a delay report only notes it in LastError).
//   - A recipient of that very message whose delivery failed permanently
//     is put on hold (store.HoldUndeliverable) for UndeliverableFor, so no
//     automatic mail goes to it meanwhile. Only recipients of our own mail
//     are held: a forged report about a mail we never sent, or naming an
//     address we never wrote to, holds nobody.
//   - When the bounced mail was an agent's answer relayed to the customer,
//     the agents who hear of the ticket get a notification: the customer
//     did not get the answer. A notification that bounces notifies no one,
//     so a broken agent address cannot start a loop.

// ruleBounce is the MatchedBy of a report threaded by the mail that
// bounced.
const ruleBounce threading.Rule = "bounce"

// bounceReport reads raw as a delivery report when the classifier found it
// automated, and returns nil when it is none. Mail from our own addresses
// and agents is never read as one: an agent's mail may quote a bounce.
func (e *Engine) bounceReport(raw []byte, v autoreply.Verdict) *bounce.Report {
	if !v.Automated || v.Kind == autoreply.KindOwn {
		return nil
	}
	r := bounce.Parse(raw)
	if !r.IsBounce() {
		return nil
	}
	return &r
}

// bounced stores a delivery report on the ticket of the mail that bounced
// and records the failure.
func (s *step) bounced(key string) error {
	r := s.report
	s.res.Bounce = true
	s.verdict = autoreply.Verdict{Automated: true, Kind: autoreply.KindBounce, Reason: "delivery report (" + r.Kind + ")"}
	orig, err := s.bouncedMessage()
	if err != nil {
		return err
	}
	var ticketID uint64
	rule := ruleBounce
	switch {
	case orig != nil:
		ticketID = orig.TicketID
	default:
		if ticketID, err = s.bouncedTicket(); err != nil {
			return err
		}
		if ticketID == 0 {
			m := s.e.match(s.tx, s.msg)
			if m.Rule == threading.RuleNew || m.TicketID == 0 {
				s.warnings = append(s.warnings, "delivery report about a mail helpdesk did not send")
				return s.run(key)
			}
			ticketID, rule = m.TicketID, m.Rule
		}
	}
	tk, err := s.tx.Ticket(ticketID)
	if err != nil {
		return err
	}
	if tk, err = s.followMerges(tk); err != nil {
		return err
	}
	s.res.TicketID, s.res.Rule = tk.ID, rule
	if tmb, ok := s.e.mailboxes[tk.Mailbox]; ok {
		s.mb = tmb
	}
	failed := failures(r)
	for _, rc := range failed {
		what := "failed"
		switch {
		case r.Delayed || rc.Action == "delayed":
			what = "delayed"
		case rc.Permanent:
			what = "failed permanently"
		}
		s.warnings = append(s.warnings, strings.TrimSpace(fmt.Sprintf("delivery to %s %s: %s %s", rc.Addr, what, rc.Status, rc.Diagnostic)))
	}
	if orig != nil {
		if err := s.recordBounce(orig, failed); err != nil {
			return err
		}
	}
	tk.UpdatedAt = s.now
	if err := s.tx.UpdateTicket(tk); err != nil {
		return err
	}
	if _, err := s.storeInbound(tk.ID, store.KindCustomer, key); err != nil {
		return err
	}
	if orig != nil && orig.Kind == store.KindAgent && !r.Delayed {
		return s.notifyBounce(tk, orig, failed)
	}
	return nil
}

// bouncedMessage finds the mail of ours the report is about: the
// returned message's Message-ID, else the report's In-Reply-To; nil when
// neither is an outbound message of ours.
func (s *step) bouncedMessage() (*store.Message, error) {
	ids := append([]string{s.report.OriginalMessageID}, s.msg.InReplyTo...)
	for _, id := range ids {
		if m, err := s.ourMessage(id); m != nil || err != nil {
			return m, err
		}
	}
	return nil, nil
}

// bouncedTicket finds the ticket by the returned message's References,
// newest first, counting only ids of our outbound mail; 0 when none.
func (s *step) bouncedTicket() (uint64, error) {
	refs := s.report.OriginalReferences
	for i := len(refs) - 1; i >= 0; i-- {
		m, err := s.ourMessage(refs[i])
		if err != nil || m != nil {
			return ticketOf(m), err
		}
	}
	return 0, nil
}

func ticketOf(m *store.Message) uint64 {
	if m == nil {
		return 0
	}
	return m.TicketID
}

// ourMessage returns the outbound message with Message-ID id, or nil.
func (s *step) ourMessage(id string) (*store.Message, error) {
	key := threading.IDKey(id)
	if key == "" {
		return nil, nil
	}
	m, err := s.tx.MessageByKey(key)
	switch {
	case err == nil && m.Direction == store.DirectionOut:
		return m, nil
	case err == nil || isNotFound(err):
		return nil, nil
	}
	return nil, err
}

// failures are the recipients of r whose delivery failed or is delayed.
func failures(r *bounce.Report) []bounce.Recipient {
	var out []bounce.Recipient
	for _, rc := range r.Recipients {
		switch rc.Action {
		case "delivered", "relayed", "expanded":
		default:
			out = append(out, rc)
		}
	}
	return out
}

// recordBounce marks orig's delivery and holds its recipients that failed
// permanently.
func (s *step) recordBounce(orig *store.Message, failed []bounce.Recipient) error {
	var parts []string
	for _, rc := range failed {
		parts = append(parts, strings.TrimSpace(rc.Addr+" "+rc.Status+" "+rc.Diagnostic))
	}
	summary := strings.Join(parts, "; ")
	if summary == "" {
		summary = "the report names no recipient"
	}
	d := store.Delivery{Status: "sent"}
	if orig.Delivery != nil {
		d = *orig.Delivery
	}
	if s.report.Delayed {
		// Still being tried: the status stays, the delay is noted.
		summary = "delayed: " + summary
	} else {
		d.Status = "bounced"
	}
	d.LastError = clipText("delivery report: "+summary, 500)
	orig.Delivery = &d
	if err := s.tx.UpdateMessage(orig); err != nil {
		return err
	}
	if s.report.Delayed {
		return nil
	}
	rcpts := slices.Concat(orig.To, orig.Cc)
	for _, rc := range failed {
		if !rc.Permanent || rc.Action == "delayed" || !slices.Contains(rcpts, rc.Addr) {
			continue
		}
		h := &store.Hold{
			Kind: store.HoldUndeliverable, Addr: rc.Addr, Since: s.now, Until: s.now.Add(s.e.cfg.UndeliverableFor),
			Reason:   clipText(strings.TrimSpace(fmt.Sprintf("mail on ticket #%d bounced: %s %s", orig.TicketID, rc.Status, rc.Diagnostic)), 300),
			TicketID: orig.TicketID,
		}
		if err := s.tx.PutHold(h); err != nil {
			return err
		}
		s.warnings = append(s.warnings, fmt.Sprintf("%s gets no automatic mail until %s", rc.Addr, h.Until.UTC().Format("2006-01-02 15:04 MST")))
		s.undeliverable = append(s.undeliverable, rc.Addr)
	}
	return nil
}

// notifyBounce tells the agents of tk that an agent's answer (orig) did
// not reach the customer.
func (s *step) notifyBounce(tk *store.Ticket, orig *store.Message, failed []bounce.Recipient) error {
	var b strings.Builder
	for _, rc := range failed {
		fmt.Fprintf(&b, "  %s: %s\n", rc.Addr, strings.TrimSpace(rc.Status+" "+rc.Diagnostic))
	}
	if b.Len() == 0 {
		b.WriteString("  (the report names no recipient)\n")
	}
	n := notice{
		fromName: "Mail delivery",
		lead:     fmt.Sprintf("The answer sent to %s was not delivered (%q):", strings.Join(slices.Concat(orig.To, orig.Cc), ", "), orig.Subject),
		text:     b.String(),
		replyTo:  s.mb.Address,
		inReply:  s.msg.MessageID,
		footer:   "The customer did not get this answer. Check the address, or reach them another way; a reply to this mail goes to the customer as usual.",
	}
	for _, r := range s.e.route(tk) {
		if err := s.notify(tk, r, n); err != nil {
			return err
		}
	}
	return nil
}

// clipText cuts s to at most n bytes at a rune boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
