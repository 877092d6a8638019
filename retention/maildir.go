package retention

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// maildirsizeRecount is the size at which Maildir++ says maildirsize is to
// be recalculated: it is removed, and the next delivery agent or IMAP
// server that needs it counts the store again.
const maildirsizeRecount = 5120

// tmpMaxAge is the Maildir convention for abandoned deliveries in tmp/.
const tmpMaxAge = 36 * time.Hour

// PruneMaildir applies opts.Policy to the Maildir folder dir (the
// directory holding cur/ and new/); store is the Maildir root whose
// maildirsize (Maildir++ quota) the folder counts against, "" for dir.
//
// Removed messages are unlinked from cur/ and new/, relative to those
// directories opened without following symlinks, after checking that the
// name still names a regular file with the modification time the scan saw
// (a message an MUA moved or replaced meanwhile is left alone). tmp/ is
// left alone unless opts.CleanTmp, which removes tmp/ files whose ctime is
// older than 36 hours. dovecot-uidlist, dovecot-keywords and index files are
// never touched: servers notice the missing files. maildirsize gets one
// "-bytes -count" line appended (one O_APPEND write), or is removed for a
// recount when it would reach 5120 bytes.
//
// Errors for single files are joined and returned after the walk; the
// Result counts what was removed. The Result is never nil.
func PruneMaildir(ctx context.Context, dir, store string, opts Options) (*Result, error) {
	res := &Result{Path: dir, Format: mboxscan.FormatMaildir}
	if err := opts.Policy.Validate(); err != nil {
		return res, err
	}
	if store == "" {
		store = dir
	}
	if err := pruneMaildir(ctx, dir, store, opts, res); err != nil {
		return res, fmt.Errorf("prune %s: %w", dir, err)
	}
	return res, nil
}

func pruneMaildir(ctx context.Context, dir, store string, opts Options, res *Result) error {
	now := opts.now()
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			return fmt.Errorf("%w: not a directory or a symlink, not followed", ErrUnsafeMailbox)
		}
		return fmt.Errorf("open: %w", err)
	}
	defer unix.Close(dirfd)
	if opts.CheckOwner {
		var st unix.Stat_t
		if err := unix.Fstat(dirfd, &st); err != nil {
			return fmt.Errorf("fstat: %w", err)
		}
		if st.Uid != uint32(opts.ExpectUID) {
			return fmt.Errorf("%w: owner is uid %d, the scan saw uid %d", ErrUnsafeMailbox, st.Uid, opts.ExpectUID)
		}
	}
	subs := map[string]int{}
	for _, s := range [...]string{"cur", "new"} {
		fd, err := unix.Openat(dirfd, s, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open %s/: %w", s, err)
		}
		defer unix.Close(fd)
		subs[filepath.Join(dir, s)] = fd
	}

	var (
		errs         []error
		removedBytes int64
		removedCount int64
		archiving    = opts.Archive.enabled() && !opts.DryRun
		pending      []pendingUnlink // with an archive: removed once archived
	)
	walkErr := mboxscan.ReadMaildirFolder(ctx, dir, func(m *mboxscan.Message) error {
		res.MessagesBefore++
		res.BytesBefore += m.Length
		remove, why := Decide(m, opts.Policy, now)
		if why == KeepUndated {
			res.KeptUndated++
		}
		if !remove {
			return nil
		}
		if archiving {
			subfd, ok := subs[filepath.Dir(m.Path)]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: not in %s/cur or %s/new, left alone", m.Path, dir, dir))
				return nil
			}
			pu := pendingUnlink{subfd: subfd, name: filepath.Base(m.Path), path: m.Path,
				length: m.Length, received: m.Received, sender: m.Sender}
			if opts.List {
				pu.entry = removedEntry(m, opts.Policy)
			}
			pending = append(pending, pu)
			return nil
		}
		if !opts.DryRun {
			subfd, ok := subs[filepath.Dir(m.Path)]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: not in %s/cur or %s/new, left alone", m.Path, dir, dir))
				return nil
			}
			if testMaildirHook != nil {
				testMaildirHook()
			}
			gone, err := unlinkMessage(subfd, filepath.Base(m.Path), m)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			if !gone {
				return nil // moved or replaced meanwhile: not ours to remove
			}
			removedBytes += m.Length
			removedCount++
		}
		res.MessagesRemoved++
		res.BytesRemoved += m.Length
		if opts.List {
			res.Removed = append(res.Removed, removedEntry(m, opts.Policy))
		}
		return nil
	})
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	if opts.DryRun && opts.Archive.enabled() {
		res.MessagesArchived = res.MessagesRemoved
	}
	if archiving && len(pending) > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n, b, err := archiveAndUnlink(ctx, dir, store, opts, res, pending)
		removedCount += n
		removedBytes += b
		if err != nil {
			errs = append(errs, err)
		}
	}
	if removedCount > 0 {
		note, err := updateMaildirsize(store, removedBytes, removedCount)
		if err != nil {
			errs = append(errs, err)
		}
		if note != "" {
			res.Notes = append(res.Notes, note)
		}
	}
	if opts.CleanTmp {
		note, err := cleanMaildirTmp(dirfd, now, opts.DryRun)
		if err != nil {
			errs = append(errs, err)
		}
		if note != "" {
			res.Notes = append(res.Notes, note)
		}
	}
	return errors.Join(errs...)
}

// pendingUnlink is a Maildir message to remove once it is archived.
type pendingUnlink struct {
	subfd    int
	name     string
	path     string
	length   int64
	received time.Time
	sender   string
	entry    Removed
}

// archiveAndUnlink archives the removed messages, then unlinks those that
// are in the archive (and still the files that were read).
func archiveAndUnlink(ctx context.Context, dir, store string, opts Options, res *Result, pending []pendingUnlink) (count, bytes int64, err error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("stat: %w", err)
	}
	items := make([]archItem, len(pending))
	for i, pu := range pending {
		items[i] = archItem{path: pu.path, n: pu.length, received: pu.received, sender: pu.sender}
	}
	a := &archiver{
		ctx: ctx, opts: opts.Archive, source: dir, name: maildirArchiveName(dir, store),
		uid: int(st.Uid), gid: int(st.Gid), timeout: opts.Lock.Timeout,
		open: func(it *archItem) (io.ReadCloser, error) {
			pu := &pending[it.index]
			return openMessage(pu.subfd, pu.name, pu.path, pu.received)
		},
	}
	for i := range items {
		items[i].index = i
	}
	_, aerr := a.archive(items)
	res.Archives = a.files
	res.Notes = append(res.Notes, a.notes...)
	var errs []error
	if aerr != nil {
		errs = append(errs, aerr)
	}
	for i, it := range items {
		if !it.done {
			continue
		}
		res.MessagesArchived++
		pu := pending[i]
		gone, err := unlinkMessage(pu.subfd, pu.name, &mboxscan.Message{Path: pu.path, Received: pu.received})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !gone {
			continue // moved or changed since: it stays, and is archived too
		}
		count++
		bytes += pu.length
		res.MessagesRemoved++
		res.BytesRemoved += pu.length
		if opts.List {
			res.Removed = append(res.Removed, pu.entry)
		}
	}
	return count, bytes, errors.Join(errs...)
}

// errMessageChanged: a Maildir message was moved or changed by a mail
// client after the scan; it is left alone (neither archived nor removed).
var errMessageChanged = errors.New("moved or changed since it was read, left alone")

// openMessage opens a Maildir message file for reading if it is still the
// regular file the scan read (same mtime).
func openMessage(subfd int, name, path string, received time.Time) (io.ReadCloser, error) {
	fd, err := unix.Openat(subfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|oNoatime, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Openat(subfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%s: %w", path, errMessageChanged)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, fmt.Errorf("fstat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("%s: %w: not a regular file", path, ErrUnsafeMailbox)
	}
	if !received.IsZero() && !time.Unix(st.Mtim.Sec, st.Mtim.Nsec).Equal(received) {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, errMessageChanged)
	}
	return f, nil
}

// testMaildirHook runs before each unlink; set by tests only.
var testMaildirHook func()

// unlinkMessage removes name from the directory subfd if it still is the
// regular file the scan read (same mtime). gone is false when it was moved
// or changed meanwhile.
func unlinkMessage(subfd int, name string, m *mboxscan.Message) (gone bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(subfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("%s: %w", m.Path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, fmt.Errorf("%s: %w: not a regular file any more, left alone", m.Path, ErrUnsafeMailbox)
	}
	if !m.Received.IsZero() && !time.Unix(st.Mtim.Sec, st.Mtim.Nsec).Equal(m.Received) {
		return false, nil
	}
	if err := unix.Unlinkat(subfd, name, 0); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, fmt.Errorf("remove %s: %w", m.Path, err)
	}
	return true, nil
}

// updateMaildirsize records the removal in the store's Maildir++
// maildirsize, when there is one.
func updateMaildirsize(store string, bytes, count int64) (note string, err error) {
	path := filepath.Join(store, "maildirsize")
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENOENT) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("update %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("update %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", fmt.Errorf("update %s: %w: not a regular file", path, ErrUnsafeMailbox)
	}
	line := fmt.Sprintf("-%d -%d\n", bytes, count)
	if st.Size+int64(len(line)) >= maildirsizeRecount {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("remove %s for a recount: %w", path, err)
		}
		return "removed " + path + " (reached 5120 bytes): the mail server recounts the quota", nil
	}
	// One write of a short line with O_APPEND: atomic against the other
	// writers of maildirsize, which append the same way.
	if _, err := f.Write([]byte(line)); err != nil {
		return "", fmt.Errorf("update %s: %w", path, err)
	}
	return "", nil
}

// cleanMaildirTmp removes tmp/ files whose ctime is older than 36 hours:
// deliveries abandoned half-way, by the Maildir convention.
func cleanMaildirTmp(dirfd int, now time.Time, dryRun bool) (note string, err error) {
	fd, err := unix.Openat(dirfd, "tmp", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("open tmp/: %w", err)
	}
	d := os.NewFile(uintptr(fd), "tmp")
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return "", fmt.Errorf("list tmp/: %w", err)
	}
	n := 0
	var errs []error
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG || now.Sub(time.Unix(st.Ctim.Sec, st.Ctim.Nsec)) <= tmpMaxAge {
			continue
		}
		if !dryRun {
			if err := unix.Unlinkat(fd, name, 0); err != nil {
				if !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("remove tmp/%s: %w", name, err))
				}
				continue
			}
		}
		n++
	}
	if n > 0 {
		verb := "removed"
		if dryRun {
			verb = "would remove"
		}
		note = fmt.Sprintf("%s %d file(s) older than 36 hours from tmp/", verb, n)
	}
	return note, errors.Join(errs...)
}
