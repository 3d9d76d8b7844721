package threading

import (
	"testing"
)

// fakeLookup is an in-memory Lookup that records nothing and answers from
// its maps.
type fakeLookup struct {
	ids          map[string]uint64          // index key → ticket
	tickets      map[uint64]bool            // existing tickets
	participants map[uint64]map[string]bool // ticket → addresses
}

func (f *fakeLookup) TicketByMessageID(key string) (uint64, bool) {
	id, ok := f.ids[key]
	return id, ok
}

func (f *fakeLookup) TicketExists(id uint64) bool { return f.tickets[id] }

func (f *fakeLookup) IsParticipant(id uint64, addr string) bool { return f.participants[id][addr] }

func TestMatch(t *testing.T) {
	t.Parallel()
	tok := testTokens
	tokenFor7 := tok.NewMessageID(7, "")
	tokenFor9 := tok.NewMessageID(9, "")
	agentTokenFor7 := tok.NewMessageID(7, "alice@example.com")
	tokenForGone := tok.NewMessageID(99, "")
	foreignToken := Tokens{Secret: []byte("other-secret-other-secret-other!"), Domain: "helpdesk.example.com"}.NewMessageID(8, "")

	lookup := &fakeLookup{
		ids: map[string]uint64{
			"<dup@mail.example.org>":   3,
			"<known@mail.example.org>": 5,
			"<older@mail.example.org>": 6,
			IDKey(tokenFor9):           9,
			IDKey(foreignToken):        8,
		},
		tickets: map[uint64]bool{3: true, 5: true, 6: true, 7: true, 8: true, 9: true, 17: true, 18: true},
		participants: map[uint64]map[string]bool{
			17: {"ann@example.org": true},
			18: {"ann@example.org": true},
		},
	}

	tests := []struct {
		name string
		msg  Message
		want Match
	}{
		{
			name: "duplicate wins over everything",
			msg:  Message{MessageID: "dup@MAIL.example.org", InReplyTo: []string{tokenFor7}, Subject: "[Ticket#17]", From: Address{Addr: "ann@example.org"}},
			want: Match{TicketID: 3, Rule: RuleDuplicate},
		},
		{
			name: "unknown message without Message-ID",
			msg:  Message{RawSHA256: "abc"},
			want: Match{Rule: RuleNew},
		},
		{
			name: "token in In-Reply-To",
			msg:  Message{MessageID: "new@x", InReplyTo: []string{tokenFor7}},
			want: Match{TicketID: 7, Rule: RuleToken},
		},
		{
			name: "token wins over a known reference and a tag",
			msg:  Message{MessageID: "new@x", References: []string{"known@mail.example.org", tokenFor7}, Subject: "[Ticket#17]", From: Address{Addr: "ann@example.org"}},
			want: Match{TicketID: 7, Rule: RuleToken},
		},
		{
			name: "newest token first: In-Reply-To before References",
			msg:  Message{MessageID: "new@x", InReplyTo: []string{tokenFor9}, References: []string{tokenFor7}},
			want: Match{TicketID: 9, Rule: RuleToken},
		},
		{
			name: "newest token first: last References entry",
			msg:  Message{MessageID: "new@x", References: []string{tokenFor9, tokenFor7}},
			want: Match{TicketID: 7, Rule: RuleToken},
		},
		{
			name: "token survives a changed subject and bracket-less reference",
			msg:  Message{MessageID: "new@x", References: []string{"<" + tokenFor7 + ">"}, Subject: "totally different"},
			want: Match{TicketID: 7, Rule: RuleToken},
		},
		{
			name: "agent-bound token from the agent",
			msg:  Message{MessageID: "new@x", InReplyTo: []string{agentTokenFor7}, From: Address{Addr: "alice@example.com"}},
			want: Match{TicketID: 7, Rule: RuleToken, AgentBound: true},
		},
		{
			name: "agent-bound token from someone else falls through",
			msg:  Message{MessageID: "new@x", InReplyTo: []string{agentTokenFor7}, From: Address{Addr: "mallory@example.com"}},
			want: Match{Rule: RuleNew},
		},
		{
			name: "token of a ticket that does not exist falls through",
			msg:  Message{MessageID: "new@x", InReplyTo: []string{tokenForGone}},
			want: Match{Rule: RuleNew},
		},
		{
			name: "foreign-secret token known in the index is a reference",
			msg:  Message{MessageID: "new@x", InReplyTo: []string{foreignToken}},
			want: Match{TicketID: 8, Rule: RuleReferences},
		},
		{
			name: "known In-Reply-To, domain case ignored",
			msg:  Message{MessageID: "new@x", InReplyTo: []string{"known@mail.EXAMPLE.org"}},
			want: Match{TicketID: 5, Rule: RuleReferences},
		},
		{
			name: "newest known reference first",
			msg:  Message{MessageID: "new@x", References: []string{"older@mail.example.org", "unknown@x", "known@mail.example.org", "unknown2@x"}},
			want: Match{TicketID: 5, Rule: RuleReferences},
		},
		{
			name: "references win over the subject tag",
			msg:  Message{MessageID: "new@x", References: []string{"older@mail.example.org"}, Subject: "Re: [Ticket#17]", From: Address{Addr: "ann@example.org"}},
			want: Match{TicketID: 6, Rule: RuleReferences},
		},
		{
			name: "subject tag from a participant",
			msg:  Message{MessageID: "new@x", References: []string{"unknown@x"}, Subject: "AW: [ticket # 17] Drucker", From: Address{Addr: "ann@example.org"}},
			want: Match{TicketID: 17, Rule: RuleSubjectTag},
		},
		{
			name: "subject tag from a stranger is a new ticket",
			msg:  Message{MessageID: "new@x", Subject: "Re: [Ticket#17] Drucker", From: Address{Addr: "mallory@example.com"}},
			want: Match{Rule: RuleNew},
		},
		{
			name: "subject tag without a sender is a new ticket",
			msg:  Message{MessageID: "new@x", Subject: "Re: [Ticket#17] Drucker"},
			want: Match{Rule: RuleNew},
		},
		{
			name: "subject tag of a missing ticket is a new ticket",
			msg:  Message{MessageID: "new@x", Subject: "[Ticket#404]", From: Address{Addr: "ann@example.org"}},
			want: Match{Rule: RuleNew},
		},
		{
			name: "second tag accepted when the sender takes part only there",
			msg:  Message{MessageID: "new@x", Subject: "[Ticket#9] [Ticket#18]", From: Address{Addr: "ann@example.org"}},
			want: Match{TicketID: 18, Rule: RuleSubjectTag},
		},
		{
			name: "other prefix is not our tag",
			msg:  Message{MessageID: "new@x", Subject: "[Case#17]", From: Address{Addr: "ann@example.org"}},
			want: Match{Rule: RuleNew},
		},
		{
			name: "nothing at all",
			msg:  Message{MessageID: "new@x", Subject: "Printer offline", From: Address{Addr: "ann@example.org"}},
			want: Match{Rule: RuleNew},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tok.Match(lookup, &tt.msg, "Ticket")
			if got != tt.want {
				t.Errorf("Match = %+v, want %+v", got, tt.want)
			}
		})
	}

	t.Run("duplicate by raw hash", func(t *testing.T) {
		m := Message{RawSHA256: "feed"}
		l := &fakeLookup{ids: map[string]uint64{"sha256:feed": 4}}
		if got := tok.Match(l, &m, "Ticket"); got != (Match{TicketID: 4, Rule: RuleDuplicate}) {
			t.Errorf("Match = %+v", got)
		}
	})
	t.Run("nil message", func(t *testing.T) {
		if got := tok.Match(lookup, nil, "Ticket"); got.Rule != RuleNew {
			t.Errorf("Match(nil) = %+v", got)
		}
	})
}

// TestMatch_ParsedReply runs Match on a parsed wire message whose subject
// was rewritten by the customer: the token in References still threads it.
func TestMatch_ParsedReply(t *testing.T) {
	t.Parallel()
	ours := testTokens.NewMessageID(1042, "")
	raw := crlf("From: Ann <ann@example.org>\nSubject: something else entirely\nMessage-ID: <reply-1@mail.example.org>\nIn-Reply-To: <" + ours + ">\nReferences: <first@mail.example.org>\n <" + ours + ">\n\nThanks!\n")
	m := mustParse(t, raw)
	l := &fakeLookup{ids: map[string]uint64{"<first@mail.example.org>": 1042}, tickets: map[uint64]bool{1042: true}}
	if got := testTokens.Match(l, m, "Ticket"); got != (Match{TicketID: 1042, Rule: RuleToken}) {
		t.Errorf("Match = %+v", got)
	}
}
