package bounce

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addrRe finds addr-specs in free text. It is deliberately loose (no quoted
// local parts, any letters) because reports print addresses in every shape:
// bare, in <>, after "rfc822;", inside "<mailto:...>".
var addrRe = regexp.MustCompile(`[\p{L}\p{N}._%+\-=!#$&'*/?^{|}~]+@[\p{L}\p{N}\-]+(?:\.[\p{L}\p{N}\-]+)+`)

// enhancedRe finds an RFC 3463 status code. Callers check its surroundings
// with enhancedCode, as Go's RE2 has no look-around and "192.0.2.4" must not
// yield "2.0.2".
var enhancedRe = regexp.MustCompile(`[245]\.\d{1,3}\.\d{1,3}`)

// basicRe finds an RFC 5321 reply code: three digits starting with 4 or 5,
// followed by a space, a hyphen (multi-line reply), a comma or the end.
var basicRe = regexp.MustCompile(`[45]\d\d(?:[ \-,]|$)`)

// findAddrs returns the addresses in s, lower-cased, in order, without
// duplicates.
func findAddrs(s string) []string {
	var out []string
	for _, m := range addrRe.FindAllString(s, maxRecipients) {
		a := cleanAddr(m)
		if a != "" && !contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// cleanAddr trims punctuation that the loose addrRe takes in at either end
// ("'a@b'", "a@b." at the end of a sentence) and lower-cases the result. It
// returns "" when no plausible address remains.
func cleanAddr(a string) string {
	a = strings.Trim(a, ".-'=*/?|~^{}!#$&%+")
	at := strings.LastIndexByte(a, '@')
	if at <= 0 || at == len(a)-1 || !strings.Contains(a[at:], ".") || len(a) > 254 {
		return ""
	}
	return strings.ToLower(a)
}

// firstAddr returns the first address in s, or "".
func firstAddr(s string) string {
	if m := addrRe.FindString(s); m != "" {
		return cleanAddr(m)
	}
	return ""
}

// enhancedCode returns the first RFC 3463 code in s that is not part of a
// longer dotted number such as an IP address, or "".
func enhancedCode(s string) string {
	for _, loc := range enhancedRe.FindAllStringIndex(s, 20) {
		i, j := loc[0], loc[1]
		if i > 0 && (isDigit(s[i-1]) || s[i-1] == '.') {
			continue
		}
		if j < len(s) && (isDigit(s[j]) || (s[j] == '.' && j+1 < len(s) && isDigit(s[j+1]))) {
			continue
		}
		return s[i:j]
	}
	return ""
}

// replyEnhancedRe finds an enhanced code that accompanies a reply code, as
// in "550 5.1.1" or "550-'5.7.1": the remote server's own status.
var replyEnhancedRe = regexp.MustCompile(`[45]\d\d[- ]'?([245]\.\d{1,3}\.\d{1,3})`)

// diagCode returns the most telling RFC 3463 code of a diagnostic: the one
// that follows a reply code, else the first one; "" when there is none.
func diagCode(s string) string {
	for _, m := range replyEnhancedRe.FindAllStringSubmatchIndex(s, 20) {
		if m[0] > 0 && (isDigit(s[m[0]-1]) || s[m[0]-1] == '.') {
			continue
		}
		if c := enhancedCode(s[m[2]:]); c != "" && strings.HasPrefix(s[m[2]:], c) {
			return c
		}
	}
	return enhancedCode(s)
}

// basicCode returns the first SMTP reply code (4xx or 5xx) in s that is not
// part of a longer number, or "".
func basicCode(s string) string {
	for _, loc := range basicRe.FindAllStringIndex(s, 20) {
		i := loc[0]
		if i > 0 && (isDigit(s[i-1]) || s[i-1] == '.' || unicode.IsLetter(rune(s[i-1]))) {
			continue
		}
		return s[i : i+3]
	}
	return ""
}

// codeClass returns '5' or '4' for the class of the enhanced status or, when
// there is none, of the basic reply code found in diag; 0 when unknown.
func codeClass(status, diag string) byte {
	if status != "" {
		return status[0]
	}
	if c := enhancedCode(diag); c != "" {
		return c[0]
	}
	if c := basicCode(diag); c != "" {
		return c[0]
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// oneLine makes s a diagnostic: valid UTF-8, control characters and runs of
// white space replaced by single spaces, at most maxDiagnostic characters.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	n := 0
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			space = b.Len() > 0
			continue
		}
		if space {
			if n+1 >= maxDiagnostic {
				break
			}
			b.WriteByte(' ')
			n++
			space = false
		}
		if n >= maxDiagnostic {
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// validUTF8 replaces invalid bytes so that string scanning and regular
// expressions see one rune per character.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// lines splits text into lines without their line ends (LF, CRLF).
func lines(text string) []string {
	ls := strings.Split(text, "\n")
	for i, l := range ls {
		ls[i] = strings.TrimSuffix(l, "\r")
	}
	return ls
}

// msgID returns the first message id in a Message-ID, In-Reply-To or
// References value, without angle brackets, or "" when there is none.
func msgID(v string) string {
	ids := msgIDs(v, 1)
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// msgIDs returns up to max ids of a References-like value. Ids in <> are
// preferred; a value without any <> is read as one bare id.
// QUIRK: bare ids (no angle brackets) and ids with spaces before '>' occur
// in hand-made and anonymised reports and are accepted.
func msgIDs(v string, max int) []string {
	var out []string
	rest := v
	for len(out) < max {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			break
		}
		id := strings.TrimSpace(rest[i+1 : i+j])
		rest = rest[i+j+1:]
		if validID(id) && !contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) == 0 && !strings.ContainsAny(v, "<>") {
		id := strings.TrimSpace(v)
		if f := strings.Fields(id); len(f) == 1 && validID(f[0]) {
			out = append(out, f[0])
		}
	}
	return out
}

func validID(id string) bool {
	if id == "" || len(id) > maxIDLen || !utf8.ValidString(id) {
		return false
	}
	for _, r := range id {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' {
			return false
		}
	}
	return true
}
