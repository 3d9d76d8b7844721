package quote

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// kind is what one line of a reply looks like on its own.
type kind uint8

const (
	kEmpty  kind = iota // blank, or only spaces / invisible characters
	kText               // anything else: the candidate new text
	kQuote              // starts with '>'
	kRule               // only separator characters: "-----", "_____"
	kSigSep             // the signature separator "-- " (or "--")
	kMobile             // a one-line app signature: "Sent from my iPhone"
)

const (
	// maxHeaderLines bounds how many physical lines one reply header may
	// span: clients wrap "On <date>, <name> <address> wrote:" at 72–80
	// columns, sometimes twice, and a few put blank lines inside it.
	maxHeaderLines = 5
	// maxHeaderLen bounds a joined reply header; longer lines are prose.
	maxHeaderLen = 400
	// maxContLen bounds a continuation line of a header whose first line
	// does not start with a known prefix word ("<name> <addr\n>:").
	maxContLen = 60
	// maxFieldBlock bounds how far an embedded header block is scanned.
	maxFieldBlock = 12
)

// analysis holds the per-line facts the splitter works from. Every slice
// has one entry per line; all of them are filled in one linear pass.
type analysis struct {
	lines []string
	kind  []kind
	// marker[i] > i means lines [i, marker[i]) are a history marker: a reply
	// header ("On … wrote:"), a separator ("-----Original Message-----") or
	// an embedded header block ("From: … Sent: … To: … Subject: …").
	marker []int
	// nextText[i] is the first index >= i whose kind is kText, or len(lines).
	nextText []int
	// nextNonEmpty[i] is the first index >= i that is not kEmpty, or len(lines).
	nextNonEmpty []int
}

func analyze(lines []string) *analysis {
	n := len(lines)
	a := &analysis{
		lines:        lines,
		kind:         make([]kind, n),
		marker:       make([]int, n),
		nextText:     make([]int, n+1),
		nextNonEmpty: make([]int, n+1),
	}
	for i, l := range lines {
		a.kind[i] = classify(l)
	}
	// QUIRK: clients that wrap quoted text after quoting it leave the
	// wrapped tail without '>' ("> … ornare diam," / "eget accumsan …" /
	// ">"). A single such line between two quoted lines, the first of them
	// long enough to have been wrapped, is part of the quote.
	for i := 1; i+1 < n; i++ {
		if a.kind[i] == kText && a.kind[i-1] == kQuote && a.kind[i+1] == kQuote &&
			len(trimInvisible(lines[i-1])) >= 60 {
			a.kind[i] = kQuote
		}
	}
	a.nextText[n], a.nextNonEmpty[n] = n, n
	for i := n - 1; i >= 0; i-- {
		a.nextText[i], a.nextNonEmpty[i] = a.nextText[i+1], a.nextNonEmpty[i+1]
		if a.kind[i] == kText {
			a.nextText[i] = i
		}
		if a.kind[i] != kEmpty {
			a.nextNonEmpty[i] = i
		}
	}
	for i := 0; i < n; {
		if end := a.markerAt(i); end > i {
			a.marker[i] = end
			i = end
			continue
		}
		i++
	}
	return a
}

// isInvisible reports characters that render as nothing or as a space.
func isInvisible(r rune) bool {
	return unicode.IsSpace(r) || r == '\u200b' || r == '\u200c' || r == '\u200d' ||
		r == '\u200e' || r == '\u200f' || r == '\u2060' || r == '\ufeff'
}

func trimInvisible(s string) string { return strings.TrimFunc(s, isInvisible) }

func classify(l string) kind {
	t := trimInvisible(l)
	switch {
	case t == "":
		return kEmpty
	case t[0] == '>':
		return kQuote
	case t == "--":
		// "-- " is the RFC 3676 separator; many clients drop the space.
		return kSigSep
	case ruleRE.MatchString(t):
		return kRule
	case isMobileSig(t):
		return kMobile
	}
	return kText
}

func isMobileSig(t string) bool {
	if len(t) > 3*maxMobileSigLen {
		return false
	}
	lower := strings.ToLower(t)
	found := false
	for _, k := range mobileKeywords {
		if strings.Contains(lower, k) {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	if strings.ContainsAny(t, "[<") {
		t = markdownLinkRE.ReplaceAllString(t, "$1")
		t = trimInvisible(angleURLRE.ReplaceAllString(t, ""))
	}
	return len(t) <= maxMobileSigLen && mobileSigRE.MatchString(t)
}

// markerAt returns the end of the history marker starting at line i, or 0.
func (a *analysis) markerAt(i int) int {
	switch a.kind[i] {
	case kEmpty, kQuote:
		return 0
	case kRule:
		// Outlook and Hotmail draw a line above the header block; it belongs
		// to the history, not to the reply.
		k := a.nextNonEmpty[i+1]
		if k < len(a.lines) && k-i <= 3 {
			return a.blockAt(k)
		}
		return 0
	}
	return a.blockAt(i)
}

func (a *analysis) blockAt(i int) int {
	if k := a.kind[i]; k == kEmpty || k == kQuote || len(a.lines[i]) > maxHeaderLen {
		return 0
	}
	if l := a.lines[i]; mayBeSeparator(l) && separatorRE.MatchString(l) {
		return i + 1
	}
	if end := a.fieldBlockAt(i); end > 0 {
		return end
	}
	return a.replyHeaderAt(i)
}

// fieldName returns the lower-cased field name if l looks like a line of an
// embedded header block: a known name, decorated with spaces, '*' or '_',
// before a colon near the start of the line.
func fieldName(l string) (string, bool) {
	head := l
	if len(head) > maxFieldName {
		head = head[:maxFieldName]
	}
	idx := strings.IndexAny(head, ":：")
	if idx <= 0 {
		return "", false
	}
	name := strings.ToLower(strings.TrimFunc(l[:idx], func(r rune) bool {
		return unicode.IsSpace(r) || r == '*' || r == '_'
	}))
	if _, ok := fieldNames[name]; !ok {
		return "", false
	}
	return name, true
}

// fieldBlockAt recognises "From: … / Sent: … / To: … / Subject: …" in any of
// the known languages: at least two field lines, one naming the sender and
// one something else, with at most one wrapped continuation line between
// fields. Requiring the sender field keeps "To: all staff" prose out.
func (a *analysis) fieldBlockAt(i int) int {
	name, ok := fieldName(a.lines[i])
	if !ok {
		return 0
	}
	hasFrom, hasOther := fieldNames[name], !fieldNames[name]
	count, end, cont := 1, i+1, 0
	for j := i + 1; j < len(a.lines) && j < i+maxFieldBlock; j++ {
		if a.kind[j] == kEmpty || a.kind[j] == kQuote {
			break
		}
		if nm, ok := fieldName(a.lines[j]); ok {
			count++
			if fieldNames[nm] {
				hasFrom = true
			} else {
				hasOther = true
			}
			end, cont = j+1, 0
			continue
		}
		// Outlook wraps long Subject lines and puts "On Behalf Of" on a line
		// of its own.
		if cont++; cont > 1 {
			break
		}
	}
	if count >= 2 && hasFrom && hasOther {
		return end
	}
	return 0
}

// replyHeaderAt recognises an attribution line such as "On <date>, <name>
// wrote:" in the known languages, possibly wrapped over up to
// maxHeaderLines lines. Headers that start with a prefix word ("On", "Am",
// "Le", …) may wrap freely; headers that start with a name or a date
// ("<name> <address> schrieb am …:") may only continue on short lines, so a
// line of prose is never glued to the header below it.
func (a *analysis) replyHeaderAt(i int) int {
	first := a.lines[i]
	prefixed := headerPrefix(first, false)
	if !prefixed && !headerEvidence(first) {
		return 0
	}
	var b strings.Builder
	end := 0
	for j := i; j < len(a.lines) && j < i+maxHeaderLines; j++ {
		l := a.lines[j]
		if j > i {
			t := trimInvisible(l)
			switch {
			case a.kind[j] == kEmpty:
				if !prefixed {
					return 0
				}
				continue
			case a.kind[j] == kQuote && len(t) > 12:
				// "> wrote:" and ">:" are wrapped header tails; longer
				// quoted lines are the quote itself.
				return 0
			case headerPrefix(l, true):
				return 0 // the next header starts here
			case !prefixed && len(t) > maxContLen:
				return 0
			case b.Len()+len(l) > maxHeaderLen:
				return 0
			}
			b.WriteByte(' ')
		}
		b.WriteString(trimInvisible(l))
		if isReplyHeader(b.String(), prefixed) {
			end = j + 1
			break
		}
	}
	if end == 0 {
		return 0
	}
	// A client may have wrapped the tail off a header that already reads as
	// complete ("2016-10-24 15:36 GMT+02:00 Foo bar <" / "info@foo.bar>:",
	// "… <some.one@foo.bar>" / "> wrote:").
	if end < len(a.lines) && a.kind[end] != kEmpty {
		t := trimInvisible(a.lines[end])
		if len(t) <= maxContLen &&
			(strings.Contains(t, "@") || strings.Trim(t, "<>: ") == "" || lastVerb(strings.ToLower(t)) >= 0) &&
			isReplyHeader(b.String()+" "+t, prefixed) {
			end++
		}
	}
	return end
}

// headerPrefix reports whether l starts with a reply-header prefix word
// ("On", "Am", "Le", "W dniu", "在", …) followed by white space. With
// strict, words that also occur inside a wrapped header do not count.
func headerPrefix(l string, strict bool) bool {
	t := strings.TrimLeftFunc(l, func(r rune) bool {
		return unicode.IsSpace(r) || r == '*' || r == '-' || r == '–' || r == '—'
	})
	if strings.HasPrefix(t, "在") {
		return true
	}
	sp := strings.IndexFunc(t, unicode.IsSpace)
	if sp <= 0 || sp > 8 {
		return false
	}
	w := strings.ToLower(t[:sp])
	switch w {
	case "w", "in":
		// "W dniu …" (Polish), "In message <…>, X writes:"
		next := strings.ToLower(strings.TrimLeftFunc(t[sp:], unicode.IsSpace))
		return (w == "w" && strings.HasPrefix(next, "dniu ")) || (w == "in" && strings.HasPrefix(next, "message "))
	}
	weak, ok := prefixWords[w]
	return ok && !(strict && weak)
}

// headerEvidence is the cheap test a line must pass before it can start a
// reply header without a prefix word: an address, a leading date, or a
// "wrote" verb on a line that also has the colon.
func headerEvidence(l string) bool {
	t := trimInvisible(l)
	if t == "" || len(t) > maxHeaderLen {
		return false
	}
	if strings.Contains(t, "@") || (t[0] >= '0' && t[0] <= '9') {
		return true
	}
	return strings.ContainsAny(t, ":：") && lastVerb(strings.ToLower(t)) >= 0
}

// mayBeSeparator is a cheap filter for separatorRE: a run of dashes,
// underscores or equals signs, or a short line with a colon ("Begin
// forwarded message:").
func mayBeSeparator(l string) bool {
	return strings.Contains(l, "--") || strings.Contains(l, "__") || strings.Contains(l, "==") ||
		strings.Contains(l, "—") || (len(l) <= 80 && strings.ContainsAny(l, ":："))
}

// isReplyHeader decides whether a (joined) line is a reply attribution. The
// cheap checks on how the line ends run first, so prose lines cost little.
func isReplyHeader(s string, prefixed bool) bool {
	s = trimInvisible(s)
	if s == "" || len(s) > maxHeaderLen {
		return false
	}
	if s[0] >= '0' && s[0] <= '9' && isoGMTRE.MatchString(s) {
		return true
	}
	lower := strings.ToLower(s)
	trimmed := strings.TrimRight(lower, " \t-*")
	var colonEnd, verbEnd bool
	switch {
	case strings.HasSuffix(trimmed, ":") || strings.HasSuffix(trimmed, "："):
		colonEnd = true
	case strings.HasSuffix(trimmed, ">"):
		// only the date-and-address form ends with '>'
	default:
		// "---- On … Sam <sam@example.com> wrote ----"
		end := tail(trimmed, 60)
		if verbEnd = lastVerb(end) == len(end); !verbEnd {
			return false
		}
	}
	if colonEnd || verbEnd {
		// The verb must be close to the end: "… wrote:", "… schrieb Max
		// <max@example.de>:", "… schrieb am Fr., 28. Apr. 2017 um 11:53 Uhr:".
		const maxAfterVerb = 150
		win := tail(lower, maxAfterVerb+40)
		if e := lastVerb(win); e >= 0 {
			after := win[e:]
			verbLast := verbEnd || strings.Trim(after, " \t-*:：.>") == ""
			hasDigit := strings.ContainsAny(s, "0123456789")
			// Prose such as "In 2019 I wrote the following:" must not
			// qualify, so a header without a prefix word needs an address,
			// "via", a real date or time, or the verb at its end; one with
			// a prefix word needs a digit.
			var evidence bool
			if prefixed {
				evidence = hasDigit
			} else {
				evidence = strings.Contains(s, "@") || strings.Contains(lower, " via ") ||
					timeOrDateRE.MatchString(s) || (hasDigit && verbLast)
			}
			// After the verb comes nothing, a name, an address or a date
			// ("schrieb Max <max@example.de>:", "schrieb am Fr., 28. Apr.
			// 2017 um 11:53 Uhr:"), not a clause ("On 3 May I wrote to you
			// about my order:").
			shortTail := verbLast || strings.Contains(s, "@") ||
				len(strings.Fields(after)) <= 4 || timeOrDateRE.MatchString(after)
			if evidence && shortTail && len(after) <= maxAfterVerb {
				return true
			}
		}
	}
	return len(s) <= 200 && strings.Contains(s, "@") && dateEmailRE.MatchString(s) && timeOrDateRE.MatchString(s)
}

// tail returns at most the last n bytes of s, starting at a rune boundary.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return s[i:]
}

// lastVerb returns the end offset of the last "wrote" verb in lower (a
// lower-cased line), or -1. Latin, Greek and Cyrillic verbs must stand as
// words.
func lastVerb(lower string) int {
	best := -1
	for _, v := range verbs {
		for off := len(lower); off > 0; {
			i := strings.LastIndex(lower[:off], v)
			if i < 0 {
				break
			}
			if e := i + len(v); !letterBefore(lower, i) && !letterAt(lower, e) {
				best = max(best, e)
				break
			}
			off = i
		}
	}
	for _, v := range cjkVerbs {
		if i := strings.LastIndex(lower, v); i >= 0 {
			best = max(best, i+len(v))
		}
	}
	return best
}

func letterBefore(s string, i int) bool {
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return i > 0 && unicode.IsLetter(r)
}

func letterAt(s string, i int) bool {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return i < len(s) && unicode.IsLetter(r)
}
