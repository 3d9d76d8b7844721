package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeConfig writes content to config.yaml in a fresh directory.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const minimalYAML = `
ticket:
  domain: helpdesk.example.com
mailboxes:
  - name: support
    address: support@example.com
    imap:
      host: imap.example.com
      password: secret
`

// TestMinimalConfig: a domain and one mailbox give every default. The want
// value is spelled out rather than built from defaults(), so changing a
// default fails here and must be deliberate (and documented).
func TestMinimalConfig(t *testing.T) {
	t.Parallel()
	got, err := LoadWithEnv("testdata/good/minimal.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Database: "./helpdesk.db",
		HTTP:     HTTP{Listen: "127.0.0.1:8025"},
		Log:      Log{Level: "info", Format: "text"},
		Ticket:   Ticket{SubjectPrefix: "Ticket", Domain: "helpdesk.example.com"},
		SMTP: SMTP{
			Host:    "localhost",
			Port:    587,
			TLS:     TLSStartTLS,
			HELO:    "helpdesk.example.com",
			Timeout: 30 * time.Second,
		},
		Mailboxes: []Mailbox{{
			Name:    "support",
			Address: "support@example.com",
			IMAP: IMAP{
				Host:     "imap.example.com",
				Port:     993,
				TLS:      TLSImplicit,
				Username: "support@example.com",
				Password: "secret",
				Folder:   "INBOX",
			},
			PollInterval: 30 * time.Second,
			IDLE:         true,
		}},
		Autoreply: Autoreply{
			Enabled:          true,
			MaxPerSender:     5,
			Per:              time.Hour,
			GlobalMaxPerHour: 200,
			PauseAfter:       3,
			PauseFor:         24 * time.Hour,
			UndeliverableFor: 24 * time.Hour,
		},
		Outbox: Outbox{MaxAttempts: 20, MinBackoff: 30 * time.Second, MaxBackoff: time.Hour},
		Limits: Limits{MaxMessageBytes: 25 << 20},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("minimal config (-want +got):\n%s", diff)
	}

	// Null values and empty sections are the same as absent keys.
	nulls, err := LoadWithEnv("testdata/good/nulls.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, nulls, cmpNilEmpty); diff != "" {
		t.Errorf("nulls.yaml differs from the minimal config (-want +got):\n%s", diff)
	}
}

// cmpNilEmpty treats a nil and an empty slice alike (agents: []).
var cmpNilEmpty = cmp.FilterValues(func(x, y []Agent) bool { return len(x) == 0 && len(y) == 0 }, cmp.Ignore())

// TestFullConfig: every key set to a non-default value lands in its field,
// secrets come from files relative to the config file, and nothing else.
func TestFullConfig(t *testing.T) {
	t.Parallel()
	got, err := LoadWithEnv("testdata/good/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	sec := filepath.Join("testdata", "good", "secrets")
	want := &Config{
		Database: "/var/lib/helpdesk/tickets.db",
		HTTP:     HTTP{Listen: "[::1]:9025"},
		Log:      Log{Level: "debug", Format: "json"},
		Ticket:   Ticket{SubjectPrefix: "HD-2", Domain: "tickets.example.org"},
		SMTP: SMTP{
			Host:               "192.0.2.25",
			Port:               2525,
			TLS:                TLSImplicit,
			Username:           "relay",
			Password:           "smtp-s3cret",
			PasswordFile:       filepath.Join(sec, "smtp.pass"),
			InsecureSkipVerify: true,
			HELO:               "mx1.example.org",
			Timeout:            90 * time.Second,
		},
		Mailboxes: []Mailbox{
			{
				Name:           "support",
				Address:        "support@example.org",
				CommentAddress: "notes@example.org",
				IMAP: IMAP{
					Host:               "imap.example.org",
					Port:               1993,
					TLS:                TLSStartTLS,
					Username:           "support-login",
					Password:           "imap-s3cret",
					PasswordFile:       filepath.Join(sec, "imap.pass"),
					Folder:             "Helpdesk",
					MoveTo:             "Helpdesk/Done",
					InsecureSkipVerify: true,
				},
				PollInterval: 2 * time.Minute,
				IDLE:         false,
			},
			{
				Name:    "sales.eu",
				Address: "sales@example.org",
				IMAP: IMAP{
					Host:     "outlook.office365.com",
					Port:     143,
					TLS:      TLSNone,
					Username: "sales@example.org",
					Folder:   "INBOX",
					OAuth2: &OAuth2{
						TokenURL:         "https://login.example.org/token",
						ClientID:         "client-1",
						ClientSecret:     "client-s3cret",
						ClientSecretFile: filepath.Join(sec, "client-secret"),
						RefreshToken:     "refresh-t0ken",
						RefreshTokenFile: filepath.Join(sec, "refresh-token"),
						Scopes:           []string{"imap", "offline_access"},
					},
				},
				PollInterval: 30 * time.Second,
				IDLE:         true,
			},
		},
		Agents: []Agent{
			{Email: "alice@example.org", Name: "Alice", Teams: []string{"l1", "l2"}},
			{Email: "bob@example.org", Name: "Bob"},
		},
		Teams: []Team{{Name: "l1", Email: "l1@example.org"}, {Name: "l2"}},
		Autoreply: Autoreply{
			Enabled:          false,
			MaxPerSender:     2,
			Per:              24 * time.Hour,
			Template:         filepath.Join(sec, "autoreply.txt"),
			GlobalMaxPerHour: 50,
			PauseAfter:       3,
			PauseFor:         24 * time.Hour,
			UndeliverableFor: 24 * time.Hour,
		},
		Outbox:   Outbox{MaxAttempts: 3, MinBackoff: time.Second, MaxBackoff: 10 * time.Minute},
		Limits:   Limits{MaxMessageBytes: 10_000_000},
		Security: Security{TrustedAuthservID: "mx.example.org"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("full config (-want +got):\n%s", diff)
	}
}

// TestGoodConfigs: every file in testdata/good loads.
func TestGoodConfigs(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/good/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d good configs, want at least 4", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			if _, err := LoadWithEnv(f, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPlainRelay(t *testing.T) {
	t.Parallel()
	c, err := LoadWithEnv("testdata/good/plain-relay.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"http disabled", c.HTTP.Listen, ""},
		{"level lower-cased", c.Log.Level, "warn"},
		{"slog level", c.Log.SlogLevel(), slog.LevelWarn},
		{"format lower-cased", c.Log.Format, "json"},
		{"smtp tls", c.SMTP.TLS, TLSNone},
		{"smtp no auth", c.SMTP.Username + c.SMTP.Password, ""},
		{"smtp addr", c.SMTP.Addr(), "127.0.0.1:25"},
		{"imap tls", c.Mailboxes[0].IMAP.TLS, TLSNone},
		{"imap port from tls", c.Mailboxes[0].IMAP.Port, 143},
		{"imap addr", c.Mailboxes[0].IMAP.Addr(), "[::1]:143"},
		{"quoted numeric password kept", c.Mailboxes[0].IMAP.Password, "0123"},
		{"explicit idle false", c.Mailboxes[0].IDLE, false},
		{"explicit enabled false", c.Autoreply.Enabled, false},
		{"plain byte count", c.Limits.MaxMessageBytes, ByteSize(1 << 20)},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestDerivedDefaults(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `
ticket: {domain: hd.example.com}
smtp: {tls: tls}
mailboxes:
  - {name: a, address: a@example.com, imap: {host: h, password: p, tls: starttls}}
  - {name: b, address: b@example.com, imap: {host: h, password: p, tls: tls}}
`)
	c, err := LoadWithEnv(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Port != 465 {
		t.Errorf("smtp port with tls: got %d, want 465", c.SMTP.Port)
	}
	if c.SMTP.HELO != "hd.example.com" {
		t.Errorf("helo: got %q, want the ticket domain", c.SMTP.HELO)
	}
	if p := c.Mailboxes[0].IMAP.Port; p != 143 {
		t.Errorf("imap port with starttls: got %d, want 143", p)
	}
	if p := c.Mailboxes[1].IMAP.Port; p != 993 {
		t.Errorf("imap port with tls: got %d, want 993", p)
	}
	if u := c.Mailboxes[1].IMAP.Username; u != "b@example.com" {
		t.Errorf("imap username: got %q, want the mailbox address", u)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, minimalYAML+`
agents:
  - {email: alice@example.com, teams: [l1]}
`)
	env := []string{
		"PATH=/usr/bin",
		"HELPDESK_CONFIG=/elsewhere.yaml", // shares the prefix, names no key
		"HELPDESK_DATABASE=/tmp/x.db",
		"HELPDESK_TICKET_DOMAIN=env.example.com",
		"HELPDESK_SMTP_PORT=2525",
		"HELPDESK_SMTP_USERNAME=u",
		"HELPDESK_SMTP_PASSWORD=from-env",
		"HELPDESK_SMTP_INSECURE_SKIP_VERIFY=true",
		"HELPDESK_SMTP_TIMEOUT=5s",
		"HELPDESK_LOG_LEVEL=debug",
		"HELPDESK_LOG_LEVEL=error", // the last entry wins
		"HELPDESK_HTTP_LISTEN=",    // empty: ignored
		"HELPDESK_LIMITS_MAX_MESSAGE_BYTES=1MiB",
		"HELPDESK_SECURITY_TRUSTED_AUTHSERV_ID=mx.example.com",
		"HELPDESK_MAILBOXES_0_IMAP_PASSWORD=imap-env",
		"HELPDESK_MAILBOXES_0_IMAP_MOVE_TO=Done",
		"HELPDESK_MAILBOXES_0_IDLE=false",
		"HELPDESK_MAILBOXES_0_POLL_INTERVAL=1m",
		"HELPDESK_AGENTS_0_TEAMS=l1, l2",
		"HELPDESK_AGENTS_0_NAME=Alice",
	}
	c, err := LoadWithEnv(path, env)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"database", c.Database, "/tmp/x.db"},
		{"domain", c.Ticket.Domain, "env.example.com"},
		{"helo follows the env domain", c.SMTP.HELO, "env.example.com"},
		{"smtp port", c.SMTP.Port, 2525},
		{"smtp password", c.SMTP.Password, "from-env"},
		{"smtp insecure", c.SMTP.InsecureSkipVerify, true},
		{"smtp timeout", c.SMTP.Timeout, 5 * time.Second},
		{"log level", c.Log.Level, "error"},
		{"http listen untouched", c.HTTP.Listen, "127.0.0.1:8025"},
		{"size", c.Limits.MaxMessageBytes, MiB},
		{"authserv", c.Security.TrustedAuthservID, "mx.example.com"},
		{"imap password", c.Mailboxes[0].IMAP.Password, "imap-env"},
		{"imap host kept", c.Mailboxes[0].IMAP.Host, "imap.example.com"},
		{"move_to", c.Mailboxes[0].IMAP.MoveTo, "Done"},
		{"idle", c.Mailboxes[0].IDLE, false},
		{"poll", c.Mailboxes[0].PollInterval, time.Minute},
		{"agent teams", strings.Join(c.Agents[0].Teams, "|"), "l1|l2"},
		{"agent name", c.Agents[0].Name, "Alice"},
		{"agent email kept", c.Agents[0].Email, "alice@example.com"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s: got %v, want %v", ck.name, ck.got, ck.want)
		}
	}

	// The same file without the environment is untouched: the overrides
	// did not leak into anything shared.
	c2, err := LoadWithEnv(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Mailboxes[0].IMAP.Password != "secret" || c2.SMTP.Port != 587 {
		t.Errorf("without env: password %q port %d", c2.Mailboxes[0].IMAP.Password, c2.SMTP.Port)
	}
}

// TestEnvCreatesOAuth2: an index override can fill a block the entry lacks.
func TestEnvCreatesOAuth2(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `
ticket: {domain: hd.example.com}
mailboxes:
  - name: a
    address: a@example.com
    imap:
      host: h
      oauth2: {token_url: "https://t.example.com/token", client_id: c}
`)
	c, err := LoadWithEnv(path, []string{"HELPDESK_MAILBOXES_0_IMAP_OAUTH2_REFRESH_TOKEN=rt"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Mailboxes[0].IMAP.OAuth2.RefreshToken; got != "rt" {
		t.Errorf("refresh token: got %q", got)
	}
}

// TestEnvNames: every key has its own variable, and scalar variables
// cannot be mistaken for list-entry variables.
func TestEnvNames(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	add := func(name, path string) {
		if other, dup := seen[name]; dup {
			t.Errorf("%s names both %s and %s", name, other, path)
		}
		seen[name] = path
	}
	for _, l := range leaves(configType, "") {
		add(envName(l.path), l.path)
		for list := range lists() {
			if strings.HasPrefix(envName(l.path), envName(list)+"_") {
				t.Errorf("%s looks like an entry of %s", envName(l.path), list)
			}
		}
	}
	for list, elem := range lists() {
		seen = map[string]string{}
		for _, l := range leaves(elem, "") {
			add(envName(l.path), list+"[]."+l.path)
		}
	}
	if envName("mailboxes.imap.password_file") != "MAILBOXES_IMAP_PASSWORD_FILE" {
		t.Errorf("envName: got %s", envName("mailboxes.imap.password_file"))
	}
}

func TestSecretFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	abs := write("abs.pass", "  spaces kept  \r\n\n")
	write("rel.pass", "relative\n")
	write("config.yaml", `
ticket: {domain: hd.example.com}
smtp: {username: u, password_file: `+abs+`}
mailboxes:
  - {name: a, address: a@example.com, imap: {host: h, password_file: rel.pass}}
`)
	// Load from another working directory's point of view: the relative
	// path must resolve against the config file, not the test's cwd.
	c, err := LoadWithEnv(filepath.Join(dir, "config.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Password != "  spaces kept  " {
		t.Errorf("smtp password: got %q (only trailing newlines are trimmed)", c.SMTP.Password)
	}
	if c.Mailboxes[0].IMAP.Password != "relative" {
		t.Errorf("imap password: got %q", c.Mailboxes[0].IMAP.Password)
	}
	if want := filepath.Join(dir, "rel.pass"); c.Mailboxes[0].IMAP.PasswordFile != want {
		t.Errorf("password_file: got %q, want resolved %q", c.Mailboxes[0].IMAP.PasswordFile, want)
	}
}

func TestUnreadableSecretFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeConfig(t, `
ticket: {domain: hd.example.com}
mailboxes:
  - {name: a, address: a@example.com, imap: {host: h, password_file: `+dir+`}}
`)
	_, err := LoadWithEnv(path, nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Key != "mailboxes[0].imap.password_file" {
		t.Fatalf("a directory as password_file: got %v", err)
	}
	if !strings.Contains(ce.Problem, dir) {
		t.Errorf("problem %q does not name the path", ce.Problem)
	}
}

func TestMissingFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := LoadWithEnv(path, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) is false for %v", err)
	}
	if want := "config: " + path + ": no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestNotAConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# comment\n"), 200_000), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		big:         "config: " + big + ": larger than 1MiB; is this the config file?",
		dir:         "config: " + dir + ": is a directory",
		"/dev/zero": "config: /dev/zero: larger than 1MiB; is this the config file?",
	} {
		if _, err := LoadWithEnv(path, nil); err == nil || err.Error() != want {
			t.Errorf("got %v, want %s", err, want)
		}
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	if got := (&Error{Key: "smtp.port", Problem: "bad"}).Error(); got != "config: smtp.port: bad" {
		t.Errorf("got %q", got)
	}
	if got := (&Error{Problem: "bad"}).Error(); got != "config: bad" {
		t.Errorf("got %q", got)
	}
}

// TestFirstErrorIsStable: with several problems the same one is reported
// every time (mapstructure and Go maps must not make it random).
func TestFirstErrorIsStable(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, `
ticket: {domain: hd.example.com}
smtp: {port: x, timeout: y, tls: 3}
outbox: {max_attempts: z}
mailboxes:
  - {name: a, address: a@example.com, imap: {host: h, password: p, port: q}, zz: 1, aa: 2}
`)
	var first string
	for i := range 20 {
		_, err := LoadWithEnv(path, nil)
		if err == nil {
			t.Fatal("loaded")
		}
		if i == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("run %d: %v, run 0: %s", i, err, first)
		}
	}
	if first != "config: mailboxes[0].aa: unknown key" {
		t.Errorf("got %s", first)
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	c, err := LoadWithEnv("testdata/good/full.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"smtp-s3cret", "imap-s3cret", "client-s3cret", "refresh-t0ken"}

	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", c)
	outputs := map[string]string{
		"String":   c.String(),
		"LogValue": logged.String(),
		"%v":       fmt.Sprintf("%v", c),
	}
	for name, out := range outputs {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s leaks %q: %s", name, s, out)
			}
		}
		for _, s := range []string{`***`, `secrets/smtp.pass`, `1m30s`, `10000000B`} {
			if !strings.Contains(out, s) {
				t.Errorf("%s lacks %s: %s", name, s, out)
			}
		}
	}
	r := c.Redacted()
	smtp := r["smtp"].(map[string]any)
	if smtp["password"] != "***" || smtp["port"] != int64(2525) || smtp["tls"] != "tls" {
		t.Errorf("smtp: %v", smtp)
	}
	mb := r["mailboxes"].([]any)[1].(map[string]any)["imap"].(map[string]any)
	if mb["password"] != "" {
		t.Errorf("unset password should stay empty, got %v", mb["password"])
	}
	if o := mb["oauth2"].(map[string]any); o["client_secret"] != "***" || o["refresh_token"] != "***" || o["client_id"] != "client-1" {
		t.Errorf("oauth2: %v", o)
	}
	if mb0 := r["mailboxes"].([]any)[0].(map[string]any)["imap"].(map[string]any); mb0["oauth2"] != nil {
		t.Errorf("absent oauth2 block: %v", mb0["oauth2"])
	}
	// The config itself is not modified.
	if c.SMTP.Password != "smtp-s3cret" {
		t.Errorf("Redacted changed the config: %q", c.SMTP.Password)
	}
}

// TestSecretTags: a field that looks like a secret must be tagged, or
// Redacted would log it.
func TestSecretTags(t *testing.T) {
	t.Parallel()
	var walk func(reflect.Type)
	seen := map[reflect.Type]bool{}
	walk = func(typ reflect.Type) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			key := keyOf(f)
			looksSecret := (strings.Contains(key, "password") || strings.Contains(key, "secret") || strings.Contains(key, "token")) &&
				!strings.HasSuffix(key, "_file") && !strings.HasSuffix(key, "_url")
			tagged := f.Tag.Get("secret") == "true"
			if looksSecret != tagged {
				t.Errorf("%s.%s (%s): looks secret %v, tagged %v", typ.Name(), f.Name, key, looksSecret, tagged)
			}
			if tagged && f.Type.Kind() != reflect.String {
				t.Errorf("%s.%s: secret tag on a non-string", typ.Name(), f.Name)
			}
			if st := structOf(f.Type); st != nil {
				walk(st)
			} else if el := listElem(f.Type); el != nil {
				walk(el)
			}
		}
	}
	walk(configType)
	if !seen[reflect.TypeFor[OAuth2]()] {
		t.Error("walk did not reach OAuth2")
	}
}

// TestResolve changes the working directory, so it cannot run in parallel.
func TestResolve(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	env := []string{"HELPDESK_CONFIG=/from/env.yaml"}
	if got := Resolve("/from/flag.yaml", env); got != "/from/flag.yaml" {
		t.Errorf("flag: got %s", got)
	}
	if got := Resolve("", env); got != "/from/env.yaml" {
		t.Errorf("env: got %s", got)
	}
	if got := Resolve("", []string{"HELPDESK_CONFIG="}); got != "/etc/helpdesk/config.yaml" {
		t.Errorf("no ./config.yaml: got %s", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Resolve("", nil); got != "config.yaml" {
		t.Errorf("./config.yaml exists: got %s", got)
	}
	if got := Resolve("", env); got != "/from/env.yaml" {
		t.Errorf("env beats ./config.yaml: got %s", got)
	}
}

func TestParseByteSize(t *testing.T) {
	t.Parallel()
	good := map[string]ByteSize{
		"0":        0,
		"1024":     KiB,
		"25MiB":    25 * MiB,
		"25 mib":   25 * MiB,
		"25MB":     25_000_000,
		"25M":      25 * MiB,
		"1.5GiB":   3 * GiB / 2,
		"2k":       2 * KiB,
		"2KB":      2000,
		"100B":     100,
		" 1 GB ":   1_000_000_000,
		"1gib":     GiB,
		"0.5 KiB":  512,
		"10000000": 10_000_000,
	}
	for in, want := range good {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "25 megabytes", "-1", "1.2.3MB", "25TB", "9999999999GiB"} {
		if got, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
		}
	}
	for _, b := range []ByteSize{0, 1, 1000, KiB, 25 * MiB, 3 * GiB, GiB + 1} {
		back, err := ParseByteSize(b.String())
		if err != nil || back != b {
			t.Errorf("%d → %q → %d, %v", b, b.String(), back, err)
		}
	}
	if s := (25 * MiB).String(); s != "25MiB" {
		t.Errorf("String: got %s", s)
	}
}

// FuzzLoad: any file content yields a config or a one-line *Error, never a
// panic.
func FuzzLoad(f *testing.F) {
	for _, glob := range []string{"testdata/good/*.yaml", "testdata/badconfig/*/config.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadWithEnv(path, nil)
		if err == nil {
			if c == nil || c.Ticket.Domain == "" || len(c.Mailboxes) == 0 {
				t.Fatalf("loaded an invalid config: %v", c)
			}
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("%T is not a *Error: %v", err, err)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("not one line: %q", err.Error())
		}
	})
}
