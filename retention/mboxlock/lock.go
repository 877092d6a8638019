package mboxlock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults for the zero fields of [Options].
const (
	DefaultTimeout      = 30 * time.Second
	DefaultStaleAfter   = 5 * time.Minute
	DefaultRefreshEvery = time.Minute
)

// Back-off between attempts: exponential, with jitter, between these.
const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = time.Second
)

var (
	// ErrTimeout is wrapped in the error of a Lock that kept finding a
	// lock busy until Options.Timeout; a *BusyError names that lock.
	ErrTimeout = errors.New("lock timeout")
	// ErrDirNotWritable is wrapped when the dotlock cannot be created
	// because the mbox's directory is not writable (EACCES, EPERM, EROFS).
	// A caller may then fall back to kernel locks only, with an in-place
	// rewrite, since a rename into that directory would fail as well.
	ErrDirNotWritable = errors.New("directory not writable")
	// ErrLockLost is wrapped when our dotlock was removed or replaced by
	// another process (which judged it stale): we no longer hold it.
	ErrLockLost = errors.New("dotlock lost")
	// ErrFileReplaced is returned by Lock when the path no longer names
	// the file the caller opened: someone renamed a new mbox over it while
	// we waited. Locks on the old file protect nothing; reopen and retry.
	ErrFileReplaced = errors.New("mbox was replaced while waiting for the lock; reopen it")
)

// BusyError says which lock is held by someone else.
type BusyError struct {
	Kind Kind
	// Path is the lock file for a dotlock, the mbox for fcntl and flock.
	Path string
	// PID is the holder's process ID, 0 when unknown (procmail writes no
	// PID; an OFD lock's owner is a file, not a process).
	PID int
	// Detail adds what else is known, such as another host's name.
	Detail string
}

func (e *BusyError) Error() string {
	var s string
	switch e.Kind {
	case Dotlock:
		s = "dotlock " + e.Path + " is held"
	case Flock:
		s = "flock on " + e.Path + " is held"
	default:
		s = string(e.Kind) + " lock on " + e.Path + " is held"
	}
	if e.PID > 0 {
		s += fmt.Sprintf(" by pid %d", e.PID)
	} else {
		s += " by another process"
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Options say which locks to take and how long to try. The zero value
// takes [DefaultKinds] with the default timings.
type Options struct {
	// Kinds lists the locks to take; empty means DefaultKinds. The order
	// does not matter: the dotlock is always taken first, then the kernel
	// locks in the order listed.
	Kinds []Kind
	// Timeout is the total time to keep trying; 0 means DefaultTimeout
	// (30s), a negative value means a single attempt.
	Timeout time.Duration
	// StaleAfter: a dotlock untouched (mtime) for longer than this is
	// stale whoever holds it. 0 means DefaultStaleAfter, liblockfile's 5
	// minutes; Dovecot uses 2 (mbox_dotlock_change_timeout), procmail 17.
	StaleAfter time.Duration
	// RefreshEvery is KeepFresh's period; 0 means DefaultRefreshEvery.
	RefreshEvery time.Duration
	// Now is the clock for judging a dotlock's age; nil means time.Now.
	// Waiting uses the real clock whatever Now says.
	Now func() time.Time
}

func (o Options) normalize() (Options, error) {
	if len(o.Kinds) == 0 {
		o.Kinds = DefaultKinds
	}
	if err := checkKinds(o.Kinds); err != nil {
		return o, err
	}
	// Dotlock first: it is the lock every agent checks before touching
	// the file at all, and taking it before the kernel locks is
	// procmail's and Postfix's order.
	o.Kinds = slices.Clone(o.Kinds)
	if i := slices.Index(o.Kinds, Dotlock); i > 0 {
		o.Kinds = append([]Kind{Dotlock}, slices.Delete(o.Kinds, i, i+1)...)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = DefaultRefreshEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Held is the set of locks one Lock call took. Its methods are safe for
// concurrent use.
type Held struct {
	path string
	f    *os.File
	o    Options

	mu       sync.Mutex
	dot      *dotlock // nil without Dotlock
	kernel   []Kind   // kernel locks taken, in order
	released bool
	bgErr    error              // first failure of KeepFresh
	stop     context.CancelFunc // stops KeepFresh
	done     chan struct{}      // closed when KeepFresh has stopped
}

// Lock takes every lock of opts.Kinds on the mbox at path: the dotlock
// <path>.lock first, then the kernel locks on f, the caller's open file of
// that mbox. f must be opened read-write (O_RDWR) for Fcntl, since a write
// lock on a read-only descriptor fails with EBADF; it may be nil when
// Kinds is only Dotlock.
//
// It is all or nothing, and never blocks in the kernel: each round tries
// every lock without waiting, and if one is busy releases all taken so far
// and backs off (10ms doubling to 1s, with jitter) before the next round.
// When Timeout runs out the error wraps [ErrTimeout] and a [*BusyError]
// naming the busy lock and, when known, its holder's PID. Cancelling ctx
// stops the wait; the error then wraps ctx.Err(). Other errors:
// [ErrDirNotWritable]; [ErrFileReplaced]; a symlink at the lock path is
// refused. On any error no lock is left held and no file left behind.
//
// A stale dotlock is removed and taken over: see the package
// documentation for the rules. Locks are not reentrant: a second Lock of
// the same mbox by the same process waits like anyone else.
func Lock(ctx context.Context, path string, f *os.File, opts Options) (*Held, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if i := slices.IndexFunc(o.Kinds, func(k Kind) bool { return k != Dotlock }); i >= 0 && f == nil {
		return nil, fmt.Errorf("lock %s: the %s lock needs the open mbox file", path, o.Kinds[i])
	}
	deadline := time.Now().Add(o.Timeout)
	backoff := minBackoff
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		h, busy, err := tryAll(path, f, &o)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if busy == nil {
			if err := h.checkSameFile(); err != nil {
				return nil, errors.Join(err, h.Unlock())
			}
			return h, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("lock %s: %w after %s: %w", path, ErrTimeout, max(o.Timeout, 0), busy)
		}
		// Full jitter in the upper half: two waiters that collided do not
		// retry in lock step, and none waits much less than the backoff.
		sleep := min(backoff/2+rand.N(backoff/2+1), left)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("lock %s: %w (%w)", path, ctx.Err(), busy)
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// tryAll makes one round: every lock, in order, without waiting. On a busy
// lock or an error it releases what it took.
func tryAll(path string, f *os.File, o *Options) (*Held, *BusyError, error) {
	h := &Held{path: path, f: f, o: *o}
	fail := func(busy *BusyError, err error) (*Held, *BusyError, error) {
		if rerr := h.releaseAll(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return nil, busy, err
	}
	for _, k := range o.Kinds {
		if k == Dotlock {
			d, busy, err := tryDotlock(path+".lock", o)
			if busy != nil || err != nil {
				return fail(busy, err)
			}
			h.dot = d
			continue
		}
		busy, err := tryKernel(k, path, f)
		if busy != nil || err != nil {
			return fail(busy, err)
		}
		h.kernel = append(h.kernel, k)
	}
	return h, nil, nil
}

// checkSameFile verifies that path still names f's file.
func (h *Held) checkSameFile() error {
	if h.f == nil {
		return nil
	}
	var mine, now unix.Stat_t
	err := withFd(h.f, func(fd int) error { return unix.Fstat(fd, &mine) })
	if err != nil {
		return fmt.Errorf("lock %s: fstat: %w", h.path, err)
	}
	if err := unix.Lstat(h.path, &now); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("lock %s: %w", h.path, ErrFileReplaced)
		}
		return fmt.Errorf("lock %s: %w", h.path, err)
	}
	if !sameFile(&mine, &now) {
		return fmt.Errorf("lock %s: %w", h.path, ErrFileReplaced)
	}
	return nil
}

// releaseAll releases in reverse order of taking.
func (h *Held) releaseAll() error {
	var errs []error
	for _, k := range slices.Backward(h.kernel) {
		errs = append(errs, releaseKernel(k, h.path, h.f))
	}
	h.kernel = nil
	if h.dot != nil {
		errs = append(errs, h.dot.release())
		h.dot = nil
	}
	return errors.Join(errs...)
}

// Refresh sets the dotlock's mtime to now, so that no agent judges it
// stale, and checks it is still ours: it returns an error wrapping
// [ErrLockLost] if another process removed or replaced it. Call it about
// once a minute during a long rewrite, or use KeepFresh. Without a dotlock
// it does nothing.
func (h *Held) Refresh() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return fmt.Errorf("refresh lock on %s: already unlocked", h.path)
	}
	if h.dot == nil {
		return nil
	}
	return h.dot.refresh()
}

// KeepFresh starts a goroutine that calls Refresh every
// Options.RefreshEvery until Unlock or until ctx is done, and returns at
// once. The goroutine stops at the first failure, which Check then
// returns. Calling it again, or without a dotlock, does nothing.
func (h *Held) KeepFresh(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released || h.dot == nil || h.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	h.stop, h.done = cancel, done
	go func() {
		defer close(done)
		t := time.NewTicker(h.o.RefreshEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := h.Refresh(); err != nil {
				h.mu.Lock()
				if h.bgErr == nil && !h.released {
					h.bgErr = err
				}
				h.mu.Unlock()
				return
			}
		}
	}()
}

// Check reports whether the locks are still held as far as can be seen:
// it returns KeepFresh's failure if there was one, else an error wrapping
// [ErrLockLost] if the dotlock is no longer ours. Call it right before a
// rename that replaces the mbox. (Kernel locks cannot be taken away.)
func (h *Held) Check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return fmt.Errorf("lock on %s: already unlocked", h.path)
	}
	if h.bgErr != nil {
		return h.bgErr
	}
	if h.dot == nil {
		return nil
	}
	return h.dot.check()
}

// Unlock releases every lock in the reverse order of taking. The dotlock
// is removed only if it is still ours; if another process replaced it,
// theirs is left and the error wraps [ErrLockLost]. Unlocking twice is a
// no-op. Unlock does not close the caller's file.
func (h *Held) Unlock() error {
	h.mu.Lock()
	stop, done := h.stop, h.done
	h.mu.Unlock()
	if stop != nil {
		stop()
		<-done // KeepFresh's Refresh takes mu: wait without it
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return nil
	}
	h.released = true
	if err := h.releaseAll(); err != nil {
		return fmt.Errorf("unlock %s: %w", h.path, err)
	}
	return nil
}

// Path returns the mbox path the locks are on.
func (h *Held) Path() string { return h.path }

// Kinds returns the kinds held, in the order they were taken.
func (h *Held) Kinds() []Kind {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ks []Kind
	if h.dot != nil {
		ks = append(ks, Dotlock)
	}
	return append(ks, h.kernel...)
}
