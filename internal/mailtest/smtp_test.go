package mailtest

import (
	"crypto/tls"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sendVia runs one transaction on c; it is the test's SMTP client.
func sendVia(c *smtp.Client, from string, to []string, body string) error {
	return c.SendMail(from, to, strings.NewReader(body))
}

// dial connects a plaintext client to s, closed when the test ends.
func dial(t *testing.T, s *SMTPSink) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func smtpCode(t *testing.T, err error) int {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("want an SMTP error reply, got %v", err)
	}
	return se.Code
}

func TestSMTPSinkRecords(t *testing.T) {
	t.Parallel()
	s := StartSMTP(t, SMTPOptions{})
	c := dial(t, s)
	if err := sendVia(c, "a@example.org", []string{"b@example.org", "c@example.org"}, "Subject: one\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := sendVia(c, "", []string{"d@example.org"}, "Subject: two\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	got := s.WaitFor(t, 2, 5*time.Second)
	if n := s.Connections(); n != 1 {
		t.Errorf("Connections() = %d, want 1", n)
	}
	if got[0].From != "a@example.org" || strings.Join(got[0].To, ",") != "b@example.org,c@example.org" {
		t.Errorf("first envelope = %q → %q", got[0].From, got[0].To)
	}
	if string(got[0].Data) != "Subject: one\r\n\r\nbody\r\n" || got[0].Size != int64(len(got[0].Data)) {
		t.Errorf("first data = %q", got[0].Data)
	}
	if got[1].From != "" || got[1].TLS || got[1].User != "" || got[1].At.IsZero() {
		t.Errorf("second = %+v", got[1])
	}
	// Messages hands out copies.
	got[0].Data[0] = 'X'
	if s.Messages()[0].Data[0] != 'S' {
		t.Error("Messages shares its buffers with the caller")
	}
}

func TestSMTPSinkDiscardData(t *testing.T) {
	t.Parallel()
	s := StartSMTP(t, SMTPOptions{DiscardData: true})
	data := "Subject: one\r\n\r\nbody\r\n"
	if err := sendVia(dial(t, s), "a@example.org", []string{"b@example.org"}, data); err != nil {
		t.Fatal(err)
	}
	got := s.WaitFor(t, 1, 5*time.Second)
	if got[0].Data != nil || got[0].Size != int64(len(data)) || got[0].From != "a@example.org" {
		t.Errorf("got data %q, size %d, from %q; want no data, size %d, from a@example.org", got[0].Data, got[0].Size, got[0].From, len(data))
	}
}

func TestSMTPSinkWaitForTimesOut(t *testing.T) {
	t.Parallel()
	s := StartSMTP(t, SMTPOptions{})
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.WaitFor(ft, 1, 20*time.Millisecond)
	}()
	<-done
	if !ft.failed {
		t.Fatal("WaitFor returned without failing although nothing arrived")
	}
}

// fatalRecorder records Fatalf instead of failing the real test; it ends
// the goroutine like the real Fatalf does.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(string, ...any) {
	f.failed = true
	runtime.Goexit()
}

func TestSMTPSinkFailWith(t *testing.T) {
	t.Parallel()
	s := StartSMTP(t, SMTPOptions{})
	c := dial(t, s)
	s.FailWith(451, "try later")
	if code := smtpCode(t, sendVia(c, "a@example.org", []string{"b@example.org"}, "x\r\n")); code != 451 {
		t.Errorf("code = %d, want 451", code)
	}
	s.FailWith(550, "")
	if code := smtpCode(t, c.Mail("a@example.org", nil)); code != 550 {
		t.Errorf("code = %d, want 550", code)
	}
	s.FailWith(0, "")
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := sendVia(c, "a@example.org", []string{"b@example.org"}, "x\r\n"); err != nil {
		t.Fatalf("after FailWith(0): %v", err)
	}
	// A failure switched on between RCPT and the end of DATA hits DATA.
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("b@example.org", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	s.FailWith(452, "full")
	_, _ = w.Write([]byte("y\r\n"))
	if code := smtpCode(t, w.Close()); code != 452 {
		t.Errorf("DATA code = %d, want 452", code)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages recorded, want 1", n)
	}
}

func TestSMTPSinkRejectRcpt(t *testing.T) {
	t.Parallel()
	s := StartSMTP(t, SMTPOptions{})
	s.RejectRcpt("Bad@Example.org", 550, "no such user")
	c := dial(t, s)
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("good@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if code := smtpCode(t, c.Rcpt("bad@example.org", nil)); code != 550 {
		t.Errorf("code = %d", code)
	}
	s.RejectRcpt("bad@example.org", 0, "")
	if err := c.Rcpt("bad@example.org", nil); err != nil {
		t.Errorf("after removing the rule: %v", err)
	}
}

func TestSMTPSinkStopStart(t *testing.T) {
	t.Parallel()
	s := StartSMTP(t, SMTPOptions{})
	idle := dial(t, s) // an open connection must not keep Stop waiting
	port := s.Port
	s.Stop()
	s.Stop() // idempotent
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("connection accepted while stopped")
	}
	if err := idle.Noop(); err == nil {
		t.Error("connection open before Stop still works")
	}
	s.Start()
	s.Start() // no-op while running
	if s.Port != port {
		t.Fatalf("port changed from %d to %d", port, s.Port)
	}
	c := dial(t, s)
	if err := sendVia(c, "a@example.org", []string{"b@example.org"}, "x\r\n"); err != nil {
		t.Fatal(err)
	}
	s.WaitFor(t, 1, 5*time.Second)
}

func TestSMTPSinkStartTLSAndAuth(t *testing.T) {
	t.Parallel()
	s := StartSMTP(t, SMTPOptions{TLS: true, Username: "helpdesk", Password: "secret"})
	pool := LoopbackCert(t).Pool

	c := dial(t, s)
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before STARTTLS")
	}
	if code := smtpCode(t, c.Mail("a@example.org", nil)); code != 530 {
		t.Errorf("MAIL without AUTH: code %d, want 530", code)
	}

	c2, err := smtp.DialStartTLS(s.Addr(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if code := smtpCode(t, c2.Auth(sasl.NewPlainClient("", "helpdesk", "wrong"))); code != 535 {
		t.Errorf("wrong password: code %d, want 535", code)
	}
	if err := c2.Auth(sasl.NewPlainClient("", "helpdesk", "secret")); err != nil {
		t.Fatal(err)
	}
	if err := sendVia(c2, "a@example.org", []string{"b@example.org"}, "x\r\n"); err != nil {
		t.Fatal(err)
	}
	got := s.WaitFor(t, 1, 5*time.Second)[0]
	if !got.TLS || got.User != "helpdesk" {
		t.Errorf("TLS=%v User=%q, want true, helpdesk", got.TLS, got.User)
	}
}

func TestSMTPSinkImplicitTLS(t *testing.T) {
	t.Parallel()
	s := StartSMTP(t, SMTPOptions{ImplicitTLS: true})
	c, err := smtp.DialTLS(s.Addr(), &tls.Config{RootCAs: LoopbackCert(t).Pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := sendVia(c, "a@example.org", []string{"b@example.org"}, "x\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := s.WaitFor(t, 1, 5*time.Second)[0]; !got.TLS {
		t.Error("message not marked as received over TLS")
	}
	s.Stop()
	s.Start()
	c2, err := smtp.DialTLS(s.Addr(), &tls.Config{RootCAs: LoopbackCert(t).Pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("implicit TLS after restart: %v", err)
	}
	c2.Close()
}
