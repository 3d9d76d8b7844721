package threading

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// fuzzLimits are small so that each input explores the limits quickly.
var fuzzLimits = Limits{MaxParts: 50, MaxDepth: 8, MaxTextBytes: 64 << 10, MaxHeaderBytes: 64 << 10}

// FuzzParse checks that Parse never panics and that every Message it returns
// keeps the documented invariants. Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte("From: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n"))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/html\n\n<p>x</p>\n--b--\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := Parse(raw, fuzzLimits)
		if err != nil {
			if errors.Is(err, errParserPanic) {
				t.Fatalf("panic: %v", err)
			}
			if !errors.Is(err, ErrUnparseable) {
				t.Fatalf("error does not wrap ErrUnparseable: %v", err)
			}
			return
		}
		lim := fuzzLimits.withDefaults()
		if len(m.Text) > lim.MaxTextBytes || len(m.PartTypes) > lim.MaxParts {
			t.Fatalf("limits exceeded: text %d, parts %d", len(m.Text), len(m.PartTypes))
		}
		for _, s := range []string{m.Text, m.Subject, m.From.Name, m.From.Addr, m.MessageID} {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8: %q", s)
			}
		}
		if strings.ContainsAny(m.Subject, "\r\n") || strings.Contains(m.Text, "\r") {
			t.Fatalf("line breaks not normalised: subject %q", m.Subject)
		}
		if m.Size != len(raw) || m.DedupeKey() == "" {
			t.Fatalf("Size %d, DedupeKey %q", m.Size, m.DedupeKey())
		}
		_ = BaseSubject(m.Subject)
	})
}

// FuzzFindTag checks FindTag, AddTag and BaseSubject on arbitrary subjects
// and prefixes. Seeds: testdata/fuzz/FuzzFindTag.
func FuzzFindTag(f *testing.F) {
	f.Add("Re: [Ticket#1042] Printer", "Ticket", uint64(1042))
	f.Add("[ ticket # 7 ]", "Ticket", uint64(7))
	f.Fuzz(func(t *testing.T, subject, prefix string, id uint64) {
		if got, ok := FindTag(subject, prefix); ok && got == 0 {
			t.Fatalf("FindTag(%q, %q) accepted id 0", subject, prefix)
		}
		tagged := AddTag(subject, prefix, id)
		if strings.ContainsAny(tagged, "\r\n") || !utf8.ValidString(tagged) {
			t.Fatalf("AddTag(%q) = %q: not a clean header value", subject, tagged)
		}
		if id > 0 && isSimplePrefix(prefix) {
			found := false
			for _, have := range findTags(tagged, prefix, maxTagsScanned) {
				found = found || have == id
			}
			if !found && len(findTags(tagged, prefix, maxTagsScanned+1)) <= maxTagsScanned {
				t.Fatalf("AddTag(%q, %q, %d) = %q: tag not found again", subject, prefix, id, tagged)
			}
		}
		base := BaseSubject(subject)
		if again := BaseSubject(base); again != base {
			t.Fatalf("BaseSubject not idempotent: %q → %q → %q", subject, base, again)
		}
	})
}

// isSimplePrefix: prefixes for which AddTag's output must be recognised by
// FindTag (a prefix with "#", "[" or blanks at its ends is ambiguous).
func isSimplePrefix(p string) bool {
	if p == "" || len(p) > 32 {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// FuzzParseReader checks that ParseReader gives exactly what Parse gives.
// knobs picks the limits (bit 0: tiny, so every limit is hit), the
// look-ahead (bits 1–2: tiny ones make most header lines "long") and the
// reader (bits 3–4: whole, one byte, odd chunks). Seeds: FuzzParse's and
// testdata/fuzz/FuzzParseReader.
func FuzzParseReader(f *testing.F) {
	for _, raw := range fuzzParseSeeds(f) {
		f.Add(raw, byte(0))
		f.Add(raw, byte(0b01011))
	}
	f.Fuzz(func(t *testing.T, raw []byte, knobs byte) {
		lim := fuzzLimits
		if knobs&1 != 0 {
			lim = Limits{MaxParts: 3, MaxDepth: 2, MaxTextBytes: 40, MaxHeaderBytes: 48}
		}
		size := [...]int{streamBufSize, 16, 17, 100}[knobs>>1&3]
		var r io.Reader = bytes.NewReader(raw)
		switch knobs >> 3 & 3 {
		case 1:
			r = iotest.OneByteReader(r)
		case 2:
			r = &oddReader{r: r}
		}
		want, wantErr := Parse(raw, lim)
		got, err := parseReader(r, lim, size)
		if errors.Is(err, errParserPanic) || errString(err) != errString(wantErr) {
			t.Fatalf("error %v, Parse gave %v", err, wantErr)
		}
		if d := cmp.Diff(want, got, messageCmp); d != "" {
			t.Fatalf("ParseReader differs from Parse (-Parse +ParseReader):\n%s", d)
		}
	})
}

// fuzzParseSeeds reads the inputs of FuzzParse's seed corpus.
func fuzzParseSeeds(tb testing.TB) [][]byte {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	entries, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		// "go test fuzz v1" then one []byte("...") line.
		_, arg, _ := strings.Cut(string(b), "\n")
		arg = strings.TrimSpace(arg)
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(arg, "[]byte("), ")"))
		if err != nil {
			tb.Fatalf("%s: %v", e.Name(), err)
		}
		out = append(out, []byte(s))
	}
	if len(out) < 20 {
		tb.Fatalf("only %d FuzzParse seeds", len(out))
	}
	return out
}
