package agent

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"
)

// FuzzParse checks Parse's invariants on arbitrary text. The committed
// seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add("#close\nThanks")
	f.Fuzz(func(t *testing.T, text string) {
		p := Parse(text)
		norm := normaliseNewlines(text)

		// Body is the tail of the text, starting at a non-blank line
		// that is not a command line.
		if !strings.HasSuffix(norm, p.Body) {
			t.Fatalf("Body %q is not a suffix of the text", p.Body)
		}
		block := norm[:len(norm)-len(p.Body)]
		if p.Body != "" {
			first, _, _ := strings.Cut(p.Body, "\n")
			if trimLine(first) == "" {
				t.Fatalf("Body starts with a blank line: %q", p.Body)
			}
			if _, _, ok := splitCommand(trimLine(first)); ok {
				t.Fatalf("Body starts with a command line: %q", first)
			}
			if block != "" && !strings.HasSuffix(block, "\n") {
				t.Fatalf("block %q does not end at a line break", block)
			}
		}

		// Every non-blank line of the block is a command line, and each
		// is accounted for by a Command or an Error (up to the cap).
		var cmdLines []int
		for i, l := range strings.Split(strings.TrimSuffix(block, "\n"), "\n") {
			tl := trimLine(l)
			if tl == "" {
				continue
			}
			if _, _, ok := splitCommand(tl); !ok {
				t.Fatalf("block line %d %q is not a command line", i+1, l)
			}
			cmdLines = append(cmdLines, i+1)
		}
		seen := map[int]bool{}
		for _, c := range p.Commands {
			seen[c.Line] = true
		}
		for _, e := range p.Errors {
			seen[e.Line] = true
			if e.Problem == "" {
				t.Fatalf("Error without a problem: %+v", e)
			}
			if utf8.RuneCountInString(e.Text) > maxErrorText+1 {
				t.Fatalf("Error.Text too long: %d runes", utf8.RuneCountInString(e.Text))
			}
		}
		for i, l := range cmdLines {
			if i > maxCommandLines {
				break
			}
			if !seen[l] {
				t.Fatalf("command line %d is neither a Command nor an Error", l)
			}
		}
		if len(p.Commands) > maxCommandLines {
			t.Fatalf("%d commands, more than the cap %d", len(p.Commands), maxCommandLines)
		}

		// Each command is valid and its argument normalised: writing it
		// back and parsing it again gives the same command.
		last := 0
		for _, c := range p.Commands {
			if c.Line <= last {
				t.Fatalf("commands out of order: line %d after %d", c.Line, last)
			}
			last = c.Line
			again := Parse("#" + string(c.Kind) + " " + c.Arg)
			if len(again.Errors) != 0 || len(again.Commands) != 1 ||
				again.Commands[0].Kind != c.Kind || again.Commands[0].Arg != c.Arg {
				t.Fatalf("command %+v does not round-trip: %+v", c, again)
			}
			if c.Kind == KindCC && c.Arg[0] != '+' && c.Arg[0] != '-' {
				t.Fatalf("cc argument without sign: %q", c.Arg)
			}
		}

		if s, ok := p.Status(); ok {
			if s != "closed" && s != "resolved" && s != "pending" && s != "open" {
				t.Fatalf("Status() = %q", s)
			}
		}
		if !p.CommandsOnly() && p.Body == "" {
			t.Fatal("CommandsOnly is false without a body")
		}
	})
}

// FuzzVerify checks that no Authentication-Results value makes Verify
// panic, and that a value not naming the trusted server never passes.
func FuzzVerify(f *testing.F) {
	f.Add("mx.helpdesk.example; dkim=pass (1024-bit key; secure) header.d=example.com header.b=\"x\"")
	f.Add("mx.helpdesk.example 1; spf=pass smtp.mailfrom=example.com; dmarc=pass header.from=example.com")
	f.Add("mx.helpdesk.example; arc=pass header.oldest-pass=0")
	f.Add("mx.helpdesk.example; dkim = pass reason=\"a; b\" header.i=@example.com")
	f.Fuzz(func(t *testing.T, v string) {
		var h mail.Header
		h.Add("Authentication-Results", v)
		got := Verify(h, "alice@example.com", trusted)
		if got.Reason == "" {
			t.Fatal("empty Reason")
		}
		if got.OK {
			id, _, err := parseAuthResults(v)
			if err != nil || !strings.EqualFold(id, trusted) {
				t.Fatalf("OK for a field that is malformed (%v) or from %q", err, id)
			}
		}
	})
}
