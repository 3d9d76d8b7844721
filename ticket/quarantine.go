package ticket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"unicode"

	"github.com/helpdesk/helpdesk/autoreply"
	"github.com/helpdesk/helpdesk/bounce"
	"github.com/helpdesk/helpdesk/outbox"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/threading"
)

// Quarantine. A mail that cannot become part of a ticket is kept raw with
// the reason (store.Quarantined), in a transaction that also advances the
// checkpoint and records the pending flag, so it is never fetched as new
// again; the inbox flags it with its quarantine keyword. The reasons:
//
//   - larger than MaxMessageBytes: only its header is read, and its sender
//     gets one polite notice (outbox.Compose, queued in the quarantine's
//     transaction) unless the mail is automated, the sender had such a
//     notice within Per, or allowAuto refuses;
//   - no header can be parsed, or no sender address in From;
//   - a panic anywhere in Handle: the transaction in progress rolls back,
//     the panic is logged with its stack, and the mail is quarantined with
//     the panic as reason. The inbox would otherwise retry the same UID for
//     ever.
//
// The operator then replays a mail (Replay: run it through the engine
// again, e.g. after raising the limit; it stays quarantined if it still
// cannot be handled) or releases it (Release: a new ticket whatever it
// holds). Either way the quarantine record goes, in the transaction that
// stores the mail, and the key it was indexed under points to the stored
// message, so a re-fetch of the mail is still recognised.

// ErrStillQuarantined is matched by the error of a Replay that found the
// mail still unfit to become part of a ticket (a *StillQuarantinedError);
// the mail stays quarantined.
var ErrStillQuarantined = errors.New("still cannot become part of a ticket")

// StillQuarantinedError says why a replayed mail stays quarantined.
type StillQuarantinedError struct {
	ID     uint64
	Reason string
}

func (e *StillQuarantinedError) Error() string {
	return fmt.Sprintf("replay quarantined mail %d: %s: %v", e.ID, e.Reason, ErrStillQuarantined)
}

func (e *StillQuarantinedError) Unwrap() error { return ErrStillQuarantined }

// Rules recorded as MatchedBy of a released mail.
const ruleReleased threading.Rule = "released"

// maxHeaderScan bounds the bytes searched for the end of the header of a
// mail whose whole is not parsed.
const maxHeaderScan = 1 << 20

// prepared is what is known of a mail before its transaction.
type prepared struct {
	msg     *threading.Message
	verdict autoreply.Verdict
	report  *bounce.Report // the delivery report the mail is, or nil
	// unfit says why the mail cannot become part of a ticket; "" when it can.
	unfit     string
	oversized bool
	// panic is set when preparing the mail panicked (HandleBatch keeps it
	// for handleOne, which quarantines the mail).
	panic *panicError
	// err is set when a staged mail's bytes could not be read: a temporary
	// failure, reported by handleOne so that the mail comes again.
	err error
}

// prepare parses and classifies a mail outside any transaction.
func (e *Engine) prepare(in Inbound) prepared {
	if e.fault != nil {
		e.fault("prepare")
	}
	if size := in.size(); e.cfg.MaxMessageBytes > 0 && size > e.cfg.MaxMessageBytes {
		msg, err := e.headerOnlyIn(in)
		return prepared{
			msg:       msg,
			unfit:     fmt.Sprintf("message too large: %d bytes, limit %d", size, e.cfg.MaxMessageBytes),
			oversized: true,
			err:       err,
		}
	}
	msg, reason, err := e.parseIn(in)
	switch {
	case err != nil:
		return prepared{err: err}
	case msg == nil:
		return prepared{unfit: reason}
	case msg.From.Addr == "":
		return prepared{msg: msg, unfit: "no sender address in From"}
	}
	v := autoreply.Classify(msg, e.own)
	raw := in.Raw
	if in.Staged != nil && v.Automated && v.Kind != autoreply.KindOwn {
		if raw, err = e.head(in, maxBounceScan); err != nil {
			return prepared{err: err}
		}
	}
	return prepared{msg: msg, verdict: v, report: e.bounceReport(raw, v)}
}

// dispatch handles a new mail inside its transaction: a delivery report
// by the bounce rules, anything else by run. A panic comes back as a
// *panicError, so the transaction rolls back the same way whether it runs
// in Update or in Batch (which would turn the panic into an opaque error).
func (s *step) dispatch(key string) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p, stack: debug.Stack()}
		}
	}()
	if s.e.fault != nil {
		s.e.fault("transaction")
	}
	if s.report != nil {
		return s.bounced(key)
	}
	return s.run(key)
}

// headerOnly parses just the header of raw, for a mail whose whole is not
// parsed (too large, or it panicked). Its DedupeKey is the whole mail's.
// nil when not even the header can be read.
func (e *Engine) headerOnly(raw []byte) *threading.Message {
	head := raw[:min(len(raw), maxHeaderScan)]
	if i := bytes.Index(head, []byte("\r\n\r\n")); i >= 0 {
		head = head[:i+4]
	} else if i := bytes.Index(head, []byte("\n\n")); i >= 0 {
		head = head[:i+2]
	}
	msg, _ := e.parse(head)
	if msg == nil {
		return nil
	}
	msg.RawSHA256, msg.Size = sha256Hex(raw), len(raw)
	return msg
}

// headerOnlyIn is headerOnly for an Inbound, staged or not. An error means
// a staged mail could not be read.
func (e *Engine) headerOnlyIn(in Inbound) (*threading.Message, error) {
	if in.Staged == nil {
		return e.headerOnly(in.Raw), nil
	}
	head, err := e.head(in, maxHeaderScan)
	if err != nil {
		return nil, err
	}
	msg := e.headerOnly(head)
	if msg == nil {
		return nil, nil
	}
	if msg.RawSHA256, err = e.sum(in); err != nil {
		return nil, err
	}
	msg.Size = in.size()
	return msg, nil
}

// panicError is a panic recovered while handling a mail.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

// recoverPanic, deferred by Handle, turns a panic outside the transaction
// into a quarantine of the mail in hand.
func (e *Engine) recoverPanic(in Inbound, res *Result, err *error) {
	if p := recover(); p != nil {
		*res, *err = e.quarantinePanic(in, &panicError{value: p, stack: debug.Stack()})
	}
}

// panicked quarantines the mail when err is a panic of its transaction,
// and reports whether it was.
func (e *Engine) panicked(in Inbound, err error) (res Result, ok bool, qerr error) {
	var pe *panicError
	if !errors.As(err, &pe) {
		return Result{}, false, nil
	}
	res, qerr = e.quarantinePanic(in, pe)
	return res, true, qerr
}

func (e *Engine) quarantinePanic(in Inbound, pe *panicError) (Result, error) {
	e.log.Error("panic while handling a mail: quarantining it", "mailbox", in.Mailbox, "uid", in.UID,
		"panic", pe.value, "stack", string(pe.stack))
	msg, err := e.headerOnlyIn(in)
	if err != nil {
		return Result{}, fmt.Errorf("quarantine %s uid %d: %w", in.Mailbox, in.UID, err)
	}
	return e.quarantine(in, msg, fmt.Sprintf("panic while handling the mail: %v", pe.value))
}

// quarantine keeps a mail that cannot become part of a ticket.
func (e *Engine) quarantine(in Inbound, msg *threading.Message, reason string) (Result, error) {
	return e.quarantineWith(in, msg, reason, nil)
}

// quarantineOversized quarantines a mail larger than MaxMessageBytes and
// tells its sender.
func (e *Engine) quarantineOversized(in Inbound, p prepared) (Result, error) {
	return e.quarantineWith(in, p.msg, p.unfit, (*step).oversizeNotice)
}

// quarantineWith quarantines the mail and, in the same transaction, runs
// also (when not nil) to queue mail about it.
func (e *Engine) quarantineWith(in Inbound, msg *threading.Message, reason string, also func(*step, *store.Quarantined) error) (Result, error) {
	q := &store.Quarantined{
		Mailbox: in.Mailbox, UIDValidity: in.UIDValidity, UID: in.UID,
		Reason: reason, Size: in.size(), ReceivedAt: e.now(), Raw: in.Raw,
	}
	var key string
	if msg != nil {
		q.From, q.Subject = msg.From.Addr, msg.Subject
		key = msg.DedupeKey()
	} else {
		sum, err := e.sum(in)
		if err != nil {
			return Result{}, fmt.Errorf("quarantine %s uid %d: %w", in.Mailbox, in.UID, err)
		}
		key = "sha256:" + sum
	}
	staged, err := e.stage(in)
	if err != nil {
		return Result{}, fmt.Errorf("quarantine %s uid %d: %w", in.Mailbox, in.UID, err)
	}
	defer e.unstage(staged)
	mb := e.mailboxes[in.Mailbox]
	s := &step{}
	err = e.db.Update(func(tx *store.Tx) error {
		s = &step{e: e, tx: tx, via: mb, mb: mb, in: in, msg: msg, now: e.now()}
		s.res = Result{Quarantined: true, Reason: reason}
		if err := tx.AdvanceCheckpoint(in.Mailbox, in.UIDValidity, in.UID); err != nil {
			return err
		}
		if tx.KnownKey(key) {
			s.res.Rule = threading.RuleDuplicate
			s.res.TicketID, _ = tx.TicketByMessageID(key)
			s.res.Quarantined = tx.IsQuarantined(key)
			return tx.AddPendingFlag(in.Mailbox, in.UIDValidity, in.UID, s.res.Quarantined)
		}
		if err := tx.AddPendingFlag(in.Mailbox, in.UIDValidity, in.UID, true); err != nil {
			return err
		}
		var qerr error
		if staged != nil {
			qerr = tx.QuarantineStaged(q, staged, key)
		} else {
			qerr = tx.Quarantine(q, key)
		}
		if qerr != nil {
			return qerr
		}
		if also != nil {
			return also(s, q)
		}
		return nil
	})
	if err != nil {
		return s.res, fmt.Errorf("quarantine %s uid %d: %w", in.Mailbox, in.UID, err)
	}
	e.logCommitted(s)
	return s.res, nil
}

// logCommitted logs what the committed transaction of s leaves for the
// operator and wakes the outbox.
func (e *Engine) logCommitted(s *step) {
	for _, p := range s.problems {
		e.log.Warn("outbound mail skipped", "mailbox", s.in.Mailbox, "uid", s.in.UID, "ticket", s.res.TicketID, "problem", p)
	}
	e.afterCommit(s)
	if s.queued > 0 && e.Queued != nil {
		e.Queued()
	}
}

// oversizeNotice queues the notice to the sender of an oversized mail.
func (s *step) oversizeNotice(q *store.Quarantined) error {
	e, msg := s.e, s.msg
	if msg == nil || msg.From.Addr == "" || s.mb.Address == "" {
		return nil
	}
	if v := autoreply.Classify(msg, e.own); v.Automated {
		s.res.Reason += "; no notice to automated mail (" + v.Reason + ")"
		return nil
	}
	addr := msg.From.Addr
	if ok, err := s.tx.Allow("oversize:"+addr, s.now, e.cfg.Per, 1); err != nil || !ok {
		if err == nil {
			s.res.Reason += "; " + addr + " had such a notice within " + e.cfg.Per.String()
		}
		return err
	}
	if ok, why, err := s.allowAuto(addr, autoCustomer); err != nil || !ok {
		if err == nil {
			s.res.Reason += "; no notice: " + why
		}
		return err
	}
	name := singleLine(msg.From.Name)
	greeting := "Hello,"
	if name != "" {
		greeting = "Hello " + name + ","
	}
	subject := singleLine(msg.Subject)
	if subject == "" {
		subject = "(no subject)"
	}
	text := fmt.Sprintf("%s\n\n"+
		"thank you for writing to %s. Your mail %q is %s, more than the\n"+
		"%s this help desk accepts, so it could not be turned into a ticket.\n"+
		"It has not been lost: it is kept, and an administrator can still\n"+
		"process it.\n\n"+
		"If your request cannot wait, please send it again without the large\n"+
		"attachments (for example a link to a file share instead), or reply to\n"+
		"this mail with a short description.\n\n"+
		"This notice was sent automatically.\n",
		greeting, s.mb.Address, clipText(subject, 200), byteSize(int64(q.Size)), byteSize(int64(e.cfg.MaxMessageBytes)))
	env := outbox.Envelope{
		From:       outbox.Address{Name: s.mb.Name, Addr: s.mb.Address},
		To:         []outbox.Address{{Name: msg.From.Name, Addr: addr}},
		Subject:    "Your mail was too large: " + clipText(subject, 150),
		Text:       text,
		MessageID:  e.tokens.NewMessageID(0, ""),
		InReplyTo:  msg.MessageID,
		References: threadReferences(msg),
		Date:       s.now,
		Headers:    autoReplyHeaders(),
	}
	before := s.queued
	if err := s.enqueueUnfiled(env, "notice of an oversized mail to "+addr); err != nil {
		return err
	}
	s.res.Notice = s.queued > before
	return nil
}

// singleLine makes s one line of printable text.
func singleLine(s string) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s))
}

// mailboxFor returns the configured mailbox name, or the first configured
// one when it is no longer configured.
func (e *Engine) mailboxFor(name string) Mailbox {
	if mb, ok := e.mailboxes[name]; ok {
		return mb
	}
	if len(e.cfg.Mailboxes) > 0 {
		return e.mailboxes[e.cfg.Mailboxes[0].Name]
	}
	return Mailbox{Name: name}
}

// quarantined reads quarantined mail id with its bytes.
func (e *Engine) quarantined(id uint64) (*store.Quarantined, error) {
	var q *store.Quarantined
	err := e.db.View(func(tx *store.Tx) error {
		var err error
		q, err = tx.Quarantined(id)
		return err
	})
	return q, err
}

// Replay runs quarantined mail id through the engine again, as if it had
// just arrived (acknowledgement, notifications, threading and all), except
// that the mailbox checkpoint and flags are left alone. On success the
// quarantine record is gone and the mail is on a ticket (or, when a copy of
// it was stored meanwhile, recognised as that copy: Rule "duplicate").
// When the mail still cannot become part of a ticket (still too large,
// unparseable, or it panics again) the error wraps ErrStillQuarantined and
// nothing changes. An unknown id is store.ErrNotFound.
func (e *Engine) Replay(ctx context.Context, id uint64) (res Result, err error) {
	if err := ctx.Err(); err != nil {
		return res, err
	}
	q, err := e.quarantined(id)
	if err != nil {
		return res, fmt.Errorf("replay quarantined mail %d: %w", id, err)
	}
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("panic while replaying a quarantined mail", "id", id, "panic", p, "stack", string(debug.Stack()))
			res, err = Result{}, &StillQuarantinedError{ID: id, Reason: fmt.Sprintf("panic: %v", p)}
		}
	}()
	p := e.prepare(Inbound{Raw: q.Raw})
	if p.unfit != "" {
		return res, &StillQuarantinedError{ID: id, Reason: p.unfit}
	}
	in := Inbound{Mailbox: q.Mailbox, UIDValidity: q.UIDValidity, UID: q.UID, Raw: q.Raw}
	mb := e.mailboxFor(q.Mailbox)
	s := &step{}
	err = e.db.Update(func(tx *store.Tx) error {
		s = &step{e: e, tx: tx, via: mb, mb: mb, in: in, msg: p.msg, verdict: p.verdict, report: p.report, now: e.now()}
		old, err := tx.Unquarantine(id)
		if err != nil {
			return err
		}
		key := p.msg.DedupeKey()
		if tx.KnownKey(key) {
			s.res.Rule = threading.RuleDuplicate
			s.res.TicketID, _ = tx.TicketByMessageID(key)
		} else if err := s.dispatch(key); err != nil {
			return err
		}
		return tx.IndexLike(old.Key, key)
	})
	if pe := (*panicError)(nil); errors.As(err, &pe) {
		e.log.Error("panic while replaying a quarantined mail", "id", id, "panic", pe.value, "stack", string(pe.stack))
		return Result{}, &StillQuarantinedError{ID: id, Reason: pe.Error()}
	}
	if err != nil {
		return s.res, fmt.Errorf("replay quarantined mail %d: %w", id, err)
	}
	e.log.Info("quarantined mail replayed", "id", id, "ticket", s.res.TicketID, "matched_by", s.res.Rule, "acked", s.res.Acked)
	e.logCommitted(s)
	return s.res, nil
}

// Release forces quarantined mail id into a new ticket, whatever it holds:
// subject and requester are read as far as possible (the whole mail, else
// its header, else nothing), the raw bytes are kept as they are, and the
// stored message says it was released and why it had been quarantined. No
// mail is sent: the operator who released it is looking after it. An
// unknown id is store.ErrNotFound.
func (e *Engine) Release(ctx context.Context, id uint64) (res Result, err error) {
	if err := ctx.Err(); err != nil {
		return res, err
	}
	q, err := e.quarantined(id)
	if err != nil {
		return res, fmt.Errorf("release quarantined mail %d: %w", id, err)
	}
	msg, _ := e.parse(q.Raw)
	if msg == nil {
		msg = e.headerOnly(q.Raw)
	}
	if msg == nil {
		// QUIRK: not even a header: the ticket shows the bytes as text.
		msg = &threading.Message{RawSHA256: sha256Hex(q.Raw), Size: len(q.Raw),
			Text: strings.ToValidUTF8(string(q.Raw[:min(len(q.Raw), 64<<10)]), "\uFFFD")}
	}
	verdict := autoreply.Classify(msg, e.own)
	in := Inbound{Mailbox: q.Mailbox, UIDValidity: q.UIDValidity, UID: q.UID, Raw: q.Raw}
	mb := e.mailboxFor(q.Mailbox)
	now := e.now()
	err = e.db.Update(func(tx *store.Tx) error {
		res = Result{Rule: ruleReleased, Kind: store.KindCustomer}
		old, err := tx.Unquarantine(id)
		if err != nil {
			return err
		}
		keys := []string{old.Key}
		if k := msg.DedupeKey(); k != old.Key && !tx.KnownKey(k) {
			keys = append(keys, k)
		}
		tk := e.newTicket(mb, msg, now)
		if err := tx.CreateTicket(tk); err != nil {
			return err
		}
		res.TicketID = tk.ID
		m := inboundMessage(tk.ID, in, msg, verdict, string(ruleReleased), now)
		m.Warnings = append(m.Warnings, "released from quarantine by the operator; it was quarantined because: "+old.Reason)
		return tx.AddMessage(m, q.Raw, keys...)
	})
	if err != nil {
		return res, fmt.Errorf("release quarantined mail %d: %w", id, err)
	}
	e.log.Info("quarantined mail released", "id", id, "ticket", res.TicketID)
	return res, nil
}
