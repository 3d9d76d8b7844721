package ticket

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/helpdesk/helpdesk/bounce"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

// dsn is an RFC 3464 report from a remote MTA about the mail origID sent to
// rcpt; action is failed or delayed.
func dsn(id, origID, rcpt, action, status, diag string) string {
	return fmt.Sprintf(`From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: support@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <%s>
Date: Tue, 24 Nov 2026 10:05:00 +0000
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BOUND"

--BOUND
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.
I'm sorry to have to inform you that your message could not be delivered.

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; %s
Action: %s
Status: %s
Diagnostic-Code: smtp; %s

--BOUND
Content-Type: text/rfc822-headers

From: support@example.com
To: %s
Subject: [Ticket#1] Printer offline
Message-ID: <%s>

--BOUND--
`, id, rcpt, action, status, diag, rcpt, origID)
}

// qmailBounce is a non-standard report quoting the returned header.
func qmailBounce(id, origID, rcpt string) string {
	return fmt.Sprintf(`From: MAILER-DAEMON@mx.example.org
To: support@example.com
Subject: failure notice
Message-ID: <%s>
Date: Tue, 24 Nov 2026 10:05:00 +0000

Hi. This is the qmail-send program at mx.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<%s>:
550 5.1.1 The email account that you tried to reach does not exist.

--- Below this line is a copy of the message.

Return-Path: <support@example.com>
Message-ID: <%s>
From: support@example.com
To: %s
Subject: [Ticket#1] Printer offline

Thank you for your mail.
`, id, rcpt, origID, rcpt)
}

// sentOf returns the queued mails of kind since n, marking them sent as
// the outbox worker would.
func (h *harness) sentOf(n int, kind string) []sent {
	h.t.Helper()
	var out []sent
	for _, s := range h.queuedSince(n) {
		if s.Kind != kind {
			continue
		}
		if err := h.db.OutboxSent(s.Outbound.ID, h.now); err != nil {
			h.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func (h *harness) message(ticketID uint64, msgID string) store.Message {
	h.t.Helper()
	for _, m := range h.messages(ticketID) {
		if m.MessageID == msgID {
			return m
		}
	}
	h.t.Fatalf("ticket %d has no message %s", ticketID, msgID)
	return store.Message{}
}

func (h *harness) held(kind, addr string) bool {
	h.t.Helper()
	var ok bool
	h.db.View(func(tx *store.Tx) error { _, ok = tx.ActiveHold(kind, addr, h.now); return nil })
	return ok
}

func TestBounceOfAcknowledgementIsRecordedAndHoldsTheAddress(t *testing.T) {
	for name, report := range map[string]func(id, orig, rcpt string) string{
		"dsn": func(id, orig, rcpt string) string {
			return dsn(id, orig, rcpt, "failed", "5.1.1", "550 5.1.1 <"+rcpt+">: Recipient address rejected: User unknown")
		},
		"qmail": qmailBounce,
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, agentConfig)
			startTicket(h)
			acks := h.sentOf(0, store.KindAutoreply)
			if len(acks) != 1 {
				t.Fatalf("%d acknowledgements", len(acks))
			}
			ackID := acks[0].MessageID
			n := h.queuedCount()
			r := h.handle(report("b1@mx.example.org", ackID, ann))
			if !r.Bounce || r.TicketID != 1 || r.Rule != ruleBounce || r.Acked || r.Notified != 0 {
				t.Fatalf("bounce: %+v", r)
			}
			if h.queuedCount() != n {
				t.Errorf("a bounce caused %d outbound mails", h.queuedCount()-n)
			}
			if s := h.ticket(1).Status; s != store.StatusNew {
				t.Errorf("status %s after a bounce", s)
			}
			b := h.lastInbound(1)
			if b.Automated != "bounce" || b.MessageID != "b1@mx.example.org" || !slices.ContainsFunc(b.Warnings, func(w string) bool {
				return strings.Contains(w, ann) && strings.Contains(w, "5.1.1")
			}) {
				t.Errorf("stored bounce: automated %q warnings %q", b.Automated, b.Warnings)
			}
			ack := h.message(1, ackID)
			if ack.Delivery == nil || ack.Delivery.Status != "bounced" || !strings.Contains(ack.Delivery.LastError, "5.1.1") || ack.Delivery.SentAt.IsZero() {
				t.Errorf("acknowledgement delivery %+v", ack.Delivery)
			}
			if !h.held(store.HoldUndeliverable, ann) {
				t.Fatal("address not held after a permanent bounce")
			}
			// Ann's next new ticket gets no acknowledgement; the agents still hear of it.
			r = h.handle(customerMail("Scanner too", "c9@example.org", ""))
			if r.TicketID != 2 || r.Acked || !strings.Contains(r.Reason, "on hold") || r.Notified != 3 {
				t.Errorf("mail from a held address: %+v", r)
			}
			// A day later she is acknowledged again.
			h.now = h.now.Add(defaultUndeliverableFor + time.Minute)
			if r := h.handle(customerMail("Mouse", "c10@example.org", "")); !r.Acked {
				t.Errorf("hold did not end: %+v", r)
			}
		})
	}
}

func TestBouncedRelayNotifiesAgentsAndHoldsOnlyTheFailedRecipient(t *testing.T) {
	h := newHarness(t, agentConfig)
	notes := startTicket(h)
	n := h.queuedCount()
	h.handle(replyMail("Alice Smith <alice@example.com>", "support@example.com", "Re: [Ticket#1] Printer offline",
		"a1@mail.example.com", notes[alice].MessageID, "Please restart it."))
	relays := h.sentOf(n, store.KindAgent)
	if len(relays) != 1 || !slices.Equal(relays[0].Outbound.To, []string{ann, "dan@example.org"}) {
		t.Fatalf("relay: %+v", relays)
	}
	n = h.queuedCount()
	r := h.handle(dsn("b2@mx.example.org", relays[0].MessageID, "dan@example.org", "failed", "5.2.1", "550 5.2.1 mailbox disabled"))
	if !r.Bounce || r.TicketID != 1 || r.Notified != 3 {
		t.Fatalf("bounced relay: %+v", r)
	}
	got := h.queuedSince(n)
	if rc := recipients(got); !slices.Equal(rc, []string{alice, bob, carol}) {
		t.Errorf("bounce notice went to %v, want the three agents", rc)
	}
	if !strings.Contains(got[0].Text, "dan@example.org: 5.2.1 550 5.2.1 mailbox disabled") {
		t.Errorf("notice text:\n%s", got[0].Text)
	}
	if s := h.ticket(1).Status; s != store.StatusPending {
		t.Errorf("status %s, want pending (a bounce does not reopen)", s)
	}
	if !h.held(store.HoldUndeliverable, "dan@example.org") || h.held(store.HoldUndeliverable, ann) {
		t.Error("hold must cover exactly the failed recipient")
	}
	// A second answer still goes to both, with a warning about dan.
	n = h.queuedCount()
	h.handle(replyMail(alice, "support@example.com", "Re: [Ticket#1] Printer offline",
		"a2@mail.example.com", notes[alice].MessageID, "Did it work?"))
	if relays := h.sentOf(n, store.KindAgent); len(relays) != 1 || len(relays[0].Outbound.To) != 2 {
		t.Fatalf("relay to a held address: %+v", relays)
	}
	agentMsg := h.message(1, "a2@mail.example.com")
	if !slices.ContainsFunc(agentMsg.Warnings, func(w string) bool { return strings.Contains(w, "dan@example.org is on hold") }) {
		t.Errorf("agent message warnings %q", agentMsg.Warnings)
	}
}

// A notification that bounces is recorded and holds the agent's address,
// but notifies nobody: a broken agent address cannot start a loop.
func TestBouncedNotificationNotifiesNobody(t *testing.T) {
	h := newHarness(t, agentConfig)
	notes := startTicket(h)
	h.sentOf(0, store.KindNotification)
	n := h.queuedCount()
	r := h.handle(dsn("b3@mx.example.org", notes[carol].MessageID, carol, "failed", "5.1.1", "550 no such user"))
	if !r.Bounce || r.TicketID != 1 || r.Notified != 0 || h.queuedCount() != n {
		t.Fatalf("bounced notification: %+v, %d queued", r, h.queuedCount()-n)
	}
	r = h.handle(customerMail("Re: [Ticket#1] Printer offline", "c2@example.org", "", "References: <c1@example.org>\n"))
	if r.Notified != 2 {
		t.Errorf("notifications after carol's bounce: %d, want alice and bob only", r.Notified)
	}
}

// A report about mail we never sent, or naming an address we never wrote
// to, holds nobody.
func TestForgedBouncesHoldNobody(t *testing.T) {
	h := newHarness(t, agentConfig)
	startTicket(h)
	acks := h.sentOf(0, store.KindAutoreply)
	n := h.queuedCount()
	r := h.handle(dsn("f1@mx.example.org", "never-sent@helpdesk.example.com", ann, "failed", "5.1.1", "550 unknown"))
	if !r.Bounce || r.TicketID != 2 || r.Acked || r.Notified != 0 || h.queuedCount() != n {
		t.Errorf("report about unknown mail: %+v", r)
	}
	r = h.handle(dsn("f2@mx.example.org", acks[0].MessageID, "victim@example.net", "failed", "5.1.1", "550 unknown"))
	if r.TicketID != 1 || h.held(store.HoldUndeliverable, "victim@example.net") || h.held(store.HoldUndeliverable, ann) {
		t.Errorf("report naming a stranger: %+v", r)
	}
}

func TestDelayReportIsNotedWithoutHold(t *testing.T) {
	h := newHarness(t)
	h.handle(msg("ann@example.org", "Printer", "p1@example.org"))
	acks := h.sentOf(0, store.KindAutoreply)
	r := h.handle(dsn("d1@mx.example.org", acks[0].MessageID, "ann@example.org", "delayed", "4.4.7", "451 4.4.7 try again later"))
	if !r.Bounce || r.TicketID != 1 {
		t.Fatalf("delay report: %+v", r)
	}
	ack := h.message(1, acks[0].MessageID)
	if ack.Delivery.Status != "sent" || !strings.Contains(ack.Delivery.LastError, "delayed") {
		t.Errorf("delivery after a delay report: %+v", ack.Delivery)
	}
	if h.held(store.HoldUndeliverable, "ann@example.org") {
		t.Error("a delay held the address")
	}
}

// Every delivery report of the corpus whose returned Message-ID can be
// read threads to the ticket of that mail once the id is one of ours: the
// corpus report is rewritten to be about an acknowledgement we sent to
// its first failed recipient.
func TestCorpusBouncesThreadToTheMailThatBounced(t *testing.T) {
	dir := filepath.Join("..", "threading", "testdata", "corpus")
	categories := readManifest(t, filepath.Join(dir, "manifest.tsv"))
	h := newHarness(t, func(c *Config) { c.MaxPerSender = 1000; c.MaxMessageBytes = 25 << 20 })
	var paths []string
	for p, cat := range categories {
		if cat == "bounce" {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	var threaded, held, skipped int
	for i, p := range paths {
		raw, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		rep := bounce.Parse(raw)
		if !rep.IsBounce() || rep.OriginalMessageID == "" || len(rep.Recipients) == 0 {
			skipped++
			continue
		}
		rcpt := rep.Recipients[0].Addr
		h.now = h.now.Add(defaultUndeliverableFor + time.Minute) // earlier holds are over
		n := h.queuedCount()
		r := h.handle(msg(rcpt, fmt.Sprintf("Corpus case %d", i), fmt.Sprintf("corpus%d@example.org", i)))
		acks := h.sentOf(n, store.KindAutoreply)
		if len(acks) != 1 {
			skipped++ // an address the classifier calls automated (postmaster, no-reply ...)
			continue
		}
		ackID := acks[0].MessageID
		mine := bytes.ReplaceAll(raw, []byte(rep.OriginalMessageID), []byte(ackID))
		if got := bounce.Parse(mine); got.OriginalMessageID != ackID {
			skipped++ // the id is folded or encoded in the report
			continue
		}
		n = h.queuedCount()
		b := h.handle(string(mine))
		if b.Rule == threading.RuleDuplicate {
			skipped++
			continue
		}
		if !b.Bounce || b.TicketID != r.TicketID || b.Acked || h.queuedCount() != n {
			t.Errorf("%s: %+v (ticket %d), %d mails queued", p, b, r.TicketID, h.queuedCount()-n)
			continue
		}
		threaded++
		ack := h.message(r.TicketID, ackID)
		if rep.Delayed {
			if ack.Delivery.Status != "sent" {
				t.Errorf("%s: delay report changed the status: %+v", p, ack.Delivery)
			}
		} else if ack.Delivery.Status != "bounced" {
			t.Errorf("%s: delivery %+v", p, ack.Delivery)
		}
		if h.held(store.HoldUndeliverable, rcpt) {
			held++
			if !rep.Recipients[0].Permanent || rep.Delayed {
				t.Errorf("%s: %s held after a report that is not permanent", p, rcpt)
			}
		}
	}
	t.Logf("corpus: %d delivery reports; %d threaded to the mail that bounced (%d addresses held), %d skipped", len(paths), threaded, held, skipped)
	if threaded < len(paths)/2 {
		t.Errorf("only %d of %d corpus reports threaded", threaded, len(paths))
	}
}
