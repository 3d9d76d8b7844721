package threading

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The bomb tests assert on the size of what Parse returns and on the limits
// it reports, never on time: a regression to unbounded work shows up as a
// test timeout, and to unbounded output as a failed assertion.

// nestedBomb builds depth levels of multipart/mixed, each inside the last.
func nestedBomb(depth int) []byte {
	var b bytes.Buffer
	b.WriteString("From: bomb@example.com\r\nSubject: nesting\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n")
	for i := 1; i <= depth; i++ {
		fmt.Fprintf(&b, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i-1, i)
	}
	fmt.Fprintf(&b, "--b%d\r\nContent-Type: text/plain\r\n\r\ndeepest\r\n", depth)
	for i := depth; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return b.Bytes()
}

func TestParse_NestingBomb(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		depth int
		lim   Limits
	}{
		{depth: 10000, lim: Limits{}},
		{depth: 50, lim: Limits{MaxDepth: 5}},
	} {
		t.Run(fmt.Sprint(tt.depth), func(t *testing.T) {
			raw := nestedBomb(tt.depth)
			m, err := Parse(raw, tt.lim)
			if err != nil {
				t.Fatal(err)
			}
			lim := tt.lim.withDefaults()
			checkInvariants(t, m, raw, lim)
			if len(m.PartTypes) != lim.MaxDepth+1 {
				t.Errorf("visited %d entities, want MaxDepth+1 = %d", len(m.PartTypes), lim.MaxDepth+1)
			}
			if m.Text != "" {
				t.Errorf("text below the depth limit was read: %q", m.Text)
			}
			if !hasWarning(m, "nesting deeper than") {
				t.Errorf("Warnings = %q", m.Warnings)
			}
		})
	}
	// Just inside the limit the text is found.
	m := mustParse(t, nestedBomb(defaultMaxDepth-1))
	if strings.TrimSpace(m.Text) != "deepest" {
		t.Errorf("Text at depth %d = %q", defaultMaxDepth, m.Text)
	}
}

func TestParse_ManyParts(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	b.WriteString("From: bomb@example.com\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=p\r\n\r\n")
	for i := range 10000 {
		fmt.Fprintf(&b, "--p\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=f%d.bin\r\n\r\nxx\r\n", i)
	}
	b.WriteString("--p--\r\n")
	raw := b.Bytes()
	m, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, m, raw, Limits{}.withDefaults())
	if len(m.PartTypes) != defaultMaxParts {
		t.Errorf("visited %d entities, want %d", len(m.PartTypes), defaultMaxParts)
	}
	if len(m.Attachments) != defaultMaxParts-1 {
		t.Errorf("%d attachments, want %d", len(m.Attachments), defaultMaxParts-1)
	}
	if !hasWarning(m, "more than 1000 MIME parts") {
		t.Errorf("Warnings = %q", m.Warnings)
	}
}

func TestParse_HugeHeader(t *testing.T) {
	t.Parallel()
	const fiveMB = 5 << 20
	t.Run("one giant field", func(t *testing.T) {
		t.Parallel()
		var b bytes.Buffer
		b.WriteString("From: a@example.com\r\nX-Junk: ")
		b.Write(bytes.Repeat([]byte("a"), fiveMB))
		b.WriteString("\r\nSubject: after the junk\r\n\r\nbody\r\n")
		m, err := Parse(b.Bytes(), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Has("X-Junk") {
			t.Error("the oversized field was kept")
		}
		if m.Subject != "after the junk" || m.From.Addr != "a@example.com" || m.Text != "body\n" {
			t.Errorf("fields around the junk lost: subject %q, from %q, text %q", m.Subject, m.From.Addr, m.Text)
		}
		if !hasWarning(m, "header larger than") {
			t.Errorf("Warnings = %q", m.Warnings)
		}
	})
	t.Run("folded giant field", func(t *testing.T) {
		t.Parallel()
		var b bytes.Buffer
		b.WriteString("From: a@example.com\r\nX-Junk: start\r\n")
		for b.Len() < fiveMB {
			b.WriteString(" continued continued continued continued continued\r\n")
		}
		b.WriteString("Subject: after\r\n\r\nbody\r\n")
		m, err := Parse(b.Bytes(), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Has("X-Junk") || m.Subject != "after" {
			t.Errorf("X-Junk kept %v, Subject %q", m.Header.Has("X-Junk"), m.Subject)
		}
	})
	t.Run("many fields", func(t *testing.T) {
		t.Parallel()
		var b bytes.Buffer
		b.WriteString("From: a@example.com\r\n")
		for i := 0; b.Len() < fiveMB; i++ {
			fmt.Fprintf(&b, "X-F%d: v\r\n", i)
		}
		b.WriteString("\r\nbody\r\n")
		m, err := Parse(b.Bytes(), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if n := m.Header.Len(); n > maxHeaderFields {
			t.Errorf("%d header fields kept, limit %d", n, maxHeaderFields)
		}
		if m.Text != "body\n" {
			t.Errorf("Text = %q: the body was not found after the huge header", m.Text)
		}
	})
	t.Run("no end", func(t *testing.T) {
		t.Parallel()
		// Only the first field fits: what counts is that the rest is
		// dropped, not buffered.
		raw := append([]byte("From: a@example.com\r\nX-Junk: "), bytes.Repeat([]byte("b"), fiveMB)...)
		m, err := Parse(raw, Limits{MaxHeaderBytes: 4096})
		if err != nil {
			t.Fatal(err)
		}
		var hdr bytes.Buffer
		fields := m.Header.Fields()
		for fields.Next() {
			hdr.WriteString(fields.Key() + ": " + fields.Value() + "\r\n")
		}
		if hdr.Len() > 4096 {
			t.Errorf("kept %d header bytes, limit 4096", hdr.Len())
		}
	})
}

func TestParse_HugeBodies(t *testing.T) {
	t.Parallel()
	t.Run("plain text", func(t *testing.T) {
		t.Parallel()
		raw := append([]byte("From: a@example.com\r\nSubject: big\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"),
			bytes.Repeat([]byte("=41=42=43 "), 1<<20)...)
		m, err := Parse(raw, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Text) != defaultMaxTextBytes {
			t.Errorf("len(Text) = %d, want %d", len(m.Text), defaultMaxTextBytes)
		}
	})
	t.Run("stray > in HTML", func(t *testing.T) {
		t.Parallel()
		// html2text re-reads everything since the last "<" at each ">";
		// without escapeStrayGT this input takes hours.
		raw := append([]byte("From: a@example.com\r\nSubject: gt\r\nContent-Type: text/html\r\n\r\n<p>"),
			bytes.Repeat([]byte(">"), 2<<20)...)
		m, err := Parse(raw, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Text) > defaultMaxTextBytes || !strings.HasPrefix(m.Text, ">>>") {
			t.Errorf("len(Text) = %d, prefix %q", len(m.Text), m.Text[:min(10, len(m.Text))])
		}
	})
	t.Run("many references", func(t *testing.T) {
		t.Parallel()
		var b strings.Builder
		b.WriteString("From: a@example.com\r\nReferences:")
		for i := range 20000 {
			fmt.Fprintf(&b, " <r%d@example.com>", i)
		}
		b.WriteString("\r\nSubject: refs\r\n\r\nbody\r\n")
		m, err := Parse([]byte(b.String()), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if len(m.References) != maxRefs || m.References[0] != "r0@example.com" || m.References[maxRefs-1] != "r19999@example.com" {
			t.Errorf("References: %d kept, first %q, last %q", len(m.References), m.References[0], m.References[len(m.References)-1])
		}
	})
}

func TestParse_NeverPanicsOnTruncations(t *testing.T) {
	t.Parallel()
	// Every prefix of a rich message: each cut lands in a different state of
	// the header scanner, the MIME walker and the decoders.
	raw := crlf(`From: "A =?utf-8?q?B?=" <a@example.com>
Subject: =?utf-8?b?w4RuZGVydW5n?=
Content-Type: multipart/mixed; boundary="o"

--o
Content-Type: multipart/alternative; boundary=i

--i
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

caf=E9 =
--i
Content-Type: text/html

<p>x &amp; y</p>
--i--
--o
Content-Type: application/octet-stream; name*=utf-8''f%C3%BC.bin
Content-Transfer-Encoding: base64

AAEC
--o--
`)
	for i := range len(raw) + 1 {
		m, err := Parse(raw[:i], Limits{})
		if err != nil {
			if errors.Is(err, errParserPanic) || !errors.Is(err, ErrUnparseable) {
				t.Fatalf("prefix %d: %v", i, err)
			}
			continue
		}
		checkInvariants(t, m, raw[:i], Limits{}.withDefaults())
	}
}

func TestSubjectFunctions_LongInputs(t *testing.T) {
	t.Parallel()
	// Each of these was quadratic in a naive implementation; at 1 MiB a
	// quadratic pass does not finish within the test timeout.
	blobs := strings.Repeat("[x] ", 1<<18) + "subject"
	if got := BaseSubject(blobs); got != "subject" {
		t.Errorf("BaseSubject(blobs) = %q", got[:min(len(got), 20)])
	}
	onlyBlobs := strings.Repeat("[x]", 1<<18) + "[last]"
	if got := BaseSubject(onlyBlobs); got != "[last]" {
		t.Errorf("BaseSubject(only blobs) = %q", got[:min(len(got), 20)])
	}
	prefixes := strings.Repeat("Re: [l] Fwd: ", 1<<16) + "subject (fwd)"
	if got := BaseSubject(prefixes); got != "subject" {
		t.Errorf("BaseSubject(prefixes) = %q", got[:min(len(got), 20)])
	}
	brackets := strings.Repeat("[Ticket#", 1<<17) + "5]"
	if id, ok := FindTag(brackets, "Ticket"); !ok || id != 5 {
		t.Errorf("FindTag(brackets) = %d, %v", id, ok)
	}
	if got := AddTag(brackets, "Ticket", 5); got != brackets {
		t.Error("AddTag added a tag that is already present")
	}
}
