package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestRunNoticeTrendAndShardMetrics: a run's notice says when the owner's
// store will be full, and a sharded run's metrics carry the shard on
// every series, the per-mailbox ones too.
func TestRunNoticeTrendAndShardMetrics(t *testing.T) {
	dir := t.TempDir()
	vmail := filepath.Join(dir, "vmail")
	// dave's INBOX: 120,000 bytes tonight, with a 3-year-old message that
	// a report-only policy tells him about; it grew by 20,000 bytes each
	// of the five nights before. Against 1 MB: full in 44 days.
	inbox := filepath.Join(vmail, "example.org", "dave", "INBOX")
	writeFile(t, inbox, mboxMessage(trendNow.AddDate(-3, 0, 0), "d@x", 120_000))
	state := filepath.Join(dir, "state")
	seedHistory(t, state, 1_000_000, map[string][]int64{inbox: {20_000, 40_000, 60_000, 80_000, 100_000}})

	out := filepath.Join(dir, "outbox")
	sendmail := fakeSendmail(t, dir, out)
	prom := filepath.Join(dir, "mailkeep.prom")
	cfg := filepath.Join(dir, "mailkeep.toml")
	writeFile(t, cfg, `roots = ["`+vmail+`"]
path_pattern = "`+vmail+`/{domain}/{user}"
limit = "1MB"
state_dir = "`+state+`"
metrics_textfile = "`+prom+`"

[notify]
enabled = true
sendmail = "`+sendmail+`"
to = "{{.User}}@{{.Domain}}"
from = "postmaster@example.org"
rate = "1000/s"

[[policy]]
folders = ["*"]
older_than = "2y"
action = "report"
`)
	r := mailkeep(t, "run", "--config", cfg, "--format", "json", "--shard", "0/1", "--now", trendNow.Format(time.RFC3339))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if doc := decodeRun(t, r); doc.Notified != 1 || len(doc.Trends) != 1 || *doc.Trends[0].FullInDays != 44 {
		t.Fatalf("run: %+v", doc)
	}
	msgs := outbox(t, out)
	if len(msgs) != 1 {
		t.Fatalf("%d notices, want 1", len(msgs))
	}
	full := trendNow.AddDate(0, 0, 44).Format(time.DateOnly)
	if !strings.Contains(msgs[0], "Growing by about 20 KiB a day, it will be full in 44 days") ||
		!strings.Contains(msgs[0], "("+full+") at this rate.") {
		t.Errorf("the notice does not tell the trend:\n%s", msgs[0])
	}
	// A report-only policy removes nothing: no removal date.
	if strings.Contains(msgs[0], "on or after") {
		t.Errorf("a report-only notice names a removal date:\n%s", msgs[0])
	}

	f, err := os.Open(prom)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("the textfile does not parse: %v", err)
	}
	perMailbox := 0
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			shard := "(none)"
			for _, l := range m.GetLabel() {
				if l.GetName() == "shard" {
					shard = l.GetValue()
				}
			}
			if shard != "0/1" {
				t.Errorf("%s%v: shard %s, want 0/1", name, m.GetLabel(), shard)
			}
			if strings.HasPrefix(name, "mailkeep_mailbox_") {
				perMailbox++
			}
		}
	}
	if perMailbox == 0 || fams["mailkeep_mailbox_size_bytes"] == nil {
		t.Errorf("no per-mailbox metrics in the textfile: %v", fams)
	}
}
