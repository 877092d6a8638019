package retention

import "golang.org/x/sys/unix"

// Linux system interfaces the rewrite uses; sys_other.go has the
// portable stand-ins.

const (
	// oNoatime keeps reading a mailbox from making its new mail look read.
	oNoatime = unix.O_NOATIME
	// ofdSetLk takes an open file description lock: it conflicts with the
	// POSIX locks delivery agents take, but closing another descriptor of
	// the file does not drop it.
	ofdSetLk = unix.F_OFD_SETLK
	// ofdGetLk asks who holds a conflicting lock (a classic lock's PID).
	ofdGetLk = unix.F_OFD_GETLK
)

// errNoXattr is the error for "no such extended attribute".
var errNoXattr = unix.ENODATA

// copyFileRange copies in the kernel (no trip through user space; a
// reflink where the file system has them).
func copyFileRange(src int, soff *int64, dst int, doff *int64, n int) (int, error) {
	return unix.CopyFileRange(src, soff, dst, doff, n, 0)
}

// fallocate reserves size bytes for fd, so a full disk fails before any
// copying.
func fallocate(fd int, size int64) error {
	return unix.Fallocate(fd, 0, 0, size)
}
