// Package bench is the benchmark harness behind `make bench`: a real
// Dovecot and an in-process SMTP sink on loopback, helpdesk between them,
// and generated mail (gen_test.go: 2–200 KB, a fifth with attachments, a
// quarter follow-ups to earlier mails, some HTML; the same seed gives the
// same bytes). One run of TestHarness measures, each part Runs times, and
// reports medians:
//
//  1. baseline: a bare go-imap client fetching the mailbox with one
//     UID FETCH 1:* BODY.PEEK[] over TLS and parsing every message fully
//     with go-message, on one goroutine: the limit of the machine;
//  2. ingest: helpdesk (in this process) from start until every mail is
//     committed and flagged \Seen, against the baseline, in the same run;
//  3. latency: mails APPENDed one at a time at a steady rate, from APPEND
//     to the auto-reply at the sink, next to Dovecot's own IDLE delay as a
//     bare IDLE client sees it;
//  4. memory: the real `helpdesk serve` (built from cmd/helpdesk) ingesting
//     a backlog with a few big attachments; its VmHWM, and again with
//     -mem-env in its environment (GOMEMLIMIT=32MiB: a soft cap on the
//     heap, less memory for a little more CPU);
//  5. outbound: auto-replies through the outbox worker, the store and the
//     SMTP sender, against a bare go-mail send loop of the same bytes;
//  6. store at scale: a million tickets made through the store API, the
//     time to open the file and to read the first page of open tickets.
//
// It prints the table and writes it into BENCHMARKS.md (-out), keeping
// whatever follows the notes marker there. Sizes are flags (see
// harness_test.go); `make bench BENCH_ARGS='-n=5000 -runs=5'` passes them.
// TestHarnessSmoke runs every part on a tiny profile in `make test`; it
// checks that each part did its work and never how fast.
//
// The in-process daemon logs as `helpdesk serve` does by default (text,
// info level) into daemon.log beside its database, so the figures include
// its log; a run whose daemon logged an error fails.
//
// Diagnostics, by environment: BENCH_DAEMON_LOG=file gets the in-process
// daemon's debug log instead (group sizes and times of the ingest pipeline);
// BENCH_SERVE_ENV="GODEBUG=gctrace=1 GOGC=50" is added to the environment
// of `helpdesk serve`; BENCH_SMAPS=file keeps its /proc/PID/smaps and logs
// the peak resident size of its database map. The memory part always logs
// the daemon's /proc/PID/io (bytes it wrote, to the file and to the disk). -cpuprofile-dir=DIR writes
// CPU profiles of the in-process parts (ingest.pprof, outbound.pprof) and,
// with BENCH_TRACE=1, an execution trace (ingest.trace: fsync and
// scheduling waits, `go tool trace -pprof=syscall`).
package bench
