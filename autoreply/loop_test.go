package autoreply

import (
	"strings"
	"testing"

	"github.com/helpdesk/helpdesk/threading"
)

// TestClassify_PingPong plays the loop that auto-replies invite: our
// acknowledgement reaches an autoresponder, which answers; and our
// acknowledgement comes back to our own mailbox. Neither answer may be
// acknowledged again.
func TestClassify_PingPong(t *testing.T) {
	t.Parallel()
	tok := threading.Tokens{Secret: []byte("0123456789abcdef0123456789abcdef"), Domain: testOwn.Domain}
	tp, err := LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}

	customer := parse(t, base, "Please help.\r\n")
	if v := Classify(customer, testOwn); v.Automated {
		t.Fatalf("the customer's mail is classified %+v", v)
	}
	subject, body, err := tp.Ack(AckData{TicketID: 1042, Tag: "[Ticket#1042]", Subject: customer.Subject, MailboxAddress: "support@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	ackID := tok.NewMessageID(1042, "")
	// The headers CONTRACT.md requires on every auto-reply.
	ack := "From: Support <support@example.com>\r\n" +
		"To: ann@example.org\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: <" + ackID + ">\r\n" +
		"In-Reply-To: <" + customer.MessageID + ">\r\n" +
		"References: <" + customer.MessageID + ">\r\n" +
		"Auto-Submitted: auto-replied\r\n" +
		"X-Auto-Response-Suppress: All\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n"

	t.Run("our ack comes back to our mailbox", func(t *testing.T) {
		v := Classify(parse(t, ack, body), testOwn)
		if !v.Automated || v.Kind != KindOwn {
			t.Errorf("Classify = %+v, want our own mail", v)
		}
	})
	t.Run("our ack relayed by a forwarder that rewrites From", func(t *testing.T) {
		relayed := replaceField(ack, "From", "From: ann-forward@example.org")
		v := Classify(parse(t, relayed, body), testOwn)
		if !v.Automated || v.Kind != KindOwn {
			t.Errorf("Classify = %+v, want our own mail (by Message-ID domain)", v)
		}
	})

	responders := map[string]string{
		"RFC 3834 vacation": "From: ann@example.org\r\nTo: support@example.com\r\nSubject: Auto: " + subject + "\r\n" +
			"Message-ID: <v1@mail.example.org>\r\nIn-Reply-To: <" + ackID + ">\r\nAuto-Submitted: auto-replied\r\n",
		"Exchange without Auto-Submitted": "From: ann@example.org\r\nTo: support@example.com\r\nSubject: Automatic reply: " + subject + "\r\n" +
			"Message-ID: <v2@mail.example.org>\r\nX-Auto-Response-Suppress: All\r\n",
		"bounce of our ack": "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.org\r\nTo: support@example.com\r\n" +
			"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <b1@mx.example.org>\r\n",
		"subject only": "From: ann@example.org\r\nTo: support@example.com\r\nSubject: Out of Office: " + subject + "\r\nMessage-ID: <v3@mail.example.org>\r\n",
	}
	for name, h := range responders {
		t.Run(name, func(t *testing.T) {
			m := parse(t, h, "I am away.\r\n")
			v := Classify(m, testOwn)
			if !v.Automated {
				t.Errorf("Classify = %+v: the responder would get another ack", v)
			}
			if strings.Contains(h, ackID) {
				// It also threads to the ticket, so it is never a new one.
				if id, _, ok := tok.Verify(m.InReplyTo[0], m.From.Addr); !ok || id != 1042 {
					t.Errorf("the reply to our ack does not verify: %d %v", id, ok)
				}
			}
		})
	}
}
