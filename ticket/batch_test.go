package ticket

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

// batchMails is a backlog that exercises every path in one group: new
// tickets, a follow-up of a mail in the same group, a duplicate of one, an
// automated reply, an agent's mail, garbage and an oversized mail.
func batchMails() []string {
	return []string{
		msg("Ann <ann@example.org>", "Printer", "p1@example.org"),
		msg("Bob <bob@example.org>", "VPN", "v1@example.org"),
		msg("Ann <ann@example.org>", "Re: Printer", "p2@example.org", "In-Reply-To: <p1@example.org>\nReferences: <p1@example.org>\n"),
		msg("Ann <ann@example.org>", "Printer", "p1@example.org"),
		"no header at all, just words\n",
		msg("Bob <bob@example.org>", "Out of office", "ooo@example.org", "Auto-Submitted: auto-replied\n"),
		msg("Alice <alice@example.com>", "Re: VPN", "a1@example.com", "In-Reply-To: <v1@example.org>\n"),
		msg("Carol <carol@example.org>", "Huge", "big@example.org") + strings.Repeat("x", 2<<20),
		msg("Dan <dan@example.org>", "Monitor", "m1@example.org"),
	}
}

func inbounds(mails []string, firstUID uint32) []Inbound {
	var ins []Inbound
	for i, m := range mails {
		ins = append(ins, Inbound{Mailbox: "support", UIDValidity: 1, UID: firstUID + uint32(i), Raw: []byte(strings.ReplaceAll(m, "\n", "\r\n"))})
	}
	return ins
}

// snapshot is what a test compares of a database: tickets, their
// messages, the outbox, the quarantine and the checkpoint.
func (h *harness) snapshot() string {
	h.t.Helper()
	var b strings.Builder
	err := h.db.View(func(tx *store.Tx) error {
		tks, err := tx.ListTickets(store.ListOptions{})
		if err != nil {
			return err
		}
		for _, tk := range tks {
			fmt.Fprintf(&b, "ticket %d %q %s by %s, %d messages\n", tk.ID, tk.Subject, tk.Status, tk.Requester, tk.MessageCount)
			msgs, err := tx.Messages(tk.ID)
			if err != nil {
				return err
			}
			for _, m := range msgs {
				raw, err := tx.Raw(m.TicketID, m.Seq)
				if err != nil {
					return err
				}
				id := m.MessageID
				if m.Direction == store.DirectionOut {
					id = "(ours, random)"
				}
				fmt.Fprintf(&b, "  %d %s %s %s %q matched_by=%s automated=%s to=%v\n", m.Seq, m.Direction, m.Kind, m.From, id, m.MatchedBy, m.Automated, m.To)
				if m.Direction == store.DirectionIn {
					fmt.Fprintf(&b, "    %d bytes, %s\n", len(raw), sha256Hex(raw)[:16])
				}
			}
		}
		qs, err := tx.ListQuarantine()
		if err != nil {
			return err
		}
		for _, q := range qs {
			fmt.Fprintf(&b, "quarantined uid %d: %s\n", q.UID, q.Reason)
		}
		cp, err := tx.Checkpoint("support")
		fmt.Fprintf(&b, "checkpoint %+v\n", cp)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	fmt.Fprintf(&b, "outbox %d\n", len(h.outboxAll()))
	return b.String()
}

func batchConfig(c *Config) {
	agentConfig(c)
	c.MaxMessageBytes = 1 << 20
}

// HandleBatch leaves the database exactly as Handle, mail by mail, does.
func TestHandleBatchIsHandleInOneTransaction(t *testing.T) {
	one, group := newHarness(t, batchConfig), newHarness(t, batchConfig)
	ins := inbounds(batchMails(), 1)
	var want []Result
	for _, in := range ins {
		res, err := one.eng.Handle(context.Background(), in)
		if err != nil {
			t.Fatalf("Handle uid %d: %v", in.UID, err)
		}
		want = append(want, res)
	}
	got, err := group.eng.HandleBatch(context.Background(), ins)
	if err != nil {
		t.Fatalf("HandleBatch: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results differ from Handle's (-Handle +HandleBatch):\n%s", diff)
	}
	if diff := cmp.Diff(one.snapshot(), group.snapshot()); diff != "" {
		t.Errorf("database differs from Handle's (-Handle +HandleBatch):\n%s", diff)
	}
	// The same with every mail prepared ahead, as the inbox does.
	ahead := newHarness(t, batchConfig)
	for i := range ins {
		ins[i].Prepared = ahead.eng.Prepare(ins[i])
	}
	got2, err := ahead.eng.HandleBatch(context.Background(), ins)
	if err != nil {
		t.Fatalf("HandleBatch of prepared mail: %v", err)
	}
	if diff := cmp.Diff(want, got2); diff != "" {
		t.Errorf("results of prepared mail differ (-Handle +HandleBatch):\n%s", diff)
	}
	if diff := cmp.Diff(one.snapshot(), ahead.snapshot()); diff != "" {
		t.Errorf("database of prepared mail differs (-Handle +HandleBatch):\n%s", diff)
	}
	// The follow-up found the ticket its original opened in the same
	// transaction.
	if got[2].Rule != threading.RuleReferences || got[2].TicketID != got[0].TicketID || got[3].Rule != threading.RuleDuplicate {
		t.Errorf("follow-up %+v, duplicate %+v", got[2], got[3])
	}
}

// A mail that panics in the middle of a group is quarantined, alone; the
// mails around it are committed as if nothing happened.
func TestHandleBatchPanicInTheGroupQuarantinesOnlyThatMail(t *testing.T) {
	h := newHarness(t, batchConfig)
	ins := inbounds([]string{
		msg("Ann <ann@example.org>", "Printer", "p1@example.org"),
		msg("Bob <bob@example.org>", "Explodes", "boom@example.org"),
		msg("Carol <carol@example.org>", "Monitor", "m1@example.org"),
	}, 1)
	var inTx int
	h.eng.fault = func(at string) {
		if at == "transaction" {
			inTx++
			// The group's second mail, and that mail alone again.
			if inTx == 2 || inTx == 4 {
				panic("injected fault")
			}
		}
	}
	res, err := h.eng.HandleBatch(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].TicketID != 1 || !res[1].Quarantined || !strings.Contains(res[1].Reason, "injected fault") || res[2].TicketID != 2 {
		t.Fatalf("results %+v", res)
	}
	if cp, _ := h.db.MailboxCheckpoint("support"); cp.LastUID != 3 {
		t.Errorf("checkpoint %+v", cp)
	}
	if uids, _ := h.db.PendingFlags("support", 1); len(uids) != 3 {
		t.Errorf("pending flags %v, want all three", uids)
	}
}

// A mail too big for a group's transaction is staged and stored alone,
// between the groups before and after it, with its bytes intact.
func TestHandleBatchStagesABigMail(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxMessageBytes = 64 << 20 })
	body := bytes.Repeat([]byte("0123456789abcdef\r\n"), (6<<20)/18)
	big := append([]byte(strings.ReplaceAll(msg("Ann <ann@example.org>", "Logs", "logs@example.org"), "\n", "\r\n")), body...)
	if !store.NeedsStaging(len(big)) {
		t.Fatal("test mail too small to be staged")
	}
	ins := inbounds([]string{msg("Bob <bob@example.org>", "VPN", "v1@example.org")}, 1)
	ins = append(ins, Inbound{Mailbox: "support", UIDValidity: 1, UID: 2, Raw: big})
	ins = append(ins, inbounds([]string{msg("Carol <carol@example.org>", "Monitor", "m1@example.org")}, 3)...)
	res, err := h.eng.HandleBatch(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[1].TicketID != 2 || res[1].Quarantined {
		t.Fatalf("results %+v", res)
	}
	if got := h.raw(2, h.lastInbound(2).Seq); !bytes.Equal(got, big) {
		t.Errorf("big mail read back as %d bytes, want %d", len(got), len(big))
	}
	// The same mail again (a re-fetch) is a duplicate and leaves nothing
	// staged behind (Check, in cleanup, would find an orphan blob).
	again, err := h.eng.HandleBatch(context.Background(), []Inbound{{Mailbox: "support", UIDValidity: 1, UID: 2, Raw: big}})
	if err != nil || len(again) != 1 || again[0].Rule != threading.RuleDuplicate {
		t.Errorf("re-fetch: %+v %v", again, err)
	}
}
