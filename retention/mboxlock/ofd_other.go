//go:build !linux

package mboxlock

import "golang.org/x/sys/unix"

// Without OFD locks (FreeBSD) the fcntl kind is a classic POSIX lock. It
// belongs to the process and is dropped when the process closes any
// descriptor of the file: the caller must keep the mailbox open on one
// descriptor only while it holds the lock.
const (
	setLock = unix.F_SETLK
	getLock = unix.F_GETLK
)
