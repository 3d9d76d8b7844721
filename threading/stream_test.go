package threading

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-message/mail"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/text/transform"
)

// headerField is one field of a Message.Header as cmp compares it.
type headerField struct{ Key, Value, Raw string }

// messageCmp compares Messages field by field; mail.Header has unexported
// fields, so it is compared as its list of fields, raw bytes included.
var messageCmp = cmp.Transformer("fields", func(h mail.Header) []headerField {
	var out []headerField
	fields := h.Fields()
	for fields.Next() {
		raw, err := fields.Raw()
		if err != nil {
			raw = []byte("error: " + err.Error())
		}
		out = append(out, headerField{fields.Key(), fields.Value(), string(raw)})
	}
	return out
})

// oddReader returns the data of r in chunks of varying odd sizes.
type oddReader struct {
	r io.Reader
	i int
}

func (o *oddReader) Read(p []byte) (int, error) {
	sizes := [...]int{1, 7, 3, 4097, 13, 999, 2, 65537, 5}
	o.i++
	return o.r.Read(p[:min(len(p), sizes[o.i%len(sizes)])])
}

// errString makes errors comparable: Parse and ParseReader build them anew.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// assertSameAsParse parses raw with Parse and through ParseReader with the
// given readers and look-ahead sizes, and fails on any difference.
func assertSameAsParse(t *testing.T, raw []byte, lim Limits, oneByte bool, sizes ...int) {
	t.Helper()
	want, wantErr := Parse(raw, lim)
	if errors.Is(wantErr, errParserPanic) {
		t.Fatalf("Parse panicked: %v", wantErr)
	}
	readers := map[string]func() io.Reader{
		"bytes": func() io.Reader { return bytes.NewReader(raw) },
		"odd":   func() io.Reader { return &oddReader{r: bytes.NewReader(raw)} },
	}
	if oneByte {
		readers["one byte"] = func() io.Reader { return iotest.OneByteReader(bytes.NewReader(raw)) }
	}
	if len(sizes) == 0 {
		sizes = []int{streamBufSize}
	}
	for name, mk := range readers {
		for _, size := range sizes {
			got, err := parseReader(mk(), lim, size)
			if errString(err) != errString(wantErr) {
				t.Fatalf("%s reader, look-ahead %d: error %v, Parse gave %v", name, size, err, wantErr)
			}
			if d := cmp.Diff(want, got, messageCmp); d != "" {
				t.Fatalf("%s reader, look-ahead %d: ParseReader differs from Parse (-Parse +ParseReader):\n%s", name, size, d)
			}
		}
	}
}

// smallLimits push ordinary mail over every limit.
var smallLimits = Limits{MaxParts: 4, MaxDepth: 2, MaxTextBytes: 200, MaxHeaderBytes: 300}

// TestParseReader_Corpus: every file of the corpus (raw messages and the
// body-only ones, which exercise the no-header paths) gives the same result
// from ParseReader as from Parse, through whole, odd-sized and one-byte
// reads, with small look-aheads that make most header lines "long", and
// with small limits.
func TestParseReader_Corpus(t *testing.T) {
	t.Parallel()
	var paths []string
	err := filepath.WalkDir(corpusDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(path, "_licence") && !strings.HasSuffix(path, ".md") && !strings.HasSuffix(path, ".tsv") {
			paths = append(paths, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 250 {
		t.Fatalf("only %d corpus files", len(paths))
	}
	for _, path := range paths {
		t.Run(strings.TrimPrefix(path, corpusDir+"/"), func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			assertSameAsParse(t, raw, Limits{}, len(raw) < 64<<10, streamBufSize, 16)
			assertSameAsParse(t, raw, smallLimits, false, 16, 100)
		})
	}
}

// TestParseReader_Bombs: the inputs of the bomb tests, and the fixtures of
// the quirk tests, give the same result from ParseReader.
func TestParseReader_Bombs(t *testing.T) {
	t.Parallel()
	const fiveMB = 5 << 20
	manyParts := func() []byte {
		var b bytes.Buffer
		b.WriteString("From: bomb@example.com\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n")
		for i := range 3000 {
			fmt.Fprintf(&b, "--p\r\nContent-Type: application/octet-stream\r\n\r\nxx%d\r\n", i)
		}
		return append(b.Bytes(), "--p--\r\n"...)
	}
	folded := func() []byte {
		var b bytes.Buffer
		b.WriteString("From: a@example.com\r\nX-Junk: start\r\n")
		for b.Len() < fiveMB {
			b.WriteString(" continued continued continued continued continued\r\n")
		}
		return append(b.Bytes(), "Subject: after\r\n\r\nbody\r\n"...)
	}
	manyFields := func() []byte {
		var b bytes.Buffer
		b.WriteString("From: a@example.com\r\n")
		for i := 0; b.Len() < 1<<20; i++ {
			fmt.Fprintf(&b, "X-F%d: v\r\n", i)
		}
		return append(b.Bytes(), "\r\nbody\r\n"...)
	}
	tests := map[string][]byte{
		"nesting":          nestedBomb(3000),
		"many parts":       manyParts(),
		"giant field":      append(append([]byte("From: a@example.com\r\nX-Junk: "), bytes.Repeat([]byte("a"), fiveMB)...), "\r\nSubject: after the junk\r\n\r\nbody\r\n"...),
		"folded field":     folded(),
		"many fields":      manyFields(),
		"header never end": append([]byte("From: a@example.com\r\nX-Junk: "), bytes.Repeat([]byte("b"), fiveMB)...),
		"qp text":          append([]byte("From: a@example.com\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"), bytes.Repeat([]byte("=41=42=43 "), 1<<18)...),
		"stray gt":         append([]byte("From: a@example.com\r\nContent-Type: text/html\r\n\r\n<p>"), bytes.Repeat([]byte(">"), 1<<20)...),
		// A field name of megabytes: Parse drops it as too large and goes on;
		// ParseReader decides so without holding it.
		"giant name":      append(append([]byte("From: a@example.com\r\n"), bytes.Repeat([]byte("N"), 2<<20)...), ": v\r\nSubject: s\r\n\r\nbody\r\n"...),
		"giant body line": append(append([]byte("From: a@example.com\r\nSubject: no break\r\n"), bytes.Repeat([]byte("QUJD"), 1<<19)...), "\r\nmore\r\n"...),
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assertSameAsParse(t, raw, Limits{}, false)
		})
	}
}

// TestParseReader_LongLines covers each way a header line longer than the
// look-ahead can end, with a look-ahead of 16 bytes and a header budget of
// 64, so "long" and "too long to keep" are a few dozen bytes.
func TestParseReader_LongLines(t *testing.T) {
	t.Parallel()
	lim := Limits{MaxHeaderBytes: 64}
	name := func(n int) string { return strings.Repeat("N", n) }
	tests := map[string]string{
		"long field kept":            "From: a@example.com\r\nSubject: a subject line of forty bytes\r\n\r\nbody\r\n",
		"long field dropped":         "From: a@example.com\r\nSubject: a subject line that is far too long to be kept\r\nX: y\r\n\r\nbody\r\n",
		"long continuation kept":     "From: a@example.com\r\nX: y\r\n folded onto a long line\r\n\r\nbody\r\n",
		"long continuation dropped":  "From: a@example.com\r\nX: y\r\n folded onto a line that is much too long to keep\r\nY: z\r\n\r\nbody\r\n",
		"long continuation orphan":   " starts with a long continuation line\r\nFrom: a@example.com\r\n\r\nbody\r\n",
		"long empty key":             "From: a@example.com\r\n: a value without a name that is long\r\n\r\nbody\r\n",
		"long junk line":             "From: a@example.com\r\nthis is the body, no blank line before it\r\nmore\r\n",
		"long open name then colon":  "From: a@example.com\r\n" + name(30) + ": v\r\n\r\nbody\r\n",
		"long open name kept":        "From: a@b\r\n" + name(20) + "  \t : v\r\n\r\nbody\r\n",
		"long open name then junk":   "From: a@example.com\r\n" + name(30) + " x\r\nmore body\r\n",
		"long open name then LF":     "From: a@example.com\r\n" + name(40) + "\r\nmore body\r\n",
		"long open name at EOF":      "From: a@example.com\r\n" + name(40),
		"too long open name colon":   "From: a@example.com\r\n" + name(200) + ": v\r\nSubject: s\r\n\r\nbody\r\n",
		"too long open name junk":    "From: a@example.com\r\nContent-Type: text/html\r\n" + name(200) + " <p>x</p>\r\nmore\r\n",
		"too long open name EOF":     "From: a@example.com\r\n" + name(2000), // longer than the sniffed start
		"too long open, multipart":   "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n" + name(200) + "\r\n--b\r\n\r\ninside\r\n--b--\r\n",
		"too long open, no field":    name(200) + "\r\nFrom: a@example.com\r\n\r\nbody\r\n",
		"too long open, no field 2":  name(200) + ": v\r\nFrom: a@example.com\r\n\r\nbody\r\n",
		"too long open, then colon":  "From: a@example.com\r\nContent-Type: text/plain\r\n" + name(200) + strings.Repeat(" ", 50) + ":" + name(100) + "\r\n\r\nbody\r\n",
		"too long open, two of them": "From: a@example.com\r\n" + name(200) + ": v\r\n" + name(300) + "\r\nbody\r\n",
		"mbox From long":             "From " + name(40) + "\r\nFrom: a@example.com\r\n\r\nbody\r\n",
		"mbox From too long junk":    "From " + strings.Repeat(" ", 200) + "x\r\nFrom: a@example.com\r\n\r\nbody\r\n",
		"mbox From too long field":   "From " + strings.Repeat(" ", 200) + ": y\r\nFrom: a@example.com\r\n\r\nbody\r\n",
		"CR in long line":            "From: a@example.com\r\nSubject: a\rb line that is long enough\r\n\r\nbody\r\n",
		"CR at the look-ahead edge":  "From: a@example.com\r\nX: 12345678901\r\n\r\nbody\r\n",
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assertSameAsParse(t, []byte(raw), lim, true, 16, 17, 32)
			assertSameAsParse(t, []byte(raw), Limits{MaxHeaderBytes: 100, MaxTextBytes: 30}, true, 16)
		})
	}
}

// TestParseReader_QuirkPreprocessing: the BOM, blank lines and line-end
// rewrites, whose detection Parse does on bytes, in streaming form.
func TestParseReader_QuirkPreprocessing(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("line\r", 3000) // the convention is decided on the first 8 KiB only
	tests := map[string]string{
		"BOM":                 "\xef\xbb\xbfFrom: a@example.com\r\n\r\nhi\r\n",
		"BOM only":            "\xef\xbb\xbf",
		"BOM and blank lines": "\xef\xbb\xbf\r\n\n\rFrom: a@example.com\r\n\r\nhi\r\n",
		"blank lines only":    "\r\n\r\n\n\r",
		"empty":               "",
		"bare CR":             "From: a@example.com\rSubject: mac\r\rline1\rline2\r",
		"bare CR, LF later":   "From: a@example.com\rSubject: mac\r\r" + long + "\nlast\r",
		"CR CR LF":            "From: a@example.com\r\r\nSubject: doubled\r\r\n\r\r\nline1\r\r\r\nline2\r\r\n\r\r",
		"CR CR LF at the end": "From: a@example.com\r\r\n\r\r\nbody\r\r",
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assertSameAsParse(t, []byte(raw), Limits{}, true, streamBufSize, 16)
		})
	}
}

// TestParseReader_NoPartFallback: a multipart whose first part header is
// broken is read as text from what the multipart reader had consumed when
// it failed, which depends on read sizes; ParseReader must read its body the
// way Parse's bytes.Reader does, whatever the chunks of the stream.
func TestParseReader_NoPartFallback(t *testing.T) {
	t.Parallel()
	for _, preamble := range []string{strings.Repeat("preamble line\r\n", 400), strings.Repeat(strings.Repeat("x", 70)+"\r\n", 113)} {
		raw := []byte("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
			preamble + "--b\r\nBad Key: x\r\n\r\n" + strings.Repeat("tail line\r\n", 3000) + "--b--\r\n")
		m := mustParse(t, raw)
		if !hasWarning(m, "without any part") || !strings.Contains(m.Text, "tail line") {
			t.Fatalf("the fixture no longer takes the fallback: warnings %q", m.Warnings)
		}
		assertSameAsParse(t, raw, Limits{}, true, streamBufSize, 16)
		assertSameAsParse(t, append([]byte("\r\n"), bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\r"))...), Limits{}, true, streamBufSize)
	}
}

// TestLineEndTransforms compares the streaming line-end rewrites with the
// in-memory ones on every split of tricky inputs.
func TestLineEndTransforms(t *testing.T) {
	t.Parallel()
	inputs := []string{"", "\r", "\r\r", "\r\n", "\r\r\n", "\r\r\r\n", "a\rb\r\nc\r\r\nd\r", "\r\r\r\r\n\n\r", strings.Repeat("x\r\r\n", 3000) + "\r"}
	r := rand.New(rand.NewPCG(7, 8))
	for range 300 {
		inputs = append(inputs, string(randomEncoded(r, r.IntN(40), "a\r\r\n")))
	}
	for _, in := range inputs {
		for name, tt := range map[string]struct {
			t    transform.Transformer
			want []byte
		}{
			"CR":     {lineEndFix{mode: lineEndsCR}, crToCRLF([]byte(in))},
			"CRCRLF": {lineEndFix{mode: lineEndsCRCRLF}, bytes.ReplaceAll([]byte(in), []byte("\r\r\n"), []byte("\r\n"))},
		} {
			for _, r := range []io.Reader{strings.NewReader(in), iotest.OneByteReader(strings.NewReader(in)), &oddReader{r: strings.NewReader(in)}} {
				got, err := io.ReadAll(transform.NewReader(r, tt.t))
				if err != nil || !bytes.Equal(got, tt.want) {
					t.Errorf("%s(%q) = %q, %v; want %q", name, in[:min(len(in), 20)], got[:min(len(got), 20)], err, tt.want[:min(len(tt.want), 20)])
				}
			}
		}
	}
}

// TestLineClass: the incremental classifier agrees with headerLineKind on
// whole lines, whatever the pieces it is fed.
func TestLineClass(t *testing.T) {
	t.Parallel()
	lines := []string{"a", "From: x", "From : x", "From \t: x", "Fr om: x", " cont", "\tcont", ": v", "::", "a:", "a b", "a\x00:",
		"a\xff:", "\xff", "abc \t", "abc \tx:", "x\r", "x:\r", "key\x7f: v", "k!#$%&'*+-.^_`|~: v", "\r"}
	for _, line := range lines {
		want := headerLineKind([]byte(line))
		for split := 0; split <= len(line); split++ {
			var c lineClass
			d, kind := c.scan([]byte(line[:split]))
			if d < 0 {
				d, kind = c.scan([]byte(line[split:] + "\n"))
			}
			if d < 0 || kind != want {
				t.Errorf("%q split at %d: kind %v (at %d), headerLineKind says %v", line, split, kind, d, want)
			}
		}
	}
}

// failingReader returns data, then err.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestParseReader_ReadError(t *testing.T) {
	t.Parallel()
	errDisk := errors.New("blob read failed")
	raw := genMultipart(30<<10, 7)
	for _, cut := range []int{0, 10, 500, len(raw) / 2, len(raw)} {
		m, err := ParseReader(&failingReader{data: raw[:cut], err: errDisk}, Limits{})
		if !errors.Is(err, errDisk) || errors.Is(err, ErrUnparseable) || m != nil {
			t.Errorf("cut at %d: message %v, error %v; want a wrapped read error only", cut, m != nil, err)
		}
	}
	// A reader that never makes progress is an error too, not a hang.
	_, err := ParseReader(iotest.ErrReader(nil), Limits{})
	if !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("a reader returning 0, nil forever: %v", err)
	}
}

// countingReader counts the bytes read and whether EOF was seen.
type countingReader struct {
	r   io.Reader
	n   int
	eof bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	c.eof = c.eof || errors.Is(err, io.EOF)
	return n, err
}

// TestParseReader_ReadsToEOF: when parsing stops early (no header at all, or
// the part limit), the rest of the input is still read, and counted in Size
// and RawSHA256.
func TestParseReader_ReadsToEOF(t *testing.T) {
	t.Parallel()
	tail := bytes.Repeat([]byte("tail "), 100000)
	for name, raw := range map[string][]byte{
		"no header":   append([]byte("just text\r\n"), tail...),
		"blank lines": bytes.Repeat([]byte("\r\n"), 100000),
		"part limit":  append(nestedBomb(50), tail...),
	} {
		cr := &countingReader{r: bytes.NewReader(raw)}
		m, err := ParseReader(cr, Limits{MaxDepth: 3})
		if !cr.eof || cr.n != len(raw) {
			t.Errorf("%s: read %d of %d bytes, EOF %v", name, cr.n, len(raw), cr.eof)
		}
		if err == nil {
			sum := sha256.Sum256(raw)
			if m.Size != len(raw) || m.RawSHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: Size %d, hash %s", name, m.Size, m.RawSHA256)
			}
		} else if !errors.Is(err, ErrUnparseable) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// bigMail generates, without holding it, a mail with a short text part and
// a base64 attachment of attach bytes in 76-column lines. The attachment
// cycles through a few kilobytes of pseudo-random lines, so generating it
// is mostly copying (the race detector makes byte loops slow).
type bigMail struct {
	stage   int
	pending []byte
	left    int64    // attachment bytes still to encode
	lines   [][]byte // encoded lines of 57 bytes each, with CRLF
	next    int
}

func newBigMail(attach int64) *bigMail {
	g := &bigMail{left: attach}
	x := uint64(0x9e3779b97f4a7c15)
	raw := make([]byte, 57)
	for range 97 {
		for i := range raw {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			raw[i] = byte(x)
		}
		g.lines = append(g.lines, append([]byte(base64.StdEncoding.EncodeToString(raw)), '\r', '\n'))
	}
	return g
}

const bigMailHead = "From: Big Sender <big@example.com>\r\nTo: support@example.com\r\nSubject: the scan you asked for\r\n" +
	"Message-ID: <big@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
	"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, the scan is attached.\r\n\r\n" +
	"--b1\r\nContent-Type: application/pdf; name=\"scan.pdf\"\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"

func (g *bigMail) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(g.pending) == 0 {
			switch {
			case g.stage == 0:
				g.pending, g.stage = []byte(bigMailHead), 1
			case g.stage == 1 && g.left >= 57:
				g.pending = g.lines[g.next%len(g.lines)]
				g.next++
				g.left -= 57
			case g.stage == 1 && g.left > 0:
				last := make([]byte, g.left)
				g.pending = append([]byte(base64.StdEncoding.EncodeToString(last)), '\r', '\n')
				g.left = 0
			case g.stage == 1:
				g.pending, g.stage = []byte("--b1--\r\n"), 2
			default:
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			}
		}
		c := copy(p[n:], g.pending)
		g.pending = g.pending[c:]
		n += c
	}
	return n, nil
}

// TestParseReader_BigMailMemory parses a 64 MB mail (48 MB attachment)
// from a generating reader and asserts that the bytes allocated on the way
// are a small fraction of it: reading the mail or the attachment into
// memory would allocate at least their size. It runs alone (not parallel),
// so TotalAlloc counts this parse only.
func TestParseReader_BigMailMemory(t *testing.T) {
	const attach = 48 << 20
	h := sha256.New()
	size, err := io.Copy(h, newBigMail(attach))
	if err != nil {
		t.Fatal(err)
	}
	wantSum := hex.EncodeToString(h.Sum(nil))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := ParseReader(newBigMail(attach), Limits{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	const bound = 16 << 20
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d bytes allocated to parse %d bytes", alloc, size)
	if alloc > bound {
		t.Errorf("ParseReader allocated %d bytes for a %d-byte mail; want under %d", alloc, size, bound)
	}
	if m.Size != int(size) || m.RawSHA256 != wantSum {
		t.Errorf("Size %d, RawSHA256 %s; want %d, %s", m.Size, m.RawSHA256, size, wantSum)
	}
	want := []Attachment{{Filename: "scan.pdf", ContentType: "application/pdf", Size: attach}}
	if d := cmp.Diff(want, m.Attachments); d != "" || m.Text != "Hello, the scan is attached.\n" || m.Subject != "the scan you asked for" {
		t.Errorf("attachments (-want +got):\n%s\ntext %q, subject %q", d, m.Text, m.Subject)
	}
}

// TestParse_TextJoinAfterCR: a plain part ending in CR joins the next one
// as the old strings.ReplaceAll over the joined text did ("a\r"+"\n\n"+"b"
// is "a\n\nb", not "a\n\n\nb").
func TestParse_TextJoinAfterCR(t *testing.T) {
	t.Parallel()
	raw := crlf(`From: a@example.com
Content-Type: multipart/mixed; boundary=b

--b
Content-Type: text/plain
Content-Transfer-Encoding: quoted-printable

a=0D
--b
Content-Type: text/plain

b
--b
Content-Type: text/plain
Content-Transfer-Encoding: quoted-printable

c=0D=0Dd=0D=0A=0D=0Ae
--b--
`)
	m := mustParse(t, raw)
	if want := "a\n\nb\n\nc\n\nd\n\ne"; m.Text != want {
		t.Errorf("Text = %q, want %q", m.Text, want)
	}
}
