package threading

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
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
