package retention

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-mbox"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// archiveFiles lists the archive files under dir, sorted.
func archiveFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && (strings.HasSuffix(p, ".mbox.gz") || strings.HasSuffix(p, ".mbox.zst")) {
			out = append(out, p)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// decompress reads every member or frame of an archive file.
func decompress(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader
	if strings.HasSuffix(path, ".zst") {
		d, err := zstd.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		r = d
	} else {
		z, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = z
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decompress %s: %v", path, err)
	}
	return b
}

// readArchives is everything archived under dir, the files in name order.
func readArchives(t *testing.T, dir string) []byte {
	t.Helper()
	var b []byte
	for _, f := range archiveFiles(t, dir) {
		b = append(b, decompress(t, f)...)
	}
	return b
}

func TestArchiveMbox(t *testing.T) {
	for _, comp := range []Compression{CompressGzip, CompressZstd} {
		for _, mode := range []RewriteMode{RewriteRename, RewriteInplace} {
			t.Run(fmt.Sprintf("%s/%s", comp, mode), func(t *testing.T) {
				c := mixedCase("\n")
				path := filepath.Join(t.TempDir(), "inbox")
				writeFile(t, path, c.all.Bytes())
				adir := filepath.Join(t.TempDir(), "archive")
				opts := testOpts()
				opts.Rewrite, opts.StateDir = mode, t.TempDir()
				opts.Archive = ArchiveOptions{Dir: adir, Compress: comp}
				res, err := PruneMbox(context.Background(), path, opts)
				if err != nil {
					t.Fatal(err)
				}
				if got, _ := os.ReadFile(path); !bytes.Equal(got, c.kept.Bytes()) {
					t.Fatal("mailbox is not the kept messages")
				}
				if res.MessagesArchived != c.removed {
					t.Errorf("archived %d, want %d", res.MessagesArchived, c.removed)
				}
				files := archiveFiles(t, adir)
				suffix := ".mbox.gz"
				if comp == CompressZstd {
					suffix = ".mbox.zst"
				}
				want := filepath.Join(adir, ownerName(os.Getuid()), "inbox."+oldDate.UTC().Format("2006-01")+suffix)
				if len(files) != 1 || files[0] != want || !slices.Equal(res.Archives, files) {
					t.Fatalf("archive files %v (result %v), want %s", files, res.Archives, want)
				}
				var st unix.Stat_t
				unix.Stat(want, &st)
				if st.Mode&0o777 != 0o600 || int(st.Uid) != os.Getuid() {
					t.Errorf("archive mode %o uid %d", st.Mode&0o777, st.Uid)
				}
				if got := readArchives(t, adir); !bytes.Equal(got, c.gone.Bytes()) {
					t.Fatalf("archive holds %d bytes, want the %d of the removed messages", len(got), c.gone.Len())
				}

				// The same messages again (a run killed after archiving,
				// before the mailbox changed): not archived twice.
				writeFile(t, path, c.all.Bytes())
				before, _ := os.Stat(want)
				res, err = PruneMbox(context.Background(), path, opts)
				if err != nil {
					t.Fatal(err)
				}
				after, _ := os.Stat(want)
				if res.MessagesArchived != c.removed || after.Size() != before.Size() {
					t.Errorf("second run: archived %d (want %d), archive %d → %d bytes", res.MessagesArchived, c.removed, before.Size(), after.Size())
				}
				if got, _ := os.ReadFile(path); !bytes.Equal(got, c.kept.Bytes()) {
					t.Fatal("second run: mailbox is not the kept messages")
				}

				// Other messages of the same month: a new member appended.
				c2 := &mboxCase{}
				c2.add(true, "later@test", "", "another old one\n", "\n")
				c2.add(false, "young@test", "", "young\n", "\n")
				writeFile(t, path, c2.all.Bytes())
				if res, err = PruneMbox(context.Background(), path, opts); err != nil || res.MessagesArchived != 1 {
					t.Fatalf("third run: %v, archived %d", err, res.MessagesArchived)
				}
				if got := readArchives(t, adir); string(got) != c.gone.String()+c2.gone.String() {
					t.Fatal("third run: archive is not both runs' messages")
				}
			})
		}
	}
}

// TestArchivePeriods: one file per received month, and a last message
// without its final newline still ends a line in the archive.
func TestArchivePeriods(t *testing.T) {
	jan := time.Date(2025, 1, 15, 10, 0, 0, 0, time.UTC)
	feb := time.Date(2025, 2, 15, 10, 0, 0, 0, time.UTC)
	m1 := testMessage(jan, "j1@test", "", "jan\n", "\n")
	m2 := testMessage(feb, "f1@test", "", "feb\n", "\n")
	m3 := testMessage(jan, "j2@test", "", "jan again\n", "\n")
	m4 := strings.TrimSuffix(testMessage(feb, "f2@test", "", "feb, no final newline\n", "\n"), "\n\n")
	path := filepath.Join(t.TempDir(), "box")
	writeFile(t, path, []byte(m1+m2+m3+m4))
	adir := t.TempDir()
	opts := testOpts()
	opts.Archive.Dir = adir
	res, err := PruneMbox(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.MessagesArchived != 4 || len(res.Archives) != 2 {
		t.Fatalf("archived %d into %v", res.MessagesArchived, res.Archives)
	}
	owner := filepath.Join(adir, ownerName(os.Getuid()))
	if got := string(decompress(t, filepath.Join(owner, "box.2025-01.mbox.gz"))); got != m1+m3 {
		t.Errorf("January: %q", got)
	}
	if got := string(decompress(t, filepath.Join(owner, "box.2025-02.mbox.gz"))); got != m2+m4+"\n" {
		t.Errorf("February: %q", got)
	}
	if got, _ := os.ReadFile(path); len(got) != 0 {
		t.Errorf("mailbox not emptied: %q", got)
	}
}

// TestArchiveMaildirRoundTrip: Maildir → archive → go-mbox's Reader gives
// back each message, as go-mbox gives them (CRLF line ends).
func TestArchiveMaildirRoundTrip(t *testing.T) {
	for _, comp := range []Compression{CompressGzip, CompressZstd} {
		t.Run(string(comp), func(t *testing.T) {
			root := newMaildir(t)
			msgs := []struct {
				sub, body string
				old       bool
			}{
				{"cur", "Return-Path: <alice@example.org>\nFrom: alice@example.org\nMessage-ID: <1@x>\n\nhello\nFrom here on, an unescaped line\n", true},
				{"new", "From: bob@example.org\nMessage-ID: <2@x>\n\nno envelope\n", true},
				{"cur", "Return-Path: <>\r\nFrom: MAILER-DAEMON\r\nMessage-ID: <3@x>\r\n\r\na bounce\r\nwith CRLF\r\n", true},
				{"cur", "From: young@example.org\nMessage-ID: <4@x>\n\nkept\n", false},
			}
			var want []string
			for i, m := range msgs {
				d := youngDate
				name := fmt.Sprintf("%d.M%dP1.host", d.Unix(), i)
				if m.old {
					d = oldDate.Add(time.Duration(i) * time.Hour)
					name = fmt.Sprintf("%d.M%dP1.host", d.Unix(), i)
					want = append(want, strings.ReplaceAll(strings.ReplaceAll(m.body, "\r\n", "\n"), "\n", "\r\n"))
				}
				if m.sub == "cur" {
					name += ":2,S"
				}
				p := filepath.Join(root, m.sub, name)
				writeFile(t, p, []byte(m.body))
				os.Chtimes(p, d, d)
			}
			adir := t.TempDir()
			opts := testOpts()
			opts.Archive = ArchiveOptions{Dir: adir, Compress: comp}
			res, err := PruneMaildir(context.Background(), root, root, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.MessagesRemoved != 3 || res.MessagesArchived != 3 {
				t.Fatalf("removed %d archived %d, want 3 and 3", res.MessagesRemoved, res.MessagesArchived)
			}
			files := archiveFiles(t, adir)
			if len(files) != 1 || !strings.Contains(files[0], "/"+filepath.Base(filepath.Dir(root))+".INBOX.") {
				t.Fatalf("archive files: %v", files)
			}
			raw := decompress(t, files[0])
			var got []string
			r := mbox.NewReader(bytes.NewReader(raw))
			for {
				m, err := r.NextMessage()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(m)
				got = append(got, string(b))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("read back:\n%q\nwant\n%q", got, want)
			}
			for _, from := range []string{
				"From alice@example.org " + oldDate.UTC().Format(time.ANSIC) + "\n",
				"From MAILER-DAEMON " + oldDate.Add(time.Hour).UTC().Format(time.ANSIC) + "\n",
				"From MAILER-DAEMON " + oldDate.Add(2*time.Hour).UTC().Format(time.ANSIC) + "\n",
			} {
				if !bytes.Contains(raw, []byte(from)) {
					t.Errorf("archive lacks the From_ line %q", from)
				}
			}
			if !bytes.Contains(raw, []byte("\n>From here on")) {
				t.Error("a body line starting with From was not escaped")
			}
			left, _ := os.ReadDir(filepath.Join(root, "cur"))
			newLeft, _ := os.ReadDir(filepath.Join(root, "new"))
			if len(left) != 1 || len(newLeft) != 0 {
				t.Errorf("left in cur/ %d, new/ %d; want 1, 0", len(left), len(newLeft))
			}
		})
	}
}

// TestArchiveCutsUnfinishedMember: an index whose last member was begun and
// not committed gets that member cut off; bytes nobody's index mentions
// are kept.
func TestArchiveIndex(t *testing.T) {
	idx := indexHeader + "> 0 a.mbox.gz\nh " + strings.Repeat("ab", 32) + "\n@ 100 a.mbox.gz\n> 100 a.mbox.gz\nh " + strings.Repeat("cd", 32) + "\n"
	st, err := parseIndex([]byte(idx))
	if err != nil {
		t.Fatal(err)
	}
	var ab, cd [32]byte
	for i := range ab {
		ab[i], cd[i] = 0xab, 0xcd
	}
	if st.hashes[ab] != 1 || st.hashes[cd] != 0 || st.committed["a.mbox.gz"] != 100 ||
		st.pending == nil || st.pending.off != 100 || st.good != int64(strings.Index(idx, "> 100")) {
		t.Errorf("parsed %+v pending %+v", st, st.pending)
	}
	if _, err := parseIndex([]byte(indexHeader + "x y\n")); err == nil {
		t.Error("unknown line accepted")
	}
}

// TestCrashArchivePoints kills a prune with --archive after the archive
// is written and after its index is: the mailbox is unchanged, and the
// rerun leaves each removed message in the archive exactly once.
func TestCrashArchivePoints(t *testing.T) {
	c := crashCase()
	for _, mode := range []string{"rename", "inplace"} {
		for _, point := range []string{"mid-archive", "after-archive", "after-index"} {
			for _, comp := range []string{"gzip", "zstd"} {
				if comp == "zstd" && point == "mid-archive" {
					continue
				}
				t.Run(mode+"/"+point+"/"+comp, func(t *testing.T) {
					path := filepath.Join(t.TempDir(), "inbox")
					writeFile(t, path, c.all.Bytes())
					adir := t.TempDir()
					env := []string{"MAILKEEP_REWRITE=" + mode, "MAILKEEP_STATE=" + t.TempDir(),
						"MAILKEEP_ARCHIVE=" + adir, "MAILKEEP_COMPRESS=" + comp}
					cmd, out := runHelperPrune(t, path, append(env, "MAILKEEP_TEST_CRASH_AT="+point)...)
					if err := cmd.Run(); !killedBySIGKILL(err) {
						t.Fatalf("helper was not killed at %s: %v\n%s", point, err, out)
					}
					if got := checkOldOrNew(t, path, c); got != "old" {
						t.Fatalf("mailbox changed before the archive was committed")
					}
					cmd, out = runHelperPrune(t, path, env...)
					if err := cmd.Run(); err != nil {
						t.Fatalf("rerun: %v\n%s", err, out)
					}
					if !strings.Contains(out.String(), fmt.Sprintf("removed %d archived %d", c.removed, c.removed)) {
						t.Errorf("rerun output: %s", out)
					}
					if got, _ := os.ReadFile(path); !bytes.Equal(got, c.kept.Bytes()) {
						t.Fatal("after the rerun the mailbox is not the intended result")
					}
					if got := readArchives(t, adir); !bytes.Equal(got, c.gone.Bytes()) {
						t.Fatalf("archive holds %d bytes, want exactly the removed messages (%d)", len(got), c.gone.Len())
					}
				})
			}
		}
	}
}

// TestCrashArchiveRandom kills prunes with --archive at random moments, in
// both modes: whatever the moment, after a rerun the mailbox is the
// intended result and each removed message is archived exactly once.
func TestCrashArchiveRandom(t *testing.T) {
	c := crashCase()
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 8; i++ {
		mode := []string{"rename", "inplace"}[i%2]
		path := filepath.Join(t.TempDir(), "inbox")
		writeFile(t, path, c.all.Bytes())
		adir := t.TempDir()
		env := []string{"MAILKEEP_REWRITE=" + mode, "MAILKEEP_STATE=" + t.TempDir(), "MAILKEEP_ARCHIVE=" + adir}
		cmd, _ := runHelperPrune(t, path, env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(r.IntN(200000)) * time.Microsecond)
		cmd.Process.Kill()
		cmd.Wait()
		rerunAndCheck(t, path, c, env...)
		if got := readArchives(t, adir); !bytes.Equal(got, c.gone.Bytes()) {
			t.Fatalf("%s: archive holds %d bytes, want exactly the removed messages (%d)", mode, len(got), c.gone.Len())
		}
	}
}

// TestArchiveRefusesSymlink: a planted symlink in the archive directory
// is never followed.
func TestArchiveRefusesSymlink(t *testing.T) {
	c := mixedCase("\n")
	path := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, path, c.all.Bytes())
	adir := t.TempDir()
	owner := filepath.Join(adir, ownerName(os.Getuid()))
	os.MkdirAll(owner, 0o700)
	victim := filepath.Join(t.TempDir(), "victim")
	writeFile(t, victim, []byte("precious"))
	os.Symlink(victim, filepath.Join(owner, "inbox."+oldDate.UTC().Format("2006-01")+".mbox.gz"))
	opts := testOpts()
	opts.Archive.Dir = adir
	if _, err := PruneMbox(context.Background(), path, opts); err == nil {
		t.Fatal("pruned through a symlinked archive")
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious" {
		t.Error("the symlink's target was written")
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, c.all.Bytes()) {
		t.Error("the mailbox changed although archiving failed")
	}
}

// TestCrashArchiveMaildir kills a Maildir prune with --archive after the
// archive is written and after its index is: every message is still in
// the Maildir, and after a rerun each removed one is archived once.
func TestCrashArchiveMaildir(t *testing.T) {
	for _, point := range []string{"mid-archive", "after-archive", "after-index"} {
		t.Run(point, func(t *testing.T) {
			root := newMaildir(t)
			for i := 0; i < 6; i++ {
				d := oldDate
				if i%3 == 2 {
					d = youngDate
				}
				maildirMsg(t, root, "cur", fmt.Sprintf("%d.M%dP1.host:2,S", d.Unix(), i), d, 400+i)
			}
			adir := t.TempDir()
			env := []string{"MAILKEEP_MAILDIR=" + root, "MAILKEEP_ARCHIVE=" + adir}
			cmd, out := runHelperPrune(t, "", append(env, "MAILKEEP_TEST_CRASH_AT="+point)...)
			if err := cmd.Run(); !killedBySIGKILL(err) {
				t.Fatalf("helper was not killed at %s: %v\n%s", point, err, out)
			}
			if ents, _ := os.ReadDir(filepath.Join(root, "cur")); len(ents) != 6 {
				t.Fatalf("%d messages left before the archive was committed, want 6", len(ents))
			}
			cmd, out = runHelperPrune(t, "", env...)
			if err := cmd.Run(); err != nil || !strings.Contains(out.String(), "removed 4 archived 4") {
				t.Fatalf("rerun: %v\n%s", err, out)
			}
			if ents, _ := os.ReadDir(filepath.Join(root, "cur")); len(ents) != 2 {
				t.Errorf("%d messages left, want 2", len(ents))
			}
			r := mbox.NewReader(bytes.NewReader(readArchives(t, adir)))
			ids := map[string]int{}
			for {
				m, err := r.NextMessage()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(m)
				_, rest, _ := strings.Cut(string(b), "Message-ID: <")
				id, _, _ := strings.Cut(rest, ">")
				ids[id]++
			}
			if len(ids) != 4 {
				t.Errorf("archived messages: %v, want 4 once each", ids)
			}
			for id, n := range ids {
				if n != 1 {
					t.Errorf("%s archived %d times", id, n)
				}
			}
		})
	}
}

// TestArchiveCutsUncommittedTail: bytes past the archive's last committed
// size are a member an interrupted run began and never committed (its
// messages are still in their mailbox); when the index no longer records
// where it began (a later run on another archive file of the index wrote
// its own intent), the next append must still cut it, or every reader
// stops at the broken member and the archived mail after it is unreadable.
func TestArchiveCutsUncommittedTail(t *testing.T) {
	c := mixedCase("\n")
	path := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, path, c.all.Bytes())
	adir := filepath.Join(t.TempDir(), "archive")
	opts := testOpts()
	opts.Archive = ArchiveOptions{Dir: adir, Compress: CompressGzip}
	if _, err := PruneMbox(context.Background(), path, opts); err != nil {
		t.Fatal(err)
	}
	files := archiveFiles(t, adir)
	if len(files) != 1 {
		t.Fatalf("archive files %v", files)
	}
	// A partial gzip member, as a run killed mid-archive leaves it.
	f, err := os.OpenFile(files[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff, 'p', 'a', 'r'})
	f.Close()

	c2 := &mboxCase{}
	c2.add(true, "later@test", "", "another old one\n", "\n")
	c2.add(false, "young@test", "", "young\n", "\n")
	writeFile(t, path, c2.all.Bytes())
	res, err := PruneMbox(context.Background(), path, opts)
	if err != nil || res.MessagesArchived != 1 {
		t.Fatalf("second run: %v, archived %d", err, res.MessagesArchived)
	}
	if got := readArchives(t, adir); string(got) != c.gone.String()+c2.gone.String() {
		t.Fatalf("archive holds %q, want both runs' messages", got)
	}
}
