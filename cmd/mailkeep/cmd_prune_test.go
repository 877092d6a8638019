package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// pruneMessage is one mbox message received at d.
func pruneMessage(d time.Time, id string) string {
	return "From a@example.org " + d.UTC().Format("Mon Jan _2 15:04:05 2006") + "\n" +
		"From: =?UTF-8?Q?Ren=C3=A9?= <a@example.org>\nSubject: hello " + id + "\nMessage-ID: <" + id + ">\nStatus: RO\n\nbody\n\n"
}

// pruneTree makes a directory with two mboxes and a Maildir: in each, one
// message from 2020 and one from 2026.
func pruneTree(t *testing.T) (dir string, want map[string]string) {
	t.Helper()
	dir = t.TempDir()
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	young := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	want = map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		keep := pruneMessage(young, name+"-new@x")
		data := pruneMessage(old, name+"-old@x") + keep
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		want[name] = keep
	}
	md := filepath.Join(dir, "carol", "Maildir")
	for _, sub := range []string{"cur", "new", "tmp"} {
		os.MkdirAll(filepath.Join(md, sub), 0o700)
	}
	for i, d := range []time.Time{old, young} {
		p := filepath.Join(md, "cur", fmt.Sprintf("%d.M%dP1.host:2,S", d.Unix(), i))
		os.WriteFile(p, []byte("Subject: m\nMessage-ID: <c@x>\n\nbody\n"), 0o600)
		os.Chtimes(p, d, d)
	}
	return dir, want
}

type pruneDoc struct {
	DryRun    bool   `json:"dry_run"`
	Cutoff    string `json:"cutoff"`
	Mailboxes []struct {
		Path            string  `json:"path"`
		Format          string  `json:"format"`
		MessagesBefore  int     `json:"messages_before"`
		MessagesRemoved int     `json:"messages_removed"`
		BytesBefore     int64   `json:"bytes_before"`
		BytesRemoved    int64   `json:"bytes_removed"`
		KeptUndated     int     `json:"kept_undated"`
		Error           *string `json:"error"`
		// Issue 6.
		MessagesArchived int      `json:"messages_archived"`
		Archive          *string  `json:"archive"`
		ArchiveFiles     []string `json:"archive_files"`
		Mode             string   `json:"mode"`
		Removed          []struct {
			MessageID string `json:"message_id"`
			Date      string `json:"date"`
			Bytes     int64  `json:"bytes"`
			From      string `json:"from"`
			Subject   string `json:"subject"`
		} `json:"removed"`
	} `json:"mailboxes"`
}

func decodePrune(t *testing.T, r result) pruneDoc {
	t.Helper()
	var doc pruneDoc
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("bad JSON (%v):\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return doc
}

func TestPruneUsageErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"prune", dir}, "empty retention policy"},
		{[]string{"prune", "--older-than", "1y", "--before", "2020-01-01", dir}, "both set a cutoff"},
		{[]string{"prune", "--older-than", "6m", dir}, "ambiguous"},
		{[]string{"prune", "--before", "yesterday", dir}, "--before"},
		{[]string{"prune", "--older-than", "1y", "--date", "arrival", dir}, "--date"},
		{[]string{"prune", "--older-than", "1y", "--rewrite", "copy", dir}, "must be auto, rename or inplace"},
		{[]string{"prune", "--older-than", "1y", "--archive-compress", "zstd", dir}, "needs --archive"},
		{[]string{"prune", "--older-than", "1y", "--archive", dir, "--archive-compress", "lz4", dir}, "must be gzip or zstd"},
		{[]string{"prune", "--older-than", "1y", "--state-dir", "state", dir}, "absolute path"},
		{[]string{"prune", "--older-than", "1y", "--lock", "dotlock,nfs", dir}, "unknown lock kind"},
		{[]string{"prune", "--older-than", "1y", "--list", "--format", "csv", dir}, "--list"},
		{[]string{"prune", "--older-than", "1y", "--now", "today", dir}, "--now"},
		{[]string{"prune", "--older-than", "1y", "--larger-than", "big", dir}, "not a size"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			r := mailkeep(t, tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.msg) || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2 and %q", r.code, r.stdout, r.stderr, tt.msg)
			}
		})
	}
}

func TestPruneJSONAndDryRun(t *testing.T) {
	dir, want := pruneTree(t)
	args := []string{"prune", "--format", "json", "--older-than", "1y", "--now", "2026-06-01T00:00:00Z", "--list", dir}
	dry := mailkeep(t, append([]string{args[0], "-n"}, args[1:]...)...)
	if dry.code != 0 {
		t.Fatalf("dry run: exit %d\n%s", dry.code, dry.stderr)
	}
	for name, keep := range want {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); string(got) == keep {
			t.Fatalf("dry run changed %s", name)
		}
	}
	real := mailkeep(t, args...)
	if real.code != 0 {
		t.Fatalf("exit %d\n%s", real.code, real.stderr)
	}
	d, r := decodePrune(t, dry), decodePrune(t, real)
	if !d.DryRun || r.DryRun || r.Cutoff != "2025-06-01T00:00:00Z" {
		t.Errorf("dry_run %v/%v, cutoff %s", d.DryRun, r.DryRun, r.Cutoff)
	}
	d.DryRun = false
	if !reflect.DeepEqual(d, r) {
		t.Errorf("dry run\n%s\ndiffers from the real run\n%s", dry.stdout, real.stdout)
	}
	if len(r.Mailboxes) != 3 {
		t.Fatalf("mailboxes: %s", real.stdout)
	}
	for _, m := range r.Mailboxes {
		if m.Error != nil || m.MessagesBefore != 2 || m.MessagesRemoved != 1 || len(m.Removed) != 1 {
			t.Errorf("%s: %+v", m.Path, m)
		}
	}
	if got := r.Mailboxes[0].Removed[0]; got.From != "René <a@example.org>" || got.MessageID != "<alice-old@x>" ||
		got.Date != "2020-01-02T03:04:05Z" || got.Subject != "hello alice-old@x" {
		t.Errorf("removed entry: %+v", got)
	}
	for name, keep := range want {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); string(got) != keep {
			t.Errorf("%s = %q, want %q", name, got, keep)
		}
	}
	if n, _ := filepath.Glob(filepath.Join(dir, "carol/Maildir/cur/*")); len(n) != 1 {
		t.Errorf("Maildir cur/ holds %d files, want 1", len(n))
	}
	// A second run has nothing left to do.
	again := decodePrune(t, mailkeep(t, args...))
	for _, m := range again.Mailboxes {
		if m.MessagesRemoved != 0 || m.Removed == nil {
			t.Errorf("second run: %+v", m)
		}
	}
}

func TestPruneFailedMailboxExit1(t *testing.T) {
	dir, want := pruneTree(t)
	// bob is hard-linked: refused, and alice is still pruned.
	if err := os.Link(filepath.Join(dir, "bob"), filepath.Join(t.TempDir(), "bob-link")); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "bob"))
	r := mailkeep(t, "prune", "--format", "json", "--before", "2025-01-01", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "1 of 3 mailboxes failed") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	doc := decodePrune(t, r)
	for _, m := range doc.Mailboxes {
		failed := strings.HasSuffix(m.Path, "/bob")
		if (m.Error != nil) != failed {
			t.Errorf("%s: error %v", m.Path, m.Error)
		}
		if failed && (!strings.Contains(*m.Error, "hard links") || m.MessagesRemoved != 0) {
			t.Errorf("%s: %+v", m.Path, m)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "alice")); string(got) != want["alice"] {
		t.Error("alice not pruned")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "bob")); string(got) != string(before) {
		t.Error("bob changed")
	}
}

func TestPruneTableAndCSV(t *testing.T) {
	dir, _ := pruneTree(t)
	r := mailkeep(t, "prune", "-n", "--before", "2025-01-01", dir)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "2\t1\t") {
		t.Errorf("piped table: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = mailkeep(t, "prune", "-n", "--format", "csv", "--before", "2025-01-01", dir)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "path,format,messages_before,") || strings.Count(r.stdout, "\n") != 4 {
		t.Errorf("csv: exit %d %q", r.code, r.stdout)
	}
}

// TestPruneArchiveInplace: --archive with zstd and --rewrite inplace, end
// to end: the dry run counts what the real run archives, the archive files
// are where the help says, and a second run finds nothing to do.
func TestPruneArchiveInplace(t *testing.T) {
	dir, want := pruneTree(t)
	adir, state := t.TempDir(), t.TempDir()
	args := []string{"prune", "--format", "json", "--older-than", "1y", "--now", "2026-06-01T00:00:00Z",
		"--archive", adir, "--archive-compress", "zstd", "--rewrite", "inplace", "--state-dir", state, dir}
	dry := mailkeep(t, append([]string{args[0], "-n"}, args[1:]...)...)
	if dry.code != 0 {
		t.Fatalf("dry run: exit %d\n%s", dry.code, dry.stderr)
	}
	if ents, _ := os.ReadDir(adir); len(ents) != 0 {
		t.Fatal("the dry run wrote to the archive")
	}
	real := mailkeep(t, args...)
	if real.code != 0 {
		t.Fatalf("exit %d\n%s", real.code, real.stderr)
	}
	d, r := decodePrune(t, dry), decodePrune(t, real)
	owner := filepath.Join(adir, "root")
	if os.Getuid() != 0 {
		if u, err := user.Current(); err == nil {
			owner = filepath.Join(adir, u.Username)
		}
	}
	files := map[string]string{"alice": "alice", "bob": "bob", "Maildir": "carol.INBOX"}
	for i, m := range r.Mailboxes {
		if m.Error != nil || m.MessagesRemoved != 1 || m.MessagesArchived != 1 || d.Mailboxes[i].MessagesArchived != 1 {
			t.Errorf("%s: %+v (dry run archived %d)", m.Path, m, d.Mailboxes[i].MessagesArchived)
			continue
		}
		wantFile := filepath.Join(owner, files[filepath.Base(m.Path)]+".2020-01.mbox.zst")
		if m.Archive == nil || *m.Archive != owner || len(m.ArchiveFiles) != 1 || m.ArchiveFiles[0] != wantFile {
			t.Errorf("%s: archive %v %v, want %s", m.Path, m.Archive, m.ArchiveFiles, wantFile)
		}
		if _, err := os.Stat(wantFile); err != nil {
			t.Error(err)
		}
		if wantMode := map[string]string{"mbox": "inplace", "maildir": ""}[m.Format]; m.Mode != wantMode {
			t.Errorf("%s: mode %q, want %q", m.Path, m.Mode, wantMode)
		}
	}
	for name, keep := range want {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); string(got) != keep {
			t.Errorf("%s = %q, want %q", name, got, keep)
		}
	}
	again := decodePrune(t, mailkeep(t, args...))
	for _, m := range again.Mailboxes {
		if m.MessagesRemoved != 0 || m.MessagesArchived != 0 || m.Archive != nil {
			t.Errorf("second run: %+v", m)
		}
	}
}

// TestPruneAutoInplaceForDovecot: --rewrite auto rewrites in place an mbox
// that carries Dovecot's X-IMAPbase, says why on stderr and reports the
// mode; one without it is renamed.
func TestPruneAutoInplaceForDovecot(t *testing.T) {
	dir := t.TempDir()
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	young := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	dovecot := strings.Replace(pruneMessage(old, "d-old@x"), "Status: RO\n", "Status: RO\nX-IMAPbase: 1700000000 0000000003\nX-UID: 1\n", 1) +
		strings.Replace(pruneMessage(young, "d-new@x"), "Status: RO\n", "Status: RO\nX-UID: 2\n", 1)
	plain := pruneMessage(old, "p-old@x") + pruneMessage(young, "p-new@x")
	os.WriteFile(filepath.Join(dir, "dovecot"), []byte(dovecot), 0o600)
	os.WriteFile(filepath.Join(dir, "plain"), []byte(plain), 0o600)
	r := mailkeep(t, "prune", "--format", "json", "--older-than", "1y", "--now", "2026-06-01T00:00:00Z",
		"--state-dir", t.TempDir(), dir)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	modes := map[string]string{}
	for _, m := range decodePrune(t, r).Mailboxes {
		modes[filepath.Base(m.Path)] = m.Mode
	}
	if modes["dovecot"] != "inplace" || modes["plain"] != "rename" {
		t.Errorf("modes %v, want dovecot inplace and plain rename", modes)
	}
	if !strings.Contains(r.stderr, "dovecot: rewrote in place: the mailbox holds Dovecot/UW-IMAP state (X-IMAPbase)") {
		t.Errorf("stderr does not say why: %q", r.stderr)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "dovecot"))
	if want := "X-IMAPbase: 1700000000 0000000003\n"; !strings.Contains(string(got), want) || strings.Contains(string(got), "d-old@x") {
		t.Errorf("dovecot after the prune:\n%s", got)
	}
}

// An interrupted prune of a Maildir reports what it removed before it
// stopped: the report and the files gone always agree, wherever the
// SIGINT lands.
func TestPruneInterruptedMaildirReportsRemoved(t *testing.T) {
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	const n = 20000
	for _, delay := range []time.Duration{30 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond} {
		md := filepath.Join(t.TempDir(), "Maildir")
		for _, sub := range []string{"cur", "new", "tmp"} {
			os.MkdirAll(filepath.Join(md, sub), 0o700)
		}
		for i := range n {
			p := filepath.Join(md, "cur", fmt.Sprintf("%d.M%dP1.host:2,S", old.Unix(), i))
			if err := os.WriteFile(p, []byte("Subject: m\n\nbody\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(p, old, old)
		}
		cmd := exec.Command(binary, "prune", "--older-than", "1y", "--format", "json", md)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		ents, _ := os.ReadDir(filepath.Join(md, "cur"))
		gone := n - len(ents)
		if stdout.Len() == 0 && gone == 0 {
			continue // the signal came before mailkeep was listening
		}
		doc := decodePrune(t, result{stdout: stdout.String(), stderr: stderr.String()})
		reported := 0
		for _, mb := range doc.Mailboxes {
			reported += mb.MessagesRemoved
		}
		t.Logf("SIGINT after %s: exit %v, %d of %d removed, %d reported", delay, err, gone, n, reported)
		if reported != gone {
			t.Errorf("SIGINT after %s: %d files removed, the report says %d\n%s", delay, gone, reported, stderr.String())
		}
		if gone > 0 && gone < n {
			if len(doc.Mailboxes) != 1 || doc.Mailboxes[0].Error == nil || !strings.HasPrefix(*doc.Mailboxes[0].Error, "interrupted after") {
				t.Errorf("SIGINT after %s: the interrupted Maildir's error does not say so: %s", delay, stdout.String())
			}
		}
	}
}
