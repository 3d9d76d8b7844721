// Package quote extracts the new text of an e-mail reply: it removes the
// quoted history and the sender's signature that mail clients append, so the
// help desk stores and relays only what the customer or agent actually
// wrote.
//
// What counts as history: "> " quoted blocks that follow a reply header or
// end the message, reply headers ("On <date>, X wrote:" and its German,
// French, Spanish, Dutch, Italian, Portuguese, Scandinavian, Polish, Russian,
// Ukrainian, Chinese, Japanese, Korean, Hungarian… forms, also when wrapped
// over several lines), separators ("-----Original Message-----", "Begin
// forwarded message:"), embedded header blocks ("From: … Sent: … To: …
// Subject: …" in many languages) and everything below them. What counts as
// signature: everything after a "-- " line, one-line app signatures ("Sent
// from my iPhone", "Get Outlook for iOS", "Envoyé de mon iPhone", "Von meinem
// iPhone gesendet", …), a "-Name" line, a separator line followed by contact
// details, and a trailing block of short lines made mostly of contact
// details.
//
// Invariants:
//   - The reply is one contiguous run of the input's lines (line endings
//     normalised to "\n", surrounding blank lines removed); Split's quoted
//     part is the lines before it and the lines after it, in that order,
//     separated by one blank line when both exist.
//   - Inline answers are kept with the quotes they answer. A reply header
//     with its quote is removed with everything below it, unless new text
//     below the quote is followed by more quotes (an inline reply) or the
//     text above the header is only a greeting ("Hi Bob,"). Above any new
//     text (bottom-posting) it is removed alone. A quote block without a
//     header is removed only at the end of the reply.
//   - Strip never returns "" for input that has a non-blank line: when
//     everything looks quoted it returns the input, trimmed.
//   - Time is linear in the input: every line is classified once and every
//     look-ahead is bounded; the regular expressions are RE2.
//
// The package has no state; all functions are safe for concurrent use.
package quote

import (
	"strings"
	"unicode"
)

// Strip returns the new text of a reply: it removes the quoted history, the
// signature and surrounding blank lines. If everything looks quoted it
// returns the input trimmed, so a non-blank input never yields "".
func Strip(text string) string {
	reply, _ := split(text, options{})
	return reply
}

// Split returns the new text of a reply and the elided rest (quoted history
// and signature, in their original order), so callers can show the latter
// collapsed. When nothing is elided, quoted is "".
func Split(text string) (reply, quoted string) {
	return split(text, options{})
}

// options select stages of the splitter; the zero value is what Strip does.
type options struct {
	// keepSignature keeps signatures and only removes quoted history. It
	// exists so tests can hold the quotation stage to expectations of
	// projects (talon) that strip quotations but keep signatures.
	keepSignature bool
}

// normalizeNewlines turns CRLF and lone CR line endings into LF.
func normalizeNewlines(s string) string {
	if !strings.Contains(s, "\r") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\r", "\n")
}

func split(text string, opt options) (reply, quoted string) {
	lines := strings.Split(normalizeNewlines(text), "\n")
	a := analyze(lines)
	n := len(lines)

	// Walk the lines once. start is where the reply begins (history at the
	// top of a bottom-posted reply moves it down); cut is where the history
	// or the signature below the reply begins.
	start, cut := 0, n
	seenText := false
	for i := 0; i < n; {
		if end := a.marker[i]; end > 0 {
			if !seenText {
				// History before any new text: the reply is bottom-posted
				// (or a forward). Skip the marker and the quote it
				// introduces, if new text follows the quote.
				k := a.nextNonEmpty[end]
				if k < n && a.kind[k] == kQuote {
					q := a.quoteEnd(k)
					if a.nextText[q] == n {
						cut = i // nothing new anywhere: all history
						break
					}
					start, i = q, q
					continue
				}
				start, i = end, end
				continue
			}
			if q, ok := a.inlineAfter(end, a.greetingOnly(start, i)); ok {
				// The quote under this header is answered inline (or below a
				// mere greeting): keep both, the answers need their context.
				i = q
				continue
			}
			cut = i
			break
		}
		if seenText && !opt.keepSignature {
			if c := a.signatureAt(i, start); c >= 0 {
				cut = c
				break
			}
		}
		if a.kind[i] == kText {
			seenText = true
		}
		i++
	}

	end := a.trimTail(start, cut, opt)
	first := a.nextNonEmpty[start]
	if first >= end || a.nextText[first] >= end {
		// Nothing new was found: everything looks quoted.
		return trimBlankLines(lines), ""
	}
	reply = trimBlankLines(lines[first:end])
	quoted = joinNonBlank(trimBlankLines(lines[:first]), trimBlankLines(lines[end:]))
	return reply, quoted
}

// quoteEnd returns the index after the quote block that starts at k: quoted
// lines, possibly separated by blank lines.
func (a *analysis) quoteEnd(k int) int {
	end := k
	for j := k; j < len(a.lines); j++ {
		switch a.kind[j] {
		case kQuote:
			end = j + 1
		case kEmpty:
		default:
			return end
		}
	}
	return end
}

// inlineAfter reports whether the history marker ending at end introduces
// an inline reply: a quote block, then new text, then more quotes, with no
// other marker or signature separator in between. With belowGreeting (the
// text above the marker is only a greeting, see greetingOnly) new text
// after the quote block suffices, as the answer must be there. It returns
// where the quote block under the marker ends.
//
// Otherwise text after the quote is taken for history: usually it is the
// sender's own signature placed below the quote, a mailing-list footer or
// quoted text the client failed to mark.
func (a *analysis) inlineAfter(end int, belowGreeting bool) (int, bool) {
	k := a.nextNonEmpty[end]
	if k >= len(a.lines) || a.kind[k] != kQuote {
		return 0, false
	}
	q := a.quoteEnd(k)
	sawText := false
	for j := q; j < len(a.lines); j++ {
		if a.marker[j] > 0 {
			return q, sawText && belowGreeting
		}
		switch a.kind[j] {
		case kText:
			sawText = true
		case kQuote:
			return q, sawText
		case kSigSep, kMobile:
			return q, sawText && belowGreeting
		}
	}
	return q, sawText && belowGreeting
}

// greetingOnly reports whether the new text in [start, end) is no more than
// a greeting: at most two short lines ("Hi Bob,").
func (a *analysis) greetingOnly(start, end int) bool {
	const maxLines, maxLen = 2, 40
	n := 0
	// Jump from one non-blank line to the next: at most maxLines+1 steps.
	for j := a.nextNonEmpty[start]; j < end; j = a.nextNonEmpty[j+1] {
		if n++; n > maxLines || len(trimInvisible(a.lines[j])) > maxLen {
			return false
		}
	}
	return true
}

// signatureAt returns where a signature starting at line i begins (i, or
// the line above it for a name over a mobile signature), or -1. Lines before
// i contain new text.
func (a *analysis) signatureAt(i, start int) int {
	switch a.kind[i] {
	case kSigSep:
		return i
	case kMobile:
		// "Stavros Xxxxxx / via mobile": a name directly above the app
		// signature, opening its own paragraph, belongs to it.
		if p := i - 1; p > start && a.kind[p] == kText && a.kind[p-1] == kEmpty &&
			a.nextText[start] < p && isNameLine(a.lines[p]) {
			return p
		}
		return i
	case kRule:
		if a.contactTail(i + 1) {
			return i
		}
	case kText:
		if (i == start || a.kind[i-1] == kEmpty) && dashNameRE.MatchString(trimInvisible(a.lines[i])) && a.quietTail(i+1) {
			return i
		}
	}
	return -1
}

// isNameLine reports a short line that may be a person's name.
func isNameLine(l string) bool {
	t := trimInvisible(l)
	if t == "" || len(t) > 40 || closingRE.MatchString(t) || strings.ContainsAny(t, ".!?:;,@") {
		return false
	}
	words := strings.Fields(t)
	return len(words) >= 1 && len(words) <= 4
}

// quietTail reports whether what follows a "-Name" line is only blank lines,
// history, a separator line, or at most a few short lines.
func (a *analysis) quietTail(j int) bool {
	short := 0
	for j = a.nextNonEmpty[j]; j < len(a.lines); j = a.nextNonEmpty[j+1] {
		if a.marker[j] > 0 || a.kind[j] == kRule || a.kind[j] == kSigSep {
			return true
		}
		if short++; short > 3 || len(a.lines[j]) > 80 {
			return false
		}
	}
	return true
}

// contactTail reports whether the lines from j to the end (or the next
// history marker) are a short signature block: few, short lines, at least
// one with contact details. It looks at no more than maxSigLines lines.
func (a *analysis) contactTail(j int) bool {
	const maxSigLines = 12
	lines, contact := 0, false
	for j = a.nextNonEmpty[j]; j < len(a.lines); j = a.nextNonEmpty[j+1] {
		if a.marker[j] > 0 {
			break
		}
		if lines++; lines > maxSigLines || len(a.lines[j]) > 100 {
			return false
		}
		if isContactLine(a.lines[j]) {
			contact = true
		}
	}
	return contact
}

// isContactLine reports an e-mail address, a URL or a phone number.
func isContactLine(l string) bool {
	if emailRE.MatchString(l) || urlRE.MatchString(l) {
		return true
	}
	digits, letters := 0, 0
	for _, r := range l {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case unicode.IsLetter(r):
			letters++
		}
	}
	return digits >= 7 && letters <= 12
}

// trimTail removes from the end of the reply [start, end): blank lines,
// separator lines, trailing quote blocks (when the reply has text of its
// own above them) and, unless signatures are kept, a trailing block of
// contact details. It returns the new end.
func (a *analysis) trimTail(start, end int, opt options) int {
	for end > start {
		switch a.kind[end-1] {
		case kEmpty, kRule:
			end--
			continue
		case kQuote:
			// Only drop the quote if new text remains above it.
			q := end - 1
			for q > start && (a.kind[q-1] == kQuote || a.kind[q-1] == kEmpty) {
				q--
			}
			if a.nextText[start] < q {
				end = q
				continue
			}
		}
		break
	}
	if !opt.keepSignature {
		if p := a.contactBlockStart(start, end); p >= 0 {
			end = p
			for end > start && a.kind[end-1] == kEmpty {
				end--
			}
		}
	}
	return end
}

// contactBlockStart finds a trailing paragraph of 3–8 short lines with at
// least two lines of contact details (name, e-mail, phone, website) below
// new text, and returns where it starts, or -1. A leading sign-off line
// ending in a comma ("Best,") stays with the reply, and so does a block
// that the text above introduces with a colon.
func (a *analysis) contactBlockStart(start, end int) int {
	const minLines, maxLines, maxLen = 3, 8, 60
	p := end
	for p > start && a.kind[p-1] != kEmpty {
		p--
		if end-p > maxLines+1 {
			return -1
		}
	}
	if p == start || a.nextText[start] >= p {
		return -1 // the block is all there is
	}
	if t := trimInvisible(a.lines[p]); strings.HasSuffix(t, ",") && len(t) <= 30 {
		p++
	}
	if end-p < minLines || end-p > maxLines {
		return -1
	}
	contacts := 0
	for j := p; j < end; j++ {
		t := trimInvisible(a.lines[j])
		if len(t) > maxLen || a.kind[j] != kText {
			return -1
		}
		if isContactLine(t) {
			contacts++
		}
	}
	if contacts < 2 {
		return -1
	}
	// Details the text introduces ("Please call me back:") are content.
	if q := p - 1; q > start {
		for q > start && a.kind[q] == kEmpty {
			q--
		}
		if t := trimInvisible(a.lines[q]); strings.HasSuffix(t, ":") || strings.HasSuffix(t, "：") {
			return -1
		}
	}
	return p
}

// trimBlankLines joins lines with "\n" after dropping blank lines at both
// ends and trailing white space at the very end.
func trimBlankLines(lines []string) string {
	i, j := 0, len(lines)
	for i < j && trimInvisible(lines[i]) == "" {
		i++
	}
	for j > i && trimInvisible(lines[j-1]) == "" {
		j--
	}
	return strings.TrimRightFunc(strings.Join(lines[i:j], "\n"), isInvisible)
}

func joinNonBlank(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "\n\n")
}
