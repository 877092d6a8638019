package mboxscan

import "golang.org/x/sys/unix"

// oNoatime is O_NOATIME: reads through such a descriptor leave the access
// time alone, so a scan does not make new mail look read.
const oNoatime = unix.O_NOATIME
