package quote

import "testing"

func TestStripHTML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain text", "Hello", "Hello"},
		{"gmail", `<div dir="ltr">Hello</div><div><br></div><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Jan 1, 2024 at 10:00 AM Bob &lt;<a href="mailto:bob@example.com">bob@example.com</a>&gt; wrote:<br></div><blockquote class="gmail_quote"><div>Hi</div></blockquote></div>`,
			"Hello"},
		{"gmail signature", `<div>Reply here<div class="gmail_signature">John | ACME</div></div>`, "Reply here"},
		{"outlook web: history after the marker, not inside it",
			`<div dir="ltr">Thanks, will do.</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><font face="Calibri"><b>From:</b> Bob &lt;bob@example.com&gt;<br><b>Sent:</b> Monday<br></font></div><div>quoted body</div>`,
			"Thanks, will do."},
		{"outlook web forwarded class prefix", `<div>Hi<div><br></div><div>Thanks,</div><div>Alex</div></div><div class="x_gmail_quote">old</div>`, "Hi\n\nThanks,\nAlex"},
		{"outlook desktop header block",
			`<p class=MsoNormal>Hi.<o:p></o:p></p><div style='border:none;border-top:solid #B5C4DF 1.0pt'><p class=MsoNormal><b>Von:</b> Bob [mailto:bob@example.de] <br><b>Gesendet:</b> Montag, 1. Januar 2024 10:00<br><b>An:</b> Alice<br><b>Betreff:</b> Test</p></div><p class=MsoNormal>Hallo</p>`,
			"Hi."},
		{"yahoo", `<html><head><style>p{color:red}</style><title>x</title></head><body><div class="ydp1"><div>Sure &amp; thanks!</div><div><br></div></div><div id="ydp9yahoo_quoted_1234" class="ydp9yahoo_quoted"><div>On Monday, Bob wrote:</div><div>old</div></div></body></html>`,
			"Sure & thanks!"},
		{"thunderbird", `Hi.<br><div class="moz-cite-prefix">On 26.06.2014 14:41, Alexander L wrote:<br></div><blockquote type="cite">old</blockquote><br><div class="moz-signature">-- <br>Alex</div>`, "Hi."},
		{"outlook mac", `<div>Reply</div><span id="OLK_SRC_BODY_SECTION"><div>From: Bob</div><div>Hi</div></span>`, "Reply"},
		{"nested blockquotes", `<div>New</div><blockquote>a<blockquote>b</blockquote>c</blockquote>`, "New"},
		{"attribution outside the blockquote", `<div>New</div><div>On Mon, 1 Jan 2024 at 10:00, Bob &lt;bob@example.com&gt; wrote:</div><blockquote>old</blockquote>`, "New"},
		{"paragraphs, br variants and links", `<p>Line one<br />Line two</p><p>Para 2 with <a href="https://example.com/x">a link</a> and <a href="mailto:a@b.c">a@b.c</a>.</p><!-- comment > with gt --><blockquote type="cite">quoted</blockquote>`,
			"Line one\nLine two\nPara 2 with a link <https://example.com/x> and a@b.c."},
		{"table", `<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>after`, "a b\nc d\nafter"},
		{"list", `<ul><li>one</li><li>two</li></ul>`, "- one\n- two"},
		{"literal angle brackets", `a < b and c > d<br>x`, "a < b and c > d\nx"},
		{"script content is not markup", `<div>Hi</div><script>var a = "</div>";</script><div>there</div>`, "Hi\nthere"},
		{"quoted plain text in html", `Hello<br><br>&gt; Subject: Test<br>&gt; Hi<br>`, "Hello"},
		{"signature in text", `<div>Hello</div><div><br></div><div>Sent from my iPhone</div>`, "Hello"},
		{"unterminated tag", `<div>Hello</div><div class="x`, "Hello"},
		{"unterminated comment", `<div>Hello</div><!-- never closed <div>x</div>`, "Hello"},
		{"unclosed quote container", `<div>Hello</div><blockquote><div>old`, "Hello"},
		// Everything quoted: the body comes back as text.
		{"only a quote", `<blockquote>only a quote</blockquote>`, "only a quote"},
		{"cut marker first", `<div id="divRplyFwdMsg"><b>From:</b> Bob</div><div>forwarded text</div>`, "From: Bob\nforwarded text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := StripHTML(tc.in); got != tc.want {
				t.Errorf("StripHTML(%q)\n got: %q\nwant: %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestTagAttr(t *testing.T) {
	t.Parallel()
	h := `<div data-x='a>b' ID = "main id" class=plain hidden title="it's">`
	tag, next, ok := readTag(h, asciiLower(h), 0)
	if !ok || next != len(h) || tag.name != "div" {
		t.Fatalf("readTag = %+v, %d, %v", tag, next, ok)
	}
	for name, want := range map[string]string{"id": "main id", "class": "plain", "title": "it's", "data-x": "a>b", "hidden": "", "missing": ""} {
		if got := tag.attr(h, name); got != want {
			t.Errorf("attr(%q) = %q, want %q", name, got, want)
		}
	}
}
