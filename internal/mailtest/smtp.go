package mailtest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPOptions configures an SMTPSink.
type SMTPOptions struct {
	// TLS advertises STARTTLS with LoopbackCert. AUTH is then only offered
	// after STARTTLS, so a client that authenticates has upgraded first.
	TLS bool
	// ImplicitTLS makes the listener speak TLS from the first byte (port 465
	// style) with LoopbackCert.
	ImplicitTLS bool
	// Username and Password, when Username is set, make AUTH PLAIN
	// mandatory: MAIL FROM before a successful AUTH answers 530.
	Username, Password string
	// DiscardData keeps only the envelope and the size of each message,
	// not its bytes: a sink that takes thousands of messages in a
	// benchmark would otherwise grow the heap of the process it runs in,
	// and with it the garbage collector's goal for the code measured.
	DiscardData bool
}

// Received is one message accepted by an SMTPSink.
type Received struct {
	From string
	To   []string
	Data []byte // nil with DiscardData
	Size int64  // bytes of DATA
	At   time.Time
	// TLS is whether the session was encrypted (STARTTLS or implicit TLS)
	// when DATA completed.
	TLS bool
	// User is the AUTH identity of the session, "" without AUTH.
	User string
}

// SMTPSink is an in-process go-smtp server on 127.0.0.1 that records every
// message it accepts. It can be told to answer with an error (FailWith,
// RejectRcpt) and stopped and restarted on the same port (Stop, Start) to
// simulate an unreachable relay. All methods are safe for concurrent use.
type SMTPSink struct {
	Host string
	Port int

	t    testing.TB
	opts SMTPOptions
	cert *Cert

	mu       sync.Mutex
	msgs     []Received
	changed  chan struct{} // closed and replaced whenever msgs grows
	failCode int
	failMsg  string
	rejects  map[string]*smtp.SMTPError // lower-cased recipient → answer
	server   *smtp.Server
	listener *trackingListener
	serveErr chan error // result of the running Serve, nil when stopped
	conns    sync.WaitGroup
	accepted int  // connections accepted since StartSMTP
	closed   bool // after cleanup: no more t.Logf
}

// StartSMTP starts a sink on a free loopback port, one that Stop and Start
// can give up and take back (port.go). It is stopped when the test ends.
func StartSMTP(t testing.TB, opts SMTPOptions) *SMTPSink {
	t.Helper()
	s := &SMTPSink{
		Host:    "127.0.0.1",
		t:       t,
		opts:    opts,
		changed: make(chan struct{}),
		rejects: make(map[string]*smtp.SMTPError),
	}
	if opts.TLS || opts.ImplicitTLS {
		s.cert = LoopbackCert(t)
	}
	l, err := listenRestartable()
	if err != nil {
		t.Fatalf("smtp sink: listen: %v", err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	s.serve(l)
	t.Cleanup(func() {
		s.Stop()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
	})
	return s
}

// Addr is "host:port".
func (s *SMTPSink) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Messages returns a copy of everything accepted so far, in order.
func (s *SMTPSink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copyLocked()
}

func (s *SMTPSink) copyLocked() []Received {
	out := make([]Received, len(s.msgs))
	for i, m := range s.msgs {
		m.To = append([]string(nil), m.To...)
		m.Data = bytes.Clone(m.Data)
		out[i] = m
	}
	return out
}

// WaitFor waits until at least n messages were accepted and returns all of
// them. It fails the test (t.Fatalf, so call it from the test goroutine)
// when timeout passes first.
func (s *SMTPSink) WaitFor(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			out := s.copyLocked()
			s.mu.Unlock()
			return out
		}
		changed, got := s.changed, len(s.msgs)
		s.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("smtp sink: got %d messages within %v, want %d", got, timeout, n)
			return nil
		}
	}
}

// FailWith makes every MAIL, RCPT and DATA answer code with msg (for
// example 451 or 550) until FailWith(0, "") restores normal service.
func (s *SMTPSink) FailWith(code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCode, s.failMsg = code, msg
}

// RejectRcpt makes RCPT TO for addr (case-insensitive) answer code with msg;
// code 0 removes the rule. Other recipients are unaffected.
func (s *SMTPSink) RejectRcpt(addr string, code int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(addr)
	if code == 0 {
		delete(s.rejects, key)
		return
	}
	s.rejects[key] = smtpError(code, msg)
}

// Connections returns how many connections the sink has accepted, over
// all Start/Stop cycles; a client that reuses its connection for a burst
// shows up once.
func (s *SMTPSink) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// Stop closes the listener and every open connection: new connections are
// refused until Start. It waits for the connection handlers to finish.
func (s *SMTPSink) Stop() {
	s.mu.Lock()
	srv, tl, done := s.server, s.listener, s.serveErr
	s.server, s.listener, s.serveErr = nil, nil, nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	if err := srv.Close(); err != nil {
		s.logf("smtp sink: close: %v", err)
	}
	// go-smtp only learns of the listener once Serve runs; a Stop right
	// after Start can come first, so close it here as well.
	_ = tl.Listener.Close()
	if err := <-done; err != nil {
		s.logf("smtp sink: serve: %v", err)
	}
	tl.closeAll()
	s.conns.Wait()
}

// Start listens again on the same port after Stop. It is a no-op while the
// sink is running. It fails the test if the port cannot be bound.
func (s *SMTPSink) Start() {
	s.mu.Lock()
	running := s.server != nil
	s.mu.Unlock()
	if running {
		return
	}
	// The port is not handed to anyone else (port.go), but the stopped
	// server's sockets can hold it for a moment (seen with implicit TLS
	// under load).
	l, err := net.Listen("tcp", s.Addr())
	for wait := time.Now().Add(3 * time.Second); err != nil && time.Now().Before(wait); {
		time.Sleep(20 * time.Millisecond)
		l, err = net.Listen("tcp", s.Addr())
	}
	if err != nil {
		s.t.Fatalf("smtp sink: listen again on %s: %v", s.Addr(), err)
	}
	s.serve(l)
}

// serve runs a fresh go-smtp server on l: a closed go-smtp Server cannot be
// reused, so every Start makes a new one.
func (s *SMTPSink) serve(l net.Listener) {
	srv := smtp.NewServer(backend{s})
	srv.Domain = "localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.MaxMessageBytes = 32 << 20
	srv.ErrorLog = sinkLogger{s}
	if s.cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{s.cert.TLS}, MinVersion: tls.VersionTLS12}
	}
	// Without any TLS, AUTH has to be allowed in the clear for the sink to
	// be usable with credentials at all.
	srv.AllowInsecureAuth = !s.opts.TLS && !s.opts.ImplicitTLS
	tl := &trackingListener{Listener: l, wg: &s.conns, conns: make(map[*trackedConn]struct{}), onAccept: func() {
		s.mu.Lock()
		s.accepted++
		s.mu.Unlock()
	}}
	var ln net.Listener = tl
	if s.opts.ImplicitTLS {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	done := make(chan error, 1)
	s.mu.Lock()
	s.server, s.listener, s.serveErr = srv, tl, done
	s.mu.Unlock()
	go func() { done <- srv.Serve(ln) }()
}

func (s *SMTPSink) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.t.Logf(format, args...)
	}
}

func (s *SMTPSink) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failCode == 0 {
		return nil
	}
	return smtpError(s.failCode, s.failMsg)
}

func smtpError(code int, msg string) *smtp.SMTPError {
	if msg == "" {
		msg = "Injected failure"
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
}

// trackingListener remembers open connections so Stop can close them and
// wait for their handlers: go-smtp's Close misses a connection accepted
// just before it, and does not wait.
type trackingListener struct {
	net.Listener
	wg       *sync.WaitGroup
	onAccept func()
	mu       sync.Mutex
	conns    map[*trackedConn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.onAccept()
	l.wg.Add(1)
	l.mu.Lock()
	l.conns[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

// closeAll closes every connection still open; called after Serve returned.
func (l *trackingListener) closeAll() {
	l.mu.Lock()
	open := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		open = append(open, c)
	}
	l.mu.Unlock()
	for _, c := range open {
		_ = c.Close()
	}
}

type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.wg.Done()
	})
	return err
}

type sinkLogger struct{ s *SMTPSink }

func (l sinkLogger) Printf(format string, v ...any) { l.s.logf("smtp sink: "+format, v...) }
func (l sinkLogger) Println(v ...any)               { l.s.logf("smtp sink: %s", fmt.Sprint(v...)) }

type backend struct{ s *SMTPSink }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, conn: c}, nil
}

// session is one SMTP session; go-smtp makes a new one after STARTTLS, so
// an AUTH done in the clear never carries over.
type session struct {
	s    *SMTPSink
	conn *smtp.Conn
	user string
	from string
	to   []string
}

var errAuthNeeded = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.s.opts.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if (identity != "" && identity != username) ||
			username != ss.s.opts.Username || password != ss.s.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.Username != "" && ss.user == "" {
		return errAuthNeeded
	}
	if err := ss.s.failure(); err != nil {
		return err
	}
	ss.from, ss.to = from, nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := ss.s.failure(); err != nil {
		return err
	}
	ss.s.mu.Lock()
	rej := ss.s.rejects[strings.ToLower(to)]
	ss.s.mu.Unlock()
	if rej != nil {
		return rej
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	var data []byte
	var size int64
	var err error
	if ss.s.opts.DiscardData {
		size, err = io.Copy(io.Discard, r)
	} else {
		data, err = io.ReadAll(r)
		size = int64(len(data))
	}
	if err != nil {
		return fmt.Errorf("read data: %w", err)
	}
	if err := ss.s.failure(); err != nil {
		return err
	}
	if len(ss.to) == 0 {
		return errors.New("no recipients")
	}
	_, isTLS := ss.conn.TLSConnectionState()
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, Received{
		From: ss.from, To: append([]string(nil), ss.to...), Data: data, Size: size,
		At: time.Now(), TLS: isTLS, User: ss.user,
	})
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }
