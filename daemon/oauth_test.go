package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpdesk/helpdesk/config"
	"github.com/helpdesk/helpdesk/daemon"
	"github.com/helpdesk/helpdesk/inbox"
	"github.com/helpdesk/helpdesk/internal/mailtest"
	"github.com/helpdesk/helpdesk/store"
)

const (
	oauthClientID     = "helpdesk-app"
	oauthClientSecret = "client-SECRET"
	oauthRefresh      = "refresh-SECRET-0"
)

// fakeOAuth is an OAuth 2.0 provider: a token endpoint that grants access
// tokens for a refresh token (/token) and the introspection endpoint
// Dovecot checks them with (/introspect).
type fakeOAuth struct {
	srv *httptest.Server

	mu        sync.Mutex
	refresh   string // the refresh token accepted now
	rotate    bool   // every grant issues a new refresh token
	expiresIn int    // seconds; 0 leaves expires_in out
	failNext  int    // answer this many token requests with 503
	block     chan struct{}
	issued    map[string]bool
	grants    int          // tokens issued
	requests  int          // token requests, failed ones included
	forms     []url.Values // body of each granted request
}

func startFakeOAuth(t *testing.T) *fakeOAuth {
	t.Helper()
	f := &fakeOAuth{refresh: oauthRefresh, expiresIn: 3600, issued: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /introspect", f.introspect)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOAuth) tokenURL() string { return f.srv.URL + "/token" }

func (f *fakeOAuth) oauth2() *config.OAuth2 {
	return &config.OAuth2{TokenURL: f.tokenURL(), ClientID: oauthClientID, ClientSecret: oauthClientSecret,
		RefreshToken: oauthRefresh, Scopes: []string{"https://outlook.office365.com/IMAP.AccessAsUser.All", "offline_access"}}
}

func (f *fakeOAuth) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-r.Context().Done():
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.failNext > 0 {
		f.failNext--
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	fail := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
	} else {
		// RFC 6749 §2.3.1: form-encoded, then Basic.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	}
	if id != oauthClientID || secret != oauthClientSecret {
		fail(http.StatusUnauthorized, "invalid_client", "unknown client")
		return
	}
	if r.PostFormValue("grant_type") != "refresh_token" || r.PostFormValue("refresh_token") != f.refresh {
		fail(http.StatusBadRequest, "invalid_grant", "AADSTS70008: The refresh token has expired.")
		return
	}
	f.grants++
	f.forms = append(f.forms, r.PostForm)
	resp := map[string]any{"access_token": fmt.Sprintf("access-%d", f.grants), "token_type": "Bearer"}
	if f.expiresIn > 0 {
		resp["expires_in"] = f.expiresIn
	}
	if f.rotate {
		f.refresh = fmt.Sprintf("refresh-SECRET-%d", f.grants)
		resp["refresh_token"] = f.refresh
	}
	f.issued[resp["access_token"].(string)] = true
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (f *fakeOAuth) introspect(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	active := f.issued[r.PostFormValue("token")]
	f.mu.Unlock()
	resp := map[string]any{"active": active}
	if active {
		resp["username"] = "support"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (f *fakeOAuth) set(fn func(f *fakeOAuth)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeOAuth) counts() (grants, requests int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.grants, f.requests
}

// tokenFunc returns the token source IMAPConfig builds for f.
func tokenFunc(t *testing.T, f *fakeOAuth) func(context.Context) (string, error) {
	t.Helper()
	ic := daemon.IMAPConfig(config.Mailbox{Name: "sales", IMAP: config.IMAP{Host: "imap.example.com", Username: "support", OAuth2: f.oauth2()}}, nil)
	if ic.Token == nil || ic.Password != "" {
		t.Fatalf("IMAPConfig with oauth2: Token set %v, Password %q; want a token source and no password", ic.Token != nil, ic.Password)
	}
	return ic.Token
}

func TestIMAPConfigPasswordHasNoTokenSource(t *testing.T) {
	t.Parallel()
	ic := daemon.IMAPConfig(config.Mailbox{Name: "support", IMAP: config.IMAP{Username: "u", Password: "p"}}, nil)
	if ic.Token != nil || ic.Password != "p" {
		t.Errorf("IMAPConfig with a password: Token set %v, Password %q", ic.Token != nil, ic.Password)
	}
}

// TestOAuthTokenCached: one refresh-token grant with the configured client,
// scopes and refresh token serves every login until the token nears its
// expiry.
func TestOAuthTokenCached(t *testing.T) {
	t.Parallel()
	f := startFakeOAuth(t)
	token := tokenFunc(t, f)
	for i := 0; i < 3; i++ {
		got, err := token(context.Background())
		if err != nil || got != "access-1" {
			t.Fatalf("Token #%d = %q, %v; want access-1", i+1, got, err)
		}
	}
	if grants, requests := f.counts(); grants != 1 || requests != 1 {
		t.Errorf("%d grants in %d requests, want 1 in 1", grants, requests)
	}
	form := f.forms[0]
	if got, want := form.Get("scope"), "https://outlook.office365.com/IMAP.AccessAsUser.All offline_access"; got != want {
		t.Errorf("scope = %q, want %q", got, want)
	}
}

// TestOAuthTokenRefreshedBeforeExpiry: a token that expires within the
// safety margin is replaced at the next login, with the refresh token the
// endpoint rotated in.
func TestOAuthTokenRefreshedBeforeExpiry(t *testing.T) {
	t.Parallel()
	f := startFakeOAuth(t)
	f.set(func(f *fakeOAuth) { f.expiresIn, f.rotate = 30, true })
	token := tokenFunc(t, f)
	for i := 1; i <= 3; i++ {
		got, err := token(context.Background())
		if want := fmt.Sprintf("access-%d", i); err != nil || got != want {
			t.Fatalf("Token #%d = %q, %v; want %s", i, got, err, want)
		}
	}
	// The fake accepts only the latest refresh token: three grants means
	// each used the one rotated in by the previous.
	if grants, _ := f.counts(); grants != 3 {
		t.Errorf("%d grants, want 3", grants)
	}

	// Without expires_in the token is still replaced eventually; here it
	// is reused (the assumed lifetime is minutes).
	g := startFakeOAuth(t)
	g.set(func(f *fakeOAuth) { f.expiresIn = 0 })
	token = tokenFunc(t, g)
	for i := 0; i < 2; i++ {
		if got, err := token(context.Background()); err != nil || got != "access-1" {
			t.Fatalf("Token = %q, %v; want access-1", got, err)
		}
	}
}

// TestOAuthTokenErrors: a refused or failed grant gives one clear line that
// names the endpoint, never a secret.
func TestOAuthTokenErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		setup func(f *fakeOAuth)
		want  string
	}{
		{"revoked", func(f *fakeOAuth) { f.refresh = "another" }, "refused the refresh token: invalid_grant: AADSTS70008: The refresh token has expired."},
		{"down", func(f *fakeOAuth) { f.failNext = 2 }, "answered 503 Service Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startFakeOAuth(t)
			f.set(tc.setup)
			_, err := tokenFunc(t, f)(context.Background())
			if err == nil {
				t.Fatal("Token succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, f.tokenURL()) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and saying %q", msg, f.tokenURL(), tc.want)
			}
			if strings.Contains(msg, "SECRET") {
				t.Errorf("error %q shows a secret", msg)
			}
		})
	}
}

// TestOAuthTokenConcurrent: logins racing for an expired token share one
// grant.
func TestOAuthTokenConcurrent(t *testing.T) {
	t.Parallel()
	f := startFakeOAuth(t)
	token := tokenFunc(t, f)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Go(func() {
			if got, err := token(context.Background()); err != nil || got != "access-1" {
				t.Errorf("Token = %q, %v; want access-1", got, err)
			}
		})
	}
	wg.Wait()
	if grants, _ := f.counts(); grants != 1 {
		t.Errorf("%d grants, want 1", grants)
	}
}

// TestOAuthTokenCancel: a caller whose context ends stops waiting, whether
// for the endpoint or for another caller's refresh.
func TestOAuthTokenCancel(t *testing.T) {
	t.Parallel()
	f := startFakeOAuth(t)
	block := make(chan struct{})
	f.set(func(f *fakeOAuth) { f.block = block })
	defer close(block)
	token := tokenFunc(t, f)

	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			_, err := token(ctx)
			errs <- err
		}()
	}
	cancel()
	for i := 0; i < 2; i++ {
		select {
		case err := <-errs:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Token after cancel: %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Token still waiting 10s after its context was cancelled")
		}
	}
}

// TestOAuth2MailboxEndToEnd runs the daemon against a Dovecot that only
// takes the fake provider's tokens: `helpdesk check` passes, the token
// endpoint being down at first costs a retry (not a crash), mail becomes
// tickets, and a reconnect reuses the cached token.
func TestOAuth2MailboxEndToEnd(t *testing.T) {
	f := startFakeOAuth(t)
	dove := mailtest.StartDovecotOpts(t, mailtest.DovecotOptions{
		Users:                  map[string]string{"support": "unused-password"},
		OAuth2IntrospectionURL: f.srv.URL + "/introspect",
	})
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{})
	mb := config.Mailbox{
		Name: "support", Address: supportAddr,
		IMAP: config.IMAP{Host: dove.Host, Port: dove.IMAPSPort, TLS: config.TLSImplicit,
			Username: "support", Folder: "INBOX", OAuth2: f.oauth2()},
		PollInterval: 2 * time.Second, IDLE: true,
	}
	cfg := &config.Config{
		Database:  filepath.Join(t.TempDir(), "helpdesk.db"),
		Log:       config.Log{Level: "debug", Format: "text"},
		Ticket:    config.Ticket{SubjectPrefix: "Ticket", Domain: domain},
		SMTP:      config.SMTP{Host: sink.Host, Port: sink.Port, TLS: config.TLSNone, HELO: domain, Timeout: 5 * time.Second},
		Mailboxes: []config.Mailbox{mb},
		Autoreply: config.Autoreply{Enabled: true, MaxPerSender: 5, Per: time.Hour, GlobalMaxPerHour: 1000},
		Outbox:    config.Outbox{MaxAttempts: 20, MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond},
		Limits:    config.Limits{MaxMessageBytes: 25 << 20},
	}
	e := &env{t: t, dove: dove, smtp: sink, cfg: cfg}
	t.Cleanup(e.stop)

	// What `helpdesk check` does.
	if err := inbox.New(daemon.IMAPConfig(mb, dove.Cert.Pool), nil, nil, nil).Check(context.Background()); err != nil {
		t.Fatalf("check: %v", err)
	}

	e.deliver(mailFrom("Ann Example <ann@example.org>", "VPN broken", "oauth1@example.org"))
	// Down for the first login of the daemon (x/oauth2 tries twice per
	// grant while it learns where the endpoint wants the client secret).
	f.set(func(f *fakeOAuth) { f.failNext = 2 })
	logs := &lockedBuffer{}
	d, err := daemon.Open(daemon.Options{
		Config:  cfg,
		Log:     slog.New(slog.NewTextHandler(io.MultiWriter(logs, newTestWriter(t)), &slog.HandlerOptions{Level: slog.LevelDebug})),
		RootCAs: dove.Cert.Pool,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.d, e.cancel, e.done = d, cancel, make(chan error, 1)
	go func() { e.done <- d.Run(ctx) }()

	e.eventually("the first ticket", func(tx *store.Tx) bool { return tx.TicketExists(1) })
	if log := dove.LogTail(); !strings.Contains(log, "method=XOAUTH2") {
		t.Errorf("Dovecot logged no XOAUTH2 login:\n%s", log)
	}
	if !strings.Contains(logs.String(), "answered 503 Service Unavailable") {
		t.Errorf("the token endpoint's failure was not logged")
	}
	grants, _ := f.counts()
	if grants != 2 { // check's source, then the daemon's
		t.Errorf("%d grants, want 2 (one per token source)", grants)
	}

	// A reconnect logs in again with the cached token.
	dove.Stop()
	dove.Start()
	e.deliver(mailFrom("Bob Example <bob@example.org>", "Printer", "oauth2@example.org"))
	e.eventually("the second ticket", func(tx *store.Tx) bool { return tx.TicketExists(2) })
	if again, _ := f.counts(); again != grants {
		t.Errorf("%d grants after a reconnect, want still %d", again, grants)
	}
	if out := logs.String(); strings.Contains(out, "access-") || strings.Contains(out, "SECRET") {
		t.Errorf("a token or secret reached the log")
	}
	sink.WaitFor(t, 2, 15*time.Second) // both acknowledgements went out
}

// lockedBuffer collects log output written from the daemon's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
