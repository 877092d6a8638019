package mboxlock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests lock against a real second process: the test binary run again
// with GO_WANT_HELPER=1, which does one thing to a lock and says so on
// stdout. Commands:
//
//	hold KIND PATH MS   take KIND, print "locked", hold until stdin closes
//	                    or MS milliseconds pass (0: until stdin closes)
//	try KIND PATH       one attempt: print "locked" (and release) or "busy"
//	opposite PATH MS    a delivery agent taking its locks in the other
//	                    order: blocking classic fcntl, print "fcntl", wait
//	                    for a line on stdin, then poll for the dotlock
//	                    while holding fcntl; print "locked", hold MS,
//	                    release both, print "done"
//	lockdir PATH        Lock(Dotlock) once; print "ok" or "dirnotwritable"
//	                    or the error
//	exit                exit at once (its PID is then dead)
//	leftovers PATH      make the two temporary files Lock makes for PATH
//	                    ("lock", flocked as linkDotlock does, and "stale"),
//	                    print their names, and wait: a kill then leaves
//	                    them as a run killed while locking would
//
// KIND is fcntl (classic POSIX F_SETLK, as agents take it), flock, or
// dotlock (a plain O_EXCL <PATH>.lock holding the PID, as Postfix makes it).
func TestMain(m *testing.M) {
	if os.Getenv("GO_WANT_HELPER") == "1" {
		os.Exit(helperMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func helperMain(args []string) int {
	fail := func(format string, a ...any) int {
		fmt.Printf("error: "+format+"\n", a...)
		return 2
	}
	if len(args) == 0 {
		return fail("no command")
	}
	switch args[0] {
	case "exit":
		return 0
	case "hold", "try":
		if len(args) < 3 {
			return fail("usage")
		}
		kind, path := args[1], args[2]
		release, ok, err := helperTake(kind, path, args[0] == "hold")
		if err != nil {
			return fail("%v", err)
		}
		if !ok {
			fmt.Println("busy")
			return 0
		}
		fmt.Println("locked")
		if args[0] == "hold" {
			ms := 0
			if len(args) > 3 {
				ms, _ = strconv.Atoi(args[3])
			}
			waitStdinOr(time.Duration(ms) * time.Millisecond)
		}
		release()
		return 0
	case "opposite":
		path := args[1]
		ms, _ := strconv.Atoi(args[2])
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fail("%v", err)
		}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLKW, wholeFile(unix.F_WRLCK)); err != nil {
			return fail("fcntl: %v", err)
		}
		fmt.Println("fcntl")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fail("no go: %v", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			fd, err := unix.Open(path+".lock", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644)
			if err == nil {
				unix.Write(fd, []byte(strconv.Itoa(os.Getpid())+"\n"))
				unix.Close(fd)
				break
			}
			if time.Now().After(deadline) {
				return fail("dotlock never free: %v", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		fmt.Println("locked")
		time.Sleep(time.Duration(ms) * time.Millisecond)
		os.Remove(path + ".lock")
		unix.FcntlFlock(f.Fd(), unix.F_SETLK, wholeFile(unix.F_UNLCK))
		fmt.Println("done")
		return 0
	case "leftovers":
		for _, kind := range []string{"lock", "stale"} {
			tmp := tempPath(args[1]+".lock", kind)
			fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644)
			if err != nil {
				return fail("%v", err)
			}
			if kind == "lock" {
				if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
					return fail("flock: %v", err)
				}
			}
			fmt.Println(tmp)
		}
		waitStdinOr(0)
		return 0
	case "lockdir":
		_, err := Lock(context.Background(), args[1], nil, Options{Kinds: []Kind{Dotlock}, Timeout: -1})
		switch {
		case err == nil:
			fmt.Println("ok")
		case errors.Is(err, ErrDirNotWritable):
			fmt.Println("dirnotwritable " + err.Error())
		default:
			fmt.Println("error: " + err.Error())
		}
		return 0
	}
	return fail("unknown command %q", args[0])
}

// helperTake takes a lock the way a delivery agent would, without this
// package's code. ok is false when it is busy.
func helperTake(kind, path string, hold bool) (release func(), ok bool, err error) {
	switch kind {
	case "dotlock":
		lock := path + ".lock"
		fd, err := unix.Open(lock, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644)
		if errors.Is(err, unix.EEXIST) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		unix.Write(fd, []byte(strconv.Itoa(os.Getpid())+"\n"))
		unix.Close(fd)
		return func() { os.Remove(lock) }, true, nil
	case "fcntl", "flock":
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, false, err
		}
		if kind == "fcntl" {
			err = unix.FcntlFlock(f.Fd(), unix.F_SETLK, wholeFile(unix.F_WRLCK))
		} else {
			err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		}
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			f.Close()
			return nil, false, nil
		}
		if err != nil {
			f.Close()
			return nil, false, err
		}
		// Closing releases either kind.
		return func() { f.Close() }, true, nil
	}
	return nil, false, fmt.Errorf("unknown kind %q", kind)
}

// waitStdinOr returns when stdin reaches EOF or after d (d > 0).
func waitStdinOr(d time.Duration) {
	eof := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(eof)
	}()
	var timeout <-chan time.Time
	if d > 0 {
		timeout = time.After(d)
	}
	select {
	case <-eof:
	case <-timeout:
	}
}

// helper is a running helper process.
type helper struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	exit  chan error
}

// startHelper runs the test binary as a helper with args.
func startHelper(t *testing.T, args ...string) *helper {
	t.Helper()
	return startHelperCmd(t, exec.Command(os.Args[0], args...))
}

func startHelperCmd(t *testing.T, cmd *exec.Cmd) *helper {
	t.Helper()
	cmd.Env = append(os.Environ(), "GO_WANT_HELPER=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 16), exit: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
		h.exit <- cmd.Wait()
	}()
	t.Cleanup(func() {
		h.stdin.Close()
		select {
		case <-h.exit:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-h.exit
		}
	})
	return h
}

func (h *helper) pid() int { return h.cmd.Process.Pid }

// line returns the helper's next line of output, failing after 5s.
func (h *helper) line() string {
	h.t.Helper()
	select {
	case l, ok := <-h.lines:
		if !ok {
			h.t.Fatal("helper exited without output")
		}
		return l
	case <-time.After(5 * time.Second):
		h.t.Fatal("helper said nothing for 5s")
	}
	return ""
}

// expect fails unless the helper's next line is want.
func (h *helper) expect(want string) {
	h.t.Helper()
	if got := h.line(); got != want {
		h.t.Fatalf("helper said %q, want %q", got, want)
	}
}

// stop closes the helper's stdin and waits (at most 5s) for it to exit.
func (h *helper) stop() {
	h.t.Helper()
	h.stdin.Close()
	select {
	case err := <-h.exit:
		h.exit <- err // for Cleanup
		if err != nil {
			h.t.Fatalf("helper: %v", err)
		}
	case <-time.After(5 * time.Second):
		h.t.Fatal("helper did not exit within 5s")
	}
}

// helperTry runs "try KIND PATH" and returns "locked" or "busy".
func helperTry(t *testing.T, kind, path string) string {
	t.Helper()
	h := startHelper(t, "try", kind, path)
	got := h.line()
	h.stop()
	if got != "locked" && got != "busy" {
		t.Fatalf("helper try %s: %s", kind, got)
	}
	return strings.TrimSpace(got)
}
