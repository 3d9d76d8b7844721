package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpdesk/helpdesk/internal/mailtest"
)

const waitLong = 10 * time.Second // upper bound for anything to happen

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// sinkWorker is a Worker delivering to sink through a real SMTPSender with
// backoffs small enough for tests.
func sinkWorker(t testing.TB, sink *mailtest.SMTPSink, q *memQueue) *Worker {
	t.Helper()
	sender := NewSMTPSender(SMTPConfig{Host: sink.Host, Port: sink.Port, TLS: TLSNone, Timeout: 5 * time.Second})
	t.Cleanup(func() { _ = sender.Close() })
	return &Worker{
		Queue: q, Sender: sender, Log: testLogger(t),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
	}
}

func testRaw(n int) []byte {
	return []byte(fmt.Sprintf("From: <support@example.com>\r\nTo: <ann@example.org>\r\nSubject: test %d\r\nMessage-ID: <%d@helpdesk.example.com>\r\n\r\nbody %d\r\n.leading dot\r\n", n, n, n))
}

// oneItem sets up a sink that answers MAIL with code (0: normally), a
// queue holding one message, and a worker (not started) delivering there.
func oneItem(t *testing.T, code int, msg string) (*mailtest.SMTPSink, *memQueue, uint64, *Worker) {
	t.Helper()
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{})
	sink.FailWith(code, msg)
	q := newMemQueue()
	id := q.add("support@example.com", []string{"ann@example.org"}, testRaw(1))
	return sink, q, id, sinkWorker(t, sink, q)
}

func TestWorkerDelivers(t *testing.T) {
	t.Parallel()
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{})
	q := newMemQueue()
	raw, err := Compose(Envelope{
		From: Address{"Support", "support@example.com"}, To: []Address{{"Ann", "ann@example.org"}},
		Subject: "[Ticket#7] Hello", Text: "Hi\n.\nbye\n", MessageID: "t7.1@helpdesk.example.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := []uint64{
		q.add("support@example.com", []string{"ann@example.org"}, raw),
		q.add("support@example.com", []string{"bob@example.org", "carl@example.org"}, testRaw(2)),
		q.add("", []string{"dora@example.org"}, testRaw(3)),
	}
	w := sinkWorker(t, sink, q)
	startWorker(t, w, q)

	got := sink.WaitFor(t, 3, waitLong)
	// Stats count after the queue recorded; the worker's NextDue call
	// before it sleeps wakes waitUntil once more.
	q.waitUntil(t, "all sent and counted", waitLong, func(q *memQueue) bool {
		return q.state(ids[0]) == "sent" && q.state(ids[1]) == "sent" && q.state(ids[2]) == "sent" && w.Stats().Sent == 3
	})
	for i, id := range ids {
		it := q.get(id).Item
		// Oldest first, and the prepared bytes unchanged on the wire.
		if got[i].From != it.From || strings.Join(got[i].To, ",") != strings.Join(it.To, ",") {
			t.Errorf("message %d: envelope %q → %q, want %q → %q", i, got[i].From, got[i].To, it.From, it.To)
		}
		if !bytes.Equal(got[i].Data, it.Raw) {
			t.Errorf("message %d changed on the wire:\n got %q\nwant %q", i, got[i].Data, it.Raw)
		}
	}
	if s := w.Stats(); s.Sent != 3 || s.Retried != 0 || s.Dead != 0 {
		t.Errorf("Stats = %+v", s)
	}
	if n := sink.Connections(); n != 1 {
		t.Errorf("burst of 3 used %d connections, want 1", n)
	}
}

func TestWorkerRetriesTemporaryFailure(t *testing.T) {
	t.Parallel()
	sink, q, id, w := oneItem(t, 451, "greylisted")
	startWorker(t, w, q)

	q.waitUntil(t, "two failed attempts", waitLong, func(q *memQueue) bool { return q.get(id).Attempts >= 2 })
	e := q.get(id)
	if e.state != "pending" || !strings.Contains(e.LastError, "451") {
		t.Fatalf("after 451: state %s, last error %q", e.state, e.LastError)
	}
	sink.FailWith(0, "")
	q.waitUntil(t, "sent and counted", waitLong, func(q *memQueue) bool { return q.state(id) == "sent" && w.Stats().Sent == 1 })
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("sink got %d messages, want 1", n)
	}
	if s := w.Stats(); s.Retried < 2 || s.Sent != 1 || s.Dead != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestWorkerRetriesWhileRelayDown(t *testing.T) {
	t.Parallel()
	sink, q, id, w := oneItem(t, 0, "")
	sink.Stop()
	startWorker(t, w, q)

	q.waitUntil(t, "a failed attempt", waitLong, func(q *memQueue) bool { return q.get(id).Attempts >= 1 })
	if e := q.get(id); e.state != "pending" || !strings.Contains(e.LastError, "connect") {
		t.Fatalf("while down: state %s, last error %q", e.state, e.LastError)
	}
	sink.Start()
	q.waitUntil(t, "sent", waitLong, func(q *memQueue) bool { return q.state(id) == "sent" })
	sink.WaitFor(t, 1, waitLong)
}

func TestWorkerReconnectsAfterRelayRestart(t *testing.T) {
	t.Parallel()
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{})
	q := newMemQueue()
	w := sinkWorker(t, sink, q)
	startWorker(t, w, q)

	a := q.add("support@example.com", []string{"ann@example.org"}, testRaw(1))
	w.Kick()
	q.waitUntil(t, "first sent", waitLong, func(q *memQueue) bool { return q.state(a) == "sent" })
	// The sender keeps the connection for the next message; the restart
	// kills it, and the next send must notice and reconnect.
	sink.Stop()
	sink.Start()
	b := q.add("support@example.com", []string{"ann@example.org"}, testRaw(2))
	w.Kick()
	q.waitUntil(t, "second sent", waitLong, func(q *memQueue) bool { return q.state(b) == "sent" })
	if e := q.get(b); e.Attempts != 0 {
		t.Errorf("a dead pooled connection cost %d failed attempts (%s), want 0", e.Attempts, e.LastError)
	}
}

func TestWorkerPermanentFailureIsDead(t *testing.T) {
	t.Parallel()
	sink, q, id, w := oneItem(t, 550, "mailbox unavailable")
	type dead struct {
		it  Item
		err error
	}
	deadCh := make(chan dead, 1)
	w.OnDead = func(it Item, err error) { deadCh <- dead{it, err} }
	startWorker(t, w, q)

	var d dead
	select {
	case d = <-deadCh:
	case <-time.After(waitLong):
		t.Fatal("OnDead not called")
	}
	var se *SendError
	if !errors.As(d.err, &se) || se.Code != 550 || !se.Permanent {
		t.Fatalf("OnDead error = %v, want a permanent SendError with code 550", d.err)
	}
	if d.it.ID != id || d.it.Attempts != 1 || !strings.Contains(d.it.LastError, "550") {
		t.Errorf("OnDead item = %+v", d.it)
	}
	if e := q.get(id); e.state != "dead" || e.Attempts != 1 || e.retries != 0 {
		t.Errorf("queue entry: state %s, attempts %d, retries %d", e.state, e.Attempts, e.retries)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Errorf("sink got %d messages", n)
	}
	if s := w.Stats(); s != (Stats{Dead: 1}) {
		t.Errorf("Stats = %+v", s)
	}
}

func TestWorkerGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	_, q, id, w := oneItem(t, 421, "overloaded")
	w.MaxAttempts = 3
	deadCh := make(chan Item, 1)
	w.OnDead = func(it Item, _ error) { deadCh <- it }
	startWorker(t, w, q)

	var deadItem Item
	select {
	case deadItem = <-deadCh: // called after Dead was recorded
	case <-time.After(waitLong):
		t.Fatal("OnDead not called")
	}
	if deadItem.ID != id || deadItem.Attempts != 3 {
		t.Errorf("OnDead got %+v", deadItem)
	}
	if e := q.get(id); e.state != "dead" || e.Attempts != 3 || e.retries != 2 || !strings.Contains(e.LastError, "421") {
		t.Errorf("entry: state %s, attempts %d, retries %d, last error %q", e.state, e.Attempts, e.retries, e.LastError)
	}
}

func TestWorkerFailingItemDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{})
	sink.RejectRcpt("gone@example.org", 550, "no such user")
	sink.RejectRcpt("full@example.org", 452, "mailbox full")
	q := newMemQueue()
	gone := q.add("support@example.com", []string{"gone@example.org"}, testRaw(1))
	full := q.add("support@example.com", []string{"full@example.org"}, testRaw(2))
	mixed := q.add("support@example.com", []string{"ann@example.org", "gone@example.org"}, testRaw(3))
	good := q.add("support@example.com", []string{"ann@example.org"}, testRaw(4))
	w := sinkWorker(t, sink, q)
	w.MaxBackoff = time.Hour // keep "full" waiting once it failed
	w.MinBackoff = time.Hour
	startWorker(t, w, q)

	q.waitUntil(t, "good sent, gone and mixed dead, full retried", waitLong, func(q *memQueue) bool {
		return q.state(good) == "sent" && q.state(gone) == "dead" && q.state(mixed) == "dead" && q.get(full).Attempts == 1
	})
	got := sink.Messages()
	if len(got) != 1 || !bytes.Equal(got[0].Data, testRaw(4)) {
		t.Errorf("sink got %d messages, want only the good one", len(got))
	}
	// All or nothing: the accepted recipient of "mixed" got nothing either.
	if e := q.get(mixed); !strings.Contains(e.LastError, "gone@example.org") {
		t.Errorf("mixed: last error %q does not name the refused recipient", e.LastError)
	}
}

// fakeSender calls fn, counting sends per message.
type fakeSender struct {
	mu    sync.Mutex
	sends map[string]int
	fn    func(ctx context.Context, raw []byte) error
}

func (f *fakeSender) Send(ctx context.Context, _ string, _ []string, raw []byte) error {
	f.mu.Lock()
	if f.sends == nil {
		f.sends = make(map[string]int)
	}
	f.sends[string(raw)]++
	f.mu.Unlock()
	if f.fn != nil {
		return f.fn(ctx, raw)
	}
	return nil
}

func (f *fakeSender) count(raw []byte) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sends[string(raw)]
}

func TestWorkerNeverResendsWhenRecordingSentFails(t *testing.T) {
	t.Parallel()
	q := newMemQueue()
	q.failSent = 3
	id := q.add("a@example.com", []string{"b@example.org"}, testRaw(1))
	s := &fakeSender{}
	w := &Worker{Queue: q, Sender: s, Log: testLogger(t), MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	startWorker(t, w, q)

	q.waitUntil(t, "sent recorded", waitLong, func(q *memQueue) bool { return q.state(id) == "sent" })
	if n := s.count(testRaw(1)); n != 1 {
		t.Errorf("sent %d times, want 1", n)
	}
	q.mu.Lock()
	calls := q.sentCalls
	q.mu.Unlock()
	if calls != 4 {
		t.Errorf("Sent called %d times, want 4 (3 failures + 1)", calls)
	}
	if e := q.get(id); e.Attempts != 0 {
		t.Errorf("a bookkeeping failure counted as %d delivery attempts", e.Attempts)
	}
}

func TestWorkerSurvivesQueueAndSenderPanics(t *testing.T) {
	t.Parallel()
	q := newMemQueue()
	q.failDue = 2
	bad := q.add("a@example.com", []string{"b@example.org"}, []byte("bad"))
	good := q.add("a@example.com", []string{"b@example.org"}, []byte("good"))
	s := &fakeSender{fn: func(_ context.Context, raw []byte) error {
		if string(raw) == "bad" {
			panic("sender bug")
		}
		return nil
	}}
	w := &Worker{Queue: q, Sender: s, Log: testLogger(t), MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxAttempts: 2}
	startWorker(t, w, q)

	q.waitUntil(t, "good sent, bad dead", waitLong, func(q *memQueue) bool {
		return q.state(good) == "sent" && q.state(bad) == "dead"
	})
	if e := q.get(bad); !strings.Contains(e.LastError, "panic") || e.Attempts != 2 {
		t.Errorf("bad: attempts %d, last error %q", e.Attempts, e.LastError)
	}
}

func TestWorkerKickWakesIdleRun(t *testing.T) {
	t.Parallel()
	q := newMemQueue()
	s := &fakeSender{}
	w := &Worker{Queue: q, Sender: s, Log: testLogger(t)}
	w.Kick() // before Run: must not block or panic
	startWorker(t, w, q)
	// Let Run go idle: with nothing pending it sleeps for maxSleep (a
	// minute), longer than waitLong, so only the Kick can get the item out
	// in time. The early Kick costs one extra round, hence two NextDue
	// calls before the long sleep.
	q.waitUntil(t, "idle", waitLong, func(q *memQueue) bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.nextCalls >= 2
	})
	id := q.add("a@example.com", []string{"b@example.org"}, testRaw(1))
	w.Kick()
	w.Kick() // coalesces, never blocks
	q.waitUntil(t, "sent after Kick", waitLong, func(q *memQueue) bool { return q.state(id) == "sent" })
}

func TestWorkerCancelFinishesInFlightSend(t *testing.T) {
	t.Parallel()
	q := newMemQueue()
	first := q.add("a@example.com", []string{"b@example.org"}, testRaw(1))
	second := q.add("a@example.com", []string{"b@example.org"}, testRaw(2))
	started, release := make(chan struct{}), make(chan struct{})
	var sendCtxErr error
	s := &fakeSender{fn: func(ctx context.Context, _ []byte) error {
		close(started)
		<-release
		sendCtxErr = ctx.Err()
		return nil
	}}
	w := &Worker{Queue: q, Sender: s, Log: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	<-started
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a send was in flight", err)
	default:
	}
	close(release)
	waitReturn(t, done)
	if sendCtxErr != nil {
		t.Errorf("the in-flight send saw its context cancelled: %v", sendCtxErr)
	}
	if q.state(first) != "sent" {
		t.Errorf("in-flight item: state %s, want sent", q.state(first))
	}
	if q.state(second) != "pending" || s.count(testRaw(2)) != 0 {
		t.Error("a new send started after cancel")
	}
	q.checkUse(t)
}

// waitReturn waits for Run's result on done and fails unless it is nil.
func waitReturn(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Run did not return after cancel")
	}
}

func TestWorkerCancelWhileIdle(t *testing.T) {
	t.Parallel()
	q := newMemQueue()
	w := &Worker{Queue: q, Sender: &fakeSender{}, Log: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	cancel()
	waitReturn(t, done)
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	w := &Worker{MinBackoff: time.Second, MaxBackoff: 10 * time.Second}
	for attempts, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 60: 10 * time.Second} {
		var seen []time.Duration
		for range 200 {
			d := w.backoff(attempts)
			if d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempts, d, want/2, want)
			}
			seen = append(seen, d)
		}
		if allSame(seen) {
			t.Errorf("backoff(%d) has no jitter: always %v", attempts, seen[0])
		}
	}
	def := &Worker{}
	if d := def.backoff(1); d < DefaultMinBackoff/2 || d > DefaultMinBackoff {
		t.Errorf("default first backoff %v", d)
	}
	if d := def.backoff(1000); d < DefaultMaxBackoff/2 || d > DefaultMaxBackoff {
		t.Errorf("default capped backoff %v", d)
	}
	huge := &Worker{MinBackoff: time.Second, MaxBackoff: time.Duration(1<<63 - 1)}
	if d := huge.backoff(100); d <= 0 {
		t.Errorf("backoff overflowed to %v", d)
	}
}

func allSame(ds []time.Duration) bool {
	for _, d := range ds[1:] {
		if d != ds[0] {
			return false
		}
	}
	return true
}

// batchQueue is a memQueue that records deliveries in batches and can hold
// a batch back, like a slow commit.
type batchQueue struct {
	*memQueue
	hold    chan struct{} // SentBatch waits for it to close
	batches int
}

func (q *batchQueue) SentBatch(sent []Delivered) error {
	<-q.hold
	q.mu.Lock()
	q.batches++
	q.mu.Unlock()
	for _, d := range sent {
		if err := q.Sent(d.ID, d.At); err != nil {
			return err
		}
	}
	return nil
}

func TestWorkerSendsOnWhileRecordingAndNeverTwice(t *testing.T) {
	t.Parallel()
	q := &batchQueue{memQueue: newMemQueue(), hold: make(chan struct{})}
	var ids []uint64
	for i := range 20 {
		ids = append(ids, q.add("a@example.com", []string{"b@example.org"}, testRaw(i)))
	}
	allSent := make(chan struct{})
	s := &fakeSender{}
	s.fn = func(context.Context, []byte) error {
		s.mu.Lock()
		n := len(s.sends)
		s.mu.Unlock()
		if n == len(ids) {
			close(allSent)
		}
		return nil
	}
	w := &Worker{Queue: q, Sender: s, Log: testLogger(t), MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	startWorker(t, w, q.memQueue)

	// Nothing is recorded yet: the worker must send each item once, skip
	// it in the rounds that follow, and then wait for the recording.
	select {
	case <-allSent:
	case <-time.After(waitLong):
		t.Fatal("the worker stopped sending while a recording was held back")
	}
	for range 3 {
		w.Kick()
	}
	close(q.hold)
	q.waitUntil(t, "all recorded", waitLong, func(q *memQueue) bool {
		for _, id := range ids {
			if q.state(id) != "sent" {
				return false
			}
		}
		return true
	})
	for i := range ids {
		if n := s.count(testRaw(i)); n != 1 {
			t.Errorf("item %d sent %d times", i, n)
		}
	}
	q.mu.Lock()
	batches := q.batches
	q.mu.Unlock()
	if batches == 0 || batches >= len(ids) {
		t.Errorf("%d SentBatch calls for %d deliveries: not batched", batches, len(ids))
	}
	if st := w.Stats(); st.Sent != uint64(len(ids)) {
		t.Errorf("stats %+v", st)
	}
}

// cursorQueue is a batchQueue that also lists due items after a cursor.
// Every item here is due at the zero time, so Due's order is ID order.
type cursorQueue struct {
	*batchQueue
	afterCalls int
}

func (q *cursorQueue) DueAfter(now time.Time, after Item, limit int) ([]Item, error) {
	items, _, err := q.Due(now, 1<<30, nil)
	q.mu.Lock()
	q.afterCalls++
	q.mu.Unlock()
	var out []Item
	for _, it := range items {
		if it.ID > after.ID && len(out) < limit {
			out = append(out, it)
		}
	}
	return out, err
}

// sendAllWhileHeld queues n mails in bq, starts a worker on q (bq, or a
// queue built on it) and waits until it has sent them all while bq holds
// the recording back. release lets the recording go on; it is also run at
// the test's end, before the worker is stopped, so that a failure here
// does not leave the worker's shutdown waiting for the recording.
func sendAllWhileHeld(t *testing.T, q Queue, bq *batchQueue, n int) (w *Worker, s *fakeSender, release func()) {
	t.Helper()
	for i := range n {
		bq.add("a@example.com", []string{"b@example.org"}, testRaw(i))
	}
	allSent := make(chan struct{})
	s = &fakeSender{}
	s.fn = func(context.Context, []byte) error {
		s.mu.Lock()
		done := len(s.sends) == n
		s.mu.Unlock()
		if done {
			close(allSent)
		}
		return nil
	}
	w = &Worker{Queue: q, Sender: s, Log: slog.New(slog.DiscardHandler), MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	startWorker(t, w, bq.memQueue)
	var once sync.Once
	release = func() { once.Do(func() { close(bq.hold) }) }
	t.Cleanup(release)
	select {
	case <-allSent:
	case <-time.After(waitLong):
		t.Fatal("not everything was sent while the recording was held back")
	}
	return w, s, release
}

// recordAllSentOnce releases the recording held by sendAllWhileHeld and
// checks that all n mails get recorded, each sent exactly once.
func recordAllSentOnce(t *testing.T, release func(), q *memQueue, s *fakeSender, n int) {
	t.Helper()
	release()
	q.waitUntil(t, "all recorded", waitLong, func(q *memQueue) bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.sentCount == n
	})
	for i := range n {
		if c := s.count(testRaw(i)); c != 1 {
			t.Errorf("item %d sent %d times", i, c)
		}
	}
}

func TestWorkerReadsOnAfterItsCursor(t *testing.T) {
	t.Parallel()
	q := &cursorQueue{batchQueue: &batchQueue{memQueue: newMemQueue(), hold: make(chan struct{})}}
	n := 3*dueBatch + 7
	_, s, release := sendAllWhileHeld(t, q, q.batchQueue, n)
	recordAllSentOnce(t, release, q.memQueue, s, n)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.afterCalls == 0 {
		t.Error("DueAfter never used")
	}
}

func TestWorkerSkipsWhatItIsRecording(t *testing.T) {
	t.Parallel()
	q := &batchQueue{memQueue: newMemQueue(), hold: make(chan struct{})}
	n := dueBatch + 30
	w, s, release := sendAllWhileHeld(t, q, q, n)
	// New rounds while nothing is recorded: each lists nothing and waits
	// for the recording instead of spinning.
	for range 5 {
		w.Kick()
		time.Sleep(5 * time.Millisecond)
	}
	q.mu.Lock()
	calls := q.dueCalls
	q.mu.Unlock()
	recordAllSentOnce(t, release, q.memQueue, s, n)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.listed != n {
		t.Errorf("the queue handed out %d items for %d mails: items being recorded were read again", q.listed, n)
	}
	if calls > 20 {
		t.Errorf("%d Due calls while the recording was held back: the worker spins", calls)
	}
}

// panickyQueue panics in its first Due.
type panickyQueue struct {
	*memQueue
	panicked bool
}

func (q *panickyQueue) Due(now time.Time, limit int, skip func(id uint64) bool) ([]Item, int, error) {
	q.mu.Lock()
	first := !q.panicked
	q.panicked = true
	q.mu.Unlock()
	if first {
		panic("queue bug")
	}
	return q.memQueue.Due(now, limit, skip)
}

// A panic in the queue is a queue error: logged, backed off, and the
// worker goes on (it used to end Run, and with it all delivery).
func TestWorkerSurvivesPanicInQueue(t *testing.T) {
	t.Parallel()
	q := &panickyQueue{memQueue: newMemQueue()}
	id := q.add("a@example.com", []string{"b@example.org"}, testRaw(1))
	w := &Worker{Queue: q, Sender: &fakeSender{}, Log: testLogger(t), MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
	startWorker(t, w, q.memQueue)
	q.waitUntil(t, "sent after the panic", waitLong, func(q *memQueue) bool { return q.state(id) == "sent" })
}
