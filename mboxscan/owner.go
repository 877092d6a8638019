package mboxscan

import (
	"io/fs"
	"os/user"
	"strconv"
	"sync"
	"syscall"
)

// ownerNames caches uid → user name: a scan of /var/mail asks for the
// same few owners thousands of times, and each lookup reads /etc/passwd
// (or asks NSS).
var ownerNames sync.Map // uint32 → string

// OwnerName returns the name of the user with the given uid, or the uid in
// decimal when there is no such user. Results are cached for the life of
// the process. It is safe for concurrent use.
func OwnerName(uid uint32) string {
	if v, ok := ownerNames.Load(uid); ok {
		return v.(string)
	}
	id := strconv.FormatUint(uint64(uid), 10)
	name := id
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		name = u.Username
	}
	v, _ := ownerNames.LoadOrStore(uid, name)
	return v.(string)
}

// FillOwner sets mb's Owner, UID and GID from fi, the result of a stat of
// the mailbox file or Maildir folder. It does nothing when fi carries no
// Unix ownership (it always does on Linux).
func FillOwner(mb *Mailbox, fi fs.FileInfo) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	fillOwnerIDs(mb, st.Uid, st.Gid)
}

func fillOwnerIDs(mb *Mailbox, uid, gid uint32) {
	mb.Owner = OwnerName(uid)
	mb.UID = int(uid)
	mb.GID = int(gid)
}
