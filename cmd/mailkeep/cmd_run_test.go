package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runDoc is run's JSON summary.
type runDoc struct {
	Scanned         int     `json:"scanned"`
	Removed         int     `json:"removed"`
	Archived        int     `json:"archived"`
	Notified        int     `json:"notified"`
	Failed          int     `json:"failed"`
	DryRun          bool    `json:"dry_run"`
	DurationSeconds float64 `json:"duration_seconds"`
	Shard           string  `json:"shard"`
	Trends          []struct {
		Store             string   `json:"store"`
		Bytes             int64    `json:"bytes"`
		LimitBytes        int64    `json:"limit_bytes"`
		Points            int      `json:"points"`
		GrowthBytesPerDay float64  `json:"growth_bytes_per_day"`
		FullInDays        *float64 `json:"full_in_days"`
		WithinHorizon     bool     `json:"within_horizon"`
	} `json:"trends"`
}

// mailkeepEnv runs the binary with extra environment variables.
func mailkeepEnv(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
		if code < 0 {
			code = -1 // killed by a signal
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, stdout.String(), stderr.String()}
}

func decodeRun(t *testing.T, r result) runDoc {
	t.Helper()
	var doc runDoc
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("bad JSON (%v):\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return doc
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mboxMessage is one message received at d, padded so that it is exactly
// size bytes long when size > 0.
func mboxMessage(d time.Time, id string, size int) string {
	head := "From a@example.org " + d.UTC().Format("Mon Jan _2 15:04:05 2006") + "\n" +
		"From: a@example.org\nSubject: " + id + "\nMessage-ID: <" + id + ">\nStatus: RO\n\n"
	body := "body\n\n"
	if pad := size - len(head) - len(body); pad > 0 {
		body = strings.Repeat("x", pad-1) + "\n" + body
	}
	return head + body
}

// maildirMessage puts a seen message saved and received at d in the
// folder dir (cur/), named as a delivery agent names it.
func maildirMessage(t *testing.T, dir string, d time.Time, id string) string {
	t.Helper()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	data := "From: a@example.org\nSubject: " + id + "\nMessage-ID: <" + id + ">\n\nbody\n"
	p := filepath.Join(dir, "cur", fmt.Sprintf("%d.M1P%d.host,S=%d:2,S", d.Unix(), len(id), len(data)))
	writeFile(t, p, data)
	if err := os.Chtimes(p, d, d); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeSendmail writes a sendmail-compatible script that stores each
// message, with its arguments, in outbox.
func fakeSendmail(t *testing.T, dir, outbox string) string {
	t.Helper()
	if err := os.MkdirAll(outbox, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "sendmail")
	script := "#!/bin/sh\nf=" + outbox + "/$(date +%s%N).$$\necho \"$@\" > \"$f.args\"\ncat > \"$f.eml\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// outbox returns the messages the fake sendmail received, oldest first.
func outbox(t *testing.T, dir string) []string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	var msgs []string
	for _, n := range names {
		msgs = append(msgs, readFile(t, n))
	}
	return msgs
}

func TestRunConfigErrors(t *testing.T) {
	dir := t.TempDir()
	mbox := filepath.Join(dir, "mail", "alice")
	old := mboxMessage(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), "old@x", 0)
	writeFile(t, mbox, old)
	state := filepath.Join(dir, "state")
	for _, tc := range []struct {
		name, cfg, want string
	}{
		{"unknown key", "roots = [\"" + dir + "/mail\"]\nstate_dir = \"" + state + "\"\n\n[[policy]]\nfolders = [\"*\"]\nolder_than = \"1d\"\nactoin = \"delete\"\n",
			":7: key policy.actoin: unknown key"},
		{"bad value", "roots = [\"" + dir + "/mail\"]\nstate_dir = \"" + state + "\"\nlimit = \"lots\"\n",
			":3: key limit: \"lots\" is not a size"},
		{"syntax", "roots = [\"" + dir + "/mail\"\nstate_dir = \"x\"\n", ".toml:"},
		{"bad notice template", "roots = [\"" + dir + "/mail\"]\n[notify]\nenabled = true\nto = \"{{.User}}@x\"\nlang = \"xx\"\n", "key notify.template"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(dir, "bad.toml")
			writeFile(t, cfg, tc.cfg)
			r := mailkeep(t, "run", "--config", cfg, "--format", "json")
			if r.code != 2 || !strings.Contains(r.stderr, "mailkeep: error: config "+cfg) || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout should be empty: %q", r.stdout)
			}
			if got := readFile(t, mbox); got != old {
				t.Error("the mailbox changed on a bad configuration")
			}
			if _, err := os.Stat(state); err == nil {
				t.Error("the state directory was created on a bad configuration")
			}
		})
	}
	r := mailkeep(t, "run", "--config", filepath.Join(dir, "missing.toml"))
	if r.code != 2 || !strings.Contains(r.stderr, "missing.toml") {
		t.Errorf("missing --config: exit %d, %q", r.code, r.stderr)
	}
	r = mailkeep(t, "run", "--config", filepath.Join(dir, "bad.toml"), "--shard", "3/3")
	if r.code != 2 || !strings.Contains(r.stderr, "bad shard") {
		t.Errorf("bad --shard: exit %d, %q", r.code, r.stderr)
	}
}

// TestRunFlagsOverride: --state-dir, --limit and PATH arguments override
// the file.
func TestRunFlagsOverride(t *testing.T) {
	dir := t.TempDir()
	fileState, flagState := filepath.Join(dir, "file-state"), filepath.Join(dir, "flag-state")
	writeFile(t, filepath.Join(dir, "a", "alice"), mboxMessage(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "a@x", 0))
	writeFile(t, filepath.Join(dir, "b", "bob"), mboxMessage(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "b@x", 0))
	cfg := filepath.Join(dir, "c.toml")
	writeFile(t, cfg, "roots = [\""+dir+"/a\"]\nstate_dir = \""+fileState+"\"\nlimit = \"1MiB\"\n")
	for n := range 2 {
		now := time.Date(2025, 2, 1+n, 3, 0, 0, 0, time.UTC).Format(time.RFC3339)
		r := mailkeep(t, "run", "--config", cfg, "--state-dir", flagState, "--limit", "3MiB", "--now", now, "--format", "json",
			filepath.Join(dir, "b"))
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		doc := decodeRun(t, r)
		if doc.Scanned != 1 {
			t.Fatalf("scanned %d, want only the PATH given", doc.Scanned)
		}
		if n == 1 && (len(doc.Trends) != 1 || doc.Trends[0].LimitBytes != 3<<20 || !strings.HasSuffix(doc.Trends[0].Store, "/b/bob")) {
			t.Errorf("trends %+v: want bob's store with the --limit", doc.Trends)
		}
	}
	if _, err := os.Stat(filepath.Join(flagState, "history.db")); err != nil {
		t.Errorf("--state-dir not used: %v", err)
	}
	if _, err := os.Stat(fileState); err == nil {
		t.Error("the file's state_dir was used despite --state-dir")
	}
}

// TestRunNights runs the nightly job over a generated store with a fixed
// clock across simulated nights: notice first, removal only after the
// notice period, a dry run that changes nothing, a trend from a known
// linear growth, and history pruning.
func TestRunNights(t *testing.T) {
	dir := t.TempDir()
	vmail := filepath.Join(dir, "vmail", "example.org")
	night0 := time.Date(2025, 3, 1, 3, 0, 0, 0, time.UTC)
	night := func(n int) time.Time { return night0.AddDate(0, 0, n) }
	ago := func(days int) time.Time { return night0.AddDate(0, 0, -days) }

	// alice: a Maildir whose .Trash holds messages 60, 25 and 20 days old,
	// and an INBOX with a 3-year-old message (a report-only policy).
	aliceMD := filepath.Join(vmail, "alice", "Maildir")
	maildirMessage(t, aliceMD, ago(1), "a-inbox-new@x")
	maildirMessage(t, aliceMD, ago(3*365+10), "a-inbox-ancient@x")
	trash := filepath.Join(aliceMD, ".Trash")
	a60 := maildirMessage(t, trash, ago(60), "a60@x")
	a25 := maildirMessage(t, trash, ago(25), "a25@x")
	a20 := maildirMessage(t, trash, ago(20), "a20@x")
	// bob: an mbox called Trash, with the same ages.
	bobTrash := filepath.Join(vmail, "bob", "Trash")
	writeFile(t, bobTrash, mboxMessage(ago(60), "b60@x", 0)+mboxMessage(ago(25), "b25@x", 0)+mboxMessage(ago(20), "b20@x", 0)+mboxMessage(ago(2), "b2@x", 0))
	// carol: an INBOX that grows by exactly 10,000 bytes a day.
	carol := filepath.Join(vmail, "carol", "INBOX")
	writeFile(t, carol, mboxMessage(ago(1), "c0@x", 100_000))
	carolDay := 0
	grow := func(n int) {
		if n > carolDay {
			f, err := os.OpenFile(carol, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(mboxMessage(night(n).Add(-time.Hour), fmt.Sprintf("c%d@x", n), 10_000*(n-carolDay)))
			f.Close()
			carolDay = n
		}
	}

	state := filepath.Join(dir, "state")
	out := filepath.Join(dir, "outbox")
	sendmail := fakeSendmail(t, dir, out)
	metrics := filepath.Join(dir, "mailkeep.prom")
	cfg := filepath.Join(dir, "mailkeep.toml")
	writeFile(t, cfg, `roots = ["`+filepath.Join(dir, "vmail")+`"]
path_pattern = "`+filepath.Join(dir, "vmail")+`/{domain}/{user}"
limit = "1MB"
state_dir = "`+state+`"
metrics_textfile = "`+metrics+`"
history_keep = "10d"
trend_horizon = "80d"

[lock]
timeout = "10s"

[notify]
enabled = true
sendmail = "`+sendmail+`"
to = "{{.User}}@{{.Domain}}"
from = "postmaster@example.org"
rate = "1000/s"
notice = "7d"

[[policy]]
folders = ["Trash"]
older_than = "30d"
date = "saved"
action = "delete"

[[policy]]
folders = ["*"]
older_than = "2y"
action = "report"
`)
	run := func(n int, extra ...string) runDoc {
		t.Helper()
		grow(n)
		args := append([]string{"run", "--config", cfg, "--format", "json", "--now", night(n).Format(time.RFC3339)}, extra...)
		r := mailkeep(t, args...)
		if r.code != 0 {
			t.Fatalf("night %d: exit %d\n%s", n, r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "mailkeep: run") || !strings.Contains(r.stderr, " scanned, ") {
			t.Errorf("night %d: no summary line on stderr: %q", n, r.stderr)
		}
		return decodeRun(t, r)
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	// Night 0: alice and bob are told; nothing is removed.
	doc := run(0)
	if doc.Scanned != 4 || doc.Removed != 0 || doc.Notified != 2 || doc.Failed != 0 {
		t.Fatalf("night 0: %+v", doc)
	}
	msgs := outbox(t, out)
	if len(msgs) != 2 {
		t.Fatalf("night 0: %d messages sent, want 2", len(msgs))
	}
	for _, who := range []string{"alice@example.org", "bob@example.org"} {
		if !strings.Contains(strings.Join(msgs, "\n"), "To: <"+who+">") && !strings.Contains(strings.Join(msgs, "\n"), "To: "+who) {
			t.Errorf("no notice to %s", who)
		}
	}
	// Each says when: at the end of the notice period.
	for _, m := range msgs {
		if !strings.Contains(m, "They will be removed on or after 2025-03-08.") {
			t.Errorf("night 0: the notice does not say when the mail goes:\n%s", m)
		}
	}
	if !exists(a60) || !strings.Contains(readFile(t, bobTrash), "b60@x") {
		t.Fatal("night 0 removed mail before any notice")
	}

	// Nights 1-6: the notices are pending: nothing sent, nothing removed.
	for n := 1; n <= 6; n++ {
		if doc := run(n); doc.Removed != 0 || doc.Notified != 0 || doc.Failed != 0 {
			t.Fatalf("night %d: %+v", n, doc)
		}
	}

	// Night 7, dry run first: the counts of the real run, nothing changed.
	before := readFile(t, bobTrash)
	doc = run(7, "--dry-run")
	if !doc.DryRun || doc.Removed != 4 || doc.Notified != 2 {
		t.Errorf("night 7 dry run: %+v", doc)
	}
	if readFile(t, bobTrash) != before || !exists(a60) || len(outbox(t, out)) != 2 {
		t.Fatal("the dry run changed mail or sent notices")
	}

	// Night 7: the night-0 notice has matured: the 60- and 25-day-old
	// messages go (they were announced); the 20-day-old ones are announced.
	doc = run(7)
	if doc.Removed != 4 || doc.Notified != 2 || doc.Failed != 0 {
		t.Fatalf("night 7: %+v", doc)
	}
	if exists(a60) || exists(a25) || !exists(a20) {
		t.Errorf("night 7 alice: a60 %v a25 %v a20 %v; want only a20 left", exists(a60), exists(a25), exists(a20))
	}
	if b := readFile(t, bobTrash); strings.Contains(b, "b60@x") || strings.Contains(b, "b25@x") || !strings.Contains(b, "b20@x") || !strings.Contains(b, "b2@x") {
		t.Errorf("night 7 bob's Trash:\n%s", b)
	}

	// Night 8: the night-7 notice is pending: nothing more.
	if doc := run(8); doc.Removed != 0 || doc.Notified != 0 {
		t.Errorf("night 8: %+v", doc)
	}

	// Night 14: the 20-day-old messages go; alice is reminded of her old
	// INBOX message (report only) once more; history before night 4 is gone.
	doc = run(14)
	if doc.Removed != 2 || doc.Notified != 1 || doc.Failed != 0 {
		t.Fatalf("night 14: %+v", doc)
	}
	if exists(a20) || strings.Contains(readFile(t, bobTrash), "b20@x") {
		t.Error("night 14: the 20-day-old messages are still there")
	}
	if !strings.Contains(readFile(t, bobTrash), "b2@x") {
		t.Error("a young message was removed")
	}
	var ct *struct {
		Store             string   `json:"store"`
		Bytes             int64    `json:"bytes"`
		LimitBytes        int64    `json:"limit_bytes"`
		Points            int      `json:"points"`
		GrowthBytesPerDay float64  `json:"growth_bytes_per_day"`
		FullInDays        *float64 `json:"full_in_days"`
		WithinHorizon     bool     `json:"within_horizon"`
	}
	for i := range doc.Trends {
		if doc.Trends[i].Store == carol {
			ct = &doc.Trends[i]
		}
	}
	if ct == nil {
		t.Fatalf("no trend for carol: %+v", doc.Trends)
	}
	// 100,000 + 14×10,000 = 240,000 bytes, 10,000 a day: 1,000,000 in 76 days.
	if ct.Bytes != 240_000 || ct.GrowthBytesPerDay != 10_000 || ct.FullInDays == nil || *ct.FullInDays != 76 || !ct.WithinHorizon {
		t.Errorf("carol's trend: %+v (full in %v)", *ct, ct.FullInDays)
	}
	// history_keep = 10d: nights 4-8 and 14 remain (not the dry run).
	if ct.Points != 6 {
		t.Errorf("carol's trend has %d points, want 6 after pruning the history", ct.Points)
	}

	r := mailkeep(t, "history", "--config", cfg, "--format", "json", carol)
	if r.code != 0 {
		t.Fatalf("history: exit %d: %s", r.code, r.stderr)
	}
	var h historyReport
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		t.Fatal(err)
	}
	if len(h.Points) != 6 || h.Points[0].At != night(4).Format(time.RFC3339) || h.Points[5].Bytes != 240_000 || h.Trend == nil || *h.Trend.FullInDays != 76 {
		t.Errorf("history of carol: %+v", h)
	}
	// Piped: tab-separated rows.
	r = mailkeep(t, "history", "--config", cfg, "--last", "2", carol)
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || len(lines) != 2 || !strings.HasSuffix(lines[1], "\t240000\t10") {
		t.Errorf("history piped: exit %d %q", r.code, r.stdout)
	}
	// A store sums its folders.
	r = mailkeep(t, "history", "--config", cfg, "--format", "json", aliceMD)
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil || !h.Store {
		t.Errorf("history of alice's store: %v %s", err, r.stdout)
	}
	if r := mailkeep(t, "history", "--config", cfg, filepath.Join(dir, "nobody")); r.code != 1 || !strings.Contains(r.stderr, "no history") {
		t.Errorf("history of an unknown path: exit %d %q", r.code, r.stderr)
	}

	prom := readFile(t, metrics)
	for _, want := range []string{`mailkeep_run_removed_messages{shard=""} 2`, `mailkeep_mailboxes 4`, "mailkeep_store_growth_bytes_per_day{shard=\"\",store=\"" + carol + "\"} 10000"} {
		if !strings.Contains(prom, want) {
			t.Errorf("metrics lack %q:\n%s", want, prom)
		}
	}
}

// TestRunLock: while one run holds the run lock, a second exits 75 at
// once; afterwards runs go again.
func TestRunLock(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "mail", "alice"), mboxMessage(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), "old@x", 0))
	// A sendmail that blocks until told: the first run holds the lock
	// while it sends.
	started, release := filepath.Join(dir, "started"), filepath.Join(dir, "release")
	sendmail := filepath.Join(dir, "sendmail")
	writeFile(t, sendmail, "#!/bin/sh\ntouch "+started+"\nwhile [ ! -e "+release+" ]; do sleep 0.05; done\ncat >/dev/null\n")
	os.Chmod(sendmail, 0o755)
	cfg := filepath.Join(dir, "c.toml")
	writeFile(t, cfg, `roots = ["`+dir+`/mail"]
state_dir = "`+dir+`/state"
[notify]
enabled = true
sendmail = "`+sendmail+`"
to = "{{.User}}@example.org"
from = "postmaster@example.org"
[[policy]]
folders = ["*"]
older_than = "1y"
`)
	first := exec.Command(binary, "run", "--config", cfg)
	var firstErr bytes.Buffer
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first run never reached its notice: %s", firstErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := mailkeep(t, "run", "--config", cfg, "--format", "json")
	if r.code != 75 || !strings.Contains(r.stderr, "another mailkeep run is in progress") || !strings.Contains(r.stderr, "run.lock") || r.stdout != "" {
		t.Errorf("second run: exit %d, stdout %q, stderr %q; want 75 and a clear message", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, fmt.Sprintf("pid %d", first.Process.Pid)) {
		t.Errorf("the message should name the holder's pid %d: %q", first.Process.Pid, r.stderr)
	}
	writeFile(t, release, "")
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v\n%s", err, firstErr.String())
	}
	if r := mailkeep(t, "run", "--config", cfg); r.code != 0 {
		t.Errorf("a run after the lock was released: exit %d %s", r.code, r.stderr)
	}
}

// TestRunKilled kills the run with SIGKILL in the middle of rewriting an
// mbox; a rerun then succeeds, and the mailbox is the intended result.
// With a dotlock the rerun waits out the dead run's lock (its PID is
// trusted once the lock is 5 s old); with kernel locks only, the kernel
// released them at once.
func TestRunKilled(t *testing.T) {
	for _, tc := range []struct{ point, kinds string }{
		{"mid-copy", `["dotlock", "fcntl"]`},
		{"after-rename", `["fcntl", "flock"]`},
	} {
		point := tc.point
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
			young := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			keep := mboxMessage(young, "young@x", 300_000)
			mbox := filepath.Join(dir, "mail", "alice")
			writeFile(t, mbox, mboxMessage(old, "old@x", 300_000)+keep)
			other := filepath.Join(dir, "mail", "bob")
			writeFile(t, other, mboxMessage(old, "old2@x", 0)+keep)
			cfg := filepath.Join(dir, "c.toml")
			writeFile(t, cfg, `roots = ["`+dir+`/mail"]
state_dir = "`+dir+`/state"
[lock]
kinds = `+tc.kinds+`
timeout = "20s"
[[policy]]
folders = ["*"]
older_than = "1y"
action = "delete"
`)
			now := "--now=2025-02-01T03:00:00Z"
			r := mailkeepEnv(t, []string{"MAILKEEP_TEST_CRASH_AT=" + point}, "run", "--config", cfg, now)
			if r.code != -1 {
				t.Fatalf("the run was not killed at %s: exit %d %s", point, r.code, r.stderr)
			}
			r = mailkeep(t, "run", "--config", cfg, now, "--format", "json")
			if r.code != 0 {
				t.Fatalf("rerun: exit %d\n%s", r.code, r.stderr)
			}
			if doc := decodeRun(t, r); doc.Failed != 0 || doc.Scanned != 2 {
				t.Errorf("rerun: %+v", doc)
			}
			if got := readFile(t, mbox); got != keep {
				t.Errorf("alice after the rerun: %d bytes, want only the young message", len(got))
			}
			if got := readFile(t, other); got != keep {
				t.Errorf("bob after the rerun: %q", got)
			}
			left, _ := filepath.Glob(filepath.Join(dir, "mail", ".*"))
			if len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

// TestRunShard: the shards of a fleet scan disjoint sets of stores that
// together are all of them, a Maildir's folders staying together.
func TestRunShard(t *testing.T) {
	dir := t.TempDir()
	for i := range 12 {
		writeFile(t, filepath.Join(dir, "mail", fmt.Sprintf("user%d", i)), mboxMessage(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "m@x", 0))
	}
	md := filepath.Join(dir, "mail", "maildir-user")
	maildirMessage(t, md, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "a@x")
	maildirMessage(t, filepath.Join(md, ".Sent"), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "b@x")
	maildirMessage(t, filepath.Join(md, ".Trash"), time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "c@x")
	cfg := filepath.Join(dir, "c.toml")
	writeFile(t, cfg, "roots = [\""+dir+"/mail\"]\nstate_dir = \""+dir+"/state\"\n")
	seen := map[string]int{} // mailbox path → shard
	for i := range 3 {
		shard := fmt.Sprintf("%d/3", i)
		prom := filepath.Join(dir, fmt.Sprintf("shard%d.prom", i))
		r := mailkeep(t, "run", "--config", cfg, "--format", "json", "--shard", shard, "--metrics-textfile", prom,
			"--state-dir", filepath.Join(dir, fmt.Sprintf("state%d", i)))
		if r.code != 0 {
			t.Fatalf("shard %s: exit %d %s", shard, r.code, r.stderr)
		}
		doc := decodeRun(t, r)
		if doc.Shard != shard || !strings.Contains(r.stderr, "shard "+shard) {
			t.Errorf("shard %s not reported: %q / %q", shard, doc.Shard, r.stderr)
		}
		text := readFile(t, prom)
		if !strings.Contains(text, `mailkeep_run_mailboxes{shard="`+shard+`"} `+fmt.Sprint(doc.Scanned)) {
			t.Errorf("shard %s: metrics lack the shard label:\n%s", shard, text)
		}
		for _, line := range strings.Split(text, "\n") {
			if !strings.HasPrefix(line, "mailkeep_mailbox_size_bytes{") {
				continue
			}
			_, rest, _ := strings.Cut(line, `path="`)
			path, _, _ := strings.Cut(rest, `"`)
			if prev, dup := seen[path]; dup {
				t.Errorf("%s is in shards %d and %d", path, prev, i)
			}
			seen[path] = i
		}
	}
	if len(seen) != 15 {
		t.Errorf("the shards scanned %d mailboxes in all, want 15: %v", len(seen), seen)
	}
	if a, b, c := seen[md], seen[filepath.Join(md, ".Sent")], seen[filepath.Join(md, ".Trash")]; a != b || b != c {
		t.Errorf("a Maildir's folders were split between shards %d, %d, %d", a, b, c)
	}
}

// TestRunArchive: action archive moves the old messages to archive_dir.
func TestRunArchive(t *testing.T) {
	dir := t.TempDir()
	keep := mboxMessage(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "young@x", 0)
	mbox := filepath.Join(dir, "mail", "alice")
	writeFile(t, mbox, mboxMessage(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), "old@x", 0)+keep)
	archive := filepath.Join(dir, "archive")
	cfg := filepath.Join(dir, "c.toml")
	writeFile(t, cfg, `roots = ["`+dir+`/mail"]
state_dir = "`+dir+`/state"
archive_dir = "`+archive+`"
[[policy]]
folders = ["alice"]
older_than = "1y"
action = "archive"
`)
	r := mailkeep(t, "run", "--config", cfg, "--format", "json", "--now", "2025-02-01T03:00:00Z")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if doc := decodeRun(t, r); doc.Archived != 1 || doc.Removed != 0 || doc.Failed != 0 {
		t.Errorf("%+v", doc)
	}
	if !strings.Contains(r.stderr, "0 removed, 1 archived") {
		t.Errorf("summary: %q", r.stderr)
	}
	if got := readFile(t, mbox); got != keep {
		t.Errorf("mailbox after archiving: %q", got)
	}
	files, _ := filepath.Glob(filepath.Join(archive, "*", "alice.2020-01.mbox.gz"))
	if len(files) != 1 {
		all, _ := filepath.Glob(filepath.Join(archive, "*", "*"))
		t.Errorf("archive files: %v", all)
	}
}
