package ticket

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

// bigMIME is a multipart mail of about n bytes: a short text and a base64
// attachment.
func bigMIME(from, id string, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: support@example.com\r\nSubject: Logs attached\r\nMessage-ID: <%s>\r\n"+
		"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"+
		"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe logs you asked for.\r\n"+
		"--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=logs.bin\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\n", from, id)
	line := strings.Repeat("QUJD", 19) + "\r\n" // 57 decoded bytes a line
	for b.Len() < n {
		b.WriteString(line)
	}
	b.WriteString("--XX--\r\n")
	return b.Bytes()
}

func (h *harness) spool(raw []byte, uid uint32) Inbound {
	h.t.Helper()
	s, err := h.eng.Spool(bytes.NewReader(raw))
	if err != nil {
		h.t.Fatal(err)
	}
	return Inbound{Mailbox: "support", UIDValidity: 1, UID: uid, Staged: s}
}

func (h *harness) stagedLeft() int {
	h.t.Helper()
	n, err := h.db.StagedCount()
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// A spooled mail is parsed from the database, stored as one with its bytes
// intact and acknowledged, between the groups around it; once it is
// committed Discard leaves it alone, and a spooled duplicate leaves
// nothing behind.
func TestSpooledMailIsStoredLikeAnyOther(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxMessageBytes = 64 << 20 })
	big := bigMIME("Ann <ann@example.org>", "logs@example.org", 6<<20)
	ins := inbounds([]string{msg("Bob <bob@example.org>", "VPN", "v1@example.org")}, 1)
	spooled := h.spool(big, 2)
	ins = append(ins, spooled)
	ins = append(ins, inbounds([]string{msg("Carol <carol@example.org>", "Monitor", "m1@example.org")}, 3)...)
	for i := range ins {
		ins[i].Prepared = h.eng.Prepare(ins[i]) // as the inbox does, on its workers
	}
	res, err := h.eng.HandleBatch(context.Background(), ins)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[1].TicketID != 2 || res[1].Quarantined || !res[1].Acked || res[2].TicketID != 3 {
		t.Fatalf("results %+v", res)
	}
	if pending, _ := h.db.PendingFlags("support", 1); len(pending) != 3 || slices.ContainsFunc(pending, func(p store.PendingFlag) bool { return p.Quarantined }) {
		t.Errorf("pending flags %v, want three, none quarantined", pending)
	}
	m := h.lastInbound(2)
	if got := h.raw(2, m.Seq); !bytes.Equal(got, big) {
		t.Errorf("spooled mail read back as %d bytes, want %d", len(got), len(big))
	}
	sum := sha256.Sum256(big)
	if m.Size != len(big) || m.RawSHA256 != hex.EncodeToString(sum[:]) || m.Text != "The logs you asked for." ||
		len(m.Attachments) != 1 || m.Attachments[0].Size < 4<<20 {
		t.Errorf("stored message: size %d sha %s text %q attachments %+v", m.Size, m.RawSHA256, m.Text, m.Attachments)
	}
	h.eng.Discard(spooled.Staged) // what the inbox does once done: a no-op now
	if got := h.raw(2, m.Seq); !bytes.Equal(got, big) {
		t.Error("Discard removed a committed mail's bytes")
	}
	again := h.spool(big, 2)
	res, err = h.eng.HandleBatch(context.Background(), []Inbound{again})
	if err != nil || len(res) != 1 || res[0].Rule != threading.RuleDuplicate {
		t.Errorf("spooled re-fetch: %+v %v", res, err)
	}
	h.eng.Discard(again.Staged)
	if n := h.stagedLeft(); n != 0 {
		t.Errorf("%d staged blobs left behind", n)
	}
}

// Spooled mail that cannot become a ticket is quarantined with its bytes:
// too large (with the notice), not a mail at all (keyed by its hash).
func TestSpooledMailQuarantined(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxMessageBytes = 5 << 20 })
	big := bigMIME("Ann <ann@example.org>", "huge@example.org", 6<<20)
	junk := bytes.Repeat([]byte("no header here, just bytes\x00\x01\r\n"), (5<<20)/28)
	for i, raw := range [][]byte{big, junk} {
		in := h.spool(raw, uint32(i+1))
		r, err := h.eng.Handle(context.Background(), in)
		h.eng.Discard(in.Staged)
		if err != nil || !r.Quarantined {
			t.Fatalf("mail %d: %+v %v", i, r, err)
		}
	}
	qs := h.quarantine()
	if len(qs) != 2 {
		t.Fatalf("quarantine %+v", qs)
	}
	sum := sha256.Sum256(junk)
	if !strings.Contains(qs[0].Reason, "too large") || qs[0].Key != "<huge@example.org>" || qs[0].From != "ann@example.org" || qs[0].Size != len(big) ||
		qs[1].Key != "sha256:"+hex.EncodeToString(sum[:]) || qs[1].Size != len(junk) {
		t.Errorf("quarantine records: %+v", qs)
	}
	for i, want := range [][]byte{big, junk} {
		var got []byte
		h.db.View(func(tx *store.Tx) error {
			got, _ = tx.QuarantinedRaw(qs[i].ID)
			return nil
		})
		if !bytes.Equal(got, want) {
			t.Errorf("quarantined mail %d: %d bytes back, want %d", i, len(got), len(want))
		}
	}
	if n := len(h.outboxAll()); n != 1 {
		t.Errorf("%d mails queued, want the one oversize notice", n)
	}
	// A crash now must still get the quarantine keyword onto both.
	pending, err := h.db.PendingFlags("support", 1)
	if want := []store.PendingFlag{{UID: 1, Quarantined: true}, {UID: 2, Quarantined: true}}; err != nil || !slices.Equal(pending, want) {
		t.Errorf("pending flags %v %v, want %v", pending, err, want)
	}
	if n := h.stagedLeft(); n != 0 {
		t.Errorf("%d staged blobs left behind", n)
	}
}

// A spooled mail whose bytes cannot be read is a temporary failure: an
// error, nothing stored, not quarantined.
func TestSpooledMailUnreadableIsTemporary(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxMessageBytes = 64 << 20 })
	in := h.spool(bigMIME("Ann <ann@example.org>", "gone@example.org", 5<<20), 1)
	h.eng.Discard(in.Staged) // gone before it is handled
	_, err := h.eng.HandleBatch(context.Background(), []Inbound{in})
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("HandleBatch: %v, want the read error", err)
	}
	if qs := h.quarantine(); len(qs) != 0 {
		t.Errorf("quarantined: %+v", qs)
	}
	if cp, _ := h.db.MailboxCheckpoint("support"); cp.LastUID != 0 {
		t.Errorf("checkpoint advanced to %d", cp.LastUID)
	}
}
