package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/helpdesk/helpdesk/admin"
	"github.com/helpdesk/helpdesk/autoreply"
	"github.com/helpdesk/helpdesk/config"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/ticket"
)

// registerLoopMetrics exposes loop protection: addresses on hold, read from
// the store at scrape time, and tripped circuit breakers, counted as the
// engine reports them (Engine.Alerted) for the life of the process.
func (d *Daemon) registerLoopMetrics() {
	d.breakerTrips = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "helpdesk_breaker_trips_total",
		Help: "Addresses whose automatic mail was paused by the circuit breaker (an alert each).",
	})
	d.registry.MustRegister(d.breakerTrips)
	for _, kind := range []string{store.HoldUndeliverable, store.HoldPaused} {
		d.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "helpdesk_addresses_on_hold",
			Help:        "Addresses that get no automatic mail now: undeliverable (a permanent bounce) or paused (circuit breaker).",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 {
			n := 0
			d.db.View(func(tx *store.Tx) error {
				hs, err := tx.Holds(time.Now())
				for _, h := range hs {
					if h.Kind == kind {
						n++
					}
				}
				return err
			})
			return float64(n)
		}))
	}
}

// alerted counts an alert of the engine.
func (d *Daemon) alerted(ticket.Alert) { d.breakerTrips.Inc() }

// liveQuarantine replays and releases quarantined mail with the running
// daemon's current engine (admin API).
type liveQuarantine struct{ d *Daemon }

// engine returns the current engine. The admin API listens before the
// first engine is built, so a request right at start waits for it.
func (q liveQuarantine) engine(ctx context.Context) (*ticket.Engine, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		q.d.mu.Lock()
		e := q.d.engine
		q.d.mu.Unlock()
		if e != nil {
			return e, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the daemon is still starting: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (q liveQuarantine) ReplayQuarantined(ctx context.Context, id uint64) (admin.QuarantineOutcome, error) {
	e, err := q.engine(ctx)
	if err != nil {
		return admin.QuarantineOutcome{}, err
	}
	return outcome(id, e.Replay)(ctx)
}

func (q liveQuarantine) ReleaseQuarantined(ctx context.Context, id uint64) (admin.QuarantineOutcome, error) {
	e, err := q.engine(ctx)
	if err != nil {
		return admin.QuarantineOutcome{}, err
	}
	return outcome(id, e.Release)(ctx)
}

// outcome runs a replay or release and translates its result and errors
// for the admin package.
func outcome(id uint64, fn func(context.Context, uint64) (ticket.Result, error)) func(context.Context) (admin.QuarantineOutcome, error) {
	return func(ctx context.Context) (admin.QuarantineOutcome, error) {
		res, err := fn(ctx, id)
		var still *ticket.StillQuarantinedError
		if errors.As(err, &still) {
			return admin.QuarantineOutcome{}, fmt.Errorf("%s: %w", still.Reason, admin.ErrStillQuarantined)
		}
		if err != nil {
			return admin.QuarantineOutcome{}, err
		}
		return admin.QuarantineOutcome{ID: id, TicketID: res.TicketID, Rule: string(res.Rule), Acked: res.Acked}, nil
	}
}

// offlineQuarantine is liveQuarantine for the CLI when serve is not
// running: an engine of its own on the database file. The mail it queues
// (an acknowledgement of a replayed mail) is sent when serve next runs.
type offlineQuarantine struct{ e *ticket.Engine }

// NewQuarantiner returns a Quarantiner working on db, which the caller
// opened read-write, with the engine configuration of cfg.
func NewQuarantiner(cfg *config.Config, db *store.DB, log *slog.Logger) (admin.Quarantiner, error) {
	templates, err := autoreply.LoadTemplates(cfg.Autoreply.Template)
	if err != nil {
		return nil, fmt.Errorf("autoreply.template: %w", err)
	}
	return offlineQuarantine{ticket.New(db, engineConfig(cfg), templates, log)}, nil
}

func (q offlineQuarantine) ReplayQuarantined(ctx context.Context, id uint64) (admin.QuarantineOutcome, error) {
	return outcome(id, q.e.Replay)(ctx)
}

func (q offlineQuarantine) ReleaseQuarantined(ctx context.Context, id uint64) (admin.QuarantineOutcome, error) {
	return outcome(id, q.e.Release)(ctx)
}
