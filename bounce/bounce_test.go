package bounce

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// ourID is a Message-ID of the kind helpdesk puts on its mail.
const ourID = "hd.17.c.xxxx.yyyy@helpdesk.example.com"

// crlf joins lines into a mail with CRLF line ends.
func crlf(ls ...string) []byte { return []byte(strings.Join(ls, "\r\n") + "\r\n") }

// lf joins lines into a mail with LF line ends.
func lf(ls ...string) []byte { return []byte(strings.Join(ls, "\n") + "\n") }

// dsnMail builds a multipart/report around a delivery-status body and a
// returned header.
func dsnMail(status ...string) []byte {
	ls := []string{
		"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>",
		"To: support@helpdesk.example.com",
		"Subject: Undelivered Mail Returned to Sender",
		"Message-ID: <bounce.1@mx.example.net>",
		"MIME-Version: 1.0",
		`Content-Type: multipart/report; report-type=delivery-status; boundary="BB"`,
		"",
		"--BB",
		"Content-Type: text/plain",
		"",
		"I'm sorry to have to inform you that your message could not",
		"be delivered to one or more recipients.",
		"",
		"--BB",
		"Content-Type: message/delivery-status",
		"",
	}
	ls = append(ls, status...)
	ls = append(ls,
		"",
		"--BB",
		"Content-Type: text/rfc822-headers",
		"",
		"From: Support <support@helpdesk.example.com>",
		"To: Customer <customer@example.org>",
		"Subject: [Ticket#17] Your request",
		"Message-ID: <"+ourID+">",
		"In-Reply-To: <cust.1@example.org>",
		"References: <cust.0@example.org>",
		" <cust.1@example.org>",
		"",
		"--BB--",
	)
	return crlf(ls...)
}

func TestParseDSN(t *testing.T) {
	t.Parallel()
	raw := dsnMail(
		"Reporting-MTA: dns; mx.example.net",
		"Arrival-Date: Mon, 2 Jun 2025 10:00:00 +0000",
		"",
		"Original-Recipient: rfc822;Customer@Example.ORG",
		"Final-Recipient: rfc822; mailbox.7@store.example.org",
		"Action: failed",
		"Status: 5.1.1",
		"Remote-MTA: dns; mx.example.org",
		"Diagnostic-Code: smtp; 550 5.1.1 <mailbox.7@store.example.org>: Recipient",
		"    address rejected: User unknown",
		"",
		"Final-Recipient: rfc822; <second@example.org>",
		"Action: delayed",
		"Status: 4.4.1",
		"Will-Retry-Until: Tue, 3 Jun 2025 10:00:00 +0000",
	)
	got := Parse(raw)
	want := Report{
		Kind: KindDSN,
		Recipients: []Recipient{
			{Addr: "customer@example.org", Status: "5.1.1", Action: "failed", Permanent: true,
				Diagnostic: "550 5.1.1 <mailbox.7@store.example.org>: Recipient address rejected: User unknown"},
			{Addr: "second@example.org", Status: "4.4.1", Action: "delayed"},
		},
		OriginalMessageID:  ourID,
		OriginalReferences: []string{"cust.0@example.org", "cust.1@example.org"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	if !got.IsBounce() || !got.Permanent() {
		t.Errorf("IsBounce %v, Permanent %v; want both true", got.IsBounce(), got.Permanent())
	}
}

// TestParseDSNVerdicts checks Action and Status combinations one group at
// a time.
func TestParseDSNVerdicts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                       string
		group                      []string
		bounce, permanent, delayed bool
		action, status             string
	}{
		{"failed 5.x.x", []string{"Final-Recipient: rfc822; a@example.org", "Action: failed", "Status: 5.2.2"}, true, true, false, "failed", "5.2.2"},
		{"failed after 4.x.x retries is temporary", []string{"Final-Recipient: rfc822; a@example.org", "Action: failed", "Status: 4.4.7"}, true, false, false, "failed", "4.4.7"},
		{"failed without status", []string{"Final-Recipient: rfc822; a@example.org", "Action: failed"}, true, true, false, "failed", ""},
		{"status from diagnostic", []string{"Final-Recipient: rfc822; a@example.org", "Action: failed", "Diagnostic-Code: smtp; 552 5.2.2 quota"}, true, true, false, "failed", "5.2.2"},
		{"basic code only", []string{"Final-Recipient: rfc822; a@example.org", "Action: failed", "Diagnostic-Code: X-LOCAL; 450 (try later)"}, true, false, false, "failed", ""},
		{"missing action, 5.x.x", []string{"Final-Recipient: rfc822; a@example.org", "Status: 5.0.0 (permanent failure)"}, true, true, false, "failed", "5.0.0"},
		{"delayed", []string{"Final-Recipient: rfc822; a@example.org", "Action: delayed", "Status: 4.0.0"}, true, false, true, "delayed", "4.0.0"},
		{"delivered is a success notice", []string{"Final-Recipient: rfc822; a@example.org", "Action: delivered", "Status: 2.0.0"}, false, false, false, "delivered", ""},
		{"deliverable means delivered", []string{"Final-Recipient: rfc822; a@example.org", "Action: deliverable", "Status: 2.1.5"}, false, false, false, "delivered", ""},
		{"relayed", []string{"Final-Recipient: rfc822; a@example.org", "Action: relayed", "Status: 2.0.0"}, false, false, false, "relayed", ""},
		{"action with comment", []string{"Final-Recipient: rfc822; a@example.org", "Action: failed (bad mailbox)", "Status: 5.1.1"}, true, true, false, "failed", "5.1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Parse(dsnMail(append([]string{"Reporting-MTA: dns; mx", ""}, tc.group...)...))
			if r.Kind != KindDSN || len(r.Recipients) != 1 {
				t.Fatalf("Kind %q, recipients %+v", r.Kind, r.Recipients)
			}
			rc := r.Recipients[0]
			if r.IsBounce() != tc.bounce || r.Permanent() != tc.permanent || r.Delayed != tc.delayed || rc.Action != tc.action {
				t.Errorf("IsBounce %v Permanent %v Delayed %v Action %q; want %v %v %v %q",
					r.IsBounce(), r.Permanent(), r.Delayed, rc.Action, tc.bounce, tc.permanent, tc.delayed, tc.action)
			}
			if tc.status != "" && rc.Status != tc.status {
				t.Errorf("Status %q, want %q", rc.Status, tc.status)
			}
		})
	}
}

// TestParseDSNQuirks feeds the malformed reports seen in the wild.
func TestParseDSNQuirks(t *testing.T) {
	t.Parallel()
	b64 := base64.StdEncoding.EncodeToString([]byte("Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; b64@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"))
	for _, tc := range []struct {
		name   string
		raw    []byte
		addrs  []string
		origID string
	}{
		{
			name: "status fields in the part header",
			raw: lf(
				"From: MAILER-DAEMON@mx.example.net",
				`Content-Type: multipart/report; report-type=delivery-status; boundary="b"`,
				"",
				"--b",
				"Content-Type: message/delivery-status",
				"Reporting-MTA: dns; mx",
				"Final-Recipient: rfc822; header@example.org",
				"Action: failed",
				"Status: 5.1.1",
				"",
				"--b--",
			),
			addrs: []string{"header@example.org"},
		},
		{
			name: "groups without blank lines",
			raw: dsnMail(
				"Reporting-MTA: dns; mx",
				"Final-Recipient: rfc822; one@example.org",
				"Action: failed",
				"Status: 5.1.1",
				"Final-Recipient: rfc822; two@example.org",
				"Action: failed",
				"Status: 5.1.1",
			),
			addrs:  []string{"one@example.org", "two@example.org"},
			origID: ourID,
		},
		{
			name: "runs of blank lines and an original recipient only",
			raw: dsnMail(
				"Reporting-MTA: dns;someserver.com", "", "", "",
				"Original-Recipient:rfc822;orig_recip@customer.com",
				"Status:5.5.0",
			),
			addrs:  []string{"orig_recip@customer.com"},
			origID: ourID,
		},
		{
			name: "base64 status part",
			raw: crlf(
				"From: MAILER-DAEMON@mx.example.net",
				`Content-Type: multipart/report; report-type=delivery-status; boundary="b"`,
				"",
				"--b",
				"Content-Type: message/delivery-status",
				"Content-Transfer-Encoding: base64",
				"",
				b64,
				"--b--",
			),
			addrs: []string{"b64@example.org"},
		},
		{
			name: "truncated returned message, no closing boundary",
			raw: crlf(
				"From: MAILER-DAEMON@mx.example.net",
				`Content-Type: multipart/report; report-type=delivery-status; boundary="b"`,
				"",
				"--b",
				"Content-Type: message/delivery-status",
				"",
				"Final-Recipient: rfc822; cut@example.org",
				"Action: failed",
				"Status: 5.1.1",
				"",
				"--b",
				"Content-Type: message/rfc822",
				"",
				"Message-ID: <"+ourID+">",
				"Subject: cut he",
			),
			addrs:  []string{"cut@example.org"},
			origID: ourID,
		},
		{
			name: "boundary parameter missing",
			raw: lf(
				"From: MAILER-DAEMON@mx.example.net",
				"Content-Type: multipart/report; report-type=delivery-status",
				"",
				"--guessed-boundary-1",
				"Content-Type: message/delivery-status",
				"",
				"Final-Recipient: rfc822; guess@example.org",
				"Action: failed",
				"Status: 5.1.1",
				"",
				"--guessed-boundary-1",
				"Content-Type: message/rfc822",
				"",
				"",
				"Message-Id: <"+ourID+">",
				"",
				"--guessed-boundary-1--",
			),
			addrs:  []string{"guess@example.org"},
			origID: ourID,
		},
		{
			name: "parts that cannot be delimited are read as text",
			raw: lf(
				"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>",
				`Content-Type: multipart/report; report-type=delivery-status; boundary="nowhere"`,
				"",
				"   ----- The following addresses had permanent fatal errors -----",
				"Final-Recipient: RFC822; inline@example.org",
				"Action: failed",
				"Status: 5.5.0",
				"",
				"Return-Path: <support@helpdesk.example.com>",
				"Message-Id: <"+ourID+">",
				"To: inline@example.org",
			),
			addrs:  []string{"inline@example.org"},
			origID: ourID,
		},
		{
			name: "CR-only line ends",
			raw: bytes.ReplaceAll(dsnMail(
				"Final-Recipient: rfc822; mac@example.org",
				"Action: failed",
				"Status: 5.1.1",
			), []byte("\r\n"), []byte("\r")),
			addrs:  []string{"mac@example.org"},
			origID: ourID,
		},
		{
			name: "global delivery status with a UTF-8 address",
			raw: lf(
				"From: MAILER-DAEMON@mx.example.net",
				`Content-Type: multipart/report; report-type=global-delivery-status; boundary="b"`,
				"",
				"--b",
				"Content-Type: message/global-delivery-status",
				"",
				"Final-Recipient: utf-8; Jörg@Bücher.example",
				"Action: failed",
				"Status: 5.1.1",
				"",
				"--b--",
			),
			addrs: []string{"jörg@bücher.example"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := parse(tc.raw)
			checkInvariants(t, tc.name, r)
			if !r.IsBounce() {
				t.Fatalf("not a bounce: %+v", r)
			}
			if diff := cmp.Diff(tc.addrs, addrsOf(r)); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			if r.OriginalMessageID != tc.origID {
				t.Errorf("OriginalMessageID %q, want %q", r.OriginalMessageID, tc.origID)
			}
		})
	}
}

func addrsOf(r Report) []string {
	var out []string
	for _, rc := range r.Recipients {
		out = append(out, rc.Addr)
	}
	return out
}

// returnedHeader is the quoted header of our mail as many NDRs print it.
var returnedHeader = []string{
	"Return-Path: <support@helpdesk.example.com>",
	"Message-ID: <" + ourID + ">",
	"From: Support <support@helpdesk.example.com>",
	"To: customer@example.org",
	"References: <cust.1@example.org>",
	"Subject: [Ticket#17] Your request",
	"",
	"Thank you for your request.",
}

func heuristicMail(from, subject string, extra []string, body ...string) []byte {
	ls := []string{"From: " + from, "To: support@helpdesk.example.com", "Subject: " + subject, "Message-ID: <own.1@mx.example.net>"}
	ls = append(ls, extra...)
	ls = append(ls, "")
	ls = append(ls, body...)
	return lf(ls...)
}

// TestParseHeuristic covers the non-standard reports of the common MTAs.
func TestParseHeuristic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name               string
		raw                []byte
		addrs              []string
		permanent, delayed bool
		status             string // of the first recipient
		origID             string
	}{
		{
			name: "qmail",
			raw: heuristicMail("MAILER-DAEMON@mx.example.net", "failure notice", nil, append([]string{
				"Hi. This is the qmail-send program at mx.example.net.",
				"I'm afraid I wasn't able to deliver your message to the following addresses.",
				"This is a permanent error; I've given up. Sorry it didn't work out.",
				"",
				"<customer@example.org>:",
				"192.0.2.1 does not like recipient.",
				"Remote host said: 550 5.1.1 <customer@example.org>... User unknown",
				"Giving up on 192.0.2.1.",
				"",
				"--- Below this line is a copy of the message.",
				"",
			}, returnedHeader...)...),
			addrs: []string{"customer@example.org"}, permanent: true, status: "5.1.1", origID: ourID,
		},
		{
			name: "exim with X-Failed-Recipients",
			raw: heuristicMail("Mail Delivery System <Mailer-Daemon@mx.example.net>", "Mail delivery failed: returning message to sender",
				[]string{"X-Failed-Recipients: one@example.org,", "  two@example.org", "Auto-Submitted: auto-replied"},
				append([]string{
					"This message was created automatically by mail delivery software.",
					"",
					"A message that you sent could not be delivered to one or more of its",
					"recipients. This is a permanent error. The following address(es) failed:",
					"",
					"  one@example.org",
					"    host mx.example.org [192.0.2.9]",
					"    SMTP error from remote mail server after RCPT TO:<one@example.org>:",
					"    550 5.1.1 <one@example.org>: Recipient address rejected",
					"  two@example.org",
					"    host mx.example.org [192.0.2.9]: 552 5.2.2 Mailbox full",
					"",
					"------ This is a copy of the message, including all the headers. ------",
					"",
				}, returnedHeader...)...),
			addrs: []string{"one@example.org", "two@example.org"}, permanent: true, status: "5.1.1", origID: ourID,
		},
		{
			name: "postfix without DSN",
			raw: heuristicMail("MAILER-DAEMON@mx.example.net (Mail Delivery System)", "Undelivered Mail Returned to Sender", nil, append([]string{
				"This is the mail system at host mx.example.net.",
				"",
				"I'm sorry to have to inform you that your message could not",
				"be delivered to one or more recipients. It's attached below.",
				"",
				"<customer@example.org>: host mx.example.org[192.0.2.9] said: 550 5.7.1",
				"    Service unavailable; client blocked (in reply to RCPT TO command)",
				"",
			}, returnedHeader...)...),
			addrs: []string{"customer@example.org"}, permanent: true, status: "5.7.1", origID: ourID,
		},
		{
			name: "sendmail",
			raw: heuristicMail("Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>", "Returned mail: see transcript for details", nil, append([]string{
				"The original message was received at Mon, 2 Jun 2025 10:00:00 +0000",
				"from support@helpdesk.example.com",
				"",
				"   ----- The following addresses had permanent fatal errors -----",
				"<customer@example.org>",
				"    (reason: 550 5.1.1 User unknown)",
				"",
				"   ----- Transcript of session follows -----",
				"... while talking to mx.example.org.:",
				">>> RCPT To:<customer@example.org>",
				"<<< 550 5.1.1 User unknown",
				"",
				"   ----- Original message follows -----",
				"",
			}, returnedHeader...)...),
			addrs: []string{"customer@example.org"}, permanent: true, status: "5.1.1", origID: ourID,
		},
		{
			name: "office 365",
			raw: heuristicMail("postmaster@outlook.example.com", "Undeliverable: [Ticket#17] Your request", nil, append([]string{
				"Delivery has failed to these recipients or groups:",
				"",
				"customer@example.org<mailto:customer@example.org>",
				"The email address you entered couldn't be found.",
				"",
				"Diagnostic information for administrators:",
				"",
				"Generating server: outlook.example.com",
				"",
				"customer@example.org",
				"Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found'",
				"",
				"Original message headers:",
				"",
			}, returnedHeader...)...),
			addrs: []string{"customer@example.org"}, permanent: true, status: "5.1.10", origID: ourID,
		},
		{
			name: "gmail",
			raw: heuristicMail("Mail Delivery Subsystem <mailer-daemon@googlemail.com>", "Delivery Status Notification (Failure)",
				[]string{"X-Failed-Recipients: customer@example.org"}, append([]string{
					"Delivery to the following recipient failed permanently:",
					"",
					"     customer@example.org",
					"",
					"Technical details of permanent failure:",
					"DNS Error: Domain name not found",
					"",
					"----- Original message -----",
					"",
				}, returnedHeader...)...),
			addrs: []string{"customer@example.org"}, permanent: true, origID: ourID,
		},
		{
			name: "lotus domino",
			raw: heuristicMail("Postmaster@notes.example.org", "DELIVERY FAILURE: User customer not listed", nil,
				"Your message",
				"",
				"  Subject: [Ticket#17] Your request",
				"",
				"was not delivered to:",
				"",
				"  customer@example.org",
				"",
				"because:",
				"",
				"  User customer (customer@example.org) not listed in Domino Directory",
			),
			addrs: []string{"customer@example.org"}, permanent: true,
		},
		{
			name: "exim delay warning",
			raw: heuristicMail("Mail Delivery System <Mailer-Daemon@mx.example.net>", "Warning: message 1abc-0001 delayed 24 hours",
				[]string{"X-Failed-Recipients: customer@example.org"},
				"This message was created automatically by mail delivery software.",
				"A message that you sent has not yet been delivered to one or more of its",
				"recipients after more than 24 hours on the queue on mx.example.net.",
				"",
				"  customer@example.org",
				"    host mx.example.org [192.0.2.9]: 451 4.3.0 Temporary local problem",
				"",
				"No action is required on your part. Delivery attempts will continue for",
				"some time, and this warning may be repeated at intervals if the message",
				"remains undelivered. Eventually the mail delivery software will give up,",
				"and when that happens, the message will be returned to you.",
			),
			addrs: []string{"customer@example.org"}, delayed: true, status: "4.3.0",
		},
		{
			name: "temporary reply code",
			raw: heuristicMail("MAILER-DAEMON@mx.example.net", "Returned mail: Cannot send message for 5 days", nil,
				"   ----- Transcript of session follows -----",
				"421 example.org (smtp)... Deferred: Connection timed out",
				"",
				"   ----- Unsent message follows -----",
				"From: support@helpdesk.example.com",
				"To: customer@example.org",
				"Subject: [Ticket#17] Your request",
			),
			addrs: []string{"customer@example.org"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := parse(tc.raw)
			checkInvariants(t, tc.name, r)
			if r.Kind != KindHeuristic || !r.IsBounce() {
				t.Fatalf("Kind %q, IsBounce %v", r.Kind, r.IsBounce())
			}
			if diff := cmp.Diff(tc.addrs, addrsOf(r)); diff != "" {
				t.Errorf("addresses (-want +got):\n%s", diff)
			}
			if r.Permanent() != tc.permanent || r.Delayed != tc.delayed {
				t.Errorf("Permanent %v Delayed %v, want %v %v; %+v", r.Permanent(), r.Delayed, tc.permanent, tc.delayed, r.Recipients)
			}
			if len(r.Recipients) > 0 && r.Recipients[0].Status != tc.status {
				t.Errorf("Status %q, want %q (diagnostic %q)", r.Recipients[0].Status, tc.status, r.Recipients[0].Diagnostic)
			}
			if r.OriginalMessageID != tc.origID {
				t.Errorf("OriginalMessageID %q, want %q", r.OriginalMessageID, tc.origID)
			}
		})
	}
}

// TestNotBounce checks mails that look a little like bounces but are not.
func TestNotBounce(t *testing.T) {
	t.Parallel()
	exim := []string{
		"This message was created automatically by mail delivery software.",
		"A message that you sent could not be delivered to one or more of its",
		"recipients. This is a permanent error. The following address(es) failed:",
		"  colleague@example.org",
	}
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"person mentions a failed delivery", heuristicMail("Customer <customer@example.org>", "Question",
			nil, "Hi, my last mail could not be delivered to your sales team, it was returned to sender.")},
		{"customer writes about a parcel", heuristicMail("Customer <customer@example.org>", "Delivery failure",
			nil, "Hello, my order could not be delivered and was returned to sender. Delivery failed twice.")},
		{"customer pastes a bounce into a new mail", heuristicMail("Customer <customer@example.org>", "Your colleague's address",
			nil, append([]string{"I got this when writing to your colleague:", ""}, exim...)...)},
		{"person forwards a bounce", heuristicMail("Customer <customer@example.org>", "Fwd: Mail delivery failed: returning message to sender",
			nil, append([]string{"Why did this bounce?", "", "---------- Forwarded message ---------"}, exim...)...)},
		{"person replies to a bounce", heuristicMail("Customer <customer@example.org>", "Re: Undelivered Mail Returned to Sender",
			[]string{"X-Mailer: Thunderbird"}, append([]string{"See below.", ""}, exim...)...)},
		{"out of office", heuristicMail("Customer <customer@example.org>", "Automatic reply: [Ticket#17] Your request",
			[]string{"Auto-Submitted: auto-replied", "Return-Path: <>"}, "I am out of the office until Monday.")},
		{"postmaster acknowledgement", heuristicMail("Postmaster <postmaster@example.org>", "Your message was received",
			[]string{"Auto-Submitted: auto-replied", "Return-Path: <>"}, "Thank you, your message has been received and will be read soon.")},
		{"read receipt from a daemon", lf(
			"From: MAILER-DAEMON@mx.example.net",
			"Subject: Delivery Status Notification (Failure)",
			`Content-Type: multipart/report; report-type=disposition-notification; boundary="b"`,
			"",
			"--b",
			"Content-Type: message/disposition-notification",
			"",
			"Final-Recipient: rfc822; customer@example.org",
			"Disposition: manual-action/MDN-sent-manually; displayed",
			"--b--",
		)},
		{"empty", nil},
		{"only a header, from a person", []byte("From: customer@example.org\r\nSubject: failure notice\r\n")},
		{"binary junk", bytes.Repeat([]byte{0, 0xff, '\r', 0xfe, ':', '\n'}, 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := parse(tc.raw)
			checkInvariants(t, tc.name, r)
			if r.IsBounce() || r.Kind != "" {
				t.Errorf("read as a bounce: %+v", r)
			}
		})
	}
}

// TestOriginalMessageID checks where the returned message's ids are found.
func TestOriginalMessageID(t *testing.T) {
	t.Parallel()
	daemon := []string{"From: MAILER-DAEMON@mx.example.net", "Subject: Undeliverable: x", "Message-ID: <own@mx.example.net>"}
	report := []string{"Your message could not be delivered to:", "", "  customer@example.org", ""}
	for _, tc := range []struct {
		name     string
		raw      []byte
		id       string
		refs     []string
		noBounce bool
	}{
		{
			name: "folded Message-Id in a quoted block",
			raw:  lf(append(append(append(daemon, ""), report...), "Original message follows.", "", "Message-Id:", "  <"+ourID+">", "In-Reply-To: <a@example.org>", "")...),
			id:   ourID, refs: []string{"a@example.org"},
		},
		{
			name: "indented quoted block",
			raw:  lf(append(append(append(daemon, ""), report...), "  Return-Path: <support@helpdesk.example.com>", "  Message-ID: <"+ourID+">", "  References: <a@example.org>", "    <b@example.org>", "")...),
			id:   ourID, refs: []string{"a@example.org", "b@example.org"},
		},
		{
			name: "no space after the colon",
			raw:  lf(append(append(append(daemon, ""), report...), "Message-ID:<"+ourID+">", "Date:Fri, 12 Dec 2014 10:46:23 +0000", "")...),
			id:   ourID,
		},
		{
			name: "message/rfc822 after an mbox From line wins over text",
			raw: lf(append(daemon,
				`Content-Type: multipart/mixed; boundary="b"`,
				"",
				"--b",
				"Content-Type: text/plain",
				"",
				"Unable to deliver message to: <customer@example.org>",
				"Message-ID: <mentioned@elsewhere.example>",
				"",
				"--b",
				"Content-Type: message/rfc822",
				"",
				"From support@helpdesk.example.com Mon Jun  2 10:00:00 2025",
				"Message-ID: <"+ourID+">",
				"",
				"body",
				"--b--",
			)...),
			id: ourID,
		},
		{
			name:     "the bounce's own Message-ID is not the original",
			raw:      lf(append(append(daemon, ""), report...)...),
			id:       "",
			noBounce: false,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := parse(tc.raw)
			checkInvariants(t, tc.name, r)
			if !r.IsBounce() {
				t.Fatalf("not a bounce: %+v", r)
			}
			if r.OriginalMessageID != tc.id {
				t.Errorf("OriginalMessageID %q, want %q", r.OriginalMessageID, tc.id)
			}
			if diff := cmp.Diff(tc.refs, r.OriginalReferences); diff != "" {
				t.Errorf("OriginalReferences (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, enhanced, basic string }{
		{"550 5.1.1 <a@b.example>... User unknown", "5.1.1", "550"},
		{"host 192.0.2.4 said: no", "", ""},
		{"remote host 192.0.2.32 said: 550 Unknown user", "", "550"},
		{". (#5.5.0)", "5.5.0", ""},
		{"550-5.7.26 Unauthenticated email", "5.7.26", "550"},
		{"see DSN 5.1.10 Errors.", "5.1.10", ""},
		{"version 2.5.10.3", "", ""},
		{"ERROR_CODE :550, ERROR_CODE :5.1.1", "5.1.1", "550"},
		{"id 4501 at 12:45:10", "", ""},
		{"smtp; 452 4.2.2 quota", "4.2.2", "452"},
		{"code 5.1.1.", "5.1.1", ""},
		{"A550 B", "", ""},
	} {
		if got := enhancedCode(tc.in); got != tc.enhanced {
			t.Errorf("enhancedCode(%q) = %q, want %q", tc.in, got, tc.enhanced)
		}
		if got := basicCode(tc.in); got != tc.basic {
			t.Errorf("basicCode(%q) = %q, want %q", tc.in, got, tc.basic)
		}
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"  550 5.1.1\r\n    user\tunknown \x00\x1b[31m ", "550 5.1.1 user unknown [31m"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{"line\u2028sep", "line sep"},
	} {
		if got := oneLine(tc.in); got != tc.want {
			t.Errorf("oneLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := oneLine(strings.Repeat("é", 1000))
	if n := utf8.RuneCountInString(long); n != maxDiagnostic {
		t.Errorf("long diagnostic has %d characters, want %d", n, maxDiagnostic)
	}
	spaced := oneLine(strings.Repeat("ab ", 500))
	if n := utf8.RuneCountInString(spaced); n > maxDiagnostic || strings.HasSuffix(spaced, " ") {
		t.Errorf("spaced diagnostic: %d characters, %q at the end", n, spaced[len(spaced)-3:])
	}
}

// TestLimits feeds oversized and hostile input: the report must still be
// read from the first MiB and the result stay within its bounds.
func TestLimits(t *testing.T) {
	t.Parallel()
	t.Run("big attachment after the status", func(t *testing.T) {
		t.Parallel()
		raw := dsnMail("Final-Recipient: rfc822; big@example.org", "Action: failed", "Status: 5.2.3")
		raw = bytes.Replace(raw, []byte("--BB--"), []byte("--BB\r\nContent-Type: application/octet-stream\r\n\r\n"+strings.Repeat("A", 8<<20)+"\r\n--BB--"), 1)
		r := parse(raw)
		if diff := cmp.Diff([]string{"big@example.org"}, addrsOf(r)); diff != "" || r.OriginalMessageID != ourID {
			t.Errorf("addresses (-want +got):\n%s; original id %q", diff, r.OriginalMessageID)
		}
	})
	t.Run("many recipients", func(t *testing.T) {
		t.Parallel()
		var groups []string
		for i := 0; i < 5000; i++ {
			groups = append(groups, fmt.Sprintf("Final-Recipient: rfc822; r%d@example.org", i), "Action: failed", "Status: 5.1.1", "")
		}
		r := parse(dsnMail(groups...))
		if len(r.Recipients) != maxRecipients || !r.Permanent() {
			t.Errorf("%d recipients, permanent %v; want %d, true", len(r.Recipients), r.Permanent(), maxRecipients)
		}
	})
	t.Run("many parts", func(t *testing.T) {
		t.Parallel()
		var b strings.Builder
		b.WriteString("From: MAILER-DAEMON@x.example\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n")
		for i := 0; i < 20000; i++ {
			fmt.Fprintf(&b, "--b\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; p%d@example.org\nAction: failed\n\n", i)
		}
		r := parse([]byte(b.String()))
		if n := len(r.Recipients); n == 0 || n >= maxParts {
			t.Errorf("%d recipients from 20000 parts; want 1..%d (parts are capped)", n, maxParts-1)
		}
	})
	t.Run("nesting bomb", func(t *testing.T) {
		t.Parallel()
		var b strings.Builder
		b.WriteString("From: MAILER-DAEMON@x.example\nSubject: failure notice\n")
		for i := 0; i < 5000; i++ {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i)
		}
		b.WriteString("Content-Type: text/plain\n\ndeep\n")
		r := parse([]byte(b.String()))
		checkInvariants(t, "nesting bomb", r)
	})
	t.Run("huge header", func(t *testing.T) {
		t.Parallel()
		raw := append([]byte("From: MAILER-DAEMON@x.example\nX-Junk: "+strings.Repeat("j", 3<<20)+"\n"), dsnMail("Final-Recipient: rfc822; h@example.org", "Action: failed")...)
		r := parse(raw)
		checkInvariants(t, "huge header", r)
	})
	// The inputs below once took seconds to minutes (quadratic unfolding
	// and quoted-block scanning); they must stay linear.
	for name, raw := range map[string][]byte{
		"many invalid Message-ID lines": []byte("From: MAILER-DAEMON@x.example\nSubject: failure notice\n\n" + strings.Repeat("Message-ID: <\n", 70000)),
		"header of continuation lines":  []byte("From: a@b.example\nX: " + strings.Repeat(" a\n", 300000) + "\nbody"),
		"status of continuation lines":  []byte("From: MAILER-DAEMON@x.example\nSubject: failure notice\n\nDiagnostic-Code: x\n" + strings.Repeat(" a\n", 300000)),
		"quoted block of 70000 fields":  []byte("From: MAILER-DAEMON@x.example\nSubject: failure notice\n\n" + strings.Repeat("X-A: b\n", 70000) + "Message-ID: <a@b>\n"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkInvariants(t, name, parse(raw))
		})
	}
	t.Run("long lines without line ends", func(t *testing.T) {
		t.Parallel()
		raw := []byte("From: MAILER-DAEMON@x.example\nSubject: failure notice\n\nThis is the qmail-send program " + strings.Repeat("a@b.example ", 200000))
		r := parse(raw)
		checkInvariants(t, "long line", r)
	})
}

// TestParseRecovers checks that Parse and parse agree on ordinary input
// (Parse only adds the panic guard).
func TestParseRecovers(t *testing.T) {
	t.Parallel()
	raw := dsnMail("Final-Recipient: rfc822; a@example.org", "Action: failed", "Status: 5.1.1")
	if diff := cmp.Diff(parse(raw), Parse(raw)); diff != "" {
		t.Errorf("Parse and parse differ:\n%s", diff)
	}
}
