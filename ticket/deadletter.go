package ticket

import (
	"fmt"
	"strings"

	"github.com/helpdesk/helpdesk/store"
)

// DeadLetter tells the agents of a ticket that one of its outbound mails was
// given up on (a permanent SMTP refusal, or too many attempts), so a
// customer is never silently left without an answer. It runs after the
// outbox moved the mail to the dead bucket. A given-up notification is not
// reported (a broken agent address must not start a loop of notices), nor
// is mail that belongs to no ticket.
func (e *Engine) DeadLetter(outboxID uint64, reason string) error {
	var s *step
	err := e.db.Update(func(tx *store.Tx) error {
		s = nil
		o, err := tx.DeadOutbound(outboxID)
		if err != nil {
			return err
		}
		if o.Unfiled() {
			return nil
		}
		m, err := tx.Message(o.TicketID, o.MessageSeq)
		if err != nil {
			return err
		}
		if m.Kind == store.KindNotification {
			return nil
		}
		tk, err := tx.Ticket(o.TicketID)
		if err != nil {
			return err
		}
		mb := e.mailboxFor(tk.Mailbox)
		s = &step{e: e, tx: tx, via: mb, mb: mb, now: e.now()}
		s.res.TicketID = tk.ID
		n := notice{
			fromName: "Mail delivery",
			lead:     fmt.Sprintf("The %s mail to %s was given up (%q):", m.Kind, strings.Join(o.To, ", "), m.Subject),
			text:     "  " + clipText(reason, 500) + "\n",
			replyTo:  mb.Address,
			inReply:  m.MessageID,
			footer:   "The recipient did not get this mail. Check the address, or reach them another way.",
		}
		for _, r := range e.route(tk) {
			if err := s.notify(tk, r, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("report dead outbound mail %d: %w", outboxID, err)
	}
	if s != nil {
		e.logCommitted(s)
	}
	return nil
}
