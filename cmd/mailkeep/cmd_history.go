package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mailkeep/mailkeep/report"
	"github.com/mailkeep/mailkeep/retention/history"
)

// HistoryOptions are the flags of history.
type HistoryOptions struct {
	Format   report.Format
	Last     int
	StateDir string
}

// AddFlags adds history's flags to f.
func (o *HistoryOptions) AddFlags(f *pflag.FlagSet) {
	f.Var(newFormatValue(&o.Format, report.FormatTable, report.FormatTable, report.FormatJSON), "format", "output format: table or json")
	f.IntVar(&o.Last, "last", 0, "show only the last `N` runs (default: all that are kept)")
	f.StringVar(&o.StateDir, "state-dir", "", "read the history in `DIR` (default: state_dir of the configuration)")
}

func newHistoryCommand(g *globalOptions) *cobra.Command {
	var opts HistoryOptions
	cmd := &cobra.Command{
		Use:   "history PATH",
		Short: "Show a mailbox's or a store's size over the recorded runs, and its trend",
		Long: `History prints the sizes that "mailkeep run" recorded for PATH, oldest first:
a mailbox (an mbox file or a Maildir folder) or a store (a Maildir with all
its folders, summed per run). It ends with the growth per day, fitted over
the last trend_points runs (Theil-Sen: a few odd nights do not move it),
and when the store will reach its limit at that rate.

On a terminal the table has a header and a bar per run; piped, it is
tab-separated rows: time (RFC 3339), bytes, messages. --format json gives
the series and the trend as one object.

The history is read from state_dir (see --config) or --state-dir, read-only.

EXIT STATUS
  0    printed
  1    no history for PATH, or the history cannot be read
  2    usage error`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runHistory(cmd.Context(), opts, cmd.Flags().Changed, *g, cmd.OutOrStdout(), args[0])
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

// historyReport is the JSON document of history.
type historyReport struct {
	Path   string         `json:"path"`
	Store  bool           `json:"store"`
	Points []historyPoint `json:"points"`
	Trend  *runTrend      `json:"trend"`
}

type historyPoint struct {
	At       string `json:"at"`
	Bytes    int64  `json:"bytes"`
	Messages int    `json:"messages"`
}

func runHistory(ctx context.Context, opts HistoryOptions, changed func(string) bool, g globalOptions, stdout io.Writer, path string) error {
	if opts.Last < 0 {
		return usageErrorf("--last %d: must be at least 1", opts.Last)
	}
	cfg, err := loadConfig(g)
	if err != nil {
		return err
	}
	dir := cfg.StateDir
	if changed("state-dir") {
		dir = opts.StateDir
	}
	db, err := history.OpenReadOnly(ctx, filepath.Join(dir, historyFile))
	if err != nil {
		return fmt.Errorf("%w (has mailkeep run recorded anything in %s?)", err, dir)
	}
	defer db.Close()

	// Paths are recorded as the run found them: try PATH as given, then
	// absolute.
	candidates := []string{filepath.Clean(path)}
	if abs, err := filepath.Abs(path); err == nil && abs != candidates[0] {
		candidates = append(candidates, abs)
	}
	var (
		pts     []history.Point
		isStore bool
	)
	for _, p := range candidates {
		if isStore, err = db.IsStore(ctx, p); err != nil {
			return err
		}
		if isStore {
			pts, err = db.StoreSeries(ctx, p, opts.Last)
		} else {
			pts, err = db.Series(ctx, p, opts.Last)
		}
		if err != nil {
			return err
		}
		if len(pts) > 0 {
			path = p
			break
		}
	}
	if len(pts) == 0 {
		return fmt.Errorf("no history for %s in %s", path, dir)
	}

	// The trend always uses the last trend_points runs, whatever --last.
	fitPts := pts
	if len(fitPts) > cfg.TrendPoints {
		fitPts = fitPts[len(fitPts)-cfg.TrendPoints:]
	}
	limit := pts[len(pts)-1].Limit
	if limit <= 0 {
		limit = cfg.Limit
	}
	var trend *runTrend
	if tr, ok := history.Fit(fitPts, limit); ok {
		rt := runTrend{Store: path, Bytes: tr.Last.Bytes, LimitBytes: limit, Points: tr.Points, GrowthBytesPerDay: tr.BytesPerDay}
		if tr.Growing() {
			d := tr.DaysToFull
			at := tr.FullAt.Format(time.RFC3339)
			rt.FullInDays, rt.FullAt = &d, &at
			rt.WithinHorizon = !tr.FullAt.After(horizonEnd(tr.Last.At, cfg.TrendHorizon))
		}
		trend = &rt
	}

	switch {
	case opts.Format == report.FormatJSON:
		rep := historyReport{Path: path, Store: isStore, Points: make([]historyPoint, len(pts)), Trend: trend}
		for i, p := range pts {
			rep.Points[i] = historyPoint{At: p.At.Format(time.RFC3339), Bytes: p.Bytes, Messages: p.Messages}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case g.stdoutTTY:
		return writeHistoryTable(stdout, path, isStore, pts, trend)
	default:
		for _, p := range pts {
			if _, err := fmt.Fprintf(stdout, "%s\t%d\t%d\n", p.At.Format(time.RFC3339), p.Bytes, p.Messages); err != nil {
				return err
			}
		}
		return nil
	}
}

// writeHistoryTable writes the series for people: a sparkline of the
// whole series, then a row per run with a bar scaled to the largest size,
// then the trend.
func writeHistoryTable(w io.Writer, path string, isStore bool, pts []history.Point, trend *runTrend) error {
	what := "mailbox"
	if isStore {
		what = "store"
	}
	var maxB int64
	for _, p := range pts {
		maxB = max(maxB, p.Bytes)
	}
	fmt.Fprintf(w, "%s (%s), %d runs  %s\n\n", report.Printable(path), what, len(pts), sparkline(pts, maxB))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATE\tSIZE\tMESSAGES\t")
	for _, p := range pts {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", p.At.Local().Format("2006-01-02 15:04"), humanize.IBytes(uint64(p.Bytes)), p.Messages, bar(p.Bytes, maxB, 30))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if trend == nil {
		_, err := fmt.Fprintln(w, "\ntrend: not enough runs yet")
		return err
	}
	growth := humanize.IBytes(uint64(max(trend.GrowthBytesPerDay, -trend.GrowthBytesPerDay)))
	if trend.GrowthBytesPerDay < 0 {
		growth = "-" + growth
	}
	line := fmt.Sprintf("\ntrend over %d runs: %s a day", trend.Points, growth)
	if trend.FullInDays != nil {
		at, _ := time.Parse(time.RFC3339, *trend.FullAt)
		line += fmt.Sprintf(", full in %s (%s) at %s", report.InDays(*trend.FullInDays), at.Local().Format(time.DateOnly), humanize.IBytes(uint64(trend.LimitBytes)))
		if trend.WithinHorizon {
			line += "  WARNING: within the trend horizon"
		}
	} else {
		line += ", not growing"
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

var sparks = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the series in one line of eighth-blocks.
func sparkline(pts []history.Point, maxB int64) string {
	var b strings.Builder
	for _, p := range pts {
		i := 0
		if maxB > 0 {
			i = int(float64(p.Bytes) / float64(maxB) * float64(len(sparks)-1))
		}
		b.WriteRune(sparks[max(0, min(i, len(sparks)-1))])
	}
	return b.String()
}

var eighths = []rune(" ▏▎▍▌▋▊▉")

// bar draws v/maxV of width cells with eighth-block precision.
func bar(v, maxV int64, width int) string {
	if maxV <= 0 || v <= 0 {
		return ""
	}
	n := int(float64(v) / float64(maxV) * float64(width*8))
	s := strings.Repeat("█", n/8)
	if r := n % 8; r > 0 {
		s += string(eighths[r])
	}
	return s
}
