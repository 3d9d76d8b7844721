package ticket

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpdesk/helpdesk/store"
)

// logBuffer collects log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) count(substr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), substr)
}

// captureLog makes the engine log to a buffer.
func (h *harness) captureLog() *logBuffer {
	b := &logBuffer{}
	h.eng.log = slog.New(slog.NewTextHandler(b, nil))
	return b
}

// An address that keeps writing gets MaxPerSender acknowledgements; after
// BreakerTrips refused ones it is paused, and the administrator hears of it
// once: one ERROR line, one Alerted call, one alert mail.
func TestCircuitBreakerPausesAnAddressAndAlertsOnce(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.MaxPerSender, c.Per = 2, time.Hour
		c.BreakerTrips, c.BreakerPause = 3, 6*time.Hour
		c.AdminEmail = "Admin@Example.NET"
	})
	logs := h.captureLog()
	var alerts []Alert
	h.eng.Alerted = func(a Alert) { alerts = append(alerts, a) }
	var acked []int
	for i := range 10 {
		r := h.handle(msg("loop@example.org", fmt.Sprintf("Question %d", i), fmt.Sprintf("l%d@example.org", i)))
		if r.Acked {
			acked = append(acked, i)
		}
		switch {
		case i == 4 && !strings.Contains(r.Reason, "rate limit"):
			t.Errorf("mail %d: %q, want the rate limit that trips the breaker", i, r.Reason)
		case i > 4 && !strings.Contains(r.Reason, "on hold (paused)"):
			t.Errorf("mail %d: %q, want on hold", i, r.Reason)
		}
	}
	if fmt.Sprint(acked) != "[0 1]" {
		t.Errorf("acknowledged mails %v, want [0 1]", acked)
	}
	if len(alerts) != 1 || alerts[0].Addr != "loop@example.org" || alerts[0].TicketID != 5 || !alerts[0].Until.Equal(clock.Add(6*time.Hour)) {
		t.Errorf("alerts %+v", alerts)
	}
	if n := logs.count(alertMessage); n != 1 {
		t.Errorf("%d alert log lines, want 1", n)
	}
	var toAdmin []store.Outbound
	for _, o := range h.outbox() {
		if o.To[0] == "admin@example.net" {
			toAdmin = append(toAdmin, o)
		}
	}
	if len(toAdmin) != 1 || !toAdmin[0].Unfiled() || !bytes.Contains(toAdmin[0].Raw, []byte("Auto-Submitted: auto-generated")) ||
		!bytes.Contains(toAdmin[0].Raw, []byte("loop@example.org")) {
		t.Fatalf("alert mails %+v", toAdmin)
	}
	if !h.held(store.HoldPaused, "loop@example.org") {
		t.Error("address not paused")
	}
	// Others are not affected.
	if r := h.handle(msg("ann@example.org", "Printer", "a1@example.org")); !r.Acked {
		t.Errorf("another address: %+v", r)
	}
	// After the pause the address is answered again, without a new alert.
	h.now = h.now.Add(6*time.Hour + time.Minute)
	if r := h.handle(msg("loop@example.org", "Question later", "l99@example.org")); !r.Acked {
		t.Errorf("after the pause: %+v", r)
	}
	if len(alerts) != 1 || logs.count(alertMessage) != 1 {
		t.Errorf("alerted again: %d", len(alerts))
	}
}

// Notifications to one agent have their own cap, and it does not hold back
// acknowledgements or another agent's notifications.
func TestNotificationsHaveAPerAgentCap(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.MaxNotificationsPerHour = 3
		c.Agents = []Agent{{Email: "alice@example.com"}, {Email: "bob@example.com"}}
	})
	notified := 0
	for i := range 5 {
		r := h.handle(msg(fmt.Sprintf("c%d@example.org", i), "Help", fmt.Sprintf("n%d@example.org", i)))
		if !r.Acked {
			t.Errorf("mail %d not acknowledged: %+v", i, r)
		}
		notified += r.Notified
	}
	if notified != 6 {
		t.Errorf("%d notifications, want 3 to each of two agents", notified)
	}
	// The window slides in steps of a 64th of it.
	h.now = h.now.Add(time.Hour + 2*time.Minute)
	if r := h.handle(msg("c9@example.org", "Help", "n9@example.org")); r.Notified != 2 {
		t.Errorf("an hour later: %+v", r)
	}
}

// Command error replies count against the global limit too.
func TestGlobalLimitCoversErrorReplies(t *testing.T) {
	h := newHarness(t, agentConfig, func(c *Config) { c.GlobalMaxPerHour = 2 })
	notes := startTicket(h) // the acknowledgement: 1 of 2
	r := h.handle(replyMail(alice, "support@example.com", "Re: x", "e1@mail.example.com", notes[alice].MessageID, "#frobnicate"))
	if !r.Rejected || r.Notified != 1 {
		t.Fatalf("first bad command: %+v", r)
	}
	r = h.handle(replyMail(alice, "support@example.com", "Re: x", "e2@mail.example.com", notes[alice].MessageID, "#frobnicate"))
	if !r.Rejected || r.Notified != 0 {
		t.Errorf("error reply past the global limit: %+v", r)
	}
}
