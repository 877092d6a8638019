package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/retention/history"
)

// trendNow is the clock of the trend tests.
var trendNow = time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)

// seedHistory records, as nightly runs would have, one sample per night
// for each store: bytes[store][i] on night i of len(bytes[store]), the
// last one the night before trendNow.
func seedHistory(t *testing.T, stateDir string, limit int64, series map[string][]int64) string {
	t.Helper()
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(stateDir, historyFile)
	ctx := context.Background()
	db, err := history.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	nights := 0
	for _, b := range series {
		nights = max(nights, len(b))
	}
	for i := range nights {
		at := trendNow.AddDate(0, 0, i-nights)
		var samples []history.Sample
		for store, b := range series {
			if i < len(b) {
				samples = append(samples, history.Sample{Path: store, Store: store, Bytes: b[i], Messages: 1, Limit: limit})
			}
		}
		if err := db.Record(ctx, at, samples); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// runInProcess runs mailkeep's main with the real scanner and a fixed
// clock.
func runInProcess(t *testing.T, tty bool, args ...string) result {
	t.Helper()
	g := &globalOptions{stdoutTTY: tty, now: func() time.Time { return trendNow }}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), g, args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

type trendBox struct {
	Path       string   `json:"path"`
	Level      string   `json:"level"`
	Problems   []string `json:"problems"`
	Growth     *float64 `json:"growth_bytes_per_day"`
	FullInDays *float64 `json:"full_in_days"`
	FullAt     *string  `json:"full_at"`
}

func scanJSON(t *testing.T, r result) map[string]trendBox {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var doc struct {
		Mailboxes []trendBox `json:"mailboxes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("bad JSON (%v):\n%s", err, r.stdout)
	}
	out := map[string]trendBox{}
	for _, m := range doc.Mailboxes {
		out[filepath.Base(m.Path)] = m
	}
	return out
}

// TestScanTrends: with a history, scan shows when each store will be full
// and warns early within the horizon; without one, nothing changes and
// nothing is created.
func TestScanTrends(t *testing.T) {
	dir := t.TempDir()
	mail := filepath.Join(dir, "mail")
	msg := mboxMessage(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "m@x", 0)
	for _, u := range []string{"grow", "flat", "new"} {
		writeFile(t, filepath.Join(mail, u), msg)
	}
	// grow: 100,000 bytes ten nights ago, 10,000 more each night: 190,000
	// last night. Against a 400,000-byte limit: full 21 days after last
	// night, in 20 days from now. flat: not growing. new: no history.
	var grow, flat []int64
	for i := range 10 {
		grow = append(grow, 100_000+10_000*int64(i))
		flat = append(flat, 50_000)
	}
	state := filepath.Join(dir, "state")
	db := seedHistory(t, state, 400_000, map[string][]int64{
		filepath.Join(mail, "grow"): grow, filepath.Join(mail, "flat"): flat,
	})
	before, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	stateFiles := func() []string {
		names, _ := filepath.Glob(filepath.Join(state, "*"))
		return names
	}
	files := stateFiles()

	boxes := scanJSON(t, runInProcess(t, false, "scan", "--format", "json", "--limit", "400000", "--state-dir", state, mail))
	g := boxes["grow"]
	if g.FullInDays == nil || *g.FullInDays != 20 || g.Growth == nil || *g.Growth != 10_000 ||
		g.FullAt == nil || *g.FullAt != trendNow.AddDate(0, 0, 20).Local().Format(time.RFC3339) {
		t.Errorf("grow: %+v", g)
	}
	// Used 0.05%, but full within the default 30-day horizon: warn.
	if g.Level != "warn" || len(g.Problems) != 1 || g.Problems[0] != "projected full in 20 days (growth 9.8 KiB/day)" {
		t.Errorf("grow: level %s, problems %q", g.Level, g.Problems)
	}
	if f := boxes["flat"]; f.FullInDays != nil || f.Growth == nil || *f.Growth != 0 || f.Level != "ok" || len(f.Problems) != 0 {
		t.Errorf("flat: %+v", f)
	}
	if n := boxes["new"]; n.FullInDays != nil || n.Growth != nil || n.Level != "ok" {
		t.Errorf("new: %+v", n)
	}

	// The table on a terminal: a FULL IN column.
	r := runInProcess(t, true, "scan", "--limit", "400000", "--state-dir", state, mail)
	lines := strings.Split(r.stdout, "\n")
	if r.code != 0 || !strings.HasPrefix(lines[0], "LEVEL  USED%  FULL IN  SIZE ") {
		t.Fatalf("exit %d, table:\n%s", r.code, r.stdout)
	}
	for _, want := range []string{"WARN   0.0%   20d      113 B ", "ok     0.0%   -        113 B "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "problem: "+filepath.Join(mail, "grow")+": projected full in 20 days (growth 9.8 KiB/day)") ||
		!strings.Contains(r.stdout, "(0 crit, 1 warn)") {
		t.Errorf("table:\n%s", r.stdout)
	}
	// Piped: the rows keep their columns; the warning goes to stderr.
	r = runInProcess(t, false, "scan", "--limit", "400000", "--state-dir", state, mail)
	if !strings.Contains(r.stdout, "\nwarn\t0.0\t113\t1\t2025-01-01\t2025-01-01\t113\t0\t0\t") ||
		!strings.Contains(r.stderr, "mailkeep: warning: "+filepath.Join(mail, "grow")+": projected full in 20 days") {
		t.Errorf("piped:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}

	// A shorter horizon, by flag or from the configuration (with its
	// state_dir): the trend is shown, the level stays.
	cfg := filepath.Join(dir, "mailkeep.toml")
	writeFile(t, cfg, "state_dir = \""+state+"\"\ntrend_horizon = \"14d\"\n")
	for _, args := range [][]string{
		{"scan", "--format", "json", "--limit", "400000", "--state-dir", state, "--horizon", "14d", mail},
		{"--config", cfg, "scan", "--format", "json", "--limit", "400000", mail},
	} {
		g := scanJSON(t, runInProcess(t, false, args...))["grow"]
		if g.FullInDays == nil || *g.FullInDays != 20 || g.Level != "ok" || len(g.Problems) != 0 {
			t.Errorf("%q: %+v", args, g)
		}
	}

	// The history was only read: not a byte, not a journal.
	after, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) || len(stateFiles()) != len(files) {
		t.Errorf("scan changed the state directory: %v → %v, files %q → %q", before, after, files, stateFiles())
	}

	// Without a history: no trend, no early warning, no FULL IN column,
	// and no state directory or database created.
	for _, st := range []string{filepath.Join(dir, "absent"), t.TempDir()} {
		boxes := scanJSON(t, runInProcess(t, false, "scan", "--format", "json", "--limit", "400000", "--state-dir", st, mail))
		for name, m := range boxes {
			if m.Growth != nil || m.FullInDays != nil || m.FullAt != nil || m.Level != "ok" || len(m.Problems) != 0 {
				t.Errorf("%s without a history: %+v", name, m)
			}
		}
		if r := runInProcess(t, true, "scan", "--state-dir", st, mail); strings.Contains(r.stdout, "FULL IN") {
			t.Errorf("FULL IN without a history:\n%s", r.stdout)
		}
		if _, err := os.Stat(filepath.Join(st, historyFile)); err == nil {
			t.Errorf("scan created %s", filepath.Join(st, historyFile))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "absent")); err == nil {
		t.Error("scan created the state directory")
	}
	// A file that is not a history database: silently no trends.
	junk := t.TempDir()
	writeFile(t, filepath.Join(junk, historyFile), "not a database")
	r = runInProcess(t, false, "scan", "--format", "json", "--state-dir", junk, mail)
	if boxes := scanJSON(t, r); boxes["grow"].Growth != nil || r.stderr != "" {
		t.Errorf("junk history: %+v, stderr %q", boxes["grow"], r.stderr)
	}
	if got := readFile(t, filepath.Join(junk, historyFile)); got != "not a database" {
		t.Errorf("the junk history was changed: %q", got)
	}
}

// TestNotifyTrends: notify reads the same history and each store in a
// notice says when it will be full.
func TestNotifyTrends(t *testing.T) {
	dir := t.TempDir()
	mail := filepath.Join(dir, "mail")
	box := filepath.Join(mail, "grow")
	writeFile(t, box, mboxMessage(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "m@x", 0))
	var grow []int64
	for i := range 10 {
		grow = append(grow, 100_000+10_000*int64(i))
	}
	state := filepath.Join(dir, "state")
	seedHistory(t, state, 400_000, map[string][]int64{box: grow})
	r := runInProcess(t, false, "notify", "--dry-run", "--all", "--to", "{{.User}}@example.org", "--limit", "400000",
		"--state-dir", state, mail)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "Growing by about 9.8 KiB a day, it will be full in 20 days") ||
		!strings.Contains(r.stdout, "("+trendNow.AddDate(0, 0, 20).Local().Format(time.DateOnly)+") at this rate.") {
		t.Errorf("the notice does not tell the trend:\n%s", r.stdout)
	}
	// Without a history it says nothing of it.
	r = runInProcess(t, false, "notify", "--dry-run", "--all", "--to", "{{.User}}@example.org", "--limit", "400000",
		"--state-dir", filepath.Join(dir, "absent"), mail)
	if r.code != 0 || strings.Contains(r.stdout, "Growing") {
		t.Errorf("exit %d, notice without a history:\n%s", r.code, r.stdout)
	}
}

// TestCheckTrends: check reads the same history, so a store that its
// growth will fill within the horizon is a WARNING, named in the line.
func TestCheckTrends(t *testing.T) {
	dir := t.TempDir()
	mail := filepath.Join(dir, "mail")
	msg := mboxMessage(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "m@x", 0)
	for _, u := range []string{"grow", "flat"} {
		writeFile(t, filepath.Join(mail, u), msg)
	}
	var grow, flat []int64
	for i := range 10 {
		grow = append(grow, 100_000+10_000*int64(i)) // full in 20 days
		flat = append(flat, 50_000)
	}
	state := filepath.Join(dir, "state")
	seedHistory(t, state, 400_000, map[string][]int64{
		filepath.Join(mail, "grow"): grow, filepath.Join(mail, "flat"): flat,
	})

	r := runInProcess(t, false, "check", "--limit", "400000", "--state-dir", state, mail)
	if r.code != 1 || !strings.HasPrefix(r.stdout, "MAILKEEP WARNING - 1 warn of 2 mailboxes; ") ||
		!strings.Contains(r.stdout, "; projected full: "+filepath.Join(mail, "grow")+" in 20 days |") {
		t.Errorf("with a growing store: exit %d, %q", r.code, r.stdout)
	}
	// A horizon shorter than 20 days: nothing to warn about.
	r = runInProcess(t, false, "check", "--limit", "400000", "--state-dir", state, "--horizon", "14d", mail)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "MAILKEEP OK - 2 mailboxes below 80%") || strings.Contains(r.stdout, "projected") {
		t.Errorf("--horizon 14d: exit %d, %q", r.code, r.stdout)
	}
	// No history: no trends, and none is created.
	empty := filepath.Join(dir, "empty")
	r = runInProcess(t, false, "check", "--limit", "400000", "--state-dir", empty, mail)
	if r.code != 0 || strings.Contains(r.stdout, "projected") {
		t.Errorf("without a history: exit %d, %q", r.code, r.stdout)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("check created %s", empty)
	}
}
