package report

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mailkeep/mailkeep/mboxscan"
)

func metricsSample() *mboxscan.Result {
	gib := int64(1 << 30)
	return &mboxscan.Result{
		Mailboxes: []mboxscan.Mailbox{
			{Path: "/home/dave/Maildir", Format: mboxscan.FormatMaildir, Owner: "dave", Store: "/home/dave/Maildir",
				Messages: 3000, Bytes: 600000000, Oldest: time.Unix(1577880000, 0), Newest: time.Unix(1740830400, 0),
				LargestBytes: 12000000, LargeMessages: 1, Bounces: 4,
				StoreBytes: 880000000, LimitBytes: gib, UsedRatio: 880000000.0 / float64(gib), Level: mboxscan.LevelWarn},
			{Path: "/var/mail/bob", Format: mboxscan.FormatMbox, Owner: "bob", Store: "/var/mail/bob",
				Messages: 2, Bytes: 5000, Oldest: time.Unix(1700000000, 500000000), Newest: time.Unix(1700000100, 0),
				StoreBytes: 5000, LimitBytes: 2 * gib, UsedRatio: 5000.0 / float64(2*gib), Level: mboxscan.LevelOK,
				Problems: []string{"truncated last message"}},
			{Path: "/var/mail/empty", Format: mboxscan.FormatMbox, Owner: "1001", Store: "/var/mail/empty",
				LimitBytes: 2 * gib, Level: mboxscan.LevelOK},
			{Path: "/var/mail/bad\xffname\n", Format: mboxscan.FormatMbox, Owner: "eve", Store: "/var/mail/bad\xffname\n",
				Messages: 1, Bytes: 10, LimitBytes: 2 * gib, StoreBytes: 10, Level: mboxscan.LevelCrit},
		},
		Skipped: []mboxscan.Skipped{{Path: "/var/mail/x.lock", Reason: "lock file"}},
	}
}

func parseMetrics(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("the Prometheus text parser refuses the output: %v", err)
	}
	return fams
}

// value returns the value of the series of fam whose path label is path
// ("" for a metric without labels).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name, path string) (float64, bool) {
	t.Helper()
	fam := fams[name]
	if fam == nil {
		return 0, false
	}
	if fam.GetType() != dto.MetricType_GAUGE {
		t.Errorf("%s is a %s, want a gauge", name, fam.GetType())
	}
	for _, m := range fam.GetMetric() {
		got := ""
		for _, l := range m.GetLabel() {
			if l.GetName() == "path" {
				got = l.GetValue()
			}
		}
		if got == path {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func TestWriteMetrics(t *testing.T) {
	var b bytes.Buffer
	last := time.Unix(1741064767, 0)
	err := WriteMetrics(&b, metricsSample(), MetricsOptions{Duration: 1500 * time.Millisecond, LastSuccess: last, Success: true})
	if err != nil {
		t.Fatal(err)
	}
	fams := parseMetrics(t, bytes.NewReader(b.Bytes()))
	for _, tt := range []struct {
		name, path string
		want       float64
	}{
		{"mailkeep_mailbox_size_bytes", "/home/dave/Maildir", 600000000},
		{"mailkeep_mailbox_store_bytes", "/home/dave/Maildir", 880000000},
		{"mailkeep_mailbox_limit_bytes", "/home/dave/Maildir", 1 << 30},
		{"mailkeep_mailbox_used_ratio", "/home/dave/Maildir", 880000000.0 / (1 << 30)},
		{"mailkeep_mailbox_level", "/home/dave/Maildir", 1},
		{"mailkeep_mailbox_messages", "/home/dave/Maildir", 3000},
		{"mailkeep_mailbox_large_messages", "/home/dave/Maildir", 1},
		{"mailkeep_mailbox_largest_message_bytes", "/home/dave/Maildir", 12000000},
		{"mailkeep_mailbox_bounces", "/home/dave/Maildir", 4},
		{"mailkeep_mailbox_oldest_message_timestamp_seconds", "/home/dave/Maildir", 1577880000},
		{"mailkeep_mailbox_newest_message_timestamp_seconds", "/var/mail/bob", 1700000100},
		{"mailkeep_mailbox_oldest_message_timestamp_seconds", "/var/mail/bob", 1700000000.5},
		{"mailkeep_mailbox_problems", "/var/mail/bob", 1},
		{"mailkeep_mailbox_level", `"/var/mail/bad\xffname\n"`, 2},
		{"mailkeep_mailboxes", "", 4},
		{"mailkeep_skipped_files", "", 1},
		{"mailkeep_scan_success", "", 1},
		{"mailkeep_scan_duration_seconds", "", 1.5},
		{"mailkeep_last_success_timestamp_seconds", "", 1741064767},
	} {
		got, ok := value(t, fams, tt.name, tt.path)
		if !ok || got != tt.want {
			t.Errorf("%s{path=%q} = %v (found %v), want %v", tt.name, tt.path, got, ok, tt.want)
		}
	}
	// No date, no timestamp: a zero would read as 1970.
	if _, ok := value(t, fams, "mailkeep_mailbox_oldest_message_timestamp_seconds", "/var/mail/empty"); ok {
		t.Error("an empty mailbox has an oldest message timestamp")
	}
	// Every per-mailbox series carries the four labels.
	for _, m := range fams["mailkeep_mailbox_size_bytes"].GetMetric() {
		var names []string
		for _, l := range m.GetLabel() {
			names = append(names, l.GetName())
		}
		if strings.Join(names, ",") != "format,owner,path,store" {
			t.Errorf("labels %v", names)
		}
	}

	// A failed scan without a known last success leaves the metric out.
	b.Reset()
	WriteMetrics(&b, &mboxscan.Result{}, MetricsOptions{})
	fams = parseMetrics(t, &b)
	if _, ok := fams[MetricLastSuccess]; ok {
		t.Error("last success written without one")
	}
	if v, _ := value(t, fams, "mailkeep_scan_success", ""); v != 0 {
		t.Error("scan_success is not 0")
	}
}

func TestWriteTextfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mailkeep.prom")
	last := time.Unix(1741064767, 250000000)
	write := func(w io.Writer) error {
		return WriteMetrics(w, metricsSample(), MetricsOptions{LastSuccess: last, Success: true})
	}
	if err := WriteTextfile(path, write); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	parseMetrics(t, f)
	f.Close()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v: node_exporter must be able to read it", fi.Mode())
	}
	got, err := ReadLastSuccess(path)
	if err != nil || !got.Equal(last) {
		t.Errorf("ReadLastSuccess = %v, %v; want %v", got, err, last)
	}

	// A failing writer leaves the old file and no temporary file.
	before, _ := os.ReadFile(path)
	err = WriteTextfile(path, func(w io.Writer) error {
		io.WriteString(w, "# half\n")
		return errors.New("boom")
	})
	if err == nil {
		t.Fatal("WriteTextfile hid the writer's error")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("the textfile changed after a failed write")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("files left: %v", ents)
	}

	if got, err := ReadLastSuccess(filepath.Join(dir, "none.prom")); err != nil || !got.IsZero() {
		t.Errorf("missing file: %v, %v", got, err)
	}
	if err := WriteTextfile(filepath.Join(dir, "nodir", "x.prom"), write); err == nil {
		t.Error("wrote into a missing directory")
	}
}
