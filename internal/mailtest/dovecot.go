package mailtest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// DovecotPath is where Debian's dovecot-imapd installs the master binary.
// It is called by path because /usr/sbin is not always on PATH.
const DovecotPath = "/usr/sbin/dovecot"

// RequireDovecot skips the test when Dovecot is not installed, except in CI
// (CI set) or when HELPDESK_REQUIRE_DOVECOT=1, where a missing Dovecot is a
// failure: a test that silently skips in CI proves nothing.
func RequireDovecot(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(DovecotPath); err == nil {
		return
	}
	if os.Getenv("CI") != "" || os.Getenv("HELPDESK_REQUIRE_DOVECOT") == "1" {
		t.Fatalf("dovecot is required (CI or HELPDESK_REQUIRE_DOVECOT=1) but %s is missing: apt-get install -y dovecot-imapd", DovecotPath)
	}
	t.Skipf("%s not installed (apt-get install -y dovecot-imapd)", DovecotPath)
}

// Dovecot is a real Dovecot IMAP server running as a child process of the
// test, with its configuration, sockets, logs and maildirs under one
// t.TempDir(). It listens on 127.0.0.1 only: IMAPPort speaks plaintext and
// offers STARTTLS, IMAPSPort speaks implicit TLS, both with Cert (trusted by
// Cert.Pool). Every user's mailbox has an auto-created "Archive" folder.
//
// The helpers (Append, Flags, UIDs, Client, …) log in through a Dovecot
// master user, so they keep working while a user is disabled or has had its
// password changed. They fail the test with t.Fatal and must therefore be
// called from the test goroutine.
//
// The server is stopped on test cleanup; Stop and Start restart it on the
// same ports and maildirs to simulate an outage.
type Dovecot struct {
	Host      string // always 127.0.0.1
	IMAPPort  int    // plaintext + STARTTLS
	IMAPSPort int    // implicit TLS
	Cert      *Cert
	Dir       string // root of everything the instance owns

	t          testing.TB
	masterUser string
	masterPass string
	// oauth2Mechs are the OAuth 2.0 SASL mechanisms offered (lower case);
	// none unless DovecotOptions.OAuth2IntrospectionURL was set.
	oauth2Mechs []string

	mu         sync.Mutex
	users      map[string]dovecotUser
	passGen    int // bumps the passwd file's mtime so Dovecot re-reads it
	deliverSeq int // orders DeliverMaildir file names
	proc       *exec.Cmd
	exited     chan struct{} // closed when proc has been reaped
	output     *lockedBuffer // the master's stdout/stderr
}

type dovecotUser struct {
	password string
	disabled bool
}

// StartDovecot starts a Dovecot instance with the given users (name →
// password, PLAIN scheme) and returns once it answers "* OK". It calls
// RequireDovecot first. The server stops on test cleanup; if the test
// failed, the tail of Dovecot's log is logged to help diagnose it.
func StartDovecot(t testing.TB, users map[string]string) *Dovecot {
	t.Helper()
	return StartDovecotOpts(t, DovecotOptions{Users: users})
}

// DovecotOptions configure StartDovecotOpts.
type DovecotOptions struct {
	// Users maps each user name to its password (PLAIN scheme). A user who
	// logs in with OAuth 2.0 must be listed too: the entry creates its
	// mailbox (any password will do).
	Users map[string]string

	// OAuth2IntrospectionURL, when set, turns on OAuth 2.0 logins: Dovecot
	// validates every bearer token by POSTing "token=<token>" to this URL
	// (RFC 7662 style), which must answer a JSON object with "active": true
	// and "username" set to the user logging in; any other answer fails
	// the login.
	OAuth2IntrospectionURL string
	// OAuth2Mechanisms are the SASL mechanisms offered for OAuth 2.0, among
	// "xoauth2" and "oauthbearer". Default: both.
	OAuth2Mechanisms []string
}

// StartDovecotOpts is StartDovecot with options.
func StartDovecotOpts(t testing.TB, opts DovecotOptions) *Dovecot {
	t.Helper()
	RequireDovecot(t)
	users := opts.Users

	dir := t.TempDir()
	// Mail and login processes run as unprivileged users and must traverse
	// every parent of dir; t.TempDir creates its directories 0700.
	makeTraversable(t, dir)

	d := &Dovecot{
		Host:       "127.0.0.1",
		Cert:       LoopbackCert(t),
		Dir:        dir,
		t:          t,
		masterUser: "helpdesk-test-master",
		masterPass: rand.Text(),
		users:      make(map[string]dovecotUser, len(users)),
	}
	if opts.OAuth2IntrospectionURL != "" {
		d.oauth2Mechs = []string{"xoauth2", "oauthbearer"}
		if len(opts.OAuth2Mechanisms) > 0 {
			d.oauth2Mechs = opts.OAuth2Mechanisms
		}
	}
	for name, pass := range users {
		d.users[name] = dovecotUser{password: pass}
	}
	for _, sub := range []string{"run", "state", "mail"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatalf("dovecot: %v", err)
		}
	}
	files := map[string][]byte{
		"cert.pem":      d.Cert.CertPEM,
		"key.pem":       d.Cert.KeyPEM,
		"master-passwd": []byte(d.masterUser + ":{PLAIN}" + d.masterPass + "\n"),
	}
	if opts.OAuth2IntrospectionURL != "" {
		files["dovecot-oauth2.conf.ext"] = oauth2PassdbConfig(opts.OAuth2IntrospectionURL)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatalf("dovecot: %v", err)
		}
	}
	d.mu.Lock()
	d.writePasswdLocked(t, false)
	d.mu.Unlock()

	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			d.logTail(t)
		}
	})

	// Another process may grab a port between our probe and Dovecot's bind:
	// pick fresh ports and try again.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		d.IMAPPort, d.IMAPSPort = freePort(t), freePort(t)
		if err = d.writeConfig(); err != nil {
			t.Fatalf("dovecot: %v", err)
		}
		if err = d.start(); err == nil {
			return d
		}
		if !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	t.Fatalf("dovecot: %v", err)
	return nil
}

// Addr returns "127.0.0.1:IMAPPort".
func (d *Dovecot) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.IMAPPort)) }

// TLSAddr returns "127.0.0.1:IMAPSPort".
func (d *Dovecot) TLSAddr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.IMAPSPort)) }

// Stop stops the server (SIGTERM to its process group, SIGKILL after 2 s)
// and waits until it has exited. Open client connections are dropped. Stop
// on a stopped server does nothing.
func (d *Dovecot) Stop() {
	d.mu.Lock()
	proc, exited := d.proc, d.exited
	d.proc = nil
	d.mu.Unlock()
	if proc == nil {
		return
	}
	pgid := proc.Process.Pid // Setpgid: the master leads its own group
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	// The master usually exits within milliseconds, but when a child is
	// exiting at the same moment it polls for it in 1 s sleeps, up to 6 s.
	// A test instance has nothing worth waiting for: kill what is left.
	select {
	case <-exited:
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
	// The master is gone; give its children (which share the listening
	// sockets) a moment to exit too, so a restart can bind the same ports.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && groupAlive(pgid) {
		time.Sleep(5 * time.Millisecond)
	}
}

// groupAlive reports whether a process of group pgid is still running.
// Zombies do not count: children that outlive the master are reparented to
// PID 1, which in some containers never reaps them, and they hold no
// sockets anyway.
func groupAlive(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		// "pid (comm) state ppid pgrp ...": comm may contain spaces.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(data[i+1:]))
		if len(fields) < 3 || fields[0] == "Z" || fields[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(fields[2]); err == nil && g == pgid {
			return true
		}
	}
	return false
}

// Start starts a stopped server again on the same ports and maildirs. It
// fails the test if the server does not come up.
func (d *Dovecot) Start() {
	d.t.Helper()
	// The old processes may still hold the ports for a moment.
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = d.start(); err == nil || !strings.Contains(err.Error(), "in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		d.t.Fatalf("dovecot: restart: %v", err)
	}
}

// start runs the master in the foreground (-F: never daemonise, see
// MAIL-TESTING.md) in its own process group and waits for the greeting.
func (d *Dovecot) start() error {
	d.mu.Lock()
	if d.proc != nil {
		d.mu.Unlock()
		return errors.New("already running")
	}
	d.mu.Unlock()

	out := &lockedBuffer{}
	cmd := exec.Command(DovecotPath, "-F", "-c", filepath.Join(d.Dir, "dovecot.conf"))
	cmd.Dir = d.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", DovecotPath, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	d.mu.Lock()
	d.proc, d.exited, d.output = cmd, exited, out
	d.mu.Unlock()

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			d.mu.Lock()
			d.proc = nil
			d.mu.Unlock()
			return fmt.Errorf("dovecot exited during start-up: %s%s", out.String(), d.readLog())
		default:
		}
		if err := probeGreeting(d.Addr()); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			d.Stop()
			return fmt.Errorf("no IMAP greeting on %s: %w\n%s%s", d.Addr(), err, out.String(), d.readLog())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func probeGreeting(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "* OK") {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	_, _ = conn.Write([]byte("a LOGOUT\r\n"))
	return nil
}

// SetPassword sets (or adds) a user's password; the next login sees it.
// It takes up to a second (Dovecot's passwd-file cache granularity).
func (d *Dovecot) SetPassword(t testing.TB, user, password string) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.users[user]
	u.password = password
	d.users[user] = u
	d.writePasswdLocked(t, true)
}

// DisableUser makes every login as user fail ("authentication failed") until
// EnableUser. Like SetPassword it takes up to a second. Sessions already logged in are not affected. Remember that
// Dovecot delays logins from 127.0.0.1 for seconds after a failure.
func (d *Dovecot) DisableUser(t testing.TB, user string) { d.setDisabled(t, user, true) }

// EnableUser undoes DisableUser.
func (d *Dovecot) EnableUser(t testing.TB, user string) { d.setDisabled(t, user, false) }

func (d *Dovecot) setDisabled(t testing.TB, user string, disabled bool) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	u, ok := d.users[user]
	if !ok {
		t.Fatalf("dovecot: unknown user %q", user)
	}
	u.disabled = disabled
	d.users[user] = u
	d.writePasswdLocked(t, true)
}

// writePasswdLocked rewrites the passwd file atomically. Dovecot reloads a
// passwd-file when its mtime or size changes; the mtime is moved forward a
// second per write so that two writes within one second are both seen. With
// settle it returns only once the change is visible (up to a second).
func (d *Dovecot) writePasswdLocked(t testing.TB, settle bool) {
	t.Helper()
	names := make([]string, 0, len(d.users))
	for name := range d.users {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		u := d.users[name]
		if u.disabled {
			continue
		}
		fmt.Fprintf(&b, "%s:{PLAIN}%s\n", name, u.password)
		// The maildir home must exist and belong to the mail uid.
		home := filepath.Join(d.Dir, "mail", name)
		if err := os.MkdirAll(home, 0o755); err != nil {
			t.Fatalf("dovecot: %v", err)
		}
		if err := chownMail(home); err != nil {
			t.Fatalf("dovecot: %v", err)
		}
	}
	path := filepath.Join(d.Dir, "passwd")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("dovecot: %v", err)
	}
	d.passGen++
	stamp := time.Now().Add(time.Duration(d.passGen) * time.Second)
	if err := os.Chtimes(tmp, stamp, stamp); err != nil {
		t.Fatalf("dovecot: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("dovecot: %v", err)
	}
	// Dovecot's auth process stats a passwd-file at most once per second of
	// its clock: wait for the next second so that the change is seen by the
	// very next login.
	if settle {
		sleepToNextSecond()
	}
}

// Client returns an IMAP client connected over plaintext loopback and
// logged in to user's mailbox (through the master user, so it works even
// while the user is disabled). It is logged out on test cleanup.
func (d *Dovecot) Client(t testing.TB, user string) *imapclient.Client {
	t.Helper()
	c, err := d.dialMaster(user)
	if err != nil {
		t.Fatalf("dovecot: client for %s: %v", user, err)
	}
	t.Cleanup(func() {
		_ = c.Logout().Wait()
		_ = c.Close()
	})
	return c
}

// withClient runs f with a fresh master-user session for user.
func (d *Dovecot) withClient(t testing.TB, user string, f func(c *imapclient.Client) error) {
	t.Helper()
	c, err := d.dialMaster(user)
	if err != nil {
		t.Fatalf("dovecot: connect as %s: %v", user, err)
	}
	defer func() {
		_ = c.Logout().Wait()
		_ = c.Close()
	}()
	if err := f(c); err != nil {
		t.Fatalf("dovecot: %s: %v", user, err)
	}
}

func (d *Dovecot) dialMaster(user string) (*imapclient.Client, error) {
	// Dovecot delays every login from an IP for seconds after a failed one
	// from it. The code under test connects from 127.0.0.1; the helpers come
	// from 127.0.0.2 (also loopback on Linux) so they are never delayed by
	// a test's deliberate failures.
	c, err := imapclient.DialInsecure(d.Addr(), &imapclient.Options{
		Dialer: &net.Dialer{
			Timeout:   5 * time.Second,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)},
		},
	})
	if err != nil {
		return nil, err
	}
	if err := c.Login(user+"*"+d.masterUser, d.masterPass).Wait(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("master login: %w", err)
	}
	return c, nil
}

// Append stores raw in user's folder (creating the folder if needed) with
// the given flags and returns its UID.
func (d *Dovecot) Append(t testing.TB, user, folder string, raw []byte, flags ...imap.Flag) imap.UID {
	t.Helper()
	var uid imap.UID
	d.withClient(t, user, func(c *imapclient.Client) error {
		data, err := appendRaw(c, folder, raw, flags)
		var imapErr *imap.Error
		if errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeTryCreate {
			if err := c.Create(folder, nil).Wait(); err != nil {
				return fmt.Errorf("create %s: %w", folder, err)
			}
			data, err = appendRaw(c, folder, raw, flags)
		}
		if err != nil {
			return fmt.Errorf("append to %s: %w", folder, err)
		}
		uid = data.UID
		return nil
	})
	if uid == 0 {
		t.Fatalf("dovecot: append to %s: no APPENDUID", folder)
	}
	return uid
}

func appendRaw(c *imapclient.Client, folder string, raw []byte, flags []imap.Flag) (*imap.AppendData, error) {
	cmd := c.Append(folder, int64(len(raw)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write(raw); err != nil {
		_ = cmd.Close()
		return nil, err
	}
	if err := cmd.Close(); err != nil {
		return nil, err
	}
	return cmd.Wait()
}

// Flags returns the flags of message uid in user's folder, sorted, without
// \Recent. The
// folder is opened read-only so that looking does not change \Recent. It
// fails the test if the message does not exist.
func (d *Dovecot) Flags(t testing.TB, user, folder string, uid imap.UID) []imap.Flag {
	t.Helper()
	var flags []imap.Flag
	found := false
	d.withClient(t, user, func(c *imapclient.Client) error {
		if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return fmt.Errorf("examine %s: %w", folder, err)
		}
		msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			return fmt.Errorf("fetch flags of uid %d in %s: %w", uid, folder, err)
		}
		for _, m := range msgs {
			if m.UID != uid {
				continue
			}
			found = true
			for _, f := range m.Flags {
				// \Recent is per session and gone in IMAP4rev2: noise.
				if !strings.EqualFold(string(f), `\Recent`) {
					flags = append(flags, f)
				}
			}
		}
		return nil
	})
	if !found {
		t.Fatalf("dovecot: uid %d not found in %s/%s", uid, user, folder)
	}
	sort.Slice(flags, func(i, j int) bool { return flags[i] < flags[j] })
	return flags
}

// UIDs returns the UIDs of all messages in user's folder, ascending.
func (d *Dovecot) UIDs(t testing.TB, user, folder string) []imap.UID {
	t.Helper()
	var uids []imap.UID
	d.withClient(t, user, func(c *imapclient.Client) error {
		if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return fmt.Errorf("examine %s: %w", folder, err)
		}
		data, err := c.UIDSearch(&imap.SearchCriteria{}, nil).Wait()
		if err != nil {
			return fmt.Errorf("search %s: %w", folder, err)
		}
		uids = data.AllUIDs()
		return nil
	})
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	return uids
}

// UIDValidity returns the UIDVALIDITY of user's folder.
func (d *Dovecot) UIDValidity(t testing.TB, user, folder string) uint32 {
	t.Helper()
	var v uint32
	d.withClient(t, user, func(c *imapclient.Client) error {
		data, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return fmt.Errorf("examine %s: %w", folder, err)
		}
		v = data.UIDValidity
		return nil
	})
	return v
}

// RecreateMailbox deletes user's folder with its messages and creates it
// again empty, which gives it a new UIDVALIDITY: UIDs restart at 1. INBOX
// cannot be deleted over IMAP; use ResetUIDValidity for it.
func (d *Dovecot) RecreateMailbox(t testing.TB, user, folder string) {
	t.Helper()
	if strings.EqualFold(folder, "INBOX") {
		t.Fatalf("dovecot: RecreateMailbox cannot delete INBOX; use ResetUIDValidity")
	}
	old := d.UIDValidity(t, user, folder)
	// Dovecot derives UIDVALIDITY from the clock in seconds: a folder
	// recreated within the same second may get the same one, which no real
	// server may do. Try again in the next second until it differs.
	for d.UIDValidity(t, user, folder) == old {
		d.withClient(t, user, func(c *imapclient.Client) error {
			if err := c.Delete(folder).Wait(); err != nil {
				return fmt.Errorf("delete %s: %w", folder, err)
			}
			if err := c.Create(folder, nil).Wait(); err != nil {
				return fmt.Errorf("create %s: %w", folder, err)
			}
			return nil
		})
		if d.UIDValidity(t, user, folder) == old {
			sleepToNextSecond()
		}
	}
}

// sleepToNextSecond waits until the wall clock enters the next second.
func sleepToNextSecond() {
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
}

// DeliverMaildir drops messages straight into the maildir of user's folder
// (creating the folder over IMAP if needed), as a local delivery agent
// would: much faster than Append for loading thousands of mails. Dovecot
// assigns their UIDs, in order, when a session next looks at the folder.
func (d *Dovecot) DeliverMaildir(t testing.TB, user, folder string, raws ...[]byte) {
	t.Helper()
	dir := d.maildir(user, folder)
	if _, err := os.Stat(filepath.Join(dir, "new")); err != nil {
		d.withClient(t, user, func(c *imapclient.Client) error {
			if !strings.EqualFold(folder, "INBOX") {
				err := c.Create(folder, nil).Wait()
				var imapErr *imap.Error
				if err != nil && !(errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeAlreadyExists) {
					return fmt.Errorf("create %s: %w", folder, err)
				}
			}
			// The maildir appears on first access.
			if _, err := c.Select(folder, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
				return fmt.Errorf("examine %s: %w", folder, err)
			}
			return nil
		})
	}
	uid, gid := mailIDs()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, raw := range raws {
		d.deliverSeq++
		// Maildir names: unique, and sorted by delivery so UIDs follow order.
		name := fmt.Sprintf("%d.M%09dP%d.helpdesk-test", time.Now().Unix(), d.deliverSeq, os.Getpid())
		tmp := filepath.Join(dir, "tmp", name)
		if err := os.WriteFile(tmp, raw, 0o600); err != nil {
			t.Fatalf("dovecot: deliver: %v", err)
		}
		if uid >= 0 {
			if err := os.Chown(tmp, uid, gid); err != nil {
				t.Fatalf("dovecot: deliver: %v", err)
			}
		}
		if err := os.Rename(tmp, filepath.Join(dir, "new", name)); err != nil {
			t.Fatalf("dovecot: deliver: %v", err)
		}
	}
}

// maildir is the directory of user's folder (Maildir++ layout).
func (d *Dovecot) maildir(user, folder string) string {
	dir := filepath.Join(d.Dir, "mail", user, "Maildir")
	if !strings.EqualFold(folder, "INBOX") {
		dir = filepath.Join(dir, "."+strings.ReplaceAll(folder, "/", "."))
	}
	return dir
}

// ResetUIDValidity keeps the messages of user's folder but makes Dovecot
// renumber them under a new UIDVALIDITY, as after a server restore. It
// restarts the server (the maildir's UID list and indexes are removed while
// it is down), so connected clients are dropped.
func (d *Dovecot) ResetUIDValidity(t testing.TB, user, folder string) {
	t.Helper()
	maildir := d.maildir(user, folder)
	if _, err := os.Stat(maildir); err != nil {
		t.Fatalf("dovecot: reset uidvalidity of %s/%s: %v", user, folder, err)
	}
	old := d.UIDValidity(t, user, folder)
	for d.UIDValidity(t, user, folder) == old { // see RecreateMailbox
		d.Stop()
		for _, pattern := range []string{"dovecot-uidlist", "dovecot.index*", "dovecot.list.index*"} {
			matches, _ := filepath.Glob(filepath.Join(maildir, pattern))
			for _, m := range matches {
				if err := os.Remove(m); err != nil {
					t.Fatalf("dovecot: %v", err)
				}
			}
		}
		d.Start()
		if d.UIDValidity(t, user, folder) == old {
			sleepToNextSecond()
		}
	}
}

// LogTail returns the last lines of Dovecot's log, for diagnostics.
func (d *Dovecot) LogTail() string { return d.readLog() }

func (d *Dovecot) logTail(t testing.TB) {
	d.mu.Lock()
	out := d.output
	d.mu.Unlock()
	master := ""
	if out != nil {
		master = out.String()
	}
	t.Logf("dovecot (%s) output:\n%s\nlog:\n%s", d.Dir, master, d.readLog())
}

func (d *Dovecot) readLog() string {
	data, _ := os.ReadFile(filepath.Join(d.Dir, "dovecot.log"))
	const max = 8 << 10
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(data)
}

// writeConfig writes dovecot.conf for the current ports. Everything lives
// under d.Dir; instance_name is unique so that parallel instances (and
// doveadm) never confuse one another.
func (d *Dovecot) writeConfig() error {
	mailUser, mailGroup, internal, err := dovecotUsers()
	if err != nil {
		return err
	}
	dir := d.Dir
	var oauth2Mechs, oauth2Passdb, passwordMechs string
	if len(d.oauth2Mechs) > 0 {
		mechs := strings.Join(d.oauth2Mechs, " ")
		oauth2Mechs = " " + mechs
		// Only the OAuth 2.0 mechanisms reach this passdb, and it validates
		// their tokens against the introspection URL.
		oauth2Passdb = fmt.Sprintf("passdb {\n  driver = oauth2\n  mechanisms = %s\n  args = %s/dovecot-oauth2.conf.ext\n}\n", mechs, dir)
		// Otherwise a passwd-file would take a user's password as a valid
		// bearer token.
		passwordMechs = "  mechanisms = plain login\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by internal/mailtest for one test.
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
instance_name = helpdesk-test-%[2]s
protocols = imap
listen = 127.0.0.1
shutdown_clients = yes

ssl = yes
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem

disable_plaintext_auth = no
# A failed login answers at once instead of after 2 s (the per-IP penalty
# for later logins remains).
auth_failure_delay = 0
auth_mechanisms = plain login%[8]s
auth_master_user_separator = *
passdb {
  driver = passwd-file
  master = yes
  args = scheme=PLAIN %[1]s/master-passwd
%[10]s}
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/passwd
%[10]s}
%[9]suserdb {
  driver = static
  args = uid=%[3]s gid=%[4]s home=%[1]s/mail/%%u
}

mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
  mailbox Archive {
    auto = create
    special_use = \Archive
  }
}

service imap-login {
  inet_listener imap {
    port = %[5]d
  }
  inet_listener imaps {
    port = %[6]d
    ssl = yes
  }
%[7]s}
service anvil {
%[7]s}
`, dir, strings.ToLower(rand.Text()[:12]), mailUser, mailGroup, d.IMAPPort, d.IMAPSPort, internal.chroot,
		oauth2Mechs, oauth2Passdb, passwordMechs)
	b.WriteString(internal.global)
	return os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(b.String()), 0o644)
}

// oauth2PassdbConfig is dovecot-oauth2.conf.ext for an introspection
// endpoint: Dovecot POSTs "token=<token>" and expects {"active": true,
// "username": "<user>"}.
func oauth2PassdbConfig(introspectionURL string) []byte {
	return []byte(`# Generated by internal/mailtest for one test.
introspection_url = ` + introspectionURL + `
introspection_mode = post
# Without tokeninfo_url every token is introspected; active_attribute
# needs that anyway.
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
`)
}

type internalSettings struct {
	global string // extra top-level settings
	chroot string // extra lines in login/anvil services
}

// dovecotUsers returns the uid and gid for mail processes and the settings
// that let Dovecot run its internal processes. As root, Dovecot refuses uid 0
// for mail and uses its packaged dovecot/dovenull users; as another user
// everything runs as that user, without chroot.
func dovecotUsers() (mailUser, mailGroup string, s internalSettings, err error) {
	if os.Geteuid() == 0 {
		return "nobody", "nogroup", s, nil
	}
	u, err := user.Current()
	if err != nil {
		return "", "", s, fmt.Errorf("current user: %w", err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return "", "", s, fmt.Errorf("current group: %w", err)
	}
	s.global = fmt.Sprintf("default_internal_user = %[1]s\ndefault_internal_group = %[2]s\ndefault_login_user = %[1]s\n", u.Username, g.Name)
	s.chroot = "  chroot =\n"
	return u.Uid, u.Gid, s, nil
}

// mailIDs returns the uid and gid that own mail when running as root
// (nobody:nogroup), or -1, -1 when files may keep their owner.
func mailIDs() (uid, gid int) {
	if os.Geteuid() != 0 {
		return -1, -1
	}
	uid, gid = 65534, 65534 // Debian's nobody:nogroup, should lookup fail
	if u, err := user.Lookup("nobody"); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
	}
	if g, err := user.LookupGroup("nogroup"); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	}
	return uid, gid
}

// chownMail gives path to the mail uid when running as root.
func chownMail(path string) error {
	uid, gid := mailIDs()
	if uid < 0 {
		return nil
	}
	return filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// makeTraversable chmods dir and its parents up to the system temp
// directory 0755.
func makeTraversable(t testing.TB, dir string) {
	t.Helper()
	root := filepath.Clean(os.TempDir())
	for p := filepath.Clean(dir); strings.HasPrefix(p, root+string(filepath.Separator)); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatalf("dovecot: %v", err)
		}
	}
}

// freePort is a free loopback port for Dovecot, below the ephemeral range
// (port.go), so that a restarted Dovecot finds its ports still free.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := listenRestartable()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects the master's output written from exec's copying
// goroutine while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
