package autoreply

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/template"

	"github.com/helpdesk/helpdesk/threading"
)

// AckData is what an acknowledgement can say. Every string is made
// single-line before rendering.
type AckData struct {
	TicketID       uint64
	Tag            string // the subject tag, e.g. "[Ticket#1042]"; required
	Subject        string // the subject of the customer's mail
	MailboxName    string
	MailboxAddress string
	RequesterName  string
	Articles       []Article // knowledge-base suggestions; may be empty
}

// Article is one knowledge-base suggestion.
type Article struct {
	Title, URL string
}

// ackView is the data a template sees: AckData (sanitised) plus the RFC 5256
// base of the subject, for "Re: <subject>" without piling up prefixes.
type ackView struct {
	AckData
	BaseSubject string
}

// Templates renders acknowledgements. It is immutable after LoadTemplates
// and safe for concurrent use.
type Templates struct {
	source string // "built-in" or the file name, for error messages
	tmpl   *template.Template
}

// defaultSubject is used unless the template file defines "subject".
const defaultSubject = `{{.Tag}} {{with .BaseSubject}}Re: {{.}}{{else}}Your request{{end}}`

// defaultAck is the built-in acknowledgement: plain text, friendly, with
// the ticket number, the subject, the promise of a human answer and the
// request to keep the tag when replying.
const defaultAck = `Hello{{with .RequesterName}} {{.}}{{end}},

thank you for your message. We have received it and opened a ticket for
it; your ticket number is {{.TicketID}}.

    Subject: {{with .Subject}}{{.}}{{else}}(no subject){{end}}

A person from our team will read your message and answer you as soon as
possible. There is no need to send it again.

To add something, simply reply to this email and keep {{.Tag}}
in the subject line, so that your reply joins the same ticket.
{{- if .Articles}}

In the meantime, these articles might already help:
{{range .Articles}}
  - {{.Title}}{{with .URL}}
    {{.}}{{end}}
{{- end}}
{{- end}}

Kind regards,
{{with .MailboxName}}{{.}}{{else}}Support{{end}}{{with .MailboxAddress}} <{{.}}>{{end}}

(This confirmation was sent automatically.)
`

// sampleAck exercises every field when a template is loaded, so a typo
// such as {{.Ticket}} fails at start-up rather than on the first mail.
var sampleAck = AckData{
	TicketID: 1, Tag: "[Ticket#1]", Subject: "Sample", MailboxName: "Support",
	MailboxAddress: "support@example.com", RequesterName: "Ann",
	Articles: []Article{{Title: "Sample article", URL: "https://example.com/kb/1"}},
}

// LoadTemplates loads the acknowledgement template. ackFile "" selects the
// built-in one. A file is a text/template whose main body is the mail body;
// it may {{define "subject"}} too, else the built-in subject is used. The
// template sees the AckData fields and .BaseSubject. Errors name the file.
func LoadTemplates(ackFile string) (*Templates, error) {
	source, text := "built-in", defaultAck
	if ackFile != "" {
		b, err := os.ReadFile(ackFile)
		if err != nil {
			return nil, fmt.Errorf("read ack template: %w", err)
		}
		source, text = ackFile, string(b)
	}
	t, err := template.New("ack").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("ack template %s: %w", source, err)
	}
	if t.Lookup("subject") == nil {
		if _, err := t.New("subject").Parse(defaultSubject); err != nil {
			return nil, fmt.Errorf("built-in ack subject: %w", err)
		}
	}
	tp := &Templates{source: source, tmpl: t}
	if _, body, err := tp.Ack(sampleAck); err != nil {
		return nil, err
	} else if strings.TrimSpace(body) == "" {
		return nil, fmt.Errorf("ack template %s: the body is empty", source)
	}
	return tp, nil
}

// Ack renders the acknowledgement for d. The subject always contains
// d.Tag (it is put in front when the template left it out); no value of d
// can add a line to the subject or the body.
func (t *Templates) Ack(d AckData) (subject, body string, err error) {
	d = sanitize(d)
	if d.Tag == "" {
		return "", "", errors.New("ack: empty ticket tag")
	}
	view := ackView{AckData: d, BaseSubject: threading.BaseSubject(d.Subject)}

	var sb bytes.Buffer
	if err := t.tmpl.ExecuteTemplate(&sb, "subject", view); err != nil {
		return "", "", fmt.Errorf("ack template %s: subject: %w", t.source, err)
	}
	subject = oneLine(sb.String())
	if !strings.Contains(subject, d.Tag) {
		subject = strings.TrimSpace(d.Tag + " " + subject)
	}

	var bb bytes.Buffer
	if err := t.tmpl.ExecuteTemplate(&bb, "ack", view); err != nil {
		return "", "", fmt.Errorf("ack template %s: body: %w", t.source, err)
	}
	body = strings.ReplaceAll(bb.String(), "\r\n", "\n")
	body = strings.ReplaceAll(body, "\r", "\n")
	body = strings.ToValidUTF8(strings.TrimLeft(body, "\n"), "\uFFFD")
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	return subject, body, nil
}

// sanitize makes every string of d a single line of valid UTF-8.
func sanitize(d AckData) AckData {
	d.Tag = oneLine(d.Tag)
	d.Subject = oneLine(d.Subject)
	d.MailboxName = oneLine(d.MailboxName)
	d.MailboxAddress = oneLine(d.MailboxAddress)
	d.RequesterName = oneLine(d.RequesterName)
	arts := make([]Article, 0, len(d.Articles))
	for _, a := range d.Articles {
		a.Title, a.URL = oneLine(a.Title), oneLine(a.URL)
		if a.Title != "" || a.URL != "" {
			arts = append(arts, a)
		}
	}
	d.Articles = arts
	return d
}

// oneLine replaces line breaks and other control characters (also the
// Unicode line and paragraph separators) by spaces, collapses runs of
// white space and trims the ends.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}
