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
// names would duplicate or contradict them.
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
func Compose(e Envelope) ([]byte, error) {
	msg := gomail.NewMsg(
		gomail.WithCharset(gomail.CharsetUTF8),
		gomail.WithEncoding(gomail.EncodingQP),
		gomail.WithNoDefaultUserAgent(),
	)

	from, err := mailbox("from", e.From)
	if err != nil {
		return nil, err
	}
	msg.FromMailAddress(from)
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
	// ticket token under ticket.domain.
	msg.SetMessageIDWithValue(id)
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

	var buf bytes.Buffer
	if _, err := msg.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("compose: render: %w", err)
	}
	raw := buf.Bytes()
	if len(extra) == 0 {
		return raw, nil
	}
	// go-mail writes its headers sorted by name; ours go at the end of the
	// header block, in the caller's order.
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, errors.New("compose: rendered message has no header/body separator")
	}
	end += 2
	out := make([]byte, 0, len(raw)+len(extra))
	out = append(out, raw[:end]...)
	out = append(out, extra...)
	out = append(out, raw[end:]...)
	return out, nil
}

func mailboxes(field string, as []Address) ([]*netmail.Address, error) {
	out := make([]*netmail.Address, 0, len(as))
	for i, a := range as {
		m, err := mailbox(fmt.Sprintf("%s[%d]", field, i), a)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// mailbox validates a.Addr strictly (a bare addr-spec, nothing to strip or
// guess) and cleans the display name, which net/mail then quotes or
// RFC 2047-encodes as needed.
func mailbox(field string, a Address) (*netmail.Address, error) {
	if err := checkAddr(a.Addr); err != nil {
		return nil, fmt.Errorf("compose: %s address %q: %w", field, a.Addr, err)
	}
	return &netmail.Address{Name: strings.TrimSpace(cleanText(a.Name)), Address: a.Addr}, nil
}

// checkAddr accepts only a bare addr-spec: what net/mail parses to itself.
// Anything else (a display name, angle brackets, spaces, control
// characters, a second address) is an error.
func checkAddr(addr string) error {
	if addr == "" {
		return errors.New("empty")
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

// cleanText replaces every run of control characters (CR, LF, tab, NUL,
// DEL, C1, U+2028/2029 ...) with one space, so a value stays on its header
// line.
func cleanText(s string) string {
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

// cleanID reduces a message id to the characters a msg-id may contain
// (printable ASCII other than '<' and '>'), after stripping one pair of
// surrounding angle brackets and whitespace. It returns "" for an id that
// is empty or too long to be real.
func cleanID(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimPrefix(id, "<")
	id = strings.TrimSuffix(id, ">")
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

// references renders ids as one space-separated References value, keeping
// the first and the most recent when there are too many.
func references(ids []string) string {
	clean := make([]string, 0, len(ids))
	for _, id := range ids {
		if c := cleanID(id); c != "" {
			clean = append(clean, "<"+c+">")
		}
	}
	if len(clean) > maxReferences {
		clean = append(clean[:1], clean[len(clean)-(maxReferences-1):]...)
	}
	return strings.Join(clean, " ")
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
		if ownHeaders[strings.ToLower(name)] {
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
