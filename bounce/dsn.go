package bounce

import (
	"strings"

	"github.com/emersion/go-message/textproto"
)

// status reads one message/delivery-status part.
//
// QUIRK: when the part header is not followed by a blank line, the first
// status fields end up in the part header (go-message reads them as header
// fields); every field of the part header that is not a MIME field is
// therefore read as if it began the body.
func (s *scan) status(h textproto.Header, body []byte) {
	s.statusParts++
	var pre strings.Builder
	for f := h.Fields(); f.Next(); {
		k := strings.ToLower(f.Key())
		if strings.HasPrefix(k, "content-") || k == "mime-version" {
			continue
		}
		pre.WriteString(f.Key() + ": " + f.Value() + "\n")
	}
	text := validUTF8(body)
	if pre.Len() > 0 {
		text = pre.String() + "\n" + text
	}
	s.statusTexts = append(s.statusTexts, text)
	for _, r := range parseStatusFields(text) {
		if len(s.dsn) >= maxRecipients {
			break
		}
		s.dsn = addRecipient(s.dsn, r)
	}
}

// rcptGroup collects the per-recipient fields of RFC 3464 section 2.3.
type rcptGroup struct {
	original, final, action, status, diag []byte
	willRetry                             bool
	fields                                int
}

// parseStatusFields reads RFC 3464 per-recipient groups from a
// delivery-status body, or from report text that embeds such fields. Lines
// that are not "Name: value" end a group, like blank lines do.
//
// QUIRK: groups that are not separated by a blank line are split where a
// recipient field repeats; runs of blank lines, fields in any order and
// unknown fields are accepted, and per-message fields are ignored.
func parseStatusFields(text string) []Recipient {
	var out []Recipient
	var g rcptGroup
	var last *[]byte // value of the previous field, for continuation lines
	end := func() {
		if g.fields > 0 {
			if r, ok := g.recipient(); ok {
				out = addRecipient(out, r)
			}
		}
		g = rcptGroup{}
		last = nil
	}
	for _, line := range lines(text) {
		if len(out) >= maxRecipients {
			break
		}
		if strings.TrimSpace(line) == "" {
			end()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != nil {
				*last = unfold(*last, line)
			}
			continue
		}
		k, v, ok := splitField(line)
		if !ok {
			end()
			continue
		}
		last = nil
		val := []byte(v[:min(len(v), maxFieldBytes)])
		switch strings.ToLower(k) {
		case "original-recipient":
			if g.original != nil || (g.final != nil && (g.action != nil || g.status != nil)) {
				end()
			}
			g.original, last = val, &g.original
		case "final-recipient":
			if g.final != nil {
				end()
			}
			g.final, last = val, &g.final
		case "action":
			if g.action != nil {
				end()
			}
			g.action, last = val, &g.action
		case "status":
			g.status, last = val, &g.status
		case "diagnostic-code":
			g.diag, last = val, &g.diag
		case "will-retry-until":
			g.willRetry = true
		default:
			continue
		}
		g.fields++
	}
	end()
	return out
}

// recipient turns a group into a Recipient; ok is false when the group
// names no address.
//
// The Original-Recipient is preferred: it is the address we gave in RCPT TO,
// while Final-Recipient may be the result of forwarding or alias expansion,
// an address we never wrote to.
func (g rcptGroup) recipient() (Recipient, bool) {
	addr := statusAddr(string(g.original))
	if addr == "" {
		addr = statusAddr(string(g.final))
	}
	if addr == "" {
		return Recipient{}, false
	}
	action := strings.ToLower(strings.TrimSpace(string(g.action)))
	if i := strings.IndexAny(action, " \t(;"); i >= 0 {
		action = action[:i]
	}
	if action == "deliverable" {
		// QUIRK: some MTAs write "deliverable" for "delivered".
		action = "delivered"
	}
	diag := diagnostic(string(g.diag))
	// A generic "5.0.0" says less than the code in the server's reply,
	// which is taken instead when it is of the same class.
	status := enhancedCode(string(g.status))
	if d := diagCode(diag); d != "" && (status == "" || strings.HasSuffix(status, ".0.0") && d[0] == status[0]) {
		status = d
	}
	class := codeClass(status, diag)
	if action == "" {
		// QUIRK: Action is required but missing in hand-made reports; a
		// permanent status still tells that delivery failed.
		switch {
		case class == '5':
			action = "failed"
		case g.willRetry:
			action = "delayed"
		}
	}
	r := Recipient{Addr: addr, Status: status, Action: action, Diagnostic: diag}
	// "failed" means the MTA gave up; only a 5.x.x (or 5xx) says the address
	// itself is bad. A failure after 4.x.x retries timed out is temporary.
	r.Permanent = action == "failed" && class != '4' || action == "" && class == '5'
	return r, true
}

// statusAddr returns the address of a "type; address" recipient field.
// QUIRK: a missing address type, angle brackets and comments are accepted.
func statusAddr(v string) string {
	if v == "" {
		return ""
	}
	if typ, rest, ok := strings.Cut(v, ";"); ok {
		t := strings.ToLower(strings.TrimSpace(typ))
		if t != "rfc822" && t != "utf-8" && t != "" && !strings.Contains(rest, "@") {
			return ""
		}
		v = rest
	}
	return firstAddr(v)
}

// diagnostic makes a Diagnostic-Code value one line and drops its type
// ("smtp; 550 ..." becomes "550 ...").
func diagnostic(v string) string {
	if typ, rest, ok := strings.Cut(v, ";"); ok && !strings.ContainsAny(strings.TrimSpace(typ), " \t") && len(typ) < 20 {
		v = rest
	}
	return oneLine(v)
}

// addRecipient appends r unless its address is already listed; a later
// entry for the same address fills in what the first one lacked.
func addRecipient(list []Recipient, r Recipient) []Recipient {
	for i := range list {
		if list[i].Addr != r.Addr {
			continue
		}
		if list[i].Status == "" && r.Status != "" {
			list[i].Status = r.Status
		}
		if list[i].Diagnostic == "" {
			list[i].Diagnostic = r.Diagnostic
		}
		if list[i].Action == "" {
			list[i].Action = r.Action
		}
		list[i].Permanent = list[i].Permanent || r.Permanent
		return list
	}
	if len(list) >= maxRecipients {
		return list
	}
	return append(list, r)
}
