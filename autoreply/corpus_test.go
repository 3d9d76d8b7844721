package autoreply

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/helpdesk/helpdesk/threading"
)

// corpusDir is the corpus copy owned by the threading package (raw messages
// with their sources' licences).
const corpusDir = "../threading/testdata/corpus"

type corpusEntry struct{ path, category, expected string }

func readCorpus(t *testing.T) []corpusEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "manifest.tsv"))
	if err != nil {
		t.Fatalf("open manifest: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var out []corpusEntry
	for first := true; sc.Scan(); first = false {
		c := strings.Split(sc.Text(), "\t")
		if first || len(c) < 7 || c[3] != "raw" {
			continue
		}
		out = append(out, corpusEntry{path: c[0], category: c[4], expected: c[6]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 250 {
		t.Fatalf("only %d raw corpus messages", len(out))
	}
	return out
}

// corpusOwn is an Own that matches nothing in the corpus, so the own-mail
// rule cannot hide a miss of the others.
var corpusOwn = Own{Addresses: []string{"support@helpdesk.invalid"}, Domain: "helpdesk.invalid"}

// TestClassify_Corpus: every bounce, out-of-office and auto-reply of the
// corpus is automated; sisimai's "is not a bounce" mails are not bounces.
// The people's mail classified as automated is listed (and bounded).
func TestClassify_Corpus(t *testing.T) {
	t.Parallel()
	mustBeAutomated := map[string]bool{"bounce": true, "ooo": true, "autoreply": true}
	human := map[string]bool{"reply": true, "charset": true, "html": true, "other": true, "attachment": true, "encoded-subject": true}
	var humanTotal int
	var humanAutomated []string
	kinds := map[Kind]int{}
	for _, e := range readCorpus(t) {
		raw, err := os.ReadFile(filepath.Join(corpusDir, e.path))
		if err != nil {
			t.Fatal(err)
		}
		m, err := threading.Parse(raw, threading.Limits{})
		if err != nil {
			continue // no header at all: nothing to classify (tested in threading)
		}
		v := Classify(m, corpusOwn)
		if v.Automated && (v.Kind == "" || v.Reason == "") {
			t.Errorf("%s: automated verdict without kind or reason: %+v", e.path, v)
		}
		switch {
		case mustBeAutomated[e.category]:
			kinds[v.Kind]++
			if !v.Automated {
				t.Errorf("%s (%s, subject %q, from %q): not classified as automated", e.path, e.category, m.Subject, m.From.Addr)
			}
			if e.category == "ooo" && v.Kind != KindOutOfOffice && v.Kind != KindAutoReply {
				t.Errorf("%s: out-of-office classified as %q (%s)", e.path, v.Kind, v.Reason)
			}
			if strings.Contains(e.expected, "is bounce: no") && v.Kind == KindBounce {
				t.Errorf("%s: sisimai says not a bounce, got bounce (%s)", e.path, v.Reason)
			}
			// A list manager's rejection (fml) is list traffic first.
			if strings.Contains(e.expected, "is bounce: yes") && v.Kind != KindBounce && v.Kind != KindList {
				t.Errorf("%s: sisimai says bounce, got %q (%s)", e.path, v.Kind, v.Reason)
			}
		case human[e.category]:
			humanTotal++
			if v.Automated {
				humanAutomated = append(humanAutomated, e.path+" ["+string(v.Kind)+": "+v.Reason+"]")
			}
			if strings.Contains(e.expected, "is bounce: no") && v.Kind == KindBounce {
				t.Errorf("%s: sisimai says not a bounce, got bounce (%s)", e.path, v.Reason)
			}
		}
	}
	sort.Strings(humanAutomated)
	t.Logf("automated kinds of bounce/ooo/autoreply files: %v", kinds)
	t.Logf("%d of %d reply/charset/html/other/attachment/encoded-subject files classified automated:\n%s",
		len(humanAutomated), humanTotal, strings.Join(humanAutomated, "\n"))
	if len(humanAutomated)*5 > humanTotal {
		t.Errorf("%d of %d person-category files classified automated: the rules are too wide", len(humanAutomated), humanTotal)
	}
}
