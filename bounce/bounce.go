package bounce

import (
	"bytes"
	"strings"

	"github.com/emersion/go-message"
	// Registers every charset with go-message, so that reports in
	// ISO-2022-JP, Windows-1252, KOI8-R ... and RFC 2047 subjects are read
	// as text instead of raw bytes.
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/textproto"
)

// Report kinds.
const (
	KindDSN       = "dsn"       // RFC 3464 delivery status notification
	KindHeuristic = "heuristic" // non-standard delivery report
)

// Recipient is one recipient of the returned message and what happened to it.
type Recipient struct {
	Addr       string // lower-case addr-spec
	Status     string // RFC 3463 code such as "5.1.1" when known, else ""; a generic x.0.0 is refined from the server's reply
	Action     string // RFC 3464 action: failed, delayed, delivered, relayed, expanded; "" when unknown
	Diagnostic string // the server's reply or the report's reason: one line, no control characters, at most 300 characters
	Permanent  bool   // delivery failed for good: 5.x.x or 5xx, or a failure that gives no temporary code
}

// Report is what Parse understood of a mail.
type Report struct {
	Kind               string      // KindDSN, KindHeuristic, or "" when the mail is not a delivery report
	Delayed            bool        // a warning that delivery is still being tried, not a failure
	Recipients         []Recipient // at most 100, one per address
	OriginalMessageID  string      // Message-ID of the returned message, without <>; "" when not found
	OriginalReferences []string    // its References, then its In-Reply-To ids, without <>
}

// Limits on the work done for one mail. Reports put what matters (the
// status and the returned header) in the first few KiB, so the caps cost
// nothing in practice and bound hostile input.
const (
	maxInput         = 1 << 20   // bytes of the raw mail looked at
	maxHeaderBytes   = 256 << 10 // bytes of one header block kept
	maxParts         = 64        // MIME entities visited
	maxDepth         = 8         // multipart nesting
	maxPartText      = 256 << 10 // decoded bytes read from one text part
	maxTextTotal     = 512 << 10 // decoded text bytes read in all
	maxStatusBytes   = 64 << 10  // decoded bytes read from one delivery-status part
	maxReturnedBytes = 64 << 10  // bytes read from a returned message (its header)
	maxRecipients    = 100
	maxDiagnostic    = 300 // characters
	maxRefs          = 50
	maxIDLen         = 998 // RFC 5322 line limit; a longer "id" is junk
)

// Parse inspects a raw mail and tells whether it is a delivery report and
// what it reports. It never fails: broken MIME yields whatever could still be
// read, and a mail that is not a report yields a zero Report.
func Parse(raw []byte) (r Report) {
	defer func() {
		// parse is written not to panic and fuzzed for it; should a bug
		// slip through, the mail is handled as an ordinary mail rather
		// than taking its caller down.
		if recover() != nil {
			r = Report{}
		}
	}()
	return parse(raw)
}

// IsBounce reports whether r is a delivery failure or delay report. A
// report whose recipients were all delivered, relayed or expanded is a
// success notice, not a bounce.
func (r Report) IsBounce() bool {
	if r.Kind == "" {
		return false
	}
	if len(r.Recipients) == 0 {
		return true
	}
	for _, rc := range r.Recipients {
		switch rc.Action {
		case "delivered", "relayed", "expanded":
		default:
			return true
		}
	}
	return false
}

// Permanent reports whether any recipient failed permanently.
func (r Report) Permanent() bool {
	for _, rc := range r.Recipients {
		if rc.Permanent {
			return true
		}
	}
	return false
}

// scan holds what the MIME walk found in one mail.
type scan struct {
	top     textproto.Header
	subject string

	parts         int
	textBytes     int
	texts         []string    // decoded human-readable parts, in order
	statusParts   int         // message/delivery-status parts seen
	statusTexts   []string    // their decoded bodies
	returnedParts int         // message/rfc822 and header parts seen
	dsn           []Recipient // from delivery-status parts
	orig          *original   // from the first returned message part
}

// parse does the work of Parse without the panic guard, so that fuzzing
// sees any panic.
func parse(raw []byte) Report {
	if len(raw) > maxInput {
		raw = raw[:maxInput]
	}
	raw = fixLineEnds(raw)
	h, body := readHeader(raw, maxHeaderBytes, false)
	s := &scan{top: h}
	// On a decoding error Text returns the raw value, which is still
	// worth matching.
	subj, _ := (&message.Header{Header: h}).Text("Subject")
	s.subject = oneLine(subj)
	mt, params := mediaType(h, "text/plain")
	reportType := strings.ToLower(strings.TrimSpace(params["report-type"]))
	isReport := mt == "multipart/report"
	if isReport && reportType != "" && !strings.HasSuffix(reportType, "delivery-status") {
		// Read receipts (disposition-notification), abuse and DMARC
		// reports (feedback-report) and the like are not bounces.
		return Report{}
	}
	s.walk(h, body, 0, "text/plain")
	return s.report(isReport && reportType != "")
}

// fixLineEnds turns CR-only line ends into LF.
// QUIRK: old Mac mail stores use bare CR, which no MIME reader splits.
func fixLineEnds(b []byte) []byte {
	head := b[:min(len(b), 64<<10)]
	if bytes.IndexByte(head, '\n') >= 0 || bytes.IndexByte(head, '\r') < 0 {
		return b
	}
	return bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
}

// report decides the kind of the mail and assembles the Report.
func (s *scan) report(dsnReport bool) Report {
	all := strings.ToLower(strings.Join(s.texts, "\n"))

	// The returned message: a message/rfc822 (or header) part first, else
	// a header block quoted in the text.
	var report []string
	orig := s.orig
	var unsent *original // a returned header without Message-ID
	for _, t := range s.texts {
		ls := lines(t)
		q, ok := findQuoted(ls)
		if ok && (orig == nil || orig.messageID == "") {
			o := q.orig
			orig = &o
		}
		rl, u := reportLines(ls, q, ok)
		if unsent == nil {
			unsent = u
		}
		report = append(append(report, rl...), "")
	}
	for _, t := range s.statusTexts {
		// QUIRK: a returned header whose boundary line was mangled ends up
		// inside the delivery-status part (rhost-google-01 in sisimai's set).
		if orig != nil && orig.messageID != "" {
			break
		}
		if q, ok := findQuoted(lines(t)); ok {
			o := q.orig
			orig = &o
		}
	}
	if orig == nil {
		orig = unsent
	}

	inline := parseStatusFields(strings.Join(report, "\n"))
	var r Report
	if s.statusParts > 0 || dsnReport {
		r.Kind = KindDSN
	} else {
		score, content, machine := s.score(all)
		if len(inline) > 0 {
			score += weightStrong
			content = true
		}
		if score < bounceScore || !content || !machine {
			return Report{}
		}
		r.Kind = KindHeuristic
	}
	if orig != nil {
		r.OriginalMessageID = orig.messageID
		r.OriginalReferences = orig.refs
	}

	r.Recipients = s.dsn
	if len(r.Recipients) == 0 {
		r.Recipients = inline
	}
	if len(r.Recipients) == 0 {
		r.Recipients = s.guessRecipients(report, orig, all)
	}
	if len(r.Recipients) == 0 {
		r.Delayed = isDelay(s.subject, all)
		return r
	}
	failed, delayed := false, false
	for _, rc := range r.Recipients {
		failed = failed || rc.Action == "failed" || rc.Permanent
		delayed = delayed || rc.Action == "delayed"
	}
	r.Delayed = delayed && !failed
	return r
}

// guessRecipients finds the failed recipients of a report without usable
// status fields: X-Failed-Recipients (Exim, Gmail) when present, else the
// addresses the report text points at, else the only recipient of the
// returned message.
func (s *scan) guessRecipients(report []string, orig *original, all string) []Recipient {
	delayed := isDelay(s.subject, all)
	temp := hasAny(all, tempPhrases)
	exclude := map[string]bool{}
	// Our own addresses: the bounce goes to the sender of the returned
	// message. (Delivered-To and X-Original-To are left out: some MTAs
	// copy the failed recipient there.)
	for _, a := range headerAddrs(s.top, "From", "Sender", "Reply-To", "To", "Cc", "Return-Path", "Errors-To") {
		exclude[a] = true
	}
	if orig != nil {
		for _, a := range orig.senders {
			exclude[a] = true
		}
	}

	var found []foundAddr
	if failed := headerAddrs(s.top, "X-Failed-Recipients"); len(failed) > 0 {
		lower := make([]string, len(report))
		for i, l := range report {
			lower[i] = strings.ToLower(l)
		}
		for _, a := range failed {
			if len(found) >= maxRecipients || containsFound(found, a) {
				continue
			}
			found = append(found, foundAddr{a, lineWith(lower, a)})
		}
	} else {
		found = findRecipients(report, exclude)
	}
	if len(found) == 0 && orig != nil && len(orig.rcpts) == 1 && !exclude[orig.rcpts[0]] {
		found = append(found, foundAddr{orig.rcpts[0], -1})
	}

	var out []Recipient
	for i, f := range found {
		next := -1
		if i+1 < len(found) {
			next = found[i+1].line
		}
		diag, status := describe(report, f.line, next, len(found) == 1)
		if diag == "" && len(found) == 1 {
			diag = bestCodeLine(report)
			status = diagCode(diag)
		}
		out = addRecipient(out, heuristicRecipient(f.addr, diag, status, delayed, temp))
	}
	return out
}

func containsFound(found []foundAddr, a string) bool {
	for _, f := range found {
		if f.addr == a {
			return true
		}
	}
	return false
}

// lineWith returns the index of the first line that contains a, or -1.
func lineWith(ls []string, a string) int {
	for i, l := range ls {
		if strings.Contains(l, a) {
			return i
		}
	}
	return -1
}
