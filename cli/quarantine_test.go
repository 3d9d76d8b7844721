package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helpdesk/helpdesk/config"
	"github.com/helpdesk/helpdesk/daemon"
	"github.com/helpdesk/helpdesk/store"
)

const (
	bigMail = "From: Ann <ann@example.org>\r\nTo: support@example.com\r\nSubject: Contract scan\r\n" +
		"Message-ID: <scan@example.org>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nsee attachment\r\n"
	garbage = "\x00\x01 no header at all \xff"
)

// quarantineConfig writes a config for dbPath with the admin API on listen
// ("" disables it) and IMAP/SMTP on a closed port.
func quarantineConfig(t *testing.T, dbPath, listen string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := fmt.Sprintf("database: %s\nhttp: {listen: %q}\nticket: {domain: helpdesk.example.com}\n"+
		"smtp: {host: 127.0.0.1, port: 9, tls: none}\n"+
		"mailboxes:\n  - name: support\n    address: support@example.com\n    imap: {host: 127.0.0.1, port: 9, tls: none, password: x}\n",
		dbPath, listen)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// seedQuarantine quarantines bigMail (1) and garbage (2) as the engine
// would have.
func seedQuarantine(t *testing.T, dbPath string) {
	t.Helper()
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *store.Tx) error {
		if err := tx.Quarantine(&store.Quarantined{Mailbox: "support", UIDValidity: 1, UID: 1, Reason: "message too large: 170 bytes, limit 100",
			From: "ann@example.org", Raw: []byte(bigMail)}, "<scan@example.org>"); err != nil {
			return err
		}
		return tx.Quarantine(&store.Quarantined{Mailbox: "support", UIDValidity: 1, UID: 2, Reason: "no header field found",
			Raw: []byte(garbage)}, "sha256:garbage")
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkDB(t *testing.T, dbPath string) {
	t.Helper()
	db, err := store.Open(dbPath, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestQuarantineReplayAndReleaseOnTheFile(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "hd.db")
	seedQuarantine(t, dbPath)
	cfg := quarantineConfig(t, dbPath, "")
	defer checkDB(t, dbPath)

	code, out, stderr := runCLI(t, "quarantine", "replay", "2", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "quarantined mail 2 stays quarantined") {
		t.Errorf("replay of garbage: exit %d %q %q", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "quarantine", "replay", "1", "--config", cfg)
	if code != 0 || out != "quarantined mail 1 replayed: ticket #1 (new), acknowledgement queued\n" {
		t.Errorf("replay: exit %d %q %q", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "quarantine", "release", "2", "--json", "--config", cfg)
	var got map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got["ticket_id"] != 2.0 || got["matched_by"] != "released" {
		t.Errorf("release: exit %d %q %q", code, out, stderr)
	}
	if code, out, _ := runCLI(t, "quarantine", "list", "--config", cfg); code != 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("list after both: exit %d %q", code, out)
	}
	code, _, stderr = runCLI(t, "quarantine", "release", "1", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "quarantined mail 1 not found") {
		t.Errorf("second release: exit %d %q", code, stderr)
	}
	for _, args := range [][]string{{"quarantine", "replay"}, {"quarantine", "replay", "x"}, {"quarantine", "release", "0"}, {"quarantine", "frob", "1"}} {
		if code, _, stderr := runCLI(t, append(args, "--config", cfg)...); code != 2 {
			t.Errorf("%v: exit %d %q", args, code, stderr)
		}
	}
	code, out, _ = runCLI(t, "tickets", "show", "1", "--config", cfg)
	if code != 0 || !strings.Contains(out, "Contract scan") || !strings.Contains(out, "threaded by new") {
		t.Errorf("replayed ticket: %q", out)
	}
}

// While serve holds the database, the commands go through its admin API.
func TestQuarantineReplayWhileServeRuns(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "hd.db")
	seedQuarantine(t, dbPath)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	cfgPath := quarantineConfig(t, dbPath, listen)
	cfg, err := config.LoadWithEnv(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	d, err := daemon.Open(daemon.Options{Config: cfg, Log: slog.New(slog.DiscardHandler),
		Started: func(*daemon.Daemon) { close(started) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := d.DB().Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
		d.Close()
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not start")
	}
	code, out, stderr := runCLI(t, "quarantine", "replay", "1", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "ticket #1 (new)") {
		t.Fatalf("replay through the daemon: exit %d %q %q", code, out, stderr)
	}
	code, _, stderr = runCLI(t, "quarantine", "replay", "2", "--config", cfgPath)
	if code != 1 || !strings.Contains(stderr, "stays quarantined: threading: unparseable message") {
		t.Errorf("replay of garbage through the daemon: exit %d %q", code, stderr)
	}
	if code, out, stderr := runCLI(t, "quarantine", "release", "2", "--config", cfgPath); code != 0 || !strings.Contains(out, "ticket #2") {
		t.Errorf("release through the daemon: exit %d %q %q", code, out, stderr)
	}
	if code, out, _ := runCLI(t, "tickets", "list", "--config", cfgPath); code != 0 || !strings.Contains(out, "Contract scan") {
		t.Errorf("tickets list: %q", out)
	}
}
