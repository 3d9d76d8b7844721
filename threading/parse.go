package threading

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
// time and memory are bounded by lim and linear in len(raw).
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
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		// QUIRK: files saved by Windows tools start with a UTF-8 BOM.
		data = data[3:]
		p.warnf("byte order mark before the header")
	}
	if trimmed := bytes.TrimLeft(data, "\r\n"); len(trimmed) != len(data) && len(trimmed) > 0 {
		// QUIRK: blank lines before the first field (mbox exports, copy and
		// paste) would otherwise make the whole message a body.
		data = trimmed
		p.warnf("blank lines before the header")
	}
	head := data[:min(len(data), lineEndWindow)]
	switch {
	case bytes.IndexByte(head, '\r') >= 0 && bytes.IndexByte(head, '\n') < 0:
		// QUIRK: classic Mac files end lines with a bare CR; go-message only
		// splits on LF.
		data = crToCRLF(data)
		p.warnf("bare CR line endings")
	case bytes.Contains(head, []byte("\r\r\n")):
		// QUIRK: CRLF converted to CRLF again by a Windows tool.
		data = bytes.ReplaceAll(data, []byte("\r\r\n"), []byte("\r\n"))
		p.warnf("CR CR LF line endings")
	}

	hdrBlock, body, nfields := p.splitHeader(data)
	if nfields == 0 {
		return nil, fmt.Errorf("%w: no header field found", ErrUnparseable)
	}
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(hdrBlock)))
	if err != nil {
		// splitHeader only keeps well-formed lines, so this is unexpected;
		// keep whatever was read.
		p.warnf("header: %v", err)
	}
	m.Header = mail.Header{Header: message.Header{Header: th}}

	w := &walker{p: p}
	w.walkTop(m.Header.Header, body)
	m.Text = w.text()
	p.readFields()
	return m, nil
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
	var b bytes.Buffer
	pos := 0
	first := true
	keeping := false // the last field line was kept, so its continuations are too
	fieldStart := 0  // offset in b of the last kept field
	var bodyStart = len(data)
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
			break
		}
		switch kind := headerLineKind(line); {
		case kind == lineContinuation:
			if keeping {
				if b.Len()+len(line)+2 > p.lim.MaxHeaderBytes {
					// Drop the whole field rather than keep half of it.
					b.Truncate(fieldStart)
					nfields--
					keeping = false
					p.warnf("header larger than %d bytes: field dropped", p.lim.MaxHeaderBytes)
					break
				}
				b.Write(line)
				b.WriteString("\r\n")
			} else if first {
				// QUIRK: a first line that is a continuation has no field to
				// belong to.
				p.warnf("header starts with a continuation line: dropped")
			}
		case kind == lineField:
			switch {
			case nfields >= maxHeaderFields:
				keeping = false
				p.warnf("more than %d header fields: rest dropped", maxHeaderFields)
			case b.Len()+len(line)+2 > p.lim.MaxHeaderBytes:
				keeping = false
				p.warnf("header larger than %d bytes: field dropped", p.lim.MaxHeaderBytes)
			default:
				fieldStart = b.Len()
				b.Write(line)
				b.WriteString("\r\n")
				nfields++
				keeping = true
			}
		case kind == lineEmptyKey:
			// QUIRK: ": value" has no name; skip it like textproto does.
			keeping = false
			p.warnf("header field without a name: dropped")
		case first && bytes.HasPrefix(line, []byte("From ")):
			// QUIRK: an mbox "From " separator left in front of the header.
			keeping = false
			p.warnf("mbox From_ line before the header: dropped")
		default:
			// QUIRK: no empty line between header and body. Like Python's
			// email package, the first line that is not a header field
			// starts the body.
			p.warnf("header not terminated by an empty line")
			bodyStart = pos
			pos = len(data)
			continue
		}
		first = false
		pos = next
	}
	b.WriteString("\r\n")
	return b.Bytes(), data[bodyStart:], nfields
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
