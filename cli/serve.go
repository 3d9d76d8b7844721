package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/helpdesk/helpdesk/config"
	"github.com/helpdesk/helpdesk/daemon"
	"github.com/helpdesk/helpdesk/demo"
	"github.com/helpdesk/helpdesk/inbox"
	"github.com/helpdesk/helpdesk/outbox"
)

func newLogger(w io.Writer, cfg config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newServeCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon until SIGTERM (SIGHUP reloads the config)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			log := newLogger(e.stderr, cfg.Log)
			log.Info("starting helpdesk", "version", Version, "config", e.configPath(), "effective", cfg.Redacted())
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{}, 1)
			go func() {
				for range hup {
					select {
					case reload <- struct{}{}:
					default:
					}
				}
			}()
			d, err := daemon.Open(daemon.Options{
				Config: cfg,
				Log:    log,
				Reload: reload,
				LoadConfig: func() (*config.Config, error) {
					return config.LoadWithEnv(e.configPath(), e.environ)
				},
				Notify: func(state string) { sddaemon.SdNotify(false, state) },
			})
			if err != nil {
				return err
			}
			defer d.Close()
			return d.Run(ctx)
		},
	}
}

func newCheckCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Validate the config and log in to every IMAP mailbox and the SMTP server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := e.configPath()
			cfg, err := e.loadConfig()
			if err != nil {
				fmt.Fprintf(e.stdout, "FAIL config %s\n", path)
				return err
			}
			fmt.Fprintf(e.stdout, "ok   config %s\n", path)
			failed := 0
			report := func(what string, err error) {
				if err != nil {
					failed++
					fmt.Fprintf(e.stdout, "FAIL %s: %s\n", what, oneLine(err.Error(), 300))
					return
				}
				fmt.Fprintf(e.stdout, "ok   %s\n", what)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			log := slog.New(slog.DiscardHandler)
			for _, mb := range cfg.Mailboxes {
				ic := daemon.IMAPConfig(mb, nil)
				box := inbox.New(ic, nil, nil, log)
				report(fmt.Sprintf("imap %s (%s@%s, folder %s)", mb.Name, mb.IMAP.Username, mb.IMAP.Addr(), mb.IMAP.Folder), box.Check(ctx))
			}
			smtp := outbox.NewSMTPSender(daemon.SMTPConfig(cfg, nil))
			report(fmt.Sprintf("smtp %s (tls %s)", cfg.SMTP.Addr(), cfg.SMTP.TLS), smtp.Check(ctx))
			if failed > 0 {
				return fmt.Errorf("%d check(s) failed", failed)
			}
			return nil
		},
	}
}

func newDemoCmd(e *env) *cobra.Command {
	var keep, verbose bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a self-contained demo on loopback: no config, no network",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			opts := demo.Options{Keep: keep}
			if verbose {
				opts.Log = newLogger(e.stderr, config.Log{Level: "debug"})
			}
			return demo.Run(ctx, e.stdout, opts)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the demo database and print its path")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show the daemon's log on stderr")
	return cmd
}
