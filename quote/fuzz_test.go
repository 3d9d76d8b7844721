package quote

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzStrip checks the invariants of Split/Strip on arbitrary input (seeds
// in testdata/fuzz/FuzzStrip) and that StripHTML survives the same bytes.
func FuzzStrip(f *testing.F) {
	f.Add("Hello\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n> hi\n")
	f.Add("<div>Hi</div><blockquote>old</blockquote>")
	f.Fuzz(func(t *testing.T, in string) {
		reply, quoted := Split(in)
		if s := Strip(in); s != reply {
			t.Fatalf("Strip = %q, Split reply = %q", s, reply)
		}
		norm := normalizeNewlines(in)
		hasText := strings.IndexFunc(norm, func(r rune) bool { return !isInvisible(r) }) >= 0
		if hasText && reply == "" {
			t.Fatalf("empty reply for input with text: %q", in)
		}
		if !hasText && (reply != "" || quoted != "") {
			t.Fatalf("blank input gave %q, %q", reply, quoted)
		}
		// The reply is a contiguous run of the input's lines.
		if !strings.Contains(norm, reply) {
			t.Fatalf("reply %q is not part of the input %q", reply, norm)
		}
		if len(reply)+len(quoted) > len(norm)+2 {
			t.Fatalf("reply and quoted (%d+%d bytes) are longer than the input (%d)", len(reply), len(quoted), len(norm))
		}
		if utf8.ValidString(in) && (!utf8.ValidString(reply) || !utf8.ValidString(quoted)) {
			t.Fatalf("valid UTF-8 input gave invalid output")
		}
		_ = StripHTML(in)
	})
}

// benchInputs are 1 MiB bodies that make Strip look at every line.
func benchInputs() map[string]string {
	const size = 1 << 20
	fill := func(unit string) string {
		return strings.Repeat(unit, size/len(unit)+1)[:size]
	}
	return map[string]string{
		// Top-posted reply above a long quote with nested headers.
		"top-posted": "Thanks, that fixed it.\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n" +
			fill("> On Sun, 31 Dec 2023 at 09:00, Alice <alice@example.com> wrote:\n> Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n>\n"),
		// Inline answers all the way down: every quote block is checked.
		"inline": "Hi,\n\nOn Mon, 1 Jan 2024 at 10:00, Bob <bob@example.com> wrote:\n" +
			fill("> Is this the question?\n> It wraps over two lines.\n\nYes, and this is the answer.\n\n"),
		// Prose whose lines look like the start of a header but never end
		// one: every line opens a multi-line window.
		"header-like prose": fill("On 1 May we met at 10:00 and talked\nabout the plan for 2024 and the budget\n\n"),
		// Many short field lines that never form a block.
		"field-like prose": fill("To: everyone\nDate: soon\n\n"),
		// One huge line.
		"single line": fill("word "),
		// Blank lines only.
		"blank": fill("\n"),
	}
}

func BenchmarkStrip(b *testing.B) {
	for name, in := range benchInputs() {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				_ = Strip(in)
			}
		})
	}
}

func BenchmarkStripHTML(b *testing.B) {
	const size = 1 << 20
	unit := `<div class="x"><p>Some <b>bold</b> text &amp; a <a href="https://example.com/">link</a>.</p><br></div>`
	in := `<div>Thanks!</div>` + strings.Repeat(unit, size/len(unit)) +
		`<div class="gmail_quote"><blockquote>` + strings.Repeat("<div>old</div>", 1000) + `</blockquote></div>`
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		_ = StripHTML(in)
	}
}
