package retention

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashCase is a mailbox of a few MB with every other run of messages old,
// as a helper process prunes it with cutoff testCutoff.
func crashCase() *mboxCase {
	c := &mboxCase{}
	for i := 0; i < 120; i++ {
		body := fmt.Sprintf("message %d\n", i) + strings.Repeat("some body text for the crash test\n", 200*(1+i%5))
		c.add((i/3)%2 == 0, fmt.Sprintf("c%d@test", i), "Status: RO\n", body, "\n")
	}
	return c
}

func runHelperPrune(t *testing.T, path string, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := helperCmd(t, "prune", append(env, "MAILKEEP_PATH="+path,
		fmt.Sprintf("MAILKEEP_BEFORE=%d", testCutoff.Unix()))...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return cmd, &out
}

func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// checkOldOrNew asserts that the mailbox is byte for byte the original or
// the intended result, and returns which.
func checkOldOrNew(t *testing.T, path string, c *mboxCase) string {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("mailbox gone: %v", err)
	}
	switch {
	case bytes.Equal(got, c.all.Bytes()):
		return "old"
	case bytes.Equal(got, c.kept.Bytes()):
		return "new"
	}
	t.Fatalf("mailbox is neither the original (%d bytes) nor the result (%d bytes): %d bytes", c.all.Len(), c.kept.Len(), len(got))
	return ""
}

// rerunAndCheck runs the prune again: it must finish, leave the intended
// result, and no temporary file.
func rerunAndCheck(t *testing.T, path string, c *mboxCase, env ...string) {
	t.Helper()
	cmd, out := runHelperPrune(t, path, env...)
	if err := cmd.Run(); err != nil {
		t.Fatalf("rerun failed: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, c.kept.Bytes()) {
		t.Fatalf("after the rerun the mailbox is not the intended result\n%s", out)
	}
	if tf := tempFiles(t, filepath.Dir(path)); len(tf) != 0 {
		t.Fatalf("temporary files left after the rerun: %v\n%s", tf, out)
	}
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dotlock left after the rerun\n%s", out)
	}
}

func TestCrashAtPoints(t *testing.T) {
	c := crashCase()
	points := []struct {
		name string
		want string // the mailbox right after the kill
	}{
		{"locked", "old"},
		{"after-create", "old"},
		{"mid-copy", "old"},
		{"after-copy", "old"},
		{"after-fsync", "old"},
		{"after-rename", "new"},
		{"after-dirsync", "new"},
		{"after-unlock", "new"},
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "inbox")
			writeFile(t, path, c.all.Bytes())
			cmd, out := runHelperPrune(t, path, "MAILKEEP_TEST_CRASH_AT="+p.name)
			if err := cmd.Run(); !killedBySIGKILL(err) {
				t.Fatalf("helper was not killed at %s: %v\n%s", p.name, err, out)
			}
			if got := checkOldOrNew(t, path, c); got != p.want {
				t.Errorf("after a kill at %s the mailbox is the %s one, want the %s one", p.name, got, p.want)
			}
			rerunAndCheck(t, path, c)
		})
	}
}

func TestCrashAtRandomMoments(t *testing.T) {
	c := crashCase()
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]int{}
	for i := 0; i < 10; i++ {
		path := filepath.Join(t.TempDir(), "inbox")
		writeFile(t, path, c.all.Bytes())
		cmd, out := runHelperPrune(t, path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(r.IntN(150000)) * time.Microsecond)
		cmd.Process.Kill()
		err := cmd.Wait()
		state := checkOldOrNew(t, path, c)
		if err == nil {
			state += " (finished)"
		}
		seen[state]++
		rerunAndCheck(t, path, c)
		_ = out
	}
	t.Logf("states after random kills: %v", seen)
}
