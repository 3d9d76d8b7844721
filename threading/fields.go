package threading

import (
	"bytes"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	gmcharset "github.com/emersion/go-message/charset"
	gmmail "github.com/emersion/go-message/mail"
)

// readFields fills the header-derived fields of p.msg. It runs after the MIME
// walk so that p.legacyCharset is known.
func (p *parser) readFields() {
	m := p.msg
	h := &m.Header

	m.MessageID = p.messageID(h.Get("Message-Id"))
	m.InReplyTo = p.idList("In-Reply-To", h.Values("In-Reply-To"))
	if len(m.InReplyTo) > maxRefs {
		p.warnf("In-Reply-To has %d ids: kept the first %d", len(m.InReplyTo), maxRefs)
		m.InReplyTo = m.InReplyTo[:maxRefs]
	}
	refs := p.idList("References", h.Values("References"))
	if len(refs) > maxRefs {
		// The root and the newest ids are the ones that thread; the middle
		// of a very long chain is dropped to bound index lookups.
		p.warnf("References has %d ids: kept the first and the last %d", len(refs), maxRefs-1)
		refs = append(refs[:1:1], refs[len(refs)-(maxRefs-1):]...)
	}
	m.References = refs

	m.From = first(p.addresses("From"))
	m.Sender = first(p.addresses("Sender"))
	m.ReplyTo = p.addresses("Reply-To")
	m.To = p.addresses("To")
	m.Cc = p.addresses("Cc")

	if rps := h.Values("Return-Path"); len(rps) > 0 {
		// The first Return-Path is the one the final MTA added.
		m.HasReturnPath = true
		m.ReturnPath = returnPath(rps[0])
	}

	m.Subject = p.decodeText(h.Get("Subject"))
	m.Date = p.date(h.Get("Date"))
}

func first(l []Address) Address {
	if len(l) == 0 {
		return Address{}
	}
	return l[0]
}

func returnPath(v string) string {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j >= 0 {
			v = v[i+1 : i+j]
		} else {
			v = v[i+1:]
		}
	}
	return strings.ToLower(strings.TrimSpace(v))
}

// messageID returns the Message-ID without brackets, or "" when it is
// missing or unusable.
func (p *parser) messageID(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	ids := extractIDs(v)
	if len(ids) == 0 {
		p.warnf("Message-ID %s unusable: ignored", quoteShort(v))
		return ""
	}
	if !strings.HasPrefix(v, "<") {
		p.warnf("Message-ID without angle brackets")
	}
	return ids[0]
}

// idList extracts the ids of every field value, without duplicates.
func (p *parser) idList(key string, vals []string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, v := range vals {
		ids := extractIDs(v)
		if len(ids) == 0 && strings.TrimSpace(v) != "" {
			p.warnf("%s has no usable id", key)
		}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out
}

// extractIDs returns the msg-ids in a field value, without brackets.
//
// QUIRK: ids are taken from every "<...>" wherever it is (comments and
// phrases such as `<id> (Ann's message of ...)` are ignored), whitespace
// folded into an id is removed, and a value without any "<" yields its
// whitespace- or comma-separated words that contain "@".
func extractIDs(v string) []string {
	var ids []string
	add := func(id string) {
		id = strings.Join(strings.Fields(id), "")
		id = strings.Trim(id, "<>\"',;")
		if id != "" && len(id) <= maxIDLen && utf8.ValidString(id) {
			ids = append(ids, id)
		}
	}
	if !strings.Contains(v, "<") {
		for _, w := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
			if strings.Contains(w, "@") {
				add(w)
			}
		}
		return ids
	}
	for {
		i := strings.IndexByte(v, '<')
		if i < 0 {
			return ids
		}
		j := strings.IndexByte(v[i:], '>')
		if j < 0 {
			add(v[i+1:])
			return ids
		}
		add(v[i+1 : i+j])
		v = v[i+j+1:]
	}
}

// addresses parses every field named key into a list.
func (p *parser) addresses(key string) []Address {
	var out []Address
	for _, v := range p.msg.Header.Values(key) {
		if strings.TrimSpace(v) == "" {
			continue
		}
		if !utf8.ValidString(v) {
			v = p.legacyDecode(key, v)
		}
		list, err := gmmail.ParseAddressList(v)
		if err == nil {
			for _, a := range list {
				if addr := p.mkAddress(a.Name, a.Address); addr.Addr != "" {
					out = append(out, addr)
				}
			}
			continue
		}
		// QUIRK: unquoted specials in names, missing brackets, stray
		// semicolons, bare "MAILER-DAEMON" and the like are read leniently.
		p.warnf("%s: %v: read leniently", key, err)
		out = append(out, p.lenientAddresses(v)...)
	}
	return out
}

func (p *parser) mkAddress(name, addr string) Address {
	if strings.Contains(name, "=?") {
		// QUIRK: encoded words inside a quoted display name.
		name = p.decodeText(name)
	}
	addr = strings.ToLower(strings.TrimSpace(addr))
	addr = strings.Trim(addr, "<>\"'")
	return Address{Name: cleanLine(name), Addr: cleanLine(addr)}
}

// lenientAddresses reads an address list that net/mail rejected.
func (p *parser) lenientAddresses(v string) []Address {
	var out []Address
	for _, piece := range splitTopLevel(v, ',') {
		s := strings.TrimSpace(piece)
		// Group syntax "name: a, b;" — drop the group name and terminator.
		if i := strings.IndexByte(s, ':'); i >= 0 && !strings.ContainsAny(s[:i], "<@\"(") {
			s = s[i+1:]
		}
		s = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(s), ";"))
		if s == "" {
			continue
		}
		if strings.Contains(s, "<") {
			// One or more "name <addr>"; several in one piece happen when
			// the commas are missing.
			for s != "" {
				l := strings.IndexByte(s, '<')
				if l < 0 {
					break
				}
				name := s[:l]
				addr := s[l+1:]
				s = ""
				if r := strings.IndexByte(addr, '>'); r >= 0 {
					addr, s = addr[:r], addr[r+1:]
				}
				if n := strings.TrimSpace(name); strings.TrimSpace(addr) == "" && n != "" && !strings.ContainsAny(n, " \t\"@") {
					// QUIRK: "MAILER-DAEMON <>": a null address after a
					// one-word name; keep the name as the address, as for
					// a bare "MAILER-DAEMON".
					addr = n
				}
				out = p.appendLenient(out, name, addr)
			}
			continue
		}
		var name string
		var rest []string
		found := false
		for _, w := range strings.Fields(stripComments(s, &name)) {
			if strings.Contains(w, "@") {
				out = p.appendLenient(out, name, w)
				found = true
			} else {
				rest = append(rest, w)
			}
		}
		if !found && len(rest) == 1 {
			out = p.appendLenient(out, name, rest[0]) // e.g. a bare "MAILER-DAEMON"
		}
	}
	return out
}

func (p *parser) appendLenient(out []Address, name, addr string) []Address {
	name = strings.TrimSpace(name)
	if len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' {
		name = strings.ReplaceAll(name[1:len(name)-1], `\"`, `"`)
	}
	a := p.mkAddress(p.decodeText(name), addr)
	if a.Addr == "" || strings.ContainsAny(a.Addr, " \t") {
		return out
	}
	return append(out, a)
}

// splitTopLevel splits s at sep outside quotes, angle brackets and comments.
func splitTopLevel(s string, sep byte) []string {
	var out []string
	quoted, angle, paren := false, false, 0
	start := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case c == '(':
			paren++
		case c == ')' && paren > 0:
			paren--
		case c == sep && !angle && paren == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// stripComments removes "(...)" comments from s and stores the first one in
// *comment (the old "addr (Name)" form).
func stripComments(s string, comment *string) string {
	var b strings.Builder
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			if depth == 0 {
				start = i + 1
			}
			depth++
		case ')':
			if depth > 0 {
				depth--
				if depth == 0 && *comment == "" {
					*comment = s[start:i]
				}
				continue
			}
		}
		if depth == 0 {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// decodeText decodes an unstructured header value (RFC 2047) into clean,
// single-line UTF-8.
func (p *parser) decodeText(v string) string {
	if v == "" {
		return ""
	}
	if !utf8.ValidString(v) {
		v = p.legacyDecode("header", v)
	}
	dec := mime.WordDecoder{CharsetReader: wordCharsetReader}
	s, err := dec.DecodeHeader(v)
	if err != nil {
		// QUIRK: one word in an unknown charset must not lose the others.
		p.warnf("encoded word: %v", err)
		s = decodeWordsOneByOne(&dec, v)
	}
	return cleanLine(strings.ToValidUTF8(s, "\uFFFD"))
}

// wordCharsetReader is the charset hook for encoded words.
func wordCharsetReader(cs string, r io.Reader) (io.Reader, error) {
	// QUIRK: RFC 2231 allows a language suffix ("utf-8*en") that
	// mime.WordDecoder passes through as part of the charset.
	if i := strings.IndexByte(cs, '*'); i >= 0 {
		cs = cs[:i]
	}
	switch normalizeCharset(cs) {
	case "utf-8", "us-ascii":
		return r, nil
	}
	dec, err := gmcharset.Reader(cs, r)
	if err != nil {
		return nil, err
	}
	// mime.WordDecoder copies the result into a strings.Builder with
	// io.Copy, which allocates 32 KiB per word unless the reader is an
	// io.WriterTo: decode the (short) word here and hand over a
	// bytes.Reader. A decoding error comes out as io.Copy's would.
	out, err := io.ReadAll(dec)
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(out), nil
}

// decodeWordsOneByOne decodes every encoded word on its own and leaves the
// ones that fail as they are.
func decodeWordsOneByOne(dec *mime.WordDecoder, v string) string {
	var b strings.Builder
	prevWord := false
	for v != "" {
		i := strings.Index(v, "=?")
		if i < 0 {
			b.WriteString(v)
			break
		}
		end := encodedWordEnd(v[i:])
		if end < 0 {
			b.WriteString(v)
			break
		}
		gap, word := v[:i], v[i:i+end]
		if !prevWord || strings.TrimSpace(gap) != "" {
			b.WriteString(gap)
		}
		if s, err := dec.Decode(word); err == nil {
			b.WriteString(s)
		} else {
			b.WriteString(word)
		}
		prevWord = true
		v = v[i+end:]
	}
	return b.String()
}

// encodedWordEnd returns the length of the encoded word "=?cs?e?text?=" at
// the start of s, or -1.
func encodedWordEnd(s string) int {
	q1 := strings.IndexByte(s[2:], '?')
	if q1 < 0 || len(s) < 2+q1+3 || s[2+q1+2] != '?' {
		return -1
	}
	rest := 2 + q1 + 3
	q2 := strings.Index(s[rest:], "?=")
	if q2 < 0 {
		return -1
	}
	return rest + q2 + 2
}

// legacyDecode turns raw 8-bit header bytes into UTF-8.
//
// QUIRK: RFC 5322 headers are ASCII, RFC 6532 allows UTF-8; other 8-bit
// bytes are decoded with the charset of the first text part (mailers that
// send raw EUC-KR or Latin-1 headers use it for the body too), else as
// Windows-1252.
func (p *parser) legacyDecode(key, v string) string {
	s, _ := toUTF8([]byte(v), p.legacyCharset)
	p.warnf("8-bit bytes in %s header", key)
	return s
}

// cleanLine makes s a single line: control characters and line separators
// become spaces, runs of spaces collapse, ends are trimmed.
func cleanLine(s string) string {
	clean := true
	for _, r := range s {
		if isControl(r) {
			clean = false
			break
		}
	}
	if clean && !strings.Contains(s, "  ") {
		return strings.TrimSpace(s)
	}
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || isControl(r) }), " ")
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0xfeff
}

// dateLayouts are tried after net/mail.ParseDate fails.
var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 2006 15:04:05",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 MST",
	"2 Jan 2006 15:04:05",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Monday, January 2, 2006 3:04 PM",
	"Monday, 2 January 2006 15:04:05 -0700",
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02 15:04:05",
}

// commonLayout is the form nearly every mailer writes.
const commonLayout = "Mon, 2 Jan 2006 15:04:05 -0700"

// commonDate parses v, trimmed, when it is in commonLayout and nothing
// follows the zone: then mail.ParseDate, which tries 24 layouts without a day
// of the week first (allocating an error for each), returns the same time,
// as it parses the same string with the same layout.
func commonDate(v string) (time.Time, bool) {
	zone := strings.IndexAny(v, "+-")
	if zone < 0 || zone+5 != len(v) || strings.IndexByte(v, '\r') >= 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(commonLayout, v)
	return t, err == nil
}

// date parses the Date field; the zero time means missing or unreadable.
func (p *parser) date(v string) time.Time {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}
	}
	if t, ok := commonDate(v); ok {
		return t
	}
	if t, err := mail.ParseDate(v); err == nil {
		return t
	}
	// QUIRK: comments, doubled spaces, missing commas and asctime forms.
	var c string
	s := strings.Join(strings.Fields(stripComments(v, &c)), " ")
	s = strings.TrimSuffix(s, " GMT+00:00")
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	if s2 := strings.Replace(s, ",", ", ", 1); s2 != s {
		if t, err := mail.ParseDate(strings.Join(strings.Fields(s2), " ")); err == nil {
			return t
		}
	}
	p.warnf("unreadable Date %s", quoteShort(v))
	return time.Time{}
}

// cleanFilename keeps the base name of an attachment file name, as valid
// UTF-8 without control characters, at most 255 bytes.
func cleanFilename(name string) string {
	name = cleanLine(name)
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSpace(name)
	if name == "." || name == ".." {
		return ""
	}
	if len(name) > 255 {
		cut := 255
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut]
	}
	return name
}
