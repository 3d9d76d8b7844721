package threading

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	gmcharset "github.com/emersion/go-message/charset"
	"golang.org/x/text/encoding/charmap"
)

// transferDecoder picks the body decoder for a Content-Transfer-Encoding
// value. ok is false for an encoding nobody defines; the body is then used
// as is.
func transferDecoder(cte string, r io.Reader) (dec io.Reader, ok bool) {
	switch normalizeCTE(cte) {
	case "base64":
		return &streamDecoder{src: r, dec: &base64State{}}, true
	case "quoted-printable":
		return &streamDecoder{src: r, dec: &qpState{}}, true
	case "", "7bit", "8bit", "binary":
		return r, true
	default:
		return r, false
	}
}

// normalizeCTE maps the spellings seen in the wild to RFC 2045 names.
func normalizeCTE(v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	// QUIRK: "quoted-printable;" and "base64 (comment)" exist.
	if i := strings.IndexAny(v, "; \t("); i >= 0 {
		v = v[:i]
	}
	v = strings.Trim(v, `"'`)
	switch v {
	case "quoted-printable", "quoted_printable", "quotedprintable", "qp":
		return "quoted-printable"
	case "base64", "base-64", "b64":
		return "base64"
	case "7bit", "7-bit", "7_bit", "8bit", "8-bit", "8_bit", "binary", "":
		// QUIRK: "7-bit" and friends mean the identity encoding.
		return strings.NewReplacer("-", "", "_", "").Replace(v)
	}
	return v
}

// byteDecoder decodes a stream chunk by chunk; its state survives between
// chunks so encoded units may straddle them.
type byteDecoder interface {
	// decode appends the decoding of src to dst.
	decode(dst, src []byte) []byte
	// flush appends whatever a truncated final unit yields.
	flush(dst []byte) []byte
}

// streamDecoder runs a byteDecoder over a reader with a fixed buffer, so
// decoding needs constant memory whatever the part size.
type streamDecoder struct {
	src     io.Reader
	dec     byteDecoder
	in      [4096]byte
	out     []byte
	off     int
	err     error
	flushed bool
}

func (s *streamDecoder) Read(p []byte) (int, error) {
	for s.off == len(s.out) {
		s.out, s.off = s.out[:0], 0
		if s.err != nil {
			if !s.flushed {
				s.flushed = true
				s.out = s.dec.flush(s.out)
				continue
			}
			return 0, s.err
		}
		n, err := s.src.Read(s.in[:])
		s.out = s.dec.decode(s.out, s.in[:n])
		s.err = err
		if n == 0 && err == nil {
			// A reader returning 0, nil repeatedly must not spin here
			// forever; hand control back to the caller.
			return 0, nil
		}
	}
	n := copy(p, s.out[s.off:])
	s.off += n
	return n, nil
}

// base64State is a lenient base64 decoder.
//
// QUIRK: characters outside the alphabet are skipped (not an error), and
// padding in the middle ends one group and decoding goes on, because
// concatenated base64 blocks and stray punctuation occur in real mail.
type base64State struct {
	acc uint32
	n   int
}

var b64Values = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	// QUIRK: the URL-safe alphabet turns up in mail from web applications.
	t['-'], t['_'] = 62, 63
	return t
}()

func (b *base64State) decode(dst, src []byte) []byte {
	for _, c := range src {
		if c == '=' {
			dst = b.flush(dst)
			continue
		}
		v := b64Values[c]
		if v < 0 {
			continue
		}
		b.acc = b.acc<<6 | uint32(v)
		b.n++
		if b.n == 4 {
			dst = append(dst, byte(b.acc>>16), byte(b.acc>>8), byte(b.acc))
			b.acc, b.n = 0, 0
		}
	}
	return dst
}

func (b *base64State) flush(dst []byte) []byte {
	switch b.n {
	case 2:
		dst = append(dst, byte(b.acc>>4))
	case 3:
		dst = append(dst, byte(b.acc>>10), byte(b.acc>>2))
	}
	b.acc, b.n = 0, 0
	return dst
}

// qpState is a lenient quoted-printable decoder (RFC 2045 6.7).
//
// QUIRK: an "=" not followed by two hex digits or a line end is kept
// literally, bare LF soft breaks and whitespace after a soft-break "=" are
// accepted, and 8-bit or control bytes pass through, because Go's
// mime/quotedprintable stops at those and at lines over 4 KiB.
type qpState struct {
	state int  // 0 text, 1 after '=', 2 after '=' and a hex digit, 3 after "=\r", 4 after '=' and whitespace
	hi    byte // the first hex digit in state 2
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (q *qpState) decode(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch q.state {
		case 0:
			if c == '=' {
				q.state = 1
			} else {
				dst = append(dst, c)
			}
		case 1:
			switch {
			case c == '\n':
				q.state = 0 // soft line break
			case c == '\r':
				q.state = 3
			case c == ' ' || c == '\t':
				q.state = 4
			default:
				if _, ok := unhex(c); ok {
					q.hi, q.state = c, 2
				} else {
					dst = append(dst, '=')
					q.state = 0
					i-- // reprocess c as text
				}
			}
		case 2:
			h, _ := unhex(q.hi)
			if l, ok := unhex(c); ok {
				dst = append(dst, h<<4|l)
				q.state = 0
			} else {
				dst = append(dst, '=', q.hi)
				q.state = 0
				i--
			}
		case 3:
			q.state = 0
			if c != '\n' {
				i-- // "=\r" alone is a soft break too (CR-only mail)
			}
		case 4:
			switch c {
			case ' ', '\t':
			case '\n':
				q.state = 0
			case '\r':
				q.state = 3
			default:
				// "= x": not a soft break after all; the whitespace is lost.
				dst = append(dst, '=', ' ')
				q.state = 0
				i--
			}
		}
	}
	return dst
}

func (q *qpState) flush(dst []byte) []byte {
	if q.state == 2 {
		dst = append(dst, '=', q.hi)
	}
	// A trailing "=" is a soft break at the end of the body.
	q.state = 0
	return dst
}

// decodeAll decodes a whole in-memory body.
func decodeAll(d byteDecoder, src []byte) []byte {
	return d.flush(d.decode(make([]byte, 0, len(src)), src))
}

// plausibleBase64 reports whether src looks like base64 at all: no blanks
// inside a line and (almost) no characters outside the alphabet.
func plausibleBase64(src []byte) bool {
	junk := 0
	for line := range bytes.Lines(src) {
		line = bytes.TrimSpace(line)
		if bytes.ContainsAny(line, " \t") {
			return false
		}
		for _, c := range line {
			if b64Values[c] < 0 && c != '=' {
				junk++
			}
		}
	}
	return junk <= 8 || junk*100 <= len(src)
}

// normalizeCharset cleans a charset label; "" means none was declared.
func normalizeCharset(cs string) string {
	cs = strings.ToLower(strings.Trim(strings.TrimSpace(cs), `"'`))
	switch cs {
	case "utf8", "utf-8", "x-utf8", "unicode-1-1-utf-8":
		return "utf-8"
	case "ascii", "us-ascii", "ansi_x3.4-1968", "iso646-us", "us":
		return "us-ascii"
	}
	return cs
}

// toUTF8 converts text in the declared charset to valid UTF-8 and reports
// what it had to tolerate in warn (may be "").
//
// QUIRK: text that claims US-ASCII, declares nothing or declares an unknown
// charset but is not valid UTF-8 is read as Windows-1252 (a superset of
// Latin-1), which is what such mail nearly always is. Text that claims UTF-8
// keeps its valid runes and gets U+FFFD for the rest.
func toUTF8(b []byte, charset string) (s, warn string) {
	cs := normalizeCharset(charset)
	switch cs {
	case "utf-8":
		if utf8.Valid(b) {
			return string(b), ""
		}
		return strings.ToValidUTF8(string(b), "\uFFFD"), "invalid UTF-8 in text declared as UTF-8"
	case "", "us-ascii":
		if utf8.Valid(b) {
			return string(b), ""
		}
		return windows1252(b), "8-bit text without a charset: read as windows-1252"
	}
	r, err := gmcharset.Reader(cs, strings.NewReader(string(b)))
	if err == nil {
		var out []byte
		out, err = io.ReadAll(r)
		if err == nil {
			return strings.ToValidUTF8(string(out), "\uFFFD"), ""
		}
	}
	if utf8.Valid(b) {
		return string(b), "unknown charset " + quoteShort(charset) + ": text is valid UTF-8, kept"
	}
	return windows1252(b), "unknown charset " + quoteShort(charset) + ": read as windows-1252"
}

func windows1252(b []byte) string {
	out, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(out)
}

// quoteShort quotes s for a warning, cut to a sane length.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(strconv.Quote(s), "?")
}
