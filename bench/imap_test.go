package bench

import (
	"crypto/tls"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/mail"

	"github.com/helpdesk/helpdesk/internal/mailtest"
)

// appendAll stores every mail in user's INBOX over one connection,
// pipelining up to depth APPENDs (the server has LITERAL+), and returns the
// elapsed time. UIDs follow the order of mails.
func appendAll(tb testing.TB, dove *mailtest.Dovecot, user string, mails []genMail) time.Duration {
	tb.Helper()
	c := dove.Client(tb, user)
	const depth = 16
	start := time.Now()
	var inflight []*imapclient.AppendCommand
	wait := func(cmd *imapclient.AppendCommand) {
		if _, err := cmd.Wait(); err != nil {
			tb.Fatalf("append to %s: %v", user, err)
		}
	}
	for _, m := range mails {
		cmd := c.Append("INBOX", int64(len(m.Raw)), nil)
		if _, err := cmd.Write(m.Raw); err != nil {
			tb.Fatalf("append to %s: %v", user, err)
		}
		if err := cmd.Close(); err != nil {
			tb.Fatalf("append to %s: %v", user, err)
		}
		inflight = append(inflight, cmd)
		if len(inflight) == depth {
			wait(inflight[0])
			inflight = inflight[1:]
		}
	}
	for _, cmd := range inflight {
		wait(cmd)
	}
	return time.Since(start)
}

// appendOne stores one mail and returns when the server has answered OK.
func appendOne(c *imapclient.Client, raw []byte) error {
	cmd := c.Append("INBOX", int64(len(raw)), nil)
	if _, err := cmd.Write(raw); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

// markUnseen clears \Seen on every mail of user's INBOX, so the next run
// starts from an untouched backlog.
func markUnseen(tb testing.TB, dove *mailtest.Dovecot, user string) {
	tb.Helper()
	c := watcher(tb, dove, user)
	defer c.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		tb.Fatalf("select: %v", err)
	}
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
	if err != nil {
		tb.Fatalf("clear \\Seen: %v", err)
	}
}

// watcher is a connection of the harness's own as user, to be closed by
// the caller: Dovecot allows ten per user and address, and the clients of
// mailtest stay open until the test ends.
func watcher(tb testing.TB, dove *mailtest.Dovecot, user string) *imapclient.Client {
	tb.Helper()
	c, err := dialUser(dove, user, "secret", nil)
	if err != nil {
		tb.Fatalf("connect as %s: %v", user, err)
	}
	return c
}

// unseen returns the number of mails without \Seen in INBOX.
func unseen(c *imapclient.Client) (uint32, error) {
	data, err := c.Status("INBOX", &imap.StatusOptions{NumUnseen: true}).Wait()
	if err != nil {
		return 0, err
	}
	if data.NumUnseen == nil {
		return 0, fmt.Errorf("STATUS without UNSEEN")
	}
	return *data.NumUnseen, nil
}

// dialUser connects to the implicit-TLS port and logs in as the user
// itself, as helpdesk does.
func dialUser(dove *mailtest.Dovecot, user, pass string, opts *imapclient.Options) (*imapclient.Client, error) {
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.TLSConfig = &tls.Config{RootCAs: dove.Cert.Pool, ServerName: dove.Host, MinVersion: tls.VersionTLS12}
	c, err := imapclient.DialTLS(dove.TLSAddr(), opts)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// baselineResult is one run of the bare client.
type baselineResult struct {
	Mails   int
	Bytes   int64
	Elapsed time.Duration
}

// baseline is the limit of the machine: a bare go-imap client connects,
// fetches the whole mailbox with one UID FETCH 1:* BODY.PEEK[] and parses
// every message fully with go-message (header fields, every part decoded),
// streaming from the literal, on one goroutine.
func baseline(dove *mailtest.Dovecot, user, pass string) (baselineResult, error) {
	var res baselineResult
	start := time.Now()
	c, err := dialUser(dove, user, pass, nil)
	if err != nil {
		return res, err
	}
	defer c.Close()
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return res, err
	}
	cmd := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID:         true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	})
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			body, ok := item.(imapclient.FetchItemDataBodySection)
			if !ok || body.Literal == nil {
				continue
			}
			cr := &countingReader{r: body.Literal}
			if err := parseFully(cr); err != nil {
				return res, fmt.Errorf("parse: %w", err)
			}
			// Whatever the parser left unread still has to cross the wire.
			if _, err := io.Copy(io.Discard, cr); err != nil {
				return res, fmt.Errorf("read body: %w", err)
			}
			res.Mails++
			res.Bytes += cr.n
		}
	}
	if err := cmd.Close(); err != nil {
		return res, err
	}
	res.Elapsed = time.Since(start)
	_ = c.Logout().Wait()
	return res, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// parseFully reads a message the way any client that shows it must: the
// address, subject, date and id header fields, and every part decoded to
// UTF-8.
func parseFully(r io.Reader) error {
	mr, err := mail.CreateReader(r)
	if err != nil && mr == nil {
		return err
	}
	defer mr.Close()
	h := mr.Header
	_, _ = h.Subject()
	_, _ = h.AddressList("From")
	_, _ = h.AddressList("To")
	_, _ = h.Date()
	_, _ = h.MessageID()
	_, _ = h.MsgIDList("References")
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if ah, ok := p.Header.(*mail.AttachmentHeader); ok {
			_, _ = ah.Filename()
		}
		if _, err := io.Copy(io.Discard, p.Body); err != nil {
			return err
		}
	}
}

// idleWatcher is a bare IDLE client: it records when the server announced
// each message count, to measure the server's own notification delay.
type idleWatcher struct {
	c    *imapclient.Client
	idle *imapclient.IdleCommand

	mu     sync.Mutex
	seen   uint32
	at     map[uint32]time.Time // message count → when first announced
	notify chan struct{}
}

func startIdleWatcher(dove *mailtest.Dovecot, user, pass string) (*idleWatcher, error) {
	w := &idleWatcher{at: make(map[uint32]time.Time), notify: make(chan struct{}, 1)}
	c, err := dialUser(dove, user, pass, &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages == nil {
					return
				}
				now := time.Now()
				w.mu.Lock()
				for n := w.seen + 1; n <= *data.NumMessages; n++ {
					w.at[n] = now
				}
				w.seen = max(w.seen, *data.NumMessages)
				w.mu.Unlock()
			},
		},
	})
	if err != nil {
		return nil, err
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		c.Close()
		return nil, err
	}
	w.mu.Lock()
	w.seen = sel.NumMessages
	w.mu.Unlock()
	if w.idle, err = c.Idle(); err != nil {
		c.Close()
		return nil, err
	}
	w.c = c
	return w, nil
}

// announced returns when the count n was first announced.
func (w *idleWatcher) announced(n uint32) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.at[n]
	return t, ok
}

func (w *idleWatcher) close() {
	_ = w.idle.Close()
	_ = w.idle.Wait()
	_ = w.c.Logout().Wait()
	_ = w.c.Close()
}
