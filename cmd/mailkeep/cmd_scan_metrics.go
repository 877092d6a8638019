package main

import (
	"fmt"
	"io"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/report"
)

// writeScanMetrics writes scan's Prometheus metrics: to stdout with
// --format prometheus, and to the --textfile, atomically. A scan that
// failed for some root is not a success: the textfile then carries the
// last success over from the file it replaces, so that an alert on its
// age keeps counting.
func writeScanMetrics(opts ScanOptions, g globalOptions, res *mboxscan.Result, scanErr error, took time.Duration, stdout io.Writer) error {
	if opts.Format != report.FormatPrometheus && opts.Textfile == "" {
		return nil
	}
	m := report.MetricsOptions{Duration: took, Success: scanErr == nil}
	if m.Success {
		m.LastSuccess = g.clock()
	} else if opts.Textfile != "" {
		// A textfile that cannot be read has no last success to carry.
		m.LastSuccess, _ = report.ReadLastSuccess(opts.Textfile)
	}
	if opts.Format == report.FormatPrometheus {
		if err := report.WriteMetrics(stdout, res, m); err != nil {
			return fmt.Errorf("write metrics: %w", err)
		}
	}
	if opts.Textfile != "" {
		err := report.WriteTextfile(opts.Textfile, func(w io.Writer) error { return report.WriteMetrics(w, res, m) })
		if err != nil {
			return err
		}
	}
	return nil
}
