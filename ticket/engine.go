package ticket

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/helpdesk/helpdesk/autoreply"
	"github.com/helpdesk/helpdesk/bounce"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

// Mailbox is one support address the engine answers for.
type Mailbox struct {
	Name    string
	Address string // lower-case
	// CommentAddress optionally receives agents' internal notes; "" none.
	CommentAddress string
}

// Agent is a help desk agent.
type Agent struct {
	Email string // lower-case
	Name  string
	Teams []string
}

// Team is a group of agents tickets can be routed to. Teams named only in
// Agent.Teams exist too, without an Email.
type Team struct {
	Name string
	// Email is an optional distribution address: team notifications go
	// there instead of to each member.
	Email string
}

// Config is what the engine needs to know of the configuration.
type Config struct {
	SubjectPrefix string
	Domain        string // right-hand side of our Message-IDs
	Mailboxes     []Mailbox
	Agents        []Agent
	Teams         []Team

	// TrustedAuthservID, when set, makes agent actions also require an
	// Authentication-Results pass from that server (agent.Verify).
	TrustedAuthservID string

	AutoreplyEnabled bool
	MaxPerSender     int           // acknowledgements to one address ...
	Per              time.Duration // ... within this window
	GlobalMaxPerHour int           // acknowledgements in all, per hour

	MaxMessageBytes int // larger mails are quarantined
	ParseLimits     threading.Limits

	// Loop protection (limits.go); zero values take the defaults there.
	MaxNotificationsPerHour int           // notifications to one agent an hour
	BreakerTrips            int           // refused automatic mails to one address that pause it
	BreakerPause            time.Duration // how long it is then paused
	UndeliverableFor        time.Duration // no automatic mail to an address after a permanent bounce
	AdminEmail              string        // alerts by mail; "" only logs them
}

// Engine applies inbound mail to tickets. It is safe for concurrent use.
type Engine struct {
	db        *store.DB
	cfg       Config
	tokens    threading.Tokens
	templates *autoreply.Templates
	log       *slog.Logger
	now       func() time.Time
	mailboxes map[string]Mailbox
	agents    map[string]Agent
	teams     map[string]Team // lower-case name → team, declared or implied by Agent.Teams
	ownAddrs  map[string]bool // mailbox, comment and team addresses
	// own is what Classify needs to recognise our own mail and agents;
	// ownNoAgents leaves the agents out, to tell an agent's out-of-office
	// from the agent.
	own, ownNoAgents autoreply.Own
	// Queued is called after a commit that queued outbound mail, to wake
	// the outbox worker. May be nil.
	Queued func()
	// Alerted is called once for every alert, after the commit that
	// recorded it (a metric). May be nil.
	Alerted func(Alert)
	// fault, when set (tests), is called at points of Handle to inject a
	// failure such as a panic.
	fault func(stage string)
}

// New returns an engine. The token secret comes from the database, so
// replies keep threading across restarts and backups.
func New(db *store.DB, cfg Config, templates *autoreply.Templates, log *slog.Logger) *Engine {
	cfg = cfg.withDefaults()
	e := &Engine{
		db:        db,
		cfg:       cfg,
		tokens:    threading.Tokens{Secret: db.Secret(), Domain: cfg.Domain},
		templates: templates,
		log:       log,
		now:       func() time.Time { return time.Now().UTC() },
		mailboxes: make(map[string]Mailbox),
		agents:    make(map[string]Agent),
		teams:     make(map[string]Team),
		ownAddrs:  make(map[string]bool),
	}
	addOwn := func(addr string) {
		if addr != "" {
			e.ownAddrs[addr] = true
			e.ownNoAgents.Addresses = append(e.ownNoAgents.Addresses, addr)
		}
	}
	for _, m := range cfg.Mailboxes {
		m.Address = strings.ToLower(m.Address)
		m.CommentAddress = strings.ToLower(m.CommentAddress)
		e.mailboxes[m.Name] = m
		addOwn(m.Address)
		addOwn(m.CommentAddress)
	}
	for _, t := range cfg.Teams {
		t.Email = strings.ToLower(t.Email)
		e.teams[strings.ToLower(t.Name)] = t
		addOwn(t.Email)
	}
	for _, a := range cfg.Agents {
		a.Email = strings.ToLower(a.Email)
		e.agents[a.Email] = a
		for _, name := range a.Teams {
			if _, ok := e.teams[strings.ToLower(name)]; !ok {
				e.teams[strings.ToLower(name)] = Team{Name: name}
			}
		}
	}
	e.ownNoAgents.Domain = cfg.Domain
	e.own = autoreply.Own{Addresses: slices.Clone(e.ownNoAgents.Addresses), Domain: cfg.Domain}
	for addr := range e.agents {
		e.own.Addresses = append(e.own.Addresses, addr)
	}
	return e
}

// SetClock replaces the engine's clock (tests).
func (e *Engine) SetClock(now func() time.Time) { e.now = now }

// Inbound is one mail fetched from a mailbox.
type Inbound struct {
	Mailbox     string
	UIDValidity uint32
	UID         uint32
	Raw         []byte
	// Staged holds the mail instead of Raw when it was spooled (Spool).
	Staged *store.Staged
	// Prepared is what Prepare returned for this mail, or nil.
	Prepared any
}

// Result says what Handle did with a mail.
type Result struct {
	TicketID    uint64
	Rule        threading.Rule // which threading rule matched; "duplicate" for a mail seen before
	Quarantined bool
	Reason      string // why quarantined, or why no acknowledgement was sent
	Acked       bool   // an acknowledgement was queued

	Kind     string // the kind the mail was stored as (store.KindCustomer, KindAgent, KindNote)
	Notified int    // notifications queued to agents (including note copies)
	Relayed  bool   // an agent's answer was queued to the customer
	Rejected bool   // an agent's commands were refused; an error reply was queued
	// Suspect says why a mail from an agent address was treated as
	// customer mail; it is logged as a suspected spoof.
	Suspect string
	Bounce  bool // the mail is a delivery report (bounce.go)
	Notice  bool // a notice about the quarantined mail was queued to its sender
}

// Handle stores one inbound mail and everything it causes in one
// transaction. A returned error is temporary (the database failed): the
// caller retries the same mail later. Broken mail is quarantined, not an
// error, and so is mail whose handling panics (quarantine.go). HandleBatch
// (batch.go) does the same for several mails at once.
func (e *Engine) Handle(ctx context.Context, in Inbound) (res Result, err error) {
	if _, ok := e.mailboxes[in.Mailbox]; !ok {
		return res, fmt.Errorf("handle %s uid %d: unknown mailbox", in.Mailbox, in.UID)
	}
	defer e.recoverPanic(in, &res, &err)
	p := e.prepare(in)
	if p.err != nil {
		return res, fmt.Errorf("store %s uid %d: %w", in.Mailbox, in.UID, p.err)
	}
	return e.handlePrepared(in, p)
}

// step is the work on one inbound mail inside its transaction.
type step struct {
	e       *Engine
	tx      *store.Tx
	via     Mailbox // the mailbox the mail arrived in
	mb      Mailbox // the mailbox outbound mail comes from: the ticket's
	in      Inbound
	msg     *threading.Message
	verdict autoreply.Verdict
	report  *bounce.Report // the delivery report the mail is, or nil
	now     time.Time
	// staged holds the mail's bytes when they were written ahead (a big
	// mail, store.NeedsStaging); storeInbound claims them.
	staged *store.Staged

	res      Result
	queued   int      // outbound mails queued
	problems []string // outbound mails that could not be composed
	warnings []string // added to the stored message's warnings
	logged            // what limits.go and bounce.go leave to log after the commit
}

// run threads the mail and hands it to the customer or the agent rules.
func (s *step) run(key string) error {
	e, msg := s.e, s.msg
	ag, fromAgent := e.agents[msg.From.Addr]
	match := e.match(s.tx, msg)
	s.res.Rule = match.Rule
	if match.Rule == threading.RuleNew || match.TicketID == 0 {
		s.res.Rule = threading.RuleNew
		if fromAgent {
			if why := e.foreignToken(msg, ag); why != "" {
				s.suspect(ag, why)
			}
		}
		return s.newTicket(key)
	}
	tk, err := s.tx.Ticket(match.TicketID)
	if err != nil {
		return err
	}
	if tk, err = s.followMerges(tk); err != nil {
		return err
	}
	s.res.TicketID = tk.ID
	// Outbound mail about a ticket comes from the ticket's mailbox, also
	// when the mail arrived through another one (a customer who wrote to
	// two of our addresses, a ticket merged across mailboxes).
	if tmb, ok := e.mailboxes[tk.Mailbox]; ok {
		s.mb = tmb
	}
	if fromAgent {
		switch r, why := s.identify(ag, match, tk); r {
		case roleAction:
			return s.agentAction(ag, tk, key)
		case roleDirect, roleAutomated:
			return s.agentRecord(tk, key, r)
		default:
			s.suspect(ag, why)
		}
	}
	return s.customerReply(tk, key)
}

// suspect marks the mail, from agent ag's address, as a suspected spoof:
// it is handled as customer mail, with the reason on the stored message
// and in the log.
func (s *step) suspect(ag Agent, why string) {
	s.res.Suspect = why
	s.warnings = append(s.warnings, "suspected spoof of agent "+ag.Email+": "+why)
}

// match is threading.Match, plus tokens bound to the Email of a team the
// sending agent belongs to (notifications sent to a team list).
func (e *Engine) match(tx *store.Tx, msg *threading.Message) threading.Match {
	m := e.tokens.Match(participants{tx: tx, agents: e.agents}, msg, e.cfg.SubjectPrefix)
	if m.Rule == threading.RuleToken && m.AgentBound {
		return m
	}
	if ag, ok := e.agents[msg.From.Addr]; ok {
		for _, ref := range refsNewestFirst(msg) {
			for _, addr := range e.teamAddresses(ag) {
				if id, bound, ok := e.tokens.Verify(ref, addr); ok && bound && tx.TicketExists(id) {
					return threading.Match{TicketID: id, Rule: threading.RuleToken, AgentBound: true}
				}
			}
		}
	}
	return m
}

// newTicket opens a ticket for the mail, acknowledges it and notifies the
// agents.
func (s *step) newTicket(key string) error {
	tk := s.e.newTicket(s.mb, s.msg, s.now)
	if err := s.tx.CreateTicket(tk); err != nil {
		return err
	}
	s.res.TicketID = tk.ID
	m, err := s.storeInbound(tk.ID, store.KindCustomer, key)
	if err != nil {
		return err
	}
	queued, why, err := s.queueAck(tk)
	if err != nil {
		return err
	}
	s.res.Acked, s.res.Reason = queued, why
	if s.verdict.Automated {
		return nil
	}
	return s.notifyCustomerMail(tk, m, true)
}

// customerReply adds a customer's mail to its ticket and notifies.
func (s *step) customerReply(tk *store.Ticket, key string) error {
	participant := tk.Requester == s.msg.From.Addr || slices.Contains(tk.CC, s.msg.From.Addr)
	s.e.applyCustomerReply(tk, s.msg, s.verdict, s.now, participant)
	if err := s.tx.UpdateTicket(tk); err != nil {
		return err
	}
	m, err := s.storeInbound(tk.ID, store.KindCustomer, key)
	if err != nil {
		return err
	}
	if s.verdict.Automated {
		return nil
	}
	return s.notifyCustomerMail(tk, m, false)
}

// storeInbound stores the mail being handled on ticket id as kind.
func (s *step) storeInbound(id uint64, kind, key string) (*store.Message, error) {
	m := inboundMessage(id, s.in, s.msg, s.verdict, string(s.res.Rule), s.now)
	m.Kind = kind
	m.Warnings = append(m.Warnings, s.warnings...)
	s.res.Kind = kind
	var err error
	if s.staged != nil {
		err = s.tx.AddStagedMessage(m, s.staged, key)
	} else {
		err = s.tx.AddMessage(m, s.in.Raw, key)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// followMerges returns the ticket at the end of tk's merged_into chain,
// where mail for tk now goes, and notes the redirection on the message.
func (s *step) followMerges(tk *store.Ticket) (*store.Ticket, error) {
	end, err := mergeEnd(s.tx, tk)
	if err != nil {
		return nil, err
	}
	if end.ID != tk.ID {
		s.warnings = append(s.warnings, fmt.Sprintf("ticket #%d was merged into #%d", tk.ID, end.ID))
	}
	return end, nil
}

// parse is parseIn for bytes in memory, which cannot fail to be read.
func (e *Engine) parse(raw []byte) (*threading.Message, string) {
	msg, reason, _ := e.parseIn(Inbound{Raw: raw})
	return msg, reason
}

func (e *Engine) newTicket(mb Mailbox, msg *threading.Message, now time.Time) *store.Ticket {
	tk := &store.Ticket{
		Subject:       cleanSubject(msg.Subject),
		Status:        store.StatusNew,
		Priority:      "normal",
		Mailbox:       mb.Name,
		Requester:     msg.From.Addr,
		RequesterName: msg.From.Name,
		CC:            []string{},
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	// Everyone the customer wrote to, but us, follows the ticket. Agents
	// hear of it through notifications instead.
	for _, a := range slices.Concat(msg.To, msg.Cc) {
		if a.Addr == "" || a.Addr == tk.Requester || e.isOwn(a.Addr) || e.isAgent(a.Addr) || slices.Contains(tk.CC, a.Addr) {
			continue
		}
		tk.CC = append(tk.CC, a.Addr)
	}
	e.remember(tk, msg)
	return tk
}

// applyCustomerReply updates a ticket for a mail that joined it. A person's
// reply reopens a ticket that waited for them; an automated mail (an
// out-of-office, a bounce) never does. Only the requester's and the CCs'
// mail moves the thread relays answer under: a non-participant's reply
// (forwarded or BCC'd) is not in the customer's mailbox.
func (e *Engine) applyCustomerReply(tk *store.Ticket, msg *threading.Message, v autoreply.Verdict, now time.Time, participant bool) {
	tk.UpdatedAt = now
	if v.Automated {
		return
	}
	if tk.Status == store.StatusPending || tk.Status == store.StatusResolved {
		tk.Status = store.StatusOpen
	}
	if participant {
		e.remember(tk, msg)
	}
}

// remember keeps what outbound mail needs to thread under the customer's
// latest message.
func (e *Engine) remember(tk *store.Ticket, msg *threading.Message) {
	if msg.MessageID == "" {
		return
	}
	tk.LastCustomerMessageID = msg.MessageID
	tk.ThreadIDs = appendThreadID(tk.ThreadIDs, msg.MessageID)
}

// maxThreadIDs bounds the References we send; the first is kept because
// clients thread on the root.
const maxThreadIDs = 20

func appendThreadID(ids []string, id string) []string {
	if slices.Contains(ids, id) {
		return ids
	}
	ids = append(ids, id)
	if len(ids) > maxThreadIDs {
		ids = append(ids[:1], ids[len(ids)-maxThreadIDs+1:]...)
	}
	return ids
}

// isOwn reports whether addr is one of our mailbox, comment or team
// addresses.
func (e *Engine) isOwn(addr string) bool { return e.ownAddrs[addr] }

func (e *Engine) isAgent(addr string) bool {
	_, ok := e.agents[addr]
	return ok
}

// cleanSubject is the ticket's title: the mail's subject without reply
// prefixes or a foreign ticket tag.
func cleanSubject(s string) string {
	base := threading.BaseSubject(s)
	if base == "" {
		return "(no subject)"
	}
	return base
}

func inboundMessage(ticketID uint64, in Inbound, msg *threading.Message, v autoreply.Verdict, rule string, now time.Time) *store.Message {
	m := &store.Message{
		TicketID:        ticketID,
		MessageID:       msg.MessageID,
		Direction:       store.DirectionIn,
		Kind:            store.KindCustomer,
		From:            msg.From.Addr,
		FromName:        msg.From.Name,
		To:              addrs(msg.To),
		Cc:              addrs(msg.Cc),
		Date:            msg.Date.UTC(),
		Subject:         msg.Subject,
		Text:            msg.Text,
		Attachments:     []store.Attachment{},
		InReplyTo:       msg.InReplyTo,
		References:      msg.References,
		MatchedBy:       rule,
		Automated:       string(v.Kind),
		AutomatedReason: v.Reason,
		Mailbox:         in.Mailbox,
		UIDValidity:     in.UIDValidity,
		UID:             in.UID,
		Size:            in.size(),
		RawSHA256:       msg.RawSHA256,
		Warnings:        msg.Warnings,
		ReceivedAt:      now,
	}
	if m.Date.IsZero() {
		m.Date = now
	}
	for _, a := range msg.Attachments {
		m.Attachments = append(m.Attachments, store.Attachment{Filename: a.Filename, ContentType: a.ContentType, Size: a.Size})
	}
	return m
}

func addrs(as []threading.Address) []string {
	out := []string{}
	for _, a := range as {
		if a.Addr != "" {
			out = append(out, a.Addr)
		}
	}
	return out
}

// participants answers threading's questions from inside the transaction.
type participants struct {
	tx     *store.Tx
	agents map[string]Agent
}

func (p participants) TicketByMessageID(key string) (uint64, bool) {
	return p.tx.TicketByMessageID(key)
}
func (p participants) TicketExists(id uint64) bool { return p.tx.TicketExists(id) }

func (p participants) IsParticipant(id uint64, addr string) bool {
	addr = strings.ToLower(addr)
	if _, ok := p.agents[addr]; ok {
		return true
	}
	tk, err := p.tx.Ticket(id)
	if err != nil {
		return false
	}
	return tk.Requester == addr || slices.Contains(tk.CC, addr)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// threadReferences is the References of a reply to msg (RFC 5322 3.6.4):
// its References (or else its In-Reply-To) followed by its Message-ID.
func threadReferences(msg *threading.Message) []string {
	refs := slices.Clone(msg.References)
	if len(refs) == 0 && len(msg.InReplyTo) == 1 {
		refs = slices.Clone(msg.InReplyTo)
	}
	if msg.MessageID != "" {
		refs = append(refs, msg.MessageID)
	}
	if len(refs) > maxThreadIDs {
		refs = append(refs[:1], refs[len(refs)-maxThreadIDs+1:]...)
	}
	return refs
}
