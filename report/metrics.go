package report

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// MetricsOptions carry what a scan result does not: how long the scan took
// and when one last succeeded.
type MetricsOptions struct {
	Duration time.Duration
	// LastSuccess is the end of the last scan that succeeded (this one,
	// or, after a failure, the one before: see [ReadLastSuccess]); zero
	// leaves the metric out.
	LastSuccess time.Time
	// Success says whether this scan succeeded (every root scanned).
	Success bool
	// Labels are constant labels added to every series written, such as
	// the shard of a nightly run ("shard": "0/4"), so that the hosts of a
	// fleet can be told apart and summed. A name must be a valid label
	// name other than path, owner, format and store; values that are not
	// valid UTF-8 are written Go-quoted.
	Labels map[string]string
}

// metricLabels label every per-mailbox metric.
var metricLabels = []string{"path", "owner", "format", "store"}

// Metric names, as the Prometheus naming guide wants them: the unit in the
// name, times as _timestamp_seconds.
const (
	MetricLastSuccess = "mailkeep_last_success_timestamp_seconds"
)

// WriteMetrics writes res in the Prometheus text exposition format (the
// format of node_exporter's textfile collector), built with the Prometheus
// client library's registry and encoder. One series per mailbox and
// metric, labelled path, owner, format and store:
//
//	mailkeep_mailbox_size_bytes                          the mailbox's size
//	mailkeep_mailbox_store_bytes                         its store's size (what the limit applies to)
//	mailkeep_mailbox_limit_bytes                         its store's limit
//	mailkeep_mailbox_used_ratio                          store bytes / limit
//	mailkeep_mailbox_level                               0 ok, 1 warn, 2 crit
//	mailkeep_mailbox_messages                            messages (no pseudo-message)
//	mailkeep_mailbox_undated_messages                    messages without a received date
//	mailkeep_mailbox_large_messages                      messages over --large
//	mailkeep_mailbox_largest_message_bytes               the largest message
//	mailkeep_mailbox_bounces                             delivery status notifications
//	mailkeep_mailbox_problems                            problems found reading it
//	mailkeep_mailbox_oldest_message_timestamp_seconds    (only when known)
//	mailkeep_mailbox_newest_message_timestamp_seconds    (only when known)
//
// and, without labels: mailkeep_mailboxes, mailkeep_skipped_files,
// mailkeep_scan_success (1 or 0), mailkeep_scan_duration_seconds and
// mailkeep_last_success_timestamp_seconds (when opts.LastSuccess is set).
// Label values that are not valid UTF-8 are written Go-quoted. Every
// series also carries opts.Labels; a label name there that is invalid or
// one of the above is an error, and nothing is written.
func WriteMetrics(w io.Writer, res *mboxscan.Result, opts MetricsOptions) error {
	constLabels, err := checkConstLabels(opts.Labels)
	if err != nil {
		return err
	}
	reg := prometheus.NewPedanticRegistry()
	vec := func(name, help string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: constLabels}, metricLabels)
		reg.MustRegister(g)
		return g
	}
	gauge := func(name, help string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: constLabels})
		g.Set(v)
		reg.MustRegister(g)
	}
	var (
		size     = vec("mailkeep_mailbox_size_bytes", "Size of the mailbox: the mbox file, or the sum of the Maildir folder's message files.")
		store    = vec("mailkeep_mailbox_store_bytes", "Size of the mailbox's store (the mbox file, or the whole Maildir), which the limit applies to.")
		limit    = vec("mailkeep_mailbox_limit_bytes", "Limit of the mailbox's store: the Maildir++ quota, else --limit.")
		ratio    = vec("mailkeep_mailbox_used_ratio", "Store size divided by its limit.")
		level    = vec("mailkeep_mailbox_level", "Level of the store: 0 ok, 1 warn, 2 crit.")
		messages = vec("mailkeep_mailbox_messages", "Messages in the mailbox.")
		undated  = vec("mailkeep_mailbox_undated_messages", "Messages without a usable received date.")
		large    = vec("mailkeep_mailbox_large_messages", "Messages bigger than --large.")
		largest  = vec("mailkeep_mailbox_largest_message_bytes", "Size of the largest message.")
		bounces  = vec("mailkeep_mailbox_bounces", "Delivery status notifications in the mailbox.")
		problems = vec("mailkeep_mailbox_problems", "Problems found while reading the mailbox.")
		oldest   = vec("mailkeep_mailbox_oldest_message_timestamp_seconds", "Received date of the oldest message.")
		newest   = vec("mailkeep_mailbox_newest_message_timestamp_seconds", "Received date of the newest message.")
	)
	levels := map[mboxscan.Level]float64{mboxscan.LevelOK: 0, mboxscan.LevelWarn: 1, mboxscan.LevelCrit: 2}
	for i := range res.Mailboxes {
		m := &res.Mailboxes[i]
		l := prometheus.Labels{
			"path": labelValue(m.Path), "owner": labelValue(m.Owner),
			"format": string(m.Format), "store": labelValue(storeKey(m)),
		}
		size.With(l).Set(float64(m.Bytes))
		store.With(l).Set(float64(storeBytes(m)))
		limit.With(l).Set(float64(m.LimitBytes))
		ratio.With(l).Set(m.UsedRatio)
		level.With(l).Set(levels[m.Level])
		messages.With(l).Set(float64(m.Messages))
		undated.With(l).Set(float64(m.Undated))
		large.With(l).Set(float64(m.LargeMessages))
		largest.With(l).Set(float64(m.LargestBytes))
		bounces.With(l).Set(float64(m.Bounces))
		problems.With(l).Set(float64(len(m.Problems)))
		if !m.Oldest.IsZero() {
			oldest.With(l).Set(unixSeconds(m.Oldest))
		}
		if !m.Newest.IsZero() {
			newest.With(l).Set(unixSeconds(m.Newest))
		}
	}
	gauge("mailkeep_mailboxes", "Mailboxes scanned.", float64(len(res.Mailboxes)))
	gauge("mailkeep_skipped_files", "Files under the scan roots that are not mailboxes or could not be read.", float64(len(res.Skipped)))
	success := 0.0
	if opts.Success {
		success = 1
	}
	gauge("mailkeep_scan_success", "Whether the scan read every root (1) or not (0).", success)
	gauge("mailkeep_scan_duration_seconds", "How long the scan took.", opts.Duration.Seconds())
	if !opts.LastSuccess.IsZero() {
		gauge(MetricLastSuccess, "When the last successful scan ended.", unixSeconds(opts.LastSuccess))
	}

	fams, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("gather metrics: %w", err)
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			return fmt.Errorf("write metrics: %w", err)
		}
	}
	return nil
}

// checkConstLabels checks the names of MetricsOptions.Labels and makes
// their values valid UTF-8.
func checkConstLabels(labels map[string]string) (prometheus.Labels, error) {
	if len(labels) == 0 {
		return nil, nil
	}
	out := make(prometheus.Labels, len(labels))
	for name, v := range labels {
		if !model.LabelName(name).IsValidLegacy() || strings.HasPrefix(name, "__") {
			return nil, fmt.Errorf("write metrics: invalid label name %q", name)
		}
		if slices.Contains(metricLabels, name) {
			return nil, fmt.Errorf("write metrics: label %q is already a per-mailbox label", name)
		}
		out[name] = labelValue(v)
	}
	return out, nil
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// labelValue keeps label values valid UTF-8, which the exposition format
// requires; other strings are Go-quoted, so two paths stay two series.
func labelValue(s string) string {
	if model.LabelValue(s).IsValid() {
		return s
	}
	return printable(s)
}

// WriteTextfile writes a metrics file for node_exporter's textfile
// collector atomically: write calls fill a temporary file in the same
// directory (whose name does not end in .prom, so the collector never
// reads it half-written), which is synced, made world-readable and renamed
// over path. On error the temporary file is removed and path is left as
// it was.
func WriteTextfile(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-")
	if err != nil {
		return fmt.Errorf("write textfile: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("write textfile %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write textfile %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write textfile %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write textfile %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write textfile: %w", err)
	}
	return nil
}

// ReadLastSuccess returns the mailkeep_last_success_timestamp_seconds in
// the metrics file at path: a failed scan carries the last success over,
// so that an alert on its age keeps counting. A missing file or metric is
// the zero time and no error.
func ReadLastSuccess(path string) (time.Time, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read last success: %w", err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(f)
	if err != nil {
		return time.Time{}, fmt.Errorf("read last success from %s: %w", path, err)
	}
	fam := fams[MetricLastSuccess]
	if fam == nil || len(fam.GetMetric()) == 0 {
		return time.Time{}, nil
	}
	var v float64
	if g := fam.GetMetric()[0].GetGauge(); g != nil {
		v = g.GetValue()
	} else if u := fam.GetMetric()[0].GetUntyped(); u != nil {
		v = u.GetValue()
	}
	if v <= 0 {
		return time.Time{}, nil
	}
	// A float64 holds the seconds to about a microsecond.
	return time.UnixMicro(int64(math.Round(v * 1e6))), nil
}
