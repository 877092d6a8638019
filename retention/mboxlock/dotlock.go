package mboxlock

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TempMarker is part of the name of every temporary file this package
// makes next to an mbox, so that a leftover (after a crash between create
// and unlink) can be recognised as ours.
const TempMarker = ".mailkeep-tmp."

// pidGrace is how old a dotlock must be before the PID in it is trusted:
// an agent that creates the lock with O_EXCL writes its PID only after the
// create, so a brand-new lock may be empty or half written. Dovecot waits
// 2 seconds for the same reason (STALE_PID_CHECK_SECS in file-dotlock.c);
// a little more covers file systems with whole-second mtimes.
const pidGrace = 5 * time.Second

// dotlock is a <mbox>.lock file we created.
type dotlock struct {
	path string
	// fd stays open on our lock file until release: while it is open the
	// inode cannot be freed, so its number cannot be reused by someone
	// else's lock, and Refresh can touch exactly our file.
	fd       int
	dev, ino uint64
}

var hostname = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
})

// tempBaseMax is how much of the lock file's name a temporary name keeps:
// with the longest tail (marker, kind, 32-byte host, PID, 16 hex digits)
// the whole stays under NAME_MAX, and the prefix LeftoverPrefix computes
// does not depend on the host or PID.
const tempBaseMax = 150

// tempPath returns a fresh name in the directory of lockPath:
// .<base>.mailkeep-tmp.<what>.<host>.<pid>.<random>, base cut to
// tempBaseMax bytes. The host and PID let a later run tell whether the
// maker is gone (see RemoveLeftover).
func tempPath(lockPath, what string) string {
	dir, base := filepath.Split(lockPath)
	return dir + leftoverPrefix(base) + fmt.Sprintf("%s.%s.%d.%016x", what, hostTag(), os.Getpid(), rand.Uint64())
}

// hostTag is the host name as it appears in temporary names: no dots, so
// that the name can be split again, and at most 32 bytes.
func hostTag() string {
	host := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, hostname())
	return host[:min(len(host), 32)]
}

func leftoverPrefix(lockBase string) string {
	return "." + lockBase[:min(len(lockBase), tempBaseMax)] + TempMarker
}

// LeftoverPrefix is the start of the names of the temporary files Lock
// makes next to the mbox called mboxName: a process killed between
// creating one and unlinking it leaves it behind. See RemoveLeftover.
func LeftoverPrefix(mboxName string) string {
	return leftoverPrefix(mboxName + ".lock")
}

// RemoveLeftover removes name, in the directory dirfd, if it is a
// temporary file of this package whose maker is gone, and reports whether
// it did. Two kinds exist:
//   - "lock", the file linked to the lock name: its maker holds a flock on
//     it from creation until it unlinks it, so it is removed only when
//     that flock can be taken and, in case the maker was caught between
//     create and flock, when the PID in its name is dead here or the file
//     is older than a few seconds;
//   - "stale", a lock file renamed aside to be judged and unlinked: it is
//     removed when the PID in its name is dead on this host.
//
// Anything else (another host's file, a symlink, a name of another form)
// is left alone.
func RemoveLeftover(dirfd int, name string) (bool, error) {
	i := strings.LastIndex(name, TempMarker)
	if i < 0 {
		return false, nil
	}
	parts := strings.Split(name[i+len(TempMarker):], ".")
	if len(parts) != 4 || parts[1] != hostTag() {
		return false, nil
	}
	pid, err := strconv.Atoi(parts[2])
	if err != nil || pid <= 0 {
		return false, nil
	}
	dead := !alive(pid)
	switch parts[0] {
	case "lock":
		return RemoveUnused(dirfd, name, func(fd int, st *unix.Stat_t) bool {
			if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
				return false // its maker is alive
			}
			return dead || time.Since(time.Unix(st.Mtim.Unix())) >= pidGrace
		})
	case "stale":
		return RemoveUnused(dirfd, name, func(int, *unix.Stat_t) bool { return dead })
	}
	return false, nil
}

// RemoveUnused removes the regular file name in the directory dirfd when
// unused, given the file open (read-only, never following a symlink) and
// its fstat, says it may go, and the name still names that file; it
// reports whether it did. A file that is gone, a symlink or anything but a
// regular file is left alone. It is how leftover temporary files are
// cleared: unused usually checks that the flock their maker holds for its
// whole life can be taken.
func RemoveUnused(dirfd int, name string, unused func(fd int, st *unix.Stat_t) bool) (bool, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) {
			return false, nil // gone, or a symlink someone planted: not ours
		}
		return false, &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || !unused(fd, &st) {
		return false, nil
	}
	var now unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &now, unix.AT_SYMLINK_NOFOLLOW); err != nil || !sameFile(&now, &st) {
		return false, nil
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return false, &os.PathError{Op: "remove", Path: name, Err: err}
	}
	return true, nil
}

// dirNotWritableError reports that no file can be created next to the mbox.
type dirNotWritableError struct {
	dir string
	err error
}

func (e *dirNotWritableError) Error() string {
	return fmt.Sprintf("cannot create dotlock in %s: %v", e.dir, e.err)
}
func (e *dirNotWritableError) Unwrap() error        { return e.err }
func (e *dirNotWritableError) Is(target error) bool { return target == ErrDirNotWritable }

// tryDotlock makes one non-blocking attempt at lockPath. It returns our
// lock, or a *BusyError when someone else holds it, or a hard error.
func tryDotlock(lockPath string, o *Options) (*dotlock, *BusyError, error) {
	var busy *BusyError
	// A few quick rounds: after a stale lock is removed, or when the lock
	// vanished between link and lstat, trying again at once is right.
	for range 4 {
		d, err := linkDotlock(lockPath)
		if err != nil || d != nil {
			return d, nil, err
		}
		var st unix.Stat_t
		if err := unix.Lstat(lockPath, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // released between our link and lstat
			}
			return nil, nil, &os.PathError{Op: "lstat", Path: lockPath, Err: err}
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
		case unix.S_IFLNK:
			// Never ours, and never judged stale: removing it would let
			// whoever planted it choose what we unlink next.
			return nil, nil, &os.PathError{Op: "dotlock", Path: lockPath, Err: errors.New("lock path is a symlink")}
		default:
			return nil, nil, &os.PathError{Op: "dotlock", Path: lockPath, Err: errors.New("lock path is not a regular file")}
		}
		h, ok := readHolder(lockPath, &st)
		if !ok {
			continue // replaced while we looked: judge the new one
		}
		busy = &BusyError{Kind: Dotlock, Path: lockPath, PID: h.pid}
		if h.host != "" {
			busy.Detail = "on host " + h.host
		}
		why := staleReason(h, &st, o)
		if why == "" {
			return nil, busy, nil
		}
		err = removeIf(lockPath, func(now *unix.Stat_t) bool { return sameFile(now, &st) && now.Mtim == st.Mtim && now.Size == st.Size })
		switch {
		case err == nil, errors.Is(err, errChanged):
			// Removed (or it changed under us, so the verdict is void):
			// link again.
			continue
		default:
			return nil, nil, fmt.Errorf("remove stale dotlock (%s): %w", why, err)
		}
	}
	if busy == nil {
		busy = &BusyError{Kind: Dotlock, Path: lockPath, Detail: "it kept changing while we looked"}
	}
	return nil, busy, nil
}

// linkDotlock tries to create lockPath the NFS-safe way liblockfile and
// procmail use: write a uniquely named file, hard-link it to the lock
// name, and trust the temp file's link count (2 means the link exists)
// rather than link's return value, which NFS can lose on a retransmit. It
// returns nil, nil when the lock exists.
func linkDotlock(lockPath string) (*dotlock, error) {
	tmp := tempPath(lockPath, "lock")
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, createError(filepath.Dir(lockPath), tmp, err)
	}
	// The flock marks the file as in use until we unlink it (or die):
	// RemoveLeftover never takes a file whose maker is alive.
	_ = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	d, err := func() (*dotlock, error) {
		defer unix.Unlink(tmp)
		if err := writePID(fd, tmp); err != nil {
			return nil, err
		}
		var mine unix.Stat_t
		if err := unix.Fstat(fd, &mine); err != nil {
			return nil, &os.PathError{Op: "fstat", Path: tmp, Err: err}
		}
		linkErr := unix.Link(tmp, lockPath)
		var st unix.Stat_t
		if err := unix.Lstat(tmp, &st); err != nil {
			return nil, &os.PathError{Op: "lstat", Path: tmp, Err: err}
		}
		if st.Nlink == 2 {
			return &dotlock{path: lockPath, fd: fd, dev: mine.Dev, ino: mine.Ino}, nil
		}
		switch {
		case linkErr == nil, errors.Is(linkErr, unix.EEXIST):
			return nil, nil
		case errors.Is(linkErr, unix.EPERM), errors.Is(linkErr, unix.EOPNOTSUPP), errors.Is(linkErr, unix.ENOSYS), errors.Is(linkErr, unix.EMLINK):
			// No hard links here (some FUSE and DOS file systems):
			// O_EXCL is atomic on local file systems and NFSv3+.
			return exclDotlock(lockPath)
		default:
			return nil, &os.PathError{Op: "link", Path: lockPath, Err: linkErr}
		}
	}()
	if d == nil || d.fd != fd {
		unix.Close(fd)
	}
	return d, err
}

// exclDotlock creates lockPath with O_EXCL, for file systems without link.
func exclDotlock(lockPath string) (*dotlock, error) {
	fd, err := unix.Open(lockPath, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.EEXIST) {
		return nil, nil
	}
	if err != nil {
		return nil, createError(filepath.Dir(lockPath), lockPath, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: lockPath, Err: err}
	}
	d := &dotlock{path: lockPath, fd: fd, dev: st.Dev, ino: st.Ino}
	if err := writePID(fd, lockPath); err != nil {
		_ = d.release()
		return nil, err
	}
	return d, nil
}

func createError(dir, path string, err error) error {
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EROFS) {
		return &dirNotWritableError{dir: dir, err: err}
	}
	return &os.PathError{Op: "create", Path: path, Err: err}
}

// writePID writes "%d\n" as liblockfile does; procmail writes "0" and
// Dovecot "pid:host", and readHolder understands all three.
func writePID(fd int, name string) error {
	b := []byte(strconv.Itoa(os.Getpid()) + "\n")
	n, err := unix.Write(fd, b)
	if err == nil && n != len(b) {
		err = unix.EIO
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
}

// holder is what a lock file says about its owner.
type holder struct {
	pid  int    // 0 when unknown
	host string // set when the file names a host other than ours
}

// readHolder reads the PID from the lock file st describes. ok is false
// when the path no longer names that file.
func readHolder(path string, st *unix.Stat_t) (h holder, ok bool) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		// Unreadable (mode 0 from another user): the PID stays unknown and
		// only the mtime rule can call it stale.
		return holder{}, !errors.Is(err, unix.ENOENT)
	}
	defer unix.Close(fd)
	var now unix.Stat_t
	if unix.Fstat(fd, &now) != nil || !sameFile(&now, st) {
		return holder{}, false
	}
	buf := make([]byte, 128)
	n, _ := unix.Read(fd, buf)
	return parseHolder(buf[:max(n, 0)]), true
}

// parseHolder accepts "123\n" (liblockfile), "123" and "123:host"
// (Dovecot). A PID from another host says nothing about this one.
func parseHolder(b []byte) holder {
	s := string(bytes.TrimSpace(b))
	pidStr, host, _ := strings.Cut(s, ":")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return holder{}
	}
	if host != "" && host != hostname() {
		return holder{pid: pid, host: host}
	}
	return holder{pid: pid}
}

// staleReason says why the lock st describes is stale, or "" when it is not.
func staleReason(h holder, st *unix.Stat_t, o *Options) string {
	age := o.Now().Sub(time.Unix(st.Mtim.Unix()))
	if age > o.StaleAfter {
		return fmt.Sprintf("untouched for %s, stale after %s", age.Round(time.Second), o.StaleAfter)
	}
	if h.pid > 0 && h.host == "" && age >= pidGrace && !alive(h.pid) {
		return fmt.Sprintf("pid %d is dead", h.pid)
	}
	return ""
}

// alive reports whether a process with this PID exists here. EPERM means
// it exists but belongs to someone else.
func alive(pid int) bool {
	return !errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

func sameFile(a, b *unix.Stat_t) bool { return a.Dev == b.Dev && a.Ino == b.Ino }

// errChanged: the lock path no longer names the file a decision was about.
var errChanged = errors.New("lock file changed")

// removeIf removes path only if keep-checking pred on what is there says
// so. A plain lstat-then-unlink could delete a lock created between the
// two calls; instead the file is first renamed aside (atomic, whatever it
// is), then inspected, and put back with link if it is not the one judged.
// It returns errChanged when the path held something else (or nothing).
func removeIf(path string, pred func(*unix.Stat_t) bool) error {
	aside := tempPath(path, "stale")
	if err := unix.Rename(path, aside); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return errChanged
		}
		return &os.PathError{Op: "rename", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Lstat(aside, &st); err == nil && pred(&st) {
		if err := unix.Unlink(aside); err != nil {
			return &os.PathError{Op: "unlink", Path: aside, Err: err}
		}
		return nil
	}
	// Not the file we judged: give it back. If a third party locked in
	// the meantime (EEXIST) nothing better is possible than keeping theirs.
	_ = unix.Link(aside, path)
	_ = unix.Unlink(aside)
	return errChanged
}

// refresh sets the lock file's times to now through our descriptor
// (futimens), then checks that the lock path still names our file.
func (d *dotlock) refresh() error {
	// utimensat(fd, NULL, NULL, 0) is futimens(fd, NULL): it needs no
	// /proc and touches exactly the inode we hold open.
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(d.fd), uintptr(unsafe.Pointer(nil)), 0, 0, 0, 0); e != 0 {
		return &os.PathError{Op: "touch", Path: d.path, Err: syscall.Errno(e)}
	}
	return d.check()
}

// check verifies that the lock path still names our lock file.
func (d *dotlock) check() error {
	var st unix.Stat_t
	if err := unix.Lstat(d.path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("dotlock %s: %w: removed by another process", d.path, ErrLockLost)
		}
		return &os.PathError{Op: "lstat", Path: d.path, Err: err}
	}
	if st.Dev != d.dev || st.Ino != d.ino {
		return fmt.Errorf("dotlock %s: %w: replaced by another process", d.path, ErrLockLost)
	}
	return nil
}

// release removes the lock file if it is still ours and closes our
// descriptor. A lock someone else put in its place is left alone.
func (d *dotlock) release() error {
	defer unix.Close(d.fd)
	err := removeIf(d.path, func(st *unix.Stat_t) bool { return st.Dev == d.dev && st.Ino == d.ino })
	if errors.Is(err, errChanged) {
		return fmt.Errorf("dotlock %s: %w: another process removed or replaced it; theirs is left in place", d.path, ErrLockLost)
	}
	return err
}
