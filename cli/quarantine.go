package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/helpdesk/helpdesk/admin"
	"github.com/helpdesk/helpdesk/daemon"
	"github.com/helpdesk/helpdesk/store"
)

func newQuarantineCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "quarantine", Short: "Mails that could not become tickets", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			c.Help()
			return usagef("quarantine needs list, replay or release")
		}}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List quarantined mails with their reasons",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return e.withReader(func(r admin.Reader) error {
				qs, err := r.ListQuarantine()
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(e.stdout, qs)
				}
				tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tMAILBOX\tUID\tFROM\tREASON")
				for _, q := range qs {
					fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", q.ID, q.Mailbox, q.UID, oneLine(q.From, 40), oneLine(q.Reason, 80))
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	replay := quarantineActionCmd(e, "replay",
		"Run a quarantined mail through the ticket rules again (after raising a limit, say)",
		admin.Quarantiner.ReplayQuarantined)
	release := quarantineActionCmd(e, "release",
		"Force a quarantined mail into a new ticket, however broken; nothing is sent",
		admin.Quarantiner.ReleaseQuarantined)
	cmd.AddCommand(list, replay, release)
	return cmd
}

// quarantineActionCmd is `quarantine replay ID` or `quarantine release ID`.
func quarantineActionCmd(e *env, verb, short string, act func(admin.Quarantiner, context.Context, uint64) (admin.QuarantineOutcome, error)) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return usagef("quarantine ID must be a positive number (got %q)", args[0])
			}
			return e.withQuarantiner(func(q admin.Quarantiner) error {
				out, err := act(q, c.Context(), id)
				switch {
				case errors.Is(err, store.ErrNotFound):
					return fmt.Errorf("quarantined mail %d not found (helpdesk quarantine list)", id)
				case errors.Is(err, admin.ErrStillQuarantined):
					return fmt.Errorf("quarantined mail %d stays quarantined: %w", id, err)
				case err != nil:
					return fmt.Errorf("quarantine %s %d: %w", verb, id, err)
				}
				if asJSON {
					return writeJSON(e.stdout, out)
				}
				fmt.Fprintf(e.stdout, "quarantined mail %d %s: %s\n", id, map[string]string{"replay": "replayed", "release": "released"}[verb], describeOutcome(out))
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return cmd
}

func describeOutcome(o admin.QuarantineOutcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ticket #%d", o.TicketID)
	switch o.Rule {
	case "new", "released":
		b.WriteString(" (new)")
	case "duplicate":
		b.WriteString(" (it was already stored there)")
	default:
		fmt.Fprintf(&b, " (threaded by %s)", o.Rule)
	}
	if o.Acked {
		b.WriteString(", acknowledgement queued")
	}
	return b.String()
}

// withQuarantiner runs fn against the database file, opened read-write
// with an engine of its own, or against the running daemon's API when the
// daemon holds the file lock.
func (e *env) withQuarantiner(fn func(admin.Quarantiner) error) error {
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	db, err := store.Open(cfg.Database, store.Options{Timeout: lockWait})
	if err == nil {
		defer db.Close()
		// Only warnings: the outcome is printed on stdout.
		log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		q, err := daemon.NewQuarantiner(cfg, db, log)
		if err != nil {
			return err
		}
		return fn(q)
	}
	if !errors.Is(err, store.ErrLocked) {
		return err
	}
	if cfg.HTTP.Listen == "" {
		return fmt.Errorf("%s is in use by a running helpdesk and http.listen is disabled, so it cannot be asked", cfg.Database)
	}
	return fn(admin.Client{Base: "http://" + cfg.HTTP.Listen})
}
