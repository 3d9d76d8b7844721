package outbox

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	netmail "net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"
)

// Address is a mailbox: an optional display name and an addr-spec.
type Address struct{ Name, Addr string }

// Envelope is what Compose needs to build one text/plain message.
type Envelope struct {
	From    Address
	To, Cc  []Address
	ReplyTo []Address
	Subject string
	Text    string
	// MessageID is our id without angle brackets; required.
	MessageID string
	// InReplyTo and References are ids without angle brackets, as found in
	// the mail we answer; unusable ones are dropped.
	InReplyTo  string
	References []string
	// Date defaults to the current time.
	Date time.Time
	// Headers are extra header fields, written in this order, for example
	// {"Auto-Submitted", "auto-replied"}, {"X-Auto-Response-Suppress", "All"}.
	Headers [][2]string
}

const (
	// maxIDLen bounds one message id; RFC 5322 lines end at 998 octets and
	// real ids are far shorter, so a longer one is garbage.
	maxIDLen = 250
	// maxReferences bounds the References header. Like mail clients we keep
	// the thread's root (the first id) and the most recent ones.
	maxReferences = 30
	// maxExtraHeaderLen bounds name + ": " + value of an extra header,
	// which is written unfolded.
	maxExtraHeaderLen = 998
)

// ownHeaders are set by Compose itself; an extra header with one of these
// names (lower-case here) would duplicate or contradict them.
var ownHeaders = map[string]bool{
	"from": true, "sender": true, "to": true, "cc": true, "bcc": true, "reply-to": true,
	"subject": true, "date": true, "message-id": true, "in-reply-to": true, "references": true,
	"mime-version": true, "content-type": true, "content-transfer-encoding": true,
}

// Compose renders e as an RFC 5322 message with CRLF line endings. It fails
// on a missing From, To or MessageID, an invalid address, or an unusable
// extra header name; free-text values are never a reason to fail, their
// control characters are replaced instead. Non-ASCII text is RFC 2047
// encoded; an internationalised address (RFC 6532) is written as UTF-8 and
// needs a relay with SMTPUTF8.
//
// The ticket engine composes inside its transaction, so this is on the
// path that bounds the ingest rate: what is done here besides go-mail's
// rendering avoids allocating for values that need no cleaning.
func Compose(e Envelope) ([]byte, error) {
	msg := gomail.NewMsg(
		gomail.WithCharset(gomail.CharsetUTF8),
		gomail.WithEncoding(gomail.EncodingQP),
		gomail.WithNoDefaultUserAgent(),
	)

	var from netmail.Address
	if err := setMailbox(&from, "from", -1, e.From); err != nil {
		return nil, err
	}
	msg.FromMailAddress(&from)
	if len(e.To) == 0 {
		return nil, errors.New("compose: no To address")
	}
	to, err := mailboxes("to", e.To)
	if err != nil {
		return nil, err
	}
	msg.ToMailAddress(to...)
	if len(e.Cc) > 0 {
		cc, err := mailboxes("cc", e.Cc)
		if err != nil {
			return nil, err
		}
		msg.CcMailAddress(cc...)
	}
	if len(e.ReplyTo) > 0 {
		rt, err := mailboxes("reply-to", e.ReplyTo)
		if err != nil {
			return nil, err
		}
		msg.ReplyToMailAddress(rt...)
	}

	id := cleanID(e.MessageID)
	if id == "" {
		return nil, fmt.Errorf("compose: unusable Message-ID %q", e.MessageID)
	}
	// SetMessageID would invent one from the host name; ours carries the
	// ticket token under ticket.domain. This is SetMessageIDWithValue
	// without its fmt.Sprintf.
	msg.SetGenHeader(gomail.HeaderMessageID, "<"+id+">")
	if irt := cleanID(e.InReplyTo); irt != "" {
		msg.SetGenHeader(gomail.HeaderInReplyTo, "<"+irt+">")
	}
	if refs := references(e.References); refs != "" {
		// One value: go-mail joins several values with ", ", which is not
		// the References syntax.
		msg.SetGenHeader(gomail.HeaderReferences, refs)
	}

	date := e.Date
	if date.IsZero() {
		date = time.Now()
	}
	msg.SetDateWithValue(date)
	msg.Subject(cleanText(e.Subject))
	msg.SetBodyString(gomail.TypeTextPlain, e.Text)

	extra, err := extraHeaders(e.Headers)
	if err != nil {
		return nil, err
	}

	// Room for the whole mail from the start: quoted-printable text of a
	// Latin-script language is a little longer than the text, the headers
	// take a few hundred bytes.
	var buf bytes.Buffer
	buf.Grow(len(e.Text) + len(e.Text)/8 + 1024 + len(extra))
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("compose: render: %w", err)
	}
	raw := buf.Bytes()
	if len(extra) == 0 {
		return raw, nil
	}
	// go-mail writes its headers sorted by name; ours go at the end of the
	// header block, in the caller's order: moved in place, the body after
	// them.
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, errors.New("compose: rendered message has no header/body separator")
	}
	end += 2
	n := len(raw)
	raw = append(raw, extra...)
	copy(raw[end+len(extra):], raw[end:n])
	copy(raw[end:], extra)
	return raw, nil
}

// mailboxes is setMailbox for a list of addresses, named field[i] in errors.
func mailboxes(field string, as []Address) ([]*netmail.Address, error) {
	// Two allocations for the list, not one per address.
	boxes := make([]netmail.Address, len(as))
	out := make([]*netmail.Address, len(as))
	for i, a := range as {
		if err := setMailbox(&boxes[i], field, i, a); err != nil {
			return nil, err
		}
		out[i] = &boxes[i]
	}
	return out, nil
}

// setMailbox validates a.Addr strictly (a bare addr-spec, nothing to strip
// or guess) and cleans the display name, which net/mail then quotes or
// RFC 2047-encodes as needed, into m. An error names the address field,
// or field[i] for i ≥ 0.
func setMailbox(m *netmail.Address, field string, i int, a Address) error {
	if err := checkAddr(a.Addr); err != nil {
		if i >= 0 {
			field = fmt.Sprintf("%s[%d]", field, i)
		}
		return fmt.Errorf("compose: %s address %q: %w", field, a.Addr, err)
	}
	*m = netmail.Address{Name: strings.TrimSpace(cleanText(a.Name)), Address: a.Addr}
	return nil
}

// checkAddr accepts only a bare addr-spec: what net/mail parses to itself.
// Anything else (a display name, angle brackets, spaces, control
// characters, a second address) is an error.
func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("empty")
	}
	if isDotAtomAddr(addr) {
		return nil
	}
	for _, r := range addr {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return errors.New("contains a space or control character")
		}
	}
	p, err := netmail.ParseAddress(addr)
	if err != nil {
		return err
	}
	if p.Name != "" || p.Address != addr {
		return errors.New("not a bare address")
	}
	return nil
}

// isDotAtomAddr reports whether addr is local@domain with both sides
// dot-atoms of ASCII atext (RFC 5322 3.2.3): the common address, which
// net/mail parses to itself with no name, so checkAddr can skip its
// parser (a few allocations per address). FuzzDotAtomAddr holds it to
// that.
func isDotAtomAddr(addr string) bool {
	local, domain, ok := strings.Cut(addr, "@")
	return ok && isDotAtom(local) && isDotAtom(domain)
}

// isDotAtom: atoms of ASCII atext joined by single dots.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// cleanText replaces every run of control characters (CR, LF, tab, NUL,
// DEL, C1, U+2028/2029 ...) with one space, so a value stays on its header
// line.
func cleanText(s string) string {
	if isCleanText(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	inCtl := false
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			if !inCtl {
				b.WriteByte(' ')
			}
			inCtl = true
			continue
		}
		inCtl = false
		b.WriteRune(r)
	}
	return b.String()
}

// isCleanText reports whether cleanText would return s as it is: valid
// UTF-8 (ranging over s turns a byte that is not into U+FFFD) without a
// character cleanText replaces.
func isCleanText(s string) bool {
	for i := 0; i < len(s); i++ {
		// Printable ASCII, the usual case, needs no decoding.
		if c := s[i]; c >= ' ' && c < 0x7f {
			continue
		}
		for _, r := range s[i:] {
			if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
				// A U+FFFD in s is kept as it is, but is rare enough
				// to leave to the slow path.
				return false
			}
		}
		return true
	}
	return true
}

// cleanID reduces a message id to the characters a msg-id may contain
// (printable ASCII other than '<' and '>'), after stripping one pair of
// surrounding angle brackets and whitespace. It returns "" for an id that
// is empty or too long to be real.
func cleanID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimPrefix(id, "<")
	id = strings.TrimSuffix(id, ">")
	if isIDText(id) {
		if len(id) > maxIDLen {
			return ""
		}
		return id
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c > ' ' && c < 0x7f && c != '<' && c != '>' {
			b.WriteByte(c)
		}
	}
	if b.Len() > maxIDLen {
		return ""
	}
	return b.String()
}

// isIDText reports whether every byte of id may be in a msg-id, so that
// cleanID has nothing to remove.
func isIDText(id string) bool {
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// references renders ids as one space-separated References value, keeping
// the first and the most recent when there are too many.
func references(ids []string) string {
	clean := make([]string, 0, len(ids))
	size := 0
	for _, id := range ids {
		if c := cleanID(id); c != "" {
			clean = append(clean, c)
			size += len(c) + 3
		}
	}
	if len(clean) > maxReferences {
		clean = append(clean[:1], clean[len(clean)-(maxReferences-1):]...)
	}
	var b strings.Builder
	b.Grow(size)
	for i, c := range clean {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('<')
		b.WriteString(c)
		b.WriteByte('>')
	}
	return b.String()
}

// extraHeaders renders hs as header lines. Names must be RFC 5322 field
// names not set by Compose itself; values are cleaned and, when not ASCII,
// RFC 2047-encoded.
func extraHeaders(hs [][2]string) ([]byte, error) {
	var b bytes.Buffer
	for _, h := range hs {
		name, value := h[0], h[1]
		if !validFieldName(name) {
			return nil, fmt.Errorf("compose: invalid header name %q", name)
		}
		if isOwnHeader(name) {
			return nil, fmt.Errorf("compose: header %q is set by Compose", name)
		}
		value = strings.TrimSpace(cleanText(value))
		value = mime.QEncoding.Encode("UTF-8", value)
		if len(name)+2+len(value) > maxExtraHeaderLen {
			return nil, fmt.Errorf("compose: header %q is too long", name)
		}
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	return b.Bytes(), nil
}

// isOwnHeader reports whether ownHeaders has name, a valid field name
// (ASCII), in any case.
func isOwnHeader(name string) bool {
	// Lower-cased on the stack (strings.ToLower allocates for a name
	// such as "Auto-Submitted"), unless it is longer than any usual one.
	var lower [32]byte
	if len(name) > len(lower) {
		return ownHeaders[strings.ToLower(name)]
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	return ownHeaders[string(lower[:len(name)])]
}

// validFieldName: RFC 5322 ftext, printable ASCII except ':'.
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}
