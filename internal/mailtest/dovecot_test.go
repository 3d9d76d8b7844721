package mailtest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const testMail = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\nMessage-ID: <1@example.com>\r\n\r\nhello\r\n"

func TestDovecotAppendFlagsUIDs(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, map[string]string{"support": "secret"})

	uid1 := d.Append(t, "support", "INBOX", []byte(testMail))
	uid2 := d.Append(t, "support", "INBOX", []byte(testMail), imap.FlagSeen, imap.Flag("$Custom"))
	if uid2 <= uid1 {
		t.Fatalf("UIDs not ascending: %d then %d", uid1, uid2)
	}
	if got := d.UIDs(t, "support", "INBOX"); !slices.Equal(got, []imap.UID{uid1, uid2}) {
		t.Errorf("UIDs = %v, want [%d %d]", got, uid1, uid2)
	}
	if got := d.Flags(t, "support", "INBOX", uid1); len(got) != 0 {
		t.Errorf("flags of uid %d = %v, want none", uid1, got)
	}
	if got := d.Flags(t, "support", "INBOX", uid2); !slices.Equal(got, []imap.Flag{"$Custom", imap.FlagSeen}) {
		t.Errorf("flags of uid %d = %v, want [$Custom \\Seen]", uid2, got)
	}
	// Archive is auto-created; an unknown folder is created by Append.
	if got := d.UIDs(t, "support", "Archive"); len(got) != 0 {
		t.Errorf("Archive = %v, want empty", got)
	}
	d.Append(t, "support", "Other", []byte(testMail))
	if got := d.UIDs(t, "support", "Other"); len(got) != 1 {
		t.Errorf("Other = %v, want one message", got)
	}
}

// TestDovecotLogin checks the user's own credentials over all three
// transports and that DisableUser/SetPassword take effect.
func TestDovecotLogin(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, map[string]string{"support": "secret"})
	tlsConfig := &tls.Config{RootCAs: d.Cert.Pool, ServerName: "127.0.0.1"}
	opts := &imapclient.Options{TLSConfig: tlsConfig}

	dials := map[string]func() (*imapclient.Client, error){
		"plain":    func() (*imapclient.Client, error) { return imapclient.DialInsecure(d.Addr(), nil) },
		"starttls": func() (*imapclient.Client, error) { return imapclient.DialStartTLS(d.Addr(), opts) },
		"tls":      func() (*imapclient.Client, error) { return imapclient.DialTLS(d.TLSAddr(), opts) },
	}
	for name, dial := range dials {
		c, err := dial()
		if err != nil {
			t.Fatalf("%s: dial: %v", name, err)
		}
		if err := c.Login("support", "secret").Wait(); err != nil {
			t.Errorf("%s: login: %v", name, err)
		}
		_ = c.Logout().Wait()
		_ = c.Close()
	}

	login := func(pass string) error {
		c, err := imapclient.DialInsecure(d.Addr(), nil)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		return c.Login("support", pass).Wait()
	}
	d.SetPassword(t, "support", "newpass")
	if err := login("newpass"); err != nil {
		t.Errorf("login with new password: %v", err)
	}
	d.DisableUser(t, "support")
	var imapErr *imap.Error
	if err := login("newpass"); !errors.As(err, &imapErr) {
		t.Errorf("login while disabled: err = %v, want an IMAP NO", err)
	}
	// The helpers still work for a disabled user.
	d.Append(t, "support", "INBOX", []byte(testMail))
}

func TestDovecotRestartAndUIDValidity(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, map[string]string{"support": "secret"})
	uid := d.Append(t, "support", "INBOX", []byte(testMail))
	d.Append(t, "support", "Folder", []byte(testMail))
	v1 := d.UIDValidity(t, "support", "INBOX")
	f1 := d.UIDValidity(t, "support", "Folder")

	c := d.Client(t, "support")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	d.Stop()
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("client connection survived Stop")
	}
	if conn, err := net.Dial("tcp", d.Addr()); err == nil {
		conn.Close()
		t.Fatal("port still accepts connections after Stop")
	}
	d.Start()
	if got := d.UIDs(t, "support", "INBOX"); !slices.Equal(got, []imap.UID{uid}) {
		t.Errorf("after restart UIDs = %v, want [%d]", got, uid)
	}

	d.ResetUIDValidity(t, "support", "INBOX")
	if v2 := d.UIDValidity(t, "support", "INBOX"); v2 == v1 {
		t.Errorf("UIDVALIDITY unchanged (%d) after ResetUIDValidity", v1)
	}
	if got := d.UIDs(t, "support", "INBOX"); len(got) != 1 {
		t.Errorf("after ResetUIDValidity UIDs = %v, want one message", got)
	}

	d.RecreateMailbox(t, "support", "Folder")
	if f2 := d.UIDValidity(t, "support", "Folder"); f2 == f1 {
		t.Errorf("UIDVALIDITY of Folder unchanged (%d) after RecreateMailbox", f1)
	}
	if got := d.UIDs(t, "support", "Folder"); len(got) != 0 {
		t.Errorf("recreated Folder = %v, want empty", got)
	}
}

func TestDovecotDeliverMaildir(t *testing.T) {
	t.Parallel()
	d := StartDovecot(t, map[string]string{"support": "secret"})
	for _, folder := range []string{"INBOX", "Bulk/Load"} {
		var raws [][]byte
		for i := 0; i < 5; i++ {
			raws = append(raws, []byte(fmt.Sprintf("Subject: %s %d\r\nMessage-ID: <%d@bulk>\r\n\r\nbody %d\r\n", folder, i, i, i)))
		}
		d.DeliverMaildir(t, "support", folder, raws[:2]...)
		d.DeliverMaildir(t, "support", folder, raws[2:]...)
		c := d.Client(t, "support")
		if _, err := c.Select(folder, nil).Wait(); err != nil {
			t.Fatal(err)
		}
		msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3, 4, 5), &imap.FetchOptions{
			UID:         true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		if err != nil {
			t.Fatalf("%s: fetch: %v", folder, err)
		}
		if len(msgs) != len(raws) {
			t.Fatalf("%s: %d messages, want %d", folder, len(msgs), len(raws))
		}
		for i, m := range msgs {
			body := m.FindBodySection(&imap.FetchItemBodySection{})
			if !bytes.Equal(body, raws[i]) || (i > 0 && m.UID <= msgs[i-1].UID) {
				t.Errorf("%s: message %d (uid %d) = %q, want %q in UID order", folder, i, m.UID, body, raws[i])
			}
		}
	}
}
