package inbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// TLS modes for Config.TLS.
const (
	TLSNone     = "none"     // plaintext; only for loopback and tests
	TLSStartTLS = "starttls" // plaintext greeting, then STARTTLS before LOGIN
	TLSImplicit = "tls"      // TLS from the first byte (port 993)
)

// Defaults applied by New to zero fields.
const (
	DefaultFolder         = "INBOX"
	DefaultPollInterval   = time.Minute
	DefaultFetchBatch     = 100
	DefaultDialTimeout    = 30 * time.Second
	DefaultCommandTimeout = 2 * time.Minute
	DefaultMinBackoff     = time.Second
	DefaultMaxBackoff     = 5 * time.Minute

	// MaxIdle bounds one IDLE command. RFC 2177 lets servers drop a client
	// idle for 30 minutes; re-issuing IDLE earlier keeps the session alive
	// and doubles as a safety-net poll.
	MaxIdle = 25 * time.Minute
)

// Config describes one mailbox to watch. The zero value of every optional
// field means its default (see the Default constants).
type Config struct {
	// Name identifies the mailbox in Delivery.Mailbox, in State and in logs.
	// It must be stable across restarts: checkpoints are keyed by it.
	Name string

	Host string
	Port int    // default 993 for TLSImplicit, 143 otherwise
	TLS  string // TLSNone, TLSStartTLS or TLSImplicit (default)

	// InsecureSkipVerify disables certificate verification (tests and
	// self-signed servers only). RootCAs replaces the system pool if set.
	InsecureSkipVerify bool
	RootCAs            *x509.CertPool

	Username, Password string
	// Token, when set, supplies an OAuth 2.0 access token for Username, and
	// Password is ignored: login uses SASL XOAUTH2 if the server offers it,
	// else OAUTHBEARER (Microsoft 365 and Gmail require one of them). It is
	// called once per login, bounded by CommandTimeout, and must cache and
	// refresh tokens itself; its error ends the session like any other
	// (retried after a backoff). The token is never logged.
	Token func(ctx context.Context) (string, error)

	// Folder is the folder to read (default INBOX).
	Folder string
	// MoveTo, if set, is the folder handled mail is moved to, after being
	// flagged \Seen (created when missing; the server must support MOVE).
	// Otherwise handled mail stays in Folder, flagged \Seen.
	MoveTo string

	// PollInterval is the time between two checks for new mail when IDLE is
	// not used, and the longest one IDLE command lasts (capped at MaxIdle).
	PollInterval time.Duration
	// IDLE waits for new mail with IMAP IDLE when the server supports it.
	IDLE bool
	// FetchBatch is the number of UIDs per UID FETCH (default 100).
	FetchBatch int

	// DialTimeout bounds connecting, the TLS handshake and the greeting.
	DialTimeout time.Duration
	// CommandTimeout bounds the wait for the server's answer to one
	// command (or one message of a FETCH); when it passes, the connection
	// is dropped and the loop reconnects.
	CommandTimeout time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential delay
	// between two attempts after an error.
	MinBackoff, MaxBackoff time.Duration

	// DialContext replaces net.Dialer.DialContext (proxies, tests).
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
}

// withDefaults returns c with zero optional fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.TLS == "" {
		c.TLS = TLSImplicit
	}
	c.TLS = strings.ToLower(c.TLS)
	if c.Port == 0 {
		c.Port = 143
		if c.TLS == TLSImplicit {
			c.Port = 993
		}
	}
	if c.Folder == "" {
		c.Folder = DefaultFolder
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.FetchBatch <= 0 {
		c.FetchBatch = DefaultFetchBatch
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	return c
}

// validate reports configuration errors that no retry can fix.
func (c Config) validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if c.Host == "" {
		errs = append(errs, errors.New("host is empty"))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d out of range", c.Port))
	}
	switch c.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		errs = append(errs, fmt.Errorf("tls %q is not one of none, starttls, tls", c.TLS))
	}
	if c.Username == "" {
		errs = append(errs, errors.New("username is empty"))
	}
	if c.MoveTo != "" && strings.EqualFold(c.MoveTo, c.Folder) {
		errs = append(errs, fmt.Errorf("move_to %q is the folder being read", c.MoveTo))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mailbox %q: invalid config: %w", c.Name, err)
	}
	return nil
}

func (c Config) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

func (c Config) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         c.Host,
		RootCAs:            c.RootCAs,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // opt-in, documented as tests/self-signed only
		MinVersion:         tls.VersionTLS12,
	}
}

// idleFor is how long one IDLE lasts before the loop re-checks anyway.
func (c Config) idleFor() time.Duration { return min(c.PollInterval, MaxIdle) }
