package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Ticket statuses.
const (
	StatusNew      = "new"
	StatusOpen     = "open"
	StatusPending  = "pending"
	StatusResolved = "resolved"
	StatusClosed   = "closed"
)

// Statuses lists every status in lifecycle order.
var Statuses = []string{StatusNew, StatusOpen, StatusPending, StatusResolved, StatusClosed}

// Priorities lists every priority, lowest first.
var Priorities = []string{"low", "normal", "high", "urgent"}

// Ticket is one support case. Addresses are lower-case.
type Ticket struct {
	ID            uint64    `json:"id"`
	Subject       string    `json:"subject"`
	Status        string    `json:"status"`
	Priority      string    `json:"priority"`
	Mailbox       string    `json:"mailbox"`
	Requester     string    `json:"requester"`
	RequesterName string    `json:"requester_name,omitempty"`
	CC            []string  `json:"cc"`
	Assignee      string    `json:"assignee"`
	Team          string    `json:"team"`
	Category      string    `json:"category"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	MessageCount  int       `json:"message_count"`
	// LastCustomerMessageID is the Message-ID (without <>) of the newest
	// customer mail, so replies thread under it in the customer's client.
	LastCustomerMessageID string `json:"last_customer_message_id,omitempty"`
	// ThreadIDs are the Message-IDs of the conversation, oldest first, capped,
	// for the References header of outbound mail.
	ThreadIDs []string `json:"thread_ids,omitempty"`
	// MergedInto is the ticket this one was merged into (0: not merged). A
	// merged ticket keeps its messages; mail that threads to it is stored on
	// the end of the MergedInto chain instead. It never points to the ticket
	// itself, to a missing ticket, or into a cycle (Check).
	MergedInto uint64 `json:"merged_into,omitempty"`
}

// Attachment is what we record of an attachment (the bytes stay in raw).
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// Delivery is the state of an outbound message.
type Delivery struct {
	Status    string    `json:"status"` // queued | sent | failed | bounced (a delivery report came back)
	Attempts  int       `json:"attempts,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	SentAt    time.Time `json:"sent_at,omitzero"`
}

// Message directions and kinds.
const (
	DirectionIn  = "in"
	DirectionOut = "out"

	KindCustomer     = "customer"
	KindAgent        = "agent"
	KindNote         = "note"
	KindAutoreply    = "autoreply"
	KindNotification = "notification"
	KindVendor       = "vendor"
)

// Message is one mail of a ticket's conversation.
type Message struct {
	TicketID    uint64       `json:"ticket_id"`
	Seq         uint64       `json:"seq"`
	MessageID   string       `json:"message_id"` // without <>
	Direction   string       `json:"direction"`
	Kind        string       `json:"kind"`
	From        string       `json:"from"`
	FromName    string       `json:"from_name,omitempty"`
	To          []string     `json:"to"`
	Cc          []string     `json:"cc,omitempty"`
	Date        time.Time    `json:"date"`
	Subject     string       `json:"subject"`
	Text        string       `json:"text"`
	Attachments []Attachment `json:"attachments"`
	InReplyTo   []string     `json:"in_reply_to,omitempty"`
	References  []string     `json:"references,omitempty"`
	// MatchedBy is the threading rule that put an inbound mail on this ticket.
	MatchedBy string `json:"matched_by,omitempty"`
	// Automated is the classifier's verdict kind ("" for a person).
	Automated       string `json:"automated,omitempty"`
	AutomatedReason string `json:"automated_reason,omitempty"`
	Mailbox         string `json:"mailbox,omitempty"`
	UIDValidity     uint32 `json:"uid_validity,omitempty"`
	UID             uint32 `json:"uid,omitempty"`
	Size            int    `json:"size"`
	// Blob holds the raw bytes (0: schema 1, in the raw bucket).
	Blob       uint64    `json:"blob,omitempty"`
	RawSHA256  string    `json:"raw_sha256,omitempty"`
	Warnings   []string  `json:"warnings,omitempty"`
	ReceivedAt time.Time `json:"received_at"`
	Delivery   *Delivery `json:"delivery,omitempty"`
}

// Ticket returns the ticket with that ID, or ErrNotFound.
func (t *Tx) Ticket(id uint64) (*Ticket, error) {
	var tk Ticket
	if err := getJSON(t.bucket(bucketTickets), u64(id), &tk); err != nil {
		return nil, fmt.Errorf("ticket %d: %w", id, err)
	}
	return &tk, nil
}

// TicketExists reports whether a ticket with that ID exists.
func (t *Tx) TicketExists(id uint64) bool {
	return t.bucket(bucketTickets).Get(u64(id)) != nil
}

// CreateTicket gives tk the next ticket ID and stores it.
func (t *Tx) CreateTicket(tk *Ticket) error {
	b := t.bucket(bucketTickets)
	id, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("create ticket: %w", err)
	}
	tk.ID = id
	if err := putTicket(b, tk); err != nil {
		return fmt.Errorf("create ticket %d: %w", id, err)
	}
	if err := t.indexTicket(tk); err != nil {
		return fmt.Errorf("create ticket %d: %w", id, err)
	}
	return nil
}

// UpdateTicket stores a changed ticket and keeps the indexes in step.
func (t *Tx) UpdateTicket(tk *Ticket) error {
	// The indexed fields are all that is needed of the stored ticket:
	// decoding only them allocates a third as much, and is a fifth faster.
	var old struct {
		ID        uint64 `json:"id"`
		Status    string `json:"status"`
		Requester string `json:"requester"`
	}
	if err := getJSON(t.bucket(bucketTickets), u64(tk.ID), &old); err != nil {
		return fmt.Errorf("update ticket: ticket %d: %w", tk.ID, err)
	}
	if old.Status != tk.Status {
		if err := t.bucket(bucketByStatus).Delete(indexKey(old.Status, old.ID)); err != nil {
			return fmt.Errorf("update ticket %d: %w", tk.ID, err)
		}
	}
	if old.Requester != tk.Requester {
		if err := t.bucket(bucketByRequester).Delete(indexKey(old.Requester, old.ID)); err != nil {
			return fmt.Errorf("update ticket %d: %w", tk.ID, err)
		}
	}
	if err := putTicket(t.bucket(bucketTickets), tk); err != nil {
		return fmt.Errorf("update ticket %d: %w", tk.ID, err)
	}
	return t.indexTicket(tk)
}

func (t *Tx) indexTicket(tk *Ticket) error {
	if err := t.bucket(bucketByStatus).Put(indexKey(tk.Status, tk.ID), nil); err != nil {
		return err
	}
	return t.bucket(bucketByRequester).Put(indexKey(tk.Requester, tk.ID), nil)
}

// TicketByMessageID returns the ticket that holds the message with this
// dedupe key ("<id>" or "sha256:<hex>").
func (t *Tx) TicketByMessageID(key string) (uint64, bool) {
	v := t.bucket(bucketMsgIDs).Get([]byte(key))
	ticketID, _, ok := splitMsgKey(v)
	return ticketID, ok && ticketID != 0
}

// KnownKey reports whether a dedupe key was seen before, on a ticket or in
// quarantine.
func (t *Tx) KnownKey(key string) bool {
	return t.bucket(bucketMsgIDs).Get([]byte(key)) != nil
}

// AddMessage stores m (giving it the next Seq and a Blob) and its raw bytes
// on ticket m.TicketID, indexes it under every key in keys, and bumps the
// ticket's message count. A key already indexed returns ErrDuplicate and, as
// the caller's transaction then rolls back, stores nothing. A mail for which
// NeedsStaging is true is better staged and stored with AddStagedMessage.
func (t *Tx) AddMessage(m *Message, raw []byte, keys ...string) error {
	return t.addMessage(m, raw, nil, keys)
}

// AddStagedMessage is AddMessage for bytes written ahead by DB.Stage: the
// message claims them.
func (t *Tx) AddStagedMessage(m *Message, s *Staged, keys ...string) error {
	return t.addMessage(m, nil, s, keys)
}

func (t *Tx) addMessage(m *Message, raw []byte, staged *Staged, keys []string) error {
	if !t.TicketExists(m.TicketID) {
		return fmt.Errorf("add message: ticket %d: %w", m.TicketID, ErrNotFound)
	}
	ids := t.bucket(bucketMsgIDs)
	for _, k := range keys {
		if k == "" {
			continue
		}
		if ids.Get([]byte(k)) != nil {
			return fmt.Errorf("add message %s: %w", k, ErrDuplicate)
		}
	}
	msgs := t.bucket(bucketMessages)
	seq, err := msgs.NextSequence()
	if err != nil {
		return fmt.Errorf("add message: %w", err)
	}
	m.Seq = seq
	key := msgKey(m.TicketID, seq)
	if staged != nil {
		if err := t.claim(staged); err != nil {
			return fmt.Errorf("add message to ticket %d: %w", m.TicketID, err)
		}
		m.Blob = staged.id
	} else if m.Blob, err = t.putBlob(raw); err != nil {
		return fmt.Errorf("add message to ticket %d: %w", m.TicketID, err)
	}
	// A staged blob's first chunk was written before: its text stays in
	// the record rather than rewrite that chunk.
	if err := t.putMessage(key, m, staged == nil); err != nil {
		return fmt.Errorf("add message to ticket %d: %w", m.TicketID, err)
	}
	for _, k := range keys {
		if k == "" {
			continue
		}
		if err := ids.Put([]byte(k), key); err != nil {
			return fmt.Errorf("index message %s: %w", k, err)
		}
	}
	return t.countMessage(m.TicketID)
}

// UpdateMessage stores a changed message (its delivery state, say).
func (t *Tx) UpdateMessage(m *Message) error {
	key := msgKey(m.TicketID, m.Seq)
	b := t.bucket(bucketMessages)
	old := b.Get(key)
	if old == nil {
		return fmt.Errorf("update message %d/%d: %w", m.TicketID, m.Seq, ErrNotFound)
	}
	// The message now carries its delivery state itself.
	if err := t.bucket(bucketDeliveries).Delete(key); err != nil {
		return fmt.Errorf("update message %d/%d: %w", m.TicketID, m.Seq, err)
	}
	inBlob := len(old) > 0 && old[0] == textInBlob
	var was Message
	if inBlob {
		if err := t.decodeMessage(old, &was); err != nil {
			return fmt.Errorf("update message %d/%d: %w", m.TicketID, m.Seq, err)
		}
	}
	if !inBlob || was.Blob != m.Blob {
		return t.putMessage(key, m, false)
	}
	// The text stays in the blob, written again only if it changed.
	if text := validText(m.Text); text != was.Text {
		if err := t.putMessageText(m.Blob, text); err != nil {
			return fmt.Errorf("update message %d/%d: %w", m.TicketID, m.Seq, err)
		}
	}
	v, err := encodeHead(m)
	if err != nil {
		return fmt.Errorf("update message %d/%d: %w", m.TicketID, m.Seq, err)
	}
	return b.Put(key, v)
}

// setDelivery records a new delivery state of message key in deliveries,
// which readers lay over the message's own: the outbox worker records every
// sent mail, and rewriting the whole message each time would cost more
// than the send.
func (t *Tx) setDelivery(key []byte, d *Delivery) error {
	return putJSON(t.bucket(bucketDeliveries), key, d)
}

// withDelivery lays the recorded delivery state of message key over m's.
func (t *Tx) withDelivery(key []byte, m *Message) error {
	v := t.bucket(bucketDeliveries).Get(key)
	if v == nil {
		return nil
	}
	var d Delivery
	if err := json.Unmarshal(v, &d); err != nil {
		return fmt.Errorf("delivery of message %x: %w", key, err)
	}
	m.Delivery = &d
	return nil
}

// Message returns one message.
func (t *Tx) Message(ticketID, seq uint64) (*Message, error) {
	var m Message
	key := msgKey(ticketID, seq)
	if err := t.getMessage(key, &m); err != nil {
		return nil, fmt.Errorf("message %d/%d: %w", ticketID, seq, err)
	}
	if err := t.withDelivery(key, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Messages returns a ticket's messages, oldest first.
func (t *Tx) Messages(ticketID uint64) ([]Message, error) {
	var out []Message
	prefix := u64(ticketID)
	c := t.bucket(bucketMessages).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var m Message
		if err := t.decodeMessage(v, &m); err != nil {
			return nil, fmt.Errorf("message %x: %w", k, err)
		}
		if err := t.withDelivery(k, &m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Raw returns a copy of a message's raw bytes.
func (t *Tx) Raw(ticketID, seq uint64) ([]byte, error) {
	m, err := t.Message(ticketID, seq)
	if err != nil {
		return nil, fmt.Errorf("raw: %w", err)
	}
	if m.Blob != 0 {
		raw, err := t.blob(m.Blob)
		if err != nil {
			return nil, fmt.Errorf("raw %d/%d: %w", ticketID, seq, err)
		}
		return raw, nil
	}
	v := t.bucket(bucketRaw).Get(msgKey(ticketID, seq))
	if v == nil {
		return nil, fmt.Errorf("raw %d/%d: %w", ticketID, seq, ErrNotFound)
	}
	return bytes.Clone(v), nil
}

// ListOptions filter ListTickets.
type ListOptions struct {
	Status    string // "" = every status
	Requester string // "" = every requester
	BeforeID  uint64 // only tickets with a smaller ID (paging); 0 = from the newest
	Limit     int    // 0 = no limit
}

// ListTickets returns tickets newest first. With Status or Requester it walks
// the index backwards, so the first page costs the same at any size.
func (t *Tx) ListTickets(o ListOptions) ([]Ticket, error) {
	var out []Ticket
	add := func(id uint64) (bool, error) {
		tk, err := t.Ticket(id)
		if err != nil {
			return false, err
		}
		if o.Status != "" && tk.Status != o.Status || o.Requester != "" && tk.Requester != strings.ToLower(o.Requester) {
			return true, nil
		}
		out = append(out, *tk)
		return o.Limit == 0 || len(out) < o.Limit, nil
	}
	before := o.BeforeID
	if before == 0 {
		before = ^uint64(0)
	}
	var index []byte
	var value string
	switch {
	case o.Status != "":
		index, value = bucketByStatus, o.Status
	case o.Requester != "":
		index, value = bucketByRequester, strings.ToLower(o.Requester)
	}
	if index == nil {
		c := t.bucket(bucketTickets).Cursor()
		k, _ := c.Seek(u64(before))
		if k == nil {
			k, _ = c.Last()
		}
		for ; k != nil; k, _ = c.Prev() {
			id := binary.BigEndian.Uint64(k)
			if id >= before {
				continue
			}
			if more, err := add(id); err != nil || !more {
				return out, err
			}
		}
		return out, nil
	}
	prefix := append([]byte(value), 0)
	c := t.bucket(index).Cursor()
	k, _ := c.Seek(indexKey(value, before))
	if k == nil {
		k, _ = c.Last()
	}
	for ; k != nil; k, _ = c.Prev() {
		if !bytes.HasPrefix(k, prefix) {
			if bytes.Compare(k, prefix) < 0 {
				break
			}
			continue
		}
		id := binary.BigEndian.Uint64(k[len(prefix):])
		if id >= before {
			continue
		}
		if more, err := add(id); err != nil || !more {
			return out, err
		}
	}
	return out, nil
}

// CountByStatus returns how many tickets have each status.
func (t *Tx) CountByStatus() map[string]int {
	counts := make(map[string]int)
	c := t.bucket(bucketByStatus).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if i := bytes.IndexByte(k, 0); i > 0 {
			counts[string(k[:i])]++
		}
	}
	return counts
}
