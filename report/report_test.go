package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
)

var update = flag.Bool("update", false, "rewrite the golden files in ../testdata/golden/report")

const gib = 1 << 30

var now = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func date(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, 12, 30, 0, 0, time.UTC)
}

// sample is a scan result as the scanner would return it: by path,
// assessed against a 2 GiB limit with warn 80, crit 95.
func sample() *mboxscan.Result {
	quota := &mboxscan.Quota{LimitBytes: gib, LimitMessages: 10000, UsedBytes: 880000000, UsedMessages: 4000}
	return &mboxscan.Result{
		Mailboxes: []mboxscan.Mailbox{
			{
				Path: "/home/dave/Maildir", Format: mboxscan.FormatMaildir, Owner: "dave",
				Store: "/home/dave/Maildir", Messages: 3000, Bytes: 600000000,
				Oldest: date(2020, 1, 2), Newest: date(2025, 3, 1), LargestBytes: 12000000,
				LargeMessages: 1, Bounces: 4, Quota: quota,
				StoreBytes: 880000000, LimitBytes: gib, UsedRatio: 880000000.0 / gib, Level: mboxscan.LevelWarn,
			},
			{
				Path: "/home/dave/Maildir/.Trash", Format: mboxscan.FormatMaildir, Owner: "dave",
				Store: "/home/dave/Maildir", Folder: ".Trash", Messages: 1000, Bytes: 280000000,
				Oldest: date(2024, 6, 30), Newest: date(2025, 3, 3), Undated: 2, LargestBytes: 9000000, Quota: quota,
				StoreBytes: 880000000, LimitBytes: gib, UsedRatio: 880000000.0 / gib, Level: mboxscan.LevelWarn,
			},
			{
				Path: "/var/mail/alice", Format: mboxscan.FormatMbox, Owner: "alice", Store: "/var/mail/alice",
				Messages: 120, Bytes: 1288490189, Oldest: date(2019, 11, 5), Newest: date(2025, 3, 4),
				LargestBytes: 31457280, LargeMessages: 3, Bounces: 12,
				StoreBytes: 1288490189, LimitBytes: 2 * gib, UsedRatio: 0.6, Level: mboxscan.LevelOK,
			},
			{
				Path: "/var/mail/bob", Format: mboxscan.FormatMbox, Owner: "bob", Store: "/var/mail/bob",
				Messages: 45210, Bytes: 2085285610, Oldest: date(2012, 2, 29), Newest: date(2025, 3, 4),
				LargestBytes: 52428800, LargeMessages: 17, Bounces: 230,
				StoreBytes: 2085285610, LimitBytes: 2 * gib, UsedRatio: 2085285610.0 / (2 * gib), Level: mboxscan.LevelCrit,
			},
			{
				Path: "/var/mail/empty", Format: mboxscan.FormatMbox, Owner: "1001", Store: "/var/mail/empty",
				LimitBytes: 2 * gib, Level: mboxscan.LevelOK,
			},
			{
				Path: "/var/mail/evil\x1b[31m\tname", Format: mboxscan.FormatMbox, Owner: "eve",
				Store: "/var/mail/evil\x1b[31m\tname", Messages: 2, Bytes: 5000, Oldest: date(2025, 1, 1), Newest: date(2025, 1, 2),
				LargestBytes: 3000, Problems: []string{"line 1: garbage before the first From_ line", "truncated last message"},
				StoreBytes: 5000, LimitBytes: 2 * gib, UsedRatio: 5000.0 / (2 * gib), Level: mboxscan.LevelOK,
			},
		},
		Skipped: []mboxscan.Skipped{
			{Path: "/var/mail/.bob.lock", Reason: "not a mailbox: empty file"},
			{Path: "/var/mail/notes.txt", Reason: "not a mailbox: no From_ line at the start"},
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("..", "testdata", "golden", "report", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test ./report -update rewrites it)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

func TestScanGolden(t *testing.T) {
	empty := &mboxscan.Result{}
	tests := []struct {
		golden string
		res    *mboxscan.Result
		opts   ScanOptions
	}{
		{"scan_table_tty.txt", sample(), ScanOptions{Format: FormatTable, TTY: true}},
		{"scan_table_piped.tsv", sample(), ScanOptions{Format: FormatTable}},
		{"scan.json", sample(), ScanOptions{Format: FormatJSON, Now: now}},
		{"scan.csv", sample(), ScanOptions{Format: FormatCSV}},
		{"scan_empty_table_tty.txt", empty, ScanOptions{Format: FormatTable, TTY: true}},
		{"scan_empty_table_piped.tsv", empty, ScanOptions{Format: FormatTable}},
		{"scan_empty.json", empty, ScanOptions{Format: FormatJSON, Now: now}},
		{"scan_empty.csv", empty, ScanOptions{Format: FormatCSV}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			var b bytes.Buffer
			if err := Scan(&b, tt.res, tt.opts); err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, b.Bytes())
		})
	}
}

func TestScanUnsupported(t *testing.T) {
	var b bytes.Buffer
	err := Scan(&b, sample(), ScanOptions{Format: FormatPrometheus})
	if !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("prometheus: got %v, want ErrUnsupportedFormat", err)
	}
	if err := Scan(&b, sample(), ScanOptions{Format: "xml"}); err == nil {
		t.Error("xml: no error")
	}
	if b.Len() != 0 {
		t.Errorf("wrote %q on error", b.String())
	}
}

func TestTableOrderAndEscaping(t *testing.T) {
	for _, tty := range []bool{false, true} {
		t.Run("tty="+strconv.FormatBool(tty), func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteTable(&b, sample(), tty); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if strings.Contains(out, "\x1b") {
				t.Errorf("raw escape character in output:\n%q", out)
			}
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if tty {
				if !strings.HasPrefix(lines[0], "LEVEL") {
					t.Errorf("no header on a TTY: %q", lines[0])
				}
				lines = lines[1:]
			} else if strings.Contains(out, "LEVEL") || strings.Contains(out, "skipped") {
				t.Errorf("header, notes or totals when piped:\n%s", out)
			}
			// Fullest first: bob (97.1%), dave's store (82%, INBOX then .Trash), alice (60%).
			wantOrder := []string{"/var/mail/bob", "/home/dave/Maildir", "/home/dave/Maildir/.Trash", "/var/mail/alice"}
			for i, want := range wantOrder {
				if !strings.HasSuffix(lines[i], want) {
					t.Errorf("row %d = %q, want path %s", i, lines[i], want)
				}
			}
			if !tty {
				for _, l := range lines {
					if n := strings.Count(l, "\t"); n != 11 {
						t.Errorf("row has %d tabs, want 11: %q", n, l)
					}
				}
			}
		})
	}
}

func TestJSONContract(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, sample(), now); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339, doc["generated_at"].(string)); err != nil {
		t.Errorf("generated_at: %v", err)
	}
	boxes := doc["mailboxes"].([]any)
	if len(boxes) != 6 {
		t.Fatalf("%d mailboxes, want 6", len(boxes))
	}
	required := []string{"path", "format", "messages", "bytes", "oldest", "newest", "undated",
		"largest_bytes", "large_messages", "limit_bytes", "used_ratio", "level"}
	for _, x := range boxes {
		m := x.(map[string]any)
		for _, k := range required {
			if _, ok := m[k]; !ok {
				t.Errorf("mailbox %v: no %q", m["path"], k)
			}
		}
		for _, k := range []string{"oldest", "newest"} {
			if s, ok := m[k].(string); ok {
				if _, err := time.Parse(time.RFC3339, s); err != nil {
					t.Errorf("%s: %v", k, err)
				}
			}
		}
		if f := m["format"]; f != "mbox" && f != "maildir" {
			t.Errorf("format %v", f)
		}
		if l := m["level"]; l != "ok" && l != "warn" && l != "crit" {
			t.Errorf("level %v", l)
		}
	}
	empty := boxes[4].(map[string]any)
	if empty["path"] != "/var/mail/empty" || empty["oldest"] != nil || empty["newest"] != nil {
		t.Errorf("empty mailbox: oldest/newest not null: %v", empty)
	}
	if _, ok := empty["problems"]; ok {
		t.Error("problems present though empty")
	}
	if got := boxes[5].(map[string]any)["path"]; got != "/var/mail/evil\x1b[31m\tname" {
		t.Errorf("hostile path did not round-trip: %q", got)
	}
	if s := doc["skipped"].([]any); len(s) != 2 || s[0].(map[string]any)["reason"] == "" {
		t.Errorf("skipped = %v", s)
	}

	// Empty arrays are [], never null.
	b.Reset()
	if err := WriteJSON(&b, &mboxscan.Result{}, now); err != nil {
		t.Fatal(err)
	}
	compact := strings.Join(strings.Fields(b.String()), "")
	for _, want := range []string{`"mailboxes":[]`, `"skipped":[]`} {
		if !strings.Contains(compact, want) {
			t.Errorf("empty result: no %s in %s", want, b.String())
		}
	}
}

func TestCSVParse(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, sample()); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Errorf("header = %v", rows[0])
	}
	res := sample()
	if len(rows) != 1+len(res.Mailboxes) {
		t.Fatalf("%d rows, want %d", len(rows), 1+len(res.Mailboxes))
	}
	col := make(map[string]int)
	for i, h := range rows[0] {
		col[h] = i
	}
	for i, m := range res.Mailboxes {
		row := rows[i+1]
		if row[col["path"]] != m.Path {
			t.Errorf("row %d path %q, want %q", i, row[col["path"]], m.Path)
		}
		if row[col["bytes"]] != strconv.FormatInt(m.Bytes, 10) {
			t.Errorf("row %d bytes %q", i, row[col["bytes"]])
		}
		if m.Oldest.IsZero() != (row[col["oldest"]] == "") {
			t.Errorf("row %d oldest %q", i, row[col["oldest"]])
		}
		ratio, err := strconv.ParseFloat(row[col["used_ratio"]], 64)
		if err != nil || ratio != m.UsedRatio {
			t.Errorf("row %d used_ratio %q (%v), want %v", i, row[col["used_ratio"]], err, m.UsedRatio)
		}
		if (m.Quota == nil) != (row[col["quota_limit_bytes"]] == "") {
			t.Errorf("row %d quota_limit_bytes %q", i, row[col["quota_limit_bytes"]])
		}
	}
}

var (
	statusLine = regexp.MustCompile(`^MAILKEEP (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+ \| (.*)$`)
	perfItem   = regexp.MustCompile(`^('([^'=]|'')+'|[a-z]+)=\d+(B)?;(\d*);(\d*);(\d*)(;(\d*))?$`)
)

func TestCheck(t *testing.T) {
	withLevels := func(levels ...mboxscan.Level) *mboxscan.Result {
		res := sample()
		for i := range res.Mailboxes {
			res.Mailboxes[i].Level = mboxscan.LevelOK
		}
		for i, l := range levels {
			res.Mailboxes[i].Level = l
		}
		return res
	}
	scanErr := errors.Join(errors.New("scan root: stat /srv/mail: no such file or directory"),
		errors.New("second | line"))
	tests := []struct {
		name   string
		res    *mboxscan.Result
		err    error
		status Status
		text   string
	}{
		{"ok", withLevels(), nil, StatusOK,
			"MAILKEEP OK - 5 mailboxes below 80%; fullest /var/mail/bob 97.1% (1.9 GiB of 2.0 GiB); 2 skipped | "},
		// dave's two folders are one store: one warn.
		{"warn", withLevels(mboxscan.LevelWarn, mboxscan.LevelWarn), nil, StatusWarning,
			"MAILKEEP WARNING - 1 warn of 5 mailboxes; "},
		{"crit", sample(), nil, StatusCritical,
			"MAILKEEP CRITICAL - 1 crit, 1 warn of 5 mailboxes; fullest /var/mail/bob 97.1% (1.9 GiB of 2.0 GiB); 2 skipped | mailboxes=5;;;0 warn=1;;;0 crit=1;;;0 skipped=2;;;0 '/home/dave/Maildir'=880000000B;858993459;1020054732;0;1073741824 "},
		{"no mailboxes", &mboxscan.Result{}, nil, StatusUnknown,
			"MAILKEEP UNKNOWN - no mailboxes found | mailboxes=0;;;0 warn=0;;;0 crit=0;;;0 skipped=0;;;0"},
		{"nil result", nil, scanErr, StatusUnknown,
			"MAILKEEP UNKNOWN - scan failed: scan root: stat /srv/mail: no such file or directory; second _ line; no mailboxes found | "},
		{"scan error hides warn", withLevels(mboxscan.LevelWarn), scanErr, StatusUnknown, "MAILKEEP UNKNOWN - scan failed: "},
		{"scan error keeps crit", sample(), scanErr, StatusCritical, "MAILKEEP CRITICAL - scan failed: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, line := Check(tt.res, tt.err, CheckOptions{Warn: 80, Crit: 95})
			if status != tt.status {
				t.Errorf("status %v, want %v", status, tt.status)
			}
			if !strings.HasPrefix(line, tt.text) {
				t.Errorf("line\n%s\ndoes not start with\n%s", line, tt.text)
			}
			if strings.ContainsAny(line, "\n\x1b") {
				t.Errorf("line has a newline or escape: %q", line)
			}
			m := statusLine.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("not a plugin status line: %q", line)
			}
			if m[1] != status.String() {
				t.Errorf("line says %s, status is %s", m[1], status)
			}
			items := strings.Split(m[2], " ")
			for _, item := range items {
				if !perfItem.MatchString(item) {
					t.Errorf("bad perfdata item %q", item)
				}
			}
			if tt.res != nil && len(tt.res.Mailboxes) > 0 && len(items) != 4+5 {
				t.Errorf("%d perfdata items, want 4 counts + 5 stores", len(items))
			}
		})
	}
}

func TestPerfLabel(t *testing.T) {
	for in, want := range map[string]string{
		"/var/mail/bob":       "'/var/mail/bob'",
		"/var/mail/o'brien":   "'/var/mail/o''brien'",
		"/var/mail/a=b|c":     "'/var/mail/a_b_c'",
		"/var/mail/x\ny":      `'"/var/mail/x\ny"'`,
		"/home/j d/Maildir":   "'/home/j d/Maildir'",
		"/var/mail/\xff\xfe!": `'"/var/mail/\xff\xfe!"'`,
	} {
		if got := perfLabel(in); got != want {
			t.Errorf("perfLabel(%q) = %s, want %s", in, got, want)
		}
	}
	if got := CheckUnknown("bad flag\n--warn | x"); got != "MAILKEEP UNKNOWN - bad flag; --warn _ x" {
		t.Errorf("CheckUnknown = %q", got)
	}
}
