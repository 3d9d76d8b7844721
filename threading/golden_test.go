package threading

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/parse-golden.tsv from the current Parse")

// goldenFile holds, for every corpus file, a digest of everything Parse
// returns for it (renderMessage). It was first written by the Parse that
// preceded the streaming and allocation work, so it pins that behaviour:
// a change to any field of any corpus message fails TestParse_Golden.
const goldenFile = "testdata/parse-golden.tsv"

// renderMessage prints every field of a parse result in a fixed form.
func renderMessage(m *Message, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "MessageID %q\nInReplyTo %q\nReferences %q\nFrom %q\nSender %q\nReplyTo %q\nTo %q\nCc %q\n",
		m.MessageID, m.InReplyTo, m.References, m.From, m.Sender, m.ReplyTo, m.To, m.Cc)
	fmt.Fprintf(&b, "ReturnPath %q %v\nSubject %q\nDate %s\nContentType %q\nText %q\n",
		m.ReturnPath, m.HasReturnPath, m.Subject, m.Date.Format(time.RFC3339Nano), m.ContentType, m.Text)
	for _, a := range m.Attachments {
		fmt.Fprintf(&b, "Attachment %q %q %d\n", a.Filename, a.ContentType, a.Size)
	}
	fmt.Fprintf(&b, "PartTypes %q\nWarnings %q\nRawSHA256 %s\nSize %d\n", m.PartTypes, m.Warnings, m.RawSHA256, m.Size)
	fields := m.Header.Fields()
	for fields.Next() {
		raw, err := fields.Raw()
		fmt.Fprintf(&b, "Header %q %q %q %v\n", fields.Key(), fields.Value(), raw, err)
	}
	return b.String()
}

func goldenDigest(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for _, lim := range []Limits{{}, smallLimits} {
		out.WriteString(renderMessage(Parse(raw, lim)))
	}
	sum := sha256.Sum256([]byte(out.String()))
	return hex.EncodeToString(sum[:12]), nil
}

// TestParse_Golden compares Parse's complete output (default and small
// limits) on every corpus file with the digests in goldenFile. After a
// deliberate change of behaviour, rewrite it with
// go test -run TestParse_Golden -update-golden ./threading/ and review the
// list of files whose digest changed.
func TestParse_Golden(t *testing.T) {
	t.Parallel()
	var paths []string
	err := filepath.WalkDir(corpusDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(path, "_licence") && !strings.HasSuffix(path, ".md") && !strings.HasSuffix(path, ".tsv") {
			paths = append(paths, filepath.ToSlash(strings.TrimPrefix(path, corpusDir+string(filepath.Separator))))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	got := map[string]string{}
	for _, p := range paths {
		d, err := goldenDigest(filepath.Join(corpusDir, p))
		if err != nil {
			t.Fatal(err)
		}
		got[p] = d
	}
	if *updateGolden {
		var b strings.Builder
		for _, p := range paths {
			fmt.Fprintf(&b, "%s\t%s\n", p, got[p])
		}
		if err := os.WriteFile(goldenFile, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	f, err := os.Open(goldenFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p, d, _ := strings.Cut(sc.Text(), "\t")
		want[p] = d
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(got) {
		t.Errorf("%s lists %d files, the corpus has %d", goldenFile, len(want), len(got))
	}
	for _, p := range paths {
		if want[p] != got[p] {
			t.Errorf("%s: Parse's output changed (digest %s, golden %s)", p, got[p], want[p])
		}
	}
}
