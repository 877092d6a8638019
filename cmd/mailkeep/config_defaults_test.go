package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigDefaults: scan, check, prune and notify take the roots and
// limits of the configuration file; flags and PATHs override it.
func TestConfigDefaults(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	mbox := "From a@example.org Mon Jan  6 10:00:00 2025\nSubject: s\n\nbody\n"
	for _, u := range []string{"alice", "bob"} {
		if err := os.MkdirAll(filepath.Join(spool, u), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(spool, u, "mbox"), []byte(mbox), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "mailkeep.toml")
	conf := fmt.Sprintf("roots = [%q]\nlimit = \"100\"\nwarn = 10\ncrit = 20\nstate_dir = %q\n",
		filepath.Join(spool, "*", "mbox"), filepath.Join(dir, "state"))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	type doc struct {
		Mailboxes []struct {
			Path       string `json:"path"`
			LimitBytes int64  `json:"limit_bytes"`
			Level      string `json:"level"`
		} `json:"mailboxes"`
	}
	scan := func(args ...string) doc {
		t.Helper()
		r := mailkeep(t, append([]string{"scan", "--format", "json", "--config", cfg}, args...)...)
		if r.code != 0 {
			t.Fatalf("scan %v: exit %d: %s", args, r.code, r.stderr)
		}
		var d doc
		if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}

	d := scan()
	if len(d.Mailboxes) != 2 || d.Mailboxes[0].LimitBytes != 100 || d.Mailboxes[0].Level != "crit" {
		t.Errorf("with the file's roots and limit: %+v", d.Mailboxes)
	}
	d = scan("--limit", "1GiB")
	if len(d.Mailboxes) != 2 || d.Mailboxes[0].LimitBytes != 1<<30 || d.Mailboxes[0].Level != "ok" {
		t.Errorf("--limit overrides the file: %+v", d.Mailboxes)
	}
	d = scan(filepath.Join(spool, "bob", "mbox"))
	if len(d.Mailboxes) != 1 || !strings.HasSuffix(d.Mailboxes[0].Path, "bob/mbox") {
		t.Errorf("a PATH overrides the roots: %+v", d.Mailboxes)
	}
	if r := mailkeep(t, "check", "--config", cfg); r.code != 2 || !strings.HasPrefix(r.stdout, "MAILKEEP CRITICAL") {
		t.Errorf("check with the file's limit: exit %d, %q", r.code, r.stdout)
	}
	if r := mailkeep(t, "check", "--config", filepath.Join(dir, "missing.toml")); r.code != 3 || !strings.HasPrefix(r.stdout, "MAILKEEP UNKNOWN") {
		t.Errorf("check with a missing --config: exit %d, %q", r.code, r.stdout)
	}
	if r := mailkeep(t, "prune", "--dry-run", "--older-than", "1d", "--format", "json", "--config", cfg); r.code != 0 || strings.Count(r.stdout, `"path"`) != 2 {
		t.Errorf("prune with the file's roots: exit %d, %s %s", r.code, r.stdout, r.stderr)
	}
}

// TestConfigNotify: notify takes its addresses from the [notify] table.
func TestConfigNotify(t *testing.T) {
	dir := t.TempDir()
	mbox := filepath.Join(dir, "alice")
	if err := os.WriteFile(mbox, []byte("From a@example.org Mon Jan  6 10:00:00 2020\nSubject: s\n\nbody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "mailkeep.toml")
	conf := "[notify]\nto = \"{{.User}}@mail.example.net\"\nfrom = \"keeper@example.net\"\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mailkeep(t, "notify", "--config", cfg, "--dry-run", "--all", "--older-than", "1y", mbox)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "@mail.example.net>") || !strings.Contains(r.stdout, "From: <keeper@example.net>") {
		t.Errorf("notice does not use the file's to/from:\n%s", r.stdout)
	}
	r = mailkeep(t, "notify", "--config", cfg, "--dry-run", "--all", "--to", "{{.User}}@flag.example", "--older-than", "1y", mbox)
	if !strings.Contains(r.stdout, "@flag.example>") {
		t.Errorf("--to does not override the file:\n%s", r.stdout)
	}
}
