package daemon

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdesk/helpdesk/inbox"
	"github.com/helpdesk/helpdesk/outbox"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/ticket"
)

// handler feeds fetched mail to the ticket engine and logs each outcome once.
type handler struct {
	engine *ticket.Engine
	log    *slog.Logger
}

func (h handler) Handle(ctx context.Context, d inbox.Delivery) (inbox.Disposition, error) {
	res, err := h.engine.Handle(ctx, inbound(d))
	if err != nil {
		return inbox.Disposition{}, err
	}
	return h.done(d, res), nil
}

// HandleBatch makes handler an inbox.BatchHandler: the engine commits the
// mail the inbox read meanwhile in one transaction (group commit).
func (h handler) HandleBatch(ctx context.Context, ds []inbox.Delivery) ([]inbox.Disposition, error) {
	ins := make([]ticket.Inbound, len(ds))
	for i, d := range ds {
		ins[i] = inbound(d)
	}
	results, err := h.engine.HandleBatch(ctx, ins)
	disps := make([]inbox.Disposition, len(results))
	for i, res := range results {
		disps[i] = h.done(ds[i], res)
	}
	return disps, err
}

// Prepare makes handler an inbox.Preparer: mail is parsed as soon as it is
// read, while the mail before it is being committed.
func (h handler) Prepare(d inbox.Delivery) any {
	return h.engine.Prepare(inbound(d))
}

// Spool makes handler an inbox.Spooler: a big mail goes from the IMAP
// literal straight into the database, never whole into memory.
func (h handler) Spool(r io.Reader) (inbox.Spooled, error) {
	s, err := h.engine.Spool(r)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Discard removes a spooled mail no transaction claimed.
func (h handler) Discard(s inbox.Spooled) {
	if st, ok := s.(*store.Staged); ok {
		h.engine.Discard(st)
	}
}

// A big mail must reach the engine as a stream, not a buffer.
var _ inbox.Spooler = handler{}

// inbound is the engine's view of a delivery.
func inbound(d inbox.Delivery) ticket.Inbound {
	in := ticket.Inbound{Mailbox: d.Mailbox, UIDValidity: d.UIDValidity, UID: d.UID, Raw: d.Raw, Prepared: d.Prepared}
	if st, ok := d.Spooled.(*store.Staged); ok {
		in.Staged = st
	}
	return in
}

// done logs a committed mail's outcome.
func (h handler) done(d inbox.Delivery, res ticket.Result) inbox.Disposition {
	switch {
	case res.Quarantined && res.Rule != "duplicate":
		h.log.Warn("mail quarantined", "uid", d.UID, "reason", res.Reason)
	case res.Rule == "duplicate":
		h.log.Debug("mail already stored", "uid", d.UID, "ticket", res.TicketID)
	default:
		h.log.Info("mail stored", "uid", d.UID, "ticket", res.TicketID, "matched_by", res.Rule, "acked", res.Acked, "note", res.Reason)
	}
	return inbox.Disposition{Quarantined: res.Quarantined}
}

// state gives the inbox loops their checkpoints and pending flags.
type state struct{ db *store.DB }

func (s state) Checkpoint(mailbox string) (inbox.Checkpoint, error) {
	cp, err := s.db.MailboxCheckpoint(mailbox)
	return inbox.Checkpoint{UIDValidity: cp.UIDValidity, LastUID: cp.LastUID}, err
}

func (s state) PendingFlags(mailbox string, uidValidity uint32) ([]inbox.Pending, error) {
	flags, err := s.db.PendingFlags(mailbox, uidValidity)
	if err != nil {
		return nil, err
	}
	out := make([]inbox.Pending, len(flags))
	for i, f := range flags {
		out[i] = inbox.Pending{UID: f.UID, Quarantined: f.Quarantined}
	}
	return out, nil
}

func (s state) ClearPendingFlags(mailbox string, uidValidity uint32, uids []uint32) error {
	return s.db.ClearPendingFlags(mailbox, uidValidity, uids)
}

// queue is the store's outbox seen by the outbox worker.
type queue struct{ db *store.DB }

// OutboxQueue is the store's outbox as the daemon hands it to the outbox
// worker (an outbox.CursorQueue and BatchQueue too), for
// harnesses that run a worker of their own on a database.
func OutboxQueue(db *store.DB) outbox.Queue { return queue{db} }

func (q queue) Due(now time.Time, limit int, skip func(id uint64) bool) ([]outbox.Item, int, error) {
	due, skipped, err := q.db.OutboxDueSkipping(now, limit, skip)
	return outboxItems(due), skipped, err
}

// DueAfter makes queue an outbox.CursorQueue.
func (q queue) DueAfter(now time.Time, after outbox.Item, limit int) ([]outbox.Item, error) {
	due, err := q.db.OutboxDueAfter(now, after.NextAttempt, after.ID, limit)
	return outboxItems(due), err
}

func outboxItems(due []store.Outbound) []outbox.Item {
	items := make([]outbox.Item, 0, len(due))
	for _, o := range due {
		items = append(items, outbox.Item{ID: o.ID, From: o.From, To: o.To, Raw: o.Raw,
			Attempts: o.Attempts, NextAttempt: o.NextAttempt, LastError: o.LastError})
	}
	return items
}

func (q queue) NextDue() (time.Time, bool, error)  { return q.db.OutboxNextDue() }
func (q queue) Sent(id uint64, at time.Time) error { return q.db.OutboxSent(id, at) }

// SentBatch makes queue an outbox.BatchQueue: deliveries recorded in one
// transaction.
func (q queue) SentBatch(sent []outbox.Delivered) error {
	batch := make([]store.SentAt, len(sent))
	for i, d := range sent {
		batch[i] = store.SentAt{ID: d.ID, At: d.At}
	}
	return q.db.OutboxSentBatch(batch)
}
func (q queue) Retry(id uint64, attempts int, next time.Time, lastErr string) error {
	return q.db.OutboxRetry(id, attempts, next, lastErr)
}
func (q queue) Dead(id uint64, attempts int, lastErr string) error {
	return q.db.OutboxDead(id, attempts, lastErr)
}

// registerMetrics exposes counts read at scrape time, so no code path has to
// remember to bump a counter.
func (d *Daemon) registerMetrics() {
	outboxLen := func(dead bool) func() float64 {
		return func() float64 {
			q, dd, _ := d.db.OutboxLen()
			if dead {
				return float64(dd)
			}
			return float64(q)
		}
	}
	d.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "helpdesk_outbox_queued", Help: "Outbound mails waiting to be sent."}, outboxLen(false)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "helpdesk_outbox_dead", Help: "Outbound mails given up on."}, outboxLen(true)),
	)
	for _, st := range store.Statuses {
		d.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "helpdesk_tickets", Help: "Tickets by status.", ConstLabels: prometheus.Labels{"status": st},
		}, func() float64 {
			var n int
			d.db.View(func(tx *store.Tx) error { n = tx.CountByStatus()[st]; return nil })
			return float64(n)
		}))
	}
}
