package bench

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/helpdesk/helpdesk/internal/mailtest"
)

// The full harness runs only when asked (`make bench`); every size is a
// flag so a quick look costs seconds and the real thing ~10–15 minutes.
var (
	runHarness = flag.Bool("harness", false, "run the full benchmark harness (make bench)")
	flagN      = flag.Int("n", 5000, "mails in the ingest/baseline mailbox")
	flagRuns   = flag.Int("runs", 5, "runs per measurement (figures are medians)")
	flagLat    = flag.Int("latency", 40, "mails per latency run")
	flagRate   = flag.Duration("latency-interval", 250*time.Millisecond, "time between two APPENDs of a latency run")
	flagBack   = flag.Int("backlog", 10000, "mails in the memory backlog")
	flagBig    = flag.Int("big", 3, "mails with a big attachment in the memory backlog")
	flagBigMB  = flag.Int("big-mb", 25, "size of each big attachment, MB (decoded)")
	flagOut    = flag.Int("outbound", 5000, "auto-replies per outbound run")
	flagTk     = flag.Int("tickets", 1000000, "tickets in the store-at-scale database")
	flagFile   = flag.String("out", "", "write the table as markdown into this file (BENCHMARKS.md)")
	flagProf   = flag.String("cpuprofile-dir", "", "write CPU profiles of the in-process parts into this directory")
	flagSkip   = flag.String("skip", "", "comma-separated parts to skip: ingest,latency,memory,outbound,store")
	flagMemEnv = flag.String("mem-env", "GOMEMLIMIT=32MiB", "also run the memory part with this in the environment of helpdesk serve, e.g. GOMEMLIMIT=32MiB or GOGC=50 (\"\": don't)")
)

// profile is one configuration of the harness.
type profile struct {
	Mails           int
	Runs            int
	LatencyMails    int
	LatencyInterval time.Duration
	BacklogMails    int
	BigMails        int
	BigBytes        int
	MaxMessage      string // limits.max_message_bytes for the backlog
	MemEnv          string // the environment of a second memory run (GOMEMLIMIT=32MiB); "" none
	OutboundMails   int
	StoreTickets    int
	StoreReps       int
	ProfileDir      string
	Skip            map[string]bool
}

func fullProfile() profile {
	p := profile{
		Mails: *flagN, Runs: *flagRuns,
		LatencyMails: *flagLat, LatencyInterval: *flagRate,
		BacklogMails: *flagBack, BigMails: *flagBig, BigBytes: *flagBigMB * 1000 * 1000,
		OutboundMails: *flagOut, StoreTickets: *flagTk, StoreReps: 5,
		ProfileDir: *flagProf, Skip: map[string]bool{}, MemEnv: *flagMemEnv,
	}
	// A big attachment grows by a third in base64; the limit must let the
	// mail through, or it would be quarantined instead of parsed.
	p.MaxMessage = fmt.Sprintf("%dMiB", max(25, p.BigBytes*3/2>>20+1))
	for _, s := range strings.Split(*flagSkip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			p.Skip[s] = true
		}
	}
	return p
}

// TestHarness is `make bench`.
func TestHarness(t *testing.T) {
	if !*runHarness {
		t.Skip("the full harness runs with -harness (make bench)")
	}
	p := fullProfile()
	r := harness(t, p)
	table := r.markdown(p)
	fmt.Println()
	fmt.Println(table)
	if *flagFile != "" {
		if err := writeBenchmarks(*flagFile, r.header(p)+"\n"+table); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", *flagFile)
	}
}

// TestHarnessSmoke runs every part of the harness on a tiny profile so that
// `make test` keeps it working. It checks that each part did its job (every
// mail committed and flagged, every auto-reply received, every tickets
// found) and never how fast.
func TestHarnessSmoke(t *testing.T) {
	p := profile{
		Mails: 40, Runs: 1,
		LatencyMails: 4, LatencyInterval: 100 * time.Millisecond,
		BacklogMails: 40, BigMails: 1, BigBytes: 1 << 20, MaxMessage: "25MiB", MemEnv: "GOGC=50",
		OutboundMails: 30, StoreTickets: 3000, StoreReps: 1,
		Skip: map[string]bool{},
	}
	r := harness(t, p)
	if len(r.baseline) != 1 || r.baseline[0].Mails != p.Mails {
		t.Errorf("baseline read %+v, want %d mails", r.baseline, p.Mails)
	}
	if len(r.ingest) != 1 || len(r.latency) != 1 || len(r.memory) != 1 || len(r.memLimited) != 1 || len(r.outbound) != 1 {
		t.Errorf("runs: ingest %d, latency %d, memory %d+%d, outbound %d; want 1 each",
			len(r.ingest), len(r.latency), len(r.memory), len(r.memLimited), len(r.outbound))
	}
	if len(r.memory) == 1 && r.memory[0].PeakRSS <= 0 {
		t.Errorf("peak RSS %d", r.memory[0].PeakRSS)
	}
	if r.store.OpenCount != 50 {
		t.Errorf("first page of open tickets has %d, want 50", r.store.OpenCount)
	}
	out := r.markdown(p)
	for _, want := range []string{"baseline", "ingest", "latency", "peak RSS", "outbound", "1st page"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// results gathers every run of every part.
type results struct {
	loadStart   string
	mails       int
	mailBytes   int64
	appendTime  time.Duration
	baseline    []baselineResult
	ingest      []time.Duration
	latency     []latencyResult
	memory      []memoryResult
	memLimited  []memoryResult // the same with MemEnv
	backlog     int
	backlogSize int64
	outbound    []outboundResult
	store       storeResult
}

func harness(t *testing.T, p profile) *results {
	r := &results{mails: p.Mails, loadStart: loadAvg()}
	users := map[string]string{"support": "secret", "backlog": "secret"}
	for i := range p.Runs {
		users[fmt.Sprintf("latency%d", i)] = "secret"
	}
	dove := mailtest.StartDovecot(t, users)
	// DiscardData: thousands of acknowledgements kept in this process
	// would raise the garbage collector's goal for the baseline and the
	// ingest more with every run.
	sink := mailtest.StartSMTP(t, mailtest.SMTPOptions{DiscardData: true})

	c := newCorpus(1, p.Mails)
	r.mailBytes = c.totalBytes()
	r.appendTime = appendAll(t, dove, "support", c.mails)
	t.Logf("appended %d mails (%.1f MB) in %v", p.Mails, mb(r.mailBytes), r.appendTime.Round(time.Millisecond))

	if !p.Skip["ingest"] {
		for run := range p.Runs {
			b, err := baseline(dove, "support", "secret")
			if err != nil {
				t.Fatalf("baseline: %v", err)
			}
			r.baseline = append(r.baseline, b)
			d := ingestRun(t, dove, sink, "support", p.Mails, p.ProfileDir)
			r.ingest = append(r.ingest, d)
			t.Logf("run %d: baseline %.0f mails/s, ingest %.0f mails/s", run+1, rate(b.Mails, b.Elapsed), rate(p.Mails, d))
		}
	}

	if !p.Skip["latency"] {
		for run := range p.Runs {
			lc := newCorpus(uint64(100+run), p.LatencyMails*2)
			var mails []genMail
			for _, m := range lc.mails {
				// Only a new ticket is acknowledged.
				if !m.FollowUp && len(mails) < p.LatencyMails {
					mails = append(mails, m)
				}
			}
			lr := latencyRun(t, dove, fmt.Sprintf("latency%d", run), mails, p.LatencyInterval)
			r.latency = append(r.latency, lr)
			t.Logf("run %d: latency p50 %v, IDLE p50 %v, beyond p50 %v", run+1, pct(lr.Total, 50), pct(lr.Idle, 50), pct(lr.Beyond, 50))
		}
	}

	if !p.Skip["outbound"] {
		// A short untimed round first: the first run otherwise pays for
		// warming up (heap growth, the sink's first connections).
		outboundRun(t, max(p.OutboundMails/10, 1), "")
		for run := range p.Runs {
			o := outboundRun(t, p.OutboundMails, p.ProfileDir)
			r.outbound = append(r.outbound, o)
			t.Logf("run %d: outbox %.0f/s (%.1f µs CPU/mail), bare %.0f/s (%.1f µs CPU/mail)", run+1,
				rate(o.N, o.Outbox), perMail(o.OutboxCPU, o.N), rate(o.N, o.Bare), perMail(o.BareCPU, o.N))
		}
	}

	if !p.Skip["memory"] {
		bin := buildBinary(t, t.TempDir())
		bc := newCorpus(2, p.BacklogMails)
		bc.withBig(p.BigMails, p.BigBytes)
		r.backlog, r.backlogSize = len(bc.mails), bc.totalBytes()
		d := appendAll(t, dove, "backlog", bc.mails)
		t.Logf("appended the backlog: %d mails (%.1f MB) in %v", r.backlog, mb(r.backlogSize), d.Round(time.Millisecond))
		bc = nil
		runtime.GC()
		for run := range p.Runs {
			m := memoryRun(t, bin, dove, sink, "backlog", p.MaxMessage)
			r.memory = append(r.memory, m)
			t.Logf("run %d: backlog in %v, peak RSS %.1f MB (anon %.1f, file %.1f)", run+1, m.Elapsed.Round(time.Millisecond), mb(m.PeakRSS), mb(m.PeakAnon), mb(m.PeakFile))
			if p.MemEnv != "" {
				m := memoryRun(t, bin, dove, sink, "backlog", p.MaxMessage, strings.Fields(p.MemEnv)...)
				r.memLimited = append(r.memLimited, m)
				t.Logf("run %d, %s: backlog in %v, peak RSS %.1f MB (anon %.1f, file %.1f)", run+1, p.MemEnv,
					m.Elapsed.Round(time.Millisecond), mb(m.PeakRSS), mb(m.PeakAnon), mb(m.PeakFile))
			}
		}
	}

	if !p.Skip["store"] {
		r.store = storeScale(t, p.StoreTickets, p.StoreReps)
		t.Logf("store: %d tickets generated in %v, open %v, first page %v", p.StoreTickets, r.store.Generate.Round(time.Millisecond),
			durMedian(r.store.Open), durMedian(r.store.FirstPage))
	}
	return r
}

// header says how and where the table was made.
func (r *results) header(p profile) string {
	var b strings.Builder
	b.WriteString("# Benchmarks\n\n")
	b.WriteString("Written by `make bench` (the harness in `bench/`): a real Dovecot and an SMTP sink on loopback, helpdesk between them.\n\n")
	fmt.Fprintf(&b, "```sh\n%s\n```\n\n", benchCommand(p))
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, %s, %s, %s. Every figure is the median of %d runs (store: of %d opens). "+
		"Load average (1 min) at the start %s, at the end %s: other work on the machine slows both sides of a comparison, not always alike.\n",
		cpuModel(), runtime.NumCPU(), goVersion(), dovecotVersion(), time.Now().UTC().Format("2006-01-02"), p.Runs, p.StoreReps, r.loadStart, loadAvg())
	return b.String()
}

func benchCommand(p profile) string {
	return fmt.Sprintf("make bench BENCH_ARGS='-n=%d -runs=%d -latency=%d -backlog=%d -big=%d -big-mb=%d -mem-env=%s -outbound=%d -tickets=%d'",
		p.Mails, p.Runs, p.LatencyMails, p.BacklogMails, p.BigMails, p.BigBytes/1000/1000, p.MemEnv, p.OutboundMails, p.StoreTickets)
}

// markdown renders the table.
func (r *results) markdown(p profile) string {
	var b strings.Builder
	b.WriteString("| # | measure | result | target | met |\n|---|---|---|---|---|\n")
	row := func(n, what, result, target string, met *bool) {
		m := ""
		if met != nil {
			m = "✗"
			if *met {
				m = "✓"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", n, what, result, target, m)
	}
	yes := func(ok bool) *bool { return &ok }

	if len(r.baseline) > 0 {
		var base, ing []float64
		var mbps []float64
		for i, bl := range r.baseline {
			base = append(base, rate(bl.Mails, bl.Elapsed))
			mbps = append(mbps, mb(bl.Bytes)/bl.Elapsed.Seconds())
			ing = append(ing, rate(r.mails, r.ingest[i]))
		}
		var ratios []float64
		for i := range base {
			ratios = append(ratios, ing[i]/base[i])
		}
		row("1", fmt.Sprintf("baseline: bare go-imap `UID FETCH 1:* BODY.PEEK[]` over TLS + full go-message parse, %d mails (%.0f MB, 2–200 KB, %d%% with attachments, %d%% follow-ups)",
			r.mails, mb(r.mailBytes), int(attachmentRate*100), int(followUpRate*100)),
			fmt.Sprintf("%.0f mails/s (%.1f MB/s)", median(base), median(mbps)), "—", nil)
		row("2", "ingest: `helpdesk` from start until every mail is committed in its ticket and flagged \\Seen",
			fmt.Sprintf("%.0f mails/s = **%.3f ×** baseline", median(ing), median(ratios)), "≥ 0.5 × (stretch 0.7 ×)", yes(median(ratios) >= 0.5))
	}
	if len(r.latency) > 0 {
		var tot, idle, beyond [3][]time.Duration
		for _, l := range r.latency {
			for k, q := range []float64{50, 90, 99} {
				tot[k] = append(tot[k], pct(l.Total, q))
				idle[k] = append(idle[k], pct(l.Idle, q))
				beyond[k] = append(beyond[k], pct(l.Beyond, q))
			}
		}
		ps := func(v [3][]time.Duration) string {
			return fmt.Sprintf("p50 %s · p90 %s · p99 %s", ms(durMedian(v[0])), ms(durMedian(v[1])), ms(durMedian(v[2])))
		}
		row("3a", fmt.Sprintf("latency: APPEND → auto-reply accepted by the sink, one mail every %v, %d per run", p.LatencyInterval, p.LatencyMails), ps(tot), "—", nil)
		row("3b", "Dovecot's own IDLE delay: APPEND → EXISTS at a bare IDLE client", ps(idle), "—", nil)
		row("3c", "latency beyond Dovecot's IDLE delay (3a − 3b per mail)", ps(beyond), "p50 ≤ 200 ms, p99 ≤ 1 s",
			yes(durMedian(beyond[0]) <= 200*time.Millisecond && durMedian(beyond[2]) <= time.Second))
	}
	if len(r.memory) > 0 {
		var rss, rates []float64
		for _, m := range r.memory {
			rss = append(rss, mb(m.PeakRSS))
			rates = append(rates, rate(r.backlog, m.Elapsed))
		}
		row("4", fmt.Sprintf("peak RSS (VmHWM) of `helpdesk serve` ingesting a backlog of %d mails (%.0f MB) with %d × %d MB attachments",
			r.backlog, mb(r.backlogSize), p.BigMails, p.BigBytes/1000/1000),
			fmt.Sprintf("%.1f MB (at %.0f mails/s)", median(rss), median(rates)), "≤ 64 MB", yes(median(rss) <= 64))
	}
	if len(r.memLimited) > 0 {
		var rss, rates []float64
		for _, m := range r.memLimited {
			rss = append(rss, mb(m.PeakRSS))
			rates = append(rates, rate(r.backlog, m.Elapsed))
		}
		row("4b", fmt.Sprintf("the same with `%s` in the environment of `helpdesk serve` (the garbage collector's memory/CPU trade-off, docs/operations.md)", p.MemEnv),
			fmt.Sprintf("%.1f MB (at %.0f mails/s)", median(rss), median(rates)), "≤ 64 MB", yes(median(rss) <= 64))
	}
	if len(r.outbound) > 0 {
		var ob, bare, ratio []float64
		for _, o := range r.outbound {
			ob = append(ob, rate(o.N, o.Outbox))
			bare = append(bare, rate(o.N, o.Bare))
			ratio = append(ratio, rate(o.N, o.Outbox)/rate(o.N, o.Bare))
		}
		row("5", fmt.Sprintf("outbound: %d auto-replies through the outbox (worker, store, SMTP sender) vs a bare go-mail send loop", r.outbound[0].N),
			fmt.Sprintf("%.0f/s vs %.0f/s = **%.3f ×**", median(ob), median(bare), median(ratio)), "≥ 0.8 ×", yes(median(ratio) >= 0.8))
	}
	if r.store.Tickets > 0 {
		s := r.store
		open, page := durMedian(s.Open), durMedian(s.FirstPage)
		row("6a", fmt.Sprintf("store at scale: open a database of %s tickets", thousands(s.Tickets)), ms(open), "≤ 200 ms", yes(open <= 200*time.Millisecond))
		row("6b", "1st page of `tickets list --status open` (ListTickets, Status open, Limit 50)", ms(page), "≤ 50 ms", yes(page <= 50*time.Millisecond))
		row("6c", "bytes per ticket (file size / tickets)", fmt.Sprintf("%.0f B (%.0f MB file, generated in %v)",
			float64(s.FileBytes)/float64(s.Tickets), mb(s.FileBytes), s.Generate.Round(time.Second)), "—", nil)
	}
	b.WriteString("\n" + r.runs(p))
	return b.String()
}

// runs lists every run, so a median can be checked against its spread.
func (r *results) runs(p profile) string {
	var b strings.Builder
	b.WriteString("<details><summary>Every run</summary>\n\n")
	for i, bl := range r.baseline {
		fmt.Fprintf(&b, "- run %d: baseline %.0f mails/s, ingest %.0f mails/s\n", i+1, rate(bl.Mails, bl.Elapsed), rate(r.mails, r.ingest[i]))
	}
	for i, l := range r.latency {
		fmt.Fprintf(&b, "- run %d: latency p50/p90/p99 %s/%s/%s, IDLE %s/%s/%s, beyond %s/%s/%s\n", i+1,
			ms(pct(l.Total, 50)), ms(pct(l.Total, 90)), ms(pct(l.Total, 99)),
			ms(pct(l.Idle, 50)), ms(pct(l.Idle, 90)), ms(pct(l.Idle, 99)),
			ms(pct(l.Beyond, 50)), ms(pct(l.Beyond, 90)), ms(pct(l.Beyond, 99)))
	}
	for i, m := range r.memory {
		fmt.Fprintf(&b, "- run %d: backlog peak RSS %.1f MB (sampled peaks: anonymous %.1f MB, file-backed %.1f MB), %v\n",
			i+1, mb(m.PeakRSS), mb(m.PeakAnon), mb(m.PeakFile), m.Elapsed.Round(time.Millisecond))
	}
	for i, m := range r.memLimited {
		fmt.Fprintf(&b, "- run %d with %s: backlog peak RSS %.1f MB (anonymous %.1f MB, file-backed %.1f MB), %v\n",
			i+1, p.MemEnv, mb(m.PeakRSS), mb(m.PeakAnon), mb(m.PeakFile), m.Elapsed.Round(time.Millisecond))
	}
	for i, o := range r.outbound {
		fmt.Fprintf(&b, "- run %d: outbox %.0f/s (%.1f µs CPU per mail, sink included), bare loop %.0f/s (%.1f µs)\n", i+1,
			rate(o.N, o.Outbox), perMail(o.OutboxCPU, o.N), rate(o.N, o.Bare), perMail(o.BareCPU, o.N))
	}
	if len(r.store.Open) > 0 {
		fmt.Fprintf(&b, "- store: open %v, first page %v\n", r.store.Open, r.store.FirstPage)
	}
	b.WriteString("\n</details>\n")
	return b.String()
}

// notesMarker separates the generated part of BENCHMARKS.md from notes
// written by hand, which a new run keeps.
const notesMarker = "<!-- Everything below this line is written by hand and kept by make bench. -->"

func writeBenchmarks(path, generated string) error {
	notes := notesMarker + "\n"
	if old, err := os.ReadFile(path); err == nil {
		if _, after, ok := bytes.Cut(old, []byte(notesMarker)); ok {
			notes = notesMarker + string(after)
		}
	}
	return os.WriteFile(path, []byte(generated+"\n"+notes), 0o644)
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// perMail is d per mail in µs.
func perMail(d time.Duration, n int) float64 { return float64(d.Microseconds()) / float64(n) }
func mb(n int64) float64                     { return float64(n) / 1e6 }

func ms(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.0f ms", float64(d)/1e6)
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func durMedian(v []time.Duration) time.Duration {
	f := make([]float64, len(v))
	for i, d := range v {
		f[i] = float64(d)
	}
	return time.Duration(median(f))
}

// pct is the nearest-rank percentile q of v.
func pct(v []time.Duration, q float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(q/100*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func goVersion() string { return runtime.Version() }

func dovecotVersion() string {
	out, err := exec.Command(mailtest.DovecotPath, "--version").Output()
	if err != nil {
		return "Dovecot (version unknown)"
	}
	return "Dovecot " + strings.Fields(string(out))[0]
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(data))[0]
}
