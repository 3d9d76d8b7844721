// Package admin owns the JSON that scripts read (the shapes of CONTRACT.md)
// and the local HTTP API of a running daemon: /healthz, /metrics and the
// read and backup endpoints the CLI uses while `serve` holds the database
// lock. Reader is the one interface both paths implement, so `tickets list`
// prints the same bytes whether it read the file or asked the daemon.
package admin

import (
	"fmt"
	"time"

	"github.com/helpdesk/helpdesk/store"
)

// Ticket is a ticket as CONTRACT.md shows it; Messages is nil in lists.
type Ticket struct {
	ID           uint64    `json:"id"`
	Subject      string    `json:"subject"`
	Status       string    `json:"status"`
	Priority     string    `json:"priority"`
	Mailbox      string    `json:"mailbox"`
	Requester    string    `json:"requester"`
	CC           []string  `json:"cc"`
	Assignee     string    `json:"assignee"`
	Team         string    `json:"team"`
	Category     string    `json:"category"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	MessageCount int       `json:"message_count"`
	// MergedInto is the ticket this one was merged into (#merge); mail for
	// it goes there. Absent when not merged.
	MergedInto uint64    `json:"merged_into,omitempty"`
	Messages   []Message `json:"messages,omitempty"`
}

// Message is one message of a ticket as CONTRACT.md shows it, with
// matched_by (the threading rule), automated, delivery and warnings (what
// helpdesk noticed: a bounce's failed recipients, a relay to an address on
// hold, a suspected spoof) as extensions.
// matched_by is always present so scripts can rely on the key; it is ""
// for the mail we sent and for internal records.
type Message struct {
	MessageID   string             `json:"message_id"`
	Direction   string             `json:"direction"`
	Kind        string             `json:"kind"`
	From        string             `json:"from"`
	To          []string           `json:"to"`
	Cc          []string           `json:"cc,omitempty"`
	Date        time.Time          `json:"date"`
	Subject     string             `json:"subject"`
	Text        string             `json:"text"`
	Attachments []store.Attachment `json:"attachments"`
	MatchedBy   string             `json:"matched_by"`
	Automated   string             `json:"automated,omitempty"`
	Delivery    *store.Delivery    `json:"delivery,omitempty"`
	Warnings    []string           `json:"warnings,omitempty"`
}

// Quarantined is a quarantined mail without its bytes.
type Quarantined struct {
	ID         uint64    `json:"id"`
	Mailbox    string    `json:"mailbox"`
	UID        uint32    `json:"uid"`
	Reason     string    `json:"reason"`
	From       string    `json:"from"`
	Subject    string    `json:"subject"`
	Size       int       `json:"size"`
	ReceivedAt time.Time `json:"received_at"`
}

// TicketJSON converts a stored ticket (and, for `show`, its messages).
func TicketJSON(tk *store.Ticket, msgs []store.Message) Ticket {
	out := Ticket{
		ID: tk.ID, Subject: tk.Subject, Status: tk.Status, Priority: tk.Priority,
		Mailbox: tk.Mailbox, Requester: tk.Requester, CC: nonNil(tk.CC),
		Assignee: tk.Assignee, Team: tk.Team, Category: tk.Category,
		CreatedAt: tk.CreatedAt.UTC(), UpdatedAt: tk.UpdatedAt.UTC(), MessageCount: tk.MessageCount,
		MergedInto: tk.MergedInto,
	}
	if msgs != nil {
		out.Messages = make([]Message, 0, len(msgs))
	}
	for _, m := range msgs {
		id := ""
		if m.MessageID != "" {
			id = "<" + m.MessageID + ">"
		}
		out.Messages = append(out.Messages, Message{
			MessageID: id, Direction: m.Direction, Kind: m.Kind, From: m.From,
			To: nonNil(m.To), Cc: m.Cc, Date: m.Date.UTC(), Subject: m.Subject, Text: m.Text,
			Attachments: nonNilAttachments(m.Attachments), MatchedBy: m.MatchedBy,
			Automated: m.Automated, Delivery: m.Delivery, Warnings: m.Warnings,
		})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilAttachments(a []store.Attachment) []store.Attachment {
	if a == nil {
		return []store.Attachment{}
	}
	return a
}

// ListRequest selects tickets for a list.
type ListRequest struct {
	Status string
	Limit  int
}

// Reader is what the read-only commands need, served from the database file
// or from a running daemon.
type Reader interface {
	ListTickets(req ListRequest) ([]Ticket, error)
	ShowTicket(id uint64) (Ticket, error)
	ListQuarantine() ([]Quarantined, error)
}

// DBReader reads an open database directly.
type DBReader struct{ DB *store.DB }

// ListTickets implements Reader.
func (r DBReader) ListTickets(req ListRequest) ([]Ticket, error) {
	out := []Ticket{}
	err := r.DB.View(func(tx *store.Tx) error {
		tks, err := tx.ListTickets(store.ListOptions{Status: req.Status, Limit: req.Limit})
		for i := range tks {
			out = append(out, TicketJSON(&tks[i], nil))
		}
		return err
	})
	return out, err
}

// ShowTicket implements Reader; store.ErrNotFound for an unknown ID.
func (r DBReader) ShowTicket(id uint64) (Ticket, error) {
	var out Ticket
	err := r.DB.View(func(tx *store.Tx) error {
		tk, err := tx.Ticket(id)
		if err != nil {
			return err
		}
		msgs, err := tx.Messages(id)
		if err != nil {
			return fmt.Errorf("ticket %d: %w", id, err)
		}
		if msgs == nil {
			msgs = []store.Message{}
		}
		out = TicketJSON(tk, msgs)
		return nil
	})
	return out, err
}

// ListQuarantine implements Reader.
func (r DBReader) ListQuarantine() ([]Quarantined, error) {
	out := []Quarantined{}
	err := r.DB.View(func(tx *store.Tx) error {
		qs, err := tx.ListQuarantine()
		for _, q := range qs {
			out = append(out, Quarantined{ID: q.ID, Mailbox: q.Mailbox, UID: q.UID, Reason: q.Reason,
				From: q.From, Subject: q.Subject, Size: q.Size, ReceivedAt: q.ReceivedAt.UTC()})
		}
		return err
	})
	return out, err
}
