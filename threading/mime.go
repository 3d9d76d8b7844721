package threading

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"github.com/k3a/html2text"
)

// htmlBudgetFactor: HTML is verbose, so up to this many times MaxTextBytes of
// HTML is read before converting it to text.
const htmlBudgetFactor = 4

// fallbackCapture bounds the bytes of a multipart body remembered in case it
// turns out to contain no part at all.
const fallbackCapture = 256 << 10

// maxBoundaryLen tolerates boundaries longer than RFC 2046's 70 characters,
// up to a size the multipart reader can still find.
const maxBoundaryLen = 1000

// walker visits the MIME tree of one message depth-first, collecting body
// text and attachments within the parser's limits.
type walker struct {
	p       *parser
	parts   int
	stopped bool // MaxParts reached: visit nothing more

	plain     []plainPart
	plainLen  int  // bytes of the plain parts before line ends were normalised
	plainText bool // a plain part is not blank, so text() will not use html
	html      []string
	htmlLen   int

	// Scratch space reused from part to part; only one part is read at a
	// time, and a multipart's fallback capture is dropped (stop) before
	// its first part, so nested multiparts never need two captures.
	raw     []byte       // text of the current part, decoded in place
	capture []byte       // storage of the current cappedBuffer
	dec     *partDecoder // made for the first attachment

	sizeHint int // length of the whole body when known, else 0
}

// plainPart is the text of one text/plain part with "\n" line ends.
type plainPart struct {
	s string
	// endsCR: the part ended with a CR before normalisation, so a "\n"
	// that follows it in the joined text belongs to that line end.
	endsCR bool
	blank  bool // only white space: left out of the text
}

// walkTop walks the top-level entity. sniff is the start of body (at least
// its first 512 bytes, or all of it); body is read from its beginning.
func (w *walker) walkTop(h message.Header, sniff []byte, body io.Reader) {
	def := "text/plain"
	if strings.TrimSpace(h.Get("Content-Type")) == "" && looksLikeHTML(sniff) {
		// QUIRK: HTML mail without any MIME header.
		w.p.warnf("HTML body without Content-Type")
		def = "text/html"
	}
	w.walk(h, body, 0, def)
}

// sniffLen is how much of the body looksLikeHTML needs.
const sniffLen = 512

func looksLikeHTML(body []byte) bool {
	head := bytes.TrimLeft(body[:min(len(body), sniffLen)], " \t\r\n")
	head = head[:min(len(head), 14)]
	return hasPrefixFold(head, "<!doctype html") || hasPrefixFold(head, "<html")
}

// hasPrefixFold reports whether b starts with the lower-case ASCII prefix,
// ignoring ASCII case (bytes.ToLower would allocate).
func hasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// walk visits one entity. defaultType applies when it has no Content-Type
// (text/plain, or message/rfc822 inside multipart/digest).
func (w *walker) walk(h message.Header, body io.Reader, depth int, defaultType string) {
	if w.stopped {
		return
	}
	w.parts++
	if w.parts > w.p.lim.MaxParts {
		w.stopped = true
		w.p.warnf("more than %d MIME parts: the rest is ignored", w.p.lim.MaxParts)
		return
	}
	mt, params := w.contentType(h, defaultType)
	if depth == 0 {
		w.p.msg.ContentType = mt
	}
	w.p.msg.PartTypes = append(w.p.msg.PartTypes, mt)
	if strings.HasPrefix(mt, "multipart/") {
		w.multipart(body, depth, mt, params)
		return
	}
	w.leaf(h, body, mt, params)
}

// contentType returns the lower-case media type and its parameters.
func (w *walker) contentType(h message.Header, defaultType string) (string, map[string]string) {
	v := h.Get("Content-Type")
	if strings.TrimSpace(v) == "" {
		return defaultType, map[string]string{}
	}
	mt, params, err := h.ContentType()
	if err == nil && params != nil {
		if fixed := fixMediaType(mt); fixed != mt {
			w.p.warnf("media type %s invalid: read as %s", quoteShort(mt), fixed)
			mt = fixed
		}
		return mt, params
	}
	// QUIRK: duplicate or unquoted parameters, missing subtypes and junk
	// after the media type are read leniently rather than dropped.
	w.p.warnf("Content-Type %s: %v: read leniently", quoteShort(v), err)
	return lenientMediaType(v)
}

// lenientMediaType parses "type/subtype; k=v; ..." the forgiving way (see
// lenientParams); an invalid media type is replaced by fixMediaType.
func lenientMediaType(v string) (string, map[string]string) {
	mt, params := lenientParams(v)
	return fixMediaType(mt), params
}

// lenientParams splits a Content-Type or Content-Disposition value into its
// lower-case first token and parameters: the first value of a duplicate
// parameter wins, unquoted specials are kept, RFC 2231 extended values are
// decoded (continuations are not joined).
func lenientParams(v string) (string, map[string]string) {
	pieces := splitTopLevel(v, ';')
	first := strings.ToLower(strings.TrimSpace(pieces[0]))
	if i := strings.IndexAny(first, " \t,"); i >= 0 {
		first = first[:i]
	}
	params := map[string]string{}
	for _, piece := range pieces[1:] {
		k, val, ok := strings.Cut(piece, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = strings.ReplaceAll(val[1:len(val)-1], `\"`, `"`)
		}
		if strings.HasSuffix(k, "*") {
			k = strings.TrimSuffix(k, "*")
			val = decode2231(val)
		}
		if _, dup := params[k]; !dup && k != "" {
			params[k] = val
		}
	}
	return first, params
}

// fixMediaType replaces an invalid media type: RFC 2045 5.2 says to read it
// as text/plain, except that a multipart without a valid subtype is still
// multipart (RFC 2046 5.1.3: unknown subtypes are treated as mixed).
func fixMediaType(mt string) string {
	typ, sub, ok := strings.Cut(mt, "/")
	if ok && isToken(typ) && isToken(sub) {
		return mt
	}
	if strings.HasPrefix(mt, "multipart") {
		return "multipart/mixed"
	}
	return "text/plain"
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// decode2231 decodes "charset'lang'%xx..." and returns v unchanged when it
// is not in that form.
func decode2231(v string) string {
	parts := strings.SplitN(v, "'", 3)
	if len(parts) != 3 {
		return v
	}
	var raw []byte
	s := parts[2]
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			h, ok1 := unhex(s[i+1])
			l, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				raw = append(raw, h<<4|l)
				i += 2
				continue
			}
		}
		raw = append(raw, s[i])
	}
	out, _ := toUTF8(raw, parts[0])
	return out
}

// multipart visits the parts of a multipart entity.
func (w *walker) multipart(body io.Reader, depth int, mt string, params map[string]string) {
	if depth >= w.p.lim.MaxDepth {
		w.p.warnf("MIME nesting deeper than %d: inner parts ignored", w.p.lim.MaxDepth)
		return
	}
	// The read sizes below decide what the fallback capture holds when the
	// multipart turns out to have no part, so they must not depend on how
	// the body is chunked: this 8 KiB buffer is part of the behaviour. A
	// body that fills every read needs no buffer to be read in the same
	// sizes.
	var br io.Reader
	if fr, ok := body.(fillingReader); ok && params["boundary"] != "" {
		br = &bufioSizes{src: fr, size: multipartBufSize}
	} else {
		br = bufio.NewReaderSize(body, multipartBufSize)
	}
	boundary := params["boundary"]
	if boundary == "" {
		// QUIRK: guess the boundary from the first "--xyz" line.
		boundary = sniffBoundary(br.(*bufio.Reader))
		if boundary == "" {
			w.p.warnf("%s without boundary: read as text", mt)
			w.readText(br, "", "text/plain", params["charset"])
			return
		}
		w.p.warnf("%s without boundary: guessed %s", mt, quoteShort(boundary))
	}
	if len(boundary) > maxBoundaryLen {
		// RFC 2046 allows 70 characters; the multipart reader's 4 KiB
		// look-ahead cannot hold a much longer one.
		w.p.warnf("%s boundary longer than %d characters: read as text", mt, maxBoundaryLen)
		w.readText(br, "", "text/plain", params["charset"])
		return
	}
	capture := &cappedBuffer{w: w, buf: w.capture[:0], max: min(fallbackCapture, w.p.lim.MaxTextBytes)}
	w.capture = nil // owned by capture until it stops
	mr := textproto.NewMultipartReader(io.TeeReader(br, capture), boundary)
	childDefault := "text/plain"
	if mt == "multipart/digest" {
		childDefault = "message/rfc822"
	}
	n := 0
	for !w.stopped {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// QUIRK: a missing final boundary or a broken part header ends
			// the multipart; the parts before it are kept.
			if n == 0 || !strings.Contains(err.Error(), "EOF") {
				w.p.warnf("%s: %v", mt, err)
			} else {
				w.p.warnf("%s: final boundary missing", mt)
			}
			break
		}
		n++
		capture.stop()
		w.walk(message.Header{Header: part.Header}, part, depth+1, childDefault)
	}
	if n == 0 && !w.stopped {
		// QUIRK: "multipart" mail whose body has no boundary line at all
		// is plain text in practice.
		w.p.warnf("%s without any part: body read as text", mt)
		w.readText(bytes.NewReader(capture.buf), "", "text/plain", params["charset"])
	}
	capture.stop()
}

// multipartBufSize is the buffer a multipart body is read through.
const multipartBufSize = 8192

// fillingReader is a reader whose Read fills p unless the input ends (or
// fails): the bytes.Reader Parse walks, and ParseReader's fullReader.
type fillingReader interface {
	io.Reader
	fillsReads()
}

type bytesBody struct{ *bytes.Reader }

func (bytesBody) fillsReads() {}

func (*fullReader) fillsReads() {}

// bufioSizes reads from a fillingReader in the sizes a bufio.Reader of the
// given size on top of it would return, without the buffer: such a bufio
// fills up to size bytes when empty (or reads a large p directly), then
// hands out what it holds; left counts what it would still hold.
type bufioSizes struct {
	src  fillingReader
	size int
	left int
}

func (b *bufioSizes) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.left == 0 {
		if len(p) >= b.size {
			return b.src.Read(p)
		}
		b.left = b.size // a fill
	}
	want := min(len(p), b.left)
	n, err := b.src.Read(p[:want])
	if n < want {
		b.left = 0 // the input ended within the fill: the next read is a fill that finds the end
	} else {
		b.left -= n
	}
	if n > 0 {
		return n, nil // bufio returns a read error only once its buffer is empty
	}
	return n, err
}

// sniffBoundary looks for a "--boundary" line in the first bytes of br.
func sniffBoundary(br *bufio.Reader) string {
	head, _ := br.Peek(br.Size())
	for line := range bytes.Lines(head) {
		line = bytes.TrimRight(line, " \t\r\n")
		if len(line) > 2 && len(line) <= 72 && bytes.HasPrefix(line, []byte("--")) {
			return string(bytes.TrimSuffix(line[2:], []byte("--")))
		}
	}
	return ""
}

// cappedBuffer remembers at most max bytes until stop is called. Its
// storage is lent by the walker and handed back by stop.
type cappedBuffer struct {
	w       *walker
	buf     []byte
	max     int
	stopped bool
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if !c.stopped {
		if room := c.max - len(c.buf); room > 0 {
			c.buf = append(c.buf, p[:min(room, len(p))]...)
		}
	}
	return len(p), nil
}

func (c *cappedBuffer) stop() {
	if !c.stopped {
		c.stopped = true
		c.w.capture = c.buf[:0]
		c.buf = nil
	}
}

// leaf handles an entity that is not a multipart: body text or attachment.
func (w *walker) leaf(h message.Header, body io.Reader, mt string, params map[string]string) {
	disp, dparams := w.disposition(h)
	filename := dparams["filename"]
	if filename == "" {
		filename = params["name"]
	}
	filename = cleanFilename(w.p.decodeText(filename))

	cte := h.Get("Content-Transfer-Encoding")
	// A text part is body text unless it is an attachment. A file name
	// alone does not make it one when it is explicitly inline (Netscape and
	// Apple Mail name inline text parts), as in Python's email.get_body.
	if (mt == "text/plain" || mt == "text/html") && disp != "attachment" && (filename == "" || disp == "inline") {
		w.readText(body, cte, mt, params["charset"])
		return
	}
	if w.dec == nil {
		w.dec = &partDecoder{}
	}
	size, known, err := w.dec.decodedSize(cte, body)
	if !known {
		// QUIRK: an unknown encoding ("x-uuencode", "base9000") is read as
		// is rather than dropped.
		w.p.warnf("unknown Content-Transfer-Encoding %s: body used as is", quoteShort(cte))
	}
	if err != nil {
		w.p.warnf("%s part: %v", mt, partErr(err))
	}
	w.p.msg.Attachments = append(w.p.msg.Attachments, Attachment{Filename: filename, ContentType: mt, Size: size})
}

// partErr names the usual read error of a part plainly.
func partErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("ends without a closing boundary")
	}
	return err
}

func (w *walker) disposition(h message.Header) (string, map[string]string) {
	v := h.Get("Content-Disposition")
	if strings.TrimSpace(v) == "" {
		return "", map[string]string{}
	}
	d, params, err := h.ContentDisposition()
	if err == nil && params != nil {
		return strings.ToLower(d), params
	}
	w.p.warnf("Content-Disposition %s: %v: read leniently", quoteShort(v), err)
	return lenientParams(v)
}

// readText reads a text/plain or text/html body within the text budget.
// Text parts are read encoded into memory (bounded) and decoded there, so a
// body that only claims to be base64 can be recognised and kept as is.
func (w *walker) readText(r io.Reader, cte, mt, charset string) {
	budget := w.p.lim.MaxTextBytes - w.plainLen
	if mt == "text/html" {
		budget = htmlBudgetFactor*w.p.lim.MaxTextBytes - w.htmlLen
	}
	if budget <= 0 {
		w.p.warnf("text longer than the limit: truncated")
		return
	}
	enc := normalizeCTE(cte)
	rawBudget := budget
	switch enc {
	case "base64", "quoted-printable":
		rawBudget = 3*budget + 4096 // worst-case expansion of the encodings
	}
	if cap(w.raw) == 0 {
		// No part is longer than the body: small mail gets one buffer of
		// the right size, the rest one that seldom needs to grow. A mail
		// that is one text part gets its body's size, +1 for the read
		// that finds the end: grown from 16 KB, a 200 KB text cost 500 KB
		// of buffers, and readAtMost's growing was half of the bytes a
		// backlog's parsing allocated.
		size := 4096
		switch {
		case w.sizeHint > 0 && w.parts == 1:
			size = w.sizeHint + 1
		case w.sizeHint > 0:
			size = min(w.sizeHint+1, 16<<10)
		}
		w.raw = make([]byte, 0, min(rawBudget+1, size))
	}
	raw, err := readAtMost(w.raw[:0], r, rawBudget+1)
	w.raw = raw[:0]
	if err != nil {
		w.p.warnf("%s part: %v", mt, partErr(err))
	}
	truncated := false
	if len(raw) > rawBudget {
		raw = raw[:rawBudget]
		truncated = true
	}
	var b []byte
	switch enc {
	case "base64":
		if plausibleBase64(raw) {
			var st base64State
			b = st.flush(st.decode(raw[:0], raw)) // in place, see byteDecoder
		} else {
			// QUIRK: text labelled base64 that is plainly not base64.
			w.p.warnf("%s labelled base64 but is not: used as is", mt)
			b = raw
		}
	case "quoted-printable":
		var st qpState
		b = st.flush(st.decode(raw[:0], raw))
	case "", "7bit", "8bit", "binary":
		b = raw
	default:
		// QUIRK: see leaf.
		w.p.warnf("unknown Content-Transfer-Encoding %s: body used as is", quoteShort(cte))
		b = raw
	}
	if len(b) > budget {
		b = b[:budget]
		truncated = true
	}
	if truncated {
		w.p.warnf("text longer than the limit: truncated")
		b = trimPartialRune(b)
	}
	// b may be scratch space: toUTF8Bytes and the normalisation below may
	// work in place, and string() makes the one copy that is kept.
	u, warn := toUTF8Bytes(b, charset)
	if warn != "" {
		w.p.warnf("%s", warn)
	} else if cs := normalizeCharset(charset); cs != "" && w.p.legacyCharset == "" {
		w.p.legacyCharset = cs
	}
	if mt == "text/html" {
		w.htmlLen += len(u)
		// Once a plain part has text, text() never uses the HTML: no need
		// to keep a copy.
		if !w.plainText {
			w.html = append(w.html, string(u))
		}
		return
	}
	w.plainLen += len(u)
	endsCR := len(u) > 0 && u[len(u)-1] == '\r'
	pp := plainPart{s: string(normalizeNewlines(u)), endsCR: endsCR}
	pp.blank = strings.TrimSpace(pp.s) == ""
	w.plainText = w.plainText || !pp.blank
	w.plain = append(w.plain, pp)
}

// readAtMost reads r until EOF or limit bytes, appending to buf, which it
// grows geometrically: io.ReadAll(io.LimitReader(r, limit)) without
// starting from 512 bytes each time. The error is the first that is not EOF.
func readAtMost(buf []byte, r io.Reader, limit int) ([]byte, error) {
	if cap(buf) == 0 {
		buf = make([]byte, 0, min(limit, 4096))
	}
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), limit-len(buf)))
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), limit)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if err == io.EOF { //nolint:errorlint // exactly as io.ReadAll: a wrapped EOF is an error
				return buf, nil
			}
			return buf, err
		}
	}
	return buf, nil
}

// normalizeNewlines turns CRLF and lone CR into LF in place and returns the
// shortened b; it is strings.ReplaceAll(s, "\r\n", "\n") followed by
// strings.ReplaceAll(s, "\r", "\n"), in one pass.
func normalizeNewlines(b []byte) []byte {
	i := bytes.IndexByte(b, '\r')
	if i < 0 {
		return b
	}
	out := i
	for ; i < len(b); i++ {
		c := b[i]
		if c == '\r' {
			c = '\n'
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		}
		b[out] = c
		out++
	}
	return b[:out]
}

// trimPartialRune drops an incomplete UTF-8 sequence cut at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}

// text returns the best plain text: the text/plain parts, else the HTML
// parts converted, with "\n" line ends, at most MaxTextBytes.
func (w *walker) text() string {
	var s string
	n, size := 0, 0
	for _, pp := range w.plain {
		if !pp.blank {
			n++
			size += len(pp.s) + 2
			s = pp.s
		}
	}
	switch {
	case n == 0 && len(w.html) > 0:
		s = htmlToText(strings.Join(w.html, "\n"))
		if strings.IndexByte(s, '\r') >= 0 {
			s = string(normalizeNewlines([]byte(s)))
		}
	case n > 1:
		// Joined with "\n\n" as the parts were before normalisation: a
		// part that ended with CR had its CR turned into the "\n" that
		// the separator's first "\n" now belongs to.
		var b strings.Builder
		b.Grow(size)
		first, afterCR := true, false
		for _, pp := range w.plain {
			if pp.blank {
				continue
			}
			switch {
			case first:
			case afterCR:
				b.WriteByte('\n')
			default:
				b.WriteString("\n\n")
			}
			b.WriteString(pp.s)
			first, afterCR = false, pp.endsCR
		}
		s = b.String()
	}
	if len(s) > w.p.lim.MaxTextBytes {
		w.p.warnf("text longer than the limit: truncated")
		s = string(trimPartialRune([]byte(s[:w.p.lim.MaxTextBytes])))
	}
	return s
}

// htmlToText converts HTML to plain text with html2text.
func htmlToText(s string) string {
	return strings.TrimSpace(html2text.HTML2TextWithOptions(escapeStrayGT(s),
		html2text.WithUnixLineBreaks(), html2text.WithLinksInnerText()))
}

// escapeStrayGT replaces every ">" that does not close a "<" by "&gt;".
// html2text takes the text since the last "<" as the tag name at each ">",
// so a run of stray ">" would cost quadratic time.
func escapeStrayGT(s string) string {
	var b strings.Builder
	inTag := false
	last := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '<':
			inTag = true
		case '>':
			if inTag {
				inTag = false
				continue
			}
			if b.Len() == 0 {
				b.Grow(len(s) + 16)
			}
			b.WriteString(s[last:i])
			b.WriteString("&gt;")
			last = i + 1
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
