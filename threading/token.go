package threading

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strconv"
	"strings"
)

// Tokens makes and checks the Message-IDs of our outbound mail.
//
// Format: "hd.<ticket>.<kind>.<nonce>.<mac>@<domain>", all lower case, where
// kind is "c" (customer-facing) or "a" (bound to one agent address), nonce is
// 80 random bits and mac is the first 120 bits of
// HMAC-SHA256(Secret, version, ticket, kind, nonce, agent address), both in
// unpadded base32. A reply that references such an id threads to its ticket
// even when the subject was rewritten; an agent-bound id only counts when the
// reply comes from that agent, so a forwarded notification cannot be used to
// post as an agent.
//
// Secret should be at least 32 random bytes and stay stable: rotating it
// turns older ids into ordinary References (matched by RuleReferences when
// they are indexed). With an empty Secret or Domain nothing verifies.
type Tokens struct {
	Secret []byte
	Domain string
}

const (
	tokenTag      = "hd"
	tokenVersion  = "helpdesk-msgid-v1"
	nonceBytes    = 10 // 80 bits → 16 base32 characters
	macBytes      = 15 // 120 bits → 24 base32 characters
	kindCustomer  = "c"
	kindAgent     = "a"
	maxTokenIDLen = 256
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

var (
	nonceLen = b32.EncodedLen(nonceBytes)
	macLen   = b32.EncodedLen(macBytes)
)

// NewMessageID returns a fresh Message-ID (without angle brackets) for a mail
// about ticketID. agent "" makes a customer-facing id; otherwise the id is
// bound to that agent address (case-insensitive). t.Domain must be set
// (config validation's job); with an empty Secret the id is still unique but
// never verifies.
func (t Tokens) NewMessageID(ticketID uint64, agent string) string {
	kind := kindCustomer
	agent = normAddr(agent)
	if agent != "" {
		kind = kindAgent
	}
	var nonce [nonceBytes]byte
	// crypto/rand.Read never returns an error (it crashes the program if
	// the kernel cannot supply randomness).
	_, _ = rand.Read(nonce[:])
	n := strings.ToLower(b32.EncodeToString(nonce[:]))
	return tokenTag + "." + strconv.FormatUint(ticketID, 10) + "." + kind + "." + n + "." +
		t.mac(ticketID, kind, n, agent) + "@" + strings.ToLower(strings.TrimSpace(t.Domain))
}

func (t Tokens) mac(ticketID uint64, kind, nonce, agent string) string {
	h := hmac.New(sha256.New, t.Secret)
	// NUL separators: no field can contain one, so the encoding is
	// unambiguous.
	for _, f := range []string{tokenVersion, strconv.FormatUint(ticketID, 10), kind, nonce, agent} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return strings.ToLower(b32.EncodeToString(h.Sum(nil)[:macBytes]))
}

// Verify checks whether msgid (with or without angle brackets) is a token of
// ours and returns its ticket. A customer-facing token is valid whoever
// replies; an agent-bound token only when from is that agent. Ids of other
// domains, malformed ids and wrong MACs give ok == false. The MAC is compared
// in constant time.
func (t Tokens) Verify(msgid, from string) (ticketID uint64, agentBound bool, ok bool) {
	domain := strings.ToLower(strings.TrimSpace(t.Domain))
	if len(t.Secret) == 0 || domain == "" {
		return 0, false, false
	}
	id := strings.TrimSpace(msgid)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	if len(id) > maxTokenIDLen {
		return 0, false, false
	}
	// QUIRK: some gateways lower-case or upper-case whole Message-IDs; the
	// token is case-insensitive by construction.
	id = strings.ToLower(id)
	at := strings.LastIndexByte(id, '@')
	if at < 0 || id[at+1:] != domain {
		return 0, false, false
	}
	parts := strings.Split(id[:at], ".")
	if len(parts) != 5 || parts[0] != tokenTag {
		return 0, false, false
	}
	ticketID, err := strconv.ParseUint(parts[1], 10, 64)
	if err != nil || ticketID == 0 || strconv.FormatUint(ticketID, 10) != parts[1] {
		return 0, false, false
	}
	kind, nonce, mac := parts[2], parts[3], parts[4]
	if len(nonce) != nonceLen || !isBase32Lower(nonce) || len(mac) != macLen {
		return 0, false, false
	}
	agent := ""
	switch kind {
	case kindCustomer:
	case kindAgent:
		agent = normAddr(from)
		if agent == "" {
			return 0, false, false
		}
	default:
		return 0, false, false
	}
	if !hmac.Equal([]byte(t.mac(ticketID, kind, nonce, agent)), []byte(mac)) {
		return 0, false, false
	}
	return ticketID, kind == kindAgent, true
}

func isBase32Lower(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z') && !('2' <= c && c <= '7') {
			return false
		}
	}
	return true
}

// normAddr lower-cases and trims an address and drops angle brackets.
func normAddr(a string) string {
	a = strings.TrimSpace(a)
	a = strings.TrimSuffix(strings.TrimPrefix(a, "<"), ">")
	return strings.ToLower(strings.TrimSpace(a))
}
