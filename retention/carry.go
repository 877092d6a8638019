package retention

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

// carryGrace is how long the carry-over waits before each look at the
// replaced file: long enough for a writer that was blocked on our fcntl
// lock to take it and append once we let go.
const carryGrace = 50 * time.Millisecond

// ErrReplacedChanged marks a carry-over that found the replaced mailbox
// changed within the bytes the new mailbox was made from (another program
// rewrote it after the rename: Dovecot moves the mail behind a header it
// rewrites). What the file holds from the first changed byte on is saved
// in a rescue file beside the mailbox and nothing is appended, so no
// message is doubled and none is lost; the error names the rescue file.
var ErrReplacedChanged = errors.New("the replaced mailbox was changed after it was read")

// ErrReplacedBusy marks a carry-over that gave up waiting for a writer
// holding the replaced mailbox's locks (a dovecot-lda that was waiting on
// the old file when it was replaced can loop there for good). What the
// file holds beyond the bytes read is saved in a rescue file; anything the
// writer writes after that goes to a deleted file.
var ErrReplacedBusy = errors.New("the replaced mailbox is still locked by a writer")

// carryAppended handles writers that do not take the dotlock. A writer
// that locks only with fcntl (while we held it, it waited) or only with
// flock (we may not have held that at all) can have the replaced file open
// and append to it after it was scanned. Each round waits a moment, takes
// fcntl and flock on the replaced file (so a writer in the middle of an
// append finishes first), and when the file changed (size or ctime since
// ref, its fstat right after the rename), checks that its first bytes are
// still those the new mailbox was made from (sums: see [prefixSums]) and
// appends whatever it grew by to the mailbox under the mailbox's locks.
// It stops after two rounds in a row found nothing, and within one lock
// timeout in all: a writer holding the file longer is left behind, with
// what it wrote so far saved (ErrReplacedBusy). A file changed before
// its end is not appended from (ErrReplacedChanged). It is not cancelled
// by ctx: what it carries exists nowhere else.
func (p *mboxPruner) carryAppended(scanned int64, sums *prefixSums, ref unix.Stat_t) (carried int64, err error) {
	ctx := context.WithoutCancel(p.ctx)
	timeout := p.opts.Lock.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	done := scanned
	for quiet, round := 0, 0; quiet < 2 && round < 50; round++ {
		time.Sleep(carryGrace)
		release, err := waitWriters(ctx, p.f, max(time.Until(deadline), carryGrace))
		if err != nil {
			return done - scanned, p.writerStuck(sums, done, timeout, err)
		}
		var st unix.Stat_t
		err = unix.Fstat(int(p.f.Fd()), &st)
		if err == nil && (st.Size != done || st.Ctim != ref.Ctim) {
			var n int64
			n, err = p.carryRound(ctx, sums, done, st.Size)
			done += n
			ref = st
			if n > 0 {
				quiet = 0
			} else {
				quiet++
			}
		} else {
			quiet++
		}
		release()
		if err != nil {
			return done - scanned, err
		}
	}
	return done - scanned, nil
}

// carryRound appends bytes [done, size) of the replaced file to the
// mailbox once its first done bytes are found unchanged, and extends sums
// over them. Called with the replaced file's writer locks held, so that
// what is checked, appended and hashed is the same.
func (p *mboxPruner) carryRound(ctx context.Context, sums *prefixSums, done, size int64) (int64, error) {
	off, err := sums.firstChange(p.f)
	if err != nil {
		return 0, fmt.Errorf("check the replaced file before carrying what was appended to it: %w", err)
	}
	if off >= 0 {
		return 0, p.refuseChanged(off, size)
	}
	if size <= done {
		return 0, nil // touched, not grown
	}
	if err := p.appendToMailbox(ctx, done, size); err != nil {
		return 0, err
	}
	if err := sums.extend(ctx, p.f, size); err != nil {
		return size - done, fmt.Errorf("carried %d bytes a writer appended to the replaced file, but cannot watch it further: %w", size-done, err)
	}
	return size - done, nil
}

// refuseChanged saves bytes [off, size) of the replaced file, which
// differs from what was read from byte off on, and returns ErrReplacedChanged
// saying where they are.
func (p *mboxPruner) refuseChanged(off, size int64) error {
	what := fmt.Errorf("%w from byte %d on (another program rewrote it after the rename; Dovecot does when it updates headers), so nothing more was appended from it, lest mail be doubled", ErrReplacedChanged, off)
	if size <= off {
		return fmt.Errorf("%w; it now ends at byte %d, so it holds nothing new", what, size)
	}
	rescue, err := p.rescue(off, size)
	if err != nil {
		return fmt.Errorf("%w; saving its bytes %d-%d failed (%w): they are in the replaced file, open by this process only", what, off, size, err)
	}
	return fmt.Errorf("%w: its bytes %d-%d, which hold any mail delivered to it (and may repeat mail the mailbox has), are saved in %s", what, off, size, rescue)
}

// writerStuck is the carry-over's end when a writer holds the replaced
// file beyond the deadline: it saves what the file holds beyond the done
// bytes (or from its first changed byte) without the writer's locks, and
// returns ErrReplacedBusy saying so.
func (p *mboxPruner) writerStuck(sums *prefixSums, done int64, timeout time.Duration, waitErr error) error {
	if errors.Is(waitErr, mboxlock.ErrTimeout) {
		waitErr = fmt.Errorf("still locked %s after the rename: %w", timeout, mboxlock.ErrTimeout)
	}
	who := "holder unknown"
	if pid := lockHolder(p.f); pid > 0 {
		who = fmt.Sprintf("pid %d", pid)
	}
	what := fmt.Errorf("%w (%s; %w); anything it writes from now on goes to the replaced file, which is deleted, and is lost unless its delivery fails and is retried", ErrReplacedBusy, who, waitErr)
	var st unix.Stat_t
	if err := unix.Fstat(int(p.f.Fd()), &st); err != nil {
		return fmt.Errorf("%w; fstat of the replaced file: %w", what, err)
	}
	from := done
	if off, err := sums.firstChange(p.f); err == nil && off >= 0 {
		from = off
	}
	if st.Size <= from {
		return fmt.Errorf("%w; it had written nothing to it", what)
	}
	rescue, err := p.rescue(from, st.Size)
	if err != nil {
		return fmt.Errorf("%w; saving its bytes %d-%d, all it changed or added since it was read, failed (%w)", what, from, st.Size, err)
	}
	return fmt.Errorf("%w; its bytes %d-%d, all it changed or added since it was read, are saved in %s (the writer may have been in the middle of a write: check them by hand)", what, from, st.Size, rescue)
}

// lockHolder returns the PID of a process holding a classic fcntl lock
// that conflicts with a write lock on f, or 0 when none or unknown (an OFD
// lock's owner is a file, not a process).
func lockHolder(f *os.File) int {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), ofdGetLk, &lk); err != nil || lk.Type == unix.F_UNLCK || lk.Pid <= 0 {
		return 0
	}
	return int(lk.Pid)
}

// waitWriters takes an fcntl (OFD) write lock and a flock on f, retrying
// without blocking until timeout, and returns the function that releases
// them.
func waitWriters(ctx context.Context, f *os.File, timeout time.Duration) (release func(), err error) {
	return lockKernel(ctx, f, timeout, true, true)
}

// lockKernel takes the chosen kernel locks on f (an OFD write lock for
// fcntl, flock), all or none, retrying without blocking until timeout;
// release drops only those it took.
func lockKernel(ctx context.Context, f *os.File, timeout time.Duration, fcntl, flock bool) (release func(), err error) {
	fd := int(f.Fd())
	whole := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	unlockAll := func() {
		if fcntl {
			un := unix.Flock_t{Type: unix.F_UNLCK, Whence: io.SeekStart}
			_ = unix.FcntlFlock(uintptr(fd), ofdSetLk, &un)
		}
		if flock {
			_ = unix.Flock(fd, unix.LOCK_UN)
		}
	}
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		var err error
		if fcntl {
			err = unix.FcntlFlock(uintptr(fd), ofdSetLk, &whole)
		}
		if err == nil && flock {
			err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		}
		if err == nil {
			return unlockAll, nil
		}
		unlockAll()
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("still locked after %s: %w", timeout, mboxlock.ErrTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// appendToMailbox appends bytes [from, to) of the replaced file to the
// mailbox, under the mailbox's locks. When that fails, it saves them to a
// rescue file beside the mailbox and still returns an error naming it.
func (p *mboxPruner) appendToMailbox(ctx context.Context, from, to int64) error {
	err := p.tryAppend(ctx, from, to)
	if err == nil {
		return nil
	}
	rescue, rerr := p.rescue(from, to)
	if rerr != nil {
		return fmt.Errorf("could not append %d bytes a writer added to the replaced file (%w), nor save them (%w): they are still in the replaced file, open by this process only", to-from, err, rerr)
	}
	return fmt.Errorf("could not append %d bytes a writer added to the replaced file: %w; saved them in %s", to-from, err, rescue)
}

func (p *mboxPruner) tryAppend(ctx context.Context, from, to int64) error {
	fd, err := unix.Openat(p.dirfd, p.name, unix.O_RDWR|unix.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open mailbox: %w", err)
	}
	_ = unix.SetNonblock(fd, false)
	nf := os.NewFile(uintptr(fd), p.path)
	defer nf.Close()
	q := *p
	q.ctx = ctx
	q.f = nf
	if err := q.checkFile("append"); err != nil {
		return err
	}
	held, err := q.lock(nf)
	if err != nil {
		return err
	}
	defer held.Unlock()
	if err := q.checkFile("append"); err != nil {
		return err
	}
	// A failed append is cut off again: the caller saves the bytes in a
	// rescue file, and a half message left in the mailbox would double
	// them and glue the next delivery onto it.
	end := q.st.Size
	var wrote int64
	cut := func(err error) error {
		// A writer that takes only a kernel lock we do not hold finishes
		// its append first; the cut is made only when the mailbox grew by
		// our bytes alone, or it would take the writer's mail.
		timeout := q.opts.Lock.Timeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		release, lerr := lockKernel(ctx, nf, timeout,
			!slices.Contains(q.kinds, mboxlock.Fcntl), !slices.Contains(q.kinds, mboxlock.Flock))
		if lerr != nil {
			return fmt.Errorf("%w; the %d bytes appended were not cut off the mailbox again: %w", err, wrote, lerr)
		}
		defer release()
		var st unix.Stat_t
		if ferr := unix.Fstat(int(nf.Fd()), &st); ferr != nil {
			return fmt.Errorf("%w; the %d bytes appended were not cut off the mailbox again: fstat: %w", err, wrote, ferr)
		}
		if st.Size != end+wrote {
			return fmt.Errorf("%w; the %d bytes appended at byte %d were not cut off the mailbox again: another writer changed it too (now %d bytes)", err, wrote, end, st.Size)
		}
		if terr := nf.Truncate(end); terr != nil {
			return fmt.Errorf("%w; cutting the mailbox back to %d bytes failed: %w", err, end, terr)
		}
		if serr := nf.Sync(); serr != nil {
			return fmt.Errorf("%w; fsync after cutting the mailbox back to %d bytes: %w", err, end, serr)
		}
		return err
	}
	wrote, err = io.Copy(nf, io.NewSectionReader(p.f, from, to-from))
	if err != nil {
		return cut(fmt.Errorf("append: %w", err))
	}
	if err := nf.Sync(); err != nil {
		return cut(fmt.Errorf("fsync: %w", err))
	}
	return nil
}

// rescue saves bytes [from, to) of the replaced file in a new file beside
// the mailbox, owned like the mailbox.
func (p *mboxPruner) rescue(from, to int64) (string, error) {
	// Cut like the temporary files' names: a name near NAME_MAX would
	// fail with ENAMETOOLONG and leave the bytes in a deleted file only.
	base := p.name
	if len(base) > 180 {
		base = base[:180]
	}
	name := fmt.Sprintf(".%s.mailkeep-rescue.%d", base, time.Now().UnixNano())
	fd, err := unix.Openat(p.dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	// A rescue file that is not whole is removed: it would pass for the
	// saved copy, while the caller says the bytes were not saved.
	fail := func(err error) (string, error) {
		unix.Unlinkat(p.dirfd, name, 0)
		return "", err
	}
	_ = unix.Fchown(fd, int(p.st.Uid), int(p.st.Gid))
	if _, err := io.Copy(f, io.NewSectionReader(p.f, from, to-from)); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	_ = unix.Fsync(p.dirfd)
	return p.dir + name, nil
}
