package ticket

import (
	"slices"
	"strings"

	"github.com/helpdesk/helpdesk/agent"
	"github.com/helpdesk/helpdesk/autoreply"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

// role is what a mail from an agent address may do.
type role int

const (
	// roleSpoof: not provably the agent; handled as customer mail.
	roleSpoof role = iota
	// roleAction: a verified reply to a notification; commands apply,
	// text is relayed or becomes a note.
	roleAction
	// roleDirect: the agent wrote to the customer directly with the
	// mailbox in copy; recorded only.
	roleDirect
	// roleAutomated: the agent's out-of-office or other automated mail;
	// recorded only.
	roleAutomated
)

// identify decides what a mail from agent ag, threaded to tk by match, may
// do, and why it is a suspected spoof when it may do nothing as the agent.
func (s *step) identify(ag Agent, match threading.Match, tk *store.Ticket) (role, string) {
	e, msg := s.e, s.msg
	auth := agent.Verify(msg.Header, msg.From.Addr, e.cfg.TrustedAuthservID)
	r := roleAction
	if !match.AgentBound {
		if why := e.foreignToken(msg, ag); why != "" {
			return roleSpoof, why
		}
		if !addressedToCustomer(msg, tk) {
			return roleSpoof, "no notification token of " + ag.Email + " in In-Reply-To/References, and not sent to the customer"
		}
		r = roleDirect
	}
	if !auth.OK {
		return roleSpoof, "Authentication-Results: " + auth.Reason
	}
	// Classify said "our own address" for any agent; what matters now is
	// whether the agent or their mail program wrote it. The agent's own
	// out-of-office answering a notification carries a valid token: it
	// must not be relayed or read for commands.
	s.verdict = autoreply.Classify(msg, e.ownNoAgents)
	if s.verdict.Automated {
		return roleAutomated, ""
	}
	return r, ""
}

// foreignToken returns why msg, from agent ag, references a token of ours
// that is not valid for ag (bound to someone else, or altered), or "".
// Customer-facing tokens (acknowledgements, relays) are valid for anyone.
func (e *Engine) foreignToken(msg *threading.Message, ag Agent) string {
	domain := "@" + strings.ToLower(strings.TrimSpace(e.cfg.Domain))
	for _, ref := range refsNewestFirst(msg) {
		key := strings.ToLower(threading.IDKey(ref))
		if !strings.HasPrefix(key, "<hd.") || !strings.HasSuffix(key, domain+">") {
			continue
		}
		valid := false
		for _, addr := range append([]string{ag.Email}, e.teamAddresses(ag)...) {
			if _, _, ok := e.tokens.Verify(ref, addr); ok {
				valid = true
				break
			}
		}
		if !valid {
			return "token " + threading.IDKey(ref) + " is not valid for " + ag.Email
		}
	}
	return ""
}

// teamAddresses are the Email addresses of ag's teams that have one.
func (e *Engine) teamAddresses(ag Agent) []string {
	var out []string
	for _, name := range ag.Teams {
		if t, ok := e.teams[strings.ToLower(name)]; ok && t.Email != "" {
			out = append(out, t.Email)
		}
	}
	return out
}

// addressedToCustomer reports whether the requester or a CC of tk is among
// msg's To/Cc: the customer received this mail directly.
func addressedToCustomer(msg *threading.Message, tk *store.Ticket) bool {
	for _, a := range slices.Concat(msg.To, msg.Cc) {
		if a.Addr == tk.Requester || slices.Contains(tk.CC, a.Addr) {
			return true
		}
	}
	return false
}

// refsNewestFirst lists In-Reply-To and then References from the newest,
// the order threading.Match tries them.
func refsNewestFirst(msg *threading.Message) []string {
	out := slices.Clone(msg.InReplyTo)
	for i := len(msg.References) - 1; i >= 0; i-- {
		if !slices.Contains(out, msg.References[i]) {
			out = append(out, msg.References[i])
		}
	}
	return out
}
