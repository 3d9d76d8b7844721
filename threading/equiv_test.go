package threading

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"mime"
	"net/mail"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	gmcharset "github.com/emersion/go-message/charset"
)

// The tests in this file hold each fast path of Parse to the plain code it
// replaced, kept here as the specification.

// refBase64 is the byte-at-a-time lenient base64 decoder.
func refBase64(b *base64State, dst, src []byte) []byte {
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

// refQP is the byte-at-a-time lenient quoted-printable decoder.
func refQP(q *qpState, dst, src []byte) []byte {
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
				q.state = 0
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
					i--
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
				i--
			}
		case 4:
			switch c {
			case ' ', '\t':
			case '\n':
				q.state = 0
			case '\r':
				q.state = 3
			default:
				dst = append(dst, '=', ' ')
				q.state = 0
				i--
			}
		}
	}
	return dst
}

// randomEncoded is text drawn mostly from alphabet, with some bytes of any
// value.
func randomEncoded(r *rand.Rand, n int, alphabet string) []byte {
	b := make([]byte, n)
	for i := range b {
		if r.IntN(20) == 0 {
			b[i] = byte(r.IntN(256))
		} else {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
	}
	return b
}

// TestDecoders_MatchReference decodes random input in random chunks with
// the fast decoders and the reference ones.
func TestDecoders_MatchReference(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	const b64Chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n-_ *"
	const qpChars = "abc=0123456789ABCDEFabcdef \t\r\n=x"
	for range 2000 {
		for _, alphabet := range []string{b64Chars, qpChars} {
			src := randomEncoded(r, r.IntN(300), alphabet)
			var fast, ref []byte
			var fb, rb base64State
			var fq, rq qpState
			for rest := src; len(rest) > 0; {
				k := min(len(rest), 1+r.IntN(40))
				if alphabet == b64Chars {
					fast, ref = fb.decode(fast, rest[:k]), refBase64(&rb, ref, rest[:k])
				} else {
					fast, ref = fq.decode(fast, rest[:k]), refQP(&rq, ref, rest[:k])
				}
				rest = rest[k:]
			}
			if alphabet == b64Chars {
				fast, ref = fb.flush(fast), rb.flush(ref)
			} else {
				fast, ref = fq.flush(fast), rq.flush(ref)
			}
			if !bytes.Equal(fast, ref) {
				t.Fatalf("decoding %q: fast %q, reference %q", src, fast, ref)
			}
			// In place, as readText and partDecoder decode.
			in := bytes.Clone(src)
			var ib base64State
			var iq qpState
			dec := byteDecoder(&ib)
			cte := "base64"
			if alphabet == qpChars {
				dec, cte = &iq, "quoted-printable"
			}
			if got := dec.flush(dec.decode(in[:0], in)); !bytes.Equal(got, ref) {
				t.Fatalf("decoding %q in place: %q, reference %q", src, got, ref)
			}
			// And the size of an attachment, read a byte at a time so
			// that units straddle reads.
			var d partDecoder
			size, known, err := d.decodedSize(cte, iotest.OneByteReader(bytes.NewReader(src)))
			if size != int64(len(ref)) || !known || err != nil {
				t.Fatalf("decodedSize(%s, %q) = %d, %v, %v; want %d", cte, src, size, known, err, len(ref))
			}
		}
	}
}

// TestDecodedSize_Errors: a read error ends the part; what was decoded
// before it counts, and the error is returned.
func TestDecodedSize_Errors(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	var d partDecoder
	for _, tt := range []struct {
		cte, body string
		want      int64
		known     bool
	}{
		{"base64", "aGVsbG8gd29y", 9, true},           // the cut group is flushed
		{"quoted-printable", "caf=C3=A9 =4", 8, true}, // "=4" is kept as is
		{"7bit", "as is", 5, true},
		{"x-uuencode", "begin 644", 9, false},
	} {
		size, known, err := d.decodedSize(tt.cte, io.MultiReader(strings.NewReader(tt.body), iotest.ErrReader(errBoom)))
		if size != tt.want || known != tt.known || !errors.Is(err, errBoom) {
			t.Errorf("%s %q: %d, %v, %v; want %d, %v, boom", tt.cte, tt.body, size, known, err, tt.want, tt.known)
		}
	}
}

// TestNormalizeNewlines against the two strings.ReplaceAll it replaced.
func TestNormalizeNewlines(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		s := string(randomEncoded(r, r.IntN(30), "a\r\n"))
		want := strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
		if got := string(normalizeNewlines([]byte(s))); got != want {
			t.Fatalf("normalizeNewlines(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestReadAtMost against io.ReadAll(io.LimitReader(r, limit)).
func TestReadAtMost(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	data := bytes.Repeat([]byte("0123456789"), 2000)
	for _, n := range []int{0, 1, 4095, 4096, 4097, 20000} {
		for _, limit := range []int{1, 100, 4096, 8193, 30000} {
			for _, fail := range []bool{false, true} {
				mk := func() io.Reader {
					var r io.Reader = iotest.HalfReader(bytes.NewReader(data[:n]))
					if fail {
						r = io.MultiReader(r, iotest.ErrReader(errBoom))
					}
					return r
				}
				want, wantErr := io.ReadAll(io.LimitReader(mk(), int64(limit)))
				got, err := readAtMost(nil, mk(), limit)
				if !bytes.Equal(got, want) || !errors.Is(err, wantErr) {
					t.Errorf("n %d, limit %d, fail %v: %d bytes, %v; want %d, %v", n, limit, fail, len(got), err, len(want), wantErr)
				}
			}
		}
	}
}

// TestBufioSizes: bufioSizes returns the same sizes, bytes and errors as a
// bufio.Reader on a filling reader, for the request sizes of a multipart
// reader (up to its 4 KiB buffer) and large ones.
func TestBufioSizes(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 100, 8191, 8192, 8193, 20000, 50000} {
		data := randomEncoded(r, n, "abc\n")
		for range 20 {
			want := bufio.NewReaderSize(bytes.NewReader(data), multipartBufSize)
			got := &bufioSizes{src: bytesBody{bytes.NewReader(data)}, size: multipartBufSize}
			for step := 0; ; step++ {
				k := 1 + r.IntN(4096)
				if r.IntN(10) == 0 {
					k = 8192 + r.IntN(100)
				}
				wb, gb := make([]byte, k), make([]byte, k)
				wn, werr := want.Read(wb)
				gn, gerr := got.Read(gb)
				if wn != gn || !errors.Is(gerr, werr) || !bytes.Equal(wb[:wn], gb[:gn]) {
					t.Fatalf("%d bytes, step %d, read of %d: got %d, %v; bufio %d, %v", n, step, k, gn, gerr, wn, werr)
				}
				if werr != nil {
					break
				}
			}
		}
	}
}

// TestCommonDate: where the fast path answers, mail.ParseDate gives the
// same time.
func TestCommonDate(t *testing.T) {
	t.Parallel()
	for _, v := range []string{
		"Mon, 2 Nov 2026 08:00:00 +0000", "Tue, 24 Nov 2026 10:00:00 -0500", "Wed, 04 Mar 2026 23:59:59 +1400",
		"mon, 2 nov 2026 08:00:00 +0100", "Mon, 2 Nov 26 08:00:00 +0000", "Mon, 2 Nov 2026 08:00 +0000",
		"2 Nov 2026 08:00:00 +0000", "Mon, 2 Nov 2026 08:00:00 +0000 (UTC)", "Mon, 2 Nov 2026 08:00:00 GMT",
		"Mon, 31 Feb 2026 08:00:00 +0000", "Mon, 2 Nov 2026 08:00:00 +00000", "Xyz, 2 Nov 2026 08:00:00 +0000",
	} {
		got, ok := commonDate(v)
		want, err := mail.ParseDate(v)
		if ok && (err != nil || !got.Equal(want) || got.Location().String() != want.Location().String()) {
			t.Errorf("%q: fast path %v, mail.ParseDate %v, %v", v, got, want, err)
		}
	}
	if _, ok := commonDate("Mon, 2 Nov 2026 08:00:00 +0000"); !ok {
		t.Error("the common form missed the fast path")
	}
}

// TestWordCharsetReader: encoded words decode as they did through
// go-message's charset reader.
func TestWordCharsetReader(t *testing.T) {
	t.Parallel()
	plain := mime.WordDecoder{CharsetReader: func(cs string, r io.Reader) (io.Reader, error) {
		if i := strings.IndexByte(cs, '*'); i >= 0 {
			cs = cs[:i]
		}
		switch normalizeCharset(cs) {
		case "utf-8", "us-ascii":
			return r, nil
		}
		return gmcharset.Reader(cs, r)
	}}
	ours := mime.WordDecoder{CharsetReader: wordCharsetReader}
	for _, v := range []string{
		"=?iso-2022-jp?B?GyRCJF4kXyRgJGEkYhsoQg==?=", "=?koi8-r?q?=F0=D2=C9=D7=C5=D4?= x", "=?windows-1252?q?caf=E9?=",
		"=?utf8*en?q?ok?=", "=?x-nonsense?q?abc?= =?utf-8?q?ok?=", "=?gb18030?b?1tDOxA==?=", "=?utf-8?q?=C3=A9?=",
	} {
		want, wantErr := plain.DecodeHeader(v)
		got, err := ours.DecodeHeader(v)
		if got != want || errString(err) != errString(wantErr) {
			t.Errorf("%q: %q, %v; want %q, %v", v, got, err, want, wantErr)
		}
	}
}

// TestParse_MultipartReadSizes: Parse reads a top-level multipart through
// bufioSizes; the result must be what the 8 KiB bufio.Reader it stands for
// gives. A first part with a broken header makes the text the bytes the
// multipart reader had consumed, so read sizes show in Message.Text.
func TestParse_MultipartReadSizes(t *testing.T) {
	t.Parallel()
	// With more than 8 KiB before the failure, these read differently
	// through the bufio.Reader than straight from the bytes.Reader.
	for _, pre := range []int{10, 113, 114, 150, 200} {
		raw := []byte("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
			strings.Repeat(strings.Repeat("x", 70)+"\r\n", pre) + "--b\r\nBad Key: x\r\n\r\n" + strings.Repeat("tail line\r\n", 3000) + "--b--\r\n")
		got := mustParse(t, raw)
		if !hasWarning(got, "without any part") {
			t.Fatalf("%d: the fixture no longer takes the fallback: %q", pre, got.Warnings)
		}
		// The same walk with the body hidden behind a plain io.Reader,
		// which gets the real bufio.Reader.
		p := &parser{lim: Limits{}.withDefaults(), msg: &Message{}}
		hdr, body, _ := p.splitHeader(raw)
		p.finish(p.walkBody(hdr, body[:sniffLen], struct{ io.Reader }{bytes.NewReader(body)}, len(body)))
		if got.Text != p.msg.Text || !slices.Equal(got.Warnings, p.msg.Warnings) {
			t.Errorf("%d preamble lines: text of %d bytes, through bufio %d; warnings %q, %q", pre, len(got.Text), len(p.msg.Text), got.Warnings, p.msg.Warnings)
		}
	}
}
