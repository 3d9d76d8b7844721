package outbox

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/helpdesk/helpdesk/internal/mailtest"
)

// benchEnvelope is a typical auto-reply, about 1 KB on the wire.
func benchEnvelope() Envelope {
	e := baseEnvelope()
	e.Text = strings.Repeat("Thank you for your message. We will get back to you shortly.\n", 12)
	return e
}

// BenchmarkSend measures the whole delivery path: Worker → memQueue →
// SMTPSender → go-smtp sink on loopback, one message per op.
func BenchmarkSend(b *testing.B) {
	raw, err := Compose(benchEnvelope())
	if err != nil {
		b.Fatal(err)
	}
	sink := mailtest.StartSMTP(b, mailtest.SMTPOptions{})
	q := newMemQueue()
	for range b.N {
		q.add("support@example.com", []string{"ann@example.org"}, raw)
	}
	// A hook rather than waitUntil, which would wake on every Sent and
	// compete with the worker for the CPUs.
	allSent := make(chan struct{})
	q.onSent = func(n int) {
		if n == b.N {
			close(allSent)
		}
	}
	sender := NewSMTPSender(SMTPConfig{Host: sink.Host, Port: sink.Port, TLS: TLSNone, Timeout: 10 * time.Second})
	defer sender.Close()
	w := &Worker{Queue: q, Sender: sender, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	go func() { done <- w.Run(ctx) }()
	<-allSent
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if n := len(sink.Messages()); n != b.N {
		b.Fatalf("sink got %d messages, want %d", n, b.N)
	}
}

// BenchmarkSMTPSender is the sender alone, without queue or worker.
func BenchmarkSMTPSender(b *testing.B) {
	raw, err := Compose(benchEnvelope())
	if err != nil {
		b.Fatal(err)
	}
	sink := mailtest.StartSMTP(b, mailtest.SMTPOptions{})
	sender := NewSMTPSender(SMTPConfig{Host: sink.Host, Port: sink.Port, TLS: TLSNone, Timeout: 10 * time.Second})
	defer sender.Close()
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for range b.N {
		if err := sender.Send(context.Background(), "support@example.com", []string{"ann@example.org"}, raw); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sink.WaitFor(b, b.N, time.Minute)
}

// BenchmarkGoMailSend is the baseline: go-mail's own client sending one
// pre-built Msg per op over one connection (it NOOPs before and RSETs
// after every message).
func BenchmarkGoMailSend(b *testing.B) {
	e := benchEnvelope()
	sink := mailtest.StartSMTP(b, mailtest.SMTPOptions{})
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(e.From.Addr); err != nil {
		b.Fatal(err)
	}
	if err := msg.To(e.To[0].Addr); err != nil {
		b.Fatal(err)
	}
	msg.Subject(e.Subject)
	msg.SetMessageIDWithValue(e.MessageID)
	msg.SetBodyString(gomail.TypeTextPlain, e.Text)
	c, err := gomail.NewClient(sink.Host, gomail.WithPort(sink.Port), gomail.WithTLSPolicy(gomail.NoTLS),
		gomail.WithTimeout(10*time.Second))
	if err != nil {
		b.Fatal(err)
	}
	if err := c.DialWithContext(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for range b.N {
		if err := c.Send(msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	sink.WaitFor(b, b.N, time.Minute)
}
