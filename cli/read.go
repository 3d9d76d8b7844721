package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/helpdesk/helpdesk/admin"
	"github.com/helpdesk/helpdesk/store"
)

// lockWait is how long a read command waits for the database lock before it
// concludes that `serve` holds it and asks the daemon instead.
const lockWait = 300 * time.Millisecond

// withReader runs fn against the database file, or against the running
// daemon's API when the daemon holds the file lock.
func (e *env) withReader(fn func(admin.Reader) error) error {
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	db, err := store.Open(cfg.Database, store.Options{ReadOnly: true, Timeout: lockWait})
	if err == nil {
		defer db.Close()
		return fn(admin.DBReader{DB: db})
	}
	if !errors.Is(err, store.ErrLocked) {
		return err
	}
	if cfg.HTTP.Listen == "" {
		return fmt.Errorf("%s is in use by a running helpdesk and http.listen is disabled, so it cannot be asked", cfg.Database)
	}
	return fn(admin.Client{Base: "http://" + cfg.HTTP.Listen})
}

func newTicketsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "tickets", Short: "List and show tickets", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { c.Help(); return usagef("tickets needs list or show") }}
	var status string
	var limit int
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List tickets, newest first",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if status != "" && !validStatus(status) {
				return usagef("--status: must be one of %s (got %q)", strings.Join(store.Statuses, ", "), status)
			}
			return e.withReader(func(r admin.Reader) error {
				tks, err := r.ListTickets(admin.ListRequest{Status: status, Limit: limit})
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(e.stdout, tks)
				}
				return writeTicketTable(e.stdout, tks)
			})
		},
	}
	list.Flags().StringVar(&status, "status", "", "only tickets with this status")
	list.Flags().IntVar(&limit, "limit", 0, "at most this many tickets (0 = all)")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")

	var showJSON bool
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one ticket with its whole conversation",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(strings.TrimPrefix(args[0], "#"), 10, 64)
			if err != nil || id == 0 {
				return usagef("ticket ID must be a positive number (got %q)", args[0])
			}
			return e.withReader(func(r admin.Reader) error {
				tk, err := r.ShowTicket(id)
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("ticket %d not found", id)
				}
				if err != nil {
					return err
				}
				if showJSON {
					return writeJSON(e.stdout, tk)
				}
				return writeTicket(e.stdout, tk)
			})
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON for scripts")
	cmd.AddCommand(list, show)
	return cmd
}

func newBackupCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the database, also while serve runs",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			dst := args[0]
			tmp, err := os.CreateTemp(filepath.Dir(dst), ".helpdesk-backup-*")
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			defer os.Remove(tmp.Name())
			var n int64
			db, err := store.Open(cfg.Database, store.Options{ReadOnly: true, Timeout: lockWait})
			switch {
			case err == nil:
				n, err = db.Backup(tmp)
				db.Close()
			case errors.Is(err, store.ErrLocked) && cfg.HTTP.Listen != "":
				n, err = admin.Client{Base: "http://" + cfg.HTTP.Listen}.Backup(tmp)
			}
			if err == nil {
				err = tmp.Sync()
			}
			if cerr := tmp.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = verifyFile(tmp.Name())
			}
			if err == nil {
				err = os.Rename(tmp.Name(), dst)
			}
			if err != nil {
				return fmt.Errorf("backup to %s: %w", dst, err)
			}
			fmt.Fprintf(e.stdout, "backup: wrote %d bytes to %s (verified)\n", n, dst)
			return nil
		},
	}
}

// verifyFile opens a database file read-only and runs its Check.
func verifyFile(path string) error {
	db, err := store.Open(path, store.Options{ReadOnly: true, Timeout: lockWait})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.Check()
}

func newVerifyCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "verify [FILE]",
		Short: "Check the invariants of the database (or of a backup file)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			var path string
			if len(args) == 1 {
				path = args[0]
			} else {
				cfg, err := e.loadConfig()
				if err != nil {
					return err
				}
				path = cfg.Database
			}
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			if err := verifyFile(path); err != nil {
				return fmt.Errorf("verify %s: %w", path, err)
			}
			fmt.Fprintf(e.stdout, "verify: %s is consistent\n", path)
			return nil
		},
	}
}

func validStatus(s string) bool {
	for _, v := range store.Statuses {
		if v == s {
			return true
		}
	}
	return false
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeTicketTable(w io.Writer, tks []admin.Ticket) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPRIORITY\tUPDATED\tREQUESTER\tASSIGNEE\tSUBJECT")
	for _, t := range tks {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Status, t.Priority,
			t.UpdatedAt.Local().Format("2006-01-02 15:04"), oneLine(t.Requester, 40), dash(t.Assignee), oneLine(t.Subject, 60))
	}
	return tw.Flush()
}

func writeTicket(w io.Writer, t admin.Ticket) error {
	fmt.Fprintf(w, "Ticket #%d: %s\n", t.ID, oneLine(t.Subject, 200))
	fmt.Fprintf(w, "Status: %s  Priority: %s  Mailbox: %s\n", t.Status, t.Priority, t.Mailbox)
	fmt.Fprintf(w, "Requester: %s  CC: %s\n", t.Requester, dash(strings.Join(t.CC, ", ")))
	fmt.Fprintf(w, "Assignee: %s  Team: %s  Category: %s\n", dash(t.Assignee), dash(t.Team), dash(t.Category))
	fmt.Fprintf(w, "Created: %s  Updated: %s  Messages: %d\n", t.CreatedAt.Format(time.RFC3339), t.UpdatedAt.Format(time.RFC3339), t.MessageCount)
	for i, m := range t.Messages {
		fmt.Fprintf(w, "\n--- %d. %s %s from %s, %s", i+1, m.Direction, m.Kind, m.From, m.Date.Format(time.RFC3339))
		if m.MatchedBy != "" {
			fmt.Fprintf(w, " (threaded by %s)", m.MatchedBy)
		}
		if m.Automated != "" {
			fmt.Fprintf(w, " [automated: %s]", m.Automated)
		}
		if m.Delivery != nil {
			fmt.Fprintf(w, " [delivery: %s", m.Delivery.Status)
			if m.Delivery.LastError != "" {
				fmt.Fprintf(w, ": %s", oneLine(m.Delivery.LastError, 120))
			}
			fmt.Fprint(w, "]")
		}
		fmt.Fprintf(w, "\nSubject: %s\n", oneLine(m.Subject, 200))
		for _, warning := range m.Warnings {
			fmt.Fprintf(w, "Warning: %s\n", oneLine(warning, 300))
		}
		for _, a := range m.Attachments {
			fmt.Fprintf(w, "Attachment: %s (%s, %d bytes)\n", oneLine(a.Filename, 100), a.ContentType, a.Size)
		}
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(m.Text))
	}
	return nil
}

// oneLine keeps hostile or long values from breaking a table row.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
