package mboxscan

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ReadOnlyFile is a mailbox file opened for reading without leaving a
// trace: reading an mbox bumps its atime, and mutt and biff take
// "atime >= mtime" to mean the new mail has been read.
type ReadOnlyFile struct {
	*os.File
	// restoreAtime is set when O_NOATIME was refused (it needs the file's
	// owner or CAP_FOWNER): Close then puts the access time back.
	restoreAtime *unix.Timespec
}

// OpenReadOnly opens path for reading, refusing to follow a symlink in its
// last element, and with O_NOATIME where the kernel allows it. When it does
// not, Close restores the access time seen at open.
func OpenReadOnly(path string) (*ReadOnlyFile, error) {
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	fd, err := unix.Open(path, flags|oNoatime, 0)
	noatime := err == nil && oNoatime != 0
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Open(path, flags, 0)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, &os.PathError{Op: "open", Path: path, Err: errors.New("is a symlink, not followed")}
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	// O_NONBLOCK only kept a FIFO from hanging the open; reads of regular
	// files ignore it, but clear it anyway.
	_ = unix.SetNonblock(fd, false)
	f := &ReadOnlyFile{File: os.NewFile(uintptr(fd), path)}
	if !noatime {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err == nil {
			f.restoreAtime = &st.Atim
		}
	}
	return f, nil
}

// ErrWouldMarkRead is the refusal of [OpenMboxReadOnly]: the mbox has new
// mail, and reading it would make that mail look read for good.
var ErrWouldMarkRead = errors.New("not read: it has new mail, and reading it would make that mail look read " +
	"(reading sets the access time, and only the file's owner or root may set it back)")

// OpenMboxReadOnly is OpenReadOnly for an mbox whose new-mail signal must
// survive the read. Where neither O_NOATIME nor putting the access time
// back is allowed (a reader that is neither the owner nor root, such as a
// monitoring user in group mail) and the file has new mail, it refuses
// with an error wrapping ErrWouldMarkRead; nothing was read.
func OpenMboxReadOnly(path string) (*ReadOnlyFile, error) {
	f, err := OpenReadOnly(path)
	if err != nil || f.restoreAtime == nil {
		return f, err
	}
	if WouldMarkRead(int(f.Fd())) {
		f.File.Close() // nothing was read: nothing to put back
		return nil, &os.PathError{Op: "read", Path: path, Err: ErrWouldMarkRead}
	}
	return f, nil
}

// WouldMarkRead reports whether reading the mbox open as fd, without
// O_NOATIME, would make its new mail look read for good: it has new mail
// (mtime after atime, in seconds, as mutt and biff compare them), its file
// system records access times, and this process may not set them back
// (only the owner or root may choose the times a file gets).
func WouldMarkRead(fd int) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return true
	}
	if st.Mtim.Sec <= st.Atim.Sec {
		return false // no new mail to hide
	}
	if euid := os.Geteuid(); euid == 0 || uint32(euid) == st.Uid {
		return false
	}
	return !mountNoatime(fd)
}

// Close closes the file, first putting its access time back when it was
// opened without O_NOATIME. The modification time is left alone (UTIME_OMIT).
func (f *ReadOnlyFile) Close() error {
	if f.restoreAtime != nil {
		ts := []unix.Timespec{*f.restoreAtime, {Nsec: unix.UTIME_OMIT}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), ts, 0); err != nil {
			_ = err // best effort: a reader without write access cannot reset it either
		}
	}
	return f.File.Close()
}
