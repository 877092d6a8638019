// Command mkdemo lays out mailkeep's demo mail store under a directory:
// the mbox spool bundled in testdata/demo/spool, plus Maildirs built here
// at run time, because Maildir names hold ':' and a Go module cannot ship
// such file names.
//
//	go run ./testdata/demo/mkdemo /tmp/mailkeep-demo
//
// With `mailkeep scan --limit 100KiB` the store shows every level: carol's
// mbox is critical, bob's and dave's Maildir (against its Maildir++ quota)
// are at warn, the rest are fine; lock files, notes and archives are
// skipped with a reason.
package main

import (
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mkdemo DIR")
		os.Exit(2)
	}
	if err := build(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mkdemo:", err)
		os.Exit(1)
	}
}

func build(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	spool := filepath.Join(dir, "var", "mail")
	if err := os.MkdirAll(spool, 0o755); err != nil {
		return err
	}
	_, self, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(self), "..", "spool")
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read bundled spool: %w", err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(spool, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	// Last month's archive of alice's mail, as an admin might leave it.
	if err := gzipFile(filepath.Join(spool, "alice"), filepath.Join(spool, "alice-2024.gz")); err != nil {
		return err
	}
	// bob.lock is a dotlock a crashed delivery left an hour ago: stale
	// by every agent's rules, so prune takes it over instead of waiting.
	if err := os.Chtimes(filepath.Join(spool, "bob.lock"), time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		return err
	}
	// A new message in alice's spool must still look new after a scan:
	// mtime after atime.
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(filepath.Join(spool, "alice"), old, time.Now().Add(-time.Hour)); err != nil {
		return err
	}

	start := time.Date(2023, 2, 1, 9, 0, 0, 0, time.UTC)
	// dave: a Maildir at 87% of its 60 kB Maildir++ quota.
	dave := filepath.Join(dir, "home", "dave", "Maildir")
	n, err := maildir(dave, "", 26, 2000, start)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dave, "maildirsize"), fmt.Appendf(nil, "60000S,1000C\n%d %d\n", n, 26), 0o600); err != nil {
		return err
	}
	// erin: a Maildir with Maildir++ folders, well within the limit.
	erin := filepath.Join(dir, "home", "erin", "Maildir")
	for _, f := range []struct {
		name  string
		count int
	}{{"", 8}, {".Sent", 5}, {".Trash", 12}} {
		if _, err := maildir(erin, f.name, f.count, 900, start); err != nil {
			return err
		}
	}
	return nil
}

// maildir writes count messages of about size bytes into the folder of the
// Maildir at root, the first few in new/ (unread), the rest read in cur/,
// dated a week apart from start. It returns the bytes written.
func maildir(root, folder string, count, size int, start time.Time) (int64, error) {
	dir := filepath.Join(root, folder)
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return 0, err
		}
	}
	var total int64
	for i := range count {
		date := start.Add(time.Duration(i) * 7 * 24 * time.Hour)
		body := strings.Repeat("Minutes of the weekly meeting, item by item.\n", size/45)
		msg := fmt.Sprintf("Return-Path: <boss@example.com>\nFrom: Boss <boss@example.com>\nTo: %s\nDate: %s\nSubject: Weekly meeting %d\nMessage-ID: <%d.%d@example.com>\n\n%s",
			filepath.Base(filepath.Dir(root)), date.Format(time.RFC1123Z), i+1, date.Unix(), i, body)
		base := fmt.Sprintf("%d.M%dP%d.demo,S=%d", date.Unix(), i, 4242, len(msg))
		name := filepath.Join(dir, "cur", base+":2,S")
		if i >= count-2 {
			name = filepath.Join(dir, "new", base)
		} else if i%9 == 4 {
			name = filepath.Join(dir, "cur", base+":2,FS")
		}
		if err := os.WriteFile(name, []byte(msg), 0o600); err != nil {
			return 0, err
		}
		if err := os.Chtimes(name, date, date); err != nil {
			return 0, err
		}
		total += int64(len(msg))
	}
	return total, nil
}

func gzipFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}
