package retention

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// TestConcurrentDelivery prunes a large mbox again and again while three
// processes deliver into it: one with dotlock+fcntl (procmail, Postfix),
// one with a classic fcntl lock only and one with flock only. The last two
// do not see the dotlock and append to whatever file they opened, the
// replaced one included. Every delivered message must end up in the
// mailbox exactly once, and every original message the policy keeps too.
func TestConcurrentDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	concurrentDelivery(t, RewriteRename, 30<<20)
}

// TestConcurrentDeliveryInplace does the same with in-place rewrites: the
// inode stays, and what the fcntl-only and flock-only writers append
// while the kept messages are copied down must follow them.
func TestConcurrentDeliveryInplace(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	concurrentDelivery(t, RewriteInplace, 12<<20)
}

func concurrentDelivery(t *testing.T, mode RewriteMode, size int) {
	const bands = 6
	dir := t.TempDir()
	stateDir := t.TempDir()
	path := filepath.Join(dir, "inbox")
	var all bytes.Buffer
	start := testNow.AddDate(-2, 0, 0)
	body := strings.Repeat("a line of body text to make this mailbox large\n", 200) // ~9.6 KB
	n := 0
	for all.Len() < size {
		band := n % bands
		d := start.AddDate(0, band, 0).Add(time.Duration(n) * time.Second)
		all.WriteString(testMessage(d, fmt.Sprintf("orig-%d@test", n), "Status: RO\n", body, "\n"))
		n++
	}
	writeFile(t, path, all.Bytes())

	writers := []struct{ tag, lock string }{
		{"dot", "dotlock+fcntl"}, {"fcntl", "fcntl"}, {"flock", "flock"},
	}
	const perWriter = 200
	type running struct {
		wait func() error
		out  *bytes.Buffer
	}
	var procs []running
	for _, w := range writers {
		cmd := helperCmd(t, "append", "MAILKEEP_PATH="+path, "MAILKEEP_TAG="+w.tag,
			"MAILKEEP_LOCK="+w.lock, fmt.Sprintf("MAILKEEP_COUNT=%d", perWriter))
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line != "started\n" {
			cmd.Wait()
			t.Fatalf("writer %s did not start: %q %s", w.tag, line, errOut.String())
		}
		go io.Copy(io.Discard, stdout)
		procs = append(procs, running{cmd.Wait, &errOut})
	}

	carried := 0
	for band := 1; band <= bands-1; band++ {
		opts := testOpts()
		opts.Policy = Policy{Before: start.AddDate(0, band, 0)}
		opts.Rewrite, opts.StateDir = mode, stateDir
		res, err := PruneMbox(context.Background(), path, opts)
		if err != nil {
			t.Fatalf("prune %d: %v", band, err)
		}
		for _, note := range res.Notes {
			if strings.Contains(note, "carried") || strings.Contains(note, "appended during") {
				carried++
			}
		}
	}
	for i, p := range procs {
		if err := p.wait(); err != nil {
			t.Fatalf("writer %s: %v %s", writers[i].tag, err, p.out)
		}
	}
	t.Logf("%d of %d rewrites carried late appends over", carried, bands-1)

	// Count every Message-ID in the result.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	sc := mboxscan.NewScanner(f, path)
	defer sc.Close()
	for {
		m, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[strings.Trim(m.Header.MessageID, "<> ")]++
	}
	for _, w := range writers {
		for i := 0; i < perWriter; i++ {
			id := fmt.Sprintf("%s-%d@test", w.tag, i)
			if seen[id] != 1 {
				t.Errorf("%s is in the mailbox %d times, want once", id, seen[id])
			}
			delete(seen, id)
		}
	}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("orig-%d@test", i)
		want := 0
		if i%bands == bands-1 {
			want = 1
		}
		if seen[id] != want {
			t.Errorf("%s is in the mailbox %d times, want %d", id, seen[id], want)
		}
		delete(seen, id)
	}
	if len(seen) != 0 {
		t.Errorf("unexpected messages: %v", seen)
	}
	if tf := tempFiles(t, dir); len(tf) != 0 {
		t.Errorf("temporary files left: %v", tf)
	}
}
