package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/helpdesk/helpdesk/config"
)

const (
	// tokenEarlyExpiry is how long before its expiry an access token is
	// replaced, so that a login never starts with a token about to lapse.
	tokenEarlyExpiry = time.Minute
	// tokenHTTPTimeout bounds one request to the token endpoint.
	tokenHTTPTimeout = 30 * time.Second
	// assumedTokenLifetime is the lifetime given to an access token whose
	// grant had no expires_in (RFC 6749 only recommends it).
	assumedTokenLifetime = 10 * time.Minute
)

// oauthTokens supplies a mailbox's OAuth 2.0 access tokens (the
// inbox.Config.Token of a mailbox with an oauth2 block): a refresh-token
// grant (RFC 6749 §6) at the token endpoint, with the configured client
// credentials and scopes, whose result is reused until tokenEarlyExpiry
// before it expires. Logins after a reconnect therefore cost no request.
//
// Nothing is persisted: a refresh token the endpoint rotates is used from
// then on, but a restart starts again from the configured one.
type oauthTokens struct {
	// sem is held while the token is read or refreshed: concurrent callers
	// share one refresh, and a caller whose context ends stops waiting.
	sem chan struct{}

	// The fields below are guarded by sem.
	//
	// conf is x/oauth2's client-credentials flow turned into a refresh:
	// it is the one helper of the module that sends the scopes with the
	// request (the refresher of oauth2.Config does not, and Microsoft's
	// endpoint may then issue a token for other scopes than IMAP's) and it
	// lets grant_type be overridden.
	conf         clientcredentials.Config
	refreshToken string
	tok          *oauth2.Token // nil until the first grant
	// client trusts the system roots: identity providers have public
	// certificates (Options.RootCAs is for test and demo mail servers).
	client *http.Client
}

func newOAuthTokens(o config.OAuth2) *oauthTokens {
	return &oauthTokens{
		sem: make(chan struct{}, 1),
		conf: clientcredentials.Config{
			ClientID:     o.ClientID,
			ClientSecret: o.ClientSecret,
			TokenURL:     o.TokenURL,
			Scopes:       o.Scopes,
			// Probes for where the endpoint wants the client credentials
			// (Basic auth or the form), then remembers it.
			AuthStyle: oauth2.AuthStyleAutoDetect,
		},
		refreshToken: o.RefreshToken,
		client:       &http.Client{Timeout: tokenHTTPTimeout},
	}
}

// Token returns a valid access token, refreshing it first when it is
// missing or about to expire. Errors never contain a token or the secret.
func (s *oauthTokens) Token(ctx context.Context) (string, error) {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return "", fmt.Errorf("wait for the token being refreshed: %w", context.Cause(ctx))
	}
	defer func() { <-s.sem }()

	s.conf.EndpointParams = url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {s.refreshToken},
	}
	// A source built per call so that the request uses this call's context;
	// ReuseTokenSource returns s.tok while it is valid, without a request.
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	tok, err := oauth2.ReuseTokenSourceWithExpiry(s.tok, s.conf.TokenSource(ctx), tokenEarlyExpiry).Token()
	if err != nil {
		return "", s.explain(err)
	}
	if tok != s.tok {
		if tok.AccessToken == "" {
			return "", fmt.Errorf("oauth2 token endpoint %s: the answer has no access_token", s.conf.TokenURL)
		}
		// The request carried the current refresh token: one in the answer
		// replaces it (x/oauth2 copies the old one in when there is none).
		if tok.RefreshToken != "" {
			s.refreshToken = tok.RefreshToken
		}
		// QUIRK: without expires_in x/oauth2 would reuse the token forever,
		// and logins would fail for good once it lapses: refresh it now and
		// then instead.
		if tok.Expiry.IsZero() {
			tok.Expiry = time.Now().Add(assumedTokenLifetime)
		}
		s.tok = tok
	}
	return tok.AccessToken, nil
}

// explain turns a failed grant into one line naming the endpoint and, when
// it answered with an RFC 6749 error, its code and description (for
// example invalid_grant when the refresh token was revoked or expired).
func (s *oauthTokens) explain(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.ErrorCode != "" {
		msg := fmt.Sprintf("oauth2 token endpoint %s refused the refresh token: %s", s.conf.TokenURL, re.ErrorCode)
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		return &tokenError{msg: msg, err: err}
	}
	if errors.As(err, &re) && re.Response != nil {
		return &tokenError{msg: fmt.Sprintf("oauth2 token endpoint %s answered %s", s.conf.TokenURL, re.Response.Status), err: err}
	}
	return fmt.Errorf("oauth2 token endpoint %s: %w", s.conf.TokenURL, err)
}

// tokenError is a failed grant described in one line; it wraps x/oauth2's
// error, whose own text repeats the whole response body.
type tokenError struct {
	msg string
	err error
}

func (e *tokenError) Error() string { return e.msg }
func (e *tokenError) Unwrap() error { return e.err }
