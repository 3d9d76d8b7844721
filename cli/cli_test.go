package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helpdesk/helpdesk/store"
)

// runCLI runs the command line in-process with an empty environment.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, environ: []string{}})
	return code, out.String(), errb.String()
}

// Every broken config of config/testdata/badconfig makes every
// config-reading command exit 2 with exactly one line on stderr that is the
// expected error.
func TestBadConfigsExit2WithOneLine(t *testing.T) {
	dirs, err := filepath.Glob("../config/testdata/badconfig/*")
	if err != nil || len(dirs) < 20 {
		t.Fatalf("bad configs: %v (%d)", err, len(dirs))
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, "env")); err == nil {
				t.Skip("needs environment variables; covered by the config package's test")
			}
			want, err := os.ReadFile(filepath.Join(dir, "expected-error"))
			if err != nil {
				t.Fatal(err)
			}
			for _, cmd := range [][]string{{"check"}, {"serve"}, {"tickets", "list"}} {
				args := append(cmd, "--config", filepath.Join(dir, "config.yaml"))
				code, _, stderr := runCLI(t, args...)
				if code != 2 {
					t.Errorf("%v: exit %d, want 2", cmd, code)
				}
				lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
				if len(lines) != 1 {
					t.Errorf("%v: %d lines on stderr: %q", cmd, len(lines), stderr)
				}
				// The golden files name paths relative to the config package.
				got := strings.ReplaceAll(strings.TrimPrefix(lines[0], "helpdesk: "), "../config/", "")
				if got != strings.TrimSpace(string(want)) {
					t.Errorf("%v: stderr %q, want %q", cmd, got, strings.TrimSpace(string(want)))
				}
			}
		})
	}
}

func TestMissingConfigExit2(t *testing.T) {
	code, _, stderr := runCLI(t, "check", "--config", filepath.Join(t.TempDir(), "nope.yaml"))
	if code != 2 || !strings.Contains(stderr, "nope.yaml") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{}, {"frobnicate"}, {"tickets", "show"}, {"tickets", "show", "abc"}, {"tickets", "list", "--bogus"}, {"tickets", "list", "--status", "weird"}} {
		cfg := writeConfig(t, filepath.Join(t.TempDir(), "hd.db"))
		code, _, stderr := runCLI(t, append(args, "--config", cfg)...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "helpdesk ") {
		t.Fatalf("exit %d: %q", code, out)
	}
}

func writeConfig(t *testing.T, dbPath string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := "database: " + dbPath + "\nhttp: {listen: \"\"}\nticket: {domain: helpdesk.example.com}\n" +
		"mailboxes:\n  - name: support\n    address: support@example.com\n    imap: {host: 127.0.0.1, password: x}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// seed creates a database with one ticket and two messages.
func seed(t *testing.T, dbPath string) {
	t.Helper()
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	err = db.Update(func(tx *store.Tx) error {
		tk := &store.Ticket{Subject: "Printer on 3rd floor offline", Status: "new", Priority: "normal", Mailbox: "support",
			Requester: "ann@example.org", CC: []string{}, CreatedAt: at, UpdatedAt: at.Add(2 * time.Second)}
		if err := tx.CreateTicket(tk); err != nil {
			return err
		}
		in := &store.Message{TicketID: tk.ID, MessageID: "abc@mail.example.org", Direction: "in", Kind: "customer",
			From: "ann@example.org", To: []string{"support@example.com"}, Date: at, Subject: tk.Subject,
			Text: "It shows error 49.", MatchedBy: "new"}
		if err := tx.AddMessage(in, []byte("raw"), "<abc@mail.example.org>"); err != nil {
			return err
		}
		_, err := tx.Enqueue(&store.Message{TicketID: tk.ID, MessageID: "ack@helpdesk.example.com", Kind: "autoreply",
			From: "support@example.com", To: []string{"ann@example.org"}, Date: at, Subject: "[Ticket#1] ..."},
			"support@example.com", []string{"ann@example.org"}, []byte("ack"), at)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTicketsShowJSONFollowsTheContract(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "hd.db")
	seed(t, dbPath)
	cfg := writeConfig(t, dbPath)
	code, out, stderr := runCLI(t, "tickets", "show", "1", "--json", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"id", "subject", "status", "priority", "mailbox", "requester", "cc", "assignee", "team",
		"category", "created_at", "updated_at", "message_count", "messages"} {
		if _, ok := got[key]; !ok {
			t.Errorf("ticket JSON lacks %q", key)
		}
	}
	if got["created_at"] != "2026-11-24T10:00:00Z" || got["message_count"] != 2.0 || got["id"] != 1.0 {
		t.Errorf("values: %v %v %v", got["created_at"], got["message_count"], got["id"])
	}
	msgs := got["messages"].([]any)
	first := msgs[0].(map[string]any)
	for _, key := range []string{"message_id", "direction", "kind", "from", "to", "date", "subject", "text", "attachments", "matched_by"} {
		if _, ok := first[key]; !ok {
			t.Errorf("message JSON lacks %q", key)
		}
	}
	if first["message_id"] != "<abc@mail.example.org>" || first["kind"] != "customer" {
		t.Errorf("first message %v", first)
	}
	if second := msgs[1].(map[string]any); second["direction"] != "out" || second["kind"] != "autoreply" {
		t.Errorf("second message %v", second)
	}

	code, out, _ = runCLI(t, "tickets", "list", "--json", "--config", cfg)
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 {
		t.Fatalf("list: exit %d %q", code, out)
	}
	if _, ok := list[0]["messages"]; ok {
		t.Error("list JSON carries messages")
	}
	code, out, _ = runCLI(t, "tickets", "list", "--config", cfg)
	if code != 0 || !strings.Contains(out, "Printer on 3rd floor offline") || !strings.Contains(out, "STATUS") {
		t.Errorf("table: %q", out)
	}
	code, _, stderr = runCLI(t, "tickets", "show", "99", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "ticket 99 not found") {
		t.Errorf("unknown ticket: exit %d %q", code, stderr)
	}
}

func TestBackupAndVerify(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "hd.db")
	seed(t, dbPath)
	cfg := writeConfig(t, dbPath)
	dst := filepath.Join(t.TempDir(), "backup.db")
	code, out, stderr := runCLI(t, "backup", dst, "--config", cfg)
	if code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("backup: exit %d %q %q", code, out, stderr)
	}
	fi, err := os.Stat(dst)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if code, out, _ := runCLI(t, "verify", dst); code != 0 || !strings.Contains(out, "consistent") {
		t.Fatalf("verify backup: exit %d %q", code, out)
	}
	os.WriteFile(dst, []byte("not a database"), 0o600)
	if code, _, _ := runCLI(t, "verify", dst); code != 1 {
		t.Fatalf("verify garbage: exit %d", code)
	}
}
