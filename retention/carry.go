package retention

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

// carryGrace is how long the carry-over waits before each look at the
// replaced file: long enough for a writer that was blocked on our fcntl
// lock to take it and append once we let go.
const carryGrace = 50 * time.Millisecond

// carryAppended handles writers that do not take the dotlock. A writer
// that locks only with fcntl (while we held it, it waited) or only with
// flock (we may not have held that at all) can have the replaced file open
// and append to it after it was scanned. Each round waits a moment, takes
// fcntl and flock on the replaced file (so a writer in the middle of an
// append finishes first), and appends whatever it grew by to the mailbox
// under the mailbox's locks. It stops after two rounds in a row found
// nothing. It is not cancelled by ctx: what it carries exists nowhere else.
func (p *mboxPruner) carryAppended(scanned int64) (carried int64, err error) {
	ctx := context.WithoutCancel(p.ctx)
	timeout := p.opts.Lock.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	done := scanned
	for quiet, round := 0, 0; quiet < 2 && round < 50; round++ {
		time.Sleep(carryGrace)
		release, err := waitWriters(ctx, p.f, timeout)
		if err != nil {
			return done - scanned, fmt.Errorf("wait for writers on the replaced file: %w", err)
		}
		var st unix.Stat_t
		err = unix.Fstat(int(p.f.Fd()), &st)
		if err == nil && st.Size > done {
			err = p.appendToMailbox(ctx, done, st.Size)
			if err == nil {
				done = st.Size
				quiet = 0
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
	if _, err := io.Copy(nf, io.NewSectionReader(p.f, from, to-from)); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	if err := nf.Sync(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	return nil
}

// rescue saves bytes [from, to) of the replaced file in a new file beside
// the mailbox, owned like the mailbox.
func (p *mboxPruner) rescue(from, to int64) (string, error) {
	name := fmt.Sprintf(".%s.mailkeep-rescue.%d", p.name, time.Now().UnixNano())
	fd, err := unix.Openat(p.dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	_ = unix.Fchown(fd, int(p.st.Uid), int(p.st.Gid))
	if _, err := io.Copy(f, io.NewSectionReader(p.f, from, to-from)); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	_ = unix.Fsync(p.dirfd)
	return p.dir + name, nil
}
