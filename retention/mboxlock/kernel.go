package mboxlock

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// withFd runs fn on f's descriptor. SyscallConn, unlike Fd, keeps the file
// from being closed during the call and leaves its blocking mode alone.
func withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var inner error
	if err := rc.Control(func(fd uintptr) { inner = fn(int(fd)) }); err != nil {
		return err
	}
	return inner
}

// wholeFile is a write lock from offset 0 to the end, however the file
// grows (Len 0).
func wholeFile(typ int16) *unix.Flock_t {
	return &unix.Flock_t{Type: typ, Whence: io.SeekStart}
}

// tryKernel makes one non-blocking attempt at a kernel lock of kind k on
// f. It returns a *BusyError when another process holds a conflicting lock.
func tryKernel(k Kind, path string, f *os.File) (*BusyError, error) {
	var busy *BusyError
	err := withFd(f, func(fd int) error {
		switch k {
		case Fcntl:
			err := unix.FcntlFlock(uintptr(fd), setLock, wholeFile(unix.F_WRLCK))
			switch {
			case err == nil:
				return nil
			case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EACCES):
				busy = &BusyError{Kind: Fcntl, Path: path, PID: fcntlHolder(fd)}
				return nil
			case errors.Is(err, unix.EBADF):
				return fmt.Errorf("fcntl lock on %s: a write lock needs the mbox opened read-write: %w", path, err)
			case errors.Is(err, unix.EINVAL):
				return fmt.Errorf("fcntl lock on %s: open file description locks need Linux 3.15 or later: %w", path, err)
			default:
				return fmt.Errorf("fcntl lock on %s: %w", path, err)
			}
		case Flock:
			err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, unix.EWOULDBLOCK):
				busy = &BusyError{Kind: Flock, Path: path, PID: procLocksHolder(fd, "FLOCK")}
				return nil
			default:
				return fmt.Errorf("flock on %s: %w", path, err)
			}
		}
		return fmt.Errorf("lock kind %q is not a kernel lock", string(k))
	})
	return busy, err
}

// releaseKernel drops our lock of kind k on f. A file the caller already
// closed has no locks left to drop: closing released them.
func releaseKernel(k Kind, path string, f *os.File) error {
	err := withFd(f, func(fd int) error {
		if k == Flock {
			return unix.Flock(fd, unix.LOCK_UN)
		}
		return unix.FcntlFlock(uintptr(fd), setLock, wholeFile(unix.F_UNLCK))
	})
	if err == nil || errors.Is(err, os.ErrClosed) {
		return nil
	}
	return fmt.Errorf("unlock %s on %s: %w", k, path, err)
}

// fcntlHolder returns the PID of a process holding a conflicting lock, 0
// when unknown. F_OFD_GETLK reports a classic POSIX lock's owner but -1
// for an OFD lock, whose owner /proc/locks may still name.
func fcntlHolder(fd int) int {
	lk := wholeFile(unix.F_WRLCK)
	if err := unix.FcntlFlock(uintptr(fd), getLock, lk); err == nil && lk.Type != unix.F_UNLCK && lk.Pid > 0 {
		return int(lk.Pid)
	}
	if pid := procLocksHolder(fd, "POSIX"); pid > 0 {
		return pid
	}
	return procLocksHolder(fd, "OFDLCK")
}

// procLocksHolder looks the file up in /proc/locks for a granted lock of
// class (POSIX, FLOCK, OFDLCK) and returns its holder's PID, or 0. Best effort: only for error messages.
func procLocksHolder(fd int, class string) int {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return 0
	}
	file, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer file.Close()
	// Lines look like "3: FLOCK  ADVISORY  WRITE 1234 08:02:131090 0 EOF";
	// waiters have "->" after the number.
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] == "->" || f[1] != class || f[5] != want {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil && pid > 0 {
			return pid
		}
	}
	return 0
}
