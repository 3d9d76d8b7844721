// Package demo runs `helpdesk demo`: an in-process IMAP server
// (imapmemserver) and SMTP server (go-smtp) on loopback, the real daemon
// between them, and a short scripted conversation whose every step is
// printed. It needs no configuration and no network.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-smtp"

	"github.com/helpdesk/helpdesk/config"
	"github.com/helpdesk/helpdesk/daemon"
	"github.com/helpdesk/helpdesk/store"
)

// Options tune the demo.
type Options struct {
	// Keep leaves the demo database in place and prints its path.
	Keep bool
	// Log receives the daemon's log; nil discards it.
	Log *slog.Logger
}

const (
	supportAddr = "support@demo.example"
	domain      = "helpdesk.demo.example"
	stepTimeout = 15 * time.Second
)

// Run plays the demo and writes what happens to w.
func Run(ctx context.Context, w io.Writer, opts Options) error {
	dir, err := os.MkdirTemp("", "helpdesk-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if !opts.Keep {
		defer os.RemoveAll(dir)
	}
	imapUser := imapmemserver.NewUser("support", "demo-secret")
	if err := imapUser.Create("INBOX", nil); err != nil {
		return fmt.Errorf("demo imap: %w", err)
	}
	imapAddr, stopIMAP, err := startIMAP(imapUser)
	if err != nil {
		return err
	}
	defer stopIMAP()
	sink, err := startSMTP()
	if err != nil {
		return err
	}
	defer sink.close()

	cfg := demoConfig(filepath.Join(dir, "helpdesk.db"), imapAddr, sink.addr)
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := daemon.Open(daemon.Options{Config: cfg, Log: log})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() {
		stop()
		<-done
		d.Close()
	}()

	fmt.Fprintf(w, "helpdesk demo: IMAP on %s, SMTP on %s, database %s\n\n", imapAddr, sink.addr, cfg.Database)
	deliver := func(raw string) error {
		r := strings.NewReader(strings.ReplaceAll(raw, "\n", "\r\n"))
		_, err := imapUser.Append("INBOX", r, &imap.AppendOptions{})
		d.Poke()
		return err
	}

	toAnn := func(m received) bool { return slices.Contains(m.to, "ann@customer.example") }
	toAlice := func(m received) bool { return slices.Contains(m.to, "alice@demo.example") }
	stored := func(msgid string) func(tx *store.Tx) bool {
		return func(tx *store.Tx) bool { _, ok := tx.TicketByMessageID("<" + msgid + ">"); return ok }
	}

	// 1. A customer writes in.
	step(w, 1, "ann@customer.example writes to support: \"Printer on 3rd floor offline\"")
	if err := deliver(firstMail); err != nil {
		return err
	}
	ack, err := sink.waitMatch(ctx, toAnn, 1)
	if err != nil {
		return err
	}
	printMail(w, "auto-reply to the customer", ack)
	if _, err := sink.waitMatch(ctx, toAlice, 1); err != nil {
		return err
	}
	fmt.Fprintln(w, "   → and a notification to the agent alice@demo.example")

	// 2. She answers the auto-reply: threaded by our Message-ID token.
	step(w, 2, "Ann replies to the auto-reply (In-Reply-To carries our signed token)")
	ackID := headerOf(ack.data, "Message-Id")
	if err := deliver(fmt.Sprintf(followUp, ackID, ackID)); err != nil {
		return err
	}
	if err := waitFor(ctx, d.DB(), stored("printer-2@customer.example")); err != nil {
		return err
	}
	notice, err := sink.waitMatch(ctx, toAlice, 2)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "   → joined ticket #1 (no second auto-reply); Alice is notified again")

	// 3. The agent answers from her mail client, with a command on top.
	step(w, 3, "Alice hits reply on the notification and writes \"#priority high\" and an answer")
	noticeID := headerOf(notice.data, "Message-Id")
	if err := deliver(fmt.Sprintf(agentReply, noticeID, noticeID)); err != nil {
		return err
	}
	relay, err := sink.waitMatch(ctx, toAnn, 2)
	if err != nil {
		return err
	}
	printMail(w, "relayed to the customer, from the support address", relay)
	fmt.Fprintf(w, "     Text: %s\n", firstLine(bodyOf(relay.data)))

	// 4. A stranger guesses the ticket number.
	step(w, 4, "mallory@elsewhere.example writes with \"[Ticket#1]\" in the subject")
	if err := deliver(strangerMail); err != nil {
		return err
	}
	if err := waitFor(ctx, d.DB(), stored("guess-1@elsewhere.example")); err != nil {
		return err
	}
	var strangerTicket uint64
	d.DB().View(func(tx *store.Tx) error {
		strangerTicket, _ = tx.TicketByMessageID("<guess-1@elsewhere.example>")
		return nil
	})
	fmt.Fprintf(w, "   → not a participant of #1: a ticket of their own, #%d\n", strangerTicket)

	// 5. An out-of-office answer: stored, never answered.
	step(w, 5, "an out-of-office reply arrives (Auto-Submitted: auto-replied)")
	if err := deliver(fmt.Sprintf(outOfOffice, ackID)); err != nil {
		return err
	}
	if err := waitFor(ctx, d.DB(), stored("ooo-1@customer.example")); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond) // give a wrong answer the chance to show up
	toAnnCount := 0
	for _, m := range sink.messages() {
		if toAnn(m) {
			toAnnCount++
		}
	}
	fmt.Fprintf(w, "   → recorded on #1; Ann got %d mails in all (the auto-reply and Alice's answer), no reply to the out-of-office\n", toAnnCount)

	fmt.Fprintf(w, "\nTickets now:\n")
	err = d.DB().View(func(tx *store.Tx) error {
		tks, err := tx.ListTickets(store.ListOptions{})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tSTATUS\tPRIORITY\tREQUESTER\tMESSAGES\tSUBJECT")
		for _, tk := range tks {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\t%s\n", tk.ID, tk.Status, tk.Priority, tk.Requester, tk.MessageCount, tk.Subject)
		}
		tw.Flush()
		msgs, err := tx.Messages(1)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\nTicket #1 conversation:\n")
		for _, m := range msgs {
			how := m.MatchedBy
			if how == "" {
				how = "-"
			}
			fmt.Fprintf(w, "  %-3s %-12s from %-24s matched_by=%-6s %s\n", m.Direction, m.Kind, m.From, how, firstLine(m.Text))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if opts.Keep {
		fmt.Fprintf(w, "\nThe demo database is kept at %s (try: helpdesk --config with database: %s)\n", cfg.Database, cfg.Database)
	}
	fmt.Fprintf(w, "\nDone. Configure real mailboxes in config.yaml (see config.example.yaml) and run `helpdesk serve`.\n")
	return nil
}

func step(w io.Writer, n int, what string) { fmt.Fprintf(w, "%d. %s\n", n, what) }

func demoConfig(dbPath, imapAddr, smtpAddr string) *config.Config {
	ih, ip := splitHostPort(imapAddr)
	sh, sp := splitHostPort(smtpAddr)
	return &config.Config{
		Database: dbPath,
		Log:      config.Log{Level: "info", Format: "text"},
		Ticket:   config.Ticket{SubjectPrefix: "Ticket", Domain: domain},
		SMTP:     config.SMTP{Host: sh, Port: sp, TLS: config.TLSNone, HELO: domain, Timeout: 10 * time.Second},
		Mailboxes: []config.Mailbox{{
			Name: "support", Address: supportAddr,
			IMAP: config.IMAP{Host: ih, Port: ip, TLS: config.TLSNone, Username: "support", Password: "demo-secret", Folder: "INBOX"},
			// The demo pokes the loop after each delivery; the poll is a safety net.
			PollInterval: time.Second, IDLE: true,
		}},
		Agents:    []config.Agent{{Email: "alice@demo.example", Name: "Alice", Teams: []string{"l1"}}},
		Autoreply: config.Autoreply{Enabled: true, MaxPerSender: 5, Per: time.Hour, GlobalMaxPerHour: 200},
		Outbox:    config.Outbox{MaxAttempts: 5, MinBackoff: time.Second, MaxBackoff: 10 * time.Second},
		Limits:    config.Limits{MaxMessageBytes: 25 << 20},
	}
}

func splitHostPort(addr string) (string, int) {
	h, p, _ := net.SplitHostPort(addr)
	var port int
	fmt.Sscan(p, &port)
	return h, port
}

func startIMAP(user *imapmemserver.User) (addr string, stop func(), err error) {
	mem := imapmemserver.New()
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true, // loopback only
		Logger:       discardLogger{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("demo imap: %w", err)
	}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close() }, nil
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// sink is the demo's SMTP server: it accepts everything and remembers it.
type sink struct {
	addr string
	srv  *smtp.Server
	mu   sync.Mutex
	got  []received
	new  chan struct{}
}

type received struct {
	from string
	to   []string
	data []byte
}

func startSMTP() (*sink, error) {
	s := &sink{new: make(chan struct{}, 100)}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "smtp.demo.example"
	s.srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo smtp: %w", err)
	}
	s.addr = ln.Addr().String()
	go s.srv.Serve(ln)
	return s, nil
}

func (s *sink) close() { s.srv.Close() }

func (s *sink) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

// waitMatch returns the n-th mail (1-based) that match accepts, once it
// has arrived.
func (s *sink) waitMatch(ctx context.Context, match func(received) bool, n int) (received, error) {
	timeout := time.After(stepTimeout)
	for {
		seen := 0
		for _, m := range s.messages() {
			if match(m) {
				if seen++; seen == n {
					return m, nil
				}
			}
		}
		select {
		case <-s.new:
		case <-ctx.Done():
			return received{}, ctx.Err()
		case <-timeout:
			return received{}, errors.New("demo: no mail reached the SMTP server in time")
		}
	}
}

func (s *sink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{sink: s}, nil }

type sinkSession struct {
	sink *sink
	cur  received
}

func (ss *sinkSession) Mail(from string, _ *smtp.MailOptions) error { ss.cur.from = from; return nil }
func (ss *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.cur.to = append(ss.cur.to, to)
	return nil
}
func (ss *sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.cur.data = data
	ss.sink.mu.Lock()
	ss.sink.got = append(ss.sink.got, ss.cur)
	ss.sink.mu.Unlock()
	ss.sink.new <- struct{}{}
	ss.cur = received{}
	return nil
}
func (ss *sinkSession) Reset()        { ss.cur = received{} }
func (ss *sinkSession) Logout() error { return nil }

func waitFor(ctx context.Context, db *store.DB, cond func(tx *store.Tx) bool) error {
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		var ok bool
		db.View(func(tx *store.Tx) error { ok = cond(tx); return nil })
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("demo: the daemon did not store the mail in time")
}

func headerOf(raw []byte, name string) string {
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	return r.Header.Get(name)
}

func bodyOf(raw []byte) string {
	r, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	p, err := r.NextPart()
	if err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(p.Body, 4096))
	return string(b)
}

func printMail(w io.Writer, what string, m received) {
	fmt.Fprintf(w, "   → %s to %s:\n", what, strings.Join(m.to, ", "))
	for _, h := range []string{"From", "Subject", "Message-Id", "In-Reply-To", "Auto-Submitted", "X-Auto-Response-Suppress"} {
		if v := headerOf(m.data, h); v != "" {
			fmt.Fprintf(w, "     %s: %s\n", h, v)
		}
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

const firstMail = `From: Ann Example <ann@customer.example>
To: IT Support <support@demo.example>
Subject: Printer on 3rd floor offline
Message-ID: <printer-1@customer.example>
Date: Tue, 24 Nov 2026 10:00:00 +0000
Content-Type: text/plain; charset=utf-8

Hi, the printer on the 3rd floor shows error 49 and prints nothing.
Ann
`

const followUp = `From: Ann Example <ann@customer.example>
To: support@demo.example
Subject: Re: printer
Message-ID: <printer-2@customer.example>
In-Reply-To: %s
References: <printer-1@customer.example> %s
Date: Tue, 24 Nov 2026 10:05:00 +0000
Content-Type: text/plain; charset=utf-8

It is the HP LaserJet next to the kitchen, asset tag 4711.

On Tue, Nov 24, 2026 support wrote:
> We have received your request.
`

const agentReply = `From: Alice <alice@demo.example>
To: support@demo.example
Subject: Re: [Ticket#1] Printer on 3rd floor offline
Message-ID: <alice-1@demo.example>
In-Reply-To: %s
References: %s
Date: Tue, 24 Nov 2026 10:06:00 +0000
Content-Type: text/plain; charset=utf-8

#priority high

Hi Ann, a technician is on the way with a new fuser unit.

Alice

On Tue, Nov 24, 2026 at 10:05, Ann Example via support wrote:
> It is the HP LaserJet next to the kitchen, asset tag 4711.
`

const strangerMail = `From: Mallory <mallory@elsewhere.example>
To: support@demo.example
Subject: Re: [Ticket#1] Printer on 3rd floor offline
Message-ID: <guess-1@elsewhere.example>
Date: Tue, 24 Nov 2026 10:07:00 +0000
Content-Type: text/plain; charset=utf-8

Please send me everything about this ticket.
`

const outOfOffice = `From: Ann Example <ann@customer.example>
To: support@demo.example
Subject: Automatic reply: [Ticket#1] Printer on 3rd floor offline
Message-ID: <ooo-1@customer.example>
In-Reply-To: %s
Auto-Submitted: auto-replied
Date: Tue, 24 Nov 2026 10:08:00 +0000
Content-Type: text/plain; charset=utf-8

I am out of the office until Monday.
`
