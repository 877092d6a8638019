package retention

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

// ErrUnsafeMailbox marks a mailbox refused because it is a symlink, not a
// regular file, hard-linked, owned by someone unexpected, or was swapped
// while it was being opened or locked.
var ErrUnsafeMailbox = errors.New("unsafe mailbox")

// ErrNoSpace is returned when the mailbox's file system has less free space
// than the kept messages need. The mailbox is left untouched.
var ErrNoSpace = errors.New("not enough free space")

// tmpInfix marks mailkeep's temporary files: ".<mbox>.mailkeep-tmp.<pid>.<rand>".
const tmpInfix = ".mailkeep-tmp."

// PruneMbox applies opts.Policy to the mbox file at path and returns what
// it removed (or, with opts.DryRun, would remove). On error the mailbox is
// unchanged, except for an error after the rename (reported as such), when
// it holds the intended result, or after an in-place rewrite's journal was
// written, when the next run finishes the rewrite. The returned Result is
// never nil; after an error that left the mailbox unchanged, it counts
// nothing removed (but MessagesArchived counts what is in the archive).
//
// A real run:
//
//  1. opens the directory, then the mailbox relative to it with O_NOFOLLOW,
//     and refuses a symlink, a non-regular file, a hard-linked file
//     (nlink > 1), a file whose lstat and fstat differ, and, with
//     opts.CheckOwner, a file not owned by opts.ExpectUID;
//  2. takes the locks (opts.Lock, default dotlock then fcntl), all or
//     nothing, within the lock timeout, and keeps the dotlock fresh; when
//     the dotlock cannot be made because the directory is not writable and
//     the mode is not rename, the kernel locks only (a note says so), and
//     finishes an in-place rewrite of this file a killed run left;
//  3. checks again that the path names the opened file, then scans the file
//     as it is now and decides per message (memory stays flat: only the
//     runs of kept bytes are remembered);
//  4. with nothing to remove, unlocks and touches nothing; else, with
//     opts.Archive, archives the removed messages (durably, read back);
//     then, when the mode (opts.Rewrite; auto: rename if the directory is
//     writable, a new file can get the mailbox's owner and group, and no
//     IMAP server keeps state in the mailbox, see below) is inplace,
//     rewrites in place (see [RewriteInplace]); else removes the
//     temporary files a killed run left for this mailbox, checks free
//     space, writes the kept bytes (copy_file_range for long runs) to a new
//     file in the same directory, gives it the original's owner, group,
//     mode and extended attributes, sets its times (see below), fsyncs it,
//     renames it over the mailbox relative to the directory, fsyncs the
//     directory and unlocks;
//  5. (rename) looks whether the replaced file grew after it was scanned (a writer
//     that took only fcntl or flock appended to it) and appends what it
//     finds to the mailbox, under the locks, once it has found the bytes
//     it scanned unchanged (they were fingerprinted under the locks, while
//     the new file was written: about 0.2 s per GiB from the page cache,
//     on the other core). A file changed before its end is not appended
//     from, or mail would be doubled: what it holds from the first changed
//     MiB on is saved in a rescue file, .NAME.mailkeep-rescue.N, and the
//     error ([ErrReplacedChanged]) names it. A writer that holds the
//     replaced file's locks for longer than the lock timeout is left
//     behind, with what it wrote so far saved the same way
//     ([ErrReplacedBusy]).
//
// Dovecot: its LDA takes fcntl before the dotlock (mbox_write_locks =
// fcntl dotlock) and checks whether the mbox was replaced before it waits
// for fcntl, not after. One that waited while the mailbox was renamed
// over wakes up holding the deleted file: it appends there, may rewrite
// headers there, or loops for good waiting for that file's mtime to follow
// its utime() on the path. So auto rewrites in place a mailbox whose first
// message carries X-IMAPbase or X-IMAP (Dovecot writes it on its first
// delivery, UW-IMAP in its pseudo-message) or that has Dovecot's index
// directory .imap/NAME beside it, and says so in a note. --rewrite rename
// on such a mailbox renames all the same (with a note): safe only when no
// dovecot-lda delivers into it.
//
// Bytes that belong to no message (garbage before the first From_ line)
// are kept. The pseudo-message is kept and not counted.
//
// Times: the new file's mtime is the time of the rewrite. The new-mail
// signal mutt and biff read (mtime > atime) is kept: when it held, atime
// is set one second below mtime; otherwise atime equals mtime.
//
// X-IMAPbase: UW-IMAP and Dovecot keep a mailbox's UIDVALIDITY and next
// UID in an X-IMAPbase header of the first message when there is no
// pseudo-message. When that message is removed, the header line is written
// into the new first message, right after its From_ line and in the file's
// line ending, or every IMAP client would download the mailbox again.
//
// Cancellation (ctx) is checked between messages and between copied runs,
// never between the final fsync and the rename.
func PruneMbox(ctx context.Context, path string, opts Options) (*Result, error) {
	res := &Result{Path: path, Format: mboxscan.FormatMbox}
	if err := opts.Policy.Validate(); err != nil {
		return res, err
	}
	p := &mboxPruner{ctx: ctx, path: path, opts: opts, res: res, now: opts.now()}
	err := p.run()
	if err != nil {
		if !p.replaced {
			// The mailbox is unchanged: nothing was removed.
			res.MessagesRemoved, res.BytesRemoved, res.Removed = 0, 0, nil
		}
		return res, fmt.Errorf("prune %s: %w", path, err)
	}
	return res, nil
}

type mboxPruner struct {
	ctx  context.Context
	path string
	opts Options
	res  *Result
	now  time.Time

	dir, name string
	dirfd     int
	f         *os.File // the mailbox as opened and locked
	st        unix.Stat_t
	noatime   bool // f was opened with O_NOATIME
	replaced  bool // the new mailbox was renamed into place, or an in-place rewrite's journal is durable
	// kernelOnly: the dotlock could not be made (directory not writable)
	// and the mailbox is locked with the kernel locks only.
	kernelOnly bool
	kinds      []mboxlock.Kind // the locks held on f
	// imapState names the header by which the plan found an IMAP
	// server's state in the mailbox (X-IMAP, X-IMAPbase), or is "".
	imapState string
	items     []archItem // removed messages to archive
}

func (p *mboxPruner) run() error {
	p.dir, p.name = filepath.Split(p.path)
	if p.dir == "" {
		p.dir = "."
	}
	if p.name == "" {
		return errors.New("not a file name")
	}
	dirfd, err := unix.Open(p.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", p.dir, err)
	}
	p.dirfd = dirfd
	defer unix.Close(dirfd)

	if p.opts.DryRun {
		if err := p.open(); err != nil {
			return err
		}
		defer func() {
			p.restoreAtime()
			p.f.Close()
		}()
		if err := p.checkFile("open"); err != nil {
			return err
		}
		if err := p.recoverInplace(); err != nil {
			return err // a pending journal: the file is half rewritten
		}
		// The same decision as a real run, on the file as it is now; no
		// lock (a lock file would be a write), no temporary file.
		if _, err := p.plan(p.st.Size); err != nil {
			return err
		}
		if p.res.MessagesRemoved > 0 {
			mode, why := p.chooseMode()
			p.res.Mode = mode
			if why != "" {
				p.res.Notes = append(p.res.Notes, why)
			}
			if p.opts.Archive.enabled() {
				p.res.MessagesArchived = p.res.MessagesRemoved
			}
		}
		return nil
	}

	held, err := p.openLocked()
	if err != nil {
		return err
	}
	closeOld := true
	defer func() {
		if closeOld {
			p.restoreAtime()
			p.f.Close()
		}
	}()
	unlocked := false
	unlock := func() error {
		if unlocked {
			return nil
		}
		unlocked = true
		return held.Unlock()
	}
	defer unlock()
	crashPoint("locked")

	// Whatever a killed run left next to this mailbox goes first, whether
	// or not this run has anything to remove: a run killed while taking or
	// releasing the dotlock leaves a file even when its work was done.
	if notes, err := cleanStaleTemps(p.opts.Listings, p.dirfd, p.dir, p.name); err != nil {
		return err
	} else {
		p.res.Notes = append(p.res.Notes, notes...)
	}

	// A killed in-place rewrite of this very file is finished first.
	if err := p.recoverInplace(); err != nil {
		return err
	}

	scanned := p.st.Size
	pl, err := p.plan(scanned)
	if err != nil {
		return err
	}
	if p.res.MessagesRemoved == 0 {
		return nil // touch nothing
	}
	mode, why := p.chooseMode()
	p.res.Mode = mode
	if why != "" {
		p.res.Notes = append(p.res.Notes, why)
	}
	if p.opts.Archive.enabled() {
		if err := p.archiveRemoved(); err != nil {
			return err
		}
	}
	if mode == RewriteInplace {
		if err := held.Check(); err != nil {
			return fmt.Errorf("before the in-place rewrite: %w", err)
		}
		if err := p.checkFile("rewrite"); err != nil {
			return err
		}
		if err := p.rewriteInplace(pl, scanned); err != nil {
			return err
		}
		crashPoint("inplace-before-unlock")
		if err := unlock(); err != nil {
			return fmt.Errorf("mailbox rewritten, but unlock failed: %w", err)
		}
		return nil
	}
	// The carry-over below must know whether the replaced file still
	// holds what the plan was made from before it appends what follows:
	// it is fingerprinted now, under the locks, while the new file is
	// written (the two overlap; see prefixSums for the cost).
	sums := newPrefixSums(scanned)
	sumErr := make(chan error, 1)
	sumCtx, stopSum := context.WithCancel(p.ctx)
	defer stopSum()
	go func() { sumErr <- sums.extend(sumCtx, p.f, scanned) }()
	tmpName, err := p.writeTemp(pl)
	if err != nil {
		stopSum()
		<-sumErr
		return err
	}
	if err := <-sumErr; err != nil {
		unix.Unlinkat(p.dirfd, tmpName, 0)
		return fmt.Errorf("fingerprint the mailbox: %w", err)
	}
	// From here on: no cancellation until the rename is done. The locks
	// and the path are checked once more right before it.
	if err := held.Check(); err != nil {
		unix.Unlinkat(p.dirfd, tmpName, 0)
		return fmt.Errorf("before rename: %w", err)
	}
	if err := p.checkFile("rename"); err != nil {
		unix.Unlinkat(p.dirfd, tmpName, 0)
		return err
	}
	if err := unix.Renameat(p.dirfd, tmpName, p.dirfd, p.name); err != nil {
		unix.Unlinkat(p.dirfd, tmpName, 0)
		return fmt.Errorf("rename %s over the mailbox: %w", tmpName, err)
	}
	p.replaced = true
	// The replaced file as it is now, unlinked: a later change of its
	// size or ctime means a writer touched it.
	var ref unix.Stat_t
	_ = unix.Fstat(int(p.f.Fd()), &ref)
	crashPoint("after-rename")
	// Errors from here on are reported after the carry-over, never
	// instead of it: a writer waiting on the replaced file appends there
	// once we let go, and the carry-over is all that saves its mail.
	var errs []error
	if err := unix.Fsync(p.dirfd); err != nil {
		errs = append(errs, fmt.Errorf("mailbox replaced, but fsync of directory %s failed: %w", p.dir, err))
	}
	crashPoint("after-dirsync")
	if err := unlock(); err != nil {
		errs = append(errs, fmt.Errorf("mailbox replaced, but unlock failed: %w", err))
	}
	crashPoint("after-unlock")

	// The replaced file stays open: a writer that took only fcntl or flock
	// may have appended to it while we held the others, or may be about to
	// (it was waiting for our fcntl lock).
	closeOld = false
	defer p.f.Close()
	carried, err := p.carryAppended(scanned, sums, ref)
	if carried > 0 {
		p.res.Notes = append(p.res.Notes, fmt.Sprintf("carried %d bytes that a writer appended to the replaced file into the mailbox", carried))
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("mailbox replaced, but %w", err))
	}
	return errors.Join(errs...)
}

// openLocked opens the mailbox, checks it and takes the locks. When an
// agent replaced the mailbox while we waited for them, it starts again
// with the new file (a few times at most).
func (p *mboxPruner) openLocked() (*mboxlock.Held, error) {
	for attempt := 0; ; attempt++ {
		if err := p.open(); err != nil {
			return nil, err
		}
		err := p.checkFile("open")
		var held *mboxlock.Held
		if err == nil {
			held, err = p.lock(p.f)
		}
		if err == nil {
			// Under the locks, the path must still name the file we
			// opened: an agent may have replaced it while we waited.
			if err = p.checkFile("lock"); err != nil {
				held.Unlock()
			}
		}
		if err == nil {
			return held, nil
		}
		p.restoreAtime()
		p.f.Close()
		p.f = nil
		if attempt >= 2 || !errors.Is(err, mboxlock.ErrFileReplaced) {
			return nil, err
		}
	}
}

// open opens the mailbox relative to the directory, never following a
// symlink, read-write (the fcntl lock is an OFD write lock) or read-only
// for a dry run, with O_NOATIME where allowed so that reading it leaves
// the new-mail signal alone.
func (p *mboxPruner) open() error {
	mode := unix.O_RDWR
	if p.opts.DryRun {
		mode = unix.O_RDONLY
	}
	flags := mode | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	fd, err := unix.Openat(p.dirfd, p.name, flags|oNoatime, 0)
	p.noatime = err == nil && oNoatime != 0
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Openat(p.dirfd, p.name, flags, 0)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("%w: is a symlink, not followed", ErrUnsafeMailbox)
		}
		return fmt.Errorf("open: %w", err)
	}
	if !p.noatime && mboxscan.WouldMarkRead(fd) {
		unix.Close(fd)
		return fmt.Errorf("open: %w", mboxscan.ErrWouldMarkRead)
	}
	// O_NONBLOCK only kept a FIFO from hanging the open.
	_ = unix.SetNonblock(fd, false)
	p.f = os.NewFile(uintptr(fd), p.path)
	if err := unix.Fstat(fd, &p.st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	return nil
}

// restoreAtime puts back the access time when the file was read without
// O_NOATIME and not replaced.
func (p *mboxPruner) restoreAtime() {
	if p.noatime || p.f == nil {
		return
	}
	ts := []unix.Timespec{p.st.Atim, {Nsec: unix.UTIME_OMIT}}
	_ = unix.UtimesNanoAt(unix.AT_FDCWD, fdPath(p.f), ts, 0)
}

func fdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }

// checkFile refreshes p.st from the open file and checks that the path
// (not followed) still names it, and that it is safe to rewrite.
func (p *mboxPruner) checkFile(when string) error {
	var fst, lst unix.Stat_t
	if err := unix.Fstat(int(p.f.Fd()), &fst); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	if err := unix.Fstatat(p.dirfd, p.name, &lst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("%w: the path no longer names the opened file (at %s): %w", ErrUnsafeMailbox, when, err)
	}
	if err := checkSafe(&fst, &lst, p.opts, p.st.Uid); err != nil {
		return fmt.Errorf("%w (at %s)", err, when)
	}
	p.st = fst
	return nil
}

// checkSafe compares a file's fstat with the path's lstat. firstUID is
// the owner seen when the file was opened: it must not change.
func checkSafe(fst, lst *unix.Stat_t, opts Options, firstUID uint32) error {
	switch {
	case lst.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("%w: is a symlink, not followed", ErrUnsafeMailbox)
	case fst.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("%w: not a regular file", ErrUnsafeMailbox)
	case fst.Dev != lst.Dev || fst.Ino != lst.Ino:
		return fmt.Errorf("%w: the path was replaced by another file", ErrUnsafeMailbox)
	case fst.Nlink != 1:
		return fmt.Errorf("%w: has %d hard links", ErrUnsafeMailbox, fst.Nlink)
	case opts.CheckOwner && fst.Uid != uint32(opts.ExpectUID):
		return fmt.Errorf("%w: owner is uid %d, the scan saw uid %d", ErrUnsafeMailbox, fst.Uid, opts.ExpectUID)
	case fst.Uid != firstUID:
		return fmt.Errorf("%w: owner changed from uid %d to %d", ErrUnsafeMailbox, firstUID, fst.Uid)
	}
	return nil
}

// lock takes the configured locks on f.
func (p *mboxPruner) lock(f *os.File) (*mboxlock.Held, error) {
	lo := p.opts.Lock
	if len(lo.Kinds) == 0 {
		lo.Kinds = mboxlock.DefaultKinds
	}
	held, err := mboxlock.Lock(p.ctx, p.path, f, lo)
	p.kinds = lo.Kinds
	if err != nil && errors.Is(err, mboxlock.ErrDirNotWritable) && p.opts.Rewrite != RewriteRename && !p.opts.DryRun {
		// No dotlock can be made where no file can be: lock the inode
		// with the kernel locks (fcntl at least), as an in-place rewrite
		// by the mailbox's owner does (mutt without its dotlock helper).
		var kernel []mboxlock.Kind
		for _, k := range lo.Kinds {
			if k != mboxlock.Dotlock {
				kernel = append(kernel, k)
			}
		}
		if len(kernel) == 0 {
			kernel = []mboxlock.Kind{mboxlock.Fcntl}
		}
		klo := lo
		klo.Kinds = kernel
		held, err = mboxlock.Lock(p.ctx, p.path, f, klo)
		p.kinds = kernel
		if err == nil && !p.kernelOnly {
			p.kernelOnly = true
			p.res.Notes = append(p.res.Notes, fmt.Sprintf("no dotlock: directory %s is not writable; locked with %s only", p.dir, kindList(kernel)))
		}
	}
	if err != nil {
		if errors.Is(err, mboxlock.ErrDirNotWritable) {
			return nil, fmt.Errorf("cannot lock: directory %s is not writable: %w", p.dir, err)
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	held.KeepFresh(p.ctx)
	return held, nil
}

// segment is a piece of the new mailbox: bytes [off, off+n) of the old
// file, or a literal (the moved X-IMAPbase line).
type segment struct {
	off, n int64
	lit    []byte
}

// plan is what the new mailbox is made of.
type plan struct {
	segs []segment
	size int64 // bytes of the new mailbox
}

// keep appends bytes [off, off+n) of the old file, merging adjacent runs so
// the plan grows with the runs of kept messages, not with the messages.
func (pl *plan) keep(off, n int64) {
	if n <= 0 {
		return
	}
	pl.size += n
	if k := len(pl.segs); k > 0 && pl.segs[k-1].lit == nil && pl.segs[k-1].off+pl.segs[k-1].n == off {
		pl.segs[k-1].n += n
		return
	}
	pl.segs = append(pl.segs, segment{off: off, n: n})
}

func (pl *plan) literal(b []byte) {
	pl.size += int64(len(b))
	pl.segs = append(pl.segs, segment{lit: b})
}

// plan scans the first size bytes of the mailbox and decides per message,
// filling the counts of p.res.
func (p *mboxPruner) plan(size int64) (*plan, error) {
	res := p.res
	res.BytesBefore = size
	res.MessagesBefore, res.MessagesRemoved, res.BytesRemoved, res.KeptUndated = 0, 0, 0, 0
	res.Removed = nil
	p.items = p.items[:0]
	p.imapState = ""

	pl := &plan{}
	sc := mboxscan.NewScanner(io.NewSectionReader(p.f, 0, size), p.path)
	defer sc.Close()
	var (
		pos       int64 // end of the last span seen
		first     = true
		sawPseudo bool
		seen      bool   // a message was seen
		imapBase  string // X-IMAPbase value of the removed first message, to move
	)
	g := &grouper{p: p, decide: func(group []decision) error {
		return p.decideGroup(pl, group, &first, sawPseudo, &imapBase)
	}}
	for {
		if err := p.ctx.Err(); err != nil {
			return nil, err
		}
		m, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		if m.Offset < pos || m.Length < 0 || m.Offset+m.Length > size {
			return nil, fmt.Errorf("read: message at offset %d (length %d) does not follow the previous one ending at %d", m.Offset, m.Length, pos)
		}
		if !seen {
			seen = true
			// The first message: where UW-IMAP (pseudo-message, X-IMAP)
			// and Dovecot (X-IMAPbase) keep UIDVALIDITY and the next UID.
			switch {
			case m.Header.XIMAP != "":
				p.imapState = "X-IMAP"
			case m.Header.XIMAPBase != "":
				p.imapState = "X-IMAPbase"
			}
		}
		d := decision{m: m, gapOff: pos, gapLen: m.Offset - pos} // bytes no message covers: kept
		pos = m.Offset + m.Length
		if m.Pseudo {
			sawPseudo = true
		} else {
			res.MessagesBefore++
			var why KeepReason
			d.remove, why = Decide(m, p.opts.Policy, p.now)
			if why == KeepUndated {
				res.KeptUndated++
			}
		}
		if err := g.add(d); err != nil {
			return nil, err
		}
	}
	if err := g.flush(); err != nil {
		return nil, err
	}
	pl.keep(pos, size-pos)
	return pl, nil
}

// decision is Decide's verdict on one message, with the bytes before it
// that no message covers (kept in place).
type decision struct {
	m              *mboxscan.Message
	remove         bool
	gapOff, gapLen int64
	tail           []byte // the span's end, read once grouping needs it
}

// glued reports whether d must go with the message before it: its From_
// line directly follows that message's last line (see mboxscan's Glued).
func (d *decision) glued() bool { return d.m.Glued && d.gapLen == 0 && !d.m.Pseudo }

// decideGroup plans a group of messages that go or stay together: the
// group is removed only when every member is, else all of it is kept, so
// no message is ever cut in two. Groups are made by grouper.
func (p *mboxPruner) decideGroup(pl *plan, group []decision, first *bool, sawPseudo bool, imapBase *string) error {
	all := len(group) > 0
	for _, d := range group {
		all = all && d.remove
	}
	res := p.res
	for _, d := range group {
		m := d.m
		pl.keep(d.gapOff, d.gapLen)
		if m.Pseudo {
			pl.keep(m.Offset, m.Length)
			continue
		}
		remove := all
		if *first {
			*first = false
			if remove && !sawPseudo && m.Header.XIMAPBase != "" {
				*imapBase = m.Header.XIMAPBase
			}
		}
		if remove {
			res.MessagesRemoved++
			res.BytesRemoved += m.Length
			if p.opts.Archive.enabled() && !p.opts.DryRun {
				p.items = append(p.items, archItem{off: m.Offset, n: m.Length, received: m.Received})
			}
			if p.opts.List {
				res.Removed = append(res.Removed, removedEntry(m, p.opts.Policy))
			}
			continue
		}
		if *imapBase != "" {
			if m.Header.XIMAPBase == "" {
				if err := p.insertIMAPBase(pl, m, *imapBase); err != nil {
					return err
				}
			} else {
				pl.keep(m.Offset, m.Length)
			}
			*imapBase = ""
			continue
		}
		pl.keep(m.Offset, m.Length)
	}
	return nil
}

// insertIMAPBase keeps message m with an X-IMAPbase header line added right
// after its From_ line, in the line ending the From_ line has.
func (p *mboxPruner) insertIMAPBase(pl *plan, m *mboxscan.Message, value string) error {
	n := len(m.FromLine)
	buf := make([]byte, n+2)
	k, err := p.f.ReadAt(buf, m.Offset)
	if err != nil && err != io.EOF {
		return fmt.Errorf("read From_ line at offset %d: %w", m.Offset, err)
	}
	buf = buf[:k]
	var eol string
	switch {
	case len(buf) >= n+2 && buf[n] == '\r' && buf[n+1] == '\n':
		eol = "\r\n"
	case len(buf) >= n+1 && buf[n] == '\n':
		eol = "\n"
	}
	if eol == "" || !bytes.Equal(buf[:n], []byte(m.FromLine)) || int64(n+len(eol)) > m.Length {
		// Not where the scanner said: keep the message as it is rather
		// than guess; the UIDs are renumbered, no mail is lost.
		pl.keep(m.Offset, m.Length)
		return nil
	}
	head := int64(n + len(eol))
	pl.keep(m.Offset, head)
	pl.literal([]byte("X-IMAPbase: " + strings.TrimSpace(value) + eol))
	pl.keep(m.Offset+head, m.Length-head)
	return nil
}
