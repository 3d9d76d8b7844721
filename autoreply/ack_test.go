package autoreply

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/helpdesk/helpdesk/threading"
)

var sample = AckData{
	TicketID:       1042,
	Tag:            "[Ticket#1042]",
	Subject:        "Printer on 3rd floor offline",
	MailboxName:    "Example Support",
	MailboxAddress: "support@example.com",
	RequesterName:  "Ann Example",
}

func TestAck_Default(t *testing.T) {
	t.Parallel()
	tp, err := LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	subject, body, err := tp.Ack(sample)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[Ticket#1042] Re: Printer on 3rd floor offline"; subject != want {
		t.Errorf("subject = %q, want %q", subject, want)
	}
	for _, want := range []string{
		"Hello Ann Example,",
		"ticket number is 1042",
		"Printer on 3rd floor offline",
		"A person from our team will read your message",
		"keep [Ticket#1042]\nin the subject line",
		"Example Support <support@example.com>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "articles") {
		t.Errorf("body mentions articles although there are none:\n%s", body)
	}
	if strings.Contains(body, "\r") || !strings.HasSuffix(body, "\n") || strings.HasPrefix(body, "\n") {
		t.Errorf("body line ends not normalised: %q", body)
	}
	if id, ok := threading.FindTag(subject, "Ticket"); !ok || id != 1042 {
		t.Errorf("subject %q does not carry a recognisable tag", subject)
	}
}

func TestAck_DefaultWithArticlesAndEdgeCases(t *testing.T) {
	t.Parallel()
	tp, err := LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	d := sample
	d.Articles = []Article{{Title: "Printer shows error 49", URL: "https://kb.example.com/49"}, {Title: "Toner", URL: ""}}
	d.RequesterName = ""
	d.Subject = "Re: AW: [Ticket#17] Printer"
	d.MailboxName = ""
	subject, body, err := tp.Ack(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[Ticket#1042] Re: Printer"; subject != want {
		t.Errorf("subject = %q, want %q (prefixes and the foreign tag dropped)", subject, want)
	}
	for _, want := range []string{"Hello,", "these articles might already help", "  - Printer shows error 49\n    https://kb.example.com/49\n", "  - Toner\n", "\nSupport <support@example.com>"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}

	d = sample
	d.Subject = ""
	subject, body, err = tp.Ack(d)
	if err != nil {
		t.Fatal(err)
	}
	if subject != "[Ticket#1042] Your request" || !strings.Contains(body, "(no subject)") {
		t.Errorf("empty subject: subject %q, body:\n%s", subject, body)
	}

	d.Tag = " \r\n"
	if _, _, err := tp.Ack(d); err == nil {
		t.Error("Ack without a tag succeeded")
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAck_OverrideFile(t *testing.T) {
	t.Parallel()
	t.Run("body only", func(t *testing.T) {
		t.Parallel()
		p := writeFile(t, "ack.tmpl", "Hallo {{.RequesterName}},\r\nTicket {{.TicketID}} ({{.Tag}}) ist angelegt.\r\n")
		tp, err := LoadTemplates(p)
		if err != nil {
			t.Fatal(err)
		}
		subject, body, err := tp.Ack(sample)
		if err != nil {
			t.Fatal(err)
		}
		if want := "Hallo Ann Example,\nTicket 1042 ([Ticket#1042]) ist angelegt.\n"; body != want {
			t.Errorf("body = %q, want %q", body, want)
		}
		if want := "[Ticket#1042] Re: Printer on 3rd floor offline"; subject != want {
			t.Errorf("subject = %q, want the built-in %q", subject, want)
		}
	})
	t.Run("own subject", func(t *testing.T) {
		t.Parallel()
		p := writeFile(t, "ack.tmpl", `{{define "subject"}}Re: {{.Subject}} {{.Tag}}{{end}}Danke.`)
		tp, err := LoadTemplates(p)
		if err != nil {
			t.Fatal(err)
		}
		subject, body, err := tp.Ack(sample)
		if err != nil {
			t.Fatal(err)
		}
		if subject != "Re: Printer on 3rd floor offline [Ticket#1042]" || body != "Danke.\n" {
			t.Errorf("got subject %q, body %q", subject, body)
		}
	})
	t.Run("subject without the tag gets it", func(t *testing.T) {
		t.Parallel()
		p := writeFile(t, "ack.tmpl", `{{define "subject"}}Thanks!{{end}}Body`)
		tp, err := LoadTemplates(p)
		if err != nil {
			t.Fatal(err)
		}
		subject, _, err := tp.Ack(sample)
		if err != nil {
			t.Fatal(err)
		}
		if subject != "[Ticket#1042] Thanks!" {
			t.Errorf("subject = %q", subject)
		}
	})
}

func TestAck_BadFile(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, content, wantErr string
	}{
		{"syntax", "Hello {{.RequesterName", "unclosed action"},
		{"unknown field", "Hello {{.Nobody}}", "Nobody"},
		{"unknown function", "{{shout .Subject}}", "shout"},
		{"empty body", `{{define "subject"}}x{{end}}`, "body is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := writeFile(t, "broken-ack.tmpl", tc.content)
			_, err := LoadTemplates(p)
			if err == nil {
				t.Fatal("LoadTemplates succeeded")
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not name the file %s and %q", err, p, tc.wantErr)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		p := filepath.Join(t.TempDir(), "nope.tmpl")
		_, err := LoadTemplates(p)
		if err == nil || !strings.Contains(err.Error(), p) || !os.IsNotExist(unwrapAll(err)) {
			t.Errorf("error = %v, want a not-exist error naming %s", err, p)
		}
	})
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

// TestAck_CRLFInjection: no field can add a header line to the subject or
// a line of its own to the body.
func TestAck_CRLFInjection(t *testing.T) {
	t.Parallel()
	const evil = "x\r\nBcc: victim@example.net\r\n\r\nInjected line"
	tp, err := LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]func(d *AckData){
		"Subject":        func(d *AckData) { d.Subject = evil },
		"RequesterName":  func(d *AckData) { d.RequesterName = evil },
		"MailboxName":    func(d *AckData) { d.MailboxName = evil },
		"MailboxAddress": func(d *AckData) { d.MailboxAddress = evil },
		"Tag":            func(d *AckData) { d.Tag = "[Ticket#1042]\r\nBcc: victim@example.net" },
		"Article.Title":  func(d *AckData) { d.Articles = []Article{{Title: evil, URL: "https://kb.example.com/1"}} },
		"Article.URL":    func(d *AckData) { d.Articles = []Article{{Title: "t", URL: evil}} },
		"unicode line separators": func(d *AckData) {
			d.RequesterName = "x\u2028Bcc: victim@example.net\u2029Injected line\u0085"
		},
	}
	for name, set := range fields {
		t.Run(name, func(t *testing.T) {
			d := sample
			set(&d)
			subject, body, err := tp.Ack(d)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(subject, "\r\n\u2028\u2029\u0085") {
				t.Errorf("subject contains a line break: %q", subject)
			}
			for _, line := range strings.Split(body, "\n") {
				l := strings.TrimSpace(line)
				if strings.HasPrefix(l, "Bcc:") || strings.HasPrefix(l, "Injected line") {
					t.Errorf("injected text starts a line of the body: %q", line)
				}
			}
			if strings.ContainsAny(body, "\r\u2028\u2029\u0085") {
				t.Errorf("body contains a foreign line break: %q", body)
			}
		})
	}
	// The same through a custom subject template.
	p := writeFile(t, "ack.tmpl", `{{define "subject"}}{{.RequesterName}} {{.Subject}} {{.Tag}}{{end}}{{.Subject}}`)
	ct, err := LoadTemplates(p)
	if err != nil {
		t.Fatal(err)
	}
	d := sample
	d.Subject, d.RequesterName = evil, evil
	subject, body, err := ct.Ack(d)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(subject, "\r\n") || strings.Count(body, "\n") != 1 {
		t.Errorf("custom template: subject %q, body %q", subject, body)
	}
}
