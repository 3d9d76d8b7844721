package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/helpdesk/helpdesk/admin"
	"github.com/helpdesk/helpdesk/config"
	"github.com/helpdesk/helpdesk/inbox"
	"github.com/helpdesk/helpdesk/internal/mailtest"
	"github.com/helpdesk/helpdesk/store"
)

const (
	robot = "robot@example.net"
	agent = "alice@example.com"
)

// settleIDs waits until every Message-ID in ids is stored (on a ticket or in
// quarantine) and the outbox is empty: then every mail those caused has
// reached the SMTP sink.
func (e *env) settleIDs(ids []string) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("%d mails stored", len(ids)), func(tx *store.Tx) bool {
		for _, id := range ids {
			if !tx.KnownKey("<" + id + ">") {
				return false
			}
		}
		return true
	})
	// Outside eventually's read transaction: a nested one can deadlock
	// against a writer waiting to grow the file.
	e.settle()
}

// toAddr returns the sent mails whose envelope includes addr.
func toAddr(ms []mailtest.Received, addr string) []mailtest.Received {
	var out []mailtest.Received
	for _, m := range ms {
		if slices.Contains(m.To, addr) {
			out = append(out, m)
		}
	}
	return out
}

// pingPong plays an auto-responder at robot: every mail helpdesk sends it
// is answered by reply (appended to the INBOX), until helpdesk stops
// writing. It returns how many mails helpdesk sent to robot; more than
// limit fails the test as a loop.
func (e *env) pingPong(first string, reply func(n int, got mailtest.Received) (id, raw string), limit int) int {
	e.t.Helper()
	ids := []string{first}
	seen, sent := 0, 0
	for {
		e.settleIDs(ids)
		all := e.smtp.Messages()
		fresh := toAddr(all[seen:], robot)
		seen = len(all)
		if len(fresh) == 0 {
			return sent
		}
		for _, m := range fresh {
			sent++
			if sent > limit {
				e.t.Fatalf("helpdesk sent %d mails to the auto-responder: a loop", sent)
			}
			id, raw := reply(sent, m)
			e.deliver(raw)
			ids = append(ids, id)
		}
	}
}

func withAgent(e *env) {
	e.cfg.Agents = []config.Agent{{Email: agent, Name: "Alice"}}
}

// (a) An auto-responder that answers every mail, without Auto-Submitted
// but with In-Reply-To: its answer threads into the ticket by our token,
// and follow-ups are never acknowledged, so it gets one mail.
func TestPingPongWithAnAutoResponderThatThreads(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	withAgent(e)
	e.start()
	e.deliver(mailFrom("Robot <"+robot+">", "Hello", "r0@example.net"))
	n := e.pingPong("r0@example.net", func(i int, got mailtest.Received) (string, string) {
		h := header(t, got.Data)
		subject, _ := h.Subject()
		id := fmt.Sprintf("r%d@example.net", i)
		return id, mailFrom("Robot <"+robot+">", "Re: "+subject, id, "In-Reply-To: "+h.Get("Message-Id")+"\n")
	}, 20)
	t.Logf("ping-pong (a), auto-responder keeping In-Reply-To: helpdesk sent %d mail(s) to it", n)
	if n != 1 {
		t.Errorf("%d mails to the auto-responder, want 1 (the acknowledgement)", n)
	}
	if c := e.ticketCount(); c != 1 {
		t.Errorf("%d tickets, want 1", c)
	}
	if got := toAddr(e.smtp.Messages(), agent); len(got) != 2 {
		t.Errorf("%d notifications to the agent, want 2 (new ticket, the answer)", len(got))
	}
}

// (b) One that strips every loop header, drops In-Reply-To and References
// and changes its subject each time: each answer is a new ticket, and the
// per-sender limit (5 within an hour) ends it.
func TestPingPongWithAnAutoResponderThatHidesEverything(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	withAgent(e)
	e.start()
	e.deliver(mailFrom("Robot <"+robot+">", "Hello", "r0@example.net"))
	n := e.pingPong("r0@example.net", func(i int, _ mailtest.Received) (string, string) {
		id := fmt.Sprintf("r%d@example.net", i)
		return id, mailFrom("Robot <"+robot+">", fmt.Sprintf("Your request %d has been received", 1000+i), id)
	}, 20)
	t.Logf("ping-pong (b), auto-responder hiding every loop marker: helpdesk sent %d mail(s) to it", n)
	if n != e.cfg.Autoreply.MaxPerSender {
		t.Errorf("%d mails to the auto-responder, want %d (autoreply.max_per_sender)", n, e.cfg.Autoreply.MaxPerSender)
	}
	if c := e.ticketCount(); c != n+1 {
		t.Errorf("%d tickets, want %d: every answer is kept", c, n+1)
	}
}

// fixedAdmin puts the admin API on a free port known before start, so a
// test can reach it without asking the running daemon.
func (e *env) fixedAdmin() {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.cfg.HTTP.Listen = ln.Addr().String()
	ln.Close()
}

// adminBase waits for the admin API of fixedAdmin and returns its URL.
func (e *env) adminBase() string {
	e.t.Helper()
	base := "http://" + e.cfg.HTTP.Listen
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("admin API at %s never answered: %v", base, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric reads one sample of the daemon's /metrics.
func (e *env) metric(name string) string {
	e.t.Helper()
	resp, err := http.Get(e.adminBase() + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		e.t.Fatalf("metric %s not found", name)
	}
	return string(m[1])
}

// An address that keeps writing trips the breaker once: paused, one alert
// mail to the administrator, the counter at 1.
func TestCircuitBreakerAlertsTheAdministratorOnce(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	e.cfg.Autoreply.MaxPerSender = 2
	e.cfg.Autoreply.PauseAfter = 3
	e.cfg.Autoreply.PauseFor = time.Hour
	e.cfg.Alerts.AdminEmail = "admin@example.net"
	e.fixedAdmin()
	e.start()
	var ids []string
	for i := range 10 {
		id := fmt.Sprintf("flood%d@example.net", i)
		e.deliver(mailFrom("Robot <"+robot+">", fmt.Sprintf("Question %d", i), id))
		ids = append(ids, id)
	}
	e.settleIDs(ids)
	sent := e.smtp.Messages()
	alerts := toAddr(sent, "admin@example.net")
	if n := len(toAddr(sent, robot)); n != 2 || len(alerts) != 1 {
		t.Fatalf("%d acknowledgements and %d alerts, want 2 and 1", n, len(alerts))
	}
	if h := header(t, alerts[0].Data); h.Get("Auto-Submitted") != "auto-generated" || !strings.Contains(string(alerts[0].Data), robot) {
		t.Errorf("alert mail:\n%s", alerts[0].Data)
	}
	if v := e.metric("helpdesk_breaker_trips_total"); v != "1" {
		t.Errorf("helpdesk_breaker_trips_total %s", v)
	}
	if v := e.metric(`helpdesk_addresses_on_hold{kind="paused"}`); v != "1" {
		t.Errorf("paused addresses %s", v)
	}
	if c := e.ticketCount(); c != 10 {
		t.Errorf("%d tickets, want 10: nothing is dropped", c)
	}
}

// dsnFor is a delivery status notification about the mail origID to rcpt.
func dsnFor(id, origID, rcpt string) string {
	return fmt.Sprintf(`From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: support@example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <%s>
Date: Tue, 24 Nov 2026 10:05:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

Your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Final-Recipient: rfc822; %s
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--B
Content-Type: message/rfc822

From: support@example.com
To: %s
Subject: [Ticket#1] Printer
Message-ID: %s

Thank you.

--B--
`, id, rcpt, rcpt, origID)
}

// A bounce of the acknowledgement is threaded to its ticket, marks the
// acknowledgement bounced, sends nothing, and holds the address: the
// customer's next ticket is not acknowledged.
func TestBounceIsThreadedAndHoldsTheAddress(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	withAgent(e)
	e.fixedAdmin()
	e.start()
	e.deliver(mailFrom("Ann <ann@example.org>", "Printer", "p1@example.org"))
	e.settleIDs([]string{"p1@example.org"})
	ack := toAddr(e.smtp.Messages(), "ann@example.org")
	if len(ack) != 1 {
		t.Fatalf("%d acknowledgements", len(ack))
	}
	before := len(e.smtp.Messages())
	e.deliver(dsnFor("dsn1@mx.example.org", header(t, ack[0].Data).Get("Message-Id"), "ann@example.org"))
	e.settleIDs([]string{"dsn1@mx.example.org"})
	if got := e.smtp.Messages(); len(got) != before {
		t.Errorf("the bounce caused %d mails", len(got)-before)
	}
	msgs := e.messages(1)
	last := msgs[len(msgs)-1]
	if last.MessageID != "dsn1@mx.example.org" || last.Automated != "bounce" || last.MatchedBy != "bounce" {
		t.Errorf("bounce stored as %+v", last)
	}
	for _, m := range msgs {
		if m.Kind == store.KindAutoreply && (m.Delivery == nil || m.Delivery.Status != "bounced") {
			t.Errorf("acknowledgement delivery %+v", m.Delivery)
		}
	}
	if v := e.metric(`helpdesk_addresses_on_hold{kind="undeliverable"}`); v != "1" {
		t.Errorf("undeliverable addresses %s", v)
	}
	e.deliver(mailFrom("Ann <ann@example.org>", "Scanner", "p2@example.org"))
	e.settleIDs([]string{"p2@example.org"})
	if n := len(toAddr(e.smtp.Messages(), "ann@example.org")); n != 1 {
		t.Errorf("%d mails to the undeliverable address, want only the first acknowledgement", n)
	}
	if n := len(toAddr(e.smtp.Messages(), agent)); n != 2 {
		t.Errorf("%d notifications to the agent, want 2 (two tickets; none for the bounce)", n)
	}
}

// An oversized mail is quarantined and flagged, its sender gets one
// notice, and once the operator raised the limit a replay through the
// admin API makes it a ticket.
func TestOversizedMailNoticeAndReplay(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	e.cfg.Limits.MaxMessageBytes = 4 * config.KiB
	e.fixedAdmin()
	e.start()
	big := mailFrom("Ann <ann@example.org>", "Contract scan", "big@example.org") + strings.Repeat("scan data\n", 600)
	uid := e.deliver(big)
	e.settleIDs([]string{"big@example.org"})
	notices := toAddr(e.smtp.Messages(), "ann@example.org")
	if len(notices) != 1 {
		t.Fatalf("%d notices", len(notices))
	}
	if s, _ := header(t, notices[0].Data).Subject(); !strings.HasPrefix(s, "Your mail was too large") {
		t.Errorf("notice subject %q", s)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(e.dove.Flags(t, "support", "INBOX", uid), imap.Flag(inbox.QuarantineKeyword)) {
		if time.Now().After(deadline) {
			t.Fatalf("uid %d not flagged %s", uid, inbox.QuarantineKeyword)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := admin.Client{Base: e.adminBase()}
	qs, err := c.ListQuarantine()
	if err != nil || len(qs) != 1 {
		t.Fatalf("quarantine: %+v %v", qs, err)
	}
	if _, err := c.ReplayQuarantined(context.Background(), qs[0].ID); !errors.Is(err, admin.ErrStillQuarantined) {
		t.Errorf("replay under the old limit: %v", err)
	}
	// The operator raises the limit and restarts.
	e.stop()
	e.cfg.Limits.MaxMessageBytes = 1 * config.MiB
	e.start()
	c = admin.Client{Base: e.adminBase()}
	out, err := c.ReplayQuarantined(context.Background(), qs[0].ID)
	if err != nil || out.TicketID != 1 || out.Rule != "new" || !out.Acked {
		t.Fatalf("replay: %+v %v", out, err)
	}
	e.settleIDs([]string{"big@example.org"})
	if n := len(toAddr(e.smtp.Messages(), "ann@example.org")); n != 2 {
		t.Errorf("%d mails to ann, want the notice and the acknowledgement", n)
	}
	if qs, _ := c.ListQuarantine(); len(qs) != 0 {
		t.Errorf("still quarantined: %+v", qs)
	}
}
