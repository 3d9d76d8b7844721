package outbox

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/wneessen/go-mail/smtp"

	"github.com/helpdesk/helpdesk/internal/mailtest"
)

func senderFor(t *testing.T, sink *mailtest.SMTPSink, mutate func(*SMTPConfig)) *SMTPSender {
	t.Helper()
	cfg := SMTPConfig{Host: sink.Host, Port: sink.Port, TLS: TLSNone, Timeout: 5 * time.Second, HELO: "helpdesk.test"}
	if mutate != nil {
		mutate(&cfg)
	}
	s := NewSMTPSender(cfg)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func sendErr(t *testing.T, err error) *SendError {
	t.Helper()
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a *SendError", err)
	}
	return se
}

// startTLSAuthSender starts a sink requiring STARTTLS and AUTH as
// helpdesk/s3cret, and a sender for it that trusts LoopbackCert and logs in
// with password.
func startTLSAuthSender(t *testing.T, password string) (*mailtest.SMTPSink, *SMTPSender) {
	t.Helper()
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{TLS: true, Username: "helpdesk", Password: "s3cret"})
	return sink, senderFor(t, sink, func(c *SMTPConfig) {
		c.TLS = TLSStartTLS
		c.Host = "localhost" // a name in LoopbackCert; it resolves to loopback
		c.RootCAs = mailtest.LoopbackCert(t).Pool
		c.Username, c.Password = "helpdesk", password
	})
}

func TestSMTPSenderStartTLSAndAuth(t *testing.T) {
	t.Parallel()
	sink, s := startTLSAuthSender(t, "s3cret")
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for i := range 2 {
		if err := s.Send(context.Background(), "support@example.com", []string{"ann@example.org"}, testRaw(i)); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	got := sink.WaitFor(t, 2, waitLong)
	for i, m := range got {
		if !m.TLS || m.User != "helpdesk" {
			t.Errorf("message %d: TLS=%v user=%q, want STARTTLS and AUTH as helpdesk", i, m.TLS, m.User)
		}
	}
	// Check used its own connection; the two sends shared one.
	if n := sink.Connections(); n != 2 {
		t.Errorf("%d connections, want 2 (Check + one for the burst)", n)
	}
}

func TestSMTPSenderBadPasswordIsTemporary(t *testing.T) {
	t.Parallel()
	_, s := startTLSAuthSender(t, "wrong")
	if err := s.Check(context.Background()); err == nil {
		t.Fatal("Check accepted a wrong password")
	}
	se := sendErr(t, s.Send(context.Background(), "support@example.com", []string{"ann@example.org"}, testRaw(1)))
	// A 535 is about our settings, not this message: never a dead letter.
	if se.Permanent || se.Code != 535 {
		t.Errorf("got %+v, want temporary with code 535", se)
	}
}

func TestSMTPSenderImplicitTLS(t *testing.T) {
	t.Parallel()
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{ImplicitTLS: true, Username: "u", Password: "p"})
	s := senderFor(t, sink, func(c *SMTPConfig) {
		c.TLS = TLSImplicit
		c.RootCAs = mailtest.LoopbackCert(t).Pool // valid for 127.0.0.1 too
		c.Username, c.Password = "u", "p"
	})
	if err := s.Send(context.Background(), "support@example.com", []string{"ann@example.org"}, testRaw(1)); err != nil {
		t.Fatal(err)
	}
	if m := sink.WaitFor(t, 1, waitLong)[0]; !m.TLS || m.User != "u" {
		t.Errorf("TLS=%v user=%q", m.TLS, m.User)
	}
}

func TestSMTPSenderUntrustedCertificate(t *testing.T) {
	t.Parallel()
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{TLS: true})
	s := senderFor(t, sink, func(c *SMTPConfig) { c.TLS = TLSStartTLS }) // system roots only
	se := sendErr(t, s.Send(context.Background(), "support@example.com", []string{"ann@example.org"}, testRaw(1)))
	if se.Permanent {
		t.Errorf("TLS failure classified permanent: %v", se)
	}
	insecure := senderFor(t, sink, func(c *SMTPConfig) { c.TLS = TLSStartTLS; c.InsecureSkipVerify = true })
	if err := insecure.Send(context.Background(), "support@example.com", []string{"ann@example.org"}, testRaw(1)); err != nil {
		t.Errorf("with insecure_skip_verify: %v", err)
	}
	if got := sink.WaitFor(t, 1, waitLong); len(got) != 1 || !got[0].TLS {
		t.Errorf("sink got %d messages", len(got))
	}
}

func TestSMTPSenderStartTLSRequired(t *testing.T) {
	t.Parallel()
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{}) // no STARTTLS
	s := senderFor(t, sink, func(c *SMTPConfig) { c.TLS = TLSStartTLS })
	err := s.Send(context.Background(), "support@example.com", []string{"ann@example.org"}, testRaw(1))
	if err == nil {
		t.Fatal("sent in plaintext although tls=starttls")
	}
	if IsPermanent(err) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("err = %v, want a temporary STARTTLS failure", err)
	}
	if err := s.Check(context.Background()); err == nil {
		t.Error("Check passed without STARTTLS")
	}
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("sink got %d messages", n)
	}
}

func TestPasswordAuthChoosesMechanism(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		server  gosmtp.ServerInfo
		mech    string
		wantErr string
	}{
		{"plain preferred", gosmtp.ServerInfo{Name: "mail.example.com", TLS: true, Auth: []string{"LOGIN", "PLAIN"}}, "PLAIN", ""},
		{"login fallback", gosmtp.ServerInfo{Name: "mail.example.com", TLS: true, Auth: []string{"CRAM-MD5", "LOGIN"}}, "LOGIN", ""},
		{"nothing usable", gosmtp.ServerInfo{Name: "mail.example.com", TLS: true, Auth: []string{"CRAM-MD5"}}, "", "no PLAIN or LOGIN"},
		{"no password in the clear", gosmtp.ServerInfo{Name: "mail.example.com", Auth: []string{"PLAIN"}}, "", "unencrypted"},
		{"clear to loopback", gosmtp.ServerInfo{Name: "127.0.0.1", Auth: []string{"PLAIN"}}, "PLAIN", ""},
	} {
		a := &passwordAuth{user: "u", pass: "p"}
		mech, _, err := a.Start(&tc.server)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || mech != tc.mech {
			t.Errorf("%s: got %q, %v; want %q", tc.name, mech, err, tc.mech)
		}
	}
}

func TestSMTPSenderClassifiesReplies(t *testing.T) {
	t.Parallel()
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{})
	s := senderFor(t, sink, nil)
	send := func() error {
		return s.Send(context.Background(), "support@example.com", []string{"ann@example.org"}, testRaw(1))
	}
	for _, tc := range []struct {
		code      int
		permanent bool
	}{{451, false}, {452, false}, {550, true}, {554, true}, {530, false}} {
		sink.FailWith(tc.code, "injected")
		se := sendErr(t, send())
		if se.Code != tc.code || se.Permanent != tc.permanent {
			t.Errorf("reply %d: got code %d permanent %v, want permanent %v", tc.code, se.Code, se.Permanent, tc.permanent)
		}
	}
	sink.FailWith(0, "")
	if err := send(); err != nil {
		t.Fatalf("after the failures: %v", err)
	}
	// Rejections leave the session usable: still one connection.
	if n := sink.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}

	sink.Stop()
	se := sendErr(t, send())
	if se.Permanent || se.Code != 0 {
		t.Errorf("relay down: %+v, want temporary without code", se)
	}
}

func TestSMTPSenderRefusesBadEnvelope(t *testing.T) {
	t.Parallel()
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{})
	s := senderFor(t, sink, nil)
	for name, env := range map[string]struct {
		from string
		to   []string
	}{
		"no recipients":      {"a@example.com", nil},
		"empty recipient":    {"a@example.com", []string{""}},
		"CRLF in recipient":  {"a@example.com", []string{"b@example.org>\r\nRCPT TO:<c@example.org"}},
		"CRLF in sender":     {"a@example.com\r\nRSET", []string{"b@example.org"}},
		"bracket in sender":  {"<a@example.com>", []string{"b@example.org"}},
		"space in recipient": {"a@example.com", []string{"b@example.org NOTIFY=NEVER"}},
	} {
		err := s.Send(context.Background(), env.from, env.to, testRaw(1))
		if !IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", name, err)
		}
	}
	if n := sink.Connections(); n != 0 {
		t.Errorf("bad envelopes reached the relay (%d connections)", n)
	}
}

func TestSMTPSenderBadConfig(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]SMTPConfig{
		"no host":  {TLS: TLSNone},
		"bad tls":  {Host: "127.0.0.1", TLS: "ssl"},
		"bad port": {Host: "127.0.0.1", Port: 70000},
	} {
		s := NewSMTPSender(cfg)
		err := s.Send(context.Background(), "a@example.com", []string{"b@example.org"}, testRaw(1))
		if err == nil || IsPermanent(err) {
			t.Errorf("%s: Send = %v, want a temporary error", name, err)
		}
		if err := s.Check(context.Background()); err == nil {
			t.Errorf("%s: Check passed", name)
		}
	}
}

func TestSMTPSenderHonoursContext(t *testing.T) {
	t.Parallel()
	// A "relay" that accepts and then says nothing: only ctx can end the
	// wait before the 5 s timeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	s := NewSMTPSender(SMTPConfig{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, TLS: TLSNone, Timeout: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Send(ctx, "a@example.com", []string{"b@example.org"}, testRaw(1)) }()
	c := <-accepted // Send now waits for a greeting that never comes
	defer c.Close()
	cancel()
	select {
	case err := <-errc:
		if err == nil || IsPermanent(err) {
			t.Errorf("Send = %v, want a temporary error", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Send ignored the cancelled context")
	}
}
