package threading

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// sampleCorpus returns a fixed, representative sample of the corpus: the
// first perCategory raw messages (by path) of every category, so bounces,
// charsets, attachments and malformed mail are all in it.
func sampleCorpus(tb testing.TB, perCategory int) [][]byte {
	tb.Helper()
	entries := readManifest(tb)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	taken := map[string]int{}
	var raws [][]byte
	for _, e := range entries {
		if taken[e.Category] >= perCategory {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(corpusDir, e.Path))
		if err != nil {
			tb.Fatal(err)
		}
		taken[e.Category]++
		raws = append(raws, raw)
	}
	return raws
}

// benchWords is the vocabulary of generated text; some words need
// quoted-printable escapes.
var benchWords = strings.Fields(`the printer on floor three shows error again after
restart Drucker zeigt Fehler nach dem Neustart während Übertragung café résumé
please could you check invoice number ticket VPN connection password reset
laptop screen flickers since update kind regards thanks in advance`)

// genMultipart builds a typical support mail of about size bytes: a
// relayed header with DKIM, multipart/mixed holding multipart/alternative
// (quoted-printable text and HTML) and a base64 PDF attachment.
func genMultipart(size int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var b bytes.Buffer
	for k := range 3 {
		fmt.Fprintf(&b, "Received: from mx%d.relay.example (mx%d.relay.example [192.0.2.%d])\r\n\tby mail.example.com (Postfix) with ESMTPS id %X\r\n\tfor <support@example.com>; Mon, 2 Nov 2026 08:00:%02d +0000\r\n", k, k, 1+r.IntN(250), r.Uint32(), k)
	}
	sig := make([]byte, 256)
	for i := range sig {
		sig[i] = byte(r.Uint32())
	}
	fmt.Fprintf(&b, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=customer.example; s=sel1;\r\n\th=from:to:subject:date:message-id; bh=%s;\r\n\tb=%s\r\n",
		base64.StdEncoding.EncodeToString(sig[:32]), base64.StdEncoding.EncodeToString(sig))
	b.WriteString("Return-Path: <ann.mueller@customer.example>\r\n")
	b.WriteString("From: =?utf-8?q?Ann_M=C3=BCller?= <ann.mueller@customer.example>\r\nTo: IT Support <support@example.com>\r\n")
	fmt.Fprintf(&b, "Subject: =?utf-8?q?Re=3A_Drucker_zeigt_Fehler_=E2=80=93_bitte_pr=C3=BCfen?=\r\nDate: Mon, 2 Nov 2026 08:00:00 +0000\r\nMessage-ID: <%x@mail.customer.example>\r\n", r.Uint64())
	fmt.Fprintf(&b, "In-Reply-To: <%x@helpdesk.example.com>\r\nReferences: <%x@mail.customer.example> <%x@helpdesk.example.com>\r\n", r.Uint64(), r.Uint64(), r.Uint64())
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_outer\"\r\n\r\nThis is a multi-part message in MIME format.\r\n")

	rest := max(size-b.Len()-2400, 1000) // room for part headers and QP escapes
	attach := rest / 3 * 3 / 4           // a third of the room, base64 grows it by 4/3
	textLen := (rest - rest/3) / 2
	text := benchText(r, textLen)
	b.WriteString("--=_outer\r\nContent-Type: multipart/alternative; boundary=\"=_inner\"\r\n\r\n")
	b.WriteString("--=_inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	writeQPForBench(&b, text)
	b.WriteString("\r\n--=_inner\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	writeQPForBench(&b, "<html><body><p>"+strings.ReplaceAll(text, "\r\n\r\n", "</p>\r\n<p>")+"</p></body></html>\r\n")
	b.WriteString("\r\n--=_inner--\r\n\r\n--=_outer\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\nContent-Disposition: attachment; filename=\"report.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	pdf := make([]byte, attach)
	for i := range pdf {
		pdf[i] = byte(r.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(pdf)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
	b.WriteString("\r\n--=_outer--\r\n")
	return b.Bytes()
}

// writeQPForBench writes s quoted-printable with soft breaks at 76 columns.
func writeQPForBench(b *bytes.Buffer, s string) {
	col := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' && i+1 < len(s) && s[i+1] == '\n' {
			b.WriteString("\r\n")
			i++
			col = 0
			continue
		}
		n := 1
		if c == '=' || c >= 0x80 || c < ' ' {
			n = 3
		}
		if col+n > 75 {
			b.WriteString("=\r\n")
			col = 0
		}
		if n == 3 {
			fmt.Fprintf(b, "=%02X", c)
		} else {
			b.WriteByte(c)
		}
		col += n
	}
}

// BenchmarkParse measures Parse on a corpus sample (per message) and on a
// generated 30 KB multipart mail, the typical shapes of the ingest path.
func BenchmarkParse(b *testing.B) {
	b.Run("corpus-sample", func(b *testing.B) {
		raws := sampleCorpus(b, 4)
		total := 0
		for _, raw := range raws {
			total += len(raw)
		}
		b.SetBytes(int64(total / len(raws)))
		b.ReportAllocs()
		b.ResetTimer()
		i := 0
		for b.Loop() {
			_, _ = Parse(raws[i%len(raws)], Limits{})
			i++
		}
	})
	raw := genMultipart(30<<10, 1)
	b.Run("multipart-30KB", func(b *testing.B) {
		benchOne(b, int64(len(raw)), func() error { _, err := Parse(raw, Limits{}); return err })
	})
	text := genTextQP(100<<10, 1)
	b.Run("text-qp-100KB", func(b *testing.B) {
		benchOne(b, int64(len(text)), func() error { _, err := Parse(text, Limits{}); return err })
	})
}

// genTextQP makes a single-part quoted-printable text mail of about size
// bytes, the shape of most long mails a help desk gets.
func genTextQP(size int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	var b bytes.Buffer
	b.WriteString("From: Ann <ann@customer.example>\r\nTo: support@example.com\r\nSubject: printer\r\n")
	b.WriteString("Message-ID: <text@customer.example>\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	writeQPForBench(&b, benchText(r, size*9/10))
	return b.Bytes()
}

// benchText makes at least n bytes of sentences of benchWords, now and
// then a blank line between them.
func benchText(r *rand.Rand, n int) string {
	var text strings.Builder
	for text.Len() < n {
		for i := range 8 + r.IntN(12) {
			if i > 0 {
				text.WriteByte(' ')
			}
			text.WriteString(benchWords[r.IntN(len(benchWords))])
		}
		text.WriteString(".\r\n")
		if r.IntN(4) == 0 {
			text.WriteString("\r\n")
		}
	}
	return text.String()
}

// benchOne runs parse in a loop, reporting size bytes per run and
// allocations.
func benchOne(b *testing.B, size int64, parse func() error) {
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := parse(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseReader measures the streaming parse on the 30 KB mail and
// on a 16 MB one (12 MB attachment), where memory stays flat.
func BenchmarkParseReader(b *testing.B) {
	raw := genMultipart(30<<10, 1)
	b.Run("multipart-30KB", func(b *testing.B) {
		benchOne(b, int64(len(raw)), func() error { _, err := ParseReader(bytes.NewReader(raw), Limits{}); return err })
	})
	size, _ := io.Copy(io.Discard, newBigMail(12<<20))
	b.Run("attachment-16MB", func(b *testing.B) {
		benchOne(b, size, func() error { _, err := ParseReader(newBigMail(12<<20), Limits{}); return err })
	})
}
