// Package autoreply decides whether an inbound mail may be answered
// automatically, and renders the acknowledgement sent when it may.
//
// Classify is the one place in helpdesk that answers "is this automated
// mail?". Its rules are the CONTRACT.md list "Never auto-reply to", checked
// in a fixed order so that the most specific kind wins (a bounce that also
// has an empty return path is a bounce, an out-of-office reply that also
// carries Auto-Submitted is an out-of-office reply). A Verdict names the rule
// that fired so it can be logged and recorded.
//
// Invariants:
//   - Classify is a pure function of the parsed message and Own; no I/O, no
//     state. It never returns Automated with an empty Kind or Reason.
//   - Automated mail is never answered automatically; what else to do with
//     it (attach a bounce to its ticket, drop a loop, store a list mail) is
//     the ticket package's decision.
//   - Every value rendered into an acknowledgement is made single-line first,
//     so no input can add header lines or forge body lines.
package autoreply

import (
	"strings"

	"github.com/helpdesk/helpdesk/threading"
)

// Kind is the class of automated mail; "" is a person.
type Kind string

// Kinds of automated mail.
const (
	KindHuman        Kind = ""
	KindAutoReply    Kind = "auto-reply"    // Auto-Submitted, X-Autoreply, read receipts, other automatic answers
	KindOutOfOffice  Kind = "out-of-office" // vacation and absence replies
	KindBounce       Kind = "bounce"        // delivery status notifications, non-delivery reports
	KindList         Kind = "list"          // mailing-list traffic
	KindBulk         Kind = "bulk"          // Precedence: bulk or junk (newsletters, campaigns)
	KindOwn          Kind = "own"           // our own mail coming back, or mail from our mailboxes or agents
	KindNullSender   Kind = "null-sender"   // empty return path (Return-Path: <>)
	KindSystemSender Kind = "system-sender" // postmaster, no-reply senders, machine reports (DMARC, ARF)
)

// Verdict is the outcome of Classify.
type Verdict struct {
	Automated bool
	Kind      Kind
	Reason    string // the rule that fired, e.g. "Auto-Submitted: auto-replied"; "" for a person
}

// Own describes us, for loop detection.
type Own struct {
	Addresses []string // our mailbox addresses and agent addresses
	Domain    string   // the domain of our Message-IDs (ticket.domain)
}

// maxReasonValue bounds how much of a header value a Reason quotes.
const maxReasonValue = 64

// rule is one check of Classify; ok reports whether it fired.
type rule func(m *threading.Message, own Own) (v Verdict, ok bool)

// rules run in this order; the first that fires decides. Loops of our own
// mail come first, then the rules that identify a specific kind of automated
// mail (reports, bounces, absences), then the generic markers.
var rules = []rule{
	ruleOwn,
	ruleReport,
	ruleMailerDaemon,
	ruleBounceSubject,
	ruleOutOfOfficeSubject,
	ruleAutoSubmitted,
	ruleAutoReplyHeaders,
	rulePrecedence,
	ruleListHeaders,
	ruleNullReturnPath,
	ruleSystemSender,
	ruleDMARCReport,
}

// Classify tells whether m is automated mail that must never get an
// automatic reply, and which kind. A nil message is treated as automated:
// there is nobody to answer.
func Classify(m *threading.Message, own Own) Verdict {
	if m == nil {
		return automated(KindSystemSender, "no message")
	}
	for _, r := range rules {
		if v, ok := r(m, own); ok {
			return v
		}
	}
	return Verdict{}
}

func automated(k Kind, reason string) Verdict {
	return Verdict{Automated: true, Kind: k, Reason: reason}
}

// ruleOwn: mail from one of our addresses, or carrying a Message-ID of our
// domain, is our own mail looping back (or an agent writing in).
func ruleOwn(m *threading.Message, own Own) (Verdict, bool) {
	if d := normDomain(own.Domain); d != "" {
		if _, domain, ok := strings.Cut(strings.ToLower(m.MessageID), "@"); ok && normDomain(domain) == d {
			return automated(KindOwn, "Message-ID: our own domain "+d), true
		}
	}
	for _, c := range []struct{ field, addr string }{
		{"From", m.From.Addr}, {"Sender", m.Sender.Addr}, {"Return-Path", m.ReturnPath},
	} {
		if c.addr != "" && isOwnAddress(c.addr, own.Addresses) {
			return automated(KindOwn, c.field+": our own address "+c.addr), true
		}
	}
	return Verdict{}, false
}

func normDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

func isOwnAddress(addr string, own []string) bool {
	addr = strings.ToLower(strings.TrimSpace(addr))
	for _, o := range own {
		if strings.ToLower(strings.TrimSpace(o)) == addr {
			return true
		}
	}
	return false
}

// ruleReport: multipart/report (RFC 6522) and its report parts.
func ruleReport(m *threading.Message, _ Own) (Verdict, bool) {
	if m.ContentType == "multipart/report" {
		reportType := ""
		if _, params, err := m.Header.ContentType(); err == nil {
			reportType = strings.ToLower(params["report-type"])
		}
		reason := "Content-Type: multipart/report"
		if reportType != "" {
			reason += "; report-type=" + clip(reportType)
		}
		kind := reportKind(reportType)
		if reportType == "" {
			// RFC 6522 requires report-type; without it the parts tell,
			// and a delivery report is by far the most common.
			kind = KindBounce
			if v, ok := reportPart(m); ok {
				kind = v.Kind
			}
		}
		return automated(kind, reason), true
	}
	return reportPart(m)
}

// reportPart looks for the machine-readable part of a report.
func reportPart(m *threading.Message) (Verdict, bool) {
	for _, pt := range m.PartTypes {
		switch pt {
		case "message/delivery-status", "message/global-delivery-status":
			return automated(KindBounce, "part "+pt), true
		case "message/disposition-notification", "message/global-disposition-notification":
			return automated(KindAutoReply, "part "+pt), true
		case "message/feedback-report":
			return automated(KindSystemSender, "part "+pt), true
		}
	}
	return Verdict{}, false
}

func reportKind(reportType string) Kind {
	switch reportType {
	case "delivery-status", "global-delivery-status":
		return KindBounce
	case "feedback-report":
		return KindSystemSender // ARF abuse reports
	default:
		return KindAutoReply // read receipts (disposition-notification) and the rest
	}
}

// ruleMailerDaemon: MAILER-DAEMON sends bounces, also when its address is
// unusable ("MAILER-DAEMON <>").
func ruleMailerDaemon(m *threading.Message, _ Own) (Verdict, bool) {
	for _, c := range []struct{ field, addr string }{{"From", m.From.Addr}, {"Sender", m.Sender.Addr}} {
		if isMailerDaemon(localPart(c.addr)) {
			return automated(KindBounce, c.field+": "+clip(c.addr)), true
		}
	}
	if raw := strings.ToLower(m.Header.Get("From")); m.From.Addr == "" && strings.Contains(raw, "mailer-daemon") {
		return automated(KindBounce, "From: "+clip(raw)), true
	}
	return Verdict{}, false
}

func isMailerDaemon(local string) bool {
	return strings.HasPrefix(squash(local), "mailerdaemon")
}

// bounceSubjects start the subjects of common non-standard bounces (lower
// case, matched at the start of the subject so that a person forwarding a
// bounce, "Fwd: Undeliverable: ...", is still a person).
var bounceSubjects = []string{
	"undelivered mail returned to sender", // Postfix
	"delivery status notification",        // Gmail, Exchange, Amazon SES
	"mail delivery failed",                // Exim
	"failure notice",                      // qmail
	"undeliverable:",                      // Exchange
	"undeliverable mail",
	"undeliverable message",
	"undelivered mail",
	"undelivered message",
	"returned mail",               // Sendmail
	"delivery failure",            // Notes, MessageLabs
	"mail delivery failure",       // MessageLabs
	"message delivery has failed", // Exchange 2003
	"delivery notification: delivery has failed",
	"mail system error - returned mail",
	"warning: could not send message", // Sendmail delay
	"delayed mail",                    // Postfix delay
	"delivery delayed",
	"mail delivery status report",
	"postmaster notify",
	"nondeliverable mail",
	"non remis",        // French Exchange
	"unzustellbar",     // German Exchange
	"non recapitabile", // Italian Exchange
	"onbestelbaar",     // Dutch Exchange
	"no entregado",     // Spanish
	"sorry, your message could not be delivered",
	"message not delivered",
	"mail could not be delivered",
	"недоставленное сообщение", // Yandex
}

// bounceSubjectsAnywhere are specific enough to match anywhere.
var bounceSubjectsAnywhere = []string{
	"mail failure",
	"delivery failed",
	"mail delivery status",
	"メールエラー",        // Japanese carriers: "mail error"
	"配信できません",       // Japanese Exchange: "could not be delivered"
	"未配達",           // Japanese: "undelivered"
	"退信",            // Chinese: "returned mail"
	"无法投递",          // Chinese: "cannot be delivered"
	"не доставлено", // Russian: "not delivered"
}

func ruleBounceSubject(m *threading.Message, _ Own) (Verdict, bool) {
	if subjectMatches(m.Subject, bounceSubjects, bounceSubjectsAnywhere) {
		return automated(KindBounce, "Subject: "+clip(m.Subject)), true
	}
	return Verdict{}, false
}

// oooSubjects start the subjects of out-of-office replies, lower case, in
// the languages of the common clients (Exchange/Outlook, Notes, Gmail,
// Apple Mail, Thunderbird, Zimbra).
var oooSubjects = []string{
	"automatic reply", "auto reply", "auto-reply", "autoreply", "auto:", "auto response",
	"auto-response", "autoresponse", "autorespons", "out of office", "out of the office",
	"ooo:", "away until", "on vacation", "vacation reply",
	"abwesenheitsnotiz", "automatische antwort", // German
	"réponse automatique", "reponse automatique", "absence du bureau", // French
	"respuesta automática", "respuesta automatica", "fuera de la oficina", // Spanish
	"risposta automatica", "fuori sede", "fuori ufficio", // Italian
	"automatisch antwoord",                       // Dutch
	"resposta automática", "resposta automatica", // Portuguese
	"autosvar", "automatiskt svar", "automatisk svar", "automatisk besked", // Nordic
	"automaattinen vastaus",                                             // Finnish
	"automatyczna odpowiedź", "odpowiedź automatyczna", "autoodpowiedź", // Polish
	"automatická odpověď", "automatická odpoveď", // Czech, Slovak
	"автоответ", "автоматический ответ", // Russian
	"自动回复", "自動回覆", "自動回复", "自動応答", "自動返信", // Chinese, Japanese
	"자동 응답", // Korean
}

// oooSubjectsAnywhere are specific enough to match anywhere.
var oooSubjectsAnywhere = []string{
	"is out of the office", "out of office autoreply", "i am out of the office", "est absent",
}

func ruleOutOfOfficeSubject(m *threading.Message, _ Own) (Verdict, bool) {
	if subjectMatches(m.Subject, oooSubjects, oooSubjectsAnywhere) {
		return automated(KindOutOfOffice, "Subject: "+clip(m.Subject)), true
	}
	return Verdict{}, false
}

// subjectMatches reports whether the normalised subject starts with one of
// prefixes or contains one of anywhere.
func subjectMatches(subject string, prefixes, anywhere []string) bool {
	s := normSubject(subject)
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	for _, p := range anywhere {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// normSubject lower-cases a subject, collapses white space and drops leading
// markers that systems put in front ("**", "[SPAM]"-style blobs are kept:
// they may be a person's list tag).
func normSubject(s string) string {
	s = strings.ToLower(strings.Join(strings.Fields(s), " "))
	return strings.TrimLeft(s, "*!# ")
}

// ruleAutoSubmitted: RFC 3834 Auto-Submitted other than "no".
func ruleAutoSubmitted(m *threading.Message, _ Own) (Verdict, bool) {
	v := strings.TrimSpace(m.Header.Get("Auto-Submitted"))
	if v == "" {
		return Verdict{}, false
	}
	keyword := strings.ToLower(strings.TrimSpace(strings.SplitN(strings.SplitN(v, ";", 2)[0], "(", 2)[0]))
	if keyword == "no" {
		return Verdict{}, false
	}
	return automated(KindAutoReply, "Auto-Submitted: "+clip(keyword)), true
}

// ruleAutoReplyHeaders: the non-standard markers of autoresponders.
func ruleAutoReplyHeaders(m *threading.Message, _ Own) (Verdict, bool) {
	for _, k := range []string{"X-Autoreply", "X-Autorespond", "X-Autoreply-From", "X-Mail-Autoreply", "X-Autogenerated", "X-Fc-Machinegenerated"} {
		if v := strings.TrimSpace(m.Header.Get(k)); v != "" && !strings.EqualFold(v, "no") && !strings.EqualFold(v, "false") {
			return automated(KindAutoReply, k+": "+clip(v)), true
		}
	}
	// Exchange asks others not to auto-respond to mail it generated itself.
	if v := m.Header.Get("X-Auto-Response-Suppress"); v != "" {
		for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			switch strings.ToLower(f) {
			case "all", "oof", "autoreply":
				return automated(KindAutoReply, "X-Auto-Response-Suppress: "+clip(v)), true
			}
		}
	}
	return Verdict{}, false
}

// rulePrecedence: Precedence bulk, junk, list and auto_reply.
func rulePrecedence(m *threading.Message, _ Own) (Verdict, bool) {
	v := strings.ToLower(strings.TrimSpace(m.Header.Get("Precedence")))
	switch v {
	case "bulk", "junk":
		return automated(KindBulk, "Precedence: "+v), true
	case "list":
		return automated(KindList, "Precedence: list"), true
	case "auto_reply", "auto-reply":
		return automated(KindAutoReply, "Precedence: "+v), true
	}
	return Verdict{}, false
}

// ruleListHeaders: RFC 2369/2919 list fields.
func ruleListHeaders(m *threading.Message, _ Own) (Verdict, bool) {
	for _, k := range []string{"List-Id", "List-Unsubscribe", "List-Post", "Mailing-List"} {
		if m.Header.Has(k) {
			return automated(KindList, k+" present"), true
		}
	}
	return Verdict{}, false
}

// ruleNullReturnPath: "Return-Path: <>" is what MTAs and autoresponders send
// with, so that nobody answers them.
func ruleNullReturnPath(m *threading.Message, _ Own) (Verdict, bool) {
	if m.HasReturnPath && m.ReturnPath == "" {
		return automated(KindNullSender, "Return-Path: <>"), true
	}
	return Verdict{}, false
}

// ruleSystemSender: postmaster and no-reply addresses in From or Sender.
func ruleSystemSender(m *threading.Message, _ Own) (Verdict, bool) {
	for _, c := range []struct{ field, addr string }{{"From", m.From.Addr}, {"Sender", m.Sender.Addr}} {
		l := squash(localPart(c.addr))
		if l == "postmaster" || strings.HasPrefix(l, "noreply") || strings.HasPrefix(l, "donotreply") ||
			strings.HasPrefix(l, "dontreply") {
			return automated(KindSystemSender, c.field+": "+clip(c.addr)), true
		}
	}
	return Verdict{}, false
}

// ruleDMARCReport: RFC 7489 7.2.1.1 fixes the subject of aggregate reports
// ("Report Domain: x Submitter: y Report-ID: z"), which some reporters send
// without any other marker.
func ruleDMARCReport(m *threading.Message, _ Own) (Verdict, bool) {
	s := normSubject(m.Subject)
	if i := strings.Index(s, "report domain:"); i >= 0 && strings.Contains(s[i:], "submitter:") && strings.Contains(s[i:], "report-id:") {
		return automated(KindSystemSender, "Subject: DMARC aggregate report"), true
	}
	return Verdict{}, false
}

// localPart returns the part before the last "@" (the whole address when
// there is none, as in a bare "MAILER-DAEMON").
func localPart(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		addr = addr[:i]
	}
	if i := strings.IndexByte(addr, '+'); i >= 0 {
		addr = addr[:i] // subaddress: noreply+tag@
	}
	return strings.ToLower(addr)
}

// squash drops the separators people put in "no-reply", "do_not_reply",
// "mailer.daemon".
func squash(s string) string {
	return separators.Replace(s)
}

// separators is built once: a strings.Replacer is immutable and safe for
// concurrent use, and building one per call was a visible share of the
// classifier's CPU.
var separators = strings.NewReplacer("-", "", "_", "", ".", "")

// clip quotes at most maxReasonValue bytes of a header value in a Reason.
func clip(v string) string {
	v = strings.Join(strings.Fields(v), " ")
	if len(v) <= maxReasonValue {
		return v
	}
	cut := maxReasonValue
	for cut > 0 && v[cut]&0xC0 == 0x80 {
		cut-- // do not split a UTF-8 sequence
	}
	return v[:cut] + "..."
}
