package inbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/helpdesk/helpdesk/inbox"
	"github.com/helpdesk/helpdesk/internal/mailtest"
)

const goodToken = "access-token-1"

// oauthDovecot starts a Dovecot that accepts goodToken for "support" over
// the given OAuth 2.0 mechanisms (default both), checking it with an
// introspection endpoint served by the test.
func oauthDovecot(t *testing.T, mechs ...string) *mailtest.Dovecot {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp := map[string]any{"active": false}
		if r.PostFormValue("token") == goodToken {
			resp = map[string]any{"active": true, "username": "support"}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(srv.Close)
	return mailtest.StartDovecotOpts(t, mailtest.DovecotOptions{
		// The password exists only to create the mailbox; the loop never
		// sends it.
		Users:                  map[string]string{"support": password},
		OAuth2IntrospectionURL: srv.URL,
		OAuth2Mechanisms:       mechs,
	})
}

// tokens is a Config.Token that returns a fixed token, or fails its first
// failFirst calls, and counts its calls.
type tokens struct {
	mu        sync.Mutex
	token     string
	failFirst int
	calls     int
}

func (k *tokens) get(ctx context.Context) (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	if k.calls <= k.failFirst {
		return "", errors.New("token endpoint unavailable")
	}
	return k.token, nil
}

func (k *tokens) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls
}

func oauthConfig(d *mailtest.Dovecot, k *tokens) inbox.Config {
	cfg := config(d, "support")
	cfg.Password = "" // a fallback to LOGIN would fail
	cfg.Token = k.get
	return cfg
}

// TestOAuth2Delivers fetches and flags mail after logging in with each
// mechanism: XOAUTH2 when offered (even next to OAUTHBEARER), else
// OAUTHBEARER.
func TestOAuth2Delivers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		offered []string
		method  string // as Dovecot logs it
	}{
		{nil, "XOAUTH2"},
		{[]string{"oauthbearer"}, "OAUTHBEARER"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			t.Parallel()
			d := oauthDovecot(t, tc.offered...)
			uid1 := d.Append(t, "support", "INBOX", testMail(1))
			uid2 := d.Append(t, "support", "INBOX", testMail(2))
			k := &tokens{token: goodToken}
			st := newMemStore()
			mb := inbox.New(oauthConfig(d, k), st, st, testLogger(t))

			if err := mb.Check(context.Background()); err != nil {
				t.Fatalf("Check: %v", err)
			}
			r := run(t, mb)
			eventually(t, 10*time.Second, "2 mails flagged", func() bool { return mb.Stats().Flagged == 2 })
			r.stop()

			if got := commitUIDs(st.commits()); len(got) != 2 || got[0] != uint32(uid1) || got[1] != uint32(uid2) {
				t.Errorf("handled UIDs %v, want [%d %d]", got, uid1, uid2)
			}
			if flags := d.Flags(t, "support", "INBOX", uid2); !hasFlag(flags, imap.FlagSeen) {
				t.Errorf("uid %d not \\Seen: %v", uid2, flags)
			}
			if k.count() < 2 { // one for Check, one per session
				t.Errorf("Token called %d times, want once per login", k.count())
			}
			log := d.LogTail()
			if !strings.Contains(log, "method="+tc.method) {
				t.Errorf("Dovecot did not log a %s login:\n%s", tc.method, log)
			}
			if strings.Contains(log, "method=PLAIN, rip=127.0.0.1,") {
				t.Errorf("the loop logged in with a password:\n%s", log)
			}
		})
	}
}

// TestOAuth2TokenRefused: a token the server rejects gives an error naming
// the mailbox, the mechanism and the server's reason; the token itself
// appears nowhere. Each case has its own Dovecot: a failed login delays
// later ones from the same address.
func TestOAuth2TokenRefused(t *testing.T) {
	t.Parallel()
	for _, mech := range []string{"xoauth2", "oauthbearer"} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			d := oauthDovecot(t, mech)
			const expired = "expired-token-SECRET"
			logs := &syncBuffer{}
			log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			k := &tokens{token: expired}
			cfg := oauthConfig(d, k)
			// Dovecot delays logins from an address after a failed one: each
			// step comes from its own.
			cfg.DialContext = dialFrom(127, 0, 0, 3)
			err := inbox.New(cfg, nil, nil, log).Check(context.Background())
			if err == nil {
				t.Fatal("Check succeeded with a refused token")
			}
			// The loop logs the same error and keeps trying.
			st := newMemStore()
			cfg.DialContext = dialFrom(127, 0, 0, 4)
			mb := inbox.New(cfg, st, st, log)
			r := run(t, mb)
			eventually(t, 10*time.Second, "a failed session", func() bool { return mb.Stats().Errors > 0 })
			r.stop()
			msg := err.Error()
			for _, want := range []string{`mailbox "mb-support"`, "with " + strings.ToUpper(mech), "token refused (status "} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			var imapErr *imap.Error
			if !errors.As(err, &imapErr) || imapErr.Type != imap.StatusResponseTypeNo {
				t.Errorf("error %v does not wrap the server's NO", err)
			}
			logged := logs.String()
			if !strings.Contains(logged, "token refused") {
				t.Errorf("the loop did not log the refusal:\n%s", logged)
			}
			if strings.Contains(msg, expired) || strings.Contains(logged, expired) {
				t.Errorf("the token leaked into the error or the log:\n%s\n%s", msg, logged)
			}
		})
	}
}

// TestOAuth2NoMechanism: a server without XOAUTH2 or OAUTHBEARER gives a
// clear error, without fetching a token or falling back to the password.
func TestOAuth2NoMechanism(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	k := &tokens{token: goodToken}
	cfg := oauthConfig(d, k)
	cfg.Password = password
	err := inbox.New(cfg, nil, nil, nil).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), `mailbox "mb-support"`) ||
		!strings.Contains(err.Error(), "neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER") || !strings.Contains(err.Error(), "PLAIN") {
		t.Errorf("Check = %v, want an error naming the mailbox, both mechanisms and what the server offers", err)
	}
	if k.count() != 0 {
		t.Errorf("Token called %d times for a server that cannot take it", k.count())
	}
}

// TestOAuth2TokenSourceFails: while no token can be had the loop retries
// with its backoff, and delivers once one comes; Check reports the cause.
func TestOAuth2TokenSourceFails(t *testing.T) {
	t.Parallel()
	d := oauthDovecot(t)
	d.Append(t, "support", "INBOX", testMail(1))

	err := inbox.New(oauthConfig(d, &tokens{token: goodToken, failFirst: 1}), nil, nil, nil).Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "get OAuth 2.0 access token: token endpoint unavailable") {
		t.Errorf("Check = %v, want the token source's error", err)
	}

	k := &tokens{token: goodToken, failFirst: 3}
	st := newMemStore()
	mb := inbox.New(oauthConfig(d, k), st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "mail flagged", func() bool { return mb.Stats().Flagged == 1 })
	r.stop()
	if s := mb.Stats(); s.Errors != 3 || s.Reconnects != 3 {
		t.Errorf("stats = %+v, want 3 errors and 3 reconnects", s)
	}
}

// dialFrom dials from a given loopback address.
func dialFrom(a, b, c, d byte) func(ctx context.Context, network, address string) (net.Conn, error) {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(a, b, c, d)}}
	return dialer.DialContext
}

// syncBuffer collects log output written from the loop's goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
