package retention

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// maildirMsg writes one message file with the given mtime; names with ":"
// are made here, at run time, never committed.
func maildirMsg(t *testing.T, dir, sub, name string, mtime time.Time, size int) string {
	t.Helper()
	p := filepath.Join(dir, sub, name)
	body := "From: a@example.org\nSubject: =?UTF-8?Q?caf=C3=A9?=\nMessage-ID: <" + name + ">\n\n"
	body += strings.Repeat("x", max(size-len(body)-1, 0)) + "\n"
	writeFile(t, p, []byte(body))
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	return p
}

func newMaildir(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "Maildir")
	for _, d := range []string{"cur", "new", "tmp", ".Trash/cur", ".Trash/new", ".Trash/tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestPruneMaildir(t *testing.T) {
	root := newMaildir(t)
	stamp := func(d time.Time, i int) string { return fmt.Sprintf("%d.M%dP1.host", d.Unix(), i) }
	oldRead := maildirMsg(t, root, "cur", stamp(oldDate, 1)+",S=500:2,S", oldDate, 500)
	oldNew := maildirMsg(t, root, "new", stamp(oldDate, 2), oldDate, 300)
	oldFlagged := maildirMsg(t, root, "cur", stamp(oldDate, 3)+":2,FS", oldDate, 200)
	young := maildirMsg(t, root, "cur", stamp(youngDate, 4)+":2,S", youngDate, 400)
	oldTmp := maildirMsg(t, root, "tmp", stamp(oldDate, 5), oldDate, 100)
	trashOld := maildirMsg(t, root, ".Trash/cur", stamp(oldDate, 6)+":2,S", oldDate, 250)
	for _, f := range []string{"dovecot-uidlist", "dovecot-keywords", "dovecot.index"} {
		writeFile(t, filepath.Join(root, f), []byte("3 V1 N5\n"))
	}
	writeFile(t, filepath.Join(root, "maildirsize"), []byte("100000S,100C\n1650 5\n"))

	opts := testOpts()
	opts.List = true
	dry := opts
	dry.DryRun = true
	dres, err := PruneMaildir(context.Background(), root, root, dry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{oldRead, oldNew} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("dry run removed %s", p)
		}
	}

	res, err := PruneMaildir(context.Background(), root, root, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.MessagesBefore != 4 || res.MessagesRemoved != 2 || res.BytesRemoved != 800 || res.BytesBefore != 1400 {
		t.Errorf("counts: %+v", res)
	}
	if dres.MessagesRemoved != res.MessagesRemoved || dres.BytesRemoved != res.BytesRemoved || dres.MessagesBefore != res.MessagesBefore {
		t.Errorf("dry run %+v differs from the real run %+v", dres, res)
	}
	if len(res.Removed) != 2 || res.Removed[0].Subject != "café" {
		t.Errorf("removed list: %+v", res.Removed)
	}
	for _, p := range []string{oldRead, oldNew} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s not removed", p)
		}
	}
	for _, p := range []string{oldFlagged, young, oldTmp, trashOld, filepath.Join(root, "dovecot-uidlist"),
		filepath.Join(root, "dovecot-keywords"), filepath.Join(root, "dovecot.index")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
	got, _ := os.ReadFile(filepath.Join(root, "maildirsize"))
	if string(got) != "100000S,100C\n1650 5\n-800 -2\n" {
		t.Errorf("maildirsize = %q", got)
	}

	// The Trash folder counts against the root's maildirsize.
	tres, err := PruneMaildir(context.Background(), filepath.Join(root, ".Trash"), root, opts)
	if err != nil || tres.MessagesRemoved != 1 {
		t.Fatalf("trash: %+v, %v", tres, err)
	}
	got, _ = os.ReadFile(filepath.Join(root, "maildirsize"))
	if !strings.HasSuffix(string(got), "-800 -2\n-250 -1\n") {
		t.Errorf("maildirsize = %q", got)
	}
}

func TestPruneMaildirMaildirsizeRecount(t *testing.T) {
	root := newMaildir(t)
	maildirMsg(t, root, "cur", "1000.M1P1.host:2,S", oldDate, 100)
	size := "100000S,100C\n" + strings.Repeat("10 1\n", (maildirsizeRecount-20)/5)
	writeFile(t, filepath.Join(root, "maildirsize"), []byte(size))
	res, err := PruneMaildir(context.Background(), root, "", testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "maildirsize")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("maildirsize of %d bytes not removed for a recount", len(size))
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "recount") {
		t.Errorf("notes: %q", res.Notes)
	}
}

func TestPruneMaildirCleanTmp(t *testing.T) {
	root := newMaildir(t)
	tmpFile := maildirMsg(t, root, "tmp", "1000.M1P1.host", oldDate, 100)
	opts := testOpts()
	opts.CleanTmp = true
	opts.Now = time.Now().Add(35 * time.Hour) // ctime is now: not old enough yet
	if _, err := PruneMaildir(context.Background(), root, "", opts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmpFile); err != nil {
		t.Fatal("young tmp file removed")
	}
	opts.Now = time.Now().Add(37 * time.Hour)
	res, err := PruneMaildir(context.Background(), root, "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmpFile); !errors.Is(err, os.ErrNotExist) {
		t.Error("tmp file older than 36 h not removed")
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "tmp/") {
		t.Errorf("notes: %q", res.Notes)
	}
}

func TestPruneMaildirSwappedFileLeftAlone(t *testing.T) {
	root := newMaildir(t)
	p := maildirMsg(t, root, "cur", "1000.M1P1.host:2,S", oldDate, 100)
	// Between the scan and the unlink, an MUA replaces the file: the scan
	// saw the old mtime, the file now has another one.
	testMaildirHook = func() { os.Chtimes(p, youngDate, youngDate) }
	defer func() { testMaildirHook = nil }()
	res, err := PruneMaildir(context.Background(), root, "", testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil || res.MessagesRemoved != 0 {
		t.Errorf("changed file removed (%v), res %+v", err, res)
	}
}

func TestPruneMaildirSymlinkRefused(t *testing.T) {
	root := newMaildir(t)
	link := filepath.Join(filepath.Dir(root), "link")
	os.Symlink(root, link)
	_, err := PruneMaildir(context.Background(), link, "", testOpts())
	if !errors.Is(err, ErrUnsafeMailbox) {
		t.Fatalf("err = %v, want ErrUnsafeMailbox", err)
	}
}
