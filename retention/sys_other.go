//go:build !linux

package retention

import "golang.org/x/sys/unix"

// Stand-ins for the Linux interfaces in sys_linux.go (FreeBSD).

const (
	oNoatime = 0
	// Without OFD locks the fcntl lock belongs to the process: mailkeep
	// keeps one descriptor of a mailbox open while it holds it.
	ofdSetLk = unix.F_SETLK
	// ofdGetLk asks who holds a conflicting lock (a classic lock's PID).
	ofdGetLk = unix.F_GETLK
)

var errNoXattr = unix.ENOATTR

// copyFileRange reports ENOSYS: callers then copy through a buffer.
func copyFileRange(src int, soff *int64, dst int, doff *int64, n int) (int, error) {
	return 0, unix.ENOSYS
}

// fallocate reports EOPNOTSUPP: callers then write without reserving.
func fallocate(fd int, size int64) error {
	return unix.EOPNOTSUPP
}
