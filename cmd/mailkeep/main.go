// Command mailkeep keeps Unix mail stores healthy: it measures mbox files
// and Maildirs, warns before they reach the 2 GiB limit, and removes old
// mail without ever losing any.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// globalOptions is what every command may use: the environment the
// process runs in, detected once in main, and the seams tests replace.
type globalOptions struct {
	// stdoutTTY and stderrTTY say whether stdout and stderr are terminals:
	// a table for people or rows for programs, progress or silence.
	stdoutTTY, stderrTTY bool
	// now is the clock (generated_at); nil means time.Now.
	now func() time.Time
	// scan is mboxscan.Scan; nil means that.
	scan func(ctx context.Context, roots []string, opts mboxscan.Options) (*mboxscan.Result, error)
	// roots are scanned when no PATH is given; nil means /var/mail.
	roots []string
	// configFile is --config; "" means the default file, if it exists.
	configFile string
}

func (g globalOptions) clock() time.Time {
	if g.now != nil {
		return g.now()
	}
	return time.Now()
}

func (g globalOptions) scanner() func(context.Context, []string, mboxscan.Options) (*mboxscan.Result, error) {
	if g.scan != nil {
		return g.scan
	}
	return mboxscan.Scan
}

func (g globalOptions) defaultRoots() []string {
	if g.roots != nil {
		return g.roots
	}
	return []string{"/var/mail"}
}

// newRootCommand builds the command tree. A new command is one line in the
// AddCommand call.
func newRootCommand(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "mailkeep",
		Short: "Keep Unix mail stores healthy",
		Long: `mailkeep measures mbox files and Maildirs, warns before a mailbox reaches
its size limit (2 GiB by default), and removes old mail with atomic rewrites
that never lose mail.

Data goes to stdout; errors, warnings and progress go to stderr.

EXIT STATUS
  0    success
  1    the command failed for some mailboxes or paths (see each command)
  2    usage error
  130  interrupted (SIGINT or SIGTERM)
  check has its own codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		DisableAutoGenTag: true,
		// SuggestionsFor needs it set; cobra only defaults it on its own path.
		SuggestionsMinimumDistance: 2,
		// Runnable, with its own Args, so that an unknown command is a
		// usage error (exit 2) rather than cobra's untyped one.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return nil
			}
			e := usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				return e.withHint("did you mean %q?", s[0])
			}
			return e.withHint("run 'mailkeep --help' for the list of commands")
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return applyConfigDefaults(cmd, g)
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageErrorf("%w", err).withHint("see '%s --help'", cmd.CommandPath())
	})
	vi := currentVersion()
	root.Version = vi.String()
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")

	root.AddCommand(
		newScanCommand(g),
		newCheckCommand(g),
		newPruneCommand(g),
		newNotifyCommand(g),
		newVersionCommand(),
		newGendocsCommand(),
		newRunCommand(g),
		newHistoryCommand(g),
	)
	addConfigFlag(root, g)
	// Add cobra's completion command now rather than at Execute, so that it
	// is in the tree for gendocs and for the Args wrapping below.
	root.InitDefaultCompletionCmd()
	markUsageErrors(root)
	return root
}

// markUsageErrors makes the argument errors of every command usage errors.
func markUsageErrors(c *cobra.Command) {
	for _, sub := range c.Commands() {
		if args := sub.Args; args != nil {
			sub.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return usageErrorf("%w", err).withHint("see '%s --help'", cmd.CommandPath())
				}
				return nil
			}
		}
		markUsageErrors(sub)
	}
}

// usageError is a mistake in the command line: exit 2, with a hint.
type usageError struct {
	err  error
	hint string
}

func usageErrorf(format string, args ...any) *usageError {
	return &usageError{err: fmt.Errorf(format, args...)}
}

func (e *usageError) withHint(format string, args ...any) *usageError {
	e.hint = fmt.Sprintf(format, args...)
	return e
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitStatus is a command's chosen exit code (check's plugin status),
// with the error to print, if any.
type exitStatus struct {
	code int
	err  error
}

func (e *exitStatus) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitStatus) Unwrap() error { return e.err }

// exitCode maps the outcome of a command to the process's exit code.
func exitCode(ctx context.Context, err error) int {
	var status *exitStatus
	var usage *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return 130
	case errors.As(err, &status):
		return status.code
	case errors.As(err, &usage):
		return 2
	default:
		// A scan or prune that failed for some paths: the rest was done.
		return 1
	}
}

// printError prints err once, each of its lines prefixed, with a hint
// for usage errors.
func printError(w io.Writer, err error, code int) {
	var status *exitStatus
	switch {
	case err == nil:
		return
	case code == 130:
		fmt.Fprintln(w, "mailkeep: interrupted")
		return
	case errors.As(err, &status) && status.err == nil:
		return
	}
	for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
		fmt.Fprintf(w, "mailkeep: error: %s\n", line)
	}
	var usage *usageError
	if errors.As(err, &usage) && usage.hint != "" {
		fmt.Fprintf(w, "mailkeep: hint: %s\n", usage.hint)
	}
}

// warnf prints a warning on stderr.
func warnf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "mailkeep: warning: "+format+"\n", args...)
}

// run executes the command line args and returns the exit code.
func run(ctx context.Context, g *globalOptions, args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	code := exitCode(ctx, err)
	printError(stderr, err, code)
	return code
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	g := &globalOptions{
		stdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
	code := run(ctx, g, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
