package outbox

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func baseEnvelope() Envelope {
	return Envelope{
		From:       Address{"Example Support", "support@example.com"},
		To:         []Address{{"Ann Example", "ann@example.org"}},
		Cc:         []Address{{"", "bob@example.org"}},
		ReplyTo:    []Address{{"Example Support", "support@example.com"}},
		Subject:    "[Ticket#1042] Re: Printer on 3rd floor offline",
		Text:       "Hello Ann,\n\nwe received your request.\n",
		MessageID:  "t1042.r1.sig@helpdesk.example.com",
		InReplyTo:  "abc@mail.example.org",
		References: []string{"root@mail.example.org", "abc@mail.example.org"},
		Date:       time.Date(2026, 11, 24, 10, 0, 2, 0, time.UTC),
		Headers:    [][2]string{{"Auto-Submitted", "auto-replied"}, {"X-Auto-Response-Suppress", "All"}},
	}
}

func mustCompose(t *testing.T, e Envelope) []byte {
	t.Helper()
	raw, err := Compose(e)
	if err != nil {
		t.Fatalf("Compose: %v", err)
	}
	checkWireFormat(t, raw)
	return raw
}

// checkWireFormat: CRLF line endings only, lines within RFC 5322's limit,
// and a header block that is pure ASCII.
func checkWireFormat(t *testing.T, raw []byte) {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) ||
		bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\r")) {
		t.Errorf("bare CR or LF in output:\n%q", raw)
	}
	for i, line := range bytes.Split(raw, []byte("\r\n")) {
		if len(line) > 998 {
			t.Errorf("line %d is %d octets long", i+1, len(line))
		}
	}
	head, _, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		t.Fatal("no header/body separator")
	}
	for _, b := range head {
		if b >= 0x80 {
			t.Fatalf("8-bit byte in the header block:\n%s", head)
		}
	}
}

func parse(t *testing.T, raw []byte) *netmail.Message {
	t.Helper()
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse composed mail: %v\n%s", err, raw)
	}
	return m
}

func decodeHeader(t *testing.T, v string) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		t.Fatalf("decode %q: %v", v, err)
	}
	return s
}

func headerNames(raw []byte) []string {
	head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	var names []string
	for _, line := range strings.Split(string(head), "\r\n") {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		names = append(names, name)
	}
	return names
}

func TestComposeGolden(t *testing.T) {
	t.Parallel()
	raw := mustCompose(t, baseEnvelope())
	path := filepath.Join("testdata", "compose.golden")
	if *update {
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(raw)); diff != "" {
		t.Errorf("composed mail differs from %s (-want +got):\n%s", path, diff)
	}
}

func TestComposeHeaders(t *testing.T) {
	t.Parallel()
	raw := mustCompose(t, baseEnvelope())
	m := parse(t, raw)
	h := m.Header
	for name, want := range map[string]string{
		"From":                      `"Example Support" <support@example.com>`,
		"To":                        `"Ann Example" <ann@example.org>`,
		"Cc":                        `<bob@example.org>`,
		"Reply-To":                  `"Example Support" <support@example.com>`,
		"Subject":                   "[Ticket#1042] Re: Printer on 3rd floor offline",
		"Message-Id":                "<t1042.r1.sig@helpdesk.example.com>",
		"In-Reply-To":               "<abc@mail.example.org>",
		"References":                "<root@mail.example.org> <abc@mail.example.org>",
		"Date":                      "Tue, 24 Nov 2026 10:00:02 +0000",
		"Mime-Version":              "1.0",
		"Content-Type":              "text/plain; charset=UTF-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Auto-Submitted":            "auto-replied",
		"X-Auto-Response-Suppress":  "All",
	} {
		if got := h[name]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want exactly [%q]", name, got, want)
		}
	}
	for _, absent := range []string{"X-Mailer", "User-Agent", "Bcc", "Sender"} {
		if v, ok := h[absent]; ok {
			t.Errorf("unexpected %s: %q", absent, v)
		}
	}
	// The tag is not encoded, so it is visible to anything matching raw
	// subjects.
	if !bytes.Contains(raw, []byte("\r\nSubject: [Ticket#1042] Re: Printer")) {
		t.Error("subject tag not verbatim in the raw header")
	}
	// Extra headers keep the caller's order.
	names := headerNames(raw)
	var extra []string
	for _, n := range names {
		if n == "Auto-Submitted" || n == "X-Auto-Response-Suppress" {
			extra = append(extra, n)
		}
	}
	if diff := cmp.Diff([]string{"Auto-Submitted", "X-Auto-Response-Suppress"}, extra); diff != "" {
		t.Errorf("extra header order (-want +got):\n%s", diff)
	}
	e := baseEnvelope()
	e.Headers = [][2]string{{"X-Auto-Response-Suppress", "All"}, {"Auto-Submitted", "auto-replied"}}
	names = headerNames(mustCompose(t, e))
	if names[len(names)-2] != "X-Auto-Response-Suppress" || names[len(names)-1] != "Auto-Submitted" {
		t.Errorf("reversed extra headers came out as %q", names)
	}

	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(body), "Hello Ann,\r\n\r\nwe received your request.\r\n"; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
}

func TestComposeUTF8(t *testing.T) {
	t.Parallel()
	e := baseEnvelope()
	e.Subject = "[Ticket#7] Re: Drucker im 3. Stock – défaillance, 打印机"
	e.From.Name = "Sören Ünal"
	e.To[0].Name = "Zoë \"Z\" O'Brien"
	e.Headers = [][2]string{{"X-Team", "Ærø support"}}
	e.Text = "Grüße — ok\nA very long line " + strings.Repeat("ü", 200) + "\n"
	raw := mustCompose(t, e)
	m := parse(t, raw)
	if got := decodeHeader(t, m.Header.Get("Subject")); got != e.Subject {
		t.Errorf("subject = %q, want %q", got, e.Subject)
	}
	if got := decodeHeader(t, m.Header.Get("X-Team")); got != "Ærø support" {
		t.Errorf("X-Team = %q", got)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Sören Ünal" || from[0].Address != "support@example.com" {
		t.Errorf("From = %v, %v", from, err)
	}
	to, err := m.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != e.To[0].Name {
		t.Errorf("To = %v, %v", to, err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.ReplaceAll(e.Text, "\n", "\r\n"); string(body) != want {
		t.Errorf("body round trip:\n got %q\nwant %q", body, want)
	}
}

func TestComposeThreadingHeaders(t *testing.T) {
	t.Parallel()
	e := baseEnvelope()
	e.MessageID = "<ours@helpdesk.example.com>" // tolerated brackets
	e.InReplyTo = " <theirs@mail.example.org> "
	e.References = []string{"<a@x>", "", "b@x", "   ", "<c@x>"}
	h := parse(t, mustCompose(t, e)).Header
	if got := h["Message-Id"]; len(got) != 1 || got[0] != "<ours@helpdesk.example.com>" {
		t.Errorf("Message-ID = %q", got)
	}
	if got := h.Get("In-Reply-To"); got != "<theirs@mail.example.org>" {
		t.Errorf("In-Reply-To = %q", got)
	}
	if got := h["References"]; len(got) != 1 || got[0] != "<a@x> <b@x> <c@x>" {
		t.Errorf("References = %q, want one space-separated value", got)
	}

	e = baseEnvelope()
	e.InReplyTo, e.References = "", nil
	h = parse(t, mustCompose(t, e)).Header
	if _, ok := h["In-Reply-To"]; ok {
		t.Error("In-Reply-To present without a parent")
	}
	if _, ok := h["References"]; ok {
		t.Error("References present without a parent")
	}

	// A long thread keeps its root and the most recent ids, folded onto
	// several lines of one header.
	e = baseEnvelope()
	e.References = nil
	for i := range 45 {
		e.References = append(e.References, fmt.Sprintf("id%02d.some-long-local-part@mail.example.org", i))
	}
	raw := mustCompose(t, e)
	refs := strings.Fields(parse(t, raw).Header.Get("References"))
	if len(refs) != maxReferences || refs[0] != "<id00.some-long-local-part@mail.example.org>" ||
		refs[1] != "<id16.some-long-local-part@mail.example.org>" || refs[len(refs)-1] != "<id44.some-long-local-part@mail.example.org>" {
		t.Errorf("References kept %d ids: %q … %q", len(refs), refs[0], refs[len(refs)-1])
	}
	if n := strings.Count(strings.Join(headerNames(raw), "\n"), "References"); n != 1 {
		t.Errorf("%d References headers", n)
	}
}

func TestComposeDefaultsDate(t *testing.T) {
	t.Parallel()
	e := baseEnvelope()
	e.Date = time.Time{}
	before := time.Now().Add(-time.Second)
	d, err := parse(t, mustCompose(t, e)).Header.Date()
	if err != nil {
		t.Fatal(err)
	}
	if d.Before(before.Truncate(time.Second)) {
		t.Errorf("default Date %v is not now", d)
	}
}

func TestComposeRejects(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*Envelope){
		"no message id":          func(e *Envelope) { e.MessageID = "" },
		"blank message id":       func(e *Envelope) { e.MessageID = " <> " },
		"overlong message id":    func(e *Envelope) { e.MessageID = strings.Repeat("a", 300) + "@x" },
		"no from":                func(e *Envelope) { e.From = Address{} },
		"no to":                  func(e *Envelope) { e.To = nil },
		"from without domain":    func(e *Envelope) { e.From.Addr = "support" },
		"to with display name":   func(e *Envelope) { e.To[0].Addr = "Eve <eve@example.net>" },
		"to with brackets":       func(e *Envelope) { e.To[0].Addr = "<ann@example.org>" },
		"two addresses in one":   func(e *Envelope) { e.To[0].Addr = "ann@example.org, eve@example.net" },
		"cc with space":          func(e *Envelope) { e.Cc[0].Addr = "bob @example.org" },
		"reply-to garbage":       func(e *Envelope) { e.ReplyTo[0].Addr = "@@" },
		"empty header name":      func(e *Envelope) { e.Headers = [][2]string{{"", "x"}} },
		"header name with colon": func(e *Envelope) { e.Headers = [][2]string{{"X-A:B", "x"}} },
		"header name with space": func(e *Envelope) { e.Headers = [][2]string{{"X A", "x"}} },
		"header we set":          func(e *Envelope) { e.Headers = [][2]string{{"message-id", "<x@y>"}} },
		"bcc header":             func(e *Envelope) { e.Headers = [][2]string{{"Bcc", "eve@example.net"}} },
		"header we set, upper":   func(e *Envelope) { e.Headers = [][2]string{{"CONTENT-TYPE", "text/html"}} },
		"header we set, mixed":   func(e *Envelope) { e.Headers = [][2]string{{"X-Ok", "1"}, {"Reply-TO", "eve@example.net"}} },
		"overlong header":        func(e *Envelope) { e.Headers = [][2]string{{"X-Long", strings.Repeat("a", 1000)}} },
	} {
		e := baseEnvelope()
		mutate(&e)
		if raw, err := Compose(e); err == nil {
			t.Errorf("%s: accepted:\n%s", name, raw)
		}
	}
}

// injections are the ways a value may try to start a header of its own.
var injections = []string{
	"x\r\nX-Injected: yes",
	"x\nX-Injected: yes",
	"x\rX-Injected: yes",
	"x\r\n\r\nX-Injected: yes",
	"x\u0085X-Injected: yes",
	"x\u2028X-Injected: yes",
	"x\x00\x0bX-Injected: yes",
}

// checkNoInjection fails if the composed mail has an injected header or
// any line that starts with the injected text.
func checkNoInjection(t *testing.T, raw []byte) {
	t.Helper()
	checkWireFormat(t, raw)
	m := parse(t, raw)
	if v, ok := m.Header["X-Injected"]; ok {
		t.Errorf("injected header parsed: %q", v)
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if strings.HasPrefix(strings.ToLower(line), "x-injected") {
			t.Errorf("line starting with injected text: %q", line)
		}
	}
}

func TestComposeNoHeaderInjection(t *testing.T) {
	t.Parallel()
	// Free text is cleaned and still composed; addresses and header names
	// are rejected instead.
	for field, tc := range map[string]struct {
		set    func(e *Envelope, v string)
		reject bool
	}{
		"subject":             {set: func(e *Envelope, v string) { e.Subject = v }},
		"from name":           {set: func(e *Envelope, v string) { e.From.Name = v }},
		"to name":             {set: func(e *Envelope, v string) { e.To[0].Name = v }},
		"cc name":             {set: func(e *Envelope, v string) { e.Cc[0].Name = v }},
		"reply-to name":       {set: func(e *Envelope, v string) { e.ReplyTo[0].Name = v }},
		"extra header value":  {set: func(e *Envelope, v string) { e.Headers[0][1] = v }},
		"message id":          {set: func(e *Envelope, v string) { e.MessageID = v }},
		"in-reply-to":         {set: func(e *Envelope, v string) { e.InReplyTo = v }},
		"references":          {set: func(e *Envelope, v string) { e.References = []string{"a@x", v} }},
		"utf-8 subject":       {set: func(e *Envelope, v string) { e.Subject = "Grüße " + v }},
		"utf-8 name":          {set: func(e *Envelope, v string) { e.To[0].Name = "Zoë " + v }},
		"utf-8 header value":  {set: func(e *Envelope, v string) { e.Headers[0][1] = "Ærø " + v }},
		"subject on its own":  {set: func(e *Envelope, v string) { e.Subject = strings.TrimPrefix(v, "x") }},
		"message id embedded": {set: func(e *Envelope, v string) { e.MessageID = "id" + v + "@helpdesk.example.com" }},
		"from address":        {reject: true, set: func(e *Envelope, v string) { e.From.Addr = "support@example.com" + v }},
		"to address":          {reject: true, set: func(e *Envelope, v string) { e.To[0].Addr = "ann@example.org" + v }},
		"cc address":          {reject: true, set: func(e *Envelope, v string) { e.Cc[0].Addr = "bob@example.org" + v }},
		"reply-to address":    {reject: true, set: func(e *Envelope, v string) { e.ReplyTo[0].Addr = "support@example.com" + v }},
		"extra header name":   {reject: true, set: func(e *Envelope, v string) { e.Headers[0][0] = "X-A" + v }},
		"address local part":  {reject: true, set: func(e *Envelope, v string) { e.To[0].Addr = "ann" + v + "@example.org" }},
	} {
		t.Run(field, func(t *testing.T) {
			t.Parallel()
			for _, inj := range injections {
				e := baseEnvelope()
				tc.set(&e, inj)
				raw, err := Compose(e)
				switch {
				case tc.reject && err == nil:
					t.Errorf("%q accepted:\n%s", inj, raw)
				case !tc.reject && err != nil:
					t.Errorf("%q: %v", inj, err)
				case err == nil:
					checkNoInjection(t, raw)
				}
			}
		})
	}
}

func TestCleanText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":            "plain",
		"a\r\nb":           "a b",
		"a\r\n\tb":         "a b",
		"a\x00b\x7fc":      "a b c",
		"tail\n":           "tail ",
		"ünï\u2029cödé":    "ünï cödé",
		"\u0085lead":       " lead",
		"keep  two spaces": "keep  two spaces",
		"":                 "",
		// Each byte that is not UTF-8 becomes U+FFFD.
		"bad\xff\xfe utf-8": "bad\ufffd\ufffd utf-8",
		"\xc3":              "\ufffd",
		"ok \ufffd":         "ok \ufffd",
	} {
		if got := cleanText(in); got != want {
			t.Errorf("cleanText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCleanID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a@b":                                   "a@b",
		"<a@b>":                                 "a@b",
		"  <a@b>\r\n":                           "a@b",
		"<<a@b>>":                               "a@b",
		"a b@c\x00d\x7f":                        "ab@cd",
		"ü@x":                                   "@x",
		"<>":                                    "",
		"":                                      "",
		strings.Repeat("a", 250):                strings.Repeat("a", 250),
		strings.Repeat("a", 251):                "",
		strings.Repeat("a ", 251):               "",
		" " + strings.Repeat("a", 250) + "\x00": strings.Repeat("a", 250),
	} {
		if got := cleanID(in); got != want {
			t.Errorf("cleanID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReferences(t *testing.T) {
	t.Parallel()
	var ids []string
	for i := range 40 {
		ids = append(ids, fmt.Sprintf("<r%d@x>", i))
	}
	ids = append(ids, "", " ", "<>")
	got := strings.Fields(references(ids))
	if len(got) != maxReferences || got[0] != "<r0@x>" || got[1] != "<r11@x>" || got[len(got)-1] != "<r39@x>" {
		t.Errorf("references kept %q", got)
	}
	if got := references([]string{" <a@x> ", "b@x"}); got != "<a@x> <b@x>" {
		t.Errorf("references = %q", got)
	}
	if got := references(nil); got != "" {
		t.Errorf("references(nil) = %q", got)
	}
}

// goldenEnvelopes pin Compose's output beyond the basic case: what each
// exercises is in its name. Dates and ids are fixed, so the bytes are too.
func goldenEnvelopes() map[string]Envelope {
	ack := composeBenchEnvelope()

	utf8 := baseEnvelope()
	utf8.Subject = "[Ticket#7] Re: Drucker im 3. Stock – défaillance, 打印机 " + strings.Repeat("sehr lang ", 8)
	utf8.From.Name = "Sören Ünal"
	utf8.To = []Address{{"Zoë \"Z\" O'Brien", "zoe@example.org"}, {"", "ann@example.org"}, {"Bob, the builder", "bob@example.org"}}
	utf8.Cc = nil
	utf8.Headers = [][2]string{{"X-Team", "Ærø support"}, {"Precedence", "bulk"}}
	utf8.Text = "Grüße — ok\n" +
		"A very long line " + strings.Repeat("ü", 200) + "\n" +
		"trailing spaces   \n" +
		"tab\tand = sign and a dot line:\n.\nFrom the start of a line\n" +
		strings.Repeat("x", 80) + "\n" +
		"no final newline"

	bare := Envelope{
		From:      Address{Addr: "support@example.com"},
		To:        []Address{{Addr: "ann@example.org"}},
		Text:      "",
		MessageID: "<bare@helpdesk.example.com>",
		Date:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", -5*3600)),
	}

	long := baseEnvelope()
	long.References = nil
	for i := range 45 {
		long.References = append(long.References, fmt.Sprintf("id%02d.some-long-local-part@mail.example.org", i))
	}
	long.Subject = "Re: " + strings.Repeat("a rather long subject that needs folding ", 5)
	long.Text = "crlf\r\nalready\r\nand lone\rcr\n"

	return map[string]Envelope{"ack": ack, "utf8": utf8, "bare": bare, "long-headers": long}
}

// TestComposeGoldenCases compares each of goldenEnvelopes with
// testdata/compose-NAME.golden (-update rewrites them).
func TestComposeGoldenCases(t *testing.T) {
	t.Parallel()
	for name, e := range goldenEnvelopes() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			raw := mustCompose(t, e)
			path := filepath.Join("testdata", "compose-"+name+".golden")
			if *update {
				if err := os.WriteFile(path, raw, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(raw)); diff != "" {
				t.Errorf("composed mail differs from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}

// composeBenchEnvelope is an acknowledgement as the ticket engine sends it:
// the built-in template's text, a tagged subject, a requester with a
// non-ASCII name and the auto-reply headers.
func composeBenchEnvelope() Envelope {
	return Envelope{
		From:    Address{Addr: "support@example.com"},
		To:      []Address{{Name: "Anna Müller", Addr: "anna@customer.example"}},
		Subject: "[Ticket#1042] Re: VPN does not connect",
		Text: "Hello Anna Müller,\n\nthank you for your message. We have received it and opened a ticket for\n" +
			"it; your ticket number is 1042.\n\n    Subject: VPN does not connect\n\n" +
			"A person from our team will read your message and answer you as soon as\n" +
			"possible. There is no need to send it again.\n\n" +
			"To add something, simply reply to this email and keep [Ticket#1042]\n" +
			"in the subject line, so that your reply joins the same ticket.\n\n" +
			"Kind regards,\nSupport <support@example.com>\n\n(This confirmation was sent automatically.)\n",
		MessageID:  "t1042.a1.kq3mz8vx2c@helpdesk.example.com",
		InReplyTo:  "CAF=abc123+x@mail.customer.example",
		References: []string{"CAF=abc123+x@mail.customer.example"},
		Date:       time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC),
		Headers:    [][2]string{{"Auto-Submitted", "auto-replied"}, {"X-Auto-Response-Suppress", "All"}, {"Precedence", "auto_reply"}},
	}
}

// BenchmarkCompose renders one acknowledgement.
func BenchmarkCompose(b *testing.B) {
	e := composeBenchEnvelope()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compose(e); err != nil {
			b.Fatal(err)
		}
	}
}

// TestComposeErrorNamesTheField: the error says which address is wrong.
func TestComposeErrorNamesTheField(t *testing.T) {
	t.Parallel()
	e := baseEnvelope()
	e.Cc = append(e.Cc, Address{"Eve", "eve"})
	_, err := Compose(e)
	if err == nil || !strings.HasPrefix(err.Error(), `compose: cc[1] address "eve": `) {
		t.Errorf("error %v, want one naming cc[1]", err)
	}
	e = baseEnvelope()
	e.From.Addr = "x y@z"
	if _, err := Compose(e); err == nil || err.Error() != `compose: from address "x y@z": contains a space or control character` {
		t.Errorf("error %v", err)
	}
}

// FuzzDotAtomAddr: an address isDotAtomAddr accepts is one net/mail
// parses to itself, without a name (so checkAddr may skip the parser),
// and checkAddr decides every address as net/mail's rules do.
func FuzzDotAtomAddr(f *testing.F) {
	for _, s := range []string{"ann@example.org", "a.b+tag@x.y", "a..b@x", ".a@x", "a.@x", "a@x.", "a@@x", "a@", "@x",
		"a@[127.0.0.1]", `"a b"@x`, "Ann <a@x>", "a@x (c)", "ü@x", "a@x.ü", "!#$%&'*+-/=?^_`{|}~@x", "a b@x", "a@x\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		p, perr := netmail.ParseAddress(addr)
		if isDotAtomAddr(addr) && (perr != nil || p.Name != "" || p.Address != addr) {
			t.Fatalf("isDotAtomAddr(%q) but net/mail: %+v, %v", addr, p, perr)
		}
		// checkAddr without the fast path, as it was before it.
		slow := addr != "" && !strings.ContainsFunc(addr, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) &&
			perr == nil && p.Name == "" && p.Address == addr
		if got := checkAddr(addr) == nil; got != slow {
			t.Fatalf("checkAddr(%q) accepts: %v, net/mail's rules: %v", addr, got, slow)
		}
	})
}
