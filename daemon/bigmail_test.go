package daemon_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/helpdesk/helpdesk/internal/mailtest"
	"github.com/helpdesk/helpdesk/store"
)

// TestBigMailIsStreamedIntoItsTicket: a mail with a 6 MB attachment, above
// the size from which the inbox streams a literal into the database instead
// of reading it, becomes a ticket like any other, between two small ones,
// with every byte as Dovecot has it, its attachment listed and an
// acknowledgement sent; nothing stays staged.
func TestBigMailIsStreamedIntoItsTicket(t *testing.T) {
	e := newEnv(t, mailtest.SMTPOptions{})
	var big bytes.Buffer
	fmt.Fprintf(&big, "From: Ann Example <ann@example.org>\r\nTo: %s\r\nSubject: Crash dump\r\n"+
		"Message-ID: <dump@example.org>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"+
		"The dump is attached.\r\n--b1\r\nContent-Type: application/octet-stream\r\n"+
		"Content-Disposition: attachment; filename=core.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n", supportAddr)
	for big.Len() < 6<<20 {
		big.WriteString(strings.Repeat("Q29yZQ", 12) + "\r\n")
	}
	big.WriteString("--b1--\r\n")
	e.deliver(mailFrom("Bob <bob@example.org>", "VPN", "v1@example.org"))
	uid := e.dove.Append(t, "support", "INBOX", big.Bytes())
	e.deliver(mailFrom("Carol <carol@example.org>", "Monitor", "m1@example.org"))
	e.start()

	e.smtp.WaitFor(t, 3, 30*time.Second)
	e.eventually("three tickets", func(tx *store.Tx) bool { return tx.TicketExists(3) })
	e.view(func(tx *store.Tx) error {
		tk, err := tx.Ticket(2)
		if err != nil || tk.Subject != "Crash dump" || tk.Requester != "ann@example.org" {
			t.Errorf("ticket 2: %+v %v", tk, err)
			return nil
		}
		msgs, err := tx.Messages(2)
		if err != nil || len(msgs) == 0 {
			t.Fatalf("messages: %v %v", msgs, err)
		}
		m := msgs[0]
		if m.Size != big.Len() || m.Text != "The dump is attached." || len(m.Attachments) != 1 || m.Attachments[0].Filename != "core.bin" {
			t.Errorf("stored message: size %d (want %d), text %q, attachments %+v", m.Size, big.Len(), m.Text, m.Attachments)
		}
		raw, err := tx.Raw(2, m.Seq)
		if err != nil || !bytes.Equal(raw, big.Bytes()) {
			t.Errorf("raw: %d bytes, %v; want the %d appended", len(raw), err, big.Len())
		}
		return nil
	})
	if n, err := e.d.DB().StagedCount(); err != nil || n != 0 {
		t.Errorf("%d staged blobs left, %v", n, err)
	}
	waitSeen(t, e, uid)
}
