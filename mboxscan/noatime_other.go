//go:build !linux

package mboxscan

// oNoatime is 0 where there is no O_NOATIME (FreeBSD): readers put the
// access time back instead (see ReadOnlyFile.Close).
const oNoatime = 0

// mountNoatime is false where the mount flags are not checked: a reader
// then assumes access times are recorded.
func mountNoatime(fd int) bool { return false }
