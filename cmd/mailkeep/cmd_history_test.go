package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/retention/history"
)

func TestHistoryTable(t *testing.T) {
	var pts []history.Point
	for n := range 8 {
		pts = append(pts, history.Point{At: time.Date(2025, 3, 1+n, 3, 0, 0, 0, time.UTC), Bytes: int64(1 << 20 * (n + 1)), Messages: 10 * n})
	}
	days, at := 40.5, "2025-04-17T15:00:00Z"
	trend := &runTrend{Store: "/var/mail/carol", Points: 8, GrowthBytesPerDay: 1 << 20, LimitBytes: 48 << 20, FullInDays: &days, FullAt: &at, WithinHorizon: true}
	var b bytes.Buffer
	if err := writeHistoryTable(&b, "/var/mail/carol", true, pts, trend); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"/var/mail/carol (store), 8 runs  ▁▂▃▄▅▆▇█",
		"DATE", "SIZE", "MESSAGES",
		"1.0 MiB", "8.0 MiB",
		strings.Repeat("█", 30) + "\n", // the largest run: a full bar
		"trend over 8 runs: 1.0 MiB a day, full in 40 days",
		"WARNING: within the trend horizon",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The first run's bar is an eighth of the last one's: 3¾ cells.
	if !strings.Contains(out, "███▊\n") {
		t.Errorf("the first bar is not 3¾ cells")
	}

	b.Reset()
	if err := writeHistoryTable(&b, "/var/mail/x", false, pts[:1], nil); err != nil || !strings.Contains(b.String(), "not enough runs yet") {
		t.Errorf("no trend: %v %q", err, b.String())
	}
}

func TestSparkAndBar(t *testing.T) {
	if got := bar(0, 10, 30); got != "" {
		t.Errorf("bar(0) = %q", got)
	}
	if got := bar(5, 10, 4); got != "██" {
		t.Errorf("bar(5/10, 4) = %q", got)
	}
	if got := bar(1, 16, 2); got != "▏" {
		t.Errorf("bar(1/16, 2) = %q", got)
	}
	if got := sparkline([]history.Point{{Bytes: 0}, {Bytes: 7}}, 7); got != "▁█" {
		t.Errorf("sparkline = %q", got)
	}
}
