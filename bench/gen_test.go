package bench

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"mime"
	"mime/quotedprintable"
	"strings"
	"time"
)

// A corpus is a deterministic set of generated support mails: the same
// seed gives the same bytes, so every run and every side of a comparison
// reads the same mailbox.
type corpus struct {
	rng   *rand.Rand
	mails []genMail
}

// genMail is one generated mail and what the harness needs to know of it.
type genMail struct {
	MessageID string // without <>
	FollowUp  bool   // a reply to an earlier mail of the corpus
	Raw       []byte
}

// Mail shape: sizes are spread between 2 and 200 KB (most small, a long
// tail of large ones, as in a real support inbox), a fifth carry an
// attachment, a quarter are follow-ups to an earlier mail, some are HTML.
const (
	minMailBytes   = 2 << 10
	maxMailBytes   = 200 << 10
	attachmentRate = 0.20
	followUpRate   = 0.25
	htmlRate       = 0.30
	customers      = 2000
)

var (
	firstNames = []string{"Anna", "Bernd", "Chloé", "Dmitri", "Eva", "Farid", "Grete", "Hiroshi", "Inès", "Jürgen", "Kari", "Lena", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Søren", "Tomasz"}
	lastNames  = []string{"Müller", "Schmidt", "Dubois", "Rossi", "García", "Nowak", "Jensen", "Kowalski", "Tanaka", "Okafor", "Fischer", "Weber", "Martin", "Silva", "Novák"}
	topics     = []string{"VPN does not connect", "Printer on 3rd floor offline", "Outlook keeps asking for password", "New laptop for onboarding", "Cannot open shared drive", "Monitor flickers", "Request: access to finance folder", "Phone not syncing mail", "Wi-Fi drops in meeting room B", "Software licence expired", "Password reset", "Keyboard missing keys", "Teams crashes on start", "Backup failed last night", "Invoice PDF will not print"}
	words      = strings.Fields("the a to and of in is it that for on with this my we you not have be are from at as your was but can when after again please error message screen computer laptop network server login password printer update restart tried already since yesterday morning office colleague team urgent help thanks regards problem issue ticket shows window button click open file folder drive connection settings version install account email phone meeting")
	mailers    = []string{"Microsoft Outlook 16.0", "Apple Mail (2.3774)", "Mozilla Thunderbird 128.4", "Roundcube Webmail/1.6.9", "K-9 Mail for Android"}
	attachKind = []struct{ name, ctype string }{
		{"screenshot.png", "image/png"}, {"error-log.txt", "text/plain"}, {"invoice.pdf", "application/pdf"},
		{"photo.jpg", "image/jpeg"}, {"report.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
	}
)

// newCorpus generates n mails from seed.
func newCorpus(seed uint64, n int) *corpus {
	c := &corpus{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := range n {
		c.mails = append(c.mails, c.generate(i, 0))
	}
	return c
}

// withBig replaces count evenly spread mails by mails carrying an
// attachment of attachBytes (decoded), for the memory profile.
func (c *corpus) withBig(count, attachBytes int) {
	if count <= 0 || len(c.mails) == 0 {
		return
	}
	step := max(len(c.mails)/count, 1)
	for k := range count {
		i := min(step/2+k*step, len(c.mails)-1)
		c.mails[i] = c.generate(i, attachBytes)
	}
}

// totalBytes is the sum of the raw sizes.
func (c *corpus) totalBytes() int64 {
	var n int64
	for _, m := range c.mails {
		n += int64(len(m.Raw))
	}
	return n
}

// size draws a target size: log-uniform between min and max, so a mail of
// 2–4 KB is as likely as one of 100–200 KB is not.
func (c *corpus) size() int {
	lo, hi := float64(minMailBytes), float64(maxMailBytes)
	// Square the uniform draw to skew towards small mails.
	u := c.rng.Float64()
	u *= u
	return int(lo * math.Pow(hi/lo, u))
}

func (c *corpus) sentence() string {
	n := 6 + c.rng.IntN(14)
	var b strings.Builder
	for j := range n {
		w := words[c.rng.IntN(len(words))]
		if j == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	b.WriteByte('.')
	return b.String()
}

// paragraphs returns about n bytes of text in paragraphs of wrapped lines.
func (c *corpus) paragraphs(n int) string {
	var b strings.Builder
	line := 0
	for b.Len() < n {
		s := c.sentence()
		if line+len(s) > 72 {
			b.WriteString("\r\n")
			line = 0
		} else if line > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(s)
		line += len(s)
		if c.rng.IntN(12) == 0 {
			b.WriteString("\r\n\r\n")
			line = 0
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// generate builds mail i; attachBytes > 0 forces an attachment of that
// size (the big mails of the memory profile).
func (c *corpus) generate(i int, attachBytes int) genMail {
	r := c.rng
	cust := r.IntN(customers)
	first, last := firstNames[cust%len(firstNames)], lastNames[(cust/len(firstNames))%len(lastNames)]
	from := fmt.Sprintf("%s %s <%s.%s%d@customer%d.example>", mime.QEncoding.Encode("utf-8", first), mime.QEncoding.Encode("utf-8", last),
		asciiLower(first), asciiLower(last), cust, cust%97)
	msgID := fmt.Sprintf("%d.%x@mail.customer%d.example", i, r.Uint64(), cust%97)
	subject := topics[r.IntN(len(topics))]
	date := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC).Add(time.Duration(i) * 37 * time.Second)

	var refs []string
	followUp := false
	if i > 10 && r.Float64() < followUpRate && len(c.mails) > 0 {
		// A reply to an earlier mail of the corpus: threads by References.
		orig := c.mails[r.IntN(len(c.mails))]
		refs = append(refs, orig.MessageID)
		subject = "Re: " + headerValue(orig.Raw, "Subject")
		followUp = true
	}

	target := c.size()
	var h bytes.Buffer
	hops := 2 + r.IntN(4)
	for k := range hops {
		fmt.Fprintf(&h, "Received: from mx%d.relay%d.example (mx%d.relay%d.example [192.0.2.%d])\r\n\tby mail.example.com (Postfix) with ESMTPS id %X\r\n\tfor <support@example.com>; %s\r\n",
			k, cust%13, k, cust%13, 1+r.IntN(250), r.Uint32(), date.Add(-time.Duration(hops-k)*time.Second).Format(time.RFC1123Z))
	}
	fmt.Fprintf(&h, "Return-Path: <%s.%s%d@customer%d.example>\r\n", asciiLower(first), asciiLower(last), cust, cust%97)
	fmt.Fprintf(&h, "Authentication-Results: mail.example.com; dkim=pass header.d=customer%d.example; spf=pass smtp.mailfrom=customer%d.example\r\n", cust%97, cust%97)
	fmt.Fprintf(&h, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=customer%d.example; s=sel1;\r\n\th=from:to:subject:date:message-id; bh=%s;\r\n\tb=%s\r\n",
		cust%97, base64.StdEncoding.EncodeToString(c.bytes(32)), wrap(base64.StdEncoding.EncodeToString(c.bytes(256)), 70, "\r\n\t"))
	fmt.Fprintf(&h, "From: %s\r\nTo: IT Support <support@example.com>\r\n", from)
	if r.IntN(5) == 0 {
		fmt.Fprintf(&h, "Cc: %s <colleague%d@customer%d.example>\r\n", firstNames[r.IntN(len(firstNames))], r.IntN(100), cust%97)
	}
	fmt.Fprintf(&h, "Subject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n", mime.QEncoding.Encode("utf-8", subject), date.Format(time.RFC1123Z), msgID)
	if len(refs) > 0 {
		fmt.Fprintf(&h, "In-Reply-To: <%s>\r\nReferences: <%s>\r\n", refs[0], refs[0])
	}
	fmt.Fprintf(&h, "X-Mailer: %s\r\nMIME-Version: 1.0\r\n", mailers[r.IntN(len(mailers))])

	textLen := max(target-h.Len()-600, 400)
	withAttachment := attachBytes > 0 || r.Float64() < attachmentRate
	attach := 0
	if withAttachment {
		attach = attachBytes
		if attach == 0 {
			// Base64 grows the attachment by a third: leave room for the text.
			attach = max((target-h.Len())*3/5, 1024)
			textLen = max(target-h.Len()-attach*4/3-800, 400)
		}
	}
	html := r.Float64() < htmlRate
	if html {
		textLen /= 2 // the text goes out twice: plain and HTML
	}
	text := c.paragraphs(max(textLen, 300))

	boundary := func(k int) string { return fmt.Sprintf("=_bench_%d_%d_%x", i, k, r.Uint32()) }
	var body bytes.Buffer
	writeText := func() {
		if !html {
			body.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
			writeQP(&body, text)
			return
		}
		b := boundary(1)
		fmt.Fprintf(&body, "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n--%s\r\n", b, b)
		body.WriteString("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
		writeQP(&body, text)
		fmt.Fprintf(&body, "\r\n--%s\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n", b)
		writeQP(&body, "<html><body><p>"+strings.ReplaceAll(text, "\r\n\r\n", "</p>\r\n<p>")+"</p></body></html>\r\n")
		fmt.Fprintf(&body, "\r\n--%s--\r\n", b)
	}
	if !withAttachment {
		writeText()
	} else {
		b := boundary(0)
		k := attachKind[r.IntN(len(attachKind))]
		fmt.Fprintf(&body, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\nThis is a multi-part message in MIME format.\r\n--%s\r\n", b, b)
		writeText()
		fmt.Fprintf(&body, "\r\n--%s\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: attachment; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
			b, k.ctype, k.name, k.name)
		writeBase64(&body, c, attach)
		fmt.Fprintf(&body, "\r\n--%s--\r\n", b)
	}
	raw := make([]byte, 0, h.Len()+body.Len())
	raw = append(raw, h.Bytes()...)
	raw = append(raw, body.Bytes()...)
	return genMail{MessageID: msgID, FollowUp: followUp, Raw: raw}
}

func (c *corpus) bytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := c.rng.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// writeBase64 writes n random bytes base64-encoded in 76-column lines,
// a chunk at a time so a 25 MB attachment is never a second copy.
func writeBase64(w *bytes.Buffer, c *corpus, n int) {
	const chunk = 57 * 1024 // a multiple of 57 bytes: whole 76-column lines
	line := make([]byte, 76)
	for n > 0 {
		k := min(n, chunk)
		src := c.bytes(k)
		for len(src) > 0 {
			m := min(len(src), 57)
			enc := line[:base64.StdEncoding.EncodedLen(m)]
			base64.StdEncoding.Encode(enc, src[:m])
			w.Write(enc)
			w.WriteString("\r\n")
			src = src[m:]
		}
		n -= k
	}
}

func writeQP(w *bytes.Buffer, s string) {
	q := quotedprintable.NewWriter(w)
	q.Write([]byte(s))
	q.Close()
}

func wrap(s string, n int, sep string) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n])
		b.WriteString(sep)
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

func asciiLower(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r)
		case r == 'ü':
			b.WriteString("ue")
		case r == 'é' || r == 'è':
			b.WriteByte('e')
		case r == 'ø':
			b.WriteString("oe")
		case r == 'í':
			b.WriteByte('i')
		case r == 'á':
			b.WriteByte('a')
		}
	}
	return b.String()
}

// headerValue returns the decoded value of the first field name in raw.
func headerValue(raw []byte, name string) string {
	prefix := []byte(name + ": ")
	for line := range bytes.SplitSeq(raw, []byte("\r\n")) {
		if len(line) == 0 {
			break
		}
		if bytes.HasPrefix(line, prefix) {
			v := string(line[len(prefix):])
			if d, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
				v = d
			}
			return strings.TrimPrefix(v, "Re: ")
		}
	}
	return ""
}
