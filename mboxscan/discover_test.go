package mboxscan

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const mboxData = "From alice@example.org Mon Jan  1 10:00:00 2024\nSubject: hi\n\nhello\n\n"

// buildTree creates a directory with one of everything Discover must tell
// apart, and returns it.
func buildTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	w := func(rel, data string) { writeFile(t, filepath.Join(root, rel), data, time.Time{}) }
	w("inbox", mboxData)
	w("blank-first", "\n\n"+mboxData)
	w("empty", "")
	w(".gitkeep", "")
	w("user.lock", "")
	w("other.lck", "123")
	w("dovecot.index.log", "\x00\x01")
	w("inbox.mailkeep-tmp.12345", mboxData)
	w(".inbox.mailkeep-rescue.1", mboxData)
	w("bob.2024-03.idx", "> 0 bob.2024-03.mbox.gz\n")
	w("old.mbox.gz", "\x1f\x8b\x08\x00")
	w("Archive.ZIP", "PK\x03\x04")
	w("gzipped", "\x1f\x8b\x08\x00rest")
	w("zstd", "\x28\xb5\x2f\xfdrest")
	w("bzip", "BZh91AY&SY")
	w("xz", "\xfd7zXZ\x00rest")
	w("binary", "\x7fELF\x02\x01\x01\x00\x00")
	w("notes.txt", "just some text\nno From_ line here\n")
	w("single.eml", "Subject: lone\nFrom: a@b\n\nbody\n")
	w("sub/deeper/saved", mboxData)
	w(".imap/INBOX/dovecot.index", "x")
	if err := os.Symlink(filepath.Join(root, "inbox"), filepath.Join(root, "link-to-file")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "sub"), filepath.Join(root, "link-to-dir")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	// A Maildir++ store with folders, control files and oddities.
	md := filepath.Join(root, "Maildir")
	makeMaildir(t, md)
	makeMaildir(t, md+"/.Trash")
	makeMaildir(t, md+"/.Sent")
	if err := os.Mkdir(md+"/.NoDirsYet", 0o755); err != nil {
		t.Fatal(err)
	}
	makeMaildir(t, md+"/..Bad")
	w("Maildir/cur/1500000000.1.h:2,S", message("Subject: a"))
	w("Maildir/new/1500000001.2.h", message("Subject: b"))
	w("Maildir/tmp/1500000002.3.h", message("Subject: in delivery"))
	w("Maildir/.Trash/cur/1500000003.4.h:2,ST", message("Subject: c"))
	w("Maildir/.Trash/maildirfolder", "")
	w("Maildir/.Trash/dovecot-uidlist", "3 V1 N2\n")
	w("Maildir/maildirsize", "100000S\n")
	w("Maildir/dovecot-uidlist", "3 V1 N2\n")
	w("Maildir/dovecot.index.cache", "x")
	w("Maildir/subscriptions", "Trash\n")
	w("Maildir/stray.mbox", mboxData)
	makeMaildir(t, md+"/nested") // a plain subdirectory that is a Maildir: a store of its own
	return root
}

func TestDiscover(t *testing.T) {
	root := buildTree(t)
	found, skipped, err := Discover(context.Background(), []string{root})
	if err != nil {
		t.Fatal(err)
	}
	md := root + "/Maildir"
	wantFound := []Location{
		{root + "/Maildir", FormatMaildir, md, ""},
		{root + "/Maildir/.NoDirsYet", FormatMaildir, md, ".NoDirsYet"},
		{root + "/Maildir/.Sent", FormatMaildir, md, ".Sent"},
		{root + "/Maildir/.Trash", FormatMaildir, md, ".Trash"},
		{root + "/Maildir/nested", FormatMaildir, md + "/nested", ""},
		{root + "/Maildir/stray.mbox", FormatMbox, md + "/stray.mbox", ""},
		{root + "/blank-first", FormatMbox, root + "/blank-first", ""},
		{root + "/empty", FormatMbox, root + "/empty", ""},
		{root + "/inbox", FormatMbox, root + "/inbox", ""},
		{root + "/sub/deeper/saved", FormatMbox, root + "/sub/deeper/saved", ""},
	}
	if !slices.Equal(found, wantFound) {
		t.Errorf("found:\n%s\nwant:\n%s", fmtLocs(found), fmtLocs(wantFound))
	}
	wantSkipped := map[string]string{
		".gitkeep":                 "not a mailbox: empty hidden file",
		".imap":                    "index directory",
		"Archive.ZIP":              "archive",
		"Maildir/..Bad":            `not a Maildir++ folder: name starts with ".."`,
		"binary":                   "not a mailbox: binary file",
		"bzip":                     "archive (bzip2 data)",
		"dovecot.index.log":        "index file",
		"fifo":                     "not a mailbox: a named pipe",
		"gzipped":                  "archive (gzip data)",
		"inbox.mailkeep-tmp.12345": "temp file",
		".inbox.mailkeep-rescue.1": ReasonRescue,
		"bob.2024-03.idx":          ReasonArchive,
		"link-to-dir":              "symlink, not followed",
		"link-to-file":             "symlink, not followed",
		"notes.txt":                "not a mailbox: no From_ line at the start",
		"old.mbox.gz":              "archive",
		"other.lck":                "lock file",
		"single.eml":               "not a mailbox: a single message without a From_ line",
		"user.lock":                "lock file",
		"xz":                       "archive (xz data)",
		"zstd":                     "archive (zstd data)",
	}
	got := map[string]string{}
	for i, s := range skipped {
		got[strings.TrimPrefix(s.Path, root+"/")] = s.Reason
		if i > 0 && skipped[i-1].Path >= s.Path {
			t.Errorf("skipped not sorted: %q before %q", skipped[i-1].Path, s.Path)
		}
	}
	for p, want := range wantSkipped {
		if got[p] != want {
			t.Errorf("skipped %s: reason %q, want %q", p, got[p], want)
		}
	}
	for p, reason := range got {
		if _, ok := wantSkipped[p]; !ok {
			t.Errorf("unexpected skip %s (%s)", p, reason)
		}
	}
}

func fmtLocs(locs []Location) string {
	var b strings.Builder
	for _, l := range locs {
		b.WriteString("  " + l.Path + " " + string(l.Format) + " store=" + l.Store + " folder=" + l.Folder + "\n")
	}
	return b.String()
}

func TestDiscoverRoots(t *testing.T) {
	root := buildTree(t)
	md := root + "/Maildir"
	tests := []struct {
		name        string
		roots       []string
		wantFound   []Location
		wantSkipped []Skipped
	}{
		{"mbox file", []string{root + "/inbox"},
			[]Location{{root + "/inbox", FormatMbox, root + "/inbox", ""}}, nil},
		{"empty file", []string{root + "/empty"},
			[]Location{{root + "/empty", FormatMbox, root + "/empty", ""}}, nil},
		{"folder as root keeps its store", []string{md + "/.Trash/"},
			[]Location{{md + "/.Trash", FormatMaildir, md, ".Trash"}}, nil},
		{"symlink to a directory as root is followed (RHEL's /var/mail)", []string{root + "/link-to-dir"},
			[]Location{{root + "/sub/deeper/saved", FormatMbox, root + "/sub/deeper/saved", ""}}, nil},
		{"symlink to file root", []string{root + "/link-to-file"},
			nil, []Skipped{{root + "/link-to-file", "symlink, not followed"}}},
		{"missing root", []string{root + "/nope"},
			nil, []Skipped{{root + "/nope", "does not exist"}}},
		{"overlapping roots counted once", []string{root + "/sub", root + "/sub/deeper/saved", root + "/sub/"},
			[]Location{{root + "/sub/deeper/saved", FormatMbox, root + "/sub/deeper/saved", ""}}, nil},
		{"lock file root", []string{root + "/user.lock"},
			nil, []Skipped{{root + "/user.lock", "lock file"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, skipped, err := Discover(context.Background(), tt.roots)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(found, tt.wantFound) {
				t.Errorf("found:\n%s\nwant:\n%s", fmtLocs(found), fmtLocs(tt.wantFound))
			}
			if !slices.Equal(skipped, tt.wantSkipped) {
				t.Errorf("skipped %q, want %q", skipped, tt.wantSkipped)
			}
		})
	}
}

func TestDiscoverUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: permissions do not stop reads (the vanishing-file tests cover the error path)")
	}
	root := t.TempDir()
	writeFile(t, root+"/secret", mboxData, time.Time{})
	if err := os.Chmod(root+"/secret", 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(root+"/closed", 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(root+"/closed", 0o755)
	_, skipped, err := Discover(context.Background(), []string{root})
	if err != nil {
		t.Fatal(err)
	}
	want := []Skipped{{root + "/closed", "permission denied"}, {root + "/secret", "permission denied"}}
	if !slices.Equal(skipped, want) {
		t.Errorf("skipped %q, want %q", skipped, want)
	}
}

func TestDiscoverCorpusSubmaildirs(t *testing.T) {
	dir := corpusDir(t, "staktrace-maildir/testdata/submaildirs")
	found, skipped, err := Discover(context.Background(), []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	var folders []string
	for _, l := range found {
		if l.Format != FormatMaildir || l.Store != dir {
			t.Errorf("unexpected location %+v", l)
		}
		folders = append(folders, l.Folder)
	}
	if want := []string{"", ".Subdir1", ".Subdir2"}; !slices.Equal(folders, want) {
		t.Errorf("folders %q, want %q", folders, want)
	}
	for _, s := range skipped {
		if strings.HasSuffix(s.Path, "..Subdir3") {
			return
		}
	}
	t.Errorf("..Subdir3 not skipped: %q", skipped)
}

func TestDiscoverCorpusMaildirs(t *testing.T) {
	for _, rel := range []string{"Email-Folder/t/testmaildir", "mox/testdata/importtest.maildir", "mu/testdata/testdir"} {
		dir := corpusDir(t, rel)
		found, skipped, err := Discover(context.Background(), []string{dir})
		if err != nil {
			t.Fatal(err)
		}
		// tmp/, cur/, new/ and dovecot-keywords are the Maildir's own.
		if len(found) != 1 || found[0].Path != dir || len(skipped) != 0 {
			t.Errorf("%s: found %v, skipped %q", rel, found, skipped)
		}
	}
}
