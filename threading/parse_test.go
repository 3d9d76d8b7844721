package threading

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// crlf turns a readable fixture with "\n" line ends into wire format.
func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(s, "\n", "\r\n"))
}

func mustParse(t *testing.T, raw []byte) *Message {
	t.Helper()
	m, err := Parse(raw, Limits{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	checkInvariants(t, m, raw, Limits{}.withDefaults())
	return m
}

func hasWarning(m *Message, substr string) bool {
	return slices.ContainsFunc(m.Warnings, func(w string) bool { return strings.Contains(w, substr) })
}

func TestParse_Fields(t *testing.T) {
	t.Parallel()
	raw := crlf(`Return-Path: <Bounce@Example.ORG>
Received: from x by y; Mon, 24 Nov 2026 10:00:00 +0000
From: "Ann =?utf-8?q?M=C3=BCller?=" <Ann@Example.ORG>
Sender: Bot <bot@example.org>
Reply-To: Desk <desk@example.org>, other@example.org
To: support@example.com, "Bob, B." <bob@example.com>
Cc: =?iso-8859-1?q?J=F6rg?= <joerg@example.com>
Subject: =?utf-8?q?Drucker_im_3=2E_Stock_offline_=E2=80=93_bitte?= helfen
Date: Mon, 24 Nov 2026 10:00:00 +0100
Message-ID: <ABC.123@Mail.Example.ORG>
In-Reply-To: <parent@example.org> (Ann's message of Sunday)
References: <root@example.org>
 <parent@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Es zeigt Fehler 49.
`)
	m := mustParse(t, raw)
	want := &Message{
		MessageID:     "ABC.123@Mail.Example.ORG",
		InReplyTo:     []string{"parent@example.org"},
		References:    []string{"root@example.org", "parent@example.org"},
		From:          Address{Name: "Ann Müller", Addr: "ann@example.org"},
		Sender:        Address{Name: "Bot", Addr: "bot@example.org"},
		ReplyTo:       []Address{{Name: "Desk", Addr: "desk@example.org"}, {Addr: "other@example.org"}},
		To:            []Address{{Addr: "support@example.com"}, {Name: "Bob, B.", Addr: "bob@example.com"}},
		Cc:            []Address{{Name: "Jörg", Addr: "joerg@example.com"}},
		ReturnPath:    "bounce@example.org",
		HasReturnPath: true,
		Subject:       "Drucker im 3. Stock offline – bitte helfen",
		ContentType:   "text/plain",
		Text:          "Es zeigt Fehler 49.\n",
		PartTypes:     []string{"text/plain"},
	}
	ignore := cmpopts.IgnoreFields(Message{}, "Header", "RawSHA256", "Size", "Date")
	if diff := cmp.Diff(want, m, ignore); diff != "" {
		t.Errorf("Message mismatch (-want +got):\n%s", diff)
	}
	if wantDate := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC); !m.Date.Equal(wantDate) {
		t.Errorf("Date = %v, want %v", m.Date, wantDate)
	}
	if got, want := m.DedupeKey(), "<ABC.123@mail.example.org>"; got != want {
		t.Errorf("DedupeKey = %q, want %q", got, want)
	}
	if len(m.Warnings) != 0 {
		t.Errorf("unexpected warnings %q", m.Warnings)
	}
}

func TestParse_ReturnPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		header  string
		wantHas bool
		wantRP  string
	}{
		{"absent", "", false, ""},
		{"null", "Return-Path: <>\n", true, ""},
		{"null with space", "Return-Path:  < >\n", true, ""},
		{"address", "Return-Path: <Alice@Example.com>\n", true, "alice@example.com"},
		{"bare", "Return-Path: alice@example.com\n", true, "alice@example.com"},
		{"first wins", "Return-Path: <>\nReturn-Path: <x@example.com>\n", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, crlf(tt.header+"From: a@example.com\nSubject: x\n\nbody\n"))
			if m.HasReturnPath != tt.wantHas || m.ReturnPath != tt.wantRP {
				t.Errorf("got (%v, %q), want (%v, %q)", m.HasReturnPath, m.ReturnPath, tt.wantHas, tt.wantRP)
			}
		})
	}
}

func TestDedupeKeyAndIDKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"<Foo.Bar@EXAMPLE.com>":   "<Foo.Bar@example.com>",
		"  Foo.Bar@Example.COM  ": "<Foo.Bar@example.com>",
		"< x@y >":                 "<x@y>",
		"no-at-sign":              "<no-at-sign>",
		"":                        "",
		"<>":                      "",
	} {
		if got := IDKey(in); got != want {
			t.Errorf("IDKey(%q) = %q, want %q", in, got, want)
		}
	}
	m := mustParse(t, crlf("From: a@example.com\nSubject: no id\n\nbody\n"))
	if want := "sha256:" + m.RawSHA256; m.DedupeKey() != want {
		t.Errorf("DedupeKey without Message-ID = %q, want %q", m.DedupeKey(), want)
	}
	if !strings.HasPrefix(m.DedupeKey(), "sha256:") || len(m.DedupeKey()) != len("sha256:")+64 {
		t.Errorf("DedupeKey = %q", m.DedupeKey())
	}
}

func TestParse_Unparseable(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{"", "\r\n\r\n", "just some text without any header\nsecond line\n", "\x00\x01\x02", "   \n"} {
		_, err := Parse([]byte(raw), Limits{})
		if !errors.Is(err, ErrUnparseable) {
			t.Errorf("Parse(%q) error = %v, want ErrUnparseable", raw, err)
		}
	}
}

// TestParse_Quirks covers each deliberately tolerated defect.
func TestParse_Quirks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		raw         string
		wantSubject string
		wantText    string
		wantWarning string
	}{
		{
			name:        "byte order mark",
			raw:         "\xef\xbb\xbfFrom: a@example.com\r\nSubject: bom\r\n\r\nhi\r\n",
			wantSubject: "bom", wantText: "hi\n", wantWarning: "byte order mark",
		},
		{
			name:        "CR-only line ends",
			raw:         "From: a@example.com\rSubject: mac\r\rline1\rline2\r",
			wantSubject: "mac", wantText: "line1\nline2\n", wantWarning: "bare CR",
		},
		{
			name:        "CR CR LF line ends",
			raw:         "From: a@example.com\r\r\nSubject: doubled\r\r\n\r\r\nline1\r\r\nline2\r\r\n",
			wantSubject: "doubled", wantText: "line1\nline2\n", wantWarning: "CR CR LF",
		},
		{
			name:        "mbox From_ line",
			raw:         "From MAILER-DAEMON Mon Nov 24 10:00:00 2026\nFrom: a@example.com\nSubject: mbox\n\nhi\n",
			wantSubject: "mbox", wantText: "hi\n", wantWarning: "mbox From_",
		},
		{
			name:        "no blank line after the header",
			raw:         "From: a@example.com\nSubject: nobreak\nThis is the body.\n",
			wantSubject: "nobreak", wantText: "This is the body.\n", wantWarning: "not terminated",
		},
		{
			name:        "space before colon",
			raw:         "From: a@example.com\nSubject : spaced\n\nhi\n",
			wantSubject: "spaced", wantText: "hi\n",
		},
		{
			name:        "8-bit header bytes read as windows-1252",
			raw:         "From: a@example.com\nSubject: Caf\xe9 \x80\n\nhi\n",
			wantSubject: "Café €", wantText: "hi\n", wantWarning: "8-bit bytes in header",
		},
		{
			name:        "8-bit header bytes in the body charset",
			raw:         "From: a@example.com\nSubject: \xb0\xa1\nContent-Type: text/plain; charset=euc-kr\n\nhi\n",
			wantSubject: "가", wantText: "hi\n", wantWarning: "8-bit bytes in header",
		},
		{
			name:        "unknown charset in an encoded word keeps the others",
			raw:         "From: a@example.com\nSubject: =?x-nonsense?q?abc?= =?utf-8?q?ok?=\n\nhi\n",
			wantSubject: "=?x-nonsense?q?abc?=ok", wantText: "hi\n", wantWarning: "encoded word",
		},
		{
			name:        "unknown body charset, 8-bit",
			raw:         "From: a@example.com\nSubject: x\nContent-Type: text/plain; charset=x-unknown\n\nna\xefve\n",
			wantSubject: "x", wantText: "naïve\n", wantWarning: "unknown charset",
		},
		{
			name:        "undeclared 8-bit body",
			raw:         "From: a@example.com\nSubject: x\n\n\x80 sign\n",
			wantSubject: "x", wantText: "€ sign\n", wantWarning: "without a charset",
		},
		{
			name:        "odd transfer encoding spelling",
			raw:         "From: a@example.com\nSubject: x\nContent-Type: text/plain\nContent-Transfer-Encoding: Quoted_Printable;\n\nA=3DB caf=C3=A9=\n!\n",
			wantSubject: "x", wantText: "A=B café!\n",
		},
		{
			name:        "lenient quoted-printable",
			raw:         "From: a@example.com\nSubject: x\nContent-Transfer-Encoding: quoted-printable\nContent-Type: text/plain; charset=utf-8\n\n100% =ZZ soft= \nbreak=\r\nend=",
			wantSubject: "x", wantText: "100% =ZZ softbreakend",
		},
		{
			name:        "lenient base64 with junk and inner padding",
			raw:         "From: a@example.com\nSubject: x\nContent-Transfer-Encoding: base64\n\naGVs\nbG8=\n*!IHdv\ncmxk\n",
			wantSubject: "x", wantText: "hello world",
		},
		{
			name:        "text labelled base64 that is not",
			raw:         "From: a@example.com\nSubject: x\nContent-Transfer-Encoding: base64\n\nplain words here\n",
			wantSubject: "x", wantText: "plain words here\n", wantWarning: "labelled base64",
		},
		{
			name:        "unknown transfer encoding",
			raw:         "From: a@example.com\nSubject: x\nContent-Transfer-Encoding: base9000\n\nas is\n",
			wantSubject: "x", wantText: "as is\n", wantWarning: "unknown Content-Transfer-Encoding",
		},
		{
			name:        "HTML without any MIME header",
			raw:         "From: a@example.com\nSubject: x\n\n<html><body><p>Hi &amp; bye</p></body></html>\n",
			wantSubject: "x", wantText: "Hi & bye", wantWarning: "HTML body without Content-Type",
		},
		{
			name:        "invalid media type is text/plain",
			raw:         "From: a@example.com\nSubject: x\nContent-Type: texthtml\n\nhello\n",
			wantSubject: "x", wantText: "hello\n", wantWarning: "invalid",
		},
		{
			name:        "multipart without boundary parameter",
			raw:         "From: a@example.com\nSubject: x\nContent-Type: multipart/mixed\n\n--b1\nContent-Type: text/plain\n\ninside\n--b1--\n",
			wantSubject: "x", wantText: "inside", wantWarning: "guessed",
		},
		{
			name:        "multipart whose body has no boundary",
			raw:         "From: a@example.com\nSubject: x\nContent-Type: multipart/alternative; boundary=zzz\n\njust text\n",
			wantSubject: "x", wantText: "just text\n", wantWarning: "without any part",
		},
		{
			name:        "missing final boundary keeps the parts",
			raw:         "From: a@example.com\nSubject: x\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nfirst\n--b\nContent-Type: application/pdf\n\n%PDF",
			wantSubject: "x", wantText: "first", wantWarning: "closing boundary",
		},
		{
			name:        "duplicate Content-Type parameters",
			raw:         "From: a@example.com\nSubject: x\nContent-Type: text/plain; charset=iso-8859-1; charset=utf-8\n\ncaf\xe9\n",
			wantSubject: "x", wantText: "café\n", wantWarning: "read leniently",
		},
		{
			name:        "blank lines before the header",
			raw:         "\r\n\r\nFrom: a@example.com\r\nSubject: late\r\n\r\nhi\r\n",
			wantSubject: "late", wantText: "hi\n", wantWarning: "blank lines",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, []byte(tt.raw))
			if m.Subject != tt.wantSubject {
				t.Errorf("Subject = %q, want %q", m.Subject, tt.wantSubject)
			}
			if m.Text != tt.wantText {
				t.Errorf("Text = %q, want %q", m.Text, tt.wantText)
			}
			if tt.wantWarning != "" && !hasWarning(m, tt.wantWarning) {
				t.Errorf("Warnings = %q, want one containing %q", m.Warnings, tt.wantWarning)
			}
		})
	}
}

func TestParse_Addresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from string
		want []Address
	}{
		{`Ann <ann@example.org>`, []Address{{"Ann", "ann@example.org"}}},
		{`ann@example.org (Ann Example)`, []Address{{"Ann Example", "ann@example.org"}}},
		{`"=?utf-8?b?w4RubmU=?=" <ANNE@example.org>`, []Address{{"Änne", "anne@example.org"}}},
		{`John Q. Public <jqp@example.org>`, []Address{{"John Q. Public", "jqp@example.org"}}},
		{`Bob Dunite <bob@extern> Bobby Dunite <bobby@extern>`, []Address{{"Bob Dunite", "bob@extern"}, {"Bobby Dunite", "bobby@extern"}}},
		{`tim@example.com concierge@example.com`, []Address{{"", "tim@example.com"}, {"", "concierge@example.com"}}},
		{`MAILER-DAEMON`, []Address{{"", "mailer-daemon"}}},
		{`MAILER-DAEMON <>`, []Address{{"MAILER-DAEMON", "mailer-daemon"}}},
		{`Mail Delivery System <>`, nil},
		{`undisclosed-recipients:;`, nil},
		{`Name With "Quote <q@example.org>`, []Address{{"Name With \"Quote", "q@example.org"}}},
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			m := mustParse(t, crlf("To: "+tt.from+"\nSubject: x\n\nbody\n"))
			if diff := cmp.Diff(tt.want, m.To); diff != "" {
				t.Errorf("To mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse_IDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                 string
		header               string
		wantID               string
		wantInReplyTo, wantR []string
	}{
		{"plain", "Message-ID: <a@b>\nIn-Reply-To: <c@d>\nReferences: <e@f> <c@d>\n", "a@b", []string{"c@d"}, []string{"e@f", "c@d"}},
		{"no brackets", "Message-ID: a@b\nReferences: e@f, c@d\n", "a@b", nil, []string{"e@f", "c@d"}},
		{"folded inside brackets", "Message-ID: <very-long-\n id@b>\n", "very-long-id@b", nil, nil},
		{"junk", "Message-ID: nonsense\nIn-Reply-To: your message of yesterday\n", "", nil, nil},
		{"duplicates", "References: <a@b> <a@b> <c@d>\n", "", nil, []string{"a@b", "c@d"}},
		{"comments", "In-Reply-To: <x@y> (John's message)\n", "", []string{"x@y"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustParse(t, crlf("From: a@example.com\n"+tt.header+"Subject: x\n\nbody\n"))
			if m.MessageID != tt.wantID {
				t.Errorf("MessageID = %q, want %q", m.MessageID, tt.wantID)
			}
			if diff := cmp.Diff(tt.wantInReplyTo, m.InReplyTo); diff != "" {
				t.Errorf("InReplyTo (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantR, m.References); diff != "" {
				t.Errorf("References (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse_Dates(t *testing.T) {
	t.Parallel()
	want := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for _, v := range []string{
		"Tue, 24 Nov 2026 10:00:00 +0000",
		"24 Nov 2026 10:00:00 +0000",
		"Tue, 24 Nov 2026 10:00:00 GMT",
		"Tue,24 Nov 2026 10:00:00 +0000",
		"Tue, 24 Nov 2026 10:00:00 +0000 (UTC)",
		"Tue Nov 24 10:00:00 2026",
		"2026-11-24T10:00:00Z",
		"Tue, 24 Nov 2026   10:00:00   +0000",
	} {
		m := mustParse(t, crlf("From: a@example.com\nDate: "+v+"\nSubject: x\n\nbody\n"))
		if !m.Date.Equal(want) {
			t.Errorf("Date %q = %v, want %v", v, m.Date, want)
		}
	}
	m := mustParse(t, crlf("From: a@example.com\nDate: someday soon\nSubject: x\n\nbody\n"))
	if !m.Date.IsZero() || !hasWarning(m, "unreadable Date") {
		t.Errorf("bad date: Date = %v, Warnings = %q", m.Date, m.Warnings)
	}
}

func TestParse_MultipartBodyAndAttachments(t *testing.T) {
	t.Parallel()
	raw := crlf(`From: a@example.com
Subject: parts
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

preamble
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe
--inner
Content-Type: text/html; charset=utf-8

<p>HTML version</p>
--inner--
--outer
Content-Type: application/pdf; name="=?utf-8?q?Rechnung_M=C3=A4rz.pdf?="
Content-Disposition: attachment
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--outer
Content-Type: text/plain
Content-Disposition: attachment; filename*=utf-8''..%2F..%2Fetc%2Fnotes%20%C3%BC.txt

secret notes
--outer
Content-Type: image/png
Content-Disposition: inline; filename="logo.png"
Content-Transfer-Encoding: base64

iVBORw0KGgo=
--outer--
epilogue
`)
	m := mustParse(t, raw)
	if m.Text != "Grüße" {
		t.Errorf("Text = %q, want the text/plain alternative", m.Text)
	}
	want := []Attachment{
		{Filename: "Rechnung März.pdf", ContentType: "application/pdf", Size: 9},
		{Filename: "notes ü.txt", ContentType: "text/plain", Size: 12},
		{Filename: "logo.png", ContentType: "image/png", Size: 8},
	}
	if diff := cmp.Diff(want, m.Attachments); diff != "" {
		t.Errorf("Attachments (-want +got):\n%s", diff)
	}
	wantTypes := []string{"multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf", "text/plain", "image/png"}
	if diff := cmp.Diff(wantTypes, m.PartTypes); diff != "" {
		t.Errorf("PartTypes (-want +got):\n%s", diff)
	}
}

func TestParse_HTMLOnly(t *testing.T) {
	t.Parallel()
	raw := crlf(`From: a@example.com
Subject: html
Content-Type: text/html; charset=utf-8

<html><head><style>p {color: red}</style></head><body><p>Hello <b>Ann</b>,</p><p>see <a href="https://example.org/x">the page</a> &gt; now</p></body></html>
`)
	m := mustParse(t, raw)
	for _, want := range []string{"Hello Ann,", "the page <https://example.org/x>", "> now"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("Text = %q, want it to contain %q", m.Text, want)
		}
	}
	if strings.Contains(m.Text, "color") || strings.Contains(m.Text, "<p>") {
		t.Errorf("Text keeps markup or style: %q", m.Text)
	}
}

func TestParse_DigestDefaultsToMessage(t *testing.T) {
	t.Parallel()
	raw := crlf("From: a@example.com\nSubject: digest\nContent-Type: multipart/digest; boundary=d\n\n--d\n\nFrom: b@example.com\nSubject: one\n\nfirst\n--d--\n")
	m := mustParse(t, raw)
	if len(m.Attachments) != 1 || m.Attachments[0].ContentType != "message/rfc822" {
		t.Errorf("Attachments = %+v, want one message/rfc822", m.Attachments)
	}
}

func TestParse_TextLimit(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("äbcdefghij", 1000) // 11,000 bytes, 2-byte runes included
	raw := crlf("From: a@example.com\nSubject: long\nContent-Type: text/plain; charset=utf-8\n\n" + body)
	m, err := Parse(raw, Limits{MaxTextBytes: 4001})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Text) > 4001 || len(m.Text) < 3990 {
		t.Errorf("len(Text) = %d, want about 4001", len(m.Text))
	}
	if !hasWarning(m, "truncated") {
		t.Errorf("no truncation warning: %q", m.Warnings)
	}
	checkInvariants(t, m, raw, Limits{MaxTextBytes: 4001}.withDefaults())
}

func TestParse_WarningsBounded(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nSubject: warn\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
	for i := range 500 {
		fmt.Fprintf(&b, "--b\r\nContent-Type: text/plain; charset=x-bogus-%d\r\n\r\n\xff\r\n", i)
	}
	b.WriteString("--b--\r\n")
	m := mustParse(t, []byte(b.String()))
	if len(m.Warnings) != maxWarnings+1 || m.Warnings[maxWarnings] != "further warnings suppressed" {
		t.Errorf("got %d warnings, want %d plus the suppression note", len(m.Warnings), maxWarnings)
	}
}
