package threading

// Rule names the step of Match that found the ticket; the ticket package
// records it with the message.
type Rule string

// The rules in the order Match tries them.
const (
	RuleDuplicate  Rule = "duplicate"   // this very message is already stored: do nothing
	RuleToken      Rule = "token"       // a valid token of ours in In-Reply-To/References
	RuleReferences Rule = "references"  // another known id in In-Reply-To/References
	RuleSubjectTag Rule = "subject_tag" // [prefix#N] in the subject, from a participant of N
	RuleNew        Rule = "new"         // none of the above: a new ticket
)

// Lookup is what Match needs from the store. Implementations are called
// inside the transaction that stores the message, so the answer and the
// write are consistent.
type Lookup interface {
	// TicketByMessageID looks up an index key made by IDKey or
	// Message.DedupeKey.
	TicketByMessageID(dedupeKey string) (ticketID uint64, ok bool)
	TicketExists(id uint64) bool
	// IsParticipant reports whether addr (lower case) is the requester, a CC
	// or an agent of the ticket.
	IsParticipant(ticketID uint64, addr string) bool
}

// Match is the outcome of Tokens.Match. TicketID is 0 for RuleNew.
type Match struct {
	TicketID   uint64
	Rule       Rule
	AgentBound bool // RuleToken only: the token was bound to the sender, an agent
}

// Match finds the ticket of m, trying in this fixed order:
//
//  1. m's own DedupeKey is known (RuleDuplicate; the caller does nothing);
//  2. a valid token of ours in In-Reply-To, then References newest first,
//     whose ticket exists (RuleToken);
//  3. any other id in the same order that the index knows (RuleReferences);
//  4. a subject tag [prefix#N] whose ticket exists and whose sender is a
//     participant of N (RuleSubjectTag) — a stranger quoting a ticket number
//     opens a new ticket instead of writing into someone else's;
//  5. RuleNew.
func (t Tokens) Match(l Lookup, m *Message, prefix string) Match {
	if m == nil || l == nil {
		return Match{Rule: RuleNew}
	}
	if id, ok := l.TicketByMessageID(m.DedupeKey()); ok {
		return Match{TicketID: id, Rule: RuleDuplicate}
	}
	refs := newestFirst(m)
	for _, ref := range refs {
		if id, agent, ok := t.Verify(ref, m.From.Addr); ok && l.TicketExists(id) {
			return Match{TicketID: id, Rule: RuleToken, AgentBound: agent}
		}
	}
	for _, ref := range refs {
		if id, ok := l.TicketByMessageID(IDKey(ref)); ok {
			return Match{TicketID: id, Rule: RuleReferences}
		}
	}
	if m.From.Addr != "" {
		for _, id := range findTags(m.Subject, prefix, maxTagsScanned) {
			if l.TicketExists(id) && l.IsParticipant(id, m.From.Addr) {
				return Match{TicketID: id, Rule: RuleSubjectTag}
			}
		}
	}
	return Match{Rule: RuleNew}
}

// newestFirst lists In-Reply-To (the direct parent) and then References from
// the newest to the oldest, without duplicates.
func newestFirst(m *Message) []string {
	out := make([]string, 0, len(m.InReplyTo)+len(m.References))
	seen := make(map[string]bool, cap(out))
	add := func(id string) {
		if k := IDKey(id); k != "" && !seen[k] {
			seen[k] = true
			out = append(out, id)
		}
	}
	for _, id := range m.InReplyTo {
		add(id)
	}
	for i := len(m.References) - 1; i >= 0; i-- {
		add(m.References[i])
	}
	return out
}
