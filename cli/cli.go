// Package cli is the helpdesk command line. Every command writes to the
// writers it is given and returns an exit code, so tests run it in-process:
// 0 success, 1 runtime failure, 2 usage or configuration error.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/helpdesk/helpdesk/config"
)

// Version and Commit are set at build time with -ldflags -X.
var (
	Version = "dev"
	Commit  = ""
)

// usageError marks an error as the caller's mistake (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// env is what every command may use.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
	configFlag     string
}

// configPath is where the config is read from.
func (e *env) configPath() string { return config.Resolve(e.configFlag, e.environ) }

// loadConfig reads and validates the config; its errors exit 2.
func (e *env) loadConfig() (*config.Config, error) {
	cfg, err := config.LoadWithEnv(e.configPath(), e.environ)
	if err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

// Main runs the command line with args (without the program name).
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(args, &env{stdin: stdin, stdout: stdout, stderr: stderr, environ: os.Environ()})
}

func run(args []string, e *env) int { return runContext(context.Background(), args, e) }

func runContext(ctx context.Context, args []string, e *env) int {
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	fmt.Fprintf(e.stderr, "helpdesk: %s\n", msg)
	var ue usageError
	var ce *config.Error
	if errors.As(err, &ue) || errors.As(err, &ce) || isCobraUsage(err) {
		return 2
	}
	return 1
}

// isCobraUsage recognises cobra's own argument errors, which it returns as
// plain errors.
func isCobraUsage(err error) bool {
	s := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires ", "invalid argument", "flag needs an argument", "required flag"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "helpdesk",
		Short:         "Shared-inbox email ticketing for IT help desks",
		SilenceUsage:  true,
		SilenceErrors: true,
		// A bare `helpdesk` is a usage error, not a success.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.Help()
			return usagef("a command is required")
		},
	}
	root.PersistentFlags().StringVar(&e.configFlag, "config", "", "config file (default $HELPDESK_CONFIG, ./config.yaml, /etc/helpdesk/config.yaml)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newServeCmd(e),
		newCheckCmd(e),
		newDemoCmd(e),
		newTicketsCmd(e),
		newQuarantineCmd(e),
		newBackupCmd(e),
		newVerifyCmd(e),
		newVersionCmd(e),
	)
	return root
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and commit",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			commit := Commit
			if commit == "" {
				if bi, ok := debug.ReadBuildInfo(); ok {
					for _, s := range bi.Settings {
						if s.Key == "vcs.revision" {
							commit = s.Value
						}
					}
				}
			}
			if commit == "" {
				commit = "unknown"
			}
			fmt.Fprintf(e.stdout, "helpdesk %s (commit %s)\n", Version, commit)
			return nil
		},
	}
}
