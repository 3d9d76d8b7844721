// Package stress proves the exactly-once promise the hard way: the real
// helpdesk binary ingests mail from a real Dovecot while it is killed with
// SIGKILL at random moments and started again. `make test` runs a short
// version; `make stress` the long one (-stress.mails=2000 -stress.kills=25).
package stress

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/mail"

	"github.com/helpdesk/helpdesk/internal/mailtest"
	"github.com/helpdesk/helpdesk/store"
)

var (
	mails = flag.Int("stress.mails", 200, "mails to ingest")
	kills = flag.Int("stress.kills", 6, "SIGKILLs to survive")
	// A mail of 4 MiB or more takes another path: streamed from the IMAP
	// literal into the database ahead of its transaction.
	bigEvery = flag.Int("stress.big-every", 50, "every Nth mail carries a 5 MB attachment (0: none)")
)

var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "helpdesk-stress-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "helpdesk")
	build := exec.Command("go", "build", "-o", binary, "../cmd/helpdesk")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build helpdesk:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func stressMail(i int) []byte {
	if *bigEvery > 0 && i%*bigEvery == *bigEvery-1 {
		var b strings.Builder
		fmt.Fprintf(&b, "From: Customer %d <c%d@example.org>\r\nTo: support@example.com\r\n"+
			"Subject: Stress dump %d\r\nMessage-ID: <stress-%d@example.org>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n"+
			"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=sb\r\n\r\n--sb\r\n"+
			"Content-Type: text/plain\r\n\r\nThe dump of problem %d.\r\n--sb\r\nContent-Type: application/octet-stream\r\n"+
			"Content-Transfer-Encoding: base64\r\n\r\n", i, i, i, i, i)
		for b.Len() < 5<<20 {
			b.WriteString(strings.Repeat("ZHVtcA", 12) + "\r\n")
		}
		b.WriteString("--sb--\r\n")
		return []byte(b.String())
	}
	return []byte(fmt.Sprintf("From: Customer %d <c%d@example.org>\r\nTo: support@example.com\r\n"+
		"Subject: Stress problem %d\r\nMessage-ID: <stress-%d@example.org>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n\r\nPlease help with problem %d.\r\n%s\r\n",
		i, i, i, i, i, strings.Repeat("Some details. ", 50)))
}

func TestKillRestartLosesAndDoublesNothing(t *testing.T) {
	dove := mailtest.StartDovecot(t, map[string]string{"support": "secret"})
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{})
	dir := t.TempDir()
	certFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(certFile, dove.Cert.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "helpdesk.db")
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`database: %s
http: {listen: "127.0.0.1:%d"}
log: {level: warn}
ticket: {domain: helpdesk.example.com}
smtp: {host: 127.0.0.1, port: %d, tls: none}
mailboxes:
  - name: support
    address: support@example.com
    imap: {host: 127.0.0.1, port: %d, tls: tls, username: support, password: secret}
    poll_interval: 1s
autoreply: {max_per_sender: 100, global_max_per_hour: 100000}
outbox: {min_backoff: 100ms, max_backoff: 1s}
`, dbPath, freePort(t), sink.Port, dove.IMAPSPort)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// Mail keeps arriving while the daemon is being killed.
	c := dove.Client(t, "support")
	appendErr := make(chan error, 1)
	go func() {
		for i := range *mails {
			raw := stressMail(i)
			cmd := c.Append("INBOX", int64(len(raw)), nil)
			if _, err := cmd.Write(raw); err != nil {
				appendErr <- err
				return
			}
			if err := cmd.Close(); err != nil {
				appendErr <- err
				return
			}
			if _, err := cmd.Wait(); err != nil {
				appendErr <- err
				return
			}
		}
		appendErr <- nil
	}()

	var logs bytes.Buffer
	start := func() *exec.Cmd {
		cmd := exec.Command(binary, "serve", "--config", cfgPath)
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+certFile)
		cmd.Stderr = &lockedWriter{w: &logs}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))
	for k := range *kills {
		cmd := start()
		// Kill anywhere from mid-login to mid-batch.
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		cmd.Process.Kill() // SIGKILL: no drain, no deferred code
		cmd.Wait()
		if k == *kills/2 {
			t.Logf("kill %d of %d", k+1, *kills)
		}
	}
	if err := <-appendErr; err != nil {
		t.Fatalf("append: %v", err)
	}

	cmd := start()
	deadline := time.Now().Add(5 * time.Minute)
	for !done(t, dbPath, *mails) {
		if time.Now().After(deadline) {
			t.Fatalf("not done after the last restart; log:\n%s", tail(logs.String()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	sink.WaitFor(t, *mails, time.Minute)
	for unseen(t, c) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d mails never flagged \\Seen", unseen(t, c))
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v; log:\n%s", err, tail(logs.String()))
	}

	// Every mail is in exactly one ticket.
	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Errorf("store Check: %v", err)
	}
	if n, err := db.StagedCount(); n != 0 || err != nil {
		t.Errorf("%d big mails left staged (%v): a crash's leftovers are removed at the next start", n, err)
	}
	var lost, tickets int
	ackIDs := map[uint64][]string{}
	db.View(func(tx *store.Tx) error {
		tks, _ := tx.ListTickets(store.ListOptions{})
		tickets = len(tks)
		for i := range *mails {
			if _, ok := tx.TicketByMessageID(fmt.Sprintf("<stress-%d@example.org>", i)); !ok {
				lost++
			}
		}
		for _, tk := range tks {
			msgs, _ := tx.Messages(tk.ID)
			for _, m := range msgs {
				if m.Kind == store.KindAutoreply {
					ackIDs[tk.ID] = append(ackIDs[tk.ID], "<"+m.MessageID+">")
				}
			}
		}
		return nil
	})
	// Every ticket's acknowledgement reached SMTP; a repeat is only the
	// same mail again (killed between SMTP's 250 and the outbox commit).
	sent := map[string]int{}
	for _, m := range sink.Messages() {
		r, err := mail.CreateReader(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		sent[r.Header.Get("Message-Id")]++
	}
	var duplicateAcks, missingAcks int
	for id, ids := range ackIDs {
		if len(ids) != 1 {
			t.Errorf("ticket %d has %d acknowledgements queued", id, len(ids))
		}
		for _, mid := range ids {
			switch n := sent[mid]; {
			case n == 0:
				missingAcks++
			case n > 1:
				duplicateAcks += n - 1
			}
		}
	}
	unseen := unseen(t, c)
	t.Logf("mails=%d kills=%d tickets=%d lost=%d acks_sent=%d duplicate_acks=%d missing_acks=%d unseen=%d",
		*mails, *kills, tickets, lost, len(sink.Messages()), duplicateAcks, missingAcks, unseen)
	if lost != 0 || tickets != *mails || missingAcks != 0 || unseen != 0 || len(ackIDs) != *mails {
		t.Errorf("lost %d, tickets %d (want %d), missing acks %d, unseen %d", lost, tickets, *mails, missingAcks, unseen)
	}
	if len(sent) != *mails {
		t.Errorf("%d distinct acknowledgements sent, want %d", len(sent), *mails)
	}
}

// done reports whether n tickets exist and the outbox is empty. The daemon
// holds the database lock, so it asks for a hot backup through the CLI (the
// supported way) and reads that; every such backup must pass Check.
func done(t *testing.T, dbPath string, n int) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	copyPath := dbPath + ".probe"
	defer os.Remove(copyPath)
	// A backup through the CLI works while serve runs: it is the supported way.
	out, err := exec.CommandContext(ctx, binary, "backup", copyPath, "--config", filepath.Join(filepath.Dir(dbPath), "config.yaml")).CombinedOutput()
	if err != nil {
		t.Logf("probe backup: %v %s", err, out)
		return false
	}
	db, err := store.Open(copyPath, store.Options{ReadOnly: true})
	if err != nil {
		return false
	}
	defer db.Close()
	// The probe is a hot backup taken during heavy ingest: it must be consistent.
	if err := db.Check(); err != nil {
		t.Errorf("backup taken while serving is inconsistent: %v", err)
	}
	var ok bool
	db.View(func(tx *store.Tx) error { ok = tx.TicketExists(uint64(n)); return nil })
	queued, _, _ := db.OutboxLen()
	return ok && queued == 0
}

// unseen counts the INBOX mails not flagged \Seen.
func unseen(t *testing.T, c *imapclient.Client) int {
	t.Helper()
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatal(err)
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	return len(data.AllUIDs())
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}
