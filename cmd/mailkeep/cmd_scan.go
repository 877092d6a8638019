package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/report"
	"github.com/mailkeep/mailkeep/retention"
	"github.com/mailkeep/mailkeep/retention/config"
	"github.com/mailkeep/mailkeep/retention/history"
)

// ScanOptions are the flags of scan.
type ScanOptions struct {
	Format report.Format
	LimitOptions
	Large sizeValue
	Jobs  int
	// Textfile is a node_exporter textfile to write the metrics to.
	Textfile string
	// StateDir holds the history database of the nightly runs; "" means
	// state_dir of the configuration.
	StateDir string
	// Horizon: a store projected to be full within it is warned about;
	// zero means trend_horizon of the configuration.
	Horizon retention.Age
}

// AddFlags adds scan's flags to f.
func (o *ScanOptions) AddFlags(f *pflag.FlagSet) {
	f.Var(newFormatValue(&o.Format, report.FormatTable, report.Formats...), "format",
		"output format: table, json, csv or prometheus")
	f.StringVar(&o.Textfile, "textfile", "", "also write the metrics, atomically, to this node_exporter textfile collector `PATH` (.prom)")
	o.LimitOptions.AddFlags(f)
	o.Large = 10_000_000
	f.Var(&o.Large, "large", "count messages bigger than this as large"+sizeHelp)
	o.addJobsFlag(f)
	f.StringVar(&o.StateDir, "state-dir", "", "read the growth trends from the history of nightly runs in `DIR` (default: state_dir of the configuration, "+config.DefaultStateDir+")")
	f.Var(&o.Horizon, "horizon", "warn about a store projected to be full within `AGE` (default: trend_horizon of the configuration, "+config.DefaultTrendHorizon.String()+")")
}

func (o *ScanOptions) addJobsFlag(f *pflag.FlagSet) {
	f.IntVar(&o.Jobs, "jobs", 0, "scan `N` mailboxes at once (default: the number of CPUs)")
}

func (o *ScanOptions) validate() error {
	if err := o.LimitOptions.validate(); err != nil {
		return err
	}
	if o.Large <= 0 {
		return usageErrorf("--large must be above 0").withHint("give a size such as --large 10MB")
	}
	if o.Jobs < 0 {
		return usageErrorf("--jobs %d: must be at least 1", o.Jobs).withHint("leave --jobs out to scan as many mailboxes at once as there are CPUs")
	}
	return nil
}

// scannerOptions returns the options for mboxscan.Scan.
func (o *ScanOptions) scannerOptions() mboxscan.Options {
	opts := mboxscan.Options{Large: int64(o.Large), Jobs: o.Jobs}
	if opts.Jobs == 0 {
		opts.Jobs = runtime.NumCPU()
	}
	o.LimitOptions.apply(&opts)
	return opts
}

func newScanCommand(g *globalOptions) *cobra.Command {
	var opts ScanOptions
	cmd := &cobra.Command{
		Use:   "scan [PATH...]",
		Short: "Measure mailboxes and report their size against the limit",
		Long: `Scan measures every mailbox under the PATHs and reports, fullest first, its
size against the limit: messages, oldest and newest received dates, the
largest message, messages over --large, and bounces.

A PATH is an mbox file, a Maildir, or a directory holding mailboxes, searched
recursively. With no PATH, /var/mail is scanned. A Maildir++ folder (.Trash,
.Sent …) is its own row; a Maildir's level is computed on the whole store,
against its maildirsize quota when one is set, else against --limit.

Scan is read-only: it changes no byte, flag, time stamp or file name. Not
even the access time, which mutt and biff compare with the modification
time to tell new mail: mboxes are read with O_NOATIME, or their access
time is put back. A reader that is neither an mbox's owner nor root may do
neither, so it measures an mbox with new mail by its size alone, with the
problem "messages not counted, size from stat".

Formats (--format):
  table  on a terminal, aligned columns with a header, then skipped files,
         problems and totals; when piped, tab-separated rows only (level
         ok|warn|crit, USED% as a number, sizes in bytes), with skipped files
         and problems as warnings on stderr
  json   the document described in the CLI contract, on stdout
  csv    a header row, then the JSON fields of each mailbox; skipped files
         are warnings on stderr
  prometheus
         the Prometheus text format (mailkeep_mailbox_size_bytes and the
         rest, labelled by path, owner, format and store); --textfile PATH
         writes the same atomically for node_exporter's textfile collector

Growth trends. When "mailkeep run" has recorded a history (state_dir/history.db
of the configuration, or --state-dir DIR), scan reads it, read-only, and
shows for each store how many days it has until it is full at the rate it
grew over the last trend_points runs: a FULL IN column on a terminal
("12d", "-" when not growing or unknown), growth_bytes_per_day,
full_in_days and full_at in JSON and CSV. A store projected to be full
within trend_horizon (--horizon, default 30d) is raised to at least warn,
with the problem "projected full in N days (growth X/day)". Without a
history, or when it cannot be read, scan shows no trends; it never
creates one.

SIZE takes forms like 2GiB, 1.5GB, 10MB or 500000. GB and MB are powers of
ten (1GB = 10^9 bytes); GiB and MiB powers of two (1GiB = 2^30 bytes).

Progress is shown on stderr when it is a terminal.

EXIT STATUS
  0    the scan completed; mailboxes at warn or crit level are reported, not
       failures, and files that are not mailboxes are listed as skipped
  1    a PATH could not be scanned (it does not exist, or reading it failed);
       a missing PATH is listed as skipped, and the rest is reported
  2    usage error
  130  interrupted`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runScan(cmd.Context(), opts, *g, cmd.OutOrStdout(), cmd.ErrOrStderr(), args)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

func runScan(ctx context.Context, opts ScanOptions, g globalOptions, stdout, stderr io.Writer, args []string) error {
	if err := opts.validate(); err != nil {
		return err
	}
	roots := args
	if len(roots) == 0 {
		roots = g.defaultRoots()
	}
	cfg, err := scanConfig(g)
	if err != nil {
		return err
	}
	if opts.StateDir != "" {
		cfg.StateDir = opts.StateDir
	}
	if !opts.Horizon.IsZero() {
		cfg.TrendHorizon = opts.Horizon
	}
	start := time.Now()
	res, scanErr := scanRoots(ctx, g, stderr, roots, opts.scannerOptions())
	if err := ctx.Err(); err != nil {
		// An interrupted scan is incomplete: report nothing.
		return fmt.Errorf("scan: %w", err)
	}
	if res == nil {
		return scanErr
	}
	now := g.clock()
	trends := scanTrends(ctx, res, filepath.Join(cfg.StateDir, historyFile), cfg.TrendPoints, now)
	if !cfg.TrendHorizon.IsZero() {
		report.WarnEarly(res, trends, horizonEnd(now, cfg.TrendHorizon))
	}
	if err := writeScanMetrics(opts, g, res, scanErr, time.Since(start), stdout); err != nil {
		return errors.Join(err, scanErr)
	}
	tty := g.stdoutTTY && opts.Format == report.FormatTable
	if opts.Format != report.FormatPrometheus { // else written by writeScanMetrics
		err = report.Scan(stdout, res, report.ScanOptions{Format: opts.Format, TTY: tty, Now: now, Trends: trends})
	}
	if err != nil {
		return errors.Join(fmt.Errorf("write report: %w", err), scanErr)
	}
	// What the format cannot carry goes to stderr.
	if opts.Format != report.FormatJSON && !tty {
		for _, s := range res.Skipped {
			warnf(stderr, "skipped %s: %s", report.Printable(s.Path), report.Printable(s.Reason))
		}
	}
	if opts.Format == report.FormatTable && !tty {
		for _, m := range res.Mailboxes {
			for _, p := range m.Problems {
				warnf(stderr, "%s: %s", report.Printable(m.Path), report.Printable(p))
			}
		}
	}
	return scanErr
}

// scanRoots scans the roots that exist and lists the others as skipped,
// with an error for each: a root the operator named (or configured) that
// is missing is a failure, unlike a stray file under it. It returns a nil
// result only when the scanner failed without one. Progress is drawn on
// stderr when it is a terminal.
func scanRoots(ctx context.Context, g globalOptions, stderr io.Writer, roots []string, opts mboxscan.Options) (*mboxscan.Result, error) {
	var (
		errs    []error
		missing []mboxscan.Skipped
		present []string
	)
	for _, root := range roots {
		if _, err := os.Stat(root); err != nil {
			reason := err.Error()
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
				reason = pe.Err.Error()
			}
			missing = append(missing, mboxscan.Skipped{Path: root, Reason: reason})
			errs = append(errs, fmt.Errorf("scan root: %w", err))
			continue
		}
		present = append(present, root)
	}

	res := &mboxscan.Result{}
	if len(present) > 0 {
		var p *progress
		if g.stderrTTY {
			p = startProgress(stderr)
			opts.Progress = p.add
		}
		r, err := g.scanner()(ctx, present, opts)
		p.stop()
		if err == nil && r == nil {
			err = errors.New("scan: no result")
		}
		if err != nil {
			errs = append(errs, err)
		}
		if r == nil {
			return nil, errors.Join(errs...)
		}
		res = r
	}
	if len(missing) > 0 {
		res.Skipped = append(res.Skipped, missing...)
		slices.SortStableFunc(res.Skipped, func(a, b mboxscan.Skipped) int { return strings.Compare(a.Path, b.Path) })
	}
	return res, errors.Join(errs...)
}

// scanConfig reads the configuration for scan's trends. As for run, a
// bad file stops the scan; but a default file this user may not read
// (it is root's) is no reason not to scan: the defaults are used.
func scanConfig(g globalOptions) (*config.Config, error) {
	cfg, err := loadConfig(g)
	if err != nil && g.configFile == "" && errors.Is(err, fs.ErrPermission) {
		return config.Default(), nil
	}
	return cfg, err
}

// scanTrends fits each scanned store's growth from the history database
// at path, opened read-only, against the store's limit in this scan, with
// its days until full counted from now. It returns nil when there is no
// database, or it cannot be read: a scan works without a history and must
// never create one. A store whose history cannot be read or is too short
// has no trend.
func scanTrends(ctx context.Context, res *mboxscan.Result, path string, points int, now time.Time) map[string]report.Trend {
	// Open would fail on a missing file too; but a stat first is what
	// makes sure that nothing, not even an empty file, is ever created.
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	db, err := history.OpenReadOnly(ctx, path)
	if err != nil {
		return nil
	}
	defer db.Close()
	trends := map[string]report.Trend{}
	for i := range res.Mailboxes {
		mb := &res.Mailboxes[i]
		store := storeOf(mb)
		if _, done := trends[store]; done || mb.LimitBytes <= 0 {
			continue
		}
		t, ok, err := db.StoreTrend(ctx, store, points, mb.LimitBytes)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		if ok {
			trends[store] = reportTrend(t, now)
		}
	}
	return trends
}

// reportTrend is t as the report shows it, its days until full counted
// from now rather than from the last run.
func reportTrend(t history.Trend, now time.Time) report.Trend {
	rt := report.Trend{BytesPerDay: t.BytesPerDay}
	if t.Growing() {
		rt.FullAt = t.FullAt
		rt.FullInDays = max(t.FullAt.Sub(now).Hours()/24, 0)
	}
	return rt
}
