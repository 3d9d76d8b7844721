package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/helpdesk/helpdesk/config"
	"github.com/helpdesk/helpdesk/daemon"
	"github.com/helpdesk/helpdesk/internal/mailtest"
	"github.com/helpdesk/helpdesk/outbox"
	"github.com/helpdesk/helpdesk/store"
)

// rigConfig is what a helpdesk configuration for the harness needs.
type rigConfig struct {
	Dir      string // database and config file go here
	IMAPPort int    // implicit TLS
	User     string // mailbox login, password "secret"
	SMTPPort int
	// PollInterval also bounds one IDLE; the production default is 30s.
	PollInterval time.Duration
	MaxMessage   string // limits.max_message_bytes
}

// writeConfig writes config.yaml and returns its path. The same file
// serves the in-process daemon (through config.Load, so every default
// applies) and the real binary.
func writeConfig(tb testing.TB, rc rigConfig) string {
	tb.Helper()
	if rc.PollInterval == 0 {
		rc.PollInterval = 30 * time.Second
	}
	if rc.MaxMessage == "" {
		rc.MaxMessage = "25MiB"
	}
	yaml := fmt.Sprintf(`database: %s
http: {listen: ""}
log: {level: warn}
ticket: {domain: helpdesk.example.com}
smtp: {host: 127.0.0.1, port: %d, tls: none, timeout: 10s}
mailboxes:
  - name: support
    address: support@example.com
    imap: {host: 127.0.0.1, port: %d, tls: tls, username: %s, password: secret}
    poll_interval: %s
    idle: true
autoreply: {max_per_sender: 1000000, global_max_per_hour: 100000000}
outbox: {min_backoff: 100ms, max_backoff: 1s}
limits: {max_message_bytes: %s}
`, filepath.Join(rc.Dir, "helpdesk.db"), rc.SMTPPort, rc.IMAPPort, rc.User, rc.PollInterval, rc.MaxMessage)
	path := filepath.Join(rc.Dir, "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// startDaemon runs helpdesk in this process with the config at path.
func startDaemon(tb testing.TB, path string, dove *mailtest.Dovecot) (*daemon.Daemon, func()) {
	tb.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	// The daemon logs as `helpdesk serve` does by default (text, info: a
	// line per mail stored and per mail sent), into a file beside its
	// database, so that the figures include the cost of its log.
	logPath, level := filepath.Join(filepath.Dir(path), "daemon.log"), slog.LevelInfo
	if p := os.Getenv("BENCH_DAEMON_LOG"); p != "" {
		// Diagnostics: the in-process daemon's log, at debug level.
		logPath, level = p, slog.LevelDebug
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: level}))
	d, err := daemon.Open(daemon.Options{Config: cfg, Log: log, RootCAs: dove.Cert.Pool})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	return d, func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("daemon: %v", err)
		}
		if err := d.DB().Check(); err != nil {
			tb.Errorf("database after the run: %v", err)
		}
		if err := d.Close(); err != nil {
			tb.Errorf("close database: %v", err)
		}
		if err := f.Close(); err != nil {
			tb.Errorf("daemon log: %v", err)
		}
		// A run that logged an error measured something else than the
		// daemon at work.
		if b, err := os.ReadFile(logPath); err == nil && bytes.Contains(b, []byte("level=ERROR")) {
			tb.Errorf("the daemon logged errors (%s)", logPath)
		}
	}
}

// runDir makes a directory for one run's database and returns it with
// the function that removes it when the run ends, not with the harness:
// kept, five ingest runs' files (1.5 GB) stayed in the page cache, and
// from about the fourth run on the kernel time of bbolt's pwrite grew
// sevenfold (CPU profiles of run 1 and run 5) and the ingest rate fell by
// a quarter, while the baseline, which writes nothing, did not.
func runDir(tb testing.TB) (string, func()) {
	tb.Helper()
	dir, err := os.MkdirTemp("", "helpdesk-bench")
	if err != nil {
		tb.Fatal(err)
	}
	return dir, func() { os.RemoveAll(dir) }
}

// profileTo starts a CPU profile into dir/name.pprof when dir is set.
func profileTo(tb testing.TB, dir, name string) func() {
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		tb.Logf("cpu profile %s not taken: %v", name, err)
		return func() {}
	}
	stop := make(chan struct{})
	go func() {
		// A heap profile in the middle of the run: what was live at the
		// last collection. No GC is forced, which would disturb the rate
		// being measured.
		select {
		case <-time.After(time.Second):
		case <-stop:
			return
		}
		if h, err := os.Create(filepath.Join(dir, name+".heap.pprof")); err == nil {
			_ = pprof.WriteHeapProfile(h)
			h.Close()
		}
	}()
	stopTrace := func() {}
	if os.Getenv("BENCH_TRACE") != "" {
		// Diagnostics: an execution trace (go tool trace -pprof=syscall,
		// sched …) shows the waits a CPU profile cannot.
		if t, err := os.Create(filepath.Join(dir, name+".trace")); err == nil && trace.Start(t) == nil {
			stopTrace = func() { trace.Stop(); t.Close() }
		}
	}
	return func() {
		close(stop)
		stopTrace()
		pprof.StopCPUProfile()
		f.Close()
	}
}

// ingestRun starts helpdesk on a mailbox holding n mails (UIDs 1..n) and
// returns the time until all n are committed (the checkpoint is at the
// last UID) and none is left unflagged on the server.
func ingestRun(tb testing.TB, dove *mailtest.Dovecot, sink *mailtest.SMTPSink, user string, n int, profileDir string) time.Duration {
	tb.Helper()
	markUnseen(tb, dove, user)
	watch := watcher(tb, dove, user)
	defer watch.Close()
	dir, remove := runDir(tb)
	defer remove()
	path := writeConfig(tb, rigConfig{Dir: dir, IMAPPort: dove.IMAPSPort, User: user, SMTPPort: sink.Port})
	stopProfile := profileTo(tb, profileDir, "ingest")
	start := time.Now()
	d, stop := startDaemon(tb, path, dove)
	deadline := start.Add(20 * time.Minute)
	// Cheap read transactions until the checkpoint reaches the end, then
	// STATUS until the last flags are on the server.
	for {
		cp, err := d.DB().MailboxCheckpoint("support")
		if err != nil {
			tb.Fatal(err)
		}
		if cp.LastUID >= uint32(n) {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("ingest: only %d of %d mails committed", cp.LastUID, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	for {
		left, err := unseen(watch)
		if err != nil {
			tb.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("ingest: %d mails still unflagged", left)
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	stopProfile()
	stop()
	return elapsed
}

// latencyResult holds one run's samples.
type latencyResult struct {
	Total, Idle, Beyond []time.Duration
}

// latencyRun starts helpdesk (IDLE on, the default 30 s poll) and a bare
// IDLE client on an empty mailbox, then APPENDs mails one at a time every
// interval. For each it records APPEND → auto-reply accepted by the sink
// (Total), APPEND → EXISTS at the bare client (Idle: Dovecot's own delay)
// and their difference (Beyond: helpdesk's share).
func latencyRun(tb testing.TB, dove *mailtest.Dovecot, user string, mails []genMail, interval time.Duration) latencyResult {
	tb.Helper()
	sink := mailtest.StartSMTP(tb, mailtest.SMTPOptions{})
	base := uint32(len(dove.UIDs(tb, user, "INBOX")))
	path := writeConfig(tb, rigConfig{Dir: tb.TempDir(), IMAPPort: dove.IMAPSPort, User: user, SMTPPort: sink.Port})
	_, stop := startDaemon(tb, path, dove)
	defer stop()
	w, err := startIdleWatcher(dove, user, "secret")
	if err != nil {
		tb.Fatal(err)
	}
	defer w.close()
	c := dove.Client(tb, user)
	// Let helpdesk finish its first round and enter IDLE.
	time.Sleep(500 * time.Millisecond)

	appended := make([]time.Time, len(mails))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i, m := range mails {
		<-tick.C
		if err := appendOne(c, m.Raw); err != nil {
			tb.Fatal(err)
		}
		appended[i] = time.Now()
	}
	got := sink.WaitFor(tb, len(mails), time.Minute)
	replyAt := make(map[string]time.Time)
	for _, r := range got {
		msg, err := mail.ReadMessage(bytes.NewReader(r.Data))
		if err != nil {
			tb.Fatalf("auto-reply: %v", err)
		}
		replyAt[strings.Trim(msg.Header.Get("In-Reply-To"), "<> ")] = r.At
	}
	var res latencyResult
	for i, m := range mails {
		at, ok := replyAt[m.MessageID]
		if !ok {
			tb.Fatalf("no auto-reply to %s", m.MessageID)
		}
		res.Total = append(res.Total, at.Sub(appended[i]))
		if ex, ok := w.announced(base + uint32(i) + 1); ok {
			res.Idle = append(res.Idle, max(ex.Sub(appended[i]), 0))
			res.Beyond = append(res.Beyond, at.Sub(maxTime(ex, appended[i])))
		}
	}
	return res
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// memoryResult is one run of the real binary on the backlog.
type memoryResult struct {
	PeakRSS int64 // VmHWM, bytes
	// The largest anonymous (heap, stacks) and file-backed (binary, the
	// database's mmap) resident sizes seen while sampling every 20 ms: they
	// say where a peak comes from.
	PeakAnon, PeakFile int64
	Elapsed            time.Duration
}

// buildBinary builds cmd/helpdesk into dir.
func buildBinary(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(dir, "helpdesk")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/helpdesk")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build helpdesk: %v\n%s", err, out)
	}
	return bin
}

// memoryRun runs `helpdesk serve` as a subprocess on user's backlog until
// every mail is flagged, and reads its peak resident set (VmHWM).
func memoryRun(tb testing.TB, bin string, dove *mailtest.Dovecot, sink *mailtest.SMTPSink, user string, maxMessage string, env ...string) memoryResult {
	tb.Helper()
	markUnseen(tb, dove, user)
	dir, remove := runDir(tb)
	defer remove()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, dove.Cert.CertPEM, 0o600); err != nil {
		tb.Fatal(err)
	}
	path := writeConfig(tb, rigConfig{Dir: dir, IMAPPort: dove.IMAPSPort, User: user, SMTPPort: sink.Port, MaxMessage: maxMessage})
	watch := watcher(tb, dove, user)
	defer watch.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+ca)
	cmd.Env = append(cmd.Env, env...)
	if extra := os.Getenv("BENCH_SERVE_ENV"); extra != "" {
		// Diagnostics: GODEBUG=gctrace=1, GOGC, GOMEMLIMIT … for the daemon.
		cmd.Env = append(cmd.Env, strings.Fields(extra)...)
	}
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	deadline := start.Add(20 * time.Minute)
	var res memoryResult
	var dbRSS int64
	defer func() {
		if dbRSS > 0 {
			tb.Logf("diagnostics: peak resident size of the database map %.1f MB", mb(dbRSS))
		}
	}()
	for {
		left, err := unseen(watch)
		if err != nil {
			tb.Fatal(err)
		}
		if left == 0 {
			break
		}
		select {
		case err := <-exited:
			tb.Fatalf("helpdesk serve exited (%v) with %d mails unflagged:\n%s", err, left, tail(stderr.String(), 2000))
		case <-time.After(20 * time.Millisecond):
		}
		if anon, err := procStatus(cmd.Process.Pid, "RssAnon"); err == nil {
			res.PeakAnon = max(res.PeakAnon, anon)
		}
		if file, err := procStatus(cmd.Process.Pid, "RssFile"); err == nil {
			res.PeakFile = max(res.PeakFile, file)
		}
		if os.Getenv("BENCH_SMAPS") != "" {
			dbRSS = max(dbRSS, mappingRSS(cmd.Process.Pid, "helpdesk.db"))
		}
		if time.Now().After(deadline) {
			tb.Fatalf("helpdesk serve: %d mails still unflagged", left)
		}
	}
	res.Elapsed = time.Since(start)
	hwm, err := procStatus(cmd.Process.Pid, "VmHWM")
	if err != nil {
		tb.Fatal(err)
	}
	res.PeakRSS = hwm
	if io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", cmd.Process.Pid)); err == nil {
		// Diagnostics: what the daemon wrote (write_bytes: to the disk).
		tb.Logf("diagnostics: /proc/PID/io %s", strings.Join(strings.Fields(string(io)), " "))
	}
	if path := os.Getenv("BENCH_SMAPS"); path != "" {
		// Diagnostics: where the resident memory of the daemon is.
		if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", cmd.Process.Pid)); err == nil {
			_ = os.WriteFile(path, data, 0o644)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			tb.Fatalf("helpdesk serve: %v\n%s", err, tail(stderr.String(), 2000))
		}
	case <-time.After(30 * time.Second):
		tb.Fatal("helpdesk serve did not stop on SIGTERM")
	}
	if path := os.Getenv("BENCH_STDERR"); path != "" {
		// Diagnostics: the daemon's log (and GODEBUG=gctrace=1 output).
		_ = os.WriteFile(path, stderr.Bytes(), 0o644)
	}
	if strings.Contains(stderr.String(), "level=ERROR") {
		tb.Errorf("helpdesk serve logged errors:\n%s", tail(stderr.String(), 2000))
	}
	return res
}

// mappingRSS is the resident size of the mappings of pid whose path ends
// in name (diagnostics).
func mappingRSS(pid int, name string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return 0
	}
	var total int64
	in := false
	for line := range strings.SplitSeq(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") {
			in = strings.HasSuffix(line, name)
		} else if in && len(fields) == 3 && fields[0] == "Rss:" {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			total += kb << 10
		}
	}
	return total
}

// procStatus reads a "kB" field of /proc/PID/status in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", field, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", field, pid)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// outboundResult compares the outbox with a bare send loop.
type outboundResult struct {
	Outbox, Bare time.Duration
	// CPU time of this process (worker, store, sender and the sink) in
	// each, which noise from other processes hardly changes.
	OutboxCPU, BareCPU time.Duration
	N                  int
}

// cpuTime is the user+system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ackEnvelope is an auto-reply as the ticket engine writes it.
func ackEnvelope(i int) outbox.Envelope {
	return outbox.Envelope{
		From:       outbox.Address{Addr: "support@example.com"},
		To:         []outbox.Address{{Name: "Anna Müller", Addr: fmt.Sprintf("anna%d@customer.example", i)}},
		Subject:    fmt.Sprintf("[Ticket#%d] Re: VPN does not connect", i+1),
		Text:       strings.Repeat("Thank you for your message. We have opened a ticket and will get back to you shortly.\n", 6),
		MessageID:  fmt.Sprintf("ticket-%d.bench@helpdesk.example.com", i+1),
		InReplyTo:  fmt.Sprintf("%d@customer.example", i),
		References: []string{fmt.Sprintf("%d@customer.example", i)},
		Date:       time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC),
		Headers:    [][2]string{{"Auto-Submitted", "auto-replied"}, {"X-Auto-Response-Suppress", "All"}, {"Precedence", "auto_reply"}},
	}
}

// outboundRun queues n auto-replies in a fresh store (as the ticket engine
// does: a ticket, its acknowledgement message and the outbox entry in one
// transaction per mail) and times the real worker and SMTP sender draining
// them into a sink, then a bare go-mail loop sending the same bytes over one
// connection (MAIL, RCPT, DATA per mail, nothing else).
func outboundRun(tb testing.TB, n int, profileDir string) outboundResult {
	tb.Helper()
	res := outboundResult{N: n}
	path := filepath.Join(tb.TempDir(), "helpdesk.db")
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	raws := make([][]byte, n)
	now := time.Now()
	for i := range n {
		if raws[i], err = outbox.Compose(ackEnvelope(i)); err != nil {
			tb.Fatal(err)
		}
	}
	err = db.Update(func(tx *store.Tx) error {
		for i := range n {
			tk := &store.Ticket{Subject: "VPN does not connect", Status: store.StatusNew, Priority: "normal", Mailbox: "support",
				Requester: fmt.Sprintf("anna%d@customer.example", i), CC: []string{}, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateTicket(tk); err != nil {
				return err
			}
			m := &store.Message{TicketID: tk.ID, MessageID: fmt.Sprintf("ticket-%d.bench@helpdesk.example.com", i+1),
				Kind: store.KindAutoreply, From: "support@example.com", To: []string{tk.Requester}, Date: now,
				Subject: "ack", Attachments: []store.Attachment{}, Size: len(raws[i]), ReceivedAt: now}
			if _, err := tx.Enqueue(m, "support@example.com", []string{tk.Requester}, raws[i], now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	// Reopened with fsync on, as the daemon runs.
	db, err = store.Open(path, store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()

	sink := mailtest.StartSMTP(tb, mailtest.SMTPOptions{DiscardData: true})
	sender := outbox.NewSMTPSender(outbox.SMTPConfig{Host: sink.Host, Port: sink.Port, TLS: outbox.TLSNone, Timeout: 10 * time.Second})
	defer sender.Close()
	w := &outbox.Worker{Queue: daemon.OutboxQueue(db), Sender: sender, Log: slog.New(slog.DiscardHandler),
		MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopProfile := profileTo(tb, profileDir, "outbound")
	cpu0 := cpuTime()
	start := time.Now()
	go func() { done <- w.Run(ctx) }()
	for w.Stats().Sent < uint64(n) {
		if w.Stats().Dead > 0 || w.Stats().Retried > 0 {
			tb.Fatalf("outbox: %+v", w.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	res.Outbox = time.Since(start)
	res.OutboxCPU = cpuTime() - cpu0
	stopProfile()
	cancel()
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	if queued, dead, err := db.OutboxLen(); err != nil || queued+dead != 0 {
		tb.Fatalf("outbox after the run: %d queued, %d dead, %v", queued, dead, err)
	}
	if got := len(sink.Messages()); got != n {
		tb.Fatalf("sink got %d messages, want %d", got, n)
	}
	if err := db.Check(); err != nil {
		tb.Fatal(err)
	}

	bare := mailtest.StartSMTP(tb, mailtest.SMTPOptions{DiscardData: true})
	gc, err := gomail.NewClient(bare.Host, gomail.WithPort(bare.Port), gomail.WithTLSPolicy(gomail.NoTLS),
		gomail.WithTimeout(10*time.Second), gomail.WithHELO("helpdesk.example.com"))
	if err != nil {
		tb.Fatal(err)
	}
	cpu0 = cpuTime()
	start = time.Now()
	sc, err := gc.DialToSMTPClientWithContext(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		if err := sc.Mail("<support@example.com>"); err != nil {
			tb.Fatal(err)
		}
		if err := sc.Rcpt(fmt.Sprintf("<anna%d@customer.example>", i)); err != nil {
			tb.Fatal(err)
		}
		wc, err := sc.Data()
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := wc.Write(raws[i]); err != nil {
			tb.Fatal(err)
		}
		if err := wc.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	res.Bare = time.Since(start)
	res.BareCPU = cpuTime() - cpu0
	_ = sc.Quit()
	if got := len(bare.Messages()); got != n {
		tb.Fatalf("bare sink got %d messages, want %d", got, n)
	}
	return res
}

// storeResult is the store at scale.
type storeResult struct {
	Tickets   int
	Generate  time.Duration
	FileBytes int64
	Open      []time.Duration
	FirstPage []time.Duration
	OpenCount int // tickets on the first page
}

// storeStatuses is the status mix of an aged help desk: most tickets done.
var storeStatuses = []struct {
	status string
	weight int
}{{store.StatusClosed, 60}, {store.StatusResolved, 20}, {store.StatusOpen, 10}, {store.StatusPending, 6}, {store.StatusNew, 4}}

// storeScale generates n tickets through the store API (without fsync, in
// transactions of 10,000) and then measures, reps times, opening the file
// as the daemon does and reading the first page of open tickets.
func storeScale(tb testing.TB, n, reps int) storeResult {
	tb.Helper()
	res := storeResult{Tickets: n}
	path := filepath.Join(tb.TempDir(), "helpdesk.db")
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 10000
	for done := 0; done < n; {
		k := min(batch, n-done)
		err := db.Update(func(tx *store.Tx) error {
			for i := done; i < done+k; i++ {
				status := store.StatusClosed
				w := i*7919%100 + 1
				for _, s := range storeStatuses {
					if w <= s.weight {
						status = s.status
						break
					}
					w -= s.weight
				}
				at := base.Add(time.Duration(i) * time.Minute)
				cust := i * 31 % 50000
				tk := &store.Ticket{
					Subject: topics[i%len(topics)], Status: status, Priority: "normal", Mailbox: "support",
					Requester: fmt.Sprintf("customer%d@example.org", cust), RequesterName: fmt.Sprintf("Customer %d", cust),
					CC: []string{}, CreatedAt: at, UpdatedAt: at.Add(time.Hour), MessageCount: 0,
					LastCustomerMessageID: fmt.Sprintf("%d.%d@mail.example.org", i, cust),
					ThreadIDs:             []string{fmt.Sprintf("%d.%d@mail.example.org", i, cust)},
				}
				if err := tx.CreateTicket(tk); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		done += k
	}
	res.Generate = time.Since(start)
	if err := db.Close(); err != nil {
		tb.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	res.FileBytes = fi.Size()
	for range reps {
		start := time.Now()
		db, err := store.Open(path, store.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		res.Open = append(res.Open, time.Since(start))
		start = time.Now()
		var page []store.Ticket
		err = db.View(func(tx *store.Tx) error {
			var err error
			page, err = tx.ListTickets(store.ListOptions{Status: store.StatusOpen, Limit: 50})
			return err
		})
		res.FirstPage = append(res.FirstPage, time.Since(start))
		if err != nil {
			tb.Fatal(err)
		}
		res.OpenCount = len(page)
		if len(page) == 0 || page[0].Status != store.StatusOpen {
			tb.Fatalf("first page: %d tickets", len(page))
		}
		if !slices.IsSortedFunc(page, func(a, b store.Ticket) int { return int(b.ID) - int(a.ID) }) {
			tb.Fatal("first page not newest first")
		}
		if err := db.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	return res
}
