package bounce

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// corpusDir holds real mails copied from the shared corpus, with the
// manifest rows that describe them (see testdata/corpus/README.md).
const corpusDir = "testdata/corpus"

// Floors for the corpus figures, measured with
//
//	go test -run TestCorpusBounces -v ./bounce/
//
// less a margin of one fixture. Raise them when the parser improves; a drop
// below them is a regression.
const (
	minRecipientShare = 0.975 // measured 91/92: bounces with >= 1 recipient
	minVerdictShare   = 0.98  // measured 67/67: Permanent() as the fixture states
	minOrigIDShare    = 0.98  // measured 72/72: the returned Message-ID, when one is included
	minStatusShare    = 0.97  // measured 49/49: the statuses the source states
)

// row is one line of manifest.tsv.
type row struct {
	path, source, category, tags, expected string
}

func readManifest(t *testing.T) []row {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, "manifest.tsv"))
	if err != nil {
		t.Fatalf("read manifest: %v", err)
	}
	var rows []row
	for i, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if i == 0 {
			continue
		}
		c := strings.Split(l, "\t")
		if len(c) < 8 {
			t.Fatalf("manifest line %d: %d columns", i+1, len(c))
		}
		rows = append(rows, row{path: c[0], source: c[1], category: c[4], tags: c[5], expected: c[6]})
	}
	if len(rows) == 0 {
		t.Fatal("empty manifest")
	}
	return rows
}

func readFixture(t *testing.T, p string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(corpusDir, filepath.FromSlash(p)))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return raw
}

// delivered reports whether the source says the report is a success notice.
func (r row) delivered() bool { return strings.Contains(r.expected, "action=delivered") }

var statusClassRe = regexp.MustCompile(`status=([245])\.`)

// expectedPermanent returns the verdict that the fixture makes clear: the
// class of the status its source states, "retryable" (mikel/mail's word for
// a 4.x.x), or a delay warning by file name. known is false otherwise.
func (r row) expectedPermanent() (permanent, known bool) {
	if m := statusClassRe.FindStringSubmatch(r.expected); m != nil && m[1] != "2" {
		return m[1] == "5", true
	}
	if strings.Contains(r.expected, "retryable") || strings.Contains(strings.ToLower(path.Base(r.path)), "delay") {
		return false, true
	}
	return false, false
}

var softBreakRe = regexp.MustCompile(`=\r?\n`)

var statusListRe = regexp.MustCompile(`status=([0-9.,]+)`)

// expectedStatuses returns the RFC 3463 statuses the source states, sorted,
// or nil when it states none or only sisimai's pseudo codes (x.0.9xx, which
// sisimai derives from its reason, not from the report).
func (r row) expectedStatuses() []string {
	m := statusListRe.FindStringSubmatch(r.expected)
	if m == nil {
		return nil
	}
	var out []string
	for _, s := range strings.Split(m[1], ",") {
		if enhancedCode(s) != s || strings.HasPrefix(s[1:], ".0.9") || s[0] == '2' {
			return nil
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

var returnedIDRe = regexp.MustCompile(`(?im)^[ \t]*message-id:[ \t]*(?:\r?\n[ \t]+)?<?([^\s<>]+)>?`)

// returnedIDs returns the Message-IDs written in the body of raw (after the
// bounce's own header), QP soft line breaks removed: the ids a returned
// message can have. An empty result means no returned message with an id
// is included.
func returnedIDs(raw []byte) []string {
	end := len(raw)
	for _, sep := range [][]byte{[]byte("\r\n\r\n"), []byte("\n\n"), []byte("\r\r")} {
		if i := bytes.Index(raw, sep); i >= 0 && i < end {
			end = i
		}
	}
	body := softBreakRe.ReplaceAll(raw[end:], nil)
	var ids []string
	for _, m := range returnedIDRe.FindAllSubmatch(body, -1) {
		ids = append(ids, string(m[1]))
	}
	return ids
}

// tally counts one figure: hits out of n.
type tally struct{ hits, n int }

func (t *tally) add(hit bool) {
	t.n++
	if hit {
		t.hits++
	}
}

func (t tally) share() float64 {
	if t.n == 0 {
		return 1
	}
	return float64(t.hits) / float64(t.n)
}

func (t tally) String() string {
	return fmt.Sprintf("%d/%d (%.1f%%)", t.hits, t.n, 100*t.share())
}

// TestCorpusBounces parses every bounce fixture: each must be a bounce
// (success notices excepted), keep the Report invariants, and the shares of
// fixtures with a recipient, a correct permanent/temporary verdict and the
// returned Message-ID must stay above the measured floors.
func TestCorpusBounces(t *testing.T) {
	t.Parallel()
	type figures struct{ rcpt, verdict, origID, status tally }
	bySource := map[string]*figures{}
	var total figures
	count := 0
	for _, r := range readManifest(t) {
		if r.category != "bounce" {
			continue
		}
		count++
		raw := readFixture(t, r.path)
		rep := parse(raw) // no recover: a panic fails the test
		checkInvariants(t, r.path, rep)

		if r.delivered() {
			if rep.IsBounce() {
				t.Errorf("%s: a success notice (%s) read as a bounce: %+v", r.path, r.expected, rep)
			}
			continue
		}
		if !rep.IsBounce() {
			t.Errorf("%s: not recognised as a bounce", r.path)
		}
		f := bySource[r.source]
		if f == nil {
			f = &figures{}
			bySource[r.source] = f
		}
		hasRcpt := len(rep.Recipients) > 0
		f.rcpt.add(hasRcpt)
		total.rcpt.add(hasRcpt)
		if !hasRcpt {
			t.Logf("%s: no recipient found", r.path)
		}
		if want, known := r.expectedPermanent(); known {
			ok := rep.Permanent() == want
			f.verdict.add(ok)
			total.verdict.add(ok)
			if !ok {
				t.Logf("%s: Permanent() = %v, fixture says %v (%s)", r.path, rep.Permanent(), want, r.expected)
			}
		}
		if want := r.expectedStatuses(); len(want) > 0 {
			var got []string
			for _, rc := range rep.Recipients {
				if !contains(got, rc.Status) {
					got = append(got, rc.Status)
				}
			}
			sort.Strings(got)
			ok := strings.Join(got, ",") == strings.Join(want, ",")
			f.status.add(ok)
			total.status.add(ok)
			if !ok {
				t.Logf("%s: statuses %q, source says %q", r.path, got, want)
			}
		}
		if ids := returnedIDs(raw); len(ids) > 0 {
			ok := contains(ids, rep.OriginalMessageID)
			f.origID.add(ok)
			total.origID.add(ok)
			if !ok {
				t.Logf("%s: OriginalMessageID %q, returned message has %q", r.path, rep.OriginalMessageID, ids)
			}
		}
	}
	if count < 90 {
		t.Fatalf("only %d bounce fixtures", count)
	}
	sources := make([]string, 0, len(bySource))
	for s := range bySource {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	for _, s := range sources {
		f := bySource[s]
		t.Logf("%-22s recipients %-16v verdict %-16v original id %-16v status %v", s, f.rcpt, f.verdict, f.origID, f.status)
	}
	t.Logf("%-22s recipients %-16v verdict %-16v original id %-16v status %v", "TOTAL", total.rcpt, total.verdict, total.origID, total.status)
	for _, c := range []struct {
		name  string
		got   tally
		floor float64
	}{
		{"with >=1 recipient", total.rcpt, minRecipientShare},
		{"with correct verdict", total.verdict, minVerdictShare},
		{"with the returned Message-ID", total.origID, minOrigIDShare},
		{"with the status their source states", total.status, minStatusShare},
	} {
		if c.got.share() < c.floor {
			t.Errorf("share of bounces %s: %v, below the floor %.2f", c.name, c.got, c.floor)
		}
	}
}

// knownDisagreements are non-bounce fixtures that we read as bounces on
// purpose, with the reason.
var knownDisagreements = map[string]string{
	// sisimai lists it under maildir/not/, but it is a postmaster's notice
	// that our mail was rejected ("Mailbox full", the target address and
	// the returned message): for a helpdesk it is a delivery failure.
	"sisimai-set-of-emails/maildir/not/rb-issue-368-bug.eml": "rejection notice without a standard format",
}

// TestCorpusNotBounces checks that out-of-office replies, auto-replies,
// read receipts, abuse and DMARC reports, person mails and broken mails are
// not taken for bounces.
func TestCorpusNotBounces(t *testing.T) {
	t.Parallel()
	n := 0
	for _, r := range readManifest(t) {
		if r.category == "bounce" {
			continue
		}
		n++
		rep := parse(readFixture(t, r.path))
		checkInvariants(t, r.path, rep)
		if _, ok := knownDisagreements[r.path]; ok {
			if !rep.IsBounce() {
				t.Errorf("%s: listed in knownDisagreements but no longer read as a bounce", r.path)
			}
			continue
		}
		if rep.IsBounce() || rep.Kind != "" {
			t.Errorf("%s (%s): read as a bounce: %+v", r.path, r.category, rep)
		}
	}
	if n < 100 {
		t.Fatalf("only %d non-bounce fixtures", n)
	}
}

// checkInvariants checks what the package documentation promises of every
// Report.
func checkInvariants(t *testing.T, name string, r Report) {
	t.Helper()
	switch r.Kind {
	case "", KindDSN, KindHeuristic:
	default:
		t.Errorf("%s: Kind %q", name, r.Kind)
	}
	if r.Kind == "" && (r.Delayed || len(r.Recipients) > 0 || r.OriginalMessageID != "" || len(r.OriginalReferences) > 0) {
		t.Errorf("%s: not a report but fields set: %+v", name, r)
	}
	if len(r.Recipients) > maxRecipients || len(r.OriginalReferences) > maxRefs {
		t.Errorf("%s: %d recipients, %d references", name, len(r.Recipients), len(r.OriginalReferences))
	}
	seen := map[string]bool{}
	for _, rc := range r.Recipients {
		if rc.Addr == "" || rc.Addr != strings.ToLower(rc.Addr) || !strings.Contains(rc.Addr, "@") || seen[rc.Addr] {
			t.Errorf("%s: bad or repeated address %q", name, rc.Addr)
		}
		seen[rc.Addr] = true
		if rc.Status != "" && enhancedCode(rc.Status) != rc.Status {
			t.Errorf("%s: status %q is not an RFC 3463 code", name, rc.Status)
		}
		if !utf8.ValidString(rc.Diagnostic) || utf8.RuneCountInString(rc.Diagnostic) > maxDiagnostic ||
			strings.ContainsAny(rc.Diagnostic, "\r\n\t\x00") || rc.Diagnostic != strings.TrimSpace(rc.Diagnostic) {
			t.Errorf("%s: diagnostic not one clean line: %q", name, rc.Diagnostic)
		}
		if rc.Permanent && (rc.Action == "delayed" || rc.Action == "delivered") {
			t.Errorf("%s: %s permanent with action %q", name, rc.Addr, rc.Action)
		}
	}
	for _, id := range append([]string{r.OriginalMessageID}, r.OriginalReferences...) {
		if strings.ContainsAny(id, "<> \t\r\n") || !utf8.ValidString(id) {
			t.Errorf("%s: bad message id %q", name, id)
		}
	}
	if r.Delayed && r.Permanent() {
		t.Errorf("%s: both delayed and permanent", name)
	}
}

// TestCorpusGolden pins what is read from a selection of fixtures, one per
// way of reporting, checked by hand against the files.
func TestCorpusGolden(t *testing.T) {
	t.Parallel()
	type rc struct{ addr, status string }
	for _, tc := range []struct {
		path               string
		kind               string
		rcpts              []rc
		permanent, delayed bool
		origID             string
	}{
		{"sisimai-set-of-emails/maildir/bsd/lhost-exim-01.eml", KindHeuristic,
			[]rc{{"kijitora@example.ed.jp", "5.7.0"}}, true, false, "E1P1ce6-000Egt-GZ@e1.example.org"},
		{"sisimai-set-of-emails/maildir/bsd/lhost-exim-02.eml", KindHeuristic,
			[]rc{{"kijitora@example.jp", "5.1.1"}, {"sabatora@example.jp", "5.2.1"}}, true, false, "E1X58pB-0004bW-2s@marutamachi.example.org"},
		{"sisimai-set-of-emails/maildir/bsd/lhost-qmail-01.eml", KindHeuristic,
			[]rc{{"kijitora@example.ne.jp", "5.5.0"}}, true, false, "000000000.9999999999999.JavaMail.postmaster@mailhub"},
		{"sisimai-set-of-emails/maildir/bsd/lhost-gmail-04.eml", KindHeuristic,
			[]rc{{"kijitora@example.com", "5.7.1"}}, true, false, "CAJYcEwW7ghrwjbwmwK3GKRG98qSVTKhGBvnkbVH1RdwFJwHWFQ@mail.gmail.com"},
		{"sisimai-set-of-emails/maildir/bsd/lhost-gmx-01.eml", KindHeuristic,
			[]rc{{"shironeko@example.jp", "5.2.2"}}, true, false, "trinity-d174cb7e-d4a8-4dd5-8b53-7a9f70928e75-1417217529360@3capp-mailcom-lxa02"},
		{"sisimai-set-of-emails/maildir/bsd/lhost-dragonfly-01.eml", KindHeuristic,
			[]rc{{"pseudo-local-part@google.example.com", "5.7.26"}}, true, false, "66681288.e06d1.3824794@df.example.jp"},
		{"sisimai-set-of-emails/maildir/bsd/lhost-domino-01.eml", KindHeuristic,
			[]rc{{"kijitora@example.jp", ""}}, true, false, ""},
		{"sisimai-set-of-emails/maildir/bsd/lhost-v5sendmail-01.eml", KindHeuristic,
			[]rc{{"kijitora@example.com", ""}}, false, false, ""},
		{"sisimai-set-of-emails/maildir/bsd/lhost-amazonworkmail-01.eml", KindHeuristic,
			[]rc{{"kijitora@example.jp", "5.1.1"}}, true, false, "000001523f1865dd-0dbfd06e-bfce-4637-b049-3318ea42f98a-000000@us-west-2.amazonses.com"},
		{"sisimai-set-of-emails/maildir/bsd/lhost-office365-01.eml", KindDSN,
			[]rc{{"kijitora@example.com", "5.1.10"}}, true, false, "FFFFFFFF.EEEEEEEE@example.ed.jp"},
		{"sisimai-set-of-emails/maildir/bsd/lhost-postfix-02.eml", KindDSN,
			[]rc{{"filtered@example.co.jp", "5.2.1"}, {"userunknown@example.co.jp", "5.1.1"}}, true, false, ""},
		{"sisimai-set-of-emails/maildir/bsd/rhost-google-01.eml", KindDSN,
			[]rc{{"shironeko@example.ne.jp", "5.2.1"}}, true, false, "201305110000000000000.r4B003v000000@mail4.example.co.jp"},
		{"sisimai-set-of-emails/maildir/bsd/rfc3464-04.eml", KindDSN,
			[]rc{{"kijitora@mailx-53.neko.example.edu", "5.5.0"}}, true, false, "00000000000.000000@mx4.example.co.jp"},
		{"enmime/dsn/testdata/multi_recipient_dsn.raw", KindDSN,
			[]rc{{"arathib@vnet.ibm.com", "5.0.0"}, {"johnh@hpnjld.njd.hp.com", "4.0.0"}, {"wsnell@sdcc13.ucsd.edu", "5.0.0"}}, true, false, ""},
		{"enmime/dsn/testdata/delayed_dsn.raw", KindDSN,
			[]rc{{"thomas@de-montfort.ac.uk", "4.0.0"}}, false, true, ""},
		{"mikel-mail/spec/fixtures/emails/multipart_report_emails/report_422.eml", KindDSN,
			[]rc{{"fraser@oooooooo.com.au", "4.2.2"}}, false, true, "15655788.13.1200472642578.JavaMail.Administrator@mail.ttttt.com.au"},
		{"mimekit/messages/delivery-status-multiple-blank-lines.txt", KindDSN,
			[]rc{{"orig_recip@customer.com", "5.5.0"}}, true, false, ""},
		{"flanker/bounce/delayed-broken.eml", KindDSN,
			[]rc{{"demo@example.com", "4.2.2"}}, false, false, ""},
	} {
		t.Run(path.Base(tc.path), func(t *testing.T) {
			t.Parallel()
			r := parse(readFixture(t, tc.path))
			var got []rc
			for _, x := range r.Recipients {
				got = append(got, rc{x.Addr, x.Status})
			}
			if r.Kind != tc.kind || fmt.Sprint(got) != fmt.Sprint(tc.rcpts) {
				t.Errorf("Kind %q recipients %v; want %q %v", r.Kind, got, tc.kind, tc.rcpts)
			}
			if r.Permanent() != tc.permanent || r.Delayed != tc.delayed || r.OriginalMessageID != tc.origID {
				t.Errorf("Permanent %v Delayed %v OriginalMessageID %q; want %v %v %q",
					r.Permanent(), r.Delayed, r.OriginalMessageID, tc.permanent, tc.delayed, tc.origID)
			}
		})
	}
}
