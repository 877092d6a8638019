// Package mboxlock takes the locks that mail delivery agents honour on an
// mbox file, so that mailkeep can rewrite it while Postfix, Dovecot,
// procmail or mail.local may be appending to it.
//
// The only API is [Lock], which takes every configured lock or none, and
// the returned [Held], which keeps the dotlock fresh ([Held.Refresh],
// [Held.KeepFresh]), checks it is still ours ([Held.Check]) and releases
// everything ([Held.Unlock]). Linux only: it uses open file description
// locks.
//
// # Which locks
//
// An mbox has no single lock: each agent takes a set, and a writer must
// take every lock any agent on the host takes, or it races that agent.
// [DefaultKinds] is dotlock and fcntl: Postfix local(8) on Linux
// (mailbox_delivery_lock = fcntl, dotlock), Dovecot (mbox_write_locks =
// fcntl dotlock, as doveconf -d shows: fcntl first) and procmail (the
// dotlock, then fcntl). Sendmail's
// mail.local and Postfix on the BSDs use flock instead of fcntl; list
// [Flock] for them ([ParseKinds] reads "dotlock,flock").
//
// # Dotlock first, everything held to the end
//
// The dotlock <mbox>.lock is taken first, as procmail and Postfix do: it
// is the lock every agent checks before it even opens the mbox, and it
// guards the path rather than the inode, which is what an atomic rewrite
// (new file renamed over the old one) replaces. The kernel locks follow
// on the caller's open file. All are held until [Held.Unlock], after the
// rename: an agent that got in between would append to the old inode and
// its message would be lost with it.
//
// Agents that take fcntl first are not kept off the old inode that way:
// Dovecot's LDA waits in the kernel for fcntl on the file it opened and
// checks whether the mbox was replaced before that wait, not after, so
// after a rename it holds the old, deleted file. A caller that renames
// must handle what such a writer does to the old file, or not rename
// where Dovecot delivers (mailkeep rewrites such mailboxes in place).
//
// The dotlock is made NFS-safe the way liblockfile does it: a uniquely
// named file (its name contains [TempMarker]) holding our PID as "%d\n"
// is hard-linked to the lock name, and success is judged by the temp
// file's link count being 2, not by link's return value, which NFS can
// lose on a retransmitted request. link and O_EXCL never follow a
// symlink; a symlink at the lock path is refused, never removed.
//
// # Why OFD locks for fcntl
//
// Classic POSIX fcntl locks belong to the process and are dropped when it
// closes any descriptor of the file, a trap for a program that scans a
// file and then rewrites it (Go's runtime, a library or a second open can
// close one). Open file description locks (F_OFD_SETLK, Linux 3.15) belong
// to the open file instead, are released only when it is closed or
// unlocked, and still conflict with the classic fcntl locks delivery
// agents take, and vice versa. A write lock needs the file opened for
// writing: open the mbox O_RDWR, or fcntl locking fails with EBADF.
//
// # Never block, never deadlock
//
// Agents do not agree on the order of their locks; one waiting in the
// kernel for our fcntl lock while holding its dotlock, with us waiting for
// that dotlock, would deadlock until someone's timeout. So every attempt
// here is non-blocking: on any busy lock everything taken so far is
// released and Lock backs off (10ms doubling to 1s, with jitter) before
// trying again, until Options.Timeout, when the error wraps [ErrTimeout]
// and a [*BusyError] saying which lock was busy and who holds it.
//
// # Stale dotlocks
//
// A dotlock outlives a crashed holder, so a lock is taken over when
//   - it is untouched (mtime) for longer than Options.StaleAfter, 5 minutes
//     by default as in liblockfile (Dovecot overrides after
//     mbox_dotlock_change_timeout, 2 minutes; procmail after locktimeout,
//     1024 seconds); long holders refresh it, as [Held.KeepFresh] does; or
//   - it holds the PID of a process that does not exist here (kill(pid, 0)
//     fails with ESRCH), judged only once the lock is a few seconds old,
//     since an agent using O_EXCL writes its PID after creating the file
//     (Dovecot waits 2 seconds, STALE_PID_CHECK_SECS). A lock naming
//     another host ("pid:host", Dovecot's format) or no PID (procmail
//     writes "0") is judged by its age alone.
//
// The PID rule assumes mailkeep shares the PID namespace of the agents: run
// in a container with its own, it would see every agent's PID as dead.
//
// Takeover is race-safe: the lock is renamed aside (atomic), and only
// removed if what was moved is the very file judged stale, same inode,
// mtime and size; anything else is linked back. Unlock removes the dotlock
// the same way, only if it is still ours: our descriptor on it stays open
// while we hold it, so its inode number cannot be reused by a newcomer.
package mboxlock
