package agent

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/authres"
)

// AuthResult is Verify's verdict.
type AuthResult struct {
	// OK means the mail may act as the agent.
	OK bool
	// Reason says which result was accepted, or why none was, for logs and
	// for the operator; it never contains secrets.
	Reason string
}

// Verify decides whether a mail claiming to be from the agent address from
// (the address in its From header) may act as that agent.
//
// trustedAuthservID "" means there is no Authentication-Results requirement
// (the notification token and the From address are checked elsewhere) and
// the result is OK.
//
// Otherwise only Authentication-Results header fields whose authserv-id
// equals trustedAuthservID (case-insensitively) are read; fields with
// another authserv-id are ignored, since anyone can write them. Our own
// receiving server must remove incoming fields carrying its authserv-id
// (RFC 8601 section 5), which is why such fields can be trusted. The mail is
// OK when any trusted field holds
//   - dkim=pass whose header.d (or, without it, the domain of header.i)
//     aligns with the From domain,
//   - spf=pass whose smtp.mailfrom domain aligns with the From domain, or
//   - dmarc=pass whose header.from is the From domain.
//
// Alignment is relaxed but simplified: two domains align when they are
// equal or one is a subdomain of the other, and the authenticated domain has
// at least two labels. Without a public suffix list this is right for
// domains whose every subdomain is run by one organisation, which is the
// case for an organisation's own mail domain; agents must not use addresses
// under a shared domain whose subdomains belong to strangers.
//
// A trusted field that cannot be parsed is not used at all. When the header
// has a From field, from must be one of its addresses, so a caller cannot
// verify one address with the results for another.
func Verify(header mail.Header, from string, trustedAuthservID string) AuthResult {
	fromAddr, fromDomain, err := addressAndDomain(from)
	if err != nil {
		return AuthResult{Reason: fmt.Sprintf("sender %q: %v", from, err)}
	}
	if trustedAuthservID == "" {
		return AuthResult{OK: true, Reason: "no Authentication-Results required"}
	}
	// QUIRK: an unparseable From header skips this cross-check rather than
	// failing: the caller already extracted from out of it somehow, and the
	// authentication results below still have to align with from's domain.
	if list, err := header.AddressList("From"); err == nil && len(list) > 0 {
		found := false
		for _, a := range list {
			found = found || strings.EqualFold(a.Address, fromAddr)
		}
		if !found {
			return AuthResult{Reason: fmt.Sprintf("From header %q does not contain %s", header.Get("From"), fromAddr)}
		}
	}

	var (
		trusted int
		notes   []string
	)
	for _, v := range header.Values("Authentication-Results") {
		id, results, err := parseAuthResults(v)
		if !strings.EqualFold(id, trustedAuthservID) {
			// Also when err != nil: a field that does not even name our
			// server is noise whether or not it parses.
			continue
		}
		trusted++
		if err != nil {
			notes = append(notes, fmt.Sprintf("malformed field ignored (%v)", err))
			continue
		}
		for _, r := range results {
			ok, note := judge(r, fromDomain)
			if ok {
				return AuthResult{OK: true, Reason: fmt.Sprintf("%s: %s", id, note)}
			}
			if note != "" {
				notes = append(notes, note)
			}
		}
	}
	if trusted == 0 {
		return AuthResult{Reason: fmt.Sprintf("no Authentication-Results from %s", trustedAuthservID)}
	}
	if len(notes) == 0 {
		notes = append(notes, "no dkim, spf or dmarc result")
	}
	return AuthResult{Reason: fmt.Sprintf("no result from %s aligned with %s: %s",
		trustedAuthservID, fromDomain, strings.Join(notes, "; "))}
}

// judge reports whether one result authenticates fromDomain, with a short
// description of the result for the Reason. Methods other than dkim, spf and
// dmarc are not described.
func judge(r authres.Result, fromDomain string) (ok bool, note string) {
	var (
		value authres.ResultValue
		match bool
	)
	switch r := r.(type) {
	case *authres.DKIMResult:
		d := r.Domain
		if d == "" {
			d = domainOf(r.Identifier)
		}
		d = normaliseDomain(d)
		value, match = r.Value, aligned(d, fromDomain)
		note = fmt.Sprintf("dkim=%s header.d=%s", r.Value, d)
	case *authres.SPFResult:
		d := normaliseDomain(domainOf(r.From))
		value, match = r.Value, aligned(d, fromDomain)
		note = fmt.Sprintf("spf=%s smtp.mailfrom domain %s", r.Value, d)
	case *authres.DMARCResult:
		d := normaliseDomain(r.From)
		// DMARC already did the alignment; only the domain it was
		// evaluated for must be the From domain.
		value, match = r.Value, d != "" && d == fromDomain
		note = fmt.Sprintf("dmarc=%s header.from=%s", r.Value, d)
	default:
		return false, ""
	}
	if value != authres.ResultPass {
		return false, note
	}
	if !match {
		return false, note + " (not aligned)"
	}
	return true, note
}

// aligned applies the simplified relaxed alignment described at Verify.
func aligned(authDomain, fromDomain string) bool {
	if authDomain == "" || fromDomain == "" || !strings.Contains(authDomain, ".") {
		return false
	}
	return authDomain == fromDomain ||
		strings.HasSuffix(fromDomain, "."+authDomain) ||
		strings.HasSuffix(authDomain, "."+fromDomain)
}

// addressAndDomain validates the agent's address and returns it with its
// normalised domain.
func addressAndDomain(from string) (addr, domain string, err error) {
	a, err := mail.ParseAddress(from)
	if err != nil {
		return "", "", fmt.Errorf("not an address: %w", err)
	}
	domain = normaliseDomain(domainOf(a.Address))
	if !strings.Contains(a.Address, "@") || domain == "" {
		return "", "", errors.New("address has no domain")
	}
	return a.Address, domain, nil
}

// domainOf returns what follows the last '@', or s itself without one
// (smtp.mailfrom may be a bare domain, header.i may be "@domain").
func domainOf(s string) string {
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func normaliseDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

// parseAuthResults parses one Authentication-Results field value with
// authres after removing what authres does not understand but real servers
// write: comments (OpenDKIM's "dkim=pass (2048-bit key; secure)" holds a
// ';' that authres would split on), quoted strings and space around '='.
func parseAuthResults(v string) (id string, results []authres.Result, err error) {
	clean, err := simplifyAuthResults(v)
	if err != nil {
		// Still return the authserv-id, so the caller can tell whether the
		// broken field was one it should have trusted.
		id, _, _ := strings.Cut(strings.TrimSpace(v), ";")
		if f := strings.Fields(id); len(f) > 0 {
			id = f[0]
		}
		return id, nil, fmt.Errorf("parse Authentication-Results: %w", err)
	}
	id, results, err = authres.Parse(clean)
	if err != nil {
		return id, nil, fmt.Errorf("parse Authentication-Results: %w", err)
	}
	return id, results, nil
}

// simplifyAuthResults rewrites an Authentication-Results value into the
// subset authres parses: RFC 5322 comments become a space, a quoted string
// becomes its content when that is a plain token (header.i="@example.com")
// and "_" otherwise (a free-text reason, which Verify does not use), and
// white space around '=' is removed. Unbalanced comments or quotes are an
// error.
func simplifyAuthResults(v string) (string, error) {
	const space = " \t\r\n"
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '(':
			depth := 1
			for i++; i < len(v) && depth > 0; i++ {
				switch v[i] {
				case '\\':
					i++
				case '(':
					depth++
				case ')':
					depth--
				}
			}
			if depth > 0 {
				return "", errors.New("unterminated comment")
			}
			i-- // the outer loop's i++ steps past the closing ')'
			out = append(out, ' ')
		case '"':
			start := len(out)
			plain, closed := true, false
			for i++; i < len(v); i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				} else if v[i] == '"' {
					closed = true
					break
				}
				plain = plain && strings.IndexByte(space+";()=\\\"", v[i]) < 0
				out = append(out, v[i])
			}
			if !closed {
				return "", errors.New("unterminated quoted string")
			}
			if !plain || len(out) == start {
				out = append(out[:start], '_')
			}
		case '=':
			// Drop the white space before '=' and skip the one after it.
			for len(out) > 0 && strings.IndexByte(space, out[len(out)-1]) >= 0 {
				out = out[:len(out)-1]
			}
			out = append(out, '=')
			for i+1 < len(v) && strings.IndexByte(space, v[i+1]) >= 0 {
				i++
			}
		default:
			out = append(out, c)
		}
	}
	return string(out), nil
}
