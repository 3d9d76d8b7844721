package daemon_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/helpdesk/helpdesk/config"
	"github.com/helpdesk/helpdesk/daemon"
	"github.com/helpdesk/helpdesk/internal/mailtest"
	"github.com/helpdesk/helpdesk/store"
)

// SIGHUP re-reads the config: a bad one is refused and the running one
// stays; a good one takes effect without a restart.
func TestReloadAppliesGoodConfigAndRefusesBadOne(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	reload := make(chan struct{})
	next := make(chan func() (*config.Config, error), 1)
	states := make(chan string, 16)
	d, err := daemon.Open(daemon.Options{
		Config:     e.cfg,
		Log:        slog.New(slog.NewTextHandler(newTestWriter(t), nil)),
		RootCAs:    e.dove.Cert.Pool,
		Reload:     reload,
		LoadConfig: func() (*config.Config, error) { return (<-next)() },
		Notify:     func(state string) { states <- state },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		d.Close()
	})
	e.d = nil // this test runs its own daemon
	// awaitReady waits for the READY=1 that ends a reload (or the start), so
	// no mail is handled by the loops of the configuration being replaced.
	awaitReady := func() {
		t.Helper()
		for {
			select {
			case s := <-states:
				if s == "READY=1" {
					return
				}
			case <-time.After(15 * time.Second):
				t.Fatal("daemon never became ready")
			}
		}
	}
	awaitReady()
	view := func(fn func(tx *store.Tx) bool) bool {
		var ok bool
		d.DB().View(func(tx *store.Tx) error { ok = fn(tx); return nil })
		return ok
	}
	waitTicket := func(id uint64) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !view(func(tx *store.Tx) bool { return tx.TicketExists(id) }) {
			if time.Now().After(deadline) {
				t.Fatalf("ticket %d never came", id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	e.deliver(mailFrom("Ann <ann@example.org>", "Before reload", "r1@example.org"))
	waitTicket(1)
	e.smtp.WaitFor(t, 1, 15*time.Second)

	// A broken config is refused: still running, still acknowledging.
	next <- func() (*config.Config, error) { return nil, errors.New("config: smtp.port: bad") }
	reload <- struct{}{}
	awaitReady()
	e.deliver(mailFrom("Bob <bob@example.org>", "After bad reload", "r2@example.org"))
	waitTicket(2)
	e.smtp.WaitFor(t, 2, 15*time.Second)

	// A good config that turns acknowledgements off takes effect.
	quiet := *e.cfg
	quiet.Autoreply.Enabled = false
	next <- func() (*config.Config, error) { return &quiet, nil }
	reload <- struct{}{}
	awaitReady()
	e.deliver(mailFrom("Carl <carl@example.org>", "After good reload", "r3@example.org"))
	waitTicket(3)
	time.Sleep(500 * time.Millisecond)
	if n := len(e.smtp.Messages()); n != 2 {
		t.Errorf("%d mails sent; the reloaded config should have stopped the third acknowledgement", n)
	}
}
