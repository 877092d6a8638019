package retention

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
	"golang.org/x/sys/unix"
)

func inplaceOpts(t *testing.T) Options {
	o := testOpts()
	o.Rewrite = RewriteInplace
	o.StateDir = t.TempDir()
	return o
}

// stateLeft lists what an in-place rewrite left in its state directory.
func stateLeft(t *testing.T, stateDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(stateDir, "inplace"))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestInplaceByteExact(t *testing.T) {
	for _, eol := range []string{"\n", "\r\n"} {
		t.Run(fmt.Sprintf("eol=%q", eol), func(t *testing.T) {
			c := mixedCase(eol)
			dir := t.TempDir()
			path := filepath.Join(dir, "inbox")
			writeFile(t, path, c.all.Bytes())
			ino := inode(t, path)
			opts := inplaceOpts(t)
			res, err := PruneMbox(context.Background(), path, opts)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, c.kept.Bytes()) {
				t.Fatalf("result differs from the kept messages (%d bytes, want %d)", len(got), c.kept.Len())
			}
			if inode(t, path) != ino {
				t.Error("the inode changed")
			}
			if res.Mode != RewriteInplace || res.MessagesRemoved != c.removed {
				t.Errorf("mode %q removed %d, want inplace %d", res.Mode, res.MessagesRemoved, c.removed)
			}
			if left := stateLeft(t, opts.StateDir); len(left) != 0 {
				t.Errorf("left in the state directory: %v", left)
			}
			if names := dirNames(t, dir); names != "inbox\n" {
				t.Errorf("files beside the mailbox: %q", names)
			}
		})
	}
}

// TestInplaceKeepsFirstBytes: with the first messages kept, only the bytes
// from the first removed one on are written (the identity prefix).
func TestInplaceKeepsFirstBytes(t *testing.T) {
	c := &mboxCase{}
	c.add(false, "a@test", "", "young\n", "\n")
	c.add(false, "b@test", "", "young\n", "\n")
	c.add(true, "c@test", "", "old\n", "\n")
	c.add(false, "d@test", "", "young\n", "\n")
	pl := &plan{}
	pl.keep(0, 100)
	pl.keep(200, 50)
	if first, rest := identityPrefix(pl); first != 100 || len(rest) != 1 {
		t.Errorf("identityPrefix = %d, %d segments", first, len(rest))
	}
	path := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, path, c.all.Bytes())
	if _, err := PruneMbox(context.Background(), path, inplaceOpts(t)); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, c.kept.Bytes()) {
		t.Fatalf("got %q", got)
	}
}

func TestInplaceMovesIMAPBaseAndKeepsTimes(t *testing.T) {
	c := &mboxCase{}
	c.add(true, "a@test", "X-IMAPbase: 1700000000 0000000010\nX-UID: 1\n", "old\n", "\n")
	c.add(false, "c@test", "X-UID: 3\n", "young\n", "\n")
	path := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, path, c.all.Bytes())
	mtime := time.Now().Add(-time.Hour)
	os.Chtimes(path, mtime.Add(-time.Minute), mtime) // new mail waiting
	if _, err := PruneMbox(context.Background(), path, inplaceOpts(t)); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	unix.Stat(path, &st) // before reading it, which may set atime
	got, _ := os.ReadFile(path)
	kept := c.kept.String()
	nl := strings.Index(kept, "\n") + 1
	if want := kept[:nl] + "X-IMAPbase: 1700000000 0000000010\n" + kept[nl:]; string(got) != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	m, a := time.Unix(st.Mtim.Unix()), time.Unix(st.Atim.Unix())
	if time.Since(m) > time.Minute || !m.After(a) {
		t.Errorf("mtime %v atime %v: want mtime now and above atime", m, a)
	}
}

// TestInplaceKeepsAppended appends a message, taking none of our locks,
// at the points where a writer that ignores them could: before the
// journal, and after the copy, before the cut. It must end up after the
// kept messages, once.
func TestInplaceKeepsAppended(t *testing.T) {
	for _, point := range []string{"inplace-built", "inplace-copied"} {
		t.Run(point, func(t *testing.T) {
			c := mixedCase("\n")
			path := filepath.Join(t.TempDir(), "inbox")
			writeFile(t, path, c.all.Bytes())
			late := testMessage(youngDate, "late@test", "", strings.Repeat("late body\n", 50000), "\n")
			done := false
			testHook = func(p string) {
				if p == point && !done {
					done = true
					f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
					if err != nil {
						t.Error(err)
						return
					}
					f.WriteString(late)
					f.Close()
				}
			}
			defer func() { testHook = nil }()
			if _, err := PruneMbox(context.Background(), path, inplaceOpts(t)); err != nil {
				t.Fatal(err)
			}
			if !done {
				t.Fatal("hook not reached")
			}
			if got, _ := os.ReadFile(path); string(got) != c.kept.String()+late {
				t.Fatalf("got %d bytes, want the kept messages and the late one (%d)", len(got), c.kept.Len()+len(late))
			}
		})
	}
}

// TestInplaceRecoveryWithDelivery kills an in-place rewrite after the copy
// and before the cut, lets a delivery agent append (small, and larger
// than what was removed), kills another after the cut and appends; each
// rerun must finish and keep the delivered message.
func TestInplaceRecoveryWithDelivery(t *testing.T) {
	c := crashCase()
	for _, tc := range []struct {
		point string
		size  int
	}{
		{"inplace-copied", 10}, {"inplace-copied", 200000},
		{"inplace-truncated", 10}, {"inplace-truncated", 200000},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.point, tc.size), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "inbox")
			writeFile(t, path, c.all.Bytes())
			state := t.TempDir()
			env := []string{"MAILKEEP_REWRITE=inplace", "MAILKEEP_STATE=" + state}
			cmd, out := runHelperPrune(t, path, append(env, "MAILKEEP_TEST_CRASH_AT="+tc.point)...)
			if err := cmd.Run(); !killedBySIGKILL(err) {
				t.Fatalf("not killed: %v\n%s", err, out)
			}
			late := testMessage(youngDate, "late@test", "", strings.Repeat("x", tc.size)+"\n", "\n")
			if err := appendLocked(path, "fcntl", []byte(late)); err != nil { // the killed run left its dotlock
				t.Fatal(err)
			}
			cmd, out = runHelperPrune(t, path, env...)
			if err := cmd.Run(); err != nil {
				t.Fatalf("rerun: %v\n%s", err, out)
			}
			if got, _ := os.ReadFile(path); string(got) != c.kept.String()+late {
				t.Fatalf("after the rerun: %d bytes, want %d\n%s", len(got), c.kept.Len()+len(late), out)
			}
			if left := stateLeft(t, state); len(left) != 0 {
				t.Errorf("left in the state directory: %v", left)
			}
		})
	}
}

func TestInplaceCrashAtPoints(t *testing.T) {
	c := crashCase()
	points := []struct{ name, want string }{
		{"locked", "old"},
		{"inplace-building", "old"},
		{"inplace-built", "old"},
		{"journal-written", "old"},
		{"inplace-mid-copy", ""}, // half copied: finished by the rerun
		{"inplace-copied", ""},
		{"inplace-truncated", "new"},
		{"inplace-done", "new"},
		{"inplace-before-unlock", "new"},
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "inbox")
			writeFile(t, path, c.all.Bytes())
			state := t.TempDir()
			env := []string{"MAILKEEP_REWRITE=inplace", "MAILKEEP_STATE=" + state}
			cmd, out := runHelperPrune(t, path, append(env, "MAILKEEP_TEST_CRASH_AT="+p.name)...)
			if err := cmd.Run(); !killedBySIGKILL(err) {
				t.Fatalf("helper was not killed at %s: %v\n%s", p.name, err, out)
			}
			if p.want != "" {
				if got := checkOldOrNew(t, path, c); got != p.want {
					t.Errorf("after a kill at %s the mailbox is the %s one, want the %s one", p.name, got, p.want)
				}
			}
			rerunAndCheck(t, path, c, env...)
			if left := stateLeft(t, state); len(left) != 0 {
				t.Errorf("left in the state directory: %v", left)
			}
		})
	}
}

// TestInplaceDryRunWithJournal: a dry run does not pretend a half
// rewritten mailbox is fine.
func TestInplaceDryRunWithJournal(t *testing.T) {
	c := crashCase()
	path := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, path, c.all.Bytes())
	state := t.TempDir()
	cmd, out := runHelperPrune(t, path, "MAILKEEP_REWRITE=inplace", "MAILKEEP_STATE="+state, "MAILKEEP_TEST_CRASH_AT=inplace-mid-copy")
	if err := cmd.Run(); !killedBySIGKILL(err) {
		t.Fatalf("not killed: %v\n%s", err, out)
	}
	opts := testOpts()
	opts.DryRun, opts.StateDir, opts.Policy = true, state, Policy{Before: testCutoff}
	if _, err := PruneMbox(context.Background(), path, opts); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("dry run over a pending journal: %v", err)
	}
	// A rename-mode run finishes the in-place rewrite first.
	rerunAndCheck(t, path, c, "MAILKEEP_REWRITE=rename", "MAILKEEP_STATE="+state)
}

func TestParseRewriteMode(t *testing.T) {
	for in, want := range map[string]RewriteMode{"": RewriteAuto, "auto": RewriteAuto, "rename": RewriteRename, "inplace": RewriteInplace} {
		if got, err := ParseRewriteMode(in); err != nil || got != want {
			t.Errorf("ParseRewriteMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseRewriteMode("copy"); err == nil {
		t.Error("copy accepted")
	}
}

// TestInplaceOnlyCuts: when the removed messages are all at the end (or
// are everything), nothing is copied: the mailbox is only cut.
func TestInplaceOnlyCuts(t *testing.T) {
	for _, keepFirst := range []bool{true, false} {
		c := &mboxCase{}
		c.add(!keepFirst, "a@test", "", "first\n", "\n")
		c.add(true, "b@test", "", "old\n", "\n")
		path := filepath.Join(t.TempDir(), "inbox")
		writeFile(t, path, c.all.Bytes())
		opts := inplaceOpts(t)
		if _, err := PruneMbox(context.Background(), path, opts); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, c.kept.Bytes()) {
			t.Errorf("keepFirst=%v: got %q", keepFirst, got)
		}
		if left := stateLeft(t, opts.StateDir); len(left) != 0 {
			t.Errorf("left in the state directory: %v", left)
		}
	}
}

// TestInplaceRecoveryThenPrune: a run that first finishes a killed
// in-place rewrite goes on to prune under the same locks (the fcntl lock
// still held), here with a policy that removes what the first one kept.
func TestInplaceRecoveryThenPrune(t *testing.T) {
	c := crashCase()
	path := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, path, c.all.Bytes())
	state := t.TempDir()
	cmd, out := runHelperPrune(t, path, "MAILKEEP_REWRITE=inplace", "MAILKEEP_STATE="+state, "MAILKEEP_TEST_CRASH_AT=inplace-copied")
	if err := cmd.Run(); !killedBySIGKILL(err) {
		t.Fatalf("not killed: %v\n%s", err, out)
	}
	os.Remove(path + ".lock") // the killed run's
	checked := false
	testHook = func(p string) {
		if p != "inplace-built" {
			return
		}
		checked = true
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err == nil {
			t.Error("the fcntl lock was not held after the recovery")
		}
	}
	defer func() { testHook = nil }()
	opts := inplaceOpts(t)
	opts.StateDir = state
	opts.Policy = Policy{Before: testNow}
	res, err := PruneMbox(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !checked || !slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, "finished an in-place rewrite") }) {
		t.Errorf("hook reached %v, notes %q", checked, res.Notes)
	}
	if got, _ := os.ReadFile(path); len(got) != 0 || res.MessagesBefore != 120-c.removed || res.MessagesRemoved != res.MessagesBefore {
		t.Errorf("mailbox %d bytes, result %+v", len(got), res)
	}
}

// TestInplaceRecoveryAfterAnotherShrankIt: a run killed half-way through
// the in-place copy leaves a mailbox that is neither old nor new; when
// another program shrinks it before the rerun (an MUA that rewrote it),
// the rerun must not take the shorter size for "already cut" and delete
// the temporary file, the only whole copy of the kept mail: it leaves
// the journal, the temporary file and the mailbox as they are, and says so.
func TestInplaceRecoveryAfterAnotherShrankIt(t *testing.T) {
	c := crashCase()
	path := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, path, c.all.Bytes())
	state := t.TempDir()
	env := []string{"MAILKEEP_REWRITE=inplace", "MAILKEEP_STATE=" + state}
	cmd, out := runHelperPrune(t, path, append(env, "MAILKEEP_TEST_CRASH_AT=inplace-mid-copy")...)
	if err := cmd.Run(); !killedBySIGKILL(err) {
		t.Fatalf("not killed: %v\n%s", err, out)
	}
	if err := os.Truncate(path, int64(c.all.Len()-1)); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	cmd, out = runHelperPrune(t, path, env...)
	if err := cmd.Run(); err == nil {
		t.Errorf("the rerun finished a rewrite of a mailbox someone else changed\n%s", out)
	} else if !strings.Contains(out.String(), "someone else changed it") {
		t.Errorf("the rerun's error does not say why\n%s", out)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, before) {
		t.Errorf("the rerun changed the mailbox another program had changed\n%s", out)
	}
	left := stateLeft(t, state)
	var journal, temp bool
	for _, n := range left {
		journal = journal || strings.HasSuffix(n, ".journal")
		temp = temp || strings.HasSuffix(n, ".new")
	}
	if !journal || !temp {
		t.Errorf("state directory holds %v, want the journal and the temporary file kept\n%s", left, out)
	}
}

// TestInplaceMarkerStopsOtherStateDir: a run whose journals live elsewhere
// (another user, another --state-dir) must not prune a mailbox an
// interrupted in-place rewrite left half copied: the marker on the
// mailbox names the journal, and only the run that has it finishes.
func TestInplaceMarkerStopsOtherStateDir(t *testing.T) {
	c := crashCase()
	path := filepath.Join(t.TempDir(), "inbox")
	writeFile(t, path, c.all.Bytes())
	stateA, stateB := t.TempDir(), t.TempDir()
	cmd, out := runHelperPrune(t, path, "MAILKEEP_REWRITE=inplace", "MAILKEEP_STATE="+stateA, "MAILKEEP_TEST_CRASH_AT=inplace-mid-copy")
	if err := cmd.Run(); !killedBySIGKILL(err) {
		t.Fatalf("not killed: %v\n%s", err, out)
	}
	buf := make([]byte, 4096)
	if _, err := unix.Getxattr(path, inplaceXattr, buf); err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			t.Skip("no user extended attributes on this file system")
		}
		t.Fatalf("half-rewritten mailbox carries no marker: %v", err)
	}
	half, _ := os.ReadFile(path)
	mb, err := mboxscan.ScanMbox(context.Background(), path, mboxscan.Options{})
	if err != nil || !strings.Contains(strings.Join(mb.Problems, "\n"), "in-place rewrite was interrupted") {
		t.Errorf("scan of the half-rewritten mailbox does not say so: %v %q", err, mb.Problems)
	}

	for _, mode := range []string{"inplace", "rename"} {
		cmd, out = runHelperPrune(t, path, "MAILKEEP_REWRITE="+mode, "MAILKEEP_STATE="+stateB)
		if err := cmd.Run(); err == nil || !strings.Contains(out.String(), "interrupted") {
			t.Errorf("%s run with another state dir: err %v\n%s", mode, err, out)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, half) {
			t.Fatalf("%s run with another state dir changed the half-rewritten mailbox\n%s", mode, out)
		}
	}

	cmd, out = runHelperPrune(t, path, "MAILKEEP_REWRITE=inplace", "MAILKEEP_STATE="+stateA)
	if err := cmd.Run(); err != nil {
		t.Fatalf("the run with the journal did not finish: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, c.kept.Bytes()) {
		t.Errorf("finished mailbox is not the intended result\n%s", out)
	}
	if _, err := unix.Getxattr(path, inplaceXattr, buf); !errors.Is(err, errNoXattr) {
		t.Errorf("marker left after the rewrite finished: %v", err)
	}
}
