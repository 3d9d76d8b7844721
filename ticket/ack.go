package ticket

import (
	"errors"
	"fmt"
	"strings"

	"github.com/helpdesk/helpdesk/autoreply"
	"github.com/helpdesk/helpdesk/outbox"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

var errNoTemplate = errors.New("no acknowledgement template")

// queueAck queues the acknowledgement of new ticket tk unless the mail is
// automated, or the requester may get no automatic mail now (allowAuto).
// why says why none was queued.
func (s *step) queueAck(tk *store.Ticket) (queued bool, why string, err error) {
	e, msg := s.e, s.msg
	switch {
	case !e.cfg.AutoreplyEnabled:
		return false, "autoreply disabled", nil
	case s.verdict.Automated:
		return false, "automated mail: " + s.verdict.Reason, nil
	case e.templates == nil:
		return false, "", errNoTemplate
	}
	if ok, why, err := s.allowAuto(tk.Requester, autoCustomer); err != nil || !ok {
		return false, why, err
	}
	tag := threading.AddTag("", e.cfg.SubjectPrefix, tk.ID)
	subject, body, err := e.templates.Ack(autoreply.AckData{
		TicketID:       tk.ID,
		Tag:            strings.TrimSpace(tag),
		Subject:        tk.Subject,
		MailboxName:    s.mb.Name,
		MailboxAddress: s.mb.Address,
		RequesterName:  tk.RequesterName,
	})
	if err != nil {
		return false, "", fmt.Errorf("render acknowledgement: %w", err)
	}
	env := outbox.Envelope{
		From:       outbox.Address{Addr: s.mb.Address},
		To:         []outbox.Address{{Name: tk.RequesterName, Addr: tk.Requester}},
		Subject:    subject,
		Text:       body,
		MessageID:  e.tokens.NewMessageID(tk.ID, ""),
		InReplyTo:  msg.MessageID,
		References: threadReferences(msg),
		Date:       s.now,
		Headers:    autoReplyHeaders(),
	}
	raw, err := outbox.Compose(env)
	if err != nil {
		// The customer's address could not be written into a header: keep
		// the ticket, skip the acknowledgement.
		return false, "cannot compose acknowledgement: " + err.Error(), nil
	}
	if err := s.enqueueRaw(tk.ID, store.KindAutoreply, env, raw); err != nil {
		return false, "", err
	}
	return true, "", nil
}

// autoReplyHeaders mark an automatic answer to a customer's mail
// (acknowledgement, notice), so that auto-responders do not answer it
// (RFC 3834, and Exchange's X-Auto-Response-Suppress).
func autoReplyHeaders() [][2]string {
	return [][2]string{
		{"Auto-Submitted", "auto-replied"},
		{"X-Auto-Response-Suppress", "All"},
		{"Precedence", "auto_reply"},
	}
}
