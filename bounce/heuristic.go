package bounce

import (
	"regexp"
	"strings"

	"github.com/emersion/go-message/textproto"
)

// Signals that a mail is a non-standard delivery report, and their weights.
// A mail is a bounce when the weights add up to bounceScore, at least one
// signal comes from the content (subject, text, X-Failed-Recipients) and at
// least one from how the mail was sent (a mail-system sender, a null return
// path, Auto-Submitted, a returned message part ...). The second condition
// keeps out a customer who writes "Delivery failure: my parcel was returned
// to sender" or pastes a bounce into a new mail; the first keeps out an
// auto-reply from a postmaster address.
const (
	bounceScore   = 3
	weightStrong  = 3 // stock phrase of an MTA's report
	weightMedium  = 2 // phrase about failed delivery, in any text
	weightSubject = 2 // subject of a report
	weightSender  = 2 // MAILER-DAEMON, postmaster, "Mail Delivery System"
	weightHint    = 1 // null return path, Auto-Submitted, a returned message part, a list server
	weightReplyFw = -3
)

// strongPhrases are written by MTAs (lower case).
var strongPhrases = []string{
	"this is the qmail-send program",
	"this message was created automatically by mail delivery software",
	"could not be delivered to one or more of its recipients",
	"delivery to the following recipient failed permanently",
	"delivery to the following recipients failed",
	"delivery to the following recipient has been delayed",
	"the following addresses had permanent fatal errors",
	"the following addresses had transient non-fatal errors",
	"----- transcript of session follows -----",
	"----- unsent message follows -----",
	"your message did not reach some or all of the intended recipients",
	"did not reach the following recipient",
	"delivery has failed to these recipients or groups",
	"i'm afraid i wasn't able to deliver your message",
	"i'm sorry to have to inform you that your message could not",
	"your message couldn't be delivered",
	"your message wasn't delivered",
	"unable to deliver message to",
	"we were unable to deliver your message",
	"there was an error delivering your mail",
	"we had trouble delivering your message",
	"an error occurred while trying to deliver the mail",
	"was not delivered to:",
	"each of the following recipients was rejected",
	"the following recipients returned permanent errors",
	"you are not a member of this mailing list",
}

// mediumPhrases speak of failed delivery but could appear in a person's mail.
var mediumPhrases = []string{
	"could not be delivered", "couldn't be delivered", "was not delivered",
	"wasn't delivered", "not be delivered", "undeliverable", "unable to deliver",
	"delivery failed",
	"delivery failure", "delivery has failed", "failed permanently",
	"permanent error", "permanent failure", "returned to sender",
	"error delivering", "user unknown", "unknown user", "no such user",
	"mailbox full", "mailbox is full", "over quota", "recipient address rejected",
	"could not deliver", "has not yet been delivered", "delivery has been delayed",
	// Japanese, German, French, Spanish, Portuguese, Italian, Russian.
	"送信できません", "配信できません", "届きませんでした", "送信に失敗", "配送できません",
	"konnte nicht zugestellt werden", "unzustellbar", "n'a pas pu être remis",
	"non remis", "no se pudo entregar", "não pôde ser entregue",
	"non è stato possibile consegnare", "не может быть доставлено", "не доставлено",
}

var (
	subjectRe = regexp.MustCompile(`undeliver|non[- ]?deliver|delivery (status|failure|failed|problem|notification|error|report|delay)|returned mail|mail delivery|failure notice|failed delivery|not (be )?delivered|returned to sender|mail system error|delivery has failed|message delayed|delayed mail|could not send|error sending|mail failure|delivery fail|unzustellbar|nicht zugestellt|non remis|no entregado|メールエラー|配信不能|エラー通知|не доставлено`)
	senderRe  = regexp.MustCompile(`mailer[-_ ]?daemon|postmaster|mail[-_. ]?delivery|mail[-_ ]?daemon|\bndr\b|delivery subsystem|mail administrator|\bmdaemon\b`)
	replyFwRe = regexp.MustCompile(`^\s*(re|fw|fwd|aw|wg|tr|sv|vs|rv|rif|antw|odp|enc|res)\s*(\[\d+\])?\s*:`)
	// cutRe marks the line where the returned message starts in report text.
	cutRe = regexp.MustCompile(`^[-=_*#> ]*(original message|original mail|returned message|unsent message|undelivered message|message headers follow|original message headers|below this line is a copy|this is a copy of|the header of the original message|included is a copy of|copy of the original|bounced e-mail|returned mail follows)`)
)

// delayPhrases mark a warning that delivery is still being tried.
var delayPhrases = []string{
	"delivery status notification (delay)", "warning: could not send message for past",
	"still being retried", "message delayed", "delivery delayed", "delayed mail",
	"delivery has been delayed", "delivery to the following recipient has been delayed",
	"has not yet been delivered", "has not been delivered yet", "will continue trying",
	"will keep trying", "will retry", "will be retried", "still trying",
	"this is a warning message only", "transient non-fatal errors",
	"no action is required on your part",
}

// finalPhrases say that the MTA gave up; they overrule delayPhrases.
var finalPhrases = []string{
	"failed permanently", "permanent error", "permanent fatal", "permanent failure",
	"i've given up", "will not be delivered", "could not be delivered", "no further",
}

// tempPhrases say that a failure without a reply code is temporary.
var tempPhrases = []string{"temporary", "temporarily", "try again later", "transient"}

// score rates how much the mail looks like a non-standard delivery report.
// content is true when a signal came from the subject or the text, machine
// when one came from the header or the MIME structure.
func (s *scan) score(all string) (score int, content, machine bool) {
	subject := strings.ToLower(s.subject)
	if s.top.Get("X-Failed-Recipients") != "" {
		score += weightStrong
		content, machine = true, true
	}
	if hasAny(all, strongPhrases) {
		score += weightStrong
		content = true
	} else if hasAny(all, mediumPhrases) {
		score += weightMedium
		content = true
	}
	if subjectRe.MatchString(subject) {
		score += weightSubject
		content = true
	}
	if s.daemonSender() {
		score += weightSender
		machine = true
	}
	for _, hint := range []bool{
		s.nullReturnPath(),
		headerIn(s.top, "Auto-Submitted", "auto-"),
		headerIn(s.top, "Precedence", "bulk", "junk", "list"),
		// List servers (fml, ezmlm, Mailman) answer a post from a
		// non-member with such a report.
		s.top.Has("X-Mlserver") || s.top.Has("Mailing-List") || s.top.Has("X-Mailman-Version"),
		s.returnedParts > 0,
	} {
		if hint {
			score += weightHint
			machine = true
		}
	}
	if replyFwRe.MatchString(subject) {
		// A person replying to or forwarding a bounce is not a bounce.
		score += weightReplyFw
	}
	return score, content, machine
}

// nullReturnPath reports whether the envelope sender was empty (RFC 5321
// requires it for reports) or MAILER-DAEMON.
func (s *scan) nullReturnPath() bool {
	if !s.top.Has("Return-Path") {
		return false
	}
	rp := strings.ToLower(strings.TrimSpace(s.top.Get("Return-Path")))
	return rp == "" || rp == "<>" || strings.Contains(rp, "mailer-daemon")
}

// headerIn reports whether the first field named key starts with one of
// the prefixes (case-insensitive).
func headerIn(h textproto.Header, key string, prefixes ...string) bool {
	v := strings.ToLower(strings.TrimSpace(h.Get(key)))
	for _, p := range prefixes {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

// daemonSender reports whether From or Sender names a mail system.
func (s *scan) daemonSender() bool {
	for _, k := range []string{"From", "Sender"} {
		if senderRe.MatchString(strings.ToLower(s.top.Get(k))) {
			return true
		}
	}
	return false
}

func hasAny(s string, phrases []string) bool {
	for _, p := range phrases {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// isDelay reports whether the report only warns of a delay.
func isDelay(subject, text string) bool {
	all := strings.ToLower(subject) + "\n" + text
	return hasAny(all, delayPhrases) && !hasAny(text, finalPhrases)
}

// reportLines returns the lines of a text before the returned message
// starts, that is before a "----- Original message -----" style marker or
// the quoted header block, whichever comes first; and the header block that
// follows a marker, when the quoted block q was not found.
func reportLines(ls []string, q quotedBlock, hasQ bool) ([]string, *original) {
	end := len(ls)
	if hasQ {
		end = q.start
	}
	for i := 0; i < end; i++ {
		l := strings.ToLower(strings.TrimSpace(ls[i]))
		if len(l) > 80 || !cutRe.MatchString(l) {
			continue
		}
		if hasQ {
			return ls[:i], nil
		}
		// A returned header without Message-ID (Sendmail V5's "Unsent
		// message follows", Verizon's "Original Message:") still names
		// the recipient.
		j := i + 1
		for j < len(ls) && strings.TrimSpace(ls[j]) == "" {
			j++
		}
		k := j
		for k < len(ls) && headerLike(ls[k]) {
			k++
		}
		var o *original
		if k > j {
			orig := originalFrom(fieldLookup(blockFields(ls[j:k], 0)))
			o = &orig
		}
		return ls[:i], o
	}
	return ls[:end], nil
}

// rcptTriggers, when found before an address on its line, say the address
// is the one that failed ("Unknown user: a@b", "delivering your mail to <a@b>").
var rcptTriggers = []string{
	"deliver", "fail", "error", "unknown", "recipient", "address", "rejected",
	"not listed", "no such", "undeliver", "mailbox", "rcpt to",
}

// roleAddr reports whether a is a role address that reports name for help
// ("contact postmaster@..."), not as the failed recipient.
func roleAddr(a string) bool {
	local, _, _ := strings.Cut(a, "@")
	switch local {
	case "postmaster", "mailer-daemon", "abuse", "hostmaster", "support", "help", "helpdesk", "noc":
		return true
	}
	return false
}

// foundAddr is an address and the report line it was found on.
type foundAddr struct {
	addr string
	line int
}

// findRecipients picks the failed addresses out of report lines: lines that
// start with an address ("  a@b", "<a@b>:", "a@b on <date>", "* a@b",
// ">>> a@b"), "RCPT TO:<a@b>", or an address after one of rcptTriggers.
func findRecipients(ls []string, exclude map[string]bool) []foundAddr {
	var out []foundAddr
	add := func(a string, i int) {
		if a == "" || exclude[a] || len(out) >= maxRecipients {
			return
		}
		for _, f := range out {
			if f.addr == a {
				return
			}
		}
		out = append(out, foundAddr{a, i})
	}
	for i, l := range ls {
		if len(l) > 2000 || !strings.Contains(l, "@") {
			continue
		}
		lead := strings.TrimLeft(l, " \t*->•·\"'<([")
		if loc := addrRe.FindStringIndex(lead); loc != nil && loc[0] == 0 {
			add(cleanAddr(lead[:loc[1]]), i)
		}
		lower := asciiLower(l) // same byte offsets as l, unlike strings.ToLower
		trimmed := strings.TrimSpace(l)
		code := basicCode(trimmed)
		startsWithCode := code != "" && strings.HasPrefix(trimmed, code)
		for _, loc := range addrRe.FindAllStringIndex(l, 10) {
			a := cleanAddr(l[loc[0]:loc[1]])
			if !startsWithCode && (!hasAny(lower[:loc[0]], rcptTriggers) || roleAddr(a)) {
				continue
			}
			add(a, i)
		}
	}
	return out
}

// describe finds the diagnostic of an address found on line at, and its
// RFC 3463 status. The region of the address runs from its line to the
// next address (at most 12 lines), or to the end when it is the only one.
// The diagnostic is the best line with a reply code in the region, else the
// next line that reads like a reason, else the rest of the address's own
// line ("Unknown user: a@b"). The status comes from the diagnostic, else
// from the first enhanced code in the region (qmail puts "(#5.5.0)" on a
// line of its own).
func describe(ls []string, at, next int, only bool) (diag, status string) {
	if at < 0 {
		return "", ""
	}
	stop := len(ls)
	if !only {
		stop = min(len(ls), at+12)
		if next > at && next < stop {
			stop = next
		}
	}
	region := ls[at:stop]
	diag = bestCodeLine(region)
	if diag == "" {
		for _, l := range region[1:min(len(region), 12)] {
			if reasonLike(l) {
				diag = oneLine(l)
				break
			}
		}
	}
	if rest := strings.TrimSpace(addrRe.ReplaceAllString(ls[at], "")); diag == "" && len(rest) > 3 && strings.IndexFunc(rest, isLetter) >= 0 {
		diag = oneLine(ls[at])
	}
	status = diagCode(diag)
	for _, l := range region {
		if status != "" {
			break
		}
		status = enhancedCode(l)
	}
	return diag, status
}

// reasonLike reports whether a line can be the reason of a failure: not
// empty, not a bare address, not a heading ("because:", "----- x -----").
func reasonLike(l string) bool {
	t := strings.TrimSpace(l)
	if t == "" || strings.HasSuffix(t, ":") || strings.IndexByte("-=*#_", t[0]) >= 0 {
		return false
	}
	rest := strings.Trim(addrRe.ReplaceAllString(t, ""), " <>()[]\"':;,.")
	return strings.IndexFunc(rest, isLetter) >= 0
}

// bestCodeLine returns the line that best states a server's reply: one with
// a basic and an enhanced code ("550 5.1.1 ..."), else one with a basic
// code, else one with an enhanced code; "" when none has a code.
func bestCodeLine(ls []string) string {
	best, rank := "", 0
	for _, l := range ls {
		r := 0
		b, e := basicCode(l) != "", enhancedCode(l) != ""
		switch {
		case b && e:
			r = 3
		case b:
			r = 2
		case e:
			r = 1
		}
		if r > rank {
			best, rank = l, r
			if r == 3 {
				break
			}
		}
	}
	if rank == 0 {
		return ""
	}
	return oneLine(best)
}

// asciiLower lower-cases ASCII letters only, so that byte offsets in the
// result are those of s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func isLetter(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 0x7f
}

// heuristicRecipient builds the Recipient of a non-standard report.
func heuristicRecipient(addr, diag, status string, delayed, temp bool) Recipient {
	r := Recipient{Addr: addr, Diagnostic: diag, Status: status, Action: "failed"}
	if delayed {
		r.Action = "delayed"
		return r
	}
	switch codeClass(r.Status, diag) {
	case '5':
		r.Permanent = true
	case '4':
	default:
		r.Permanent = !temp
	}
	return r
}
