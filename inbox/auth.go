package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// The SASL mechanisms used with Config.Token, in order of preference.
const (
	// mechXOAUTH2 is Google's and Microsoft's mechanism; Microsoft 365
	// offers only this one.
	mechXOAUTH2 = "XOAUTH2"
	// mechOAUTHBEARER is the standard one (RFC 7628).
	mechOAUTHBEARER = sasl.OAuthBearer
)

// login authenticates: with LOGIN and the password, or, when Config.Token
// is set, with an OAuth 2.0 access token over SASL.
func (m *Mailbox) login(ctx context.Context, c *imapclient.Client) error {
	cfg := m.cfg
	if cfg.Token == nil {
		err := m.await(c, func() error { return c.Login(cfg.Username, cfg.Password).Wait() })
		if err != nil {
			return fmt.Errorf("login to %s as %q: %w", cfg.addr(), cfg.Username, err)
		}
		return nil
	}

	var mechs []string
	_ = m.await(c, func() error { // Caps may send CAPABILITY; nil on failure
		mechs = c.Caps().AuthMechanisms()
		return nil
	})
	mech := pickMechanism(mechs)
	if mech == "" {
		offered := "none"
		if len(mechs) > 0 {
			offered = strings.Join(mechs, " ")
		}
		return fmt.Errorf("login to %s as %q: the mailbox uses OAuth 2.0 but the server offers neither AUTH=XOAUTH2 nor AUTH=OAUTHBEARER (it offers: %s)",
			cfg.addr(), cfg.Username, offered)
	}

	tctx, cancel := context.WithTimeout(ctx, cfg.CommandTimeout)
	token, err := cfg.Token(tctx)
	cancel()
	if err != nil {
		return fmt.Errorf("login to %s as %q: get OAuth 2.0 access token: %w", cfg.addr(), cfg.Username, err)
	}
	if token == "" {
		return fmt.Errorf("login to %s as %q: get OAuth 2.0 access token: the token is empty", cfg.addr(), cfg.Username)
	}

	var client *bearerClient
	if mech == mechXOAUTH2 {
		client = newXOAUTH2Client(cfg.Username, token)
	} else {
		client = newOAuthBearerClient(cfg.Username, token, cfg.Host, cfg.Port)
	}
	if err := m.await(c, func() error { return c.Authenticate(client) }); err != nil {
		// The token is never part of an error: neither go-imap nor the
		// server's answer repeat it.
		if client.refusal != "" {
			return fmt.Errorf("login to %s as %q with %s: token refused (%s): %w", cfg.addr(), cfg.Username, mech, client.refusal, err)
		}
		return fmt.Errorf("login to %s as %q with %s: %w", cfg.addr(), cfg.Username, mech, err)
	}
	m.log.Debug("logged in with OAuth 2.0", "mechanism", mech)
	return nil
}

// pickMechanism returns the SASL mechanism to use among those the server
// advertises (AUTH=…), or "" if none fits.
func pickMechanism(offered []string) string {
	for _, want := range []string{mechXOAUTH2, mechOAUTHBEARER} {
		for _, m := range offered {
			if strings.EqualFold(m, want) {
				return want
			}
		}
	}
	return ""
}

// bearerClient is a SASL client for XOAUTH2 or OAUTHBEARER: one initial
// response carrying the token, then, only on failure, a challenge holding
// the server's JSON error, which must be answered with a dummy response
// before the server sends its final NO. Answering (rather than hanging
// up) gets that NO, with the server's text, into the error.
type bearerClient struct {
	mech    string
	initial []byte
	dummy   []byte // the answer to the error challenge
	// refusal describes the server's error challenge, if one came.
	refusal string
}

// newXOAUTH2Client returns the XOAUTH2 client (go-sasl has none): the
// initial response is "user=" user ^A "auth=Bearer " token ^A ^A.
//
// The protocol answers the error challenge with an empty response, but
// go-imap v2.0.0-beta.8 sends an empty continuation as "=", which is not
// base64, and Dovecot then drops the connection without its final NO
// (emersion/go-imap#760). A lone ^A, as OAUTHBEARER sends, is what the
// server ignores instead: the exchange has failed whatever the answer.
func newXOAUTH2Client(user, token string) *bearerClient {
	return &bearerClient{
		mech:    mechXOAUTH2,
		initial: []byte("user=" + user + "\x01auth=Bearer " + token + "\x01\x01"),
		dummy:   []byte{0x01},
	}
}

// newOAuthBearerClient returns the OAUTHBEARER client (RFC 7628). The
// initial response comes from go-sasl; its Next returns the server's error
// instead of answering it, which would leave the AUTHENTICATE command
// hanging, so this client answers with the ^A that RFC 7628 §3.2.3
// requires.
func newOAuthBearerClient(user, token, host string, port int) *bearerClient {
	_, ir, _ := sasl.NewOAuthBearerClient(&sasl.OAuthBearerOptions{
		Username: user, Token: token, Host: host, Port: port,
	}).Start() // never fails
	return &bearerClient{mech: mechOAUTHBEARER, initial: ir, dummy: []byte{0x01}}
}

// Start implements sasl.Client.
func (b *bearerClient) Start() (mech string, ir []byte, err error) {
	return b.mech, b.initial, nil
}

// Next implements sasl.Client. A challenge only comes after the server
// refused the token; a second one is a protocol error.
func (b *bearerClient) Next(challenge []byte) ([]byte, error) {
	if b.refusal != "" {
		return nil, errors.New("unexpected second SASL challenge")
	}
	b.refusal = describeRefusal(challenge)
	return b.dummy, nil
}

// describeRefusal summarises the server's error challenge: a JSON object
// with "status" (an HTTP code for XOAUTH2, an RFC 6749 error code for
// OAUTHBEARER), "schemes" and "scope".
func describeRefusal(challenge []byte) string {
	var e struct {
		Status string `json:"status"`
		Scope  string `json:"scope"`
	}
	// QUIRK: servers differ in what they put here; anything unparsable is
	// shown as text, trimmed.
	if err := json.Unmarshal(challenge, &e); err != nil || e.Status == "" {
		s := strings.TrimSpace(strings.ToValidUTF8(string(challenge), "?"))
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		if s == "" {
			return "no details"
		}
		return fmt.Sprintf("%q", s)
	}
	if e.Scope != "" {
		return fmt.Sprintf("status %s, scope %q", e.Status, e.Scope)
	}
	return "status " + e.Status
}
