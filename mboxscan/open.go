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
