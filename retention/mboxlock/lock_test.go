package mboxlock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newMbox makes an mbox in a fresh directory and opens it read-write.
func newMbox(t *testing.T) (string, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mbox")
	if err := os.WriteFile(path, []byte("From a@b Thu Jan  1 00:00:00 2026\n\nhi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return path, f
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// onlyMbox fails if anything but the mbox is left in its directory.
func onlyMbox(t *testing.T, path string) {
	t.Helper()
	if names := dirNames(t, filepath.Dir(path)); !slices.Equal(names, []string{filepath.Base(path)}) {
		t.Errorf("directory holds %q, want only the mbox", names)
	}
}

func mustLock(t *testing.T, path string, f *os.File, o Options) *Held {
	t.Helper()
	h, err := Lock(context.Background(), path, f, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Unlock() })
	return h
}

// wantBusy fails unless err is a timeout naming a busy lock of kind k; it
// returns that *BusyError.
func wantBusy(t *testing.T, err error, k Kind) *BusyError {
	t.Helper()
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Kind != k {
		t.Fatalf("got %v, want a busy %s lock", err, k)
	}
	return busy
}

func TestParseKinds(t *testing.T) {
	tests := []struct {
		in      []string
		want    []Kind
		wantErr string
	}{
		{in: []string{"dotlock,fcntl"}, want: []Kind{Dotlock, Fcntl}},
		{in: []string{"dotlock", "fcntl"}, want: []Kind{Dotlock, Fcntl}},
		{in: []string{" Flock , dotlock"}, want: []Kind{Flock, Dotlock}},
		{in: []string{"fcntl,"}, want: []Kind{Fcntl}},
		{in: []string{"dotlock,lockf"}, wantErr: `unknown lock kind "lockf"`},
		{in: []string{"dotlock", "DOTLOCK"}, wantErr: `lock kind "dotlock" given twice`},
		{in: []string{""}, wantErr: "no lock kinds"},
		{in: nil, wantErr: "no lock kinds"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.in, "|"), func(t *testing.T) {
			got, err := ParseKinds(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestOptionsOrderDotlockFirst(t *testing.T) {
	o, err := Options{Kinds: []Kind{Flock, Fcntl, Dotlock}}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if want := []Kind{Dotlock, Flock, Fcntl}; !slices.Equal(o.Kinds, want) {
		t.Errorf("order %v, want %v", o.Kinds, want)
	}
	if _, err := Lock(context.Background(), "/nonexistent", nil, Options{Kinds: []Kind{"lockf"}}); err == nil {
		t.Error("unknown kind accepted")
	}
}

// Each kind excludes a second process taking the same kind, both ways.
// For fcntl that means our OFD lock and an agent's classic POSIX lock.
func TestExclusiveAgainstAnotherProcess(t *testing.T) {
	for _, k := range []Kind{Dotlock, Fcntl, Flock} {
		t.Run(string(k), func(t *testing.T) {
			path, f := newMbox(t)

			h := startHelper(t, "hold", string(k), path, "0")
			h.expect("locked")
			_, err := Lock(context.Background(), path, f, Options{Kinds: []Kind{k}, Timeout: 200 * time.Millisecond})
			busy := wantBusy(t, err, k)
			if busy.PID != h.pid() {
				t.Errorf("busy error names pid %d, want the helper's %d: %v", busy.PID, h.pid(), err)
			}
			if !strings.Contains(err.Error(), "pid "+strconv.Itoa(h.pid())) {
				t.Errorf("error %q does not name the holder", err)
			}
			h.stop()

			held := mustLock(t, path, f, Options{Kinds: []Kind{k}, Timeout: time.Second})
			if got := helperTry(t, string(k), path); got != "busy" {
				t.Errorf("helper got the %s lock while we held it", k)
			}
			if err := held.Unlock(); err != nil {
				t.Fatal(err)
			}
			if got := helperTry(t, string(k), path); got != "locked" {
				t.Errorf("helper could not take the %s lock after Unlock", k)
			}
			onlyMbox(t, path)
		})
	}
}

// Our fcntl lock is an OFD lock: closing another descriptor of the same
// file, which drops a classic POSIX lock, must not drop it.
func TestFcntlSurvivesClosingAnotherDescriptor(t *testing.T) {
	path, f := newMbox(t)
	held := mustLock(t, path, f, Options{Kinds: []Kind{Fcntl}, Timeout: time.Second})
	other, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
	if got := helperTry(t, "fcntl", path); got != "busy" {
		t.Error("closing another descriptor dropped our fcntl lock")
	}
	held.Unlock()
}

// A helper holding only fcntl makes Lock(dotlock,fcntl) time out after
// about Timeout, leaving no dotlock or temp file behind.
func TestAllOrNothing(t *testing.T) {
	path, f := newMbox(t)
	h := startHelper(t, "hold", "fcntl", path, "0")
	h.expect("locked")

	const timeout = 500 * time.Millisecond
	start := time.Now()
	_, err := Lock(context.Background(), path, f, Options{Timeout: timeout})
	elapsed := time.Since(start)
	busy := wantBusy(t, err, Fcntl)
	if busy.PID != h.pid() {
		t.Errorf("busy pid %d, want %d", busy.PID, h.pid())
	}
	// The upper bound leaves room for a loaded CI machine.
	if elapsed < timeout || elapsed > timeout+3*time.Second {
		t.Errorf("gave up after %s, want about %s", elapsed, timeout)
	}
	onlyMbox(t, path)
	// And the dotlock is free for others.
	if got := helperTry(t, "dotlock", path); got != "locked" {
		t.Error("dotlock left held after a failed Lock")
	}
}

// Lock succeeds soon after the holder lets go, for each kind.
func TestAcquiredWhenReleased(t *testing.T) {
	for _, k := range []Kind{Dotlock, Fcntl, Flock} {
		t.Run(string(k), func(t *testing.T) {
			path, f := newMbox(t)
			h := startHelper(t, "hold", string(k), path, "300")
			h.expect("locked")
			start := time.Now()
			kinds := append([]Kind{Dotlock}, k)
			if k == Dotlock {
				kinds = []Kind{Dotlock, Fcntl}
			}
			held := mustLock(t, path, f, Options{Kinds: kinds, Timeout: 10 * time.Second})
			// The helper holds for 300ms; the back-off is at most 1s;
			// the rest is room for a loaded machine.
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("took %s to lock after the holder let go", elapsed)
			}
			b, err := os.ReadFile(path + ".lock")
			if err != nil || string(b) != strconv.Itoa(os.Getpid())+"\n" {
				t.Errorf("dotlock holds %q, %v; want our pid", b, err)
			}
			if err := held.Unlock(); err != nil {
				t.Fatal(err)
			}
			onlyMbox(t, path)
		})
	}
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "exit")
	cmd.Env = append(os.Environ(), "GO_WANT_HELPER=1")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestStaleDotlock(t *testing.T) {
	sleeper := exec.Command("sleep", "30")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	livePID := sleeper.Process.Pid
	dead := deadPID(t)
	host, _ := os.Hostname()

	tests := []struct {
		name    string
		content string
		age     time.Duration
		opts    Options
		stale   bool
	}{
		{"dead pid", strconv.Itoa(dead) + "\n", 10 * time.Second, Options{}, true},
		{"dead pid, brand new", strconv.Itoa(dead) + "\n", 0, Options{}, false},
		{"dead pid on our host", strconv.Itoa(dead) + ":" + host, 10 * time.Second, Options{}, true},
		{"dead pid on another host", strconv.Itoa(dead) + ":elsewhere.example", 10 * time.Second, Options{}, false},
		{"live pid", strconv.Itoa(livePID) + "\n", 10 * time.Second, Options{}, false},
		{"live pid, untouched past StaleAfter", strconv.Itoa(livePID) + "\n", 6 * time.Minute, Options{}, true},
		{"live pid, short StaleAfter", strconv.Itoa(livePID) + "\n", 2 * time.Minute, Options{StaleAfter: time.Minute}, true},
		{"live pid, clock moved on", strconv.Itoa(livePID) + "\n", 0,
			Options{Now: func() time.Time { return time.Now().Add(10 * time.Minute) }}, true},
		{"procmail, no pid", "0", 10 * time.Second, Options{}, false},
		{"procmail, no pid, old", "0", 6 * time.Minute, Options{}, true},
		{"empty", "", 10 * time.Second, Options{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, f := newMbox(t)
			lock := path + ".lock"
			if err := os.WriteFile(lock, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			mtime := time.Now().Add(-tt.age)
			if err := os.Chtimes(lock, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			o := tt.opts
			o.Timeout = 200 * time.Millisecond
			held, err := Lock(context.Background(), path, f, o)
			if !tt.stale {
				wantBusy(t, err, Dotlock)
				if b, _ := os.ReadFile(lock); string(b) != tt.content {
					t.Errorf("lock now holds %q, want it untouched", b)
				}
				return
			}
			if err != nil {
				t.Fatalf("stale lock not taken over: %v", err)
			}
			if b, _ := os.ReadFile(lock); string(b) != strconv.Itoa(os.Getpid())+"\n" {
				t.Errorf("lock holds %q after takeover, want our pid", b)
			}
			if err := held.Unlock(); err != nil {
				t.Fatal(err)
			}
			onlyMbox(t, path)
		})
	}
}

func TestSymlinkAtLockPath(t *testing.T) {
	path, f := newMbox(t)
	target := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(target, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(target, old, old) // even "stale", a symlink is never removed
	if err := os.Symlink(target, path+".lock"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Lock(context.Background(), path, f, Options{Timeout: 20 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "lock path is a symlink") || errors.Is(err, ErrTimeout) {
		t.Fatalf("got %v, want a symlink error", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("symlink refusal waited for the timeout")
	}
	if fi, err := os.Lstat(path + ".lock"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink gone: %v", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious" {
		t.Errorf("target changed to %q", b)
	}
}

func mtimeOf(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

func TestRefresh(t *testing.T) {
	path, f := newMbox(t)
	lock := path + ".lock"
	held := mustLock(t, path, f, Options{RefreshEvery: 20 * time.Millisecond})
	old := time.Now().Add(-time.Hour)

	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	if err := held.Refresh(); err != nil {
		t.Fatal(err)
	}
	if m := mtimeOf(t, lock); time.Since(m) > 5*time.Second {
		t.Errorf("mtime %s after Refresh, want now", m)
	}

	held.KeepFresh(context.Background())
	if err := os.Chtimes(lock, old, old); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Since(mtimeOf(t, lock)) > 5*time.Second {
		if time.Now().After(deadline) {
			t.Fatal("KeepFresh did not touch the dotlock within 2s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := held.Check(); err != nil {
		t.Fatal(err)
	}
	if err := held.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := held.Refresh(); err == nil {
		t.Error("Refresh after Unlock succeeded")
	}
	onlyMbox(t, path)
}

// Unlock removes only our own dotlock: one put in its place by someone
// who judged ours stale is left alone, and the loss is reported.
func TestUnlockLeavesForeignDotlock(t *testing.T) {
	for _, keepFresh := range []bool{false, true} {
		t.Run("KeepFresh="+strconv.FormatBool(keepFresh), func(t *testing.T) {
			path, _ := newMbox(t)
			lock := path + ".lock"
			held := mustLock(t, path, nil, Options{Kinds: []Kind{Dotlock}, RefreshEvery: 20 * time.Millisecond})
			if keepFresh {
				held.KeepFresh(context.Background())
			}
			if err := os.Remove(lock); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(lock, []byte("4242\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if keepFresh {
				time.Sleep(100 * time.Millisecond) // a few refresh periods
			}
			if err := held.Check(); !errors.Is(err, ErrLockLost) {
				t.Errorf("Check: got %v, want ErrLockLost", err)
			}
			if err := held.Unlock(); !errors.Is(err, ErrLockLost) {
				t.Errorf("Unlock: got %v, want ErrLockLost", err)
			}
			if b, err := os.ReadFile(lock); err != nil || string(b) != "4242\n" {
				t.Errorf("foreign lock now %q, %v; want it left alone", b, err)
			}
			if err := held.Unlock(); err != nil {
				t.Errorf("second Unlock: %v", err)
			}
		})
	}
}

// An agent taking fcntl first and then polling for the dotlock, while we
// take the dotlock first and then fcntl: both get through, in bounded
// time. A Lock that waited in the kernel for fcntl while holding the
// dotlock would deadlock here until its timeout.
func TestOppositeOrderAgent(t *testing.T) {
	path, f := newMbox(t)
	agent := startHelper(t, "opposite", path, "200")
	agent.expect("fcntl")

	type result struct {
		held    *Held
		err     error
		elapsed time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		h, err := Lock(context.Background(), path, f, Options{Timeout: 15 * time.Second})
		done <- result{h, err, time.Since(start)}
	}()
	time.Sleep(50 * time.Millisecond) // let Lock take the dotlock and find fcntl busy
	if _, err := io.WriteString(agent.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	agent.expect("locked")
	agent.expect("done")
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Lock: %v", r.err)
		}
		if r.elapsed > 10*time.Second {
			t.Errorf("Lock took %s", r.elapsed)
		}
		if err := r.held.Unlock(); err != nil {
			t.Fatal(err)
		}
	case <-time.After(16 * time.Second):
		t.Fatal("Lock did not return")
	}
	onlyMbox(t, path)
}

// Interop with the dotlock programs of procmail and liblockfile, when
// installed (Debian: procmail, liblockfile-bin).
func TestInteropLockPrograms(t *testing.T) {
	tools := []struct {
		name       string
		lock       []string // args before the lock path: one attempt
		unlock     []string
		writesOurs bool // -p writes the parent's PID: ours
	}{
		{name: "lockfile", lock: []string{"-r", "0"}},
		{name: "dotlockfile", lock: []string{"-l", "-r", "0", "-p"}, unlock: []string{"-u"}, writesOurs: true},
	}
	for _, tool := range tools {
		t.Run(tool.name, func(t *testing.T) {
			bin, err := exec.LookPath(tool.name)
			if err != nil {
				t.Skipf("%s not installed (apt-get install procmail liblockfile-bin)", tool.name)
			}
			path, f := newMbox(t)
			lock := path + ".lock"
			run := func(args ...string) error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
				if err != nil && ctx.Err() != nil {
					t.Fatalf("%s hung: %s", tool.name, out)
				}
				return err
			}

			// Ours blocks theirs.
			held := mustLock(t, path, f, Options{Timeout: time.Second})
			if err := run(append(tool.lock, lock)...); err == nil {
				t.Errorf("%s took the dotlock while we held it", tool.name)
			}
			if err := held.Check(); err != nil {
				t.Errorf("our dotlock disturbed: %v", err)
			}
			if err := held.Unlock(); err != nil {
				t.Fatal(err)
			}

			// Theirs blocks ours.
			if err := run(append(tool.lock, lock)...); err != nil {
				t.Fatalf("%s could not lock a free mbox: %v", tool.name, err)
			}
			_, err = Lock(context.Background(), path, f, Options{Timeout: 300 * time.Millisecond})
			busy := wantBusy(t, err, Dotlock)
			if tool.writesOurs && busy.PID != os.Getpid() {
				t.Errorf("busy pid %d, want %d (dotlockfile -p)", busy.PID, os.Getpid())
			}
			if tool.unlock != nil {
				if err := run(append(tool.unlock, lock)...); err != nil {
					t.Fatalf("%s unlock: %v", tool.name, err)
				}
			} else if err := os.Remove(lock); err != nil {
				t.Fatal(err)
			}
			held = mustLock(t, path, f, Options{Timeout: time.Second})
			held.Unlock()
			onlyMbox(t, path)
		})
	}
}

// A directory the user cannot write to gives ErrDirNotWritable at once.
// As root, the check runs in a helper that drops to nobody.
func TestDirNotWritable(t *testing.T) {
	if os.Geteuid() != 0 {
		path, _ := newMbox(t)
		dir := filepath.Dir(path)
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		_, err := Lock(context.Background(), path, nil, Options{Kinds: []Kind{Dotlock}})
		if !errors.Is(err, ErrDirNotWritable) || !strings.Contains(err.Error(), "cannot create dotlock in "+dir) {
			t.Fatalf("got %v, want ErrDirNotWritable naming %s", err, dir)
		}
		return
	}

	// The helper must be executable by nobody: copy the test binary into
	// a directory everyone can traverse.
	base := t.TempDir()
	for d := base; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Skipf("cannot open %s to nobody: %v", d, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	bin := filepath.Join(base, "helper")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Skip(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	mail := filepath.Join(base, "mail")
	if err := os.Mkdir(mail, 0o755); err != nil {
		t.Fatal(err)
	}
	mbox := filepath.Join(mail, "nobody")
	if err := os.WriteFile(mbox, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "lockdir", mbox)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	h := startHelperCmd(t, cmd)
	got := h.line()
	if strings.HasPrefix(got, "error: ") && strings.Contains(got, "exec") {
		t.Skipf("helper cannot run as nobody: %s", got)
	}
	if want := "cannot create dotlock in " + mail + ": permission denied"; !strings.HasPrefix(got, "dirnotwritable ") || !strings.Contains(got, want) {
		t.Fatalf("helper as nobody said %q, want %q", got, want)
	}
	h.stop()
	onlyMbox(t, mbox)
}

func TestReadOnlyFileNeedsReadWrite(t *testing.T) {
	path, _ := newMbox(t)
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	_, err = Lock(context.Background(), path, ro, Options{Timeout: time.Second})
	if err == nil || !errors.Is(err, syscall.EBADF) || !strings.Contains(err.Error(), "read-write") {
		t.Fatalf("got %v, want EBADF asking for read-write", err)
	}
	onlyMbox(t, path)

	if _, err := Lock(context.Background(), path, nil, Options{}); err == nil {
		t.Error("kernel lock without a file accepted")
	}
}

// A file renamed over the mbox while we waited makes the locks worthless.
func TestFileReplaced(t *testing.T) {
	path, f := newMbox(t)
	repl := path + ".new"
	if err := os.WriteFile(repl, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(repl, path); err != nil {
		t.Fatal(err)
	}
	_, err := Lock(context.Background(), path, f, Options{Timeout: time.Second})
	if !errors.Is(err, ErrFileReplaced) {
		t.Fatalf("got %v, want ErrFileReplaced", err)
	}
	onlyMbox(t, path)
	// The locks on the old file were dropped too: reach its inode through
	// our descriptor, from the helper.
	old := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
	if got := helperTry(t, "fcntl", old); got != "locked" {
		t.Error("fcntl lock on the replaced file still held")
	}
}

func TestContextCancel(t *testing.T) {
	path, f := newMbox(t)
	h := startHelper(t, "hold", "fcntl", path, "0")
	h.expect("locked")
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Lock(ctx, path, f, Options{Timeout: 20 * time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("cancel took %s to stop Lock", elapsed)
	}
	onlyMbox(t, path)
}
