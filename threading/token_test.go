package threading

import (
	"regexp"
	"strings"
	"testing"
)

var testTokens = Tokens{Secret: []byte("0123456789abcdef0123456789abcdef"), Domain: "Helpdesk.Example.com"}

var tokenFormat = regexp.MustCompile(`^hd\.[1-9][0-9]*\.[ca]\.[a-z2-7]{16}\.[a-z2-7]{24}@helpdesk\.example\.com$`)

func TestTokens_RoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ticket    uint64
		agent     string
		from      string
		wantAgent bool
	}{
		{1042, "", "ann@example.org", false},
		{1042, "", "", false},
		{1, "Alice@Example.com", "alice@example.com", true},
		{18446744073709551615, "alice@example.com", "<ALICE@example.com>", true},
	} {
		id := testTokens.NewMessageID(tt.ticket, tt.agent)
		if !tokenFormat.MatchString(id) {
			t.Errorf("NewMessageID = %q, not in the documented format", id)
		}
		for _, form := range []string{id, "<" + id + ">", " <" + strings.ToUpper(id) + "> "} {
			ticket, agent, ok := testTokens.Verify(form, tt.from)
			if !ok || ticket != tt.ticket || agent != tt.wantAgent {
				t.Errorf("Verify(%q, %q) = (%d, %v, %v), want (%d, %v, true)", form, tt.from, ticket, agent, ok, tt.ticket, tt.wantAgent)
			}
		}
	}
	a, b := testTokens.NewMessageID(7, ""), testTokens.NewMessageID(7, "")
	if a == b {
		t.Errorf("two ids for the same ticket are equal: %q (nonce not random)", a)
	}
}

func TestTokens_Rejects(t *testing.T) {
	t.Parallel()
	cust := testTokens.NewMessageID(1042, "")
	agent := testTokens.NewMessageID(1042, "alice@example.com")
	// edit returns id with its dot-separated label i replaced by f(label).
	edit := func(id string, i int, f func(string) string) string {
		local, domain, _ := strings.Cut(id, "@")
		labels := strings.Split(local, ".")
		labels[i] = f(labels[i])
		return strings.Join(labels, ".") + "@" + domain
	}
	set := func(v string) func(string) string { return func(string) string { return v } }
	flip := func(s string) string { // change the last character, staying in the alphabet
		if s[len(s)-1] == 'a' {
			return s[:len(s)-1] + "b"
		}
		return s[:len(s)-1] + "a"
	}
	const stranger = "x@example.com"
	tests := map[string]struct{ id, from string }{
		"empty":                              {"", stranger},
		"garbage":                            {"garbage", stranger},
		"foreign domain":                     {strings.Replace(cust, "helpdesk.example.com", "evil.example", 1), stranger},
		"subdomain":                          {strings.Replace(cust, "@", "@x.", 1), stranger},
		"other ticket":                       {edit(cust, 1, set("1043")), stranger},
		"leading zero":                       {edit(cust, 1, set("01042")), stranger},
		"tampered nonce":                     {edit(cust, 3, flip), stranger},
		"tampered mac":                       {edit(cust, 4, flip), stranger},
		"short mac":                          {edit(cust, 4, func(s string) string { return s[:20] }), stranger},
		"customer token relabelled as agent": {edit(cust, 2, set("a")), stranger},
		"agent token relabelled as customer": {edit(agent, 2, set("c")), "mallory@example.com"},
		"agent token from another agent":     {agent, "bob@example.com"},
		"agent token from nobody":            {agent, ""},
		"extra label":                        {"x." + cust, stranger},
		"too long":                           {strings.Repeat("a", 300) + cust, stranger},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if ticket, _, ok := testTokens.Verify(tt.id, tt.from); ok {
				t.Errorf("Verify(%q, %q) accepted ticket %d", tt.id, tt.from, ticket)
			}
		})
	}

	t.Run("other secret", func(t *testing.T) {
		other := Tokens{Secret: []byte("another secret of sufficient size"), Domain: testTokens.Domain}
		if _, _, ok := other.Verify(cust, ""); ok {
			t.Error("a token verified under another secret")
		}
	})
	t.Run("empty secret verifies nothing", func(t *testing.T) {
		unkeyed := Tokens{Domain: testTokens.Domain}
		if _, _, ok := unkeyed.Verify(unkeyed.NewMessageID(5, ""), ""); ok {
			t.Error("an unkeyed token verified")
		}
	})
}
