package daemon_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/helpdesk/helpdesk/config"
	"github.com/helpdesk/helpdesk/internal/mailtest"
	"github.com/helpdesk/helpdesk/store"
)

// assertEachOnce checks that every delivered Message-ID is on exactly one
// ticket and that there are exactly want tickets.
func assertEachOnce(t *testing.T, e *env, ids []string, want int) {
	t.Helper()
	e.view(func(tx *store.Tx) error {
		seen := map[uint64]bool{}
		for _, id := range ids {
			tk, ok := tx.TicketByMessageID("<" + id + ">")
			if !ok {
				t.Errorf("%s lost", id)
				continue
			}
			if seen[tk] {
				t.Errorf("%s shares ticket %d with another new mail", id, tk)
			}
			seen[tk] = true
		}
		tks, _ := tx.ListTickets(store.ListOptions{})
		if len(tks) != want {
			t.Errorf("%d tickets, want %d", len(tks), want)
		}
		return nil
	})
}

func deliverNew(e *env, from, to int) []string {
	var ids []string
	for i := from; i < to; i++ {
		id := fmt.Sprintf("fault-%d@example.org", i)
		e.deliver(mailFrom(fmt.Sprintf("User %d <u%d@example.org>", i, i), fmt.Sprintf("Fault %d", i), id))
		ids = append(ids, id)
	}
	return ids
}

func TestDovecotRestartMidIngest(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	const n = 60
	ids := deliverNew(e, 0, n)
	e.start()
	e.eventually("some tickets", func(tx *store.Tx) bool { return tx.TicketExists(5) })
	e.dove.Stop()
	time.Sleep(500 * time.Millisecond)
	e.dove.Start()
	e.eventually("every ticket after the restart", func(tx *store.Tx) bool { return tx.TicketExists(n) })
	time.Sleep(300 * time.Millisecond)
	assertEachOnce(t, e, ids, n)
}

func TestConnectionDroppedDuringIdle(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	ids := deliverNew(e, 0, 1)
	e.start()
	e.eventually("first ticket", func(tx *store.Tx) bool { return tx.TicketExists(1) })
	// The daemon now sits in IDLE; the server goes away under it.
	e.dove.Stop()
	e.dove.Start()
	ids = append(ids, deliverNew(e, 1, 3)...)
	e.eventually("tickets after the drop", func(tx *store.Tx) bool { return tx.TicketExists(3) })
	assertEachOnce(t, e, ids, 3)
}

func TestLoginFailingForAWhile(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	e.dove.DisableUser(t, "support")
	ids := deliverNew(e, 0, 2)
	e.start()
	time.Sleep(1500 * time.Millisecond)
	if n := e.ticketCount(); n != 0 {
		t.Fatalf("%d tickets while login fails", n)
	}
	e.dove.EnableUser(t, "support")
	e.eventually("tickets after login works again", func(tx *store.Tx) bool { return tx.TicketExists(2) })
	assertEachOnce(t, e, ids, 2)
}

func TestUIDValidityResetDuplicatesNothing(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	ids := deliverNew(e, 0, 3)
	e.start()
	e.eventually("three tickets", func(tx *store.Tx) bool { return tx.TicketExists(3) })
	e.stop()
	// Same mail, new UIDVALIDITY and new UIDs: everything is fetched again.
	e.dove.ResetUIDValidity(t, "support", "INBOX")
	e.start()
	ids = append(ids, deliverNew(e, 3, 4)...)
	e.eventually("the new mail", func(tx *store.Tx) bool { return tx.TicketExists(4) })
	time.Sleep(500 * time.Millisecond)
	assertEachOnce(t, e, ids, 4)
	e.view(func(tx *store.Tx) error {
		for id := uint64(1); id <= 4; id++ {
			tk, _ := tx.Ticket(id)
			msgs, _ := tx.Messages(id)
			in := 0
			for _, m := range msgs {
				if m.Direction == store.DirectionIn {
					in++
				}
			}
			if in != 1 {
				t.Errorf("ticket %d (%s) has %d inbound messages, want 1", id, tk.Subject, in)
			}
		}
		return nil
	})
}

// A permanent refusal dead-letters the acknowledgement at once, shows it as
// failed on the ticket, and tells the agents.
func TestPermanentRefusalIsDeadLetteredAndAgentsAreTold(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	e.cfg.Agents = []config.Agent{{Email: "alice@example.com", Name: "Alice"}}
	e.smtp.RejectRcpt("gone@example.org", 550, "5.1.1 no such user")
	e.start()
	e.deliver(mailFrom("Gone <gone@example.org>", "Account locked", "dead1@example.org"))
	e.eventually("the acknowledgement failed", func(tx *store.Tx) bool {
		msgs, _ := tx.Messages(1)
		for _, m := range msgs {
			if m.Kind == store.KindAutoreply && m.Delivery != nil && m.Delivery.Status == "failed" {
				return strings.Contains(m.Delivery.LastError, "550")
			}
		}
		return false
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		var told bool
		for _, m := range e.smtp.Messages() {
			if slices.Contains(m.To, "alice@example.com") && strings.Contains(string(m.Data), "was given up") {
				told = true
			}
		}
		if told {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no agent was told about the given-up acknowledgement")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Not inside eventually's read transaction: OutboxLen opens its own.
	for q, dead, _ := e.d.DB().OutboxLen(); q != 0 || dead != 1; q, dead, _ = e.d.DB().OutboxLen() {
		if time.Now().After(deadline) {
			t.Fatalf("outbox queued %d dead %d, want 0 and 1", q, dead)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, m := range e.smtp.Messages() {
		if slices.Contains(m.To, "gone@example.org") {
			t.Errorf("a mail reached the refused address")
		}
	}
}
