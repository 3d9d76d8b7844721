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

// partChunk is how much of an attachment is decoded at a time.
const partChunk = 4096

// partDecoder measures the decoded size of attachments. One walker reuses
// it from part to part, so an attachment costs no allocation.
type partDecoder struct {
	in  [partChunk]byte
	out [partChunk + 4]byte // room for the end of a unit begun in the last chunk
	b64 base64State
	qp  qpState
}

// decodedSize reads r to its end and returns the size of its decoding for
// the Content-Transfer-Encoding cte, and r's error other than io.EOF.
// known is false for an encoding nobody defines; the size of r is returned
// then, as the body is used as is.
func (d *partDecoder) decodedSize(cte string, r io.Reader) (size int64, known bool, err error) {
	var dec byteDecoder
	switch normalizeCTE(cte) {
	case "base64":
		d.b64 = base64State{}
		dec = &d.b64
	case "quoted-printable":
		d.qp = qpState{}
		dec = &d.qp
	case "", "7bit", "8bit", "binary":
		size, err = io.Copy(io.Discard, r)
		return size, true, err
	default:
		size, err = io.Copy(io.Discard, r)
		return size, false, err
	}
	for {
		n, rerr := r.Read(d.in[:])
		size += int64(len(dec.decode(d.out[:0], d.in[:n])))
		if rerr != nil {
			size += int64(len(dec.flush(d.out[:0])))
			if rerr == io.EOF { //nolint:errorlint // as io.Copy
				rerr = nil
			}
			return size, true, rerr
		}
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
	case "7-bit", "7_bit":
		// QUIRK: "7-bit" and friends mean the identity encoding.
		return "7bit"
	case "8-bit", "8_bit":
		return "8bit"
	}
	return v
}

// byteDecoder decodes a stream chunk by chunk; its state survives between
// chunks so encoded units may straddle them. Both decoders write no more
// bytes than they have read in the same call, and never ahead of what they
// have read, so a whole body can be decoded in place (dst = src[:0]) in one
// call from a fresh state. Not chunk by chunk: a unit begun in the previous
// chunk is written before this chunk's bytes are read.
type byteDecoder interface {
	// decode appends the decoding of src to dst.
	decode(dst, src []byte) []byte
	// flush appends whatever a truncated final unit yields.
	flush(dst []byte) []byte
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
	for i := 0; i < len(src); {
		// Fast path: four alphabet characters at a group boundary make
		// three bytes. '=' and junk are negative in b64Values, so the OR
		// of the four values is negative whenever the slow path must run.
		if b.n == 0 && i+4 <= len(src) {
			v0, v1, v2, v3 := b64Values[src[i]], b64Values[src[i+1]], b64Values[src[i+2]], b64Values[src[i+3]]
			if v0|v1|v2|v3 >= 0 {
				acc := uint32(v0)<<18 | uint32(v1)<<12 | uint32(v2)<<6 | uint32(v3)
				dst = append(dst, byte(acc>>16), byte(acc>>8), byte(acc))
				i += 4
				continue
			}
		}
		c := src[i]
		i++
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
			// Literal text is most of a quoted-printable body: copy the
			// run up to the next '=' at once.
			j := bytes.IndexByte(src[i:], '=')
			if j < 0 {
				return append(dst, src[i:]...)
			}
			dst = append(dst, src[i:i+j]...)
			i += j
			q.state = 1
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
func toUTF8(b []byte, charset string) (s, warn string) {
	out, warn := toUTF8Bytes(b, charset)
	return string(out), warn
}

// toUTF8Bytes is toUTF8 returning bytes, which may be b itself when it is
// already valid (the caller then owns the only copy it makes).
//
// QUIRK: text that claims US-ASCII, declares nothing or declares an unknown
// charset but is not valid UTF-8 is read as Windows-1252 (a superset of
// Latin-1), which is what such mail nearly always is. Text that claims UTF-8
// keeps its valid runes and gets U+FFFD for the rest.
func toUTF8Bytes(b []byte, charset string) (out []byte, warn string) {
	cs := normalizeCharset(charset)
	switch cs {
	case "utf-8":
		if utf8.Valid(b) {
			return b, ""
		}
		return bytes.ToValidUTF8(b, []byte("\uFFFD")), "invalid UTF-8 in text declared as UTF-8"
	case "", "us-ascii":
		if utf8.Valid(b) {
			return b, ""
		}
		return windows1252(b), "8-bit text without a charset: read as windows-1252"
	}
	r, err := gmcharset.Reader(cs, bytes.NewReader(b))
	if err == nil {
		out, err = io.ReadAll(r)
		if err == nil {
			if utf8.Valid(out) {
				return out, ""
			}
			return bytes.ToValidUTF8(out, []byte("\uFFFD")), ""
		}
	}
	if utf8.Valid(b) {
		return b, "unknown charset " + quoteShort(charset) + ": text is valid UTF-8, kept"
	}
	return windows1252(b), "unknown charset " + quoteShort(charset) + ": read as windows-1252"
}

func windows1252(b []byte) []byte {
	out, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil {
		return bytes.ToValidUTF8(b, []byte("\uFFFD"))
	}
	return out
}

// quoteShort quotes s for a warning, cut to a sane length.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(strconv.Quote(s), "?")
}
