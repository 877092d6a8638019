package mboxscan

import "golang.org/x/sys/unix"

// oNoatime is O_NOATIME: reads through such a descriptor leave the access
// time alone, so a scan does not make new mail look read.
const oNoatime = unix.O_NOATIME

// mountNoatime reports whether fd's file system never records access times
// (mounted noatime): reading there leaves no trace anyway.
func mountNoatime(fd int) bool {
	var sfs unix.Statfs_t
	return unix.Fstatfs(fd, &sfs) == nil && sfs.Flags&unix.ST_NOATIME != 0
}
