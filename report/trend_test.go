package report

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// sampleTrends are trends for sample(): dave's Maildir (at warn) full in
// 12 days, alice (ok) in 20, bob (crit) in 2, the empty mbox shrinking;
// the evil name has no history.
func sampleTrends() map[string]Trend {
	in := func(days float64) time.Time { return now.Add(time.Duration(days * 24 * float64(time.Hour))) }
	return map[string]Trend{
		"/home/dave/Maildir": {BytesPerDay: 16 << 20, FullAt: in(12.34), FullInDays: 12.34},
		"/var/mail/alice":    {BytesPerDay: 40 << 20, FullAt: in(20.5), FullInDays: 20.5},
		"/var/mail/bob":      {BytesPerDay: 100 << 20, FullAt: in(0.6), FullInDays: 0.6},
		"/var/mail/empty":    {BytesPerDay: -1200},
	}
}

func TestScanTrendsGolden(t *testing.T) {
	tests := []struct {
		golden string
		opts   ScanOptions
	}{
		{"scan_trend_table_tty.txt", ScanOptions{Format: FormatTable, TTY: true}},
		{"scan_trend_table_piped.tsv", ScanOptions{Format: FormatTable}},
		{"scan_trend.json", ScanOptions{Format: FormatJSON, Now: now}},
		{"scan_trend.csv", ScanOptions{Format: FormatCSV}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			res := sample()
			trends := sampleTrends()
			WarnEarly(res, trends, now.AddDate(0, 0, 14))
			tt.opts.Trends = trends
			var b bytes.Buffer
			if err := Scan(&b, res, tt.opts); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, b.Bytes())
		})
	}
}

func TestWarnEarly(t *testing.T) {
	res := sample()
	warned := WarnEarly(res, sampleTrends(), now.AddDate(0, 0, 14))
	// alice (20.5 days) is beyond the horizon; the empty mbox shrinks.
	if want := []string{"/home/dave/Maildir", "/var/mail/bob"}; !slices.Equal(warned, want) {
		t.Errorf("warned about %q, want %q", warned, want)
	}
	levels := map[string]mboxscan.Level{}
	problems := map[string][]string{}
	for _, m := range res.Mailboxes {
		levels[m.Path], problems[m.Path] = m.Level, m.Problems
	}
	for path, want := range map[string]mboxscan.Level{
		"/home/dave/Maildir": mboxscan.LevelWarn, "/home/dave/Maildir/.Trash": mboxscan.LevelWarn,
		"/var/mail/alice": mboxscan.LevelOK, "/var/mail/bob": mboxscan.LevelCrit, "/var/mail/empty": mboxscan.LevelOK,
	} {
		if levels[path] != want {
			t.Errorf("%s: level %s, want %s", path, levels[path], want)
		}
	}
	// One problem per store, on its root row.
	if p := problems["/home/dave/Maildir"]; len(p) != 1 || p[0] != "projected full in 12 days (growth 16 MiB/day)" {
		t.Errorf("dave's problems: %q", p)
	}
	if p := problems["/home/dave/Maildir/.Trash"]; len(p) != 0 {
		t.Errorf("the Trash folder got the store's problem too: %q", p)
	}
	if p := problems["/var/mail/bob"]; len(p) != 1 || p[0] != "projected full in less than a day (growth 100 MiB/day)" {
		t.Errorf("bob's problems: %q", p)
	}

	// A wider horizon raises alice from ok; an ok store is raised to warn,
	// not further.
	res = sample()
	WarnEarly(res, sampleTrends(), now.AddDate(0, 0, 30))
	for _, m := range res.Mailboxes {
		if m.Path == "/var/mail/alice" && (m.Level != mboxscan.LevelWarn || len(m.Problems) != 1 ||
			m.Problems[0] != "projected full in 20 days (growth 40 MiB/day)") {
			t.Errorf("alice within 30 days: %s %q", m.Level, m.Problems)
		}
	}

	// A folder scanned without its root row: the problem goes on the
	// store's first row.
	res = sample()
	res.Mailboxes = res.Mailboxes[1:]
	WarnEarly(res, sampleTrends(), now.AddDate(0, 0, 14))
	if m := res.Mailboxes[0]; m.Path != "/home/dave/Maildir/.Trash" || len(m.Problems) != 1 {
		t.Errorf("without the root row: %s %q", m.Path, m.Problems)
	}

	// No trends: nothing changes.
	res, orig := sample(), sample()
	if w := WarnEarly(res, nil, now.AddDate(1, 0, 0)); w != nil {
		t.Errorf("warned without trends: %q", w)
	}
	var a, b bytes.Buffer
	WriteJSON(&a, res, now)
	WriteJSON(&b, orig, now)
	if a.String() != b.String() {
		t.Error("WarnEarly without trends changed the result")
	}
}

func TestScanTrendsJSON(t *testing.T) {
	var b bytes.Buffer
	if err := Scan(&b, sample(), ScanOptions{Format: FormatJSON, Now: now, Trends: sampleTrends()}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Mailboxes []map[string]any `json:"mailboxes"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, m := range doc.Mailboxes {
		switch m["path"] {
		case "/home/dave/Maildir", "/home/dave/Maildir/.Trash":
			if m["full_in_days"] != 12.3 || m["growth_bytes_per_day"] != float64(16<<20) || m["full_at"] == nil {
				t.Errorf("%s: %v", m["path"], m)
			}
		case "/var/mail/empty":
			_, full := m["full_in_days"]
			if full || m["growth_bytes_per_day"] != -1200.0 {
				t.Errorf("a shrinking store: %v", m)
			}
		case "/var/mail/evil\x1b[31m\tname":
			_, full := m["full_in_days"]
			_, growth := m["growth_bytes_per_day"]
			if full || growth {
				t.Errorf("a store without history has trend fields: %v", m)
			}
		}
		// The contract's required fields are all still there.
		for _, k := range []string{"path", "format", "messages", "bytes", "oldest", "newest", "undated",
			"largest_bytes", "large_messages", "limit_bytes", "used_ratio", "level"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s lacks %s", m["path"], k)
			}
		}
	}
}

func TestNoticeTrendAbsent(t *testing.T) {
	for _, lang := range NoticeLangs {
		tmpl, err := BuiltinNoticeTemplate(lang)
		if err != nil {
			t.Fatal(err)
		}
		n := sampleNotice()
		n.Stores[0].SetTrend(Trend{}) // no trend
		n.RemoveAfter = time.Time{}
		_, body, err := tmpl.Render(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"Growing", "on or after", "増えています", "以降に削除"} {
			if strings.Contains(body, s) {
				t.Errorf("%s: a notice without trend or removal date says %q:\n%s", lang, s, body)
			}
		}
		// Full within a day.
		n.Stores[0].SetTrend(Trend{BytesPerDay: 200 << 20, FullAt: noticeNow.Add(5 * time.Hour), FullInDays: 0.2})
		_, body, err = tmpl.Render(n)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"en": "it will be full within a day", "ja": "このままでは1日以内"}[lang]
		if !strings.Contains(body, want) || !strings.Contains(body, "200 MiB") {
			t.Errorf("%s: full within a day:\n%s", lang, body)
		}
	}
}

func TestPlanNoticesTrends(t *testing.T) {
	res := sample()
	plan, err := PlanNotices(context.Background(), res, NoticeOptions{
		All: true, Largest: -1, Addresses: AddressMap{"dave": "dave@example.org", "alice": "alice@example.org"},
		Admin: "postmaster@example.org", Host: "mail", Now: now, Trends: sampleTrends(),
	})
	if err != nil {
		t.Fatal(err)
	}
	var dave *Notice
	for _, n := range plan.Notices {
		if n.User == "dave" {
			dave = n
		}
	}
	if dave == nil || len(dave.Stores) != 1 {
		t.Fatalf("no notice for dave: %+v", plan)
	}
	s := dave.Stores[0]
	if !s.Growing || s.FullInDays != 12 || s.GrowthBytesPerDay != 16<<20 || !s.FullAt.Equal(sampleTrends()["/home/dave/Maildir"].FullAt) {
		t.Errorf("dave's store: %+v", s)
	}
}

func TestMetricsConstLabels(t *testing.T) {
	var b bytes.Buffer
	err := WriteMetrics(&b, metricsSample(), MetricsOptions{Duration: time.Second, Success: true, LastSuccess: now,
		Labels: map[string]string{"shard": "2/4"}})
	if err != nil {
		t.Fatal(err)
	}
	fams := parseMetrics(t, &b)
	if len(fams) < 10 {
		t.Fatalf("only %d metric families", len(fams))
	}
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			if got := labelOf(m, "shard"); got != "2/4" {
				t.Errorf("%s %v: shard %q, want 2/4", name, m.GetLabel(), got)
			}
		}
	}
	if fam := fams["mailkeep_mailbox_size_bytes"]; fam == nil || len(fam.GetMetric()) != 4 || labelOf(fam.GetMetric()[0], "path") == "" {
		t.Errorf("per-mailbox series lost their own labels: %v", fam)
	}

	for _, bad := range []map[string]string{{"path": "x"}, {"store": "x"}, {"bad-name": "x"}, {"__name__": "x"}, {"": "x"}} {
		var b bytes.Buffer
		if err := WriteMetrics(&b, metricsSample(), MetricsOptions{Labels: bad}); err == nil || b.Len() != 0 {
			t.Errorf("labels %v: err %v, wrote %d bytes", bad, err, b.Len())
		}
	}
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
