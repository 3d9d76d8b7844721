package bounce

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/k3a/html2text"
)

// field is one unfolded header-like line.
type field struct{ key, value string }

// maxFieldBytes caps the unfolded value of one field. Folded lines are
// appended to a byte slice, so that a field of a million continuation lines
// costs linear time.
const maxFieldBytes = 16 << 10

// unfold appends a continuation line to a field value, up to maxFieldBytes.
func unfold(v []byte, line string) []byte {
	if len(v) >= maxFieldBytes {
		return v
	}
	v = append(v, ' ')
	v = append(v, strings.TrimSpace(line)...)
	return v[:min(len(v), maxFieldBytes)]
}

// fieldBuf is a field whose value is being unfolded.
type fieldBuf struct {
	key string
	val []byte
}

func finish(bufs []fieldBuf) []field {
	fs := make([]field, len(bufs))
	for i, b := range bufs {
		fs[i] = field{b.key, string(b.val)}
	}
	return fs
}

// readHeader reads the header block at the start of b and returns it with
// the rest of b (the body). It never fails: whatever could be read is kept.
// At most limit bytes of header are kept; a longer header is skipped up to
// its end.
//
// QUIRK: lines that are not "Name: value" (8-bit or spaced names, junk) are
// skipped instead of ending the header as go-message's reader does, so one
// bad line does not turn the rest of the header into body text.
// QUIRK: a leading mbox "From " line is skipped; for an embedded message
// (embedded=true) leading blank lines are skipped too, as some MTAs put an
// empty line between the part header and the returned message.
func readHeader(b []byte, limit int, embedded bool) (textproto.Header, []byte) {
	if embedded {
		for len(b) > 0 {
			line, rest := cutLine(b)
			if len(bytes.TrimSpace(line)) != 0 {
				break
			}
			b = rest
		}
	}
	if bytes.HasPrefix(b, []byte("From ")) {
		_, b = cutLine(b)
	}
	var fields []fieldBuf
	used := 0
	for len(b) > 0 {
		line, rest := cutLine(b)
		if len(bytes.TrimSpace(line)) == 0 {
			b = rest
			break
		}
		used += len(line)
		if used > limit {
			b = skipPastBlankLine(rest)
			break
		}
		b = rest
		if line[0] == ' ' || line[0] == '\t' {
			if n := len(fields); n > 0 {
				fields[n-1].val = unfold(fields[n-1].val, string(line))
			}
			continue
		}
		k, v, ok := splitField(string(line))
		if !ok {
			continue
		}
		fields = append(fields, fieldBuf{k, []byte(v[:min(len(v), maxFieldBytes)])})
	}
	return headerOf(finish(fields)), b
}

// headerOf builds a textproto.Header whose Get returns the first field of a
// name, as in the message (textproto.Header.Add prepends).
func headerOf(fields []field) textproto.Header {
	var h textproto.Header
	for i := len(fields) - 1; i >= 0; i-- {
		h.Add(fields[i].key, strings.ToValidUTF8(fields[i].value, "\uFFFD"))
	}
	return h
}

// splitField splits "Name: value". The name must be printable ASCII without
// spaces; surrounding white space of the value is dropped.
func splitField(line string) (key, value string, ok bool) {
	i := strings.IndexByte(line, ':')
	if i <= 0 {
		return "", "", false
	}
	key = strings.TrimRight(line[:i], " \t")
	if key == "" || len(key) > 76 {
		return "", "", false
	}
	for j := 0; j < len(key); j++ {
		if c := key[j]; c <= ' ' || c >= 0x7f {
			return "", "", false
		}
	}
	return key, strings.TrimSpace(line[i+1:]), true
}

// cutLine returns the first line of b without its line end, and the rest.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return bytes.TrimSuffix(b, []byte("\r")), nil
	}
	return bytes.TrimSuffix(b[:i], []byte("\r")), b[i+1:]
}

func skipPastBlankLine(b []byte) []byte {
	for len(b) > 0 {
		line, rest := cutLine(b)
		b = rest
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	return b
}

// mediaType returns the lower-case media type of h and its parameters, or
// def when h has no usable Content-Type.
//
// QUIRK: duplicate or unquoted parameters and junk after the type, which
// mime.ParseMediaType rejects, are read leniently.
func mediaType(h textproto.Header, def string) (string, map[string]string) {
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		return def, map[string]string{}
	}
	if mt, params, err := mime.ParseMediaType(v); err == nil {
		return mt, params
	}
	pieces := strings.Split(v, ";")
	mt := strings.ToLower(strings.TrimSpace(pieces[0]))
	if i := strings.IndexAny(mt, " \t,"); i >= 0 {
		mt = mt[:i]
	}
	if !strings.Contains(mt, "/") {
		mt = def
	}
	params := map[string]string{}
	for _, p := range pieces[1:] {
		k, val, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.Trim(strings.TrimSpace(val), `"`)
		if _, dup := params[k]; !dup && k != "" {
			params[k] = val
		}
	}
	return mt, params
}

// part is one MIME entity read from a multipart body, not yet decoded.
type part struct {
	header textproto.Header
	body   []byte
}

// splitMultipart returns the parts of a multipart body. It uses go-message's
// reader and falls back to splitting on boundary lines when that reader
// gives up early.
//
// QUIRK: truncated bodies (no closing boundary), malformed part headers and
// boundaries that are missing from Content-Type are all common in bounces,
// which often cut the returned message short. The fallback keeps every
// part it can delimit.
func splitMultipart(body []byte, boundary string) []part {
	if boundary == "" {
		boundary = guessBoundary(body)
		if boundary == "" {
			return nil
		}
	}
	parts, err := readParts(body, boundary)
	if err == nil {
		return parts
	}
	if loose := looseParts(body, boundary); len(loose) > len(parts) {
		return loose
	}
	return parts
}

// readParts reads the parts with go-message's multipart reader.
func readParts(body []byte, boundary string) ([]part, error) {
	mr := textproto.NewMultipartReader(bytes.NewReader(body), boundary)
	var parts []part
	for len(parts) < maxParts {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return parts, nil
		}
		if err != nil {
			return parts, err
		}
		b, err := io.ReadAll(io.LimitReader(p, maxInput))
		parts = append(parts, part{header: p.Header, body: b})
		if err != nil {
			return parts, err
		}
	}
	return parts, nil
}

// looseParts splits body on lines that start with "--boundary"; the text
// before the first delimiter (the preamble) is dropped.
func looseParts(body []byte, boundary string) []part {
	delim := []byte("--" + boundary)
	var parts []part
	var cur []byte
	in := false
	flush := func() {
		if in && len(parts) < maxParts {
			h, b := readHeader(cur, maxHeaderBytes, false)
			parts = append(parts, part{header: h, body: b})
		}
	}
	start := 0
	for rest := body; len(rest) > 0; {
		line, next := cutLine(rest)
		pos := len(body) - len(rest)
		rest = next
		if !bytes.HasPrefix(line, delim) {
			continue
		}
		tail := bytes.TrimSpace(line[len(delim):])
		final := bytes.Equal(tail, []byte("--"))
		if len(tail) != 0 && !final {
			continue // "--boundaryXYZ": a longer boundary, not ours
		}
		if in {
			cur = body[start:pos]
			flush()
		}
		if final {
			return parts
		}
		in = true
		start = len(body) - len(rest)
	}
	if in {
		cur = body[start:]
		flush()
	}
	return parts
}

// guessBoundary returns the boundary of the first delimiter-looking line
// ("--" and at least 8 more characters, no spaces) in the first 64 KiB.
//
// QUIRK: some MTAs fold the boundary parameter onto a line that a broken
// relay dropped, or never write it; their parts are still delimited.
func guessBoundary(body []byte) string {
	b := body[:min(len(body), 64<<10)]
	for len(b) > 0 {
		line, rest := cutLine(b)
		b = rest
		l := bytes.TrimRight(line, " \t")
		if len(l) >= 10 && bytes.HasPrefix(l, []byte("--")) && !bytes.ContainsAny(l, " \t") {
			return string(bytes.TrimSuffix(l[2:], []byte("--")))
		}
	}
	return ""
}

// decodeBody decodes the transfer encoding and, for text types, the charset
// of one entity, reading at most limit decoded bytes.
//
// QUIRK: an unknown charset or transfer encoding, or a body that breaks off
// mid-way (bad base64, truncation), still yields what could be read: go-message
// returns a readable entity alongside such errors.
func decodeBody(h textproto.Header, body []byte, limit int) []byte {
	e, _ := message.New(message.Header{Header: h}, bytes.NewReader(body))
	if e == nil {
		return body[:min(len(body), limit)]
	}
	out, _ := io.ReadAll(io.LimitReader(e.Body, int64(limit)))
	return out
}

// walk visits one entity depth-first and records what it finds in s.
func (s *scan) walk(h textproto.Header, body []byte, depth int, def string) {
	if s.parts >= maxParts {
		return
	}
	s.parts++
	mt, params := mediaType(h, def)
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		s.multipart(body, mt, params, depth)
	case statusTypes[mt]:
		s.status(h, decodeBody(h, body, maxStatusBytes))
	case returnedTypes[mt]:
		s.returned(decodeBody(h, body, maxReturnedBytes))
	case mt == "text/plain" || mt == "text/html" || mt == "text/enriched":
		if s.textBytes >= maxTextTotal {
			return
		}
		b := decodeBody(h, body, min(maxPartText, maxTextTotal-s.textBytes))
		s.textBytes += len(b)
		t := validUTF8(b)
		if mt == "text/html" {
			t = html2text.HTML2TextWithOptions(t, html2text.WithUnixLineBreaks())
		}
		s.texts = append(s.texts, t)
	}
}

// statusTypes are the machine-readable delivery status parts.
// QUIRK: text/delivery-status is not registered but some MTAs label their
// status part so.
var statusTypes = map[string]bool{
	"message/delivery-status":        true,
	"message/global-delivery-status": true,
	"text/delivery-status":           true,
}

// returnedTypes carry the returned message or its header.
var returnedTypes = map[string]bool{
	"message/rfc822":         true,
	"message/global":         true,
	"text/rfc822-headers":    true,
	"message/rfc822-headers": true,
	"message/global-headers": true,
	"message/partial":        true,
	"text/rfc822":            true,
	"application/rfc822":     true,
	"message/x-rfc822":       true,
	"text/x-rfc822-headers":  true,
}

// multipart visits the parts of a multipart entity. Inside
// multipart/alternative the HTML version is skipped when a plain one exists.
func (s *scan) multipart(body []byte, mt string, params map[string]string, depth int) {
	if depth >= maxDepth {
		return
	}
	parts := splitMultipart(body, params["boundary"])
	if len(parts) == 0 {
		// QUIRK: a multipart whose parts cannot be delimited is read as
		// text, so its words still count (rfc3464-04 in sisimai's set).
		s.walk(textproto.Header{}, body, depth+1, "text/plain")
		return
	}
	hasPlain := false
	if mt == "multipart/alternative" {
		for _, p := range parts {
			if t, _ := mediaType(p.header, "text/plain"); t == "text/plain" {
				hasPlain = true
			}
		}
	}
	for _, p := range parts {
		if hasPlain {
			if t, _ := mediaType(p.header, "text/plain"); t == "text/html" {
				continue
			}
		}
		def := "text/plain"
		if mt == "multipart/digest" {
			def = "message/rfc822"
		}
		s.walk(p.header, p.body, depth+1, def)
	}
}
