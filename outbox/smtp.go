package outbox

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"
)

// SMTPConfig says how to reach the relay.
type SMTPConfig struct {
	Host string
	// Port defaults to 465 for TLS "tls" and 587 otherwise.
	Port int
	// TLS is "none", "starttls" (mandatory: no plaintext fallback) or "tls"
	// (implicit TLS from the first byte).
	TLS string
	// Username enables SMTP AUTH (PLAIN, else LOGIN). Without it no AUTH is
	// attempted.
	Username, Password string
	// InsecureSkipVerify disables certificate verification (operator's
	// choice, for a relay with a self-signed certificate).
	InsecureSkipVerify bool
	// RootCAs, when set, replaces the system roots.
	RootCAs *x509.CertPool
	// HELO is the name we greet with; default the host name.
	HELO string
	// Timeout bounds connecting (TCP, greeting, EHLO, TLS, AUTH) and then
	// each message transaction; default 30s.
	Timeout time.Duration
}

// TLS modes of SMTPConfig.TLS.
const (
	TLSNone     = "none"
	TLSStartTLS = "starttls"
	TLSImplicit = "tls"
)

const (
	defaultSMTPTimeout = 30 * time.Second
	// idleClose is how long a connection is kept after a send, so that a
	// burst of mail shares one connection without holding it open forever.
	idleClose = 5 * time.Second
	// quitTimeout bounds the courtesy QUIT, during which Send waits.
	quitTimeout = 5 * time.Second
)

// SMTPSender delivers prepared messages to one relay with go-mail's SMTP
// client. It keeps the connection of a burst open (RSET between messages)
// and closes it after idleClose without use, or on any error that leaves
// the session in doubt. Sends are serialised; it is safe for concurrent
// use.
type SMTPSender struct {
	cfg     SMTPConfig
	tlsConf *tls.Config
	cfgErr  error // a configuration error, reported by every Send and Check

	mu      sync.Mutex
	conn    *gosmtp.Client // nil when not connected
	clean   bool           // conn's last transaction succeeded: no RSET before the next
	raw     net.Conn       // conn's TCP connection, for deadlines
	lastUse time.Time      // end of the last Send on conn
	timer   *time.Timer    // closes conn after idleClose unused; nil when not armed
}

// NewSMTPSender returns a sender for cfg. It does not connect; a bad cfg is
// reported by Send and Check.
func NewSMTPSender(cfg SMTPConfig) *SMTPSender {
	s := &SMTPSender{cfg: cfg}
	if s.cfg.TLS == "" {
		s.cfg.TLS = TLSStartTLS
	}
	if s.cfg.Timeout <= 0 {
		s.cfg.Timeout = defaultSMTPTimeout
	}
	if s.cfg.Port == 0 {
		s.cfg.Port = 587
		if s.cfg.TLS == TLSImplicit {
			s.cfg.Port = 465
		}
	}
	switch {
	case s.cfg.Host == "":
		s.cfgErr = errors.New("smtp: no host configured")
	case s.cfg.Port < 1 || s.cfg.Port > 65535:
		s.cfgErr = fmt.Errorf("smtp: invalid port %d", s.cfg.Port)
	case !slices.Contains([]string{TLSNone, TLSStartTLS, TLSImplicit}, s.cfg.TLS):
		s.cfgErr = fmt.Errorf("smtp: invalid tls mode %q (want none, starttls or tls)", s.cfg.TLS)
	}
	s.tlsConf = &tls.Config{
		ServerName:         s.cfg.Host,
		MinVersion:         tls.VersionTLS12,
		RootCAs:            s.cfg.RootCAs,
		InsecureSkipVerify: s.cfg.InsecureSkipVerify, //nolint:gosec // explicit operator setting
	}
	return s
}

// Send delivers raw to the relay for from (MAIL FROM, "" for the null
// path) and every address in to. It returns nil only when the relay
// accepted DATA. Failures are *SendError: a 5xx answer to MAIL, RCPT or DATA
// is permanent (except 530, authentication required); an answer while
// connecting or authenticating, 4xx, network and TLS failures are
// temporary. If any recipient is refused nothing is
// sent, and the failure is permanent when one refusal was.
//
// Cancelling ctx aborts the exchange in progress (the connection is then
// dropped).
func (s *SMTPSender) Send(ctx context.Context, from string, to []string, raw []byte) error {
	if err := checkEnvelope(from, to); err != nil {
		return &SendError{Permanent: true, Err: err}
	}
	if s.cfgErr != nil {
		return &SendError{Err: s.cfgErr}
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	reused := false
	if s.conn != nil {
		if s.clean {
			// The last transaction ended with the relay's 250 after DATA,
			// which leaves the session at its start (RFC 5321 4.1.1.4): no
			// RSET needed, one round trip less per mail of a burst.
			reused = true
		} else if err := s.within(ctx, func() error { return s.conn.Reset() }); err != nil {
			// RSET resets a session left mid-transaction by a failure and
			// proves the connection is still alive; if it is not, reconnect.
			s.dropLocked()
		}
	}
	s.clean = false
	if err := s.connectLocked(ctx); err != nil {
		return err
	}

	err := s.within(ctx, func() error { return s.transaction(from, to, raw) })
	if err != nil && reused && ctx.Err() == nil && deadBeforeMail(err) {
		// The relay closed the reused connection since the last mail (an
		// idle timeout, a restart). MAIL FROM was not accepted, so nothing
		// was delivered: try once more on a new connection.
		s.dropLocked()
		if err := s.connectLocked(ctx); err != nil {
			return err
		}
		err = s.within(ctx, func() error { return s.transaction(from, to, raw) })
	}
	s.clean = err == nil
	if err != nil && (ctx.Err() != nil || !keepAfter(err)) {
		s.dropLocked()
	}
	if s.conn != nil {
		s.lastUse = time.Now()
		// One timer per connection, not per mail: when it fires it looks
		// at lastUse and waits again if the connection was used since.
		if s.timer == nil {
			s.timer = time.AfterFunc(idleClose, s.closeIdle)
		}
	}
	return err
}

// connectLocked dials the relay unless a connection is open.
func (s *SMTPSender) connectLocked(ctx context.Context) error {
	if s.conn != nil {
		return nil
	}
	c, conn, err := s.dial(ctx)
	if err != nil {
		// Whatever the relay answered while we connected is about the
		// relay or our settings, not this message: always temporary.
		se := &SendError{Err: fmt.Errorf("connect to %s:%d: %w", s.cfg.Host, s.cfg.Port, err)}
		var tp *textproto.Error
		if errors.As(err, &tp) {
			se.Code = tp.Code
		}
		return se
	}
	s.conn, s.raw = c, conn
	return nil
}

// deadBeforeMail reports whether err is MAIL FROM failing because the
// connection is gone: a network error, or the relay's 421 (closing).
func deadBeforeMail(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.atMail && (se.Code == 0 || se.Code == 421)
}

// within runs fn with the connection's deadline set to Timeout and ctx able
// to cut it short.
func (s *SMTPSender) within(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return &SendError{Err: err}
	}
	if err := s.raw.SetDeadline(time.Now().Add(s.cfg.Timeout)); err != nil {
		return &SendError{Err: fmt.Errorf("set deadline: %w", err)}
	}
	// go-mail's client holds its lock while it waits for a reply, so a
	// cancellation can only reach it through the socket.
	stop := context.AfterFunc(ctx, func() { _ = s.raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	err := fn()
	if err != nil && ctx.Err() != nil {
		return &SendError{Err: fmt.Errorf("%w (%w)", ctx.Err(), err)}
	}
	return err
}

func (s *SMTPSender) transaction(from string, to []string, raw []byte) error {
	if ok, _ := s.conn.Extension("PIPELINING"); ok {
		return s.pipelined(from, to, raw)
	}
	if err := s.conn.Mail("<" + from + ">"); err != nil {
		se := classify("MAIL FROM", err)
		se.atMail = true
		return se
	}
	var refused []error
	permanent, code := false, 0
	for _, rcpt := range to {
		if err := s.conn.Rcpt("<" + rcpt + ">"); err != nil {
			se := classify(fmt.Sprintf("RCPT TO <%s>", rcpt), err)
			if !keepAfter(se) {
				return se
			}
			refused = append(refused, se.Err)
			if code == 0 || (se.Permanent && !permanent) {
				code = se.Code
			}
			permanent = permanent || se.Permanent
		}
	}
	if len(refused) > 0 {
		// All or nothing: the queue has one state per item, so a partial
		// delivery could not be recorded.
		return &SendError{Code: code, Permanent: permanent,
			Err: fmt.Errorf("%d of %d recipients refused: %w", len(refused), len(to), errors.Join(refused...))}
	}
	w, err := s.conn.Data()
	if err != nil {
		return classify("DATA", err)
	}
	if _, err := w.Write(raw); err != nil {
		// No Close: it would send the final dot, and a relay could accept
		// the truncated message. The connection is dropped instead.
		return classify("DATA write", err)
	}
	if err := w.Close(); err != nil {
		return classify("end of DATA", err)
	}
	return nil
}

// pipelined is transaction for a relay that offers PIPELINING (RFC 2920):
// MAIL, every RCPT and DATA go out in one write and their answers are read
// together, so a mail costs two round trips instead of three or more. The
// outcome is the same as transaction's, answer for answer, with one
// difference: when the relay accepts DATA although MAIL or a recipient was
// refused, the message must not follow, and the connection is dropped
// instead (the relay discards a transaction cut off in DATA).
func (s *SMTPSender) pipelined(from string, to []string, raw []byte) error {
	tp := s.conn.Text
	w := tp.W
	// The parameters go-mail's Client.Mail would add.
	params := ""
	if ok, _ := s.conn.Extension("8BITMIME"); ok {
		params += " BODY=8BITMIME"
	}
	if ok, _ := s.conn.Extension("SMTPUTF8"); ok {
		params += " SMTPUTF8"
	}
	fmt.Fprintf(w, "MAIL FROM:<%s>%s\r\n", from, params)
	for _, rcpt := range to {
		fmt.Fprintf(w, "RCPT TO:<%s>\r\n", rcpt)
	}
	w.WriteString("DATA\r\n")
	if err := w.Flush(); err != nil {
		se := classify("MAIL FROM", err)
		se.atMail = true
		return se
	}

	var failed *SendError // MAIL refused
	if _, _, err := tp.ReadResponse(250); err != nil {
		se := classify("MAIL FROM", err)
		se.atMail = true
		if !keepAfter(se) {
			return se
		}
		failed = se
	}
	var refused []error
	permanent, code := false, 0
	for _, rcpt := range to {
		_, _, err := tp.ReadResponse(25)
		if err == nil || failed != nil {
			// After a refused MAIL the RCPT answers say nothing new.
			if err != nil && !keepAfter(classify("RCPT TO", err)) {
				return classify(fmt.Sprintf("RCPT TO <%s>", rcpt), err)
			}
			continue
		}
		se := classify(fmt.Sprintf("RCPT TO <%s>", rcpt), err)
		if !keepAfter(se) {
			return se
		}
		refused = append(refused, se.Err)
		if code == 0 || (se.Permanent && !permanent) {
			code = se.Code
		}
		permanent = permanent || se.Permanent
	}
	_, _, dataErr := tp.ReadResponse(354)
	var result *SendError
	switch {
	case failed != nil:
		result = failed
	case len(refused) > 0:
		// All or nothing: the queue has one state per item, so a partial
		// delivery could not be recorded.
		result = &SendError{Code: code, Permanent: permanent,
			Err: fmt.Errorf("%d of %d recipients refused: %w", len(refused), len(to), errors.Join(refused...))}
	case dataErr != nil:
		return classify("DATA", dataErr)
	}
	if result != nil {
		if dataErr == nil {
			// The relay waits for a message that must not be sent.
			result.broken = true
		} else if se := classify("DATA", dataErr); !keepAfter(se) {
			result.broken = true
		}
		return result
	}
	dw := tp.DotWriter()
	if _, err := dw.Write(raw); err != nil {
		// No Close: it would send the final dot, and a relay could accept
		// the truncated message. The connection is dropped instead.
		return classify("DATA write", err)
	}
	if err := dw.Close(); err != nil {
		return classify("end of DATA", err)
	}
	if _, _, err := tp.ReadResponse(250); err != nil {
		return classify("end of DATA", err)
	}
	return nil
}

// classify turns an error from a transaction command into a SendError. A
// reply code is kept; 5xx is permanent, except 530 (authentication
// required), which is about our session, not this message.
func classify(stage string, err error) *SendError {
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	wrapped := fmt.Errorf("%s: %w", stage, err)
	var tp *textproto.Error
	if errors.As(err, &tp) {
		perm := tp.Code >= 500 && tp.Code < 600 && tp.Code != 530
		return &SendError{Code: tp.Code, Permanent: perm, Err: wrapped}
	}
	return &SendError{Err: wrapped}
}

// keepAfter reports whether the session is still usable after err: only a
// regular reply other than 421 (closing) leaves it in a known state.
func keepAfter(err error) bool {
	var se *SendError
	if !errors.As(err, &se) || se.broken {
		return false
	}
	var tp *textproto.Error
	return errors.As(se.Err, &tp) && tp.Code != 421
}

func (s *SMTPSender) dropLocked() {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.conn, s.raw, s.clean = nil, nil, false
}

// closeIdle ends the connection of a finished burst with QUIT, once it
// has not been used for idleClose.
func (s *SMTPSender) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		s.timer = nil
		return
	}
	if idle := time.Since(s.lastUse); idle < idleClose {
		s.timer.Reset(idleClose - idle)
		return
	}
	s.timer = nil
	s.quitLocked()
}

func (s *SMTPSender) quitLocked() {
	if s.conn == nil {
		return
	}
	_ = s.raw.SetDeadline(time.Now().Add(min(s.cfg.Timeout, quitTimeout)))
	// QUIT is a courtesy; the connection is closed either way.
	_ = s.conn.Quit()
	s.dropLocked()
}

// Close ends any open connection with QUIT. The sender stays usable: a
// later Send connects again.
func (s *SMTPSender) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.quitLocked()
	return nil
}

// Check connects, upgrades to TLS and authenticates as Send would, then
// says QUIT; for `helpdesk check`.
func (s *SMTPSender) Check(ctx context.Context) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	c, raw, err := s.dial(ctx)
	if err != nil {
		return fmt.Errorf("smtp %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
	}
	defer func() { _ = c.Close() }()
	_ = raw.SetDeadline(time.Now().Add(s.cfg.Timeout))
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := c.Quit(); err != nil {
		return fmt.Errorf("smtp %s:%d: QUIT: %w", s.cfg.Host, s.cfg.Port, err)
	}
	return nil
}

// dial opens a session ready for MAIL FROM: connected, greeted, TLS as
// configured, authenticated when a username is set. A go-mail client is
// built per dial, so nothing in it is shared between connections.
func (s *SMTPSender) dial(ctx context.Context) (*gosmtp.Client, net.Conn, error) {
	var raw net.Conn
	stop := func() bool { return false }
	defer func() { stop() }()
	dialFn := func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{}
		c, err := d.DialContext(dialCtx, network, addr)
		if err != nil {
			return nil, err
		}
		raw = c
		// go-mail bounds the rest of the handshake with a deadline only;
		// let our ctx end it too. Not dialCtx: go-mail cancels that one as
		// soon as it returns.
		stop = context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
		if s.cfg.TLS != TLSImplicit {
			return c, nil
		}
		tc := tls.Client(c, s.tlsConf.Clone())
		if err := tc.HandshakeContext(dialCtx); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		return tc, nil
	}
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(s.cfg.Timeout),
		gomail.WithTLSConfig(s.tlsConf.Clone()),
		gomail.WithDialContextFunc(dialFn),
	}
	switch s.cfg.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSStartTLS:
		// Mandatory: a relay that does not offer STARTTLS is an error,
		// never a reason to continue in plaintext.
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	}
	if s.cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(s.cfg.HELO))
	}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuthCustom(&passwordAuth{user: s.cfg.Username, pass: s.cfg.Password}))
	}
	client, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("smtp client: %w", err)
	}
	c, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		// go-mail leaves the connection open when EHLO, STARTTLS or AUTH
		// fails.
		if raw != nil {
			_ = raw.Close()
		}
		return nil, nil, err
	}
	return c, raw, nil
}

// passwordAuth picks PLAIN, else LOGIN, from what the server offers, and
// like net/smtp refuses to send the password unencrypted except to a
// loopback host. go-mail's own discovery would not do here: it believes a
// connection from a custom dialer is unencrypted even when it is TLS.
type passwordAuth struct {
	user, pass string
	next       gosmtp.Auth
}

func (a *passwordAuth) Start(server *gosmtp.ServerInfo) (string, []byte, error) {
	switch {
	case slices.ContainsFunc(server.Auth, func(m string) bool { return strings.EqualFold(m, "PLAIN") }):
		a.next = gosmtp.PlainAuth("", a.user, a.pass, server.Name, false)
	case slices.ContainsFunc(server.Auth, func(m string) bool { return strings.EqualFold(m, "LOGIN") }):
		a.next = gosmtp.LoginAuth(a.user, a.pass, server.Name, false)
	default:
		return "", nil, fmt.Errorf("server offers no PLAIN or LOGIN authentication (offers %q)", server.Auth)
	}
	return a.next.Start(server)
}

func (a *passwordAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.next.Next(fromServer, more)
}

// checkEnvelope rejects envelope addresses that cannot go into a MAIL or
// RCPT command; retrying would not change them.
func checkEnvelope(from string, to []string) error {
	if len(to) == 0 {
		return errors.New("no recipients")
	}
	bad := func(a string) bool {
		return strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '<' || r == '>' })
	}
	if bad(from) {
		return fmt.Errorf("invalid envelope sender %q", from)
	}
	for _, r := range to {
		if r == "" || bad(r) {
			return fmt.Errorf("invalid envelope recipient %q", r)
		}
	}
	return nil
}
