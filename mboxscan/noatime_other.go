//go:build !linux

package mboxscan

// oNoatime is 0 where there is no O_NOATIME (FreeBSD): readers put the
// access time back instead (see ReadOnlyFile.Close).
const oNoatime = 0
