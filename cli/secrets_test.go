package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	imapSecret = "imap-Pa55-w0rd-do-not-log"
	smtpSecret = "smtp-Pa55-w0rd-do-not-log"
)

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func secretConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`database: %s
http: {listen: ""}
ticket: {domain: helpdesk.example.com}
smtp: {host: 127.0.0.1, port: %d, tls: none, username: helpdesk, password: %s}
mailboxes:
  - name: support
    address: support@example.com
    imap: {host: 127.0.0.1, port: %d, tls: none, username: support, password: %s}
`, filepath.Join(dir, "hd.db"), closedPort(t), smtpSecret, closedPort(t), imapSecret)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckReportsFailuresWithoutSecrets(t *testing.T) {
	cfg := secretConfig(t)
	code, out, stderr := runCLI(t, "check", "--config", cfg)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ok   config") ||
		!strings.HasPrefix(lines[1], "FAIL imap support") || !strings.HasPrefix(lines[2], "FAIL smtp") {
		t.Errorf("check output:\n%s", out)
	}
	for _, s := range []string{imapSecret, smtpSecret} {
		if strings.Contains(out+stderr, s) {
			t.Errorf("check printed a secret:\n%s%s", out, stderr)
		}
	}
}

func TestServeLogsEffectiveConfigWithoutSecrets(t *testing.T) {
	cfg := secretConfig(t)
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	code := runContext(ctx, []string{"serve", "--config", cfg}, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, environ: []string{}})
	if code != 0 {
		t.Fatalf("serve exit %d: %s", code, errb.String())
	}
	logs := errb.String()
	if !strings.Contains(logs, "starting helpdesk") || !strings.Contains(logs, "helpdesk.example.com") {
		t.Fatalf("no effective config logged:\n%s", logs)
	}
	for _, s := range []string{imapSecret, smtpSecret} {
		if strings.Contains(logs, s) {
			t.Errorf("serve logged a secret:\n%s", logs)
		}
	}
}
