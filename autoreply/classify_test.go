package autoreply

import (
	"strings"
	"testing"

	"github.com/helpdesk/helpdesk/threading"
)

var testOwn = Own{
	Addresses: []string{"support@example.com", "alice@example.com"},
	Domain:    "helpdesk.example.com",
}

// base is a plain mail from a person; each test adds or replaces fields.
const base = "From: Ann Example <ann@example.org>\r\n" +
	"To: support@example.com\r\n" +
	"Subject: Printer on 3rd floor offline\r\n" +
	"Message-ID: <abc@mail.example.org>\r\n" +
	"Date: Mon, 24 Nov 2026 10:00:00 +0000\r\n"

// parse builds a message from CRLF-terminated header lines and a body.
func parse(t *testing.T, header, body string) *threading.Message {
	t.Helper()
	raw := header + "\r\n" + body
	m, err := threading.Parse([]byte(raw), threading.Limits{})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return m
}

// replaceField swaps one header line of base.
func replaceField(h, name, line string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n") {
		if strings.HasPrefix(l, name+":") {
			if line != "" {
				out = append(out, line)
			}
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\r\n") + "\r\n"
}

type classifyCase struct {
	name       string
	header     string // full header (without the blank line)
	body       string
	wantKind   Kind
	wantReason string // substring of Reason; "" for a person
}

func runClassify(t *testing.T, cases []classifyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if body == "" {
				body = "Hello\r\n"
			}
			v := Classify(parse(t, tc.header, body), testOwn)
			wantAutomated := tc.wantKind != KindHuman
			if v.Automated != wantAutomated || v.Kind != tc.wantKind || !strings.Contains(v.Reason, tc.wantReason) {
				t.Errorf("Classify = %+v, want Automated=%v Kind=%q Reason containing %q", v, wantAutomated, tc.wantKind, tc.wantReason)
			}
			if !v.Automated && v.Reason != "" {
				t.Errorf("a person's mail has Reason %q", v.Reason)
			}
		})
	}
}

func TestClassify_Human(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "plain mail", header: base, wantKind: KindHuman},
		{name: "reply", header: replaceField(base, "Subject", "Subject: Re: [Ticket#5] Printer"), wantKind: KindHuman},
		{name: "Auto-Submitted: no", header: base + "Auto-Submitted: no\r\n", wantKind: KindHuman},
		{name: "Auto-Submitted: No (comment)", header: base + "Auto-Submitted: No (a person)\r\n", wantKind: KindHuman},
		{name: "forwarded bounce", header: replaceField(base, "Subject", "Subject: Fwd: Undeliverable: invoice"), wantKind: KindHuman},
		{name: "subject mentions office", header: replaceField(base, "Subject", "Subject: Printer in the back office"), wantKind: KindHuman},
		{name: "Return-Path with address", header: "Return-Path: <ann@example.org>\r\n" + base, wantKind: KindHuman},
		{name: "Precedence normal", header: base + "Precedence: normal\r\n", wantKind: KindHuman},
		{name: "X-Auto-Response-Suppress of a person", header: base + "X-Auto-Response-Suppress: DR, RN\r\n", wantKind: KindHuman},
		{name: "reply-ish local part", header: replaceField(base, "From", "From: Rep Ly <reply@example.org>"), wantKind: KindHuman},
	})
}

func TestClassify_AutoSubmitted(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "auto-replied", header: base + "Auto-Submitted: auto-replied\r\n", wantKind: KindAutoReply, wantReason: "Auto-Submitted: auto-replied"},
		{name: "auto-generated with comment", header: base + "Auto-Submitted: auto-generated (failure)\r\n", wantKind: KindAutoReply, wantReason: "Auto-Submitted: auto-generated"},
		{name: "auto-notified with parameter", header: base + "Auto-Submitted: Auto-Notified; owner-email=x@example.org\r\n", wantKind: KindAutoReply, wantReason: "auto-notified"},
		{name: "unknown keyword", header: base + "Auto-Submitted: yes please\r\n", wantKind: KindAutoReply, wantReason: "Auto-Submitted"},
	})
}

func TestClassify_PrecedenceBulk(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "bulk", header: base + "Precedence: bulk\r\n", wantKind: KindBulk, wantReason: "Precedence: bulk"},
		{name: "BULK", header: base + "Precedence:  BULK \r\n", wantKind: KindBulk, wantReason: "Precedence: bulk"},
	})
}

func TestClassify_PrecedenceJunk(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "junk", header: base + "Precedence: junk\r\n", wantKind: KindBulk, wantReason: "Precedence: junk"},
	})
}

func TestClassify_PrecedenceList(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "list", header: base + "Precedence: list\r\n", wantKind: KindList, wantReason: "Precedence: list"},
	})
}

func TestClassify_PrecedenceAutoReply(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "auto_reply", header: base + "Precedence: auto_reply\r\n", wantKind: KindAutoReply, wantReason: "Precedence: auto_reply"},
	})
}

func TestClassify_ListHeaders(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "List-Id", header: base + "List-Id: Printers <printers.lists.example.org>\r\n", wantKind: KindList, wantReason: "List-Id"},
		{name: "List-Unsubscribe", header: base + "List-Unsubscribe: <mailto:leave@example.org>\r\n", wantKind: KindList, wantReason: "List-Unsubscribe"},
		{name: "List-Post", header: base + "List-Post: <mailto:printers@example.org>\r\n", wantKind: KindList, wantReason: "List-Post"},
		{name: "Mailing-List", header: base + "Mailing-List: contact printers-help@example.org\r\n", wantKind: KindList, wantReason: "Mailing-List"},
	})
}

func TestClassify_NullReturnPath(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "Return-Path <>", header: "Return-Path: <>\r\n" + base, wantKind: KindNullSender, wantReason: "Return-Path: <>"},
	})
}

func TestClassify_MailerDaemon(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "From MAILER-DAEMON", header: replaceField(base, "From", "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>"), wantKind: KindBounce, wantReason: "From: mailer-daemon@mx.example.org"},
		{name: "Sender mailer-daemon", header: base + "Sender: mailer-daemon@mx.example.org\r\n", wantKind: KindBounce, wantReason: "Sender"},
		{name: "bare MAILER-DAEMON", header: replaceField(base, "From", "From: MAILER-DAEMON"), wantKind: KindBounce, wantReason: "mailer-daemon"},
		{name: "MAILER-DAEMON with null address", header: replaceField(base, "From", "From: MAILER-DAEMON <>"), wantKind: KindBounce, wantReason: "mailer-daemon"},
	})
}

func TestClassify_Postmaster(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "From postmaster", header: replaceField(base, "From", "From: Postmaster <Postmaster@example.org>"), wantKind: KindSystemSender, wantReason: "From: postmaster@example.org"},
	})
}

func TestClassify_NoReply(t *testing.T) {
	t.Parallel()
	var cases []classifyCase
	for _, addr := range []string{"noreply@example.org", "no-reply@example.org", "No_Reply@example.org", "do-not-reply@example.org",
		"donotreply@example.org", "noreply-dmarc-support@google.com", "no-reply+tag@example.org"} {
		cases = append(cases, classifyCase{name: addr, header: replaceField(base, "From", "From: "+addr), wantKind: KindSystemSender, wantReason: "From:"})
	}
	cases = append(cases, classifyCase{name: "Sender", header: base + "Sender: noreply@example.org\r\n", wantKind: KindSystemSender, wantReason: "Sender:"})
	runClassify(t, cases)
}

const dsnBody = "--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n" +
	"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; x@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
	"--b--\r\n"

func TestClassify_MultipartReport(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "delivery-status", header: base + "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n", body: dsnBody,
			wantKind: KindBounce, wantReason: "report-type=delivery-status"},
		{name: "disposition-notification", header: base + "Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n",
			body:     "--b\r\nContent-Type: message/disposition-notification\r\n\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n--b--\r\n",
			wantKind: KindAutoReply, wantReason: "report-type=disposition-notification"},
		{name: "feedback-report", header: base + "Content-Type: multipart/report; report-type=feedback-report; boundary=b\r\n",
			body:     "--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\n--b--\r\n",
			wantKind: KindSystemSender, wantReason: "feedback-report"},
		{name: "missing report-type", header: base + "Content-Type: multipart/report; boundary=b\r\n", body: "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n",
			wantKind: KindBounce, wantReason: "multipart/report"},
	})
}

func TestClassify_DeliveryStatusPart(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "inside multipart/mixed", header: base + "Content-Type: multipart/mixed; boundary=b\r\n", body: dsnBody,
			wantKind: KindBounce, wantReason: "message/delivery-status"},
		{name: "global", header: base + "Content-Type: multipart/mixed; boundary=b\r\n",
			body:     "--b\r\nContent-Type: message/global-delivery-status\r\n\r\nAction: failed\r\n--b--\r\n",
			wantKind: KindBounce, wantReason: "message/global-delivery-status"},
	})
}

func TestClassify_OwnAddress(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "our mailbox", header: replaceField(base, "From", "From: Support <Support@Example.com>"), wantKind: KindOwn, wantReason: "From: our own address support@example.com"},
		{name: "an agent", header: replaceField(base, "From", "From: alice@example.com"), wantKind: KindOwn, wantReason: "alice@example.com"},
		{name: "our envelope sender", header: "Return-Path: <support@example.com>\r\n" + base, wantKind: KindOwn, wantReason: "Return-Path"},
	})
}

func TestClassify_OwnMessageIDDomain(t *testing.T) {
	t.Parallel()
	tok := threading.Tokens{Secret: []byte("0123456789abcdef0123456789abcdef"), Domain: "helpdesk.example.com"}
	runClassify(t, []classifyCase{
		{name: "our token", header: replaceField(base, "Message-ID", "Message-ID: <"+tok.NewMessageID(5, "")+">"), wantKind: KindOwn, wantReason: "Message-ID: our own domain"},
		{name: "domain case", header: replaceField(base, "Message-ID", "Message-ID: <x@HelpDesk.Example.COM>"), wantKind: KindOwn, wantReason: "Message-ID"},
		{name: "other subdomain is not ours", header: replaceField(base, "Message-ID", "Message-ID: <x@mail.helpdesk.example.com>"), wantKind: KindHuman},
	})
}

func TestClassify_XAutoreply(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "X-Autoreply: yes", header: base + "X-Autoreply: yes\r\n", wantKind: KindAutoReply, wantReason: "X-Autoreply: yes"},
		{name: "X-Autoreply-From", header: base + "X-Autoreply-From: ann@example.org\r\n", wantKind: KindAutoReply, wantReason: "X-Autoreply-From"},
		{name: "X-Autogenerated: Reply", header: base + "X-Autogenerated: Reply\r\n", wantKind: KindAutoReply, wantReason: "X-Autogenerated"},
	})
}

func TestClassify_XAutorespond(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "X-Autorespond", header: base + "X-Autorespond: Thanks for your mail\r\n", wantKind: KindAutoReply, wantReason: "X-Autorespond"},
	})
}

func TestClassify_XAutoResponseSuppress(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "All", header: base + "X-Auto-Response-Suppress: All\r\n", wantKind: KindAutoReply, wantReason: "X-Auto-Response-Suppress: All"},
		{name: "OOF in a list", header: base + "X-Auto-Response-Suppress: DR, OOF, AutoReply\r\n", wantKind: KindAutoReply, wantReason: "OOF"},
		{name: "AutoReply", header: base + "X-Auto-Response-Suppress: autoreply\r\n", wantKind: KindAutoReply, wantReason: "autoreply"},
	})
}

func TestClassify_OutOfOfficeSubjects(t *testing.T) {
	t.Parallel()
	var cases []classifyCase
	for _, s := range []string{
		"Automatic reply: Printer on 3rd floor offline",
		"Out of Office: Printer",
		"Out of Office AutoReply: Printer",
		"AUTO: Ann Example is out of the office (returning 01.12.2026)",
		"Autoreply: Printer",
		"Auto-Reply: Printer",
		"Abwesenheitsnotiz: Drucker",
		"Automatische Antwort: Drucker",
		"Réponse automatique : Imprimante",
		"Respuesta automática: Impresora",
		"Risposta automatica: Stampante",
		"Automatisch antwoord: Printer",
		"Autosvar: Skrivare",
		"Automatyczna odpowiedź: Drukarka",
		"Автоответ: Принтер",
		"自动回复：打印机",
		"Ann is out of the office",
		"  out   of   office  ",
	} {
		cases = append(cases, classifyCase{name: s, header: replaceField(base, "Subject", "Subject: "+s), wantKind: KindOutOfOffice, wantReason: "Subject:"})
	}
	// The subject wins over the generic Auto-Submitted marker.
	cases = append(cases, classifyCase{name: "with Auto-Submitted", header: replaceField(base, "Subject", "Subject: Automatic reply: x") + "Auto-Submitted: auto-replied\r\n",
		wantKind: KindOutOfOffice, wantReason: "Subject: Automatic reply"})
	runClassify(t, cases)
}

func TestClassify_BounceSubjects(t *testing.T) {
	t.Parallel()
	var cases []classifyCase
	for _, s := range []string{
		"Undelivered Mail Returned to Sender",
		"Delivery Status Notification (Failure)",
		"Mail delivery failed: returning message to sender",
		"failure notice",
		"Undeliverable: Printer",
		"Returned mail: see transcript for details",
		"**Delivery failure**",
		"Warning: could not send message for past 4 hours",
		"Unzustellbar: Drucker",
		"Non remis : Imprimante",
	} {
		cases = append(cases, classifyCase{name: s, header: replaceField(base, "Subject", "Subject: "+s), wantKind: KindBounce, wantReason: "Subject:"})
	}
	runClassify(t, cases)
}

func TestClassify_DMARCReport(t *testing.T) {
	t.Parallel()
	runClassify(t, []classifyCase{
		{name: "aggregate report", header: replaceField(base, "Subject", "Subject: [Preview] Report Domain: example.com Submitter: example.net Report-ID: 42"),
			wantKind: KindSystemSender, wantReason: "DMARC"},
	})
}

// TestClassify_RuleOrder: when several rules fire, the most specific kind
// wins.
func TestClassify_RuleOrder(t *testing.T) {
	t.Parallel()
	bounce := replaceField(base, "From", "From: MAILER-DAEMON@mx.example.org")
	runClassify(t, []classifyCase{
		{name: "bounce with null return path", header: "Return-Path: <>\r\n" + bounce + "Auto-Submitted: auto-replied\r\n", wantKind: KindBounce},
		{name: "own address beats everything", header: "Return-Path: <>\r\n" + replaceField(base, "From", "From: support@example.com") + "Precedence: bulk\r\n", wantKind: KindOwn},
		{name: "list with null return path", header: "Return-Path: <>\r\n" + base + "List-Id: <l.example.org>\r\n", wantKind: KindList},
		{name: "bulk beats list headers", header: base + "Precedence: bulk\r\nList-Unsubscribe: <mailto:x@example.org>\r\n", wantKind: KindBulk},
	})
}

func TestClassify_NilMessage(t *testing.T) {
	t.Parallel()
	if v := Classify(nil, testOwn); !v.Automated {
		t.Errorf("Classify(nil) = %+v, want automated", v)
	}
}
