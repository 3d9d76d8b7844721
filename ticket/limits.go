package ticket

import (
	"fmt"
	"strings"
	"time"

	"github.com/helpdesk/helpdesk/outbox"
	"github.com/helpdesk/helpdesk/store"
)

// Automatic mail is every mail helpdesk sends on its own: acknowledgements,
// notices about quarantined mail, command error replies, alerts, and
// notifications to agents (note copies and bounce notices included). Only
// the relay of an agent's answer to the customer is not automatic: a
// person asked for it, so it is sent even to an address on hold, with a
// warning (warnHeld). Each automatic mail to a customer or an agent passes
// allowAuto first, in the transaction that queues it:
//
//   - an address on hold (a permanent bounce, a tripped circuit breaker)
//     gets nothing until the hold ends;
//   - one address gets at most MaxPerSender mails within Per (agents:
//     maxErrorRepliesPerHour error replies, MaxNotificationsPerHour
//     notifications an hour), and all addresses together
//     GlobalMaxPerHour an hour (notifications, which follow the volume of
//     customer mail, are not counted there);
//   - when BreakerTrips mails to one address are refused by its limit
//     within that limit's window, the address is paused for BreakerPause
//     and the administrator alerted once: logged at ERROR after the commit,
//     passed to Engine.Alerted, and mailed to AdminEmail when set.
//
// The counters and holds are in the store, so they survive restarts, and
// they change only with the transaction of the mail that caused them.

// Defaults for the zero values of Config.
const (
	defaultMaxNotificationsPerHour = 300
	defaultBreakerTrips            = 3
	defaultBreakerPause            = 24 * time.Hour
	defaultUndeliverableFor        = 24 * time.Hour
	// maxAlertMailsPerHour bounds alert mails to the administrator, so a
	// storm of tripped breakers is one screenful, not a flood.
	maxAlertMailsPerHour = 10
)

// withDefaults fills in the zero values that have a default.
func (c Config) withDefaults() Config {
	if c.MaxNotificationsPerHour <= 0 {
		c.MaxNotificationsPerHour = defaultMaxNotificationsPerHour
	}
	if c.BreakerTrips <= 0 {
		c.BreakerTrips = defaultBreakerTrips
	}
	if c.BreakerPause <= 0 {
		c.BreakerPause = defaultBreakerPause
	}
	if c.UndeliverableFor <= 0 {
		c.UndeliverableFor = defaultUndeliverableFor
	}
	c.AdminEmail = strings.ToLower(strings.TrimSpace(c.AdminEmail))
	return c
}

// autoClass says which per-address limit an automatic mail counts against.
type autoClass int

const (
	autoCustomer     autoClass = iota // acknowledgements and notices, to whoever wrote to us
	autoAgentError                    // command error replies to an agent
	autoNotification                  // notifications and note copies to agents
)

// Alert is something the administrator must hear of: for now, a tripped
// circuit breaker.
type Alert struct {
	Addr     string    // the address automatic mail to which is paused
	Until    time.Time // when it resumes
	Reason   string
	TicketID uint64 // the ticket of the mail that tripped it
}

// logged is what a step leaves to log once its transaction committed.
type logged struct {
	alerts        []Alert  // tripped breakers
	held          []string // warnings about relays to addresses on hold
	undeliverable []string // addresses a bounce put on hold
}

// alertMessage is the stable log message of a tripped breaker, for log
// based alerting.
const alertMessage = "automatic mail paused: circuit breaker tripped"

// allowAuto decides whether one automatic mail of class may go to addr now,
// and counts it when it may. why says why not.
func (s *step) allowAuto(addr string, class autoClass) (ok bool, why string, err error) {
	if why := s.onHold(addr); why != "" {
		return false, why, nil
	}
	cfg := s.e.cfg
	key, max, window := "auto:"+addr, cfg.MaxPerSender, cfg.Per
	switch class {
	case autoAgentError:
		key, max, window = "agent-error:"+addr, maxErrorRepliesPerHour, time.Hour
	case autoNotification:
		key, max, window = "notify:"+addr, cfg.MaxNotificationsPerHour, time.Hour
	}
	if ok, err := s.tx.Allow(key, s.now, window, max); err != nil || !ok {
		if err == nil {
			err = s.refused(addr, window)
		}
		return false, fmt.Sprintf("rate limit for %s: %d automatic mails within %s", addr, max, window), err
	}
	if class != autoNotification && cfg.GlobalMaxPerHour > 0 {
		if ok, err := s.tx.Allow("auto:*", s.now, time.Hour, cfg.GlobalMaxPerHour); err != nil || !ok {
			return false, fmt.Sprintf("global rate limit: %d automatic mails an hour", cfg.GlobalMaxPerHour), err
		}
	}
	return true, "", nil
}

// onHold says why addr gets no automatic mail now, or "".
func (s *step) onHold(addr string) string {
	for _, kind := range []string{store.HoldPaused, store.HoldUndeliverable} {
		if h, ok := s.tx.ActiveHold(kind, addr, s.now); ok {
			return fmt.Sprintf("%s is on hold (%s) until %s: %s", addr, h.Kind, h.Until.UTC().Format(time.RFC3339), h.Reason)
		}
	}
	return ""
}

// refused counts one automatic mail to addr refused by its rate limit,
// and trips the breaker on the BreakerTrips-th within window.
func (s *step) refused(addr string, window time.Duration) error {
	trips := s.e.cfg.BreakerTrips
	if ok, err := s.tx.Allow("refused:"+addr, s.now, window, trips-1); err != nil || ok {
		return err
	}
	h := &store.Hold{
		Kind: store.HoldPaused, Addr: addr, Since: s.now, Until: s.now.Add(s.e.cfg.BreakerPause),
		Reason: fmt.Sprintf("%d automatic mails refused by the rate limit within %s (a mail loop?)", trips, window),
		// 0 for mail of no ticket (a notice about a quarantined mail).
		TicketID: s.res.TicketID,
	}
	if err := s.tx.PutHold(h); err != nil {
		return err
	}
	a := Alert{Addr: addr, Until: h.Until, Reason: h.Reason, TicketID: h.TicketID}
	s.alerts = append(s.alerts, a)
	return s.mailAlert(a)
}

// mailAlert queues an alert to the administrator, when one is configured
// and the alert limit allows.
func (s *step) mailAlert(a Alert) error {
	e := s.e
	if e.cfg.AdminEmail == "" {
		return nil
	}
	if ok, err := s.tx.Allow("alert:*", s.now, time.Hour, maxAlertMailsPerHour); err != nil || !ok {
		if err == nil {
			s.problems = append(s.problems, "alert mail to "+e.cfg.AdminEmail+": more than the hourly limit")
		}
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "helpdesk stopped sending automatic mail to %s until %s.\n\n", a.Addr, a.Until.UTC().Format(time.RFC1123))
	fmt.Fprintf(&b, "Why: %s.\n", a.Reason)
	if a.TicketID != 0 {
		fmt.Fprintf(&b, "The mail that tripped it is on ticket #%d (helpdesk tickets show %d).\n", a.TicketID, a.TicketID)
	}
	b.WriteString("\nNothing is lost: mail from the address is still stored on tickets, and\n" +
		"agents' answers are still relayed. Only acknowledgements, notices and\n" +
		"notifications to the address are held back. If this is a mail loop,\n" +
		"find the auto-responder that answers helpdesk's mail.\n")
	env := outbox.Envelope{
		From:      outbox.Address{Name: "helpdesk", Addr: s.mb.Address},
		To:        []outbox.Address{{Addr: e.cfg.AdminEmail}},
		Subject:   "helpdesk alert: automatic mail to " + a.Addr + " paused",
		Text:      b.String(),
		MessageID: e.tokens.NewMessageID(0, ""),
		Date:      s.now,
		Headers: [][2]string{
			{"Auto-Submitted", "auto-generated"},
			{"X-Auto-Response-Suppress", "All"},
		},
	}
	return s.enqueueUnfiled(env, "alert to "+e.cfg.AdminEmail)
}

// enqueueUnfiled composes env and queues it as mail of no ticket. A mail
// that cannot be composed is skipped and reported, like enqueue.
func (s *step) enqueueUnfiled(env outbox.Envelope, what string) error {
	raw, err := outbox.Compose(env)
	if err != nil {
		s.problems = append(s.problems, what+": "+err.Error())
		return nil
	}
	if _, err := s.tx.EnqueueUnfiled(env.From.Addr, addrsOf(env.To), raw, s.now); err != nil {
		return err
	}
	s.queued++
	return nil
}

// warnHeld records, for mail a person asked to send (an agent's answer),
// which recipients are on hold: it is sent anyway, with a warning on the
// stored mail and in the log.
func (s *step) warnHeld(rcpts []outbox.Address) {
	for _, r := range rcpts {
		if why := s.onHold(r.Addr); why != "" {
			w := "sent although " + why
			s.warnings = append(s.warnings, w)
			s.held = append(s.held, w)
		}
	}
}

// afterCommit logs what the committed transaction of s decided that the
// operator must see, once: tripped breakers (ERROR, and Engine.Alerted)
// and answers relayed to held addresses.
func (e *Engine) afterCommit(s *step) {
	for _, a := range s.alerts {
		e.log.Error(alertMessage, "addr", a.Addr, "until", a.Until, "reason", a.Reason, "ticket", a.TicketID)
		if e.Alerted != nil {
			e.Alerted(a)
		}
	}
	for _, w := range s.held {
		e.log.Warn("relayed to an address on hold", "mailbox", s.in.Mailbox, "uid", s.in.UID, "ticket", s.res.TicketID, "warning", w)
	}
	for _, addr := range s.undeliverable {
		e.log.Warn("address undeliverable: no automatic mail to it for a while", "addr", addr, "ticket", s.res.TicketID,
			"for", e.cfg.UndeliverableFor)
	}
}
