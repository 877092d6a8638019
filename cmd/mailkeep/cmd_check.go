package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mailkeep/mailkeep/report"
	"github.com/mailkeep/mailkeep/retention"
	"github.com/mailkeep/mailkeep/retention/config"
)

// CheckOptions are the flags of check.
type CheckOptions struct {
	LimitOptions
	Jobs int
	// StateDir and Horizon: as for scan, the growth trends.
	StateDir string
	Horizon  retention.Age
}

// AddFlags adds check's flags to f.
func (o *CheckOptions) AddFlags(f *pflag.FlagSet) {
	o.LimitOptions.AddFlags(f)
	f.IntVar(&o.Jobs, "jobs", 0, "scan `N` mailboxes at once (default: the number of CPUs)")
	f.StringVar(&o.StateDir, "state-dir", "", "read the growth trends from the history of nightly runs in `DIR` (default: state_dir of the configuration, "+config.DefaultStateDir+")")
	f.Var(&o.Horizon, "horizon", "warn about a store projected to be full within `AGE` (default: trend_horizon of the configuration, "+config.DefaultTrendHorizon.String()+")")
}

func (o *CheckOptions) validate() error {
	if err := o.LimitOptions.validate(); err != nil {
		return err
	}
	if o.Jobs < 0 {
		return usageErrorf("--jobs %d: must be at least 1", o.Jobs)
	}
	return nil
}

func newCheckCommand(g *globalOptions) *cobra.Command {
	var opts CheckOptions
	cmd := &cobra.Command{
		Use:   "check [PATH...]",
		Short: "Monitoring plugin: one status line with perfdata",
		Long: `Check scans the mailboxes under the PATHs (default /var/mail), like scan, and
prints one status line in the form of the Nagios plugin guidelines, for
Nagios, Icinga, Sensu or any compatible monitoring system:

  MAILKEEP CRITICAL - 1 crit, 2 warn of 7 mailboxes; fullest /var/mail/bob 97.1% (2.0 GiB of 2.0 GiB) | mailboxes=7;;;0 ...

A store counts once: an mbox file, or a Maildir with all its folders. The
perfdata holds the counts (mailboxes, warn, crit, skipped), then for each
store its size in bytes with the --warn and --crit thresholds in bytes, 0
and the limit.

SIZE takes forms like 2GiB, 1.5GB, 10MB or 500000. GB and MB are powers of
ten (1GB = 10^9 bytes); GiB and MiB powers of two (1GiB = 2^30 bytes).

Growth trends: as scan does, check reads the history that "mailkeep run"
records (state_dir/history.db, --state-dir) and warns about a store that
its growth will fill within trend_horizon (--horizon, default 30d), naming
the soonest: "projected full: /var/mail/bob in 12 days". Without a history
there are no trends, and nothing is created.

EXIT STATUS
  0    OK: every store is below --warn
  1    WARNING: a store is at --warn or above, or projected full within the
       horizon; none at --crit
  2    CRITICAL: a store is at --crit or above (even if a PATH failed)
  3    UNKNOWN: no mailbox was found, a PATH could not be scanned, or the
       command line is wrong
  130  interrupted`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), opts, *g, cmd.OutOrStdout(), cmd.ErrOrStderr(), args)
		},
	}
	opts.AddFlags(cmd.Flags())
	// A monitoring system reads stdout and the exit code: a bad flag is
	// UNKNOWN (3) with a status line, not a usage error (2, which would
	// read as CRITICAL).
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return checkUnknown(c.OutOrStdout(), usageErrorf("%w", err).withHint("see '%s --help'", c.CommandPath()))
	})
	return cmd
}

func runCheck(ctx context.Context, opts CheckOptions, g globalOptions, stdout, stderr io.Writer, args []string) error {
	if err := opts.validate(); err != nil {
		return checkUnknown(stdout, err)
	}
	roots := args
	if len(roots) == 0 {
		roots = g.defaultRoots()
	}
	cfg, err := scanConfig(g)
	if err != nil {
		return checkUnknown(stdout, err)
	}
	if opts.StateDir != "" {
		cfg.StateDir = opts.StateDir
	}
	if !opts.Horizon.IsZero() {
		cfg.TrendHorizon = opts.Horizon
	}
	sopts := ScanOptions{LimitOptions: opts.LimitOptions, Large: 10_000_000, Jobs: opts.Jobs}
	res, scanErr := scanRoots(ctx, g, stderr, roots, sopts.scannerOptions())
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("check: %w", err)
	}
	copts := report.CheckOptions{Warn: opts.Warn, Crit: opts.Crit}
	if res != nil && !cfg.TrendHorizon.IsZero() {
		now := g.clock()
		copts.Trends = scanTrends(ctx, res, filepath.Join(cfg.StateDir, historyFile), cfg.TrendPoints, now)
		copts.Early = report.WarnEarly(res, copts.Trends, horizonEnd(now, cfg.TrendHorizon))
	}
	status, line := report.Check(res, scanErr, copts)
	if _, err := fmt.Fprintln(stdout, line); err != nil {
		return &exitStatus{code: int(report.StatusUnknown), err: fmt.Errorf("write status: %w", err)}
	}
	if status == report.StatusOK {
		return nil
	}
	return &exitStatus{code: int(status), err: scanErr}
}

// checkUnknown prints the UNKNOWN status line for err and returns the
// exit status 3 that carries it.
func checkUnknown(stdout io.Writer, err error) error {
	fmt.Fprintln(stdout, report.CheckUnknown(err.Error()))
	return &exitStatus{code: int(report.StatusUnknown), err: err}
}
