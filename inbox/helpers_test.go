package inbox_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/textproto"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"go.uber.org/goleak"

	"github.com/helpdesk/helpdesk/inbox"
	"github.com/helpdesk/helpdesk/internal/mailtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// memStore is an in-memory Handler and State that behaves as the ticket
// store is required to: it dedupes by Message-ID and, in one critical
// section, stores the mail, advances the checkpoint and records a pending
// flag. before, if set, runs first (outside the lock, so it may block) and
// can fail or quarantine the delivery.
type memStore struct {
	mu          sync.Mutex
	checkpoints map[string]inbox.Checkpoint
	pending     map[pendingKey]map[uint32]bool // UID → quarantined
	known       map[string]bool                // Message-IDs stored
	committed   []committed                    // every successful Handle, in order
	attempts    map[uint32]int                 // Handle calls per UID, failed ones included
	before      func(ctx context.Context, d inbox.Delivery) (inbox.Disposition, error)
}

type pendingKey struct {
	mailbox     string
	uidValidity uint32
}

type committed struct {
	inbox.Delivery
	MessageID string
	Duplicate bool
}

func newMemStore() *memStore {
	return &memStore{
		checkpoints: map[string]inbox.Checkpoint{},
		pending:     map[pendingKey]map[uint32]bool{},
		known:       map[string]bool{},
		attempts:    map[uint32]int{},
	}
}

func (s *memStore) Handle(ctx context.Context, d inbox.Delivery) (inbox.Disposition, error) {
	s.mu.Lock()
	s.attempts[d.UID]++
	before := s.before
	s.mu.Unlock()
	var disp inbox.Disposition
	if before != nil {
		var err error
		if disp, err = before(ctx, d); err != nil {
			return disp, err
		}
	}
	id := messageID(d.Raw)
	s.mu.Lock()
	defer s.mu.Unlock()
	dup := s.known[id]
	s.known[id] = true
	cp := s.checkpoints[d.Mailbox]
	if cp.UIDValidity != d.UIDValidity {
		cp = inbox.Checkpoint{UIDValidity: d.UIDValidity}
	}
	cp.LastUID = max(cp.LastUID, d.UID)
	s.checkpoints[d.Mailbox] = cp
	k := pendingKey{d.Mailbox, d.UIDValidity}
	if s.pending[k] == nil {
		s.pending[k] = map[uint32]bool{}
	}
	s.pending[k][d.UID] = disp.Quarantined
	s.committed = append(s.committed, committed{Delivery: d, MessageID: id, Duplicate: dup})
	return disp, nil
}

func (s *memStore) Checkpoint(mailbox string) (inbox.Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpoints[mailbox], nil
}

func (s *memStore) PendingFlags(mailbox string, uidValidity uint32) ([]inbox.Pending, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []inbox.Pending
	for u, q := range s.pending[pendingKey{mailbox, uidValidity}] {
		out = append(out, inbox.Pending{UID: u, Quarantined: q})
	}
	slices.SortFunc(out, func(a, b inbox.Pending) int { return cmp.Compare(a.UID, b.UID) })
	return out, nil
}

func (s *memStore) ClearPendingFlags(mailbox string, uidValidity uint32, uids []uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range uids {
		delete(s.pending[pendingKey{mailbox, uidValidity}], u)
	}
	return nil
}

func (s *memStore) setBefore(f func(ctx context.Context, d inbox.Delivery) (inbox.Disposition, error)) {
	s.mu.Lock()
	s.before = f
	s.mu.Unlock()
}

// commits returns a copy of the successful deliveries.
func (s *memStore) commits() []committed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.committed)
}

func (s *memStore) attemptsFor(uid uint32) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[uid]
}

// seed sets a checkpoint and pending flags as a previous run would have.
func (s *memStore) seed(mailbox string, cp inbox.Checkpoint, pending ...uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkpoints[mailbox] = cp
	k := pendingKey{mailbox, cp.UIDValidity}
	s.pending[k] = map[uint32]bool{}
	for _, u := range pending {
		s.pending[k][u] = false
	}
}

// seedQuarantined marks a seeded pending flag as a quarantined mail's.
func (s *memStore) seedQuarantined(mailbox string, uidValidity, uid uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[pendingKey{mailbox, uidValidity}][uid] = true
}

func commitUIDs(cs []committed) []uint32 {
	out := make([]uint32, len(cs))
	for i, c := range cs {
		out[i] = c.UID
	}
	return out
}

func messageID(raw []byte) string {
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
	return h.Get("Message-Id")
}

// testMail returns a small message with Message-ID <n@test>.
func testMail(n int) []byte {
	return fmt.Appendf(nil, "From: customer%[1]d@example.com\r\nTo: support@example.com\r\n"+
		"Subject: question %[1]d\r\nMessage-ID: <%[1]d@test>\r\n"+
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n\r\nHello %[1]d\r\n", n)
}

const password = "secret"

// config returns a Config for user on d over plaintext loopback, with a
// fast backoff and a poll interval long enough that only IDLE, Poke or a
// reconnect can explain a prompt delivery.
func config(d *mailtest.Dovecot, user string) inbox.Config {
	return inbox.Config{
		Name:         "mb-" + user,
		Host:         d.Host,
		Port:         d.IMAPPort,
		TLS:          inbox.TLSNone,
		Username:     user,
		Password:     password,
		PollInterval: time.Minute,
		IDLE:         true,
		FetchBatch:   2,
		MinBackoff:   10 * time.Millisecond,
		MaxBackoff:   200 * time.Millisecond,
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// running is a Mailbox.Run in the background.
type running struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// run starts mb.Run; it is stopped on cleanup at the latest.
func run(t *testing.T, mb *inbox.Mailbox) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- mb.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels Run and waits for it; Run must return nil.
func (r *running) stop() {
	r.t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(15 * time.Second):
			r.t.Fatal("Run did not return after cancel")
		}
		if r.err != nil {
			r.t.Errorf("Run returned %v after cancel, want nil", r.err)
		}
	})
}

// eventually waits up to timeout for cond. It is a liveness bound, not a
// timing assertion: the timeouts are far above the expected latency.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// prober reads flags from the server from any goroutine (the handler's
// included), where the t.Fatal helpers of mailtest must not be used.
type prober struct {
	mu sync.Mutex
	c  *imapclient.Client
}

func newProber(t *testing.T, d *mailtest.Dovecot, user string) *prober {
	c := d.Client(t, user)
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		t.Fatalf("examine INBOX: %v", err)
	}
	return &prober{c: c}
}

// seen reports whether uid is \Seen now.
func (p *prober) seen(uid uint32) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	msgs, err := p.c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{UID: true, Flags: true}).Collect()
	if err != nil {
		return false, err
	}
	for _, m := range msgs {
		if uint32(m.UID) == uid {
			return slices.Contains(m.Flags, imap.FlagSeen), nil
		}
	}
	return false, fmt.Errorf("uid %d not found", uid)
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool { return slices.Contains(flags, f) }
