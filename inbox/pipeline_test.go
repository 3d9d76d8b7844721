package inbox_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/helpdesk/helpdesk/inbox"
	"github.com/helpdesk/helpdesk/internal/mailtest"
)

// batchStore is a memStore that also takes mail in groups, as the ticket
// engine does: in order, stopping at the first failure, the mails before
// it committed.
type batchStore struct {
	*memStore
	mu     sync.Mutex
	groups []int // sizes of the HandleBatch calls
	// first, if set, runs at the start of the first HandleBatch call.
	first func()
}

func newBatchStore() *batchStore { return &batchStore{memStore: newMemStore()} }

func (b *batchStore) HandleBatch(ctx context.Context, ds []inbox.Delivery) ([]inbox.Disposition, error) {
	b.mu.Lock()
	b.groups = append(b.groups, len(ds))
	first := b.first
	b.first = nil
	b.mu.Unlock()
	if first != nil {
		first()
	}
	var out []inbox.Disposition
	for _, d := range ds {
		disp, err := b.Handle(ctx, d)
		if err != nil {
			return out, err
		}
		out = append(out, disp)
	}
	return out, nil
}

func (b *batchStore) groupSizes() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.groups)
}

var _ inbox.BatchHandler = (*batchStore)(nil)

func appendMails(t *testing.T, d *mailtest.Dovecot, user string, n int) []uint32 {
	var uids []uint32
	for i := 1; i <= n; i++ {
		uids = append(uids, uint32(d.Append(t, user, "INBOX", testMail(i))))
	}
	return uids
}

// TestPipelineGroupsInOrderAndFlagsAfterCommit: a BatchHandler gets the
// mail in UID order, in groups of what was read while it worked, every
// mail still unread when handed over and flagged once committed.
func TestPipelineGroupsInOrderAndFlagsAfterCommit(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	uids := appendMails(t, d, "support", 12)
	probe := newProber(t, d, "support")

	st := newBatchStore()
	st.setBefore(func(ctx context.Context, dl inbox.Delivery) (inbox.Disposition, error) {
		if seen, err := probe.seen(dl.UID); err != nil || seen {
			t.Errorf("uid %d at Handle: seen=%v err=%v, want unseen", dl.UID, seen, err)
		}
		return inbox.Disposition{Quarantined: dl.UID == uids[5]}, nil
	})
	cfg := config(d, "support")
	cfg.FetchBatch = 3 // several FETCH commands in flight
	mb := inbox.New(cfg, st, st, testLogger(t))
	// The first group waits until more mail has been read behind it, so
	// the next one is a real group.
	st.first = func() {
		deadline := time.Now().Add(10 * time.Second)
		for mb.Stats().Fetched < 8 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	r := run(t, mb)
	eventually(t, 10*time.Second, "12 mails flagged", func() bool { return mb.Stats().Flagged == 12 })
	r.stop()

	if got := commitUIDs(st.commits()); !slices.Equal(got, uids) {
		t.Errorf("handled UIDs = %v, want %v", got, uids)
	}
	if sizes := st.groupSizes(); !slices.ContainsFunc(sizes, func(n int) bool { return n > 1 }) {
		t.Errorf("group sizes %v: never more than one mail per HandleBatch", sizes)
	}
	for _, uid := range uids {
		flags := d.Flags(t, "support", "INBOX", imap.UID(uid))
		if !hasFlag(flags, imap.FlagSeen) {
			t.Errorf("uid %d not \\Seen: %v", uid, flags)
		}
		if want := uid == uids[5]; hasFlag(flags, inbox.QuarantineKeyword) != want {
			t.Errorf("uid %d: flags %v, quarantine keyword wanted: %v", uid, flags, want)
		}
	}
	validity := d.UIDValidity(t, "support", "INBOX")
	if p, _ := st.PendingFlags("mb-support", validity); len(p) != 0 {
		t.Errorf("pending flags left: %v", p)
	}
	if s := mb.Stats(); s.Fetched != 12 || s.Handled != 12 || s.Quarantined != 1 || s.Errors != 0 {
		t.Errorf("stats = %+v", s)
	}
}

// TestPipelineHandlerErrorRetriesSameUID: a failure in the middle of a
// group commits the mails before it, flags only those, and hands the
// failed mail over again before any later one.
func TestPipelineHandlerErrorRetriesSameUID(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	uids := appendMails(t, d, "support", 6)
	probe := newProber(t, d, "support")
	bad := uids[3]

	st := newBatchStore()
	const failures = 2
	st.setBefore(func(ctx context.Context, dl inbox.Delivery) (inbox.Disposition, error) {
		if dl.UID != bad {
			return inbox.Disposition{}, nil
		}
		attempt := st.attemptsFor(bad)
		if attempt > 1 {
			before, err1 := probe.seen(uids[2])
			this, err2 := probe.seen(bad)
			if err1 != nil || err2 != nil || !before || this || st.attemptsFor(uids[4]) != 0 {
				t.Errorf("attempt %d: previous seen=%v (%v), this seen=%v (%v), next attempts %d; want true, false, 0",
					attempt, before, err1, this, err2, st.attemptsFor(uids[4]))
			}
		}
		if attempt <= failures {
			return inbox.Disposition{}, errors.New("disk full")
		}
		return inbox.Disposition{}, nil
	})
	cfg := config(d, "support")
	cfg.FetchBatch = 10
	mb := inbox.New(cfg, st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "6 mails flagged", func() bool { return mb.Stats().Flagged == 6 })
	r.stop()

	if got := commitUIDs(st.commits()); !slices.Equal(got, uids) {
		t.Errorf("committed UIDs = %v, want %v", got, uids)
	}
	if n := st.attemptsFor(bad); n != failures+1 {
		t.Errorf("uid %d handed over %d times, want %d", bad, n, failures+1)
	}
	for _, uid := range uids {
		if uid != bad && st.attemptsFor(uid) != 1 {
			t.Errorf("uid %d handed over %d times, want once", uid, st.attemptsFor(uid))
		}
	}
	if s := mb.Stats(); s.Errors != failures {
		t.Errorf("stats = %+v, want %d errors", s, failures)
	}
}

// TestPipelineMoveTo: with MoveTo, handled mail leaves INBOX, read.
func TestPipelineMoveTo(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	appendMails(t, d, "support", 7)
	st := newBatchStore()
	cfg := config(d, "support")
	cfg.FetchBatch = 3
	cfg.MoveTo = "Archive"
	mb := inbox.New(cfg, st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "7 mails moved", func() bool { return mb.Stats().Flagged == 7 })
	r.stop()
	if got := d.UIDs(t, "support", "INBOX"); len(got) != 0 {
		t.Errorf("INBOX still holds %v", got)
	}
	moved := d.UIDs(t, "support", "Archive")
	if len(moved) != 7 {
		t.Fatalf("Archive holds %v, want 7 mails", moved)
	}
	for _, uid := range moved {
		if !hasFlag(d.Flags(t, "support", "Archive", uid), imap.FlagSeen) {
			t.Errorf("moved uid %d not \\Seen", uid)
		}
	}
}

// TestPipelinePanicIsRetried: a panic in HandleBatch is an error like any
// other, and nothing of the group is flagged.
func TestPipelinePanicIsRetried(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	uids := appendMails(t, d, "support", 2)
	st := newBatchStore()
	st.first = func() { panic("boom") }
	mb := inbox.New(config(d, "support"), st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "mails flagged", func() bool { return mb.Stats().Flagged == 2 })
	r.stop()
	if s := mb.Stats(); s.Panics != 1 {
		t.Errorf("panics %d, want 1", s.Panics)
	}
	if got := commitUIDs(st.commits()); !slices.Equal(got, uids) {
		t.Errorf("committed %v, want %v once each", got, uids)
	}
}

// preparingStore is a batchStore that prepares each mail as it is read.
type preparingStore struct {
	*batchStore
	prepared sync.Map // uid → true
	mismatch atomic.Int32
}

func (p *preparingStore) Prepare(d inbox.Delivery) any {
	p.prepared.Store(d.UID, true)
	return messageID(d.Raw)
}

func (p *preparingStore) HandleBatch(ctx context.Context, ds []inbox.Delivery) ([]inbox.Disposition, error) {
	for _, d := range ds {
		if d.Prepared != messageID(d.Raw) {
			p.mismatch.Add(1)
		}
	}
	return p.batchStore.HandleBatch(ctx, ds)
}

// TestPipelinePreparesEveryMailBeforeItsGroup: with a Preparer, every mail
// reaches HandleBatch with its own preparation.
func TestPipelinePreparesEveryMailBeforeItsGroup(t *testing.T) {
	t.Parallel()
	d := mailtest.StartDovecot(t, map[string]string{"support": password})
	uids := appendMails(t, d, "support", 9)
	st := &preparingStore{batchStore: newBatchStore()}
	cfg := config(d, "support")
	cfg.FetchBatch = 4
	mb := inbox.New(cfg, st, st, testLogger(t))
	r := run(t, mb)
	eventually(t, 10*time.Second, "9 mails flagged", func() bool { return mb.Stats().Flagged == 9 })
	r.stop()
	if got := commitUIDs(st.commits()); !slices.Equal(got, uids) {
		t.Errorf("handled UIDs = %v, want %v", got, uids)
	}
	for _, uid := range uids {
		if _, ok := st.prepared.Load(uid); !ok {
			t.Errorf("uid %d never prepared", uid)
		}
	}
	if n := st.mismatch.Load(); n != 0 {
		t.Errorf("%d mails reached HandleBatch without their own preparation", n)
	}
}
