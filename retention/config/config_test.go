package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/retention"
	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

const good = `# a comment
roots = ["/var/mail", "/home/*/Maildir"]
path_pattern = "/var/vmail/{domain}/{user}/Maildir"
limit = "1GiB"
warn = 70
crit = 90.5
large = 5000000
state_dir = "/tmp/state"
metrics_textfile = "/tmp/m.prom"
history_keep = "90d"
trend_horizon = "2w"
trend_points = 10

[lock]
kinds = ["dotlock", "flock"]
timeout = "5s"

[notify]
enabled = true
sendmail = "/usr/lib/sendmail"
to = "{{.User}}@{{.Domain}}"
from = "postmaster@example.org"
notice = "3d"

[[policy]]
users = ["boss"]
folders = ["*"]
older_than = "10y"

[[policy]]
domains = ["example.org"]
folders = [
  "Trash",   # multi-line arrays must not confuse line numbers
  ".Trash",
]
older_than = "30d"
date = "saved"
action = "delete"
include_flagged = true

[[policy]]
folders = ["*"]
before = "2020-01-01"
larger_than = "1MB"
keep_unread = true
`

func TestParseGood(t *testing.T) {
	c, err := Parse("good.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if c.File != "good.toml" || len(c.Roots) != 2 || c.Roots[1] != "/home/*/Maildir" {
		t.Errorf("roots/file: %q %q", c.File, c.Roots)
	}
	if c.Limit != 1<<30 || c.Warn != 70 || c.Crit != 90.5 || c.Large != 5_000_000 {
		t.Errorf("limits: %d %g %g %d", c.Limit, c.Warn, c.Crit, c.Large)
	}
	if u, d, ok := c.PathPattern.Match("/var/vmail/ex.org/al/Maildir/.Trash"); !ok || u != "al" || d != "ex.org" {
		t.Errorf("path pattern: %q %q %v", u, d, ok)
	}
	if c.StateDir != "/tmp/state" || c.MetricsTextfile != "/tmp/m.prom" {
		t.Errorf("paths: %q %q", c.StateDir, c.MetricsTextfile)
	}
	if c.HistoryKeep.String() != "90d" || c.TrendHorizon.String() != "2w" || c.TrendPoints != 10 {
		t.Errorf("history: %v %v %d", c.HistoryKeep, c.TrendHorizon, c.TrendPoints)
	}
	if len(c.Lock.Kinds) != 2 || c.Lock.Kinds[1] != mboxlock.Flock || c.Lock.Timeout != 5*time.Second {
		t.Errorf("lock: %+v", c.Lock)
	}
	if !c.Notify.Enabled || c.Notify.Sendmail != "/usr/lib/sendmail" || c.Notify.Notice.String() != "3d" || c.Notify.Lang != "en" {
		t.Errorf("notify: %+v", c.Notify)
	}
	if len(c.Policies) != 3 {
		t.Fatalf("policies: %d", len(c.Policies))
	}
	p0, p1, p2 := c.Policies[0], c.Policies[1], c.Policies[2]
	if p0.Action != retention.ActionReport || p0.Users[0] != "boss" || p0.Policy.OlderThan.String() != "10y" {
		t.Errorf("policy 1: %+v", p0)
	}
	if p1.Action != retention.ActionDelete || p1.Policy.DateKind != mboxscan.DateSaved || !p1.Policy.IncludeFlagged || len(p1.Folders) != 2 {
		t.Errorf("policy 2: %+v", p1)
	}
	if p2.Policy.Before.Year() != 2020 || p2.Policy.LargerThan != 1_000_000 || !p2.Policy.KeepUnread {
		t.Errorf("policy 3: %+v", p2)
	}
	for _, r := range c.Policies {
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", r.Name, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("empty.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	d := Default()
	if c.Limit != d.Limit || c.StateDir != DefaultStateDir || c.Roots[0] != "/var/mail" || c.Notify.Enabled || !c.Notify.Notice.IsZero() {
		t.Errorf("defaults: %+v", c)
	}
	// Notices on, no notice period given: the default period.
	c, err = Parse("n.toml", []byte("[notify]\nenabled = true\nto = \"{{.User}}@x\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Notify.Notice != DefaultNotice {
		t.Errorf("notice default: %v", c.Notify.Notice)
	}
}

// TestExampleConfig parses the example that ships in packaging/.
func TestExampleConfig(t *testing.T) {
	c, err := Load("../../packaging/mailkeep.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Policies) == 0 || c.Policies[len(c.Policies)-1].Action != retention.ActionReport {
		t.Errorf("the example should end in a report-only catch-all: %+v", c.Policies)
	}
}

func TestParseBad(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		line     int
		key      string
		msg      string
	}{
		{"syntax", "limit = \"2GiB\"\nwarn = = 3\n", 2, "warn", ""},
		{"unknown key", "roots = [\"/x\"]\n\nlimitt = \"2GiB\"\n", 3, "limitt", "unknown key"},
		{"unknown key in table", "[lock]\nkinds = [\"fcntl\"]\ntimout = \"3s\"\n", 3, "lock.timout", "unknown key"},
		{"unknown table", "[notfy]\nenabled = true\n", 1, "notfy", "unknown key"},
		{"unknown key in second policy", "[[policy]]\nfolders=[\"*\"]\nolder_than=\"1y\"\n[[policy]]\nfolders=[\"*\"]\nolder_then=\"1y\"\n", 6, "policy.older_then", "unknown key"},
		{"bad size", "limit = \"2XB\"\n", 1, "limit", "not a size"},
		{"bad percent", "warn = 180\n", 1, "warn", "percentage"},
		{"warn above crit", "\nwarn = 96\n", 2, "warn", "not below crit"},
		{"bad lock kind", "[lock]\nkinds = [\"dotlock\", \"lockf\"]\n", 2, "lock.kinds", "lockf"},
		{"bad timeout", "[lock]\ntimeout = \"soon\"\n", 2, "lock.timeout", "duration"},
		{"bad age in first policy", "[[policy]]\nfolders=[\"Trash\"]\nolder_than = \"30x\"\naction=\"delete\"\n[[policy]]\nfolders=[\"*\"]\nolder_than=\"2y\"\n", 3, "policy.older_than", "unknown unit"},
		{"bad action in second policy", "[[policy]]\nfolders=[\"Trash\"]\nolder_than = \"30d\"\n\n[[policy]]\nfolders=[\"*\"]\nolder_than=\"2y\"\naction = \"purge\"\n", 8, "policy.action", "unknown action"},
		{"no cutoff", "[[policy]]\nfolders=[\"*\"]\naction=\"delete\"\n", 1, "policy", "no cutoff"},
		{"no folders", "\n[[policy]]\nolder_than=\"1y\"\n", 2, "policy", "no folders"},
		{"both cutoffs", "[[policy]]\nfolders=[\"*\"]\nolder_than=\"1y\"\nbefore=\"2020-01-01\"\n", 4, "policy.before", "both"},
		{"bad date kind", "[[policy]]\nfolders=[\"*\"]\nolder_than=\"1y\"\ndate = \"arrived\"\n", 4, "policy.date", "received, saved or sent"},
		{"archive without dir", "[[policy]]\nfolders=[\"*\"]\nolder_than=\"1y\"\naction = \"archive\"\n", 4, "policy.action", "archive_dir"},
		{"notice without notify", "[notify]\nnotice = \"7d\"\n", 2, "notify.notice", "enabled"},
		{"notify without to", "[notify]\nenabled = true\n", 1, "notify.to", "missing"},
		{"bad template", "[notify]\nenabled = true\nto = \"{{.User\"\n", 3, "notify.to", ""},
		{"bad path pattern", "path_pattern = \"/var/{who}\"\n", 1, "path_pattern", "unknown placeholder"},
		{"bad glob", "roots = [\"/var/[mail\"]\n", 1, "roots", "bad glob"},
		{"bad folder glob", "[[policy]]\nfolders = [\"[Trash\"]\nolder_than=\"1y\"\n", 2, "policy.folders", "bad pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/etc/mailkeep/test.toml", []byte(tc.in))
			if err == nil {
				t.Fatal("no error")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *config.Error", err, err)
			}
			if ce.File != "/etc/mailkeep/test.toml" || ce.Line != tc.line || ce.Key != tc.key {
				t.Errorf("error at %s:%d key %q, want line %d key %q: %v", ce.File, ce.Line, ce.Key, tc.line, tc.key, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "config /etc/mailkeep/test.toml:") || !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q: want the file, line and %q", msg, tc.msg)
			}
			t.Log(msg)
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want ErrNotExist", err)
	}
	p := filepath.Join(t.TempDir(), "x.toml")
	if err := os.WriteFile(p, []byte("warn = \"high\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(p)
	var ce *Error
	if !errors.As(err, &ce) || ce.File != p || ce.Line != 1 || ce.Key != "warn" || !strings.Contains(err.Error(), "incompatible types") {
		t.Errorf("type error should name file and line: %v", err)
	}
	t.Log(err)
}
