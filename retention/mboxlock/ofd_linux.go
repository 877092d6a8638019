package mboxlock

import "golang.org/x/sys/unix"

// The fcntl kind uses open file description locks on Linux: they conflict
// with the classic POSIX locks delivery agents take, but belong to our
// open file, so closing another descriptor of the mailbox cannot drop
// them behind our back.
const (
	setLock = unix.F_OFD_SETLK
	getLock = unix.F_OFD_GETLK
)
