package threading

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message"
	// Registers every charset with go-message, so encoded words in headers
	// (mail.Header.Subject, address names) and bodies in ISO-2022-JP, GB18030,
	// KOI8-R ... are decoded instead of left as raw bytes.
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// ErrUnparseable is wrapped by Parse when nothing usable could be read from a
// message (no header field at all). Every other defect is tolerated.
var ErrUnparseable = errors.New("threading: unparseable message")

// errParserPanic marks an error that came from a recovered panic; tests and
// fuzzing assert it never happens.
var errParserPanic = errors.New("parser panic")

// Address is one mailbox of an address header.
type Address struct {
	Name string // display name, RFC 2047-decoded, valid UTF-8, no control characters
	Addr string // addr-spec, lower-cased and trimmed; may lack a domain (e.g. "mailer-daemon")
}

// Attachment describes one MIME leaf that is not the body text.
type Attachment struct {
	Filename    string // from Content-Disposition or Content-Type name; base name only; "" when none
	ContentType string // lower-case media type
	Size        int64  // decoded size in bytes
}

// Limits bound the work Parse does on one message. Zero values select the
// defaults in parentheses.
type Limits struct {
	MaxParts       int // MIME entities visited, containers included (1000)
	MaxDepth       int // multipart nesting depth (20)
	MaxTextBytes   int // bytes of Message.Text (1 MiB)
	MaxHeaderBytes int // bytes of top-level header fields kept (1 MiB)
}

const (
	defaultMaxParts       = 1000
	defaultMaxDepth       = 20
	defaultMaxTextBytes   = 1 << 20
	defaultMaxHeaderBytes = 1 << 20

	maxHeaderFields = 10000 // fields kept from the top-level header
	maxWarnings     = 64    // distinct warnings kept per message
	maxIDLen        = 998   // RFC 5322 line limit; a longer "id" is junk
	maxRefs         = 100   // References kept: the first and the newest 99
	lineEndWindow   = 8192  // bytes looked at to detect the line-end convention
)

func (l Limits) withDefaults() Limits {
	if l.MaxParts <= 0 {
		l.MaxParts = defaultMaxParts
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = defaultMaxDepth
	}
	if l.MaxTextBytes <= 0 {
		l.MaxTextBytes = defaultMaxTextBytes
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	return l
}

// Message is what the rest of helpdesk knows about one inbound mail.
type Message struct {
	MessageID     string   // without angle brackets; "" when absent or unusable
	InReplyTo     []string // ids without <>
	References    []string // ids without <>, oldest first
	From          Address
	Sender        Address
	ReplyTo       []Address
	To, Cc        []Address
	ReturnPath    string // Return-Path without <>; "" for the null path "<>"
	HasReturnPath bool   // a Return-Path field is present (tells "<>" from absent)
	Subject       string // decoded
	Date          time.Time
	ContentType   string // top-level media type, lower case ("text/plain" when absent)
	Text          string // best plain text, "\n" line ends, at most Limits.MaxTextBytes
	Attachments   []Attachment
	// PartTypes lists the media type of every MIME entity visited, in order,
	// the top level first (e.g. multipart/report, text/plain,
	// message/delivery-status), so classifiers can look for report parts.
	PartTypes []string
	Header    mail.Header // the top-level header fields (malformed lines dropped)
	Warnings  []string    // tolerated defects
	RawSHA256 string      // hex SHA-256 of the raw bytes as received
	Size      int         // len of the raw bytes
}

// DedupeKey is the key under which this message is indexed: IDKey of its
// Message-ID, or "sha256:" + RawSHA256 when it has none.
func (m *Message) DedupeKey() string {
	if k := IDKey(m.MessageID); k != "" {
		return k
	}
	return "sha256:" + m.RawSHA256
}

// IDKey is the index key for a bare Message-ID (with or without angle
// brackets): "<local@domain>" with surrounding space removed and the domain
// lower-cased (domains are case-insensitive; local parts are compared
// exactly). It returns "" for an empty id.
func IDKey(msgid string) string {
	id := strings.TrimSpace(msgid)
	id = strings.TrimPrefix(id, "<")
	id = strings.TrimSuffix(id, ">")
	id = strings.TrimSpace(id)
	if id == "" {
		return ""
	}
	if at := strings.LastIndexByte(id, '@'); at >= 0 {
		id = id[:at+1] + strings.ToLower(id[at+1:])
	}
	return "<" + id + ">"
}

// parser carries the state of one Parse call.
type parser struct {
	lim      Limits
	msg      *Message
	warnSeen map[string]bool
	// legacyCharset is the first charset declared by a text part; 8-bit header
	// bytes are decoded with it (QUIRK: mailers that put raw EUC-KR or Latin-1
	// in headers usually use the body charset).
	legacyCharset string
}

func (p *parser) warnf(format string, args ...any) {
	w := fmt.Sprintf(format, args...)
	if p.warnSeen[w] {
		return
	}
	if len(p.msg.Warnings) >= maxWarnings {
		if len(p.msg.Warnings) == maxWarnings {
			p.msg.Warnings = append(p.msg.Warnings, "further warnings suppressed")
		}
		return
	}
	if p.warnSeen == nil {
		p.warnSeen = make(map[string]bool)
	}
	p.warnSeen[w] = true
	p.msg.Warnings = append(p.msg.Warnings, w)
}

// Parse reads one raw message. It returns an error (wrapping ErrUnparseable)
// only when not a single header field can be read; every other defect is
// tolerated and described in Message.Warnings. Parse never panics, and its
// time and memory are bounded by lim and linear in len(raw). ParseReader
// gives the same result from a stream.
func Parse(raw []byte, lim Limits) (msg *Message, err error) {
	defer func() {
		// Belt and braces: the code below is written not to panic, but a
		// library bug on hostile input must quarantine one mail, not kill the
		// daemon. Tests assert errParserPanic never shows up.
		if r := recover(); r != nil {
			msg = nil
			err = fmt.Errorf("%w: %w: %v", ErrUnparseable, errParserPanic, r)
		}
	}()
	lim = lim.withDefaults()
	sum := sha256.Sum256(raw)
	m := &Message{RawSHA256: hex.EncodeToString(sum[:]), Size: len(raw)}
	p := &parser{lim: lim, msg: m}

	data := raw
	if bytes.HasPrefix(data, []byte(utf8BOM)) {
		// QUIRK: files saved by Windows tools start with a UTF-8 BOM.
		data = data[len(utf8BOM):]
		p.warnf("byte order mark before the header")
	}
	if trimmed := bytes.TrimLeft(data, "\r\n"); len(trimmed) != len(data) && len(trimmed) > 0 {
		// QUIRK: blank lines before the first field (mbox exports, copy and
		// paste) would otherwise make the whole message a body.
		data = trimmed
		p.warnf("blank lines before the header")
	}
	switch p.lineEnds(data[:min(len(data), lineEndWindow)]) {
	case lineEndsCR:
		data = crToCRLF(data)
	case lineEndsCRCRLF:
		data = bytes.ReplaceAll(data, []byte("\r\r\n"), []byte("\r\n"))
	}

	hdr, body, nfields := p.splitHeader(data)
	if nfields == 0 {
		return nil, errNoHeader
	}
	w := p.walkBody(hdr, body[:min(len(body), sniffLen)], bytesBody{bytes.NewReader(body)}, len(body))
	p.finish(w)
	return m, nil
}

const utf8BOM = "\xef\xbb\xbf"

// errNoHeader is Parse's error for input without a single header field.
var errNoHeader = fmt.Errorf("%w: no header field found", ErrUnparseable)

// Line-end conventions that need rewriting before go-message sees the mail.
const (
	lineEndsOK = iota
	lineEndsCR
	lineEndsCRCRLF
)

// lineEnds detects the line-end convention from the first lineEndWindow
// bytes of the message and warns about a broken one.
func (p *parser) lineEnds(head []byte) int {
	switch {
	case bytes.IndexByte(head, '\r') >= 0 && bytes.IndexByte(head, '\n') < 0:
		// QUIRK: classic Mac files end lines with a bare CR; go-message only
		// splits on LF.
		p.warnf("bare CR line endings")
		return lineEndsCR
	case bytes.Contains(head, []byte("\r\r\n")):
		// QUIRK: CRLF converted to CRLF again by a Windows tool.
		p.warnf("CR CR LF line endings")
		return lineEndsCRCRLF
	}
	return lineEndsOK
}

// walkBody reads the kept header fields and walks the MIME tree. sniff is
// the start of the body (see walker.walkTop), body all of it, size its
// length if known (else 0).
func (p *parser) walkBody(hdr, sniff []byte, body io.Reader, size int) *walker {
	// A buffer no larger than the header: the header is all it will read.
	br := bufio.NewReaderSize(bytes.NewReader(hdr), min(len(hdr), 4096))
	th, err := textproto.ReadHeader(br)
	if err != nil {
		// splitHeader only keeps well-formed lines, so this is unexpected;
		// keep whatever was read.
		p.warnf("header: %v", err)
	}
	p.msg.Header = mail.Header{Header: message.Header{Header: th}}
	w := &walker{p: p, sizeHint: size}
	w.walkTop(p.msg.Header.Header, sniff, body)
	return w
}

// finish fills the text and the header-derived fields once the walk is
// done (readFields needs the charset the walk found).
func (p *parser) finish(w *walker) {
	p.msg.Text = w.text()
	p.readFields()
}

// crToCRLF turns every CR that is not followed by LF into CRLF.
func crToCRLF(raw []byte) []byte {
	out := make([]byte, 0, len(raw)+len(raw)/32)
	for i, c := range raw {
		out = append(out, c)
		if c == '\r' && (i+1 == len(raw) || raw[i+1] != '\n') {
			out = append(out, '\n')
		}
	}
	return out
}

// splitHeader separates the top-level header from the body. It returns the
// well-formed header lines (CRLF-terminated, ending with an empty line), the
// body and the number of fields kept. At most MaxHeaderBytes of fields are
// kept; oversized fields are dropped but scanning continues to the real end
// of the header.
func (p *parser) splitHeader(data []byte) (hdr, body []byte, nfields int) {
	s := hdrScan{p: p, first: true, out: hdrBuilder{src: data, mirrored: true}}
	pos := 0
	bodyStart := len(data)
	endAt := -1 // offset of the empty line that ended the header
	for pos < len(data) {
		next := len(data)
		line := data[pos:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i]
			next = pos + i + 1
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			bodyStart = next
			endAt = pos
			break
		}
		if s.line(headerLineKind(line), line, len(line), pos) {
			bodyStart = pos
			break
		}
		pos = next
	}
	return s.out.finish(endAt), data[bodyStart:], s.nfields
}

// hdrScan is the state of splitting the top-level header into the fields
// kept and the rest, line by line. Parse and ParseReader share it: they
// only differ in how they find the lines.
type hdrScan struct {
	p          *parser
	out        hdrBuilder
	first      bool // no line handled yet
	keeping    bool // the last field line was kept, so its continuations are too
	fieldStart int  // offset in out of the last kept field
	nfields    int  // fields kept
}

// line handles one header line of n bytes without its line end (one CR
// before the LF removed) and reports whether it is not a header line, so the
// body starts with it. kind is headerLineKind of the whole line. line holds
// the whole line when it might be kept (n fits in what is left of
// MaxHeaderBytes); otherwise at least its first 5 bytes, or nil for a
// continuation or field line. at is the offset of line in out.src, or -1.
func (s *hdrScan) line(kind lineKind, line []byte, n, at int) (bodyStarts bool) {
	p := s.p
	switch {
	case kind == lineContinuation:
		if s.keeping {
			if s.out.Len()+n+2 > p.lim.MaxHeaderBytes {
				// Drop the whole field rather than keep half of it.
				s.out.truncate(s.fieldStart)
				s.nfields--
				s.keeping = false
				p.warnf("header larger than %d bytes: field dropped", p.lim.MaxHeaderBytes)
				break
			}
			s.out.add(line, at)
		} else if s.first {
			// QUIRK: a first line that is a continuation has no field to
			// belong to.
			p.warnf("header starts with a continuation line: dropped")
		}
	case kind == lineField:
		switch {
		case s.nfields >= maxHeaderFields:
			s.keeping = false
			p.warnf("more than %d header fields: rest dropped", maxHeaderFields)
		case s.out.Len()+n+2 > p.lim.MaxHeaderBytes:
			s.keeping = false
			p.warnf("header larger than %d bytes: field dropped", p.lim.MaxHeaderBytes)
		default:
			s.fieldStart = s.out.Len()
			s.out.add(line, at)
			s.nfields++
			s.keeping = true
		}
	case kind == lineEmptyKey:
		// QUIRK: ": value" has no name; skip it like textproto does.
		s.keeping = false
		p.warnf("header field without a name: dropped")
	case s.first && bytes.HasPrefix(line, []byte("From ")):
		// QUIRK: an mbox "From " separator left in front of the header.
		s.keeping = false
		p.warnf("mbox From_ line before the header: dropped")
	default:
		// QUIRK: no empty line between header and body. Like Python's
		// email package, the first line that is not a header field
		// starts the body.
		p.warnf("header not terminated by an empty line")
		return true
	}
	s.first = false
	return false
}

// hdrBuilder collects the kept header lines, each ending in CRLF. In the
// common case every line is kept and already ends in CRLF, so the result is
// a prefix of the input: while that holds (mirrored), nothing is copied.
type hdrBuilder struct {
	src      []byte // the input, for mirroring; nil in ParseReader
	mirrored bool   // the lines so far are exactly src[:n]
	n        int
	buf      []byte
}

// Len is the size of the lines kept so far.
func (h *hdrBuilder) Len() int {
	if h.mirrored {
		return h.n
	}
	return len(h.buf)
}

// add appends line and CRLF; at is the offset of line in src, or -1.
func (h *hdrBuilder) add(line []byte, at int) {
	if h.mirrored {
		end := at + len(line)
		if at == h.n && end+2 <= len(h.src) && h.src[end] == '\r' && h.src[end+1] == '\n' {
			h.n = end + 2
			return
		}
		h.unmirror(len(line) + 2)
	}
	h.buf = append(h.buf, line...)
	h.buf = append(h.buf, '\r', '\n')
}

func (h *hdrBuilder) truncate(n int) {
	if h.mirrored {
		h.n = n // src[:n] is still what was kept
		return
	}
	h.buf = h.buf[:n]
}

// unmirror copies the mirrored lines into buf, with room for extra bytes.
func (h *hdrBuilder) unmirror(extra int) {
	if h.mirrored {
		h.mirrored = false
		h.buf = append(make([]byte, 0, h.n+extra+512), h.src[:h.n]...)
	}
}

// finish returns the header block, ending with an empty line. endAt is the
// offset in src of the empty line that ended the header, or -1.
func (h *hdrBuilder) finish(endAt int) []byte {
	if h.mirrored && endAt == h.n && endAt+2 <= len(h.src) && h.src[endAt] == '\r' && h.src[endAt+1] == '\n' {
		return h.src[: endAt+2 : endAt+2]
	}
	h.unmirror(2)
	return append(h.buf, '\r', '\n')
}

type lineKind int

const (
	lineJunk lineKind = iota
	lineField
	lineContinuation
	lineEmptyKey
)

// headerLineKind classifies one header line (without its line end).
func headerLineKind(line []byte) lineKind {
	if line[0] == ' ' || line[0] == '\t' {
		return lineContinuation
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return lineJunk
	}
	// QUIRK: "Subject : x" (space before the colon) is common; textproto
	// trims it.
	key := bytes.TrimRight(line[:colon], " \t")
	if len(key) == 0 {
		return lineEmptyKey
	}
	for _, c := range key {
		if c < 33 || c > 126 {
			return lineJunk
		}
	}
	return lineField
}
