package mboxscan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestWithDefaults(t *testing.T) {
	o := Options{}.WithDefaults()
	if o.Limit != 2147483648 || o.Warn != 80 || o.Crit != 95 || o.Large != 10_000_000 || o.Jobs < 1 {
		t.Errorf("defaults: %+v", o)
	}
	set := Options{Limit: 5, Warn: 1, Crit: 2, Large: 3, Jobs: 7}
	if got := set.WithDefaults(); got.Limit != 5 || got.Warn != 1 || got.Crit != 2 || got.Large != 3 || got.Jobs != 7 {
		t.Errorf("set values overridden: %+v", got)
	}
}

// A Maildir++ store: every folder is a row, and all of them carry the
// store's use against the quota in maildirsize.
func TestScanMaildirStore(t *testing.T) {
	root := t.TempDir()
	md := root + "/Maildir"
	makeMaildir(t, md)
	makeMaildir(t, md+"/.Trash")
	inbox := message("Subject: inbox") + strings.Repeat("i", 500)
	trash := message("Subject: trash") + strings.Repeat("t", 300)
	writeFile(t, md+"/cur/1500000000.1.h:2,S", inbox, time.Time{})
	writeFile(t, md+"/.Trash/cur/1500000001.2.h:2,ST", trash, time.Time{})
	store := int64(len(inbox) + len(trash))
	// The quota makes the store 90% full: warn.
	writeFile(t, md+"/maildirsize", fmt.Sprintf("%dS,100C\n%d 2\n", store*10/9, store), time.Time{})

	// A second store without quota is measured against --limit.
	other := root + "/other"
	makeMaildir(t, other)
	writeFile(t, other+"/new/1500000002.3.h", inbox, time.Time{})

	res, err := Scan(context.Background(), []string{root}, Options{Limit: int64(len(inbox)) * 100 / 96})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Skipped) != 0 {
		t.Errorf("skipped: %q", res.Skipped)
	}
	var rows []string
	for _, mb := range res.Mailboxes {
		rows = append(rows, fmt.Sprintf("%s folder=%q store=%s msgs=%d bytes=%d storebytes=%d limit=%d level=%s quota=%v",
			strings.TrimPrefix(mb.Path, root), mb.Folder, strings.TrimPrefix(mb.Store, root), mb.Messages, mb.Bytes,
			mb.StoreBytes, mb.LimitBytes, mb.Level, mb.Quota != nil))
	}
	limit := store * 10 / 9
	want := []string{
		fmt.Sprintf(`/Maildir folder="" store=/Maildir msgs=1 bytes=%d storebytes=%d limit=%d level=warn quota=true`, len(inbox), store, limit),
		fmt.Sprintf(`/Maildir/.Trash folder=".Trash" store=/Maildir msgs=1 bytes=%d storebytes=%d limit=%d level=warn quota=true`, len(trash), store, limit),
		fmt.Sprintf(`/other folder="" store=/other msgs=1 bytes=%d storebytes=%d limit=%d level=crit quota=false`, len(inbox), len(inbox), int64(len(inbox))*100/96),
	}
	if !slices.Equal(rows, want) {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

func TestScanMixed(t *testing.T) {
	root := buildTree(t)
	var mailboxes, progBytes atomic.Int64
	opts := Options{Jobs: 3, Progress: func(b int64, n int) {
		progBytes.Add(b)
		mailboxes.Add(int64(n))
	}}
	res, err := Scan(context.Background(), []string{root}, opts)
	if err != nil {
		t.Fatal(err)
	}
	found, skipped, _ := Discover(context.Background(), []string{root})
	if len(res.Mailboxes) != len(found) || !slices.Equal(res.Skipped, skipped) {
		t.Errorf("%d mailboxes of %d found; skipped %q, want %q", len(res.Mailboxes), len(found), res.Skipped, skipped)
	}
	if int(mailboxes.Load()) != len(found) {
		t.Errorf("progress counted %d mailboxes, want %d", mailboxes.Load(), len(found))
	}
	var sum int64
	for i, mb := range res.Mailboxes {
		sum += mb.Bytes
		if i > 0 && res.Mailboxes[i-1].Path >= mb.Path {
			t.Errorf("not sorted: %s before %s", res.Mailboxes[i-1].Path, mb.Path)
		}
		if mb.Owner == "" || mb.Level != LevelOK || mb.LimitBytes == 0 {
			t.Errorf("%s: owner %q level %q limit %d", mb.Path, mb.Owner, mb.Level, mb.LimitBytes)
		}
		if mb.Format == FormatMbox && (mb.Store != mb.Path || mb.StoreBytes != mb.Bytes) {
			t.Errorf("%s: mbox store %q/%d", mb.Path, mb.Store, mb.StoreBytes)
		}
	}
	if progBytes.Load() > sum {
		t.Errorf("progress reported %d bytes, more than the %d scanned", progBytes.Load(), sum)
	}

	// The same with one job.
	res1, err := Scan(context.Background(), []string{root}, Options{Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range res1.Mailboxes {
		a, b := res1.Mailboxes[i], res.Mailboxes[i]
		if a.Path != b.Path || a.Messages != b.Messages || a.Bytes != b.Bytes {
			t.Errorf("jobs 1 vs 3: %+v vs %+v", a, b)
		}
	}
}

// Mailboxes that vanish between discovery and their scan are skipped
// with a reason; the others are scanned.
func TestScanLocationsVanished(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root+"/stays", mboxData, time.Time{})
	writeFile(t, root+"/goes", mboxData, time.Time{})
	makeMaildir(t, root+"/md")
	makeMaildir(t, root+"/md/.Gone")
	writeFile(t, root+"/notmbox", mboxData, time.Time{})
	found, _, err := Discover(context.Background(), []string{root})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 5 {
		t.Fatalf("found %v", found)
	}
	if err := os.Remove(root + "/goes"); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root + "/md/.Gone"); err != nil {
		t.Fatal(err)
	}
	// Replaced by something that is not an mbox since discovery.
	writeFile(t, root+"/notmbox", "\x00\x01binary", time.Time{})
	res, err := ScanLocations(context.Background(), found, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, mb := range res.Mailboxes {
		paths = append(paths, mb.Path)
	}
	if want := []string{root + "/md", root + "/stays"}; !slices.Equal(paths, want) {
		t.Errorf("scanned %q, want %q", paths, want)
	}
	if len(res.Skipped) != 3 {
		t.Fatalf("skipped %q", res.Skipped)
	}
	for i, want := range []string{"vanished during the scan", "vanished during the scan", "scan failed: "} {
		if !strings.HasPrefix(res.Skipped[i].Reason, want) {
			t.Errorf("skipped %s: reason %q, want %q…", res.Skipped[i].Path, res.Skipped[i].Reason, want)
		}
	}
}

func TestScanCancelled(t *testing.T) {
	root := buildTree(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res, err := Scan(ctx, []string{root}, Options{}); !errors.Is(err, context.Canceled) || res != nil {
		t.Errorf("got %v, %v", res, err)
	}
}

// fileState is what a read-only scan must leave as it was.
type fileState struct {
	size         int64
	mtime, atime syscall.Timespec
}

// walkNoatime calls fn for root and everything under it, listing
// directories with O_NOATIME: a plain walk would itself move the
// directories' access times and spoil the comparison.
func walkNoatime(t *testing.T, root string, fn func(path string, d fs.DirEntry)) {
	t.Helper()
	fn(root, nil)
	ents, err := readDirSorted(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(root, e.Name())
		if e.IsDir() {
			walkNoatime(t, p, fn)
		} else {
			fn(p, e)
		}
	}
}

func snapshot(t *testing.T, root string) map[string]fileState {
	t.Helper()
	m := map[string]fileState{}
	walkNoatime(t, root, func(p string, _ fs.DirEntry) {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		m[p] = fileState{st.Size, st.Mtim, st.Atim}
	})
	return m
}

// A scan changes no name, size, mtime or atime, of files or directories,
// and leaves new mail in new/.
func TestScanReadOnly(t *testing.T) {
	root := buildTree(t)
	// Access times older than the modification times, so that a read
	// under relatime would update them.
	past := time.Now().Add(-48 * time.Hour)
	walkNoatime(t, root, func(p string, d fs.DirEntry) {
		if d != nil && (d.Type()&fs.ModeSymlink != 0 || d.Type()&fs.ModeNamedPipe != 0) {
			return
		}
		if err := os.Chtimes(p, past.Add(-time.Hour), past); err != nil {
			t.Fatal(err)
		}
	})
	before := snapshot(t, root)

	// The check can fail: a plain read does move an access time here.
	probe := root + "/sub/deeper/saved"
	if _, err := os.ReadFile(probe); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(probe, &st); err != nil {
		t.Fatal(err)
	}
	if st.Atim == before[probe].atime {
		t.Log("this file system does not update access times on read: the atime check proves less")
	}
	if err := os.Chtimes(probe, past.Add(-time.Hour), past); err != nil {
		t.Fatal(err)
	}
	before[probe] = snapshot(t, root)[probe]

	if _, err := Scan(context.Background(), []string{root}, Options{}); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, root)
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			t.Errorf("%s: gone after the scan", p)
		case a != b:
			t.Errorf("%s: changed by the scan: %+v → %+v", p, b, a)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: created by the scan", p)
		}
	}
	if _, err := os.Stat(root + "/Maildir/new/1500000001.2.h"); err != nil {
		t.Errorf("new mail moved: %v", err)
	}
}

func TestAssess(t *testing.T) {
	q := &Quota{LimitBytes: 1000}
	res := &Result{Mailboxes: []Mailbox{
		{Path: "/m/exact-warn", Format: FormatMbox, Bytes: 80},
		{Path: "/m/below-warn", Format: FormatMbox, Bytes: 79},
		{Path: "/m/exact-crit", Format: FormatMbox, Bytes: 95},
		{Path: "/m/over", Format: FormatMbox, Bytes: 150},
		{Path: "/md", Format: FormatMaildir, Store: "/md", Bytes: 600, Quota: q},
		{Path: "/md/.Trash", Format: FormatMaildir, Store: "/md", Folder: ".Trash", Bytes: 350, Quota: q},
		{Path: "/md2/.Junk", Format: FormatMaildir, Store: "/md2", Folder: ".Junk", Bytes: 10, Quota: &Quota{LimitMessages: 5}},
	}}
	Assess(res, Options{Limit: 100})
	want := []struct {
		store       string
		storeBytes  int64
		limit       int64
		level       Level
		ratioX1000_ int64
	}{
		{"/m/exact-warn", 80, 100, LevelWarn, 800},
		{"/m/below-warn", 79, 100, LevelOK, 790},
		{"/m/exact-crit", 95, 100, LevelCrit, 950},
		{"/m/over", 150, 100, LevelCrit, 1500},
		{"/md", 950, 1000, LevelCrit, 950},
		{"/md", 950, 1000, LevelCrit, 950},
		{"/md2", 10, 100, LevelOK, 100},
	}
	for i, w := range want {
		mb := res.Mailboxes[i]
		if mb.Store != w.store || mb.StoreBytes != w.storeBytes || mb.LimitBytes != w.limit || mb.Level != w.level ||
			int64(mb.UsedRatio*1000+0.5) != w.ratioX1000_ {
			t.Errorf("%s: store %s %d limit %d level %s ratio %v", mb.Path, mb.Store, mb.StoreBytes, mb.LimitBytes, mb.Level, mb.UsedRatio)
		}
	}
}

func TestOwnerName(t *testing.T) {
	if got := OwnerName(0); got != "root" {
		t.Errorf("OwnerName(0) = %q, want root", got)
	}
	const nobody = 3999999999 // no such user
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if got := OwnerName(nobody); got != "3999999999" {
				t.Errorf("OwnerName(%d) = %q", nobody, got)
			}
		})
	}
	wg.Wait()
	fi, err := os.Lstat(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var mb Mailbox
	FillOwner(&mb, fi)
	if mb.UID != os.Getuid() || mb.GID != os.Getgid() || mb.Owner == "" {
		t.Errorf("FillOwner: %q %d %d", mb.Owner, mb.UID, mb.GID)
	}
}

// BenchmarkScanMaildir scans a generated 10,000-message Maildir.
func BenchmarkScanMaildir(b *testing.B) {
	dir := b.TempDir()
	makeMaildir(b, dir)
	body := strings.Repeat("a line of body text that is long enough to matter\n", 40)
	for i := range 10_000 {
		sub, name := "cur", fmt.Sprintf("%d.M%dP1.bench,S=%d:2,S", 1600000000+i*60, i, 0)
		if i%10 == 0 {
			sub, name = "new", fmt.Sprintf("%d.M%dP1.bench", 1600000000+i*60, i)
		}
		data := message("Return-Path: <a@example.org>", "From: a@example.org", "Subject: message "+fmt.Sprint(i),
			"Date: Mon, 2 Jan 2023 10:00:00 +0000", "Message-ID: <"+fmt.Sprint(i)+"@bench>") + body
		name = strings.Replace(name, ",S=0", fmt.Sprintf(",S=%d", len(data)), 1)
		if err := os.WriteFile(filepath.Join(dir, sub, name), []byte(data), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := Scan(context.Background(), []string{dir}, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if res.Mailboxes[0].Messages != 10_000 {
			b.Fatalf("messages %d", res.Mailboxes[0].Messages)
		}
	}
}
