package retention

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

// copyFileRangeMin is the run length from which the kernel copies
// (copy_file_range: no trip through user space, reflinks where the file
// system has them). Shorter runs go through one buffer.
const copyFileRangeMin = 256 << 10

// tmpPrefix is the start of the names of this mailbox's temporary files.
// Long mailbox names are cut so the whole name stays under NAME_MAX.
func tmpPrefix(name string) string {
	if len(name) > 180 {
		name = name[:180]
	}
	return "." + name + tmpInfix
}

// writeTemp writes the plan to a new file in the mailbox's directory and
// returns its name. The file gets the original's owner, group, mode,
// extended attributes and the rewrite's times, and is fsynced. On error it
// is removed.
func (p *mboxPruner) writeTemp(pl *plan) (name string, err error) {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(p.dirfd, &sfs); err == nil && !skipSpaceCheck {
		avail := int64(sfs.Bavail) * int64(sfs.Bsize)
		if avail < pl.size {
			return "", fmt.Errorf("%w in %s: the kept messages need %d bytes, %d are available", ErrNoSpace, p.dir, pl.size, avail)
		}
	}

	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name = fmt.Sprintf("%s%d.%s", tmpPrefix(p.name), os.Getpid(), hex.EncodeToString(rnd[:]))
	fd, err := unix.Openat(p.dirfd, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EROFS) {
			return "", fmt.Errorf("cannot rewrite: directory %s is not writable (the new mailbox is made there): %w", p.dir, err)
		}
		return "", fmt.Errorf("create temporary file in %s: %w", p.dir, err)
	}
	tmp := os.NewFile(uintptr(fd), name)
	defer func() {
		tmp.Close()
		if err != nil {
			unix.Unlinkat(p.dirfd, name, 0)
		}
	}()
	// The flock marks the file as in use: a later run removes a temporary
	// file only when it can take this lock, i.e. when its writer is dead.
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return name, fmt.Errorf("lock temporary file %s: %w", name, err)
	}
	crashPoint("after-create")

	// Reserve the space up front where the file system can: a full disk
	// then fails here, before any copying.
	if pl.size > 0 {
		if err := fallocate(fd, pl.size); err != nil {
			if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
				return name, fmt.Errorf("%w in %s: reserve %d bytes: %w", ErrNoSpace, p.dir, pl.size, err)
			}
			// EOPNOTSUPP and the like: write without reserving.
		}
	}

	w := &spanWriter{dst: tmp, src: p.f, buf: make([]byte, 1<<20), cfr: true}
	for i, s := range pl.segs {
		if err := p.ctx.Err(); err != nil {
			return name, err
		}
		if s.lit != nil {
			err = w.literal(s.lit)
		} else {
			err = w.span(s.off, s.n)
		}
		if err != nil {
			return name, wrapWrite(err, name)
		}
		if i == 0 {
			crashPoint("mid-copy")
		}
	}
	if err := w.flush(); err != nil {
		return name, wrapWrite(err, name)
	}
	if w.written != pl.size {
		return name, fmt.Errorf("write %s: wrote %d bytes, planned %d", name, w.written, pl.size)
	}
	// fallocate never shrinks; the file is exactly pl.size already, but a
	// Ftruncate makes that true on any file system.
	if err := unix.Ftruncate(fd, pl.size); err != nil {
		return name, wrapWrite(err, name)
	}
	crashPoint("after-copy")

	if err := copyMeta(p.f, tmp, &p.st); err != nil {
		return name, err
	}
	if err := setTimes(tmp, &p.st, time.Now()); err != nil {
		return name, err
	}
	if err := tmp.Sync(); err != nil {
		return name, wrapWrite(fmt.Errorf("fsync: %w", err), name)
	}
	crashPoint("after-fsync")
	return name, nil
}

func wrapWrite(err error, name string) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%w: write %s: %w", ErrNoSpace, name, err)
	}
	return fmt.Errorf("write %s: %w", name, err)
}

// spanWriter copies byte ranges of src to the end of dst: long ones with
// copy_file_range, short ones through a buffer.
type spanWriter struct {
	dst, src *os.File
	buf      []byte
	n        int // bytes pending in buf
	cfr      bool
	written  int64
}

func (w *spanWriter) flush() error {
	if w.n == 0 {
		return nil
	}
	_, err := w.dst.Write(w.buf[:w.n])
	w.n = 0
	return err
}

func (w *spanWriter) literal(b []byte) error {
	for len(b) > 0 {
		if w.n == len(w.buf) {
			if err := w.flush(); err != nil {
				return err
			}
		}
		k := copy(w.buf[w.n:], b)
		w.n += k
		w.written += int64(k)
		b = b[k:]
	}
	return nil
}

func (w *spanWriter) span(off, n int64) error {
	if n >= copyFileRangeMin && w.cfr {
		if err := w.flush(); err != nil {
			return err
		}
		done, err := w.copyFileRange(off, n)
		w.written += done
		off, n = off+done, n-done
		if err != nil {
			return err
		}
	}
	for n > 0 {
		if w.n == len(w.buf) {
			if err := w.flush(); err != nil {
				return err
			}
		}
		k := int(min(n, int64(len(w.buf)-w.n)))
		got, err := w.src.ReadAt(w.buf[w.n:w.n+k], off)
		w.n += got
		w.written += int64(got)
		off += int64(got)
		n -= int64(got)
		if err != nil {
			if err == io.EOF {
				return fmt.Errorf("mailbox shrank while locked: %w", io.ErrUnexpectedEOF)
			}
			return err
		}
	}
	return nil
}

// copyFileRange copies with the kernel until done, or until the kernel
// says it cannot (another file system, an old kernel): then it switches
// itself off and the caller copies the rest.
func (w *spanWriter) copyFileRange(off, n int64) (done int64, err error) {
	for n > 0 {
		k, err := copyFileRange(int(w.src.Fd()), &off, int(w.dst.Fd()), nil, int(min(n, 1<<30)))
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EXDEV || err == unix.ENOSYS || err == unix.EINVAL || err == unix.EOPNOTSUPP || err == unix.EPERM:
			w.cfr = false
			return done, nil
		case err != nil:
			return done, err
		case k == 0:
			return done, fmt.Errorf("mailbox shrank while locked: %w", io.ErrUnexpectedEOF)
		}
		done += int64(k)
		n -= int64(k)
	}
	return done, nil
}

// copyMeta gives dst the owner, group, mode and extended attributes of src
// (st is src's stat). Owner first: chown clears set-id bits, and the ACL is
// set after the mode so its mask wins as it did on the original.
func copyMeta(src, dst *os.File, st *unix.Stat_t) error {
	fd := int(dst.Fd())
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give the new mailbox owner %d:%d: %w", st.Uid, st.Gid, err)
	}
	if err := unix.Fchmod(fd, uint32(st.Mode&0o7777)); err != nil {
		return fmt.Errorf("give the new mailbox mode %o: %w", st.Mode&0o7777, err)
	}
	return copyXattrs(int(src.Fd()), fd)
}

// copyXattrs copies the extended attributes that belong to a mailbox: the
// POSIX ACL, the SELinux label and user.* attributes. Other security.* and
// trusted.* ones are not the file's content (file capabilities, IMA) and
// are left out. A file system without xattrs is not an error.
func copyXattrs(src, dst int) error {
	names, err := listXattr(src)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			return nil
		}
		return fmt.Errorf("list extended attributes: %w", err)
	}
	for _, n := range names {
		if !(n == "system.posix_acl_access" || n == "security.selinux" || strings.HasPrefix(n, "user.")) || n == inplaceXattr {
			continue
		}
		v, err := getXattr(src, n)
		if err != nil {
			if errors.Is(err, errNoXattr) {
				continue
			}
			return fmt.Errorf("read extended attribute %s: %w", n, err)
		}
		if err := unix.Fsetxattr(dst, n, v, 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
				continue
			}
			return fmt.Errorf("set extended attribute %s: %w", n, err)
		}
	}
	return nil
}

func listXattr(fd int) ([]string, error) {
	size := 1024
	for {
		buf := make([]byte, size)
		n, err := unix.Flistxattr(fd, buf)
		if err == unix.ERANGE {
			size *= 4
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

func getXattr(fd int, name string) ([]byte, error) {
	size := 256
	for {
		buf := make([]byte, size)
		n, err := unix.Fgetxattr(fd, name, buf)
		if err == unix.ERANGE {
			size *= 4
			if size > 1<<20 {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// setTimes sets f's mtime to now and its atime so that the new-mail signal
// of the original (st: mtime > atime) holds after the rewrite exactly when
// it held before: atime one second below mtime, else equal to it.
func setTimes(f *os.File, st *unix.Stat_t, now time.Time) error {
	mtime := unix.NsecToTimespec(now.UnixNano())
	atime := mtime
	if tsAfter(st.Mtim, st.Atim) {
		atime = unix.NsecToTimespec(now.Add(-time.Second).UnixNano())
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, fdPath(f), []unix.Timespec{atime, mtime}, 0); err != nil {
		return fmt.Errorf("set times of the new mailbox: %w", err)
	}
	return nil
}

func tsAfter(a, b unix.Timespec) bool {
	return a.Sec > b.Sec || (a.Sec == b.Sec && a.Nsec > b.Nsec)
}

// cleanStaleTemps removes the temporary files a killed run left for the
// mailbox name in the directory dir (open as dirfd): its rewrites' and its
// dotlocks'. Called under the mailbox's locks, so no other prune of this
// mailbox is running; and a file is removed only when its maker is gone (a
// rewrite holds a flock on its file until it exits; mboxlock.RemoveLeftover
// has its own rules), so a file still being written is never touched.
func cleanStaleTemps(ls *Listings, dirfd int, dir, name string) (notes []string, err error) {
	names, err := ls.names(dirfd, dir)
	if err != nil {
		return nil, err
	}
	for _, kind := range []struct {
		prefix string
		remove func(dirfd int, name string) (bool, error)
	}{
		{tmpPrefix(name), removeIfStale},
		{mboxlock.LeftoverPrefix(name), mboxlock.RemoveLeftover},
	} {
		i, _ := slices.BinarySearch(names, kind.prefix)
		for _, n := range names[i:] {
			if !strings.HasPrefix(n, kind.prefix) {
				break
			}
			removed, err := kind.remove(dirfd, n)
			if err != nil {
				return notes, err
			}
			if removed {
				notes = append(notes, "removed "+n+", a temporary file left by an interrupted run")
			}
		}
	}
	return notes, nil
}

// Listings lists each directory once for a run of many prunes. A prune
// looks in its mailbox's directory for the temporary files that killed
// runs left there; over a spool of thousands of mailboxes, listing the
// directory at every prune made a run that removed nothing ten times
// slower. With Listings, each directory is listed when its first mailbox
// is pruned: what a run that dies later leaves is cleared by the next
// run. The zero value is ready to use and safe for concurrent use.
type Listings struct {
	mu   sync.Mutex
	dirs map[string][]string // directory path → sorted names
}

// names returns the sorted names in dir, open as dirfd: the listing ls
// holds, or a fresh one when ls is nil.
func (ls *Listings) names(dirfd int, dir string) ([]string, error) {
	if ls != nil {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		if names, ok := ls.dirs[dir]; ok {
			return names, nil
		}
	}
	dfd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("list directory: %w", err)
	}
	d := os.NewFile(uintptr(dfd), ".")
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list directory: %w", err)
	}
	slices.Sort(names)
	if ls != nil {
		if ls.dirs == nil {
			ls.dirs = map[string][]string{}
		}
		ls.dirs[dir] = names
	}
	return names, nil
}

// removeIfStale removes the rewrite's temporary file n when its writer,
// which holds a flock on it until it exits, is gone.
func removeIfStale(dirfd int, n string) (bool, error) {
	removed, err := mboxlock.RemoveUnused(dirfd, n, func(fd int, _ *unix.Stat_t) bool {
		return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) == nil // else its writer is alive
	})
	if err != nil {
		return false, fmt.Errorf("stale temporary file: %w", err)
	}
	return removed, nil
}

// crashAt is the test-only crash hook: when the environment variable
// MAILKEEP_TEST_CRASH_AT names a point (locked, after-create, mid-copy,
// after-copy, after-fsync, after-rename, after-dirsync, after-unlock; with
// an archive mid-archive, after-archive, after-index; in place
// inplace-building, inplace-built, journal-written, inplace-mid-copy,
// inplace-copied, inplace-truncated, inplace-done, inplace-before-unlock),
// the process kills itself with SIGKILL there. Tests use it to prove that a
// kill at any point leaves the old or the new mailbox, never a mix. It
// does nothing unless set; it is not part of the interface.
var crashAt = os.Getenv("MAILKEEP_TEST_CRASH_AT")

// testHook and skipSpaceCheck let in-package tests act at the crash points
// (swap the path under the rewrite) and get past the free-space check to
// the write's own ENOSPC. Never set outside tests.
var (
	testHook       func(point string)
	skipSpaceCheck bool
)

func crashPoint(name string) {
	if testHook != nil {
		testHook(name)
	}
	if crashAt != "" && crashAt == name {
		_ = unix.Kill(os.Getpid(), unix.SIGKILL)
		for {
			time.Sleep(time.Hour) // never go on past the point
		}
	}
}
