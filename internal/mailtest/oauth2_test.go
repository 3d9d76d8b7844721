package mailtest

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// introspector answers Dovecot's token introspection: active for good,
// inactive for anything else.
func introspector(t *testing.T, good, user string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		resp := map[string]any{"active": false}
		if r.PostFormValue("token") == good {
			resp = map[string]any{"active": true, "username": user}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestDovecotOAuth2(t *testing.T) {
	t.Parallel()
	srv, calls := introspector(t, "good-token", "support")
	d := StartDovecotOpts(t, DovecotOptions{
		Users:                  map[string]string{"support": "secret"},
		OAuth2IntrospectionURL: srv.URL,
	})
	d.Append(t, "support", "INBOX", []byte(testMail))

	auth := func(token string) error {
		c, err := imapclient.DialInsecure(d.Addr(), nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		for _, mech := range []string{"AUTH=XOAUTH2", "AUTH=OAUTHBEARER", "AUTH=PLAIN"} {
			if !c.Caps().Has(imap.Cap(mech)) {
				t.Errorf("capabilities %v lack %s", c.Caps(), mech)
			}
		}
		err = c.Authenticate(sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{Username: "support", Token: token}))
		if err != nil {
			return err
		}
		data, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatalf("select after oauthbearer login: %v", err)
		}
		if data.NumMessages != 1 {
			t.Errorf("INBOX has %d messages, want 1", data.NumMessages)
		}
		return nil
	}
	if err := auth("good-token"); err != nil {
		t.Fatalf("oauthbearer login with a good token: %v", err)
	}
	if calls.Load() == 0 {
		t.Error("Dovecot accepted the token without asking the introspection endpoint")
	}
	// Passwords keep working next to OAuth 2.0.
	c, err := imapclient.DialInsecure(d.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("support", "secret").Wait(); err != nil {
		t.Errorf("password login on an OAuth 2.0 instance: %v", err)
	}
	// Last, as a failure delays later logins from this address: a token the
	// endpoint calls inactive is refused, even one equal to the password
	// (the passwd-file passdb must not answer for OAuth 2.0 mechanisms).
	var bearerErr *sasl.OAuthBearerError
	if err := auth("secret"); !errors.As(err, &bearerErr) {
		t.Errorf("login with a bad token: err = %v, want the server's OAUTHBEARER error", err)
	}
}

// TestDovecotOAuth2Mechanisms checks that OAuth2Mechanisms limits what the
// server advertises.
func TestDovecotOAuth2Mechanisms(t *testing.T) {
	t.Parallel()
	srv, _ := introspector(t, "good-token", "support")
	d := StartDovecotOpts(t, DovecotOptions{
		Users:                  map[string]string{"support": "secret"},
		OAuth2IntrospectionURL: srv.URL,
		OAuth2Mechanisms:       []string{"oauthbearer"},
	})
	c, err := imapclient.DialInsecure(d.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	caps := c.Caps()
	if caps.Has("AUTH=XOAUTH2") || !caps.Has("AUTH=OAUTHBEARER") {
		t.Errorf("capabilities %v: want AUTH=OAUTHBEARER without AUTH=XOAUTH2", caps)
	}
}
