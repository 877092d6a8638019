package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/report"
	"github.com/mailkeep/mailkeep/retention"
	"github.com/mailkeep/mailkeep/retention/config"
	"github.com/mailkeep/mailkeep/retention/history"
)

// exitTempFail is EX_TEMPFAIL (sysexits.h): another run holds the run
// lock; cron or systemd may simply try again later.
const exitTempFail = 75

// State files in state_dir.
const (
	historyFile = "history.db"
	runLockFile = "run.lock"
)

// addConfigFlag adds the global --config flag to the root command.
func addConfigFlag(root *cobra.Command, g *globalOptions) {
	root.PersistentFlags().StringVar(&g.configFile, "config", "",
		"read the configuration from `FILE` (default "+config.DefaultPath+", when it exists): roots, limits and state_dir for every command, all of it for run")
}

// loadConfig reads --config, or the default file when it exists, else
// returns the defaults. A bad file is a usage error (exit 2): nothing
// runs on a configuration that says something else than was meant.
func loadConfig(g globalOptions) (*config.Config, error) {
	path, explicit := g.configFile, g.configFile != ""
	if !explicit {
		path = config.DefaultPath
	}
	cfg, err := config.Load(path)
	switch {
	case err == nil:
		return cfg, nil
	case !explicit && errors.Is(err, fs.ErrNotExist):
		return config.Default(), nil
	}
	return nil, &exitStatus{code: 2, err: err}
}

// RunOptions are the flags of run. Those given override the file.
type RunOptions struct {
	Format report.Format
	LimitOptions
	Large           sizeValue
	Jobs            int
	StateDir        string
	MetricsTextfile string
	Shard           retention.Shard
	DryRun          bool
	Now             string
}

// AddFlags adds run's flags to f.
func (o *RunOptions) AddFlags(f *pflag.FlagSet) {
	f.Var(newFormatValue(&o.Format, report.FormatTable, report.FormatTable, report.FormatJSON), "format",
		"table (the summary line on stderr only) or json (also the summary as JSON on stdout)")
	o.LimitOptions.AddFlags(f)
	o.Large = mboxscan.DefaultLarge
	f.Var(&o.Large, "large", "count messages bigger than this as large"+sizeHelp)
	f.IntVar(&o.Jobs, "jobs", 0, "scan `N` mailboxes at once (default: the number of CPUs)")
	f.StringVar(&o.StateDir, "state-dir", "", "keep the history, the run lock and the notice state in `DIR` (default "+config.DefaultStateDir+")")
	f.StringVar(&o.MetricsTextfile, "metrics-textfile", "", "write node_exporter textfile metrics to `FILE`")
	f.Var(&o.Shard, "shard", "process only shard I of N: the stores whose path hashes to I mod N (0 <= I < N)")
	f.BoolVarP(&o.DryRun, "dry-run", "n", false, "do everything but change mail, send notices or write state")
	f.StringVar(&o.Now, "now", "", "the current time, `RFC3339` (tests, replays)")
}

func newRunCommand(g *globalOptions) *cobra.Command {
	var opts RunOptions
	cmd := &cobra.Command{
		Use:   "run [PATH...]",
		Short: "The nightly job: scan, record history, notify, prune by policy, write metrics",
		Long: `Run is the nightly job, configured by the configuration file (--config,
default ` + config.DefaultPath + `; flags override it). It:

  1. scans the configured roots (or the PATHs), only this host's share with
     --shard I/N: a store belongs to shard I when the FNV-1a hash of its path
     mod N is I, so N hosts (or the pods of an indexed Kubernetes CronJob)
     split one store between them, never overlapping;
  2. records each mailbox's bytes and messages in the history database in
     state_dir, deletes history older than history_keep, and fits each
     store's growth (Theil-Sen over the last trend_points runs): a store
     projected to reach its limit within trend_horizon is warned about;
  3. applies the retention policies, the first matching one per mailbox.
     A policy whose action is report removes nothing. With delete, when
     notices are on ([notify] enabled) a message is removed only when its
     owner was told, at least notify.notice (default 7d) before, that it
     would be: the first night sends the notice, a night after the notice
     period removes what it announced. Owners are told at most once per
     notice period. archive moves what delete would remove into
     compressed mbox files under archive_dir, made durable first;
  4. writes the metrics textfile when metrics_textfile is set, every
     series labelled with the shard under --shard;
  5. ends with one summary line on stderr, and with --format json the
     summary as JSON on stdout.

Only one run at a time: the run takes a lock on state_dir/run.lock, and
a second run exits 75 at once. An interrupted or killed run is safe to run
again: mailboxes are rewritten atomically, history rows are replaced, and a
notice is recorded only once it was sent.

--dry-run does everything but change mail, send notices and write the
history or the notice state; its counts are what a real run would do.

EXIT STATUS
  0    done
  1    some mailboxes or notices failed (the rest was done)
  2    usage error or a bad configuration file (nothing was done)
  75   another run holds the run lock
  130  interrupted`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), opts, cmd.Flags().Changed, *g, cmd.OutOrStdout(), cmd.ErrOrStderr(), args)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

// runSettings is the configuration with the flags applied.
type runSettings struct {
	cfg    *config.Config
	roots  []string
	shard  retention.Shard
	dryRun bool
	now    time.Time
	json   bool
}

// settings merges the file and the flags that were given.
func (o *RunOptions) settings(changed func(string) bool, g globalOptions, args []string) (*runSettings, error) {
	cfg, err := loadConfig(g)
	if err != nil {
		return nil, err
	}
	s := &runSettings{cfg: cfg, shard: o.Shard, dryRun: o.DryRun, json: o.Format == report.FormatJSON, now: g.clock()}
	if o.Now != "" {
		t, err := time.Parse(time.RFC3339, o.Now)
		if err != nil {
			return nil, usageErrorf("--now %q: %w", o.Now, err).withHint("give a time like 2025-01-31T03:00:00Z")
		}
		s.now = t
	}
	if changed("limit") {
		cfg.Limit = int64(o.Limit)
	}
	if changed("warn") {
		cfg.Warn = o.Warn
	}
	if changed("crit") {
		cfg.Crit = o.Crit
	}
	if changed("large") {
		cfg.Large = int64(o.Large)
	}
	if changed("jobs") {
		cfg.Jobs = o.Jobs
	}
	if changed("state-dir") {
		cfg.StateDir = o.StateDir
	}
	if changed("metrics-textfile") {
		cfg.MetricsTextfile = o.MetricsTextfile
	}
	lim := LimitOptions{Limit: sizeValue(cfg.Limit), Warn: cfg.Warn, Crit: cfg.Crit}
	if err := lim.validate(); err != nil {
		return nil, err
	}
	if cfg.Large <= 0 {
		return nil, usageErrorf("--large must be above 0")
	}
	if cfg.Jobs < 0 {
		return nil, usageErrorf("--jobs %d: must be at least 1", cfg.Jobs)
	}
	if cfg.StateDir == "" {
		return nil, usageErrorf("no state directory").withHint("set state_dir in the configuration or give --state-dir")
	}
	s.roots = args
	if len(s.roots) == 0 {
		s.roots = cfg.Roots
	}
	return s, nil
}

// runTally counts what a run did, for the summary.
type runTally struct {
	scanned, removed, archived, notified, failed int
	bytesRemoved                                 int64
}

// runReport is the JSON summary: the contract's fields, then ours.
type runReport struct {
	Scanned         int     `json:"scanned"`
	Removed         int     `json:"removed"`
	Archived        int     `json:"archived"`
	Notified        int     `json:"notified"`
	Failed          int     `json:"failed"`
	DryRun          bool    `json:"dry_run"`
	DurationSeconds float64 `json:"duration_seconds"`

	GeneratedAt  string     `json:"generated_at"`
	Shard        string     `json:"shard,omitempty"`
	BytesRemoved int64      `json:"bytes_removed"`
	Trends       []runTrend `json:"trends"`
}

// runTrend is one store's growth.
type runTrend struct {
	Store             string   `json:"store"`
	Bytes             int64    `json:"bytes"`
	LimitBytes        int64    `json:"limit_bytes"`
	Points            int      `json:"points"`
	GrowthBytesPerDay float64  `json:"growth_bytes_per_day"`
	FullInDays        *float64 `json:"full_in_days"` // null: not growing
	FullAt            *string  `json:"full_at"`
	WithinHorizon     bool     `json:"within_horizon"`
}

func runRun(ctx context.Context, opts RunOptions, changed func(string) bool, g globalOptions, stdout, stderr io.Writer, args []string) error {
	start := time.Now()
	s, err := opts.settings(changed, g, args)
	if err != nil {
		return err
	}
	r := &runner{s: s, cfg: s.cfg, stderr: stderr, g: g, now: s.now}
	if err := r.prepareNotify(); err != nil {
		return err
	}
	release, err := takeRunLock(s.cfg.StateDir)
	if err != nil {
		return err
	}
	defer release()

	err = r.run(ctx)
	if ctx.Err() != nil {
		return fmt.Errorf("run: %w", ctx.Err())
	}
	t := r.tally
	elapsed := time.Since(start)
	dry := ""
	if s.dryRun {
		dry = " (dry run)"
	}
	shard := ""
	if !s.shard.IsZero() {
		shard = " shard " + s.shard.String() + ":"
	}
	fmt.Fprintf(stderr, "mailkeep: run%s%s %d scanned, %d removed, %d archived (%s freed), %d notified, %d failed, in %s\n",
		dry, shard, t.scanned, t.removed, t.archived, humanize.IBytes(uint64(t.bytesRemoved)), t.notified, t.failed,
		elapsed.Round(time.Millisecond))
	if s.json {
		rep := runReport{
			Scanned: t.scanned, Removed: t.removed, Archived: t.archived, Notified: t.notified, Failed: t.failed,
			DryRun: s.dryRun, DurationSeconds: elapsed.Seconds(),
			GeneratedAt: s.now.Format(time.RFC3339), Shard: s.shard.String(), BytesRemoved: t.bytesRemoved,
			Trends: r.trends,
		}
		if rep.Trends == nil {
			rep.Trends = []runTrend{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if werr := enc.Encode(rep); werr != nil {
			return errors.Join(err, fmt.Errorf("write report: %w", werr))
		}
	}
	if err != nil {
		return err
	}
	if t.failed > 0 {
		return &exitStatus{code: 1}
	}
	return nil
}

// takeRunLock takes the run lock, a flock on state_dir/run.lock, without
// waiting. The kernel drops it when the process dies, however it dies, so
// a killed run never blocks the next. The file is never removed: removing
// it would let two runs lock two different files.
func takeRunLock(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, runLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("run lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := io.ReadAll(io.LimitReader(f, 32)); rerr == nil {
			if pid := strings.TrimSpace(string(b)); pid != "" {
				holder = " (pid " + pid + ")"
			}
		}
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &exitStatus{code: exitTempFail,
				err: fmt.Errorf("another mailkeep run is in progress%s: %s is locked; try again later", holder, path)}
		}
		return nil, fmt.Errorf("run lock %s: %w", path, err)
	}
	// The holder's pid, for the message above: informative only.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}

// runner is one run's state.
type runner struct {
	s      *runSettings
	cfg    *config.Config
	g      globalOptions
	stderr io.Writer
	now    time.Time

	db     *history.DB
	res    *mboxscan.Result
	tally  runTally
	trends []runTrend
	// storeTrends are the trends again, by store, for the notices.
	storeTrends map[string]report.Trend
	notify      *notifier
	// listings: each spool directory is listed once for all its prunes.
	listings retention.Listings
}

func (r *runner) warn(format string, args ...any) { warnf(r.stderr, format, args...) }

// fail counts a failure and says what it was.
func (r *runner) fail(format string, args ...any) {
	r.tally.failed++
	r.warn(format, args...)
}

func (r *runner) run(ctx context.Context) error {
	scanStart := time.Now()
	if err := r.scan(ctx); err != nil {
		return err
	}
	scanDur := time.Since(scanStart)
	if err := r.openHistory(ctx); err != nil {
		return err
	}
	if r.db != nil {
		defer r.db.Close()
	}
	r.record(ctx)
	r.fitTrends(ctx)
	r.applyPolicies(ctx)
	if ctx.Err() != nil {
		return nil
	}
	r.sendNotices(ctx)
	r.writeMetrics(scanDur)
	return nil
}

// expandRoots expands the globs among roots. A pattern that matches
// nothing is dropped (no home has a Maildir yet); a plain root is kept, so
// that a missing one is reported.
func expandRoots(roots []string) []string {
	var out []string
	for _, root := range roots {
		if !strings.ContainsAny(root, "*?[") {
			out = append(out, root)
			continue
		}
		m, err := filepath.Glob(root)
		if err != nil {
			out = append(out, root) // reported as missing below
			continue
		}
		out = append(out, m...)
	}
	return out
}

// scan discovers the mailboxes, keeps this shard's stores and measures
// them. A missing root and a mailbox that cannot be read are failures;
// files that are not mailboxes are not.
func (r *runner) scan(ctx context.Context) error {
	var present []string
	for _, root := range expandRoots(r.s.roots) {
		if _, err := os.Lstat(root); err != nil {
			r.fail("scan root: %v", err)
			continue
		}
		present = append(present, root)
	}
	locs, skipped, err := mboxscan.Discover(ctx, present)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	mine := locs[:0]
	for _, l := range locs {
		store := l.Store
		if store == "" {
			store = l.Path
		}
		if r.s.shard.Has(store) {
			mine = append(mine, l)
		}
	}
	opts := mboxscan.Options{Large: r.cfg.Large, Jobs: r.cfg.Jobs, Limit: r.cfg.Limit, Warn: r.cfg.Warn, Crit: r.cfg.Crit}
	var p *progress
	if r.g.stderrTTY {
		p = startProgress(r.stderr)
		opts.Progress = p.add
	}
	res, err := mboxscan.ScanLocations(ctx, mine, opts)
	p.stop()
	if err != nil {
		return err
	}
	for _, sk := range res.Skipped {
		r.fail("%s: %s", report.Printable(sk.Path), report.Printable(sk.Reason))
	}
	for _, sk := range skipped {
		if slices.Contains(present, sk.Path) {
			r.fail("%s: %s", report.Printable(sk.Path), report.Printable(sk.Reason))
		}
	}
	res.Skipped = append(res.Skipped, skipped...)
	r.res = res
	r.tally.scanned = len(res.Mailboxes)
	return nil
}

// openHistory opens the history database; a dry run only reads it, and
// only when it exists. A database that cannot be opened stops the run:
// without the notice state no removal can be proven announced.
func (r *runner) openHistory(ctx context.Context) error {
	path := filepath.Join(r.cfg.StateDir, historyFile)
	var err error
	if r.s.dryRun {
		if _, serr := os.Stat(path); serr != nil {
			return nil
		}
		r.db, err = history.OpenReadOnly(ctx, path)
	} else {
		r.db, err = history.Open(ctx, path)
	}
	return err
}

// record stores tonight's samples and drops rows past history_keep.
func (r *runner) record(ctx context.Context) {
	if r.s.dryRun || r.db == nil {
		return
	}
	samples := make([]history.Sample, 0, len(r.res.Mailboxes))
	for _, mb := range r.res.Mailboxes {
		samples = append(samples, history.Sample{Path: mb.Path, Store: storeOf(&mb), Bytes: mb.Bytes, Messages: mb.Messages, Limit: mb.LimitBytes})
	}
	if err := r.db.Record(ctx, r.now, samples); err != nil {
		r.fail("%v", err)
	}
	if _, err := r.db.Prune(ctx, r.cfg.HistoryKeep.Before(r.now)); err != nil {
		r.fail("%v", err)
	}
}

func storeOf(mb *mboxscan.Mailbox) string {
	if mb.Store != "" {
		return mb.Store
	}
	return mb.Path
}

// fitTrends fits each store's growth and warns about those projected to
// be full within the horizon.
func (r *runner) fitTrends(ctx context.Context) {
	if r.db == nil {
		return
	}
	type storeNow struct {
		bytes, limit int64
	}
	stores := map[string]*storeNow{}
	var order []string
	for i := range r.res.Mailboxes {
		mb := &r.res.Mailboxes[i]
		st := storeOf(mb)
		s, ok := stores[st]
		if !ok {
			s = &storeNow{limit: mb.LimitBytes}
			stores[st] = s
			order = append(order, st)
		}
		s.bytes += mb.Bytes
	}
	horizon := r.cfg.TrendHorizon
	for _, st := range order {
		pts, err := r.db.StoreSeries(ctx, st, r.cfg.TrendPoints)
		if err != nil {
			r.fail("%v", err)
			continue
		}
		cur := stores[st]
		if n := len(pts); n == 0 || !pts[n-1].At.Equal(r.now.Truncate(time.Second)) {
			// A dry run did not record tonight: fit with it anyway.
			pts = append(pts, history.Point{At: r.now, Bytes: cur.bytes})
			if len(pts) > r.cfg.TrendPoints {
				pts = pts[1:]
			}
		}
		tr, ok := history.Fit(pts, cur.limit)
		if !ok {
			continue
		}
		if r.storeTrends == nil {
			r.storeTrends = map[string]report.Trend{}
		}
		r.storeTrends[st] = reportTrend(tr, r.now)
		rt := runTrend{Store: st, Bytes: tr.Last.Bytes, LimitBytes: cur.limit, Points: tr.Points, GrowthBytesPerDay: tr.BytesPerDay}
		if tr.Growing() {
			d := tr.DaysToFull
			at := tr.FullAt.Format(time.RFC3339)
			rt.FullInDays, rt.FullAt = &d, &at
			rt.WithinHorizon = !tr.FullAt.After(horizonEnd(r.now, horizon))
		}
		if rt.WithinHorizon {
			r.warn("%s: full in %s (%s) at %s a day", report.Printable(st), report.InDays(tr.DaysToFull),
				tr.FullAt.Format(time.DateOnly), humanize.IBytes(uint64(max(tr.BytesPerDay, 0))))
		}
		r.trends = append(r.trends, rt)
	}
}

// horizonEnd is now plus the age a.
func horizonEnd(now time.Time, a retention.Age) time.Time {
	return now.Add(now.Sub(a.Before(now)))
}

// applyPolicies applies to each mailbox the first policy that matches it:
// removals whose notice has matured, and the announcements of what the
// next removals will take.
func (r *runner) applyPolicies(ctx context.Context) {
	for i := range r.res.Mailboxes {
		if ctx.Err() != nil {
			return
		}
		mb := &r.res.Mailboxes[i]
		owner := r.owner(mb)
		t := retention.Target{
			Path:   mb.Path,
			Folder: retention.FolderName(mb.Path, mb.Folder, mb.Format == mboxscan.FormatMaildir),
			User:   owner.User,
			Domain: owner.Domain,
		}
		idx := r.cfg.Policies.Match(t)
		if idx < 0 {
			continue
		}
		r.applyRule(ctx, mb, owner, r.cfg.Policies[idx])
	}
}

// owner is who a mailbox belongs to: from path_pattern, else the file's
// owner.
func (r *runner) owner(mb *mboxscan.Mailbox) report.Owner {
	o := report.Owner{User: mb.Owner, UID: mb.UID}
	if pp := r.cfg.PathPattern; pp != nil {
		if u, d, ok := pp.Match(mb.Path); ok {
			if u != "" {
				o.User = u
			}
			o.Domain = d
		}
	}
	return o
}

func (r *runner) applyRule(ctx context.Context, mb *mboxscan.Mailbox, owner report.Owner, rule retention.Rule) {
	action := rule.Action
	p := rule.Policy
	notice := retention.Age{}
	if r.notify != nil {
		notice = r.cfg.Notify.Notice
	}
	var notices []history.Notice
	if r.db != nil {
		var err error
		if notices, err = r.db.Notices(ctx, mb.Path); err != nil {
			r.fail("%v", err)
			return
		}
	} else if !notice.IsZero() && action.Removes() && !r.s.dryRun {
		return // no state: nothing can be proven announced
	}

	var removalCut time.Time
	if action.Removes() {
		switch {
		case notice.IsZero():
			removalCut = p.Cutoff(r.now)
		default:
			if m := history.Matured(notices, notice.Before(r.now)); m != nil {
				removalCut = minTime(p.Cutoff(r.now), m.Cutoff)
			}
		}
		if !removalCut.IsZero() {
			r.prune(ctx, mb, withCutoff(p, removalCut), action == retention.ActionArchive)
		}
	}

	if r.notify == nil {
		return
	}
	// What to announce: for a removing policy, what it will take after the
	// notice period that is not gone tonight; for a report-only policy,
	// what it selects now. Once per notice period.
	var ann announcement
	switch {
	case action.Removes() && !notice.IsZero():
		if history.Pending(notices, notice.Before(r.now), history.KindRemoval) {
			return
		}
		ann = announcement{kind: history.KindRemoval, cutoff: p.Cutoff(horizonEnd(r.now, notice)), removeAfter: horizonEnd(r.now, notice)}
	case !action.Removes():
		every := notice
		if every.IsZero() {
			every = config.DefaultNotice
		}
		if history.Pending(notices, every.Before(r.now)) {
			return
		}
		ann = announcement{kind: history.KindReport, cutoff: p.Cutoff(r.now)}
	default:
		return // removing without notice
	}
	announced := withCutoff(p, ann.cutoff)
	tonight := withCutoff(p, removalCut)
	pol := &report.NoticePolicy{
		Description:  p.String(),
		Cutoff:       ann.cutoff,
		DateKind:     p.DateKind,
		KeepsFlagged: !p.IncludeFlagged,
		Decide: func(m *mboxscan.Message) (remove, undated bool) {
			ok, why := retention.Decide(m, announced, r.now)
			if !ok {
				return false, why == retention.KeepUndated
			}
			if !removalCut.IsZero() {
				if gone, _ := retention.Decide(m, tonight, r.now); gone {
					return false, false // removed tonight: nothing to announce
				}
			}
			return true, false
		},
	}
	rm, largest, err := report.PlanMailbox(ctx, mb, pol, report.DefaultLargest)
	if err != nil {
		r.fail("%v", err)
		return
	}
	if rm.Messages == 0 {
		return
	}
	ann.mb, ann.owner, ann.rule, ann.remove, ann.largest, ann.policy = mb, owner, rule, rm, largest, p
	r.notify.add(ann)
}

// withCutoff is p with a fixed cutoff.
func withCutoff(p retention.Policy, cut time.Time) retention.Policy {
	p.OlderThan = retention.Age{}
	p.Before = cut
	return p
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// prune removes what p selects from mb (a dry run with --dry-run), into
// archive_dir when archive is set.
func (r *runner) prune(ctx context.Context, mb *mboxscan.Mailbox, p retention.Policy, archive bool) {
	o := retention.Options{
		Listings:   &r.listings,
		Policy:     p,
		Now:        r.now,
		DryRun:     r.s.dryRun,
		Lock:       r.cfg.Lock,
		CheckOwner: true,
		ExpectUID:  mb.UID,
		// The journals of in-place rewrites live with the rest of the
		// run's state.
		StateDir: r.cfg.StateDir,
	}
	if archive {
		o.Archive = retention.ArchiveOptions{Dir: r.cfg.ArchiveDir}
	}
	var (
		res *retention.Result
		err error
	)
	if mb.Format == mboxscan.FormatMaildir {
		res, err = retention.PruneMaildir(ctx, mb.Path, mb.Store, o)
	} else {
		res, err = retention.PruneMbox(ctx, mb.Path, o)
	}
	if res != nil {
		for _, n := range res.Notes {
			fmt.Fprintf(r.stderr, "mailkeep: %s: %s\n", report.Printable(mb.Path), report.Printable(n))
		}
	}
	if err != nil && ctx.Err() == nil {
		r.fail("%v", err)
	}
	if res == nil {
		return
	}
	// removed counts what left the mailboxes without a copy; archived what
	// went to the archive. A failed or interrupted prune counts too: an
	// mbox reports nothing removed unless it was replaced, a Maildir what
	// it unlinked before it stopped.
	r.tally.archived += res.MessagesArchived
	r.tally.removed += res.MessagesRemoved - res.MessagesArchived
	r.tally.bytesRemoved += res.BytesRemoved
}
