package threading

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// corpusDir holds the raw messages copied from the shared real-world corpus
// (see testdata/corpus/NOTE.md); each source keeps its _licence/ folder.
const corpusDir = "testdata/corpus"

type corpusEntry struct {
	Path, Source, Category, Tags, Expected string
}

func readManifest(t testing.TB) []corpusEntry {
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
		if first {
			continue // header line
		}
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 7 || c[3] != "raw" {
			continue
		}
		out = append(out, corpusEntry{Path: c[0], Source: c[1], Category: c[4], Tags: c[5], Expected: c[6]})
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read manifest: %v", err)
	}
	if len(out) < 250 {
		t.Fatalf("manifest lists only %d raw messages; the corpus copy is incomplete", len(out))
	}
	return out
}

// knownUnparseable are corpus files with no header at all.
var knownUnparseable = map[string]bool{
	"enmime/testdata/mail/erroneous.raw": true, // starts with "// Not an RFC-822 Document"
}

// TestParse_Corpus parses every raw message of the corpus: no panic, either
// a Message that satisfies the invariants or ErrUnparseable for the files
// known to have no header.
func TestParse_Corpus(t *testing.T) {
	t.Parallel()
	lim := Limits{}.withDefaults()
	for _, e := range readManifest(t) {
		t.Run(e.Path, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(corpusDir, e.Path))
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			m, err := Parse(raw, Limits{})
			if err != nil {
				if errors.Is(err, errParserPanic) {
					t.Fatalf("parser panicked: %v", err)
				}
				if !errors.Is(err, ErrUnparseable) {
					t.Fatalf("error does not wrap ErrUnparseable: %v", err)
				}
				if !knownUnparseable[e.Path] {
					t.Fatalf("unexpectedly unparseable: %v", err)
				}
				return
			}
			if knownUnparseable[e.Path] {
				t.Fatalf("expected ErrUnparseable, got a message")
			}
			checkInvariants(t, m, raw, lim)
			// A From field with an address in it must yield that address.
			if m.From.Addr == "" && strings.Contains(m.Header.Get("From"), "@") {
				t.Errorf("no From address read; header From = %q", m.Header.Get("From"))
			}
		})
	}
}

// checkInvariants asserts what every parsed Message promises.
func checkInvariants(t *testing.T, m *Message, raw []byte, lim Limits) {
	t.Helper()
	if m.Size != len(raw) {
		t.Errorf("Size = %d, want %d", m.Size, len(raw))
	}
	if len(m.RawSHA256) != 64 {
		t.Errorf("RawSHA256 = %q", m.RawSHA256)
	}
	if m.DedupeKey() == "" {
		t.Error("empty DedupeKey")
	}
	if len(m.Text) > lim.MaxTextBytes {
		t.Errorf("Text has %d bytes, limit %d", len(m.Text), lim.MaxTextBytes)
	}
	if strings.Contains(m.Text, "\r") {
		t.Error("Text contains CR")
	}
	for name, s := range map[string]string{"Text": m.Text, "Subject": m.Subject, "From.Name": m.From.Name, "MessageID": m.MessageID} {
		if !utf8.ValidString(s) {
			t.Errorf("%s is not valid UTF-8: %q", name, s)
		}
	}
	if strings.ContainsAny(m.Subject, "\r\n\x00") {
		t.Errorf("Subject contains control characters: %q", m.Subject)
	}
	if len(m.PartTypes) == 0 || m.PartTypes[0] != m.ContentType {
		t.Errorf("PartTypes = %v, ContentType = %q", m.PartTypes, m.ContentType)
	}
	if len(m.PartTypes) > lim.MaxParts {
		t.Errorf("%d parts visited, limit %d", len(m.PartTypes), lim.MaxParts)
	}
	if !strings.Contains(m.ContentType, "/") || m.ContentType != strings.ToLower(m.ContentType) {
		t.Errorf("ContentType = %q", m.ContentType)
	}
	addrs := append([]Address{m.From, m.Sender}, m.To...)
	addrs = append(addrs, m.Cc...)
	addrs = append(addrs, m.ReplyTo...)
	for _, a := range addrs {
		if a.Addr != strings.ToLower(strings.TrimSpace(a.Addr)) {
			t.Errorf("address not normalised: %q", a.Addr)
		}
	}
	for _, id := range append(append([]string{m.MessageID}, m.InReplyTo...), m.References...) {
		if strings.ContainsAny(id, "<> \t\r\n") {
			t.Errorf("id not clean: %q", id)
		}
	}
	if len(m.Warnings) > maxWarnings+1 {
		t.Errorf("%d warnings", len(m.Warnings))
	}
}

var quotedHello = regexp.MustCompile(`== 'Hello'`)

// TestParse_CorpusExpectations holds the parser to what the source projects
// state: talon's replies are "Hello" above the quote in the text/plain part.
func TestParse_CorpusExpectations(t *testing.T) {
	t.Parallel()
	n := 0
	for _, e := range readManifest(t) {
		if !quotedHello.MatchString(e.Expected) {
			continue
		}
		n++
		t.Run(e.Path, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(corpusDir, e.Path))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(raw, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, line := range strings.Split(m.Text, "\n") {
				if strings.TrimSpace(line) == "Hello" {
					found = true
				}
			}
			if !found {
				t.Errorf("no line %q in Text %q", "Hello", m.Text)
			}
		})
	}
	if n < 5 {
		t.Fatalf("only %d fixtures with a 'Hello' expectation", n)
	}
}

// TestParse_CorpusCharsets checks decoded subjects, names and bodies of
// charset fixtures against values obtained independently (Python's email
// package, and its codecs where that package gives up).
func TestParse_CorpusCharsets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path       string
		subject    string
		fromName   string
		textPrefix string
	}{
		{path: "mikel-mail/spec/fixtures/emails/multi_charset/japanese_iso_2022.eml", subject: "まみむめも", fromName: "Mikel Lindsaar", textPrefix: "すみません。"},
		{path: "mikel-mail/spec/fixtures/emails/multi_charset/japanese_shift_jis.eml", textPrefix: "あいうえお\n\nこのメールはテスト用のメールです。"},
		{path: "mikel-mail/spec/fixtures/emails/multi_charset/ks_c_5601-1987.eml", textPrefix: "스티해"},
		{path: "mimekit/messages/japanese.txt", subject: "日本語メールテスト (testing Japanese emails)", fromName: "Atsushi Eno"},
		{path: "php-mime-mail-parser/m0021", subject: "occurs when divided into an array, and the last e of the array! Путін хуйло!!!!!!"},
		{path: "mikel-mail/spec/fixtures/emails/plain_emails/raw_email.eml", subject: "NOTE: 한국말로 하는 것", fromName: "Jamis Buck"},
		{path: "enmime/testdata/mail/qp-utf8-header.raw", subject: "MIME UTF8 Test ¢ More Text", fromName: "James Hillyerd"},
		{path: "sisimai-set-of-emails/maildir/not/is-not-bounce-01.eml", subject: "にゃんこ", fromName: "Kijitora"},
		// Python's email package leaves this ISO-8859-8-I word undecoded;
		// the expected text is base64 + codecs.decode("iso-8859-8").
		{path: "php-mime-mail-parser/issue149", subject: "מענה 'אני לא נמצא': Invoice 02722027"},
		// x-mac-cyrillic body: Python's codec "mac_cyrillic".
		{path: "php-mime-mail-parser/issue230", textPrefix: "ACADEMIC NEWSLETTER #11 | March 2019\n---"},
		{path: "flanker/text-only.eml", textPrefix: "Hello,\nI'm just testing message parsing\n\nBR,\nBob"},
		// Windows-1252 bytes in an unencoded Subject (8-bit header QUIRK).
		{path: "mikel-mail/spec/fixtures/emails/error_emails/invalid_subject_characters.eml", subject: "Formação FrenetikPolis: Mega Campanha Final Verão | Cursos de Setembro"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(corpusDir, tt.path))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(raw, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.subject != "" && m.Subject != tt.subject {
				t.Errorf("Subject = %q, want %q", m.Subject, tt.subject)
			}
			if tt.fromName != "" && m.From.Name != tt.fromName {
				t.Errorf("From.Name = %q, want %q", m.From.Name, tt.fromName)
			}
			if tt.textPrefix != "" && !strings.HasPrefix(m.Text, tt.textPrefix) {
				t.Errorf("Text = %q, want prefix %q", m.Text[:min(len(m.Text), 200)], tt.textPrefix)
			}
		})
	}
}

// BenchmarkParse_Corpus parses every raw corpus message once per iteration.
func BenchmarkParse_Corpus(b *testing.B) {
	var raws [][]byte
	total := 0
	for _, e := range readManifest(b) {
		raw, err := os.ReadFile(filepath.Join(corpusDir, e.Path))
		if err != nil {
			b.Fatal(err)
		}
		raws = append(raws, raw)
		total += len(raw)
	}
	b.SetBytes(int64(total))
	b.ResetTimer()
	for b.Loop() {
		for _, raw := range raws {
			_, _ = Parse(raw, Limits{})
		}
	}
	b.ReportMetric(float64(len(raws)*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
