package retention

import (
	"bytes"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOrdinaryUser prunes, as the unprivileged user nobody, nobody's own
// mbox in a root-owned spool directory: in one that user cannot write
// (0755) auto must fall back to an in-place rewrite under kernel locks and
// say so, and --rewrite rename must fail cleanly; in a sticky one (1777)
// rename works. Runs only as root (to become nobody).
func TestOrdinaryUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper as nobody")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	// A tree nobody can reach: t.TempDir's parents are 0700.
	base, err := os.MkdirTemp("", "mailkeep-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	exe := filepath.Join(base, "retention.test")
	copyExecutable(t, exe)

	c := crashCase()
	for _, tc := range []struct {
		name, dirMode, rewrite, wantMode string
		fail                             bool
	}{
		{"0755-auto", "0755", "auto", "inplace", false},
		{"0755-rename", "0755", "rename", "", true},
		{"1777-auto", "1777", "auto", "rename", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(base, tc.name)
			spool := filepath.Join(dir, "spool")
			mode, _ := strconv.ParseUint(tc.dirMode, 8, 32)
			if err := os.MkdirAll(spool, 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chmod(dir, 0o755)
			os.Chmod(spool, os.FileMode(mode&0o777)|os.ModeSticky*os.FileMode(mode>>9&1))
			path := filepath.Join(spool, "nobody")
			writeFile(t, path, c.all.Bytes())
			os.Chown(path, uid, gid)
			state := filepath.Join(dir, "state")
			archive := filepath.Join(dir, "archive")
			for _, d := range []string{state, archive} {
				os.Mkdir(d, 0o700)
				os.Chown(d, uid, gid)
			}
			ino := inode(t, path)

			cmd := helperCmd(t, "prune", "MAILKEEP_PATH="+path, "MAILKEEP_BEFORE="+strconv.FormatInt(testCutoff.Unix(), 10),
				"MAILKEEP_REWRITE="+tc.rewrite, "MAILKEEP_STATE="+state, "MAILKEEP_ARCHIVE="+archive, "HOME=/nonexistent")
			cmd.Path, cmd.Args[0] = exe, exe
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			got, _ := os.ReadFile(path)
			if tc.fail {
				if err == nil || !strings.Contains(out.String(), "not writable") {
					t.Fatalf("rename in an unwritable directory: %v\n%s", err, out.String())
				}
				if !bytes.Equal(got, c.all.Bytes()) {
					t.Fatal("the mailbox changed although the prune failed")
				}
				return
			}
			if err != nil {
				t.Fatalf("prune as nobody: %v\n%s", err, out.String())
			}
			if !bytes.Equal(got, c.kept.Bytes()) {
				t.Fatalf("mailbox is not the intended result\n%s", out.String())
			}
			if !strings.Contains(out.String(), "mode "+tc.wantMode) {
				t.Errorf("want mode %s:\n%s", tc.wantMode, out.String())
			}
			if tc.wantMode == "inplace" {
				if inode(t, path) != ino {
					t.Error("inode changed")
				}
				for _, want := range []string{"rewrote in place: directory", "no dotlock"} {
					if !strings.Contains(out.String(), want) {
						t.Errorf("output lacks %q:\n%s", want, out.String())
					}
				}
			}
			var st unix.Stat_t
			unix.Stat(path, &st)
			if int(st.Uid) != uid || st.Mode&0o777 != 0o600 {
				t.Errorf("mailbox owner %d mode %o", st.Uid, st.Mode&0o777)
			}
			files := archiveFiles(t, archive)
			if len(files) != 1 {
				t.Fatalf("archive files: %v", files)
			}
			unix.Stat(files[0], &st)
			if int(st.Uid) != uid || st.Mode&0o777 != 0o600 {
				t.Errorf("archive owner %d mode %o", st.Uid, st.Mode&0o777)
			}
			if got := readArchives(t, archive); !bytes.Equal(got, c.gone.Bytes()) {
				t.Error("archive is not the removed messages")
			}
		})
	}
}

// copyExecutable copies the test binary to dst, mode 0755.
func copyExecutable(t *testing.T, dst string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
