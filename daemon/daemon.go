// Package daemon wires helpdesk together for `serve` and `demo`: the store,
// the ticket engine, one inbox loop per mailbox, the outbox worker and the
// admin HTTP API. It is the only package that knows all the others.
//
// Lifecycle: Run starts everything and returns when its context is
// cancelled, after the inbox loops have finished the mail in hand (so a
// commit is never cut short) and the outbox worker has finished the send in
// hand. A reload (SIGHUP) stops the loops the same way and starts them again
// with the new configuration; the database stays open throughout.
package daemon

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/helpdesk/helpdesk/admin"
	"github.com/helpdesk/helpdesk/autoreply"
	"github.com/helpdesk/helpdesk/config"
	"github.com/helpdesk/helpdesk/inbox"
	"github.com/helpdesk/helpdesk/outbox"
	"github.com/helpdesk/helpdesk/store"
	"github.com/helpdesk/helpdesk/ticket"
)

// Options are what Run needs beyond the configuration.
type Options struct {
	Config *config.Config
	Log    *slog.Logger
	// Reload delivers a value for every reload request (SIGHUP); LoadConfig
	// then reads the configuration again. Both may be nil.
	Reload     <-chan struct{}
	LoadConfig func() (*config.Config, error)
	// RootCAs adds trusted roots for IMAP and SMTP (tests and demo).
	RootCAs *x509.CertPool
	// Notify receives systemd state changes ("READY=1", "RELOADING=1",
	// "STOPPING=1"); may be nil.
	Notify func(state string)
	// Started is called once everything listens, with the admin API
	// address ("" when disabled); may be nil.
	Started func(d *Daemon)
}

// Daemon is a running helpdesk.
type Daemon struct {
	opts     Options
	log      *slog.Logger
	db       *store.DB
	registry *prometheus.Registry
	// breakerTrips counts tripped circuit breakers (loops.go).
	breakerTrips prometheus.Counter
	admin        *admin.Server

	mu      sync.Mutex
	cfg     *config.Config
	engine  *ticket.Engine
	boxes   []*inbox.Mailbox
	worker  *outbox.Worker
	started time.Time
}

// Open opens the database and prepares a daemon; Run starts it.
func Open(opts Options) (*Daemon, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	db, err := store.Open(opts.Config.Database, store.Options{})
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, log: opts.Log, db: db, cfg: opts.Config, registry: prometheus.NewRegistry()}
	d.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	d.registerMetrics()
	d.registerLoopMetrics()
	return d, nil
}

// DB is the daemon's database (tests and demo read it).
func (d *Daemon) DB() *store.DB { return d.db }

// AdminAddr is the bound admin API address, "" when disabled.
func (d *Daemon) AdminAddr() string {
	if d.admin == nil {
		return ""
	}
	return d.admin.Addr()
}

// Close closes the database. Call it after Run returned.
func (d *Daemon) Close() error { return d.db.Close() }

// Run serves until ctx is cancelled and returns nil after a clean drain.
func (d *Daemon) Run(ctx context.Context) error {
	d.started = time.Now()
	if addr := d.cfg.HTTP.Listen; addr != "" {
		d.admin = &admin.Server{DB: d.db, Registry: d.registry, Log: d.log, Health: d.health, Quarantine: liveQuarantine{d}}
		if err := d.admin.Listen(addr); err != nil {
			return err
		}
		go func() {
			if err := d.admin.Serve(); err != nil {
				d.log.Error("admin api stopped", "err", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			d.admin.Shutdown(sctx)
		}()
		d.log.Info("admin api listening", "addr", d.admin.Addr())
	}
	for {
		loopsCtx, stopLoops := context.WithCancel(context.Background())
		wait, err := d.start(loopsCtx)
		if err != nil {
			stopLoops()
			return err
		}
		d.notify("READY=1")
		if d.opts.Started != nil {
			d.opts.Started(d)
			d.opts.Started = nil
		}
	running:
		for {
			select {
			case <-ctx.Done():
				d.notify("STOPPING=1")
				d.log.Info("shutting down: finishing mail in hand")
				stopLoops()
				wait()
				d.log.Info("stopped")
				return nil
			case <-d.opts.Reload:
				d.notify("RELOADING=1")
				next, err := d.reloadConfig()
				if err != nil {
					// The loops keep running: starting them again would
					// run two of each (two workers sending the same mail).
					d.log.Error("reload refused, keeping the running configuration", "err", err)
					d.notify("READY=1")
					continue
				}
				stopLoops()
				wait()
				d.mu.Lock()
				d.cfg = next
				d.mu.Unlock()
				d.log.Info("configuration reloaded", "mailboxes", len(next.Mailboxes), "agents", len(next.Agents))
				break running
			}
		}
	}
}

func (d *Daemon) reloadConfig() (*config.Config, error) {
	if d.opts.LoadConfig == nil {
		return nil, errors.New("no configuration source")
	}
	next, err := d.opts.LoadConfig()
	if err != nil {
		return nil, err
	}
	if next.Database != d.cfg.Database || next.HTTP.Listen != d.cfg.HTTP.Listen {
		return nil, errors.New("database and http.listen change only with a restart")
	}
	return next, nil
}

// start builds the engine, the outbox worker and one loop per mailbox from
// the current configuration and starts them. wait blocks until all have
// stopped after ctx is cancelled.
func (d *Daemon) start(ctx context.Context) (wait func(), err error) {
	cfg := d.cfg
	templates, err := autoreply.LoadTemplates(cfg.Autoreply.Template)
	if err != nil {
		return nil, fmt.Errorf("autoreply.template: %w", err)
	}
	engine := ticket.New(d.db, engineConfig(cfg), templates, d.log)
	worker := &outbox.Worker{
		Queue:       queue{d.db},
		Sender:      outbox.NewSMTPSender(SMTPConfig(cfg, d.opts.RootCAs)),
		Log:         d.log.With("component", "outbox"),
		MaxAttempts: cfg.Outbox.MaxAttempts,
		MinBackoff:  cfg.Outbox.MinBackoff,
		MaxBackoff:  cfg.Outbox.MaxBackoff,
		OnDead: func(it outbox.Item, err error) {
			d.log.Error("outbound mail given up", "outbox_id", it.ID, "to", it.To, "err", err)
			if err := engine.DeadLetter(it.ID, err.Error()); err != nil {
				d.log.Error("could not tell the agents about a given-up mail", "outbox_id", it.ID, "err", err)
			}
		},
	}
	engine.Queued = worker.Kick
	engine.Alerted = d.alerted
	var boxes []*inbox.Mailbox
	for _, mb := range cfg.Mailboxes {
		// The inbox adds the mailbox name to its own log lines.
		boxes = append(boxes, inbox.New(IMAPConfig(mb, d.opts.RootCAs), handler{engine: engine, log: d.log.With("mailbox", mb.Name)}, state{d.db}, d.log))
	}
	d.mu.Lock()
	d.engine, d.worker, d.boxes = engine, worker, boxes
	d.mu.Unlock()

	var wg sync.WaitGroup
	run := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					d.log.Error("component panicked", "component", name, "panic", p)
				}
			}()
			if err := fn(ctx); err != nil {
				d.log.Error("component stopped", "component", name, "err", err)
			}
		}()
	}
	run("outbox", worker.Run)
	for i, b := range boxes {
		run("inbox "+cfg.Mailboxes[i].Name, b.Run)
	}
	return wg.Wait, nil
}

// Poke wakes every inbox loop (tests, and a future admin endpoint).
func (d *Daemon) Poke() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.boxes {
		b.Poke()
	}
	if d.worker != nil {
		d.worker.Kick()
	}
}

func (d *Daemon) notify(state string) {
	if d.opts.Notify != nil {
		d.opts.Notify(state)
	}
}

func (d *Daemon) health() error {
	_, _, err := d.db.OutboxLen()
	return err
}

func engineConfig(cfg *config.Config) ticket.Config {
	tc := ticket.Config{
		SubjectPrefix:    cfg.Ticket.SubjectPrefix,
		Domain:           cfg.Ticket.Domain,
		AutoreplyEnabled: cfg.Autoreply.Enabled,
		MaxPerSender:     cfg.Autoreply.MaxPerSender,
		Per:              cfg.Autoreply.Per,
		GlobalMaxPerHour: cfg.Autoreply.GlobalMaxPerHour,
		MaxMessageBytes:  int(cfg.Limits.MaxMessageBytes),

		TrustedAuthservID: cfg.Security.TrustedAuthservID,

		BreakerTrips:     cfg.Autoreply.PauseAfter,
		BreakerPause:     cfg.Autoreply.PauseFor,
		UndeliverableFor: cfg.Autoreply.UndeliverableFor,
		AdminEmail:       cfg.Alerts.AdminEmail,
	}
	for _, mb := range cfg.Mailboxes {
		tc.Mailboxes = append(tc.Mailboxes, ticket.Mailbox{Name: mb.Name, Address: strings.ToLower(mb.Address),
			CommentAddress: strings.ToLower(mb.CommentAddress)})
	}
	for _, a := range cfg.Agents {
		tc.Agents = append(tc.Agents, ticket.Agent{Email: strings.ToLower(a.Email), Name: a.Name, Teams: a.Teams})
	}
	for _, t := range cfg.Teams {
		tc.Teams = append(tc.Teams, ticket.Team{Name: t.Name, Email: strings.ToLower(t.Email)})
	}
	return tc
}

// IMAPConfig translates one configured mailbox for the inbox package. A
// mailbox with an oauth2 block logs in with access tokens from its own
// cached refresh-token grant (see oauthTokens) instead of a password.
func IMAPConfig(mb config.Mailbox, roots *x509.CertPool) inbox.Config {
	ic := inbox.Config{
		Name:               mb.Name,
		Host:               mb.IMAP.Host,
		Port:               mb.IMAP.Port,
		TLS:                string(mb.IMAP.TLS),
		InsecureSkipVerify: mb.IMAP.InsecureSkipVerify,
		RootCAs:            roots,
		Username:           mb.IMAP.Username,
		Password:           mb.IMAP.Password,
		Folder:             mb.IMAP.Folder,
		MoveTo:             mb.IMAP.MoveTo,
		PollInterval:       mb.PollInterval,
		IDLE:               mb.IDLE,
	}
	if mb.IMAP.OAuth2 != nil {
		ic.Password = ""
		ic.Token = newOAuthTokens(*mb.IMAP.OAuth2).Token
	}
	return ic
}

// SMTPConfig translates the smtp section for the outbox package.
func SMTPConfig(cfg *config.Config, roots *x509.CertPool) outbox.SMTPConfig {
	return outbox.SMTPConfig{
		Host:               cfg.SMTP.Host,
		Port:               cfg.SMTP.Port,
		TLS:                string(cfg.SMTP.TLS),
		Username:           cfg.SMTP.Username,
		Password:           cfg.SMTP.Password,
		InsecureSkipVerify: cfg.SMTP.InsecureSkipVerify,
		RootCAs:            roots,
		HELO:               cfg.SMTP.HELO,
		Timeout:            cfg.SMTP.Timeout,
	}
}
