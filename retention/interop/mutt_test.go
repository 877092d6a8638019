package interop

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// muttCheck runs mutt -Z ("open the first mailbox with new mail, exit if
// none") on mbox, read-only, under script(1) for the terminal mutt needs.
// It returns whether mutt found new mail and the message count its status
// line showed.
func muttCheck(t *testing.T, mbox string) (newMail bool, msgs int, out string) {
	t.Helper()
	dir := t.TempDir()
	rc := filepath.Join(dir, "muttrc")
	// check_mbox_size off: mutt's new-mail test for an mbox is then
	// mtime > atime, the signal mailkeep keeps across its rewrite.
	text := fmt.Sprintf("set folder=%[1]s\nset spoolfile=%[2]s\nset mbox=%[1]s/read\nset record=/dev/null\n"+
		"set check_mbox_size=no\nset quit=yes\nset move=no\nset wait_key=no\nset header_cache=\"\"\n"+
		"mailboxes %[2]s\n", dir, mbox)
	if err := os.WriteFile(rc, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "script", "-qec",
		fmt.Sprintf("mutt -n -R -F %s -Z -e 'push <quit>'", rc), "/dev/null")
	cmd.Env = []string{"HOME=" + dir, "TERM=vt100", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	var o bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &o
	err := cmd.Run()
	out = o.String()
	if ctx.Err() != nil {
		t.Fatalf("mutt did not exit: %s", out)
	}
	switch code := cmd.ProcessState.ExitCode(); {
	case code == 1 && bytes.Contains(o.Bytes(), []byte("No mailbox with new mail.")):
		return false, 0, out
	case err != nil:
		t.Fatalf("mutt: %v: %q", err, out)
	}
	m := regexp.MustCompile(`Msgs:(\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no message count in mutt's screen: %q", out)
	}
	msgs, _ = strconv.Atoi(m[1])
	return true, msgs, out
}

// TestMuttAfterPrune prunes two mboxes, one with new mail (mtime > atime)
// and one already read (atime after mtime), and asks mutt: new mail in the
// first, with the kept messages; none in the second.
func TestMuttAfterPrune(t *testing.T) {
	need(t, "mutt")
	need(t, "script")
	logVersion(t, "mutt")
	for _, tc := range []struct {
		name    string
		newMail bool
	}{{"new mail", true}, {"read", false}} {
		t.Run(tc.name, func(t *testing.T) {
			base := time.Now().Truncate(time.Second)
			data, origs := genMbox(30, 300, base)
			mbox := filepath.Join(t.TempDir(), "inbox")
			if err := os.WriteFile(mbox, data, 0o600); err != nil {
				t.Fatal(err)
			}
			mtime := base.Add(-time.Hour)
			atime := mtime.Add(-time.Minute) // delivered after the last read
			if !tc.newMail {
				atime = mtime.Add(time.Minute) // read after the last delivery
			}
			if err := os.Chtimes(mbox, atime, mtime); err != nil {
				t.Fatal(err)
			}
			doc := prune(t, "--older-than", "1y", mbox)
			kept := len(origs) - doc.Mailboxes[0].MessagesRemoved
			if doc.Mailboxes[0].MessagesRemoved == 0 {
				t.Fatal("the prune removed nothing")
			}
			var st unix.Stat_t
			if err := unix.Stat(mbox, &st); err != nil {
				t.Fatal(err)
			}
			a, m := time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix())
			t.Logf("after the prune: atime %v, mtime %v", a, m)
			if got := st.Mtim.Nano() > st.Atim.Nano(); got != tc.newMail {
				t.Errorf("after the prune mtime > atime is %v, want %v", got, tc.newMail)
			}

			newMail, msgs, out := muttCheck(t, mbox)
			if newMail != tc.newMail {
				t.Fatalf("mutt -Z found new mail: %v, want %v\n%q", newMail, tc.newMail, out)
			}
			if newMail && msgs != kept {
				t.Errorf("mutt shows Msgs:%d, want the %d kept", msgs, kept)
			}
			t.Logf("mutt -Z: new mail %v, Msgs:%d", newMail, msgs)
		})
	}
}
