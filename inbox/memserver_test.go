package inbox_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"

	"github.com/helpdesk/helpdesk/inbox"
)

// memServer is go-imap's in-memory server on a loopback port: no Dovecot
// needed, so this path is exercised everywhere. It is not a faithful server
// (see MAIL-TESTING.md); the Dovecot tests are the reference.
type memServer struct {
	addr *net.TCPAddr
}

func startMemServer(t *testing.T) *memServer {
	t.Helper()
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("support", password)
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapIMAP4rev2: {}},
		InsecureAuth: true,
		Logger:       testPrintfLogger{t},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	return &memServer{addr: ln.Addr().(*net.TCPAddr)}
}

type testPrintfLogger struct{ t *testing.T }

func (l testPrintfLogger) Printf(format string, args ...any) {
	l.t.Logf("imapserver: "+format, args...)
}

// client returns a logged-in client with INBOX selected.
func (s *memServer) client(t *testing.T) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.addr.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Login("support", password).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

func memAppend(t *testing.T, c *imapclient.Client, raw []byte) uint32 {
	t.Helper()
	cmd := c.Append("INBOX", int64(len(raw)), &imap.AppendOptions{})
	if _, err := cmd.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return uint32(data.UID)
}

// TestMemServerDeliveryAndRetry is the fast version of the main path:
// order, batches, flag after commit, a failed handler retried, IDLE.
func TestMemServerDeliveryAndRetry(t *testing.T) {
	t.Parallel()
	srv := startMemServer(t)
	c := srv.client(t)
	var uids []uint32
	for i := 1; i <= 3; i++ {
		uids = append(uids, memAppend(t, c, testMail(i)))
	}

	st := newMemStore()
	failUID, failed := uids[1], false
	st.setBefore(func(ctx context.Context, d inbox.Delivery) (inbox.Disposition, error) {
		if d.UID == failUID && !failed {
			failed = true // only touched by the loop's goroutine
			return inbox.Disposition{}, errors.New("temporary")
		}
		return inbox.Disposition{}, nil
	})
	cfg := inbox.Config{
		Name: "mem", Host: "127.0.0.1", Port: srv.addr.Port, TLS: inbox.TLSNone,
		Username: "support", Password: password,
		IDLE: true, PollInterval: time.Minute, FetchBatch: 2,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	}
	mb := inbox.New(cfg, st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "3 mails flagged", func() bool { return mb.Stats().Flagged == 3 })
	uids = append(uids, memAppend(t, c, testMail(4)))
	eventually(t, 10*time.Second, "4th mail through IDLE", func() bool { return mb.Stats().Flagged == 4 })
	r.stop()

	if got := commitUIDs(st.commits()); !slices.Equal(got, uids) {
		t.Errorf("committed %v, want %v", got, uids)
	}
	if n := st.attemptsFor(uids[1]); n != 2 {
		t.Errorf("uid %d handed over %d times, want 2", uids[1], n)
	}
	msgs, err := c.Fetch(imap.UIDSetNum(imap.UID(uids[0]), imap.UID(uids[3])), &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if !slices.Contains(m.Flags, imap.FlagSeen) {
			t.Errorf("uid %d not \\Seen: %v", m.UID, m.Flags)
		}
	}
	if len(msgs) != 2 {
		t.Errorf("fetched %d messages, want 2", len(msgs))
	}
}
