package config

import (
	"log/slog"
	"strings"
	"testing"
)

func TestSyntaxHelpers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		fn   func(string) bool
		in   string
		want bool
	}{
		{"email", isEmail, "support@example.com", true},
		{"email", isEmail, "a.b+notes@sub.example.co.uk", true},
		{"email", isEmail, "support@localhost", true},
		{"email", isEmail, "Support <support@example.com>", false},
		{"email", isEmail, "<support@example.com>", false},
		{"email", isEmail, "support@", false},
		{"email", isEmail, "@example.com", false},
		{"email", isEmail, "support@exa mple.com", false},
		{"email", isEmail, "support@-example.com", false},
		{"hostname", isHostname, "helpdesk.example.com", true},
		{"hostname", isHostname, "localhost", true},
		{"hostname", isHostname, "xn--bcher-kva.example", true},
		{"hostname", isHostname, "example.com.", false},
		{"hostname", isHostname, "ex_ample.com", false},
		{"hostname", isHostname, "a..b", false},
		{"hostname", isHostname, "-a.b", false},
		{"hostname", isHostname, "a-.b", false},
		{"hostname", isHostname, strings.Repeat("a", 64) + ".com", false},
		{"host", isHost, "::1", true},
		{"host", isHost, "192.0.2.1", true},
		{"host", isHost, "[::1]", false},
		{"literal", isAddressLiteral, "[192.0.2.1]", true},
		{"literal", isAddressLiteral, "[IPv6:2001:db8::1]", true},
		{"literal", isAddressLiteral, "[mail.example.com]", false},
		{"literal", isAddressLiteral, "192.0.2.1", false},
		{"literal", isAddressLiteral, "[192.0.2.1", false},
		{"loopback", isLoopback, "localhost", true},
		{"loopback", isLoopback, "127.0.0.2", true},
		{"loopback", isLoopback, "::1", true},
		{"loopback", isLoopback, "example.com", false},
	}
	for _, c := range cases {
		if got := c.fn(c.in); got != c.want {
			t.Errorf("%s(%q) = %v, want %v", c.name, c.in, got, c.want)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn,
		"error": slog.LevelError, "": slog.LevelInfo,
	} {
		if got := (Log{Level: in}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestOAuth2LoopbackHTTP: a plain-http token endpoint is fine on loopback
// (test servers), and whole floats are fine integers (YAML 1e3).
func TestOAuth2LoopbackHTTP(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `
ticket: {domain: hd.example.com}
outbox: {max_attempts: 1e1}
mailboxes:
  - name: a
    address: a@example.com
    imap:
      host: 127.0.0.1
      oauth2: {token_url: "http://127.0.0.1:8080/token", client_id: c, refresh_token: r}
`)
	c, err := LoadWithEnv(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Outbox.MaxAttempts != 10 {
		t.Errorf("max_attempts: got %d", c.Outbox.MaxAttempts)
	}
}

// TestLoadUsesProcessEnv: Load is LoadWithEnv(os.Environ()). Not parallel:
// it sets a process variable.
func TestLoadUsesProcessEnv(t *testing.T) {
	t.Setenv("HELPDESK_SMTP_HOST", "smtp.from-process.example")
	c, err := Load("testdata/good/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Host != "smtp.from-process.example" {
		t.Errorf("smtp host: got %q", c.SMTP.Host)
	}
}
