package outbox

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// scriptedRelay is a minimal SMTP server whose pipelining behaviour a test
// controls exactly (go-smtp always offers PIPELINING and answers each
// command as it reads it).
type scriptedRelay struct {
	addr *net.TCPAddr
	// pipelining offers PIPELINING and answers nothing of MAIL, RCPT and
	// DATA before it has read DATA: a client that waits for each answer
	// deadlocks. Without it every command must arrive alone (lockstep).
	pipelining bool

	mu       sync.Mutex
	messages []string
	errs     []string
}

func startScriptedRelay(t *testing.T, pipelining bool) *scriptedRelay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &scriptedRelay{addr: l.Addr().(*net.TCPAddr), pipelining: pipelining}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { r.serve(c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range r.errs {
			t.Error("relay: " + e)
		}
	})
	return r
}

func (r *scriptedRelay) fail(format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *scriptedRelay) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	reply := func(s string) { fmt.Fprintf(c, "%s\r\n", s) }
	read := func() (string, bool) {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", false
		}
		if !r.pipelining && br.Buffered() > 0 {
			r.fail("command after %q sent before its answer", strings.TrimSpace(line))
		}
		return strings.TrimRight(line, "\r\n"), true
	}
	reply("220 relay.example ESMTP")
	for {
		line, ok := read()
		if !ok {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO":
			if r.pipelining {
				reply("250-relay.example\r\n250-PIPELINING\r\n250 8BITMIME")
			} else {
				reply("250-relay.example\r\n250 8BITMIME")
			}
		case "MAIL":
			if !r.pipelining {
				reply("250 ok")
				continue
			}
			// Read RCPT and DATA before answering anything.
			var rest []string
			for {
				l, ok := read()
				if !ok {
					return
				}
				rest = append(rest, l)
				if strings.EqualFold(l, "DATA") {
					break
				}
			}
			reply("250 ok")
			for range rest[:len(rest)-1] {
				reply("250 ok")
			}
			reply("354 go on")
			r.readData(br, reply)
		case "RCPT":
			reply("250 ok")
		case "DATA":
			reply("354 go on")
			r.readData(br, reply)
		case "RSET", "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 unknown")
		}
	}
}

func (r *scriptedRelay) readData(br *bufio.Reader, reply func(string)) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if line == ".\r\n" {
			break
		}
		b.WriteString(line)
	}
	r.mu.Lock()
	r.messages = append(r.messages, b.String())
	r.mu.Unlock()
	reply("250 queued")
}

func (r *scriptedRelay) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.messages)
}

func TestSMTPSenderPipelinesWhenOffered(t *testing.T) {
	t.Parallel()
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			relay := startScriptedRelay(t, pipelining)
			s := NewSMTPSender(SMTPConfig{Host: "127.0.0.1", Port: relay.addr.Port, TLS: TLSNone, Timeout: 3 * time.Second})
			defer s.Close()
			for i := range 3 {
				// Two recipients, so RCPT answers are read in turn too.
				if err := s.Send(context.Background(), "support@example.com", []string{"ann@example.org", "bob@example.org"}, testRaw(i)); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			if n := relay.count(); n != 3 {
				t.Errorf("relay got %d messages, want 3", n)
			}
		})
	}
}
