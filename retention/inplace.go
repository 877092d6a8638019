package retention

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

// RewriteMode says how an mbox is rewritten.
type RewriteMode string

const (
	// RewriteAuto renames where it is safe and possible, else rewrites in
	// place and says why in the Result's notes: where Dovecot or UW-IMAP
	// keep state in the mailbox, where the directory is not writable, or
	// where a new file could not get the mailbox's owner and group (see
	// chooseMode).
	RewriteAuto RewriteMode = "auto"
	// RewriteRename writes a new file beside the mailbox and renames it
	// over the mailbox: atomic, but the inode changes.
	RewriteRename RewriteMode = "rename"
	// RewriteInplace builds the new content in a private file and copies
	// it over the mailbox, under a journal that a rerun finishes after a
	// crash. The inode, its fcntl locks and labels stay; no file is made
	// in the mailbox's directory (a dotlock is tried, and done without
	// when the directory is not writable).
	RewriteInplace RewriteMode = "inplace"
)

// ParseRewriteMode reads auto, rename or inplace ("" means auto).
func ParseRewriteMode(s string) (RewriteMode, error) {
	switch m := RewriteMode(s); m {
	case "", RewriteAuto:
		return RewriteAuto, nil
	case RewriteRename, RewriteInplace:
		return m, nil
	}
	return "", fmt.Errorf("unknown rewrite mode %q (want auto, rename or inplace)", s)
}

// DefaultStateDir is where in-place journals are kept when
// Options.StateDir is empty: /var/lib/mailkeep for root, else
// $XDG_STATE_HOME/mailkeep, else ~/.local/state/mailkeep.
func DefaultStateDir() (string, error) {
	if os.Geteuid() == 0 {
		return "/var/lib/mailkeep", nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "mailkeep"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil || !filepath.IsAbs(home) {
		return "", fmt.Errorf("no state directory: set XDG_STATE_HOME or HOME, or give one (--state-dir)")
	}
	return filepath.Join(home, ".local", "state", "mailkeep"), nil
}

// tailSample bounds the bytes of the old tail whose checksum tells, after
// a crash, whether the mailbox was already cut to its new size.
const tailSample = 1 << 20

// inplaceJournal is the recovery record of an in-place rewrite, in
// STATEDIR/inplace/DEV-INO.journal. Once it is durable the rewrite is
// finished by whoever finds it: the temporary file holds every byte the
// mailbox must have from First on, so the copy can be redone from the
// start at any point (roll forward, never back).
//
// Bytes the mailbox has beyond OldSize are mail appended meanwhile by a
// writer that does not take our locks; before they are overwritten, they
// are added to the temporary file and the journal is written again.
//
// The region [First+TempLen, OldSize) is never written before the final
// truncation, so a checksum of its first bytes (TailSHA256) tells a
// mailbox not yet cut (it matches) from one cut and grown again (it does
// not).
type inplaceJournal struct {
	Version    int    `json:"version"`
	Path       string `json:"path"`
	Dev        uint64 `json:"dev"`
	Ino        uint64 `json:"ino"`
	First      int64  `json:"first_changed"`
	OldSize    int64  `json:"old_size"`
	Temp       string `json:"temp"`
	TempLen    int64  `json:"temp_len"`
	TempSHA256 string `json:"temp_sha256"`
	TailLen    int64  `json:"tail_len"`
	TailSHA256 string `json:"tail_sha256"`
	// The mailbox's times before the rewrite, for the new-mail rule.
	AtimeNs int64 `json:"atime_ns"`
	MtimeNs int64 `json:"mtime_ns"`
}

func (j *inplaceJournal) newEnd() int64 { return j.First + j.TempLen }

func journalKey(st *unix.Stat_t) string {
	return strconv.FormatUint(st.Dev, 10) + "-" + strconv.FormatUint(st.Ino, 10)
}

// inplaceDir returns STATEDIR/inplace, made (0700) when create is set.
// Without create, "" means there is none.
func (p *mboxPruner) inplaceDir(create bool) (string, error) {
	sd := p.opts.StateDir
	if sd == "" {
		d, err := DefaultStateDir()
		if err != nil {
			if !create {
				return "", nil
			}
			return "", err
		}
		sd = d
	}
	dir := filepath.Join(sd, "inplace")
	if !create {
		if _, err := os.Stat(dir); err != nil {
			return "", nil
		}
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("state directory for the in-place journal: %w", err)
	}
	return dir, nil
}

// identityPrefix is how many leading bytes the new mailbox shares with the
// old one; the plan's segments after it are what must be written.
func identityPrefix(pl *plan) (first int64, rest []segment) {
	if len(pl.segs) > 0 && pl.segs[0].lit == nil && pl.segs[0].off == 0 {
		return pl.segs[0].n, pl.segs[1:]
	}
	return 0, pl.segs
}

// rewriteInplace builds the new content from the first changed byte on in
// a temporary file, then finishes it (see finishInplace). Called under the
// mailbox's locks with the plan made from the first scanned bytes.
func (p *mboxPruner) rewriteInplace(pl *plan, scanned int64) error {
	dir, err := p.inplaceDir(true)
	if err != nil {
		return err
	}
	key := journalKey(&p.st)
	tmpDir := p.opts.TmpDir
	if tmpDir == "" {
		tmpDir = dir
	}
	first, rest := identityPrefix(pl)
	need := pl.size - first
	tmpPath := filepath.Join(tmpDir, key+".new")
	fd, err := unix.Open(tmpPath, unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create temporary file for the in-place rewrite: %w", err)
	}
	tmp := os.NewFile(uintptr(fd), tmpPath)
	defer tmp.Close()
	keepTmp := false
	defer func() {
		if !keepTmp {
			os.Remove(tmpPath)
		}
	}()
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err == nil && !skipSpaceCheck {
		if avail := int64(sfs.Bavail) * int64(sfs.Bsize); avail < need {
			return fmt.Errorf("%w in %s: the in-place rewrite needs %d bytes there, %d are available", ErrNoSpace, tmpDir, need, avail)
		}
	}
	w := &spanWriter{dst: tmp, src: p.f, buf: make([]byte, 1<<20), cfr: true}
	for i, s := range rest {
		if err := p.ctx.Err(); err != nil {
			return err
		}
		if s.lit != nil {
			err = w.literal(s.lit)
		} else {
			err = w.span(s.off, s.n)
		}
		if err != nil {
			return wrapWrite(err, tmpPath)
		}
		if i == 0 {
			crashPoint("inplace-building")
		}
	}
	if err := w.flush(); err != nil {
		return wrapWrite(err, tmpPath)
	}
	if w.written != need {
		return fmt.Errorf("write %s: wrote %d bytes, planned %d", tmpPath, w.written, need)
	}
	if err := tmp.Sync(); err != nil {
		return wrapWrite(fmt.Errorf("fsync: %w", err), tmpPath)
	}
	if err := fsyncDir(tmpDir); err != nil {
		return err
	}
	crashPoint("inplace-built")
	j := &inplaceJournal{
		Version: 1, Path: p.path, Dev: p.st.Dev, Ino: p.st.Ino,
		First: first, OldSize: scanned, Temp: tmpPath, TempLen: need,
		AtimeNs: p.st.Atim.Nano(), MtimeNs: p.st.Mtim.Nano(),
	}
	keepTmp = true
	err = p.finishInplace(j, tmp, dir, true)
	if err != nil && !p.replaced {
		keepTmp = false // no journal names it: the mailbox is untouched
	}
	return err
}

// finishInplace copies the temporary file over the mailbox from j.First,
// keeps what writers appended meanwhile, cuts the mailbox to its new end,
// sets its times and removes the journal and the temporary file. With
// fresh, the journal is written first (a rerun's journal exists already).
func (p *mboxPruner) finishInplace(j *inplaceJournal, tmp *os.File, dir string, fresh bool) error {
	jpath := filepath.Join(dir, strconv.FormatUint(j.Dev, 10)+"-"+strconv.FormatUint(j.Ino, 10)+".journal")
	grew, err := p.absorbGrowth(j, tmp)
	if err != nil {
		return err
	}
	if fresh || grew {
		if err := p.writeJournal(jpath, j, tmp); err != nil {
			return err
		}
	}
	// The mailbox itself names the journal while it is half rewritten, so
	// a run that keeps its journals elsewhere (another user's, another
	// --state-dir) sees it and leaves the mailbox alone.
	if err := markInplace(p.f, jpath); err != nil {
		return err
	}
	// From here on the rewrite is finished by a rerun if we die: no
	// cancellation.
	p.replaced = true
	crashPoint("journal-written")
	ctx := context.WithoutCancel(p.ctx)
	timeout := p.opts.Lock.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	var release func()
	defer func() {
		if release != nil {
			release()
		}
	}()
	done := int64(0)
	for {
		if err := copyAt(p.f, j.First+done, tmp, done, j.TempLen-done); err != nil {
			return fmt.Errorf("in-place rewrite interrupted (a rerun finishes it from %s): %w", jpath, err)
		}
		done = j.TempLen
		if err := p.f.Sync(); err != nil {
			return fmt.Errorf("in-place rewrite interrupted (a rerun finishes it from %s): fsync: %w", jpath, err)
		}
		crashPoint("inplace-copied")
		if release == nil {
			// Writers that take only fcntl or flock (which we may not
			// hold) finish their append before we look at the size for
			// the last time and cut; they wait for us from now on. The
			// locks we hold already stay ours: the run goes on after a
			// recovery.
			release, err = lockKernel(ctx, p.f, timeout,
				!slices.Contains(p.kinds, mboxlock.Fcntl), !slices.Contains(p.kinds, mboxlock.Flock))
			if err != nil {
				return fmt.Errorf("in-place rewrite interrupted (a rerun finishes it from %s): wait for writers: %w", jpath, err)
			}
		}
		grew, err := p.absorbGrowth(j, tmp)
		if err != nil {
			return fmt.Errorf("in-place rewrite interrupted (a rerun finishes it from %s): %w", jpath, err)
		}
		if !grew {
			break
		}
		p.res.Notes = append(p.res.Notes, "kept mail a writer appended during the in-place rewrite")
		if err := p.writeJournal(jpath, j, tmp); err != nil {
			return err
		}
	}
	if err := p.f.Truncate(j.newEnd()); err != nil {
		return fmt.Errorf("in-place rewrite interrupted (a rerun finishes it from %s): truncate: %w", jpath, err)
	}
	crashPoint("inplace-truncated")
	orig := unix.Stat_t{Atim: unix.NsecToTimespec(j.AtimeNs), Mtim: unix.NsecToTimespec(j.MtimeNs)}
	if err := setTimes(p.f, &orig, time.Now()); err != nil {
		return err
	}
	if err := p.f.Sync(); err != nil {
		return fmt.Errorf("fsync the rewritten mailbox: %w", err)
	}
	return p.dropJournal(jpath, j)
}

// absorbGrowth moves what the mailbox has beyond j.OldSize (appended by a
// writer that does not take our locks) to the end of the temporary file,
// durably, so that the copy puts it after the kept messages.
func (p *mboxPruner) absorbGrowth(j *inplaceJournal, tmp *os.File) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(p.f.Fd()), &st); err != nil {
		return false, fmt.Errorf("fstat: %w", err)
	}
	if st.Size < j.OldSize {
		return false, fmt.Errorf("the mailbox shrank from %d to %d bytes while locked", j.OldSize, st.Size)
	}
	if st.Size == j.OldSize {
		return false, nil
	}
	if err := copyAtN(tmp, j.TempLen, p.f, j.OldSize, st.Size-j.OldSize); err != nil {
		return false, wrapWrite(err, tmp.Name())
	}
	if err := tmp.Sync(); err != nil {
		return false, wrapWrite(err, tmp.Name())
	}
	j.TempLen += st.Size - j.OldSize
	j.OldSize = st.Size
	return true, nil
}

// writeJournal computes the checksums and writes j durably (temp name,
// fsync, rename, fsync of the directory).
func (p *mboxPruner) writeJournal(jpath string, j *inplaceJournal, tmp *os.File) error {
	sum, err := hashRange(tmp, 0, j.TempLen)
	if err != nil {
		return fmt.Errorf("checksum %s: %w", tmp.Name(), err)
	}
	j.TempSHA256 = sum
	j.TailLen = min(tailSample, j.OldSize-j.newEnd())
	if j.TailSHA256, err = hashRange(p.f, j.newEnd(), j.TailLen); err != nil {
		return fmt.Errorf("checksum the mailbox's tail: %w", err)
	}
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	tmpPath := jpath + ".tmp"
	f, err := os.OpenFile(tmpPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmpPath, jpath)
	}
	if err == nil {
		err = fsyncDir(filepath.Dir(jpath))
	}
	if err != nil {
		os.Remove(tmpPath)
		return fmt.Errorf("write journal %s: %w", jpath, err)
	}
	return nil
}

// dropJournal removes the journal, then the temporary file.
func (p *mboxPruner) dropJournal(jpath string, j *inplaceJournal) error {
	if err := unmarkInplace(p.f); err != nil {
		return fmt.Errorf("mailbox rewritten, but %w", err)
	}
	if err := os.Remove(jpath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mailbox rewritten, but removing the journal %s failed: %w", jpath, err)
	}
	if err := fsyncDir(filepath.Dir(jpath)); err != nil {
		return fmt.Errorf("mailbox rewritten, but %w", err)
	}
	crashPoint("inplace-done")
	if err := os.Remove(j.Temp); err != nil && !errors.Is(err, os.ErrNotExist) {
		p.res.Notes = append(p.res.Notes, fmt.Sprintf("could not remove %s: %v", j.Temp, err))
	}
	return nil
}

// recoverInplace finishes an in-place rewrite of the locked mailbox that
// a killed run left, if its journal exists. Then p.st is refreshed.
func (p *mboxPruner) recoverInplace() error {
	dir, err := p.inplaceDir(false)
	if err != nil {
		return err
	}
	jpath := ""
	if dir != "" {
		jpath = filepath.Join(dir, journalKey(&p.st)+".journal")
	}
	if other := inplaceMark(p.f); other != "" && other != jpath {
		return fmt.Errorf("%w: its journal is %s; run prune as the user (or with the --state-dir) that made it to finish the rewrite", ErrHalfRewritten, other)
	}
	if dir == "" {
		return nil
	}
	data, err := os.ReadFile(jpath)
	if errors.Is(err, os.ErrNotExist) {
		if inplaceMark(p.f) == jpath {
			return fmt.Errorf("%w: its journal %s is gone; see to the mailbox by hand", ErrHalfRewritten, jpath)
		}
		if !p.opts.DryRun {
			// A run killed before its journal was durable, or right
			// after removing it, leaves its temporary file: no journal
			// names it, and we hold the mailbox's locks.
			tmpDir := p.opts.TmpDir
			if tmpDir == "" {
				tmpDir = dir
			}
			stale := filepath.Join(tmpDir, journalKey(&p.st)+".new")
			if err := os.Remove(stale); err == nil {
				p.res.Notes = append(p.res.Notes, "removed "+stale+", a temporary file left by an interrupted run")
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read journal of an interrupted in-place rewrite: %w", err)
	}
	var j inplaceJournal
	if err := json.Unmarshal(data, &j); err != nil || j.Version != 1 {
		return fmt.Errorf("journal %s of an interrupted in-place rewrite is unreadable (%v): the mailbox is left as it is; see to it by hand", jpath, err)
	}
	if j.Dev != p.st.Dev || j.Ino != p.st.Ino {
		return fmt.Errorf("journal %s names another file", jpath)
	}
	if p.opts.DryRun {
		return fmt.Errorf("an in-place rewrite of this mailbox was interrupted (journal %s): run prune without --dry-run to finish it", jpath)
	}
	cannot := func(err error) error {
		return fmt.Errorf("an interrupted in-place rewrite cannot be finished (journal %s): %w; the mailbox is left as it is", jpath, err)
	}
	fd, err := unix.Open(j.Temp, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return cannot(fmt.Errorf("open %s: %w", j.Temp, err))
	}
	tmp := os.NewFile(uintptr(fd), j.Temp)
	defer tmp.Close()
	var tst unix.Stat_t
	if err := unix.Fstat(fd, &tst); err != nil {
		return cannot(err)
	}
	if tst.Size < j.TempLen {
		return cannot(fmt.Errorf("%s is %d bytes, the journal says %d", j.Temp, tst.Size, j.TempLen))
	}
	if tst.Size > j.TempLen {
		// Appended mail being saved when the run died; the mailbox
		// still has it.
		if err := tmp.Truncate(j.TempLen); err != nil {
			return cannot(err)
		}
	}
	if sum, err := hashRange(tmp, 0, j.TempLen); err != nil || sum != j.TempSHA256 {
		return cannot(fmt.Errorf("%s does not match its checksum (%v)", j.Temp, err))
	}
	size := p.st.Size
	// copied says whether the mailbox holds the whole new content from
	// First on, as it does once the copy is done. A size or tail that
	// says "cut already" is trusted only then: another program may have
	// shrunk or rewritten a mailbox left half copied, and the temporary
	// file is then the only whole copy of the kept mail.
	copied := func() error {
		sum, err := hashRange(p.f, j.First, j.TempLen)
		if err != nil {
			return err
		}
		if sum != j.TempSHA256 {
			return fmt.Errorf("the mailbox is %d bytes and does not hold the rewrite's content from byte %d on: someone else changed it (the kept mail is in %s)", size, j.First, j.Temp)
		}
		return nil
	}
	switch {
	case size < j.OldSize:
		// Cut already: only the journal was left.
		if size < j.newEnd() {
			return cannot(fmt.Errorf("the mailbox is %d bytes, shorter than the rewrite's %d: someone else changed it", size, j.newEnd()))
		}
		if err := copied(); err != nil {
			return cannot(err)
		}
		err = p.dropJournal(jpath, &j)
	default:
		tail, herr := hashRange(p.f, j.newEnd(), j.TailLen)
		if herr != nil {
			return cannot(herr)
		}
		if tail != j.TailSHA256 {
			// Cut already, and mail delivered since.
			if err := copied(); err != nil {
				return cannot(err)
			}
			err = p.dropJournal(jpath, &j)
			break
		}
		err = p.finishInplace(&j, tmp, dir, false)
	}
	if err != nil {
		return err
	}
	p.res.Notes = append(p.res.Notes, "finished an in-place rewrite that an earlier run left interrupted")
	p.replaced = false
	return p.checkFile("recover")
}

// copyAt copies n bytes from src at soff to dst at doff: with the kernel's
// copy where it can, else through a buffer. It crosses the crash point
// "inplace-mid-copy" half-way.
func copyAt(dst *os.File, doff int64, src *os.File, soff, n int64) error {
	half := n / 2
	if err := copyAtN(dst, doff, src, soff, half); err != nil {
		return err
	}
	crashPoint("inplace-mid-copy")
	return copyAtN(dst, doff+half, src, soff+half, n-half)
}

func copyAtN(dst *os.File, doff int64, src *os.File, soff, n int64) error {
	for n > 0 {
		k, err := copyFileRange(int(src.Fd()), &soff, int(dst.Fd()), &doff, int(min(n, 1<<30)))
		if err == unix.EINTR {
			continue
		}
		if err != nil || k == 0 {
			break // another file system, an old kernel: copy by hand
		}
		n -= int64(k)
	}
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		k := int(min(n, int64(len(buf))))
		got, err := src.ReadAt(buf[:k], soff)
		if got > 0 {
			if _, werr := dst.WriteAt(buf[:got], doff); werr != nil {
				return werr
			}
		}
		soff += int64(got)
		doff += int64(got)
		n -= int64(got)
		if err != nil && n > 0 {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// hashRange is the hex SHA-256 of n bytes of f at off.
func hashRange(f *os.File, off, n int64) (string, error) {
	h := sha256.New()
	if n > 0 {
		got, err := io.Copy(h, io.NewSectionReader(f, off, n))
		if err != nil {
			return "", err
		}
		if got != n {
			return "", io.ErrUnexpectedEOF
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func fsyncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// chooseMode applies Options.Rewrite to this mailbox and says, for auto,
// why it rewrites in place (for rename, the risk it was told to take).
//
// Auto renames unless the directory is not writable, a new file could not
// get the mailbox's owner and group, or an IMAP server keeps state in the
// mailbox (see imapServerState): Dovecot's LDA takes fcntl before the
// dotlock and checks whether the mbox was replaced before it waits for
// fcntl, not after, so one that was waiting on the old file when it was
// renamed over wakes up holding a deleted file; it appends there (which
// the carry-over saves), rewrites headers there, or loops for good
// waiting for that file's mtime to follow utime() on the path. In place,
// the inode stays and it finds the mailbox rewritten, as after mutt.
func (p *mboxPruner) chooseMode() (RewriteMode, string) {
	switch p.opts.Rewrite {
	case RewriteRename:
		if why := p.imapServerState(); why != "" {
			return RewriteRename, "renamed as --rewrite rename asks, though " + why + ": a dovecot-lda waiting on the old file is stranded there"
		}
		return RewriteRename, ""
	case RewriteInplace:
		return RewriteInplace, ""
	}
	if p.kernelOnly {
		return RewriteInplace, fmt.Sprintf("rewrote in place: directory %s is not writable, so no new file can be renamed over the mailbox", p.dir)
	}
	if err := unix.Faccessat(p.dirfd, ".", unix.W_OK|unix.X_OK, unix.AT_EACCESS); err != nil {
		return RewriteInplace, fmt.Sprintf("rewrote in place: directory %s is not writable (%s), so no new file can be renamed over the mailbox", p.dir, err)
	}
	if why := p.imapServerState(); why != "" {
		return RewriteInplace, "rewrote in place: " + why + "; a rename would strand a dovecot-lda waiting on the old file"
	}
	if os.Geteuid() != 0 && !mayGiveGroup(&p.st) {
		return RewriteInplace, fmt.Sprintf("rewrote in place: a new file could not be given the mailbox's owner %d and group %d", p.st.Uid, p.st.Gid)
	}
	return RewriteRename, ""
}

// imapServerState says why Dovecot or UW-IMAP is taken to serve the
// mailbox, or "" when nothing shows it: the first message (or the
// pseudo-message) carries X-IMAPbase or X-IMAP, which both write when
// they sync the mailbox (dovecot-lda does on its first delivery), or
// Dovecot's index directory for it, .imap/NAME, is beside it (its default
// for folders under the mail root; an INDEX= location elsewhere is not
// looked for). Both are found without extra reading.
func (p *mboxPruner) imapServerState() string {
	if p.imapState != "" {
		return fmt.Sprintf("the mailbox holds Dovecot/UW-IMAP state (%s)", p.imapState)
	}
	var st unix.Stat_t
	if len(p.name) <= 255 && unix.Fstatat(p.dirfd, ".imap/"+p.name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return "Dovecot keeps an index for the mailbox (.imap/" + p.name + " beside it)"
	}
	return ""
}

// mayGiveGroup reports whether we, not root, may give a new file st's
// owner and group.
func mayGiveGroup(st *unix.Stat_t) bool {
	if st.Uid != uint32(os.Geteuid()) {
		return false
	}
	if st.Gid == uint32(os.Getegid()) {
		return true
	}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if uint32(g) == st.Gid {
			return true
		}
	}
	return false
}

func kindList(kinds []mboxlock.Kind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, "+")
}

// ErrHalfRewritten marks a mailbox an interrupted in-place rewrite left
// half copied, whose journal this run cannot use: it is left as it is.
var ErrHalfRewritten = errors.New("an in-place rewrite of this mailbox was interrupted")

// inplaceXattr marks the mailbox being rewritten in place; scan reports it.
const inplaceXattr = mboxscan.InplaceXattr

// markInplace sets the marker. A file system without user extended
// attributes (some NFS mounts) cannot carry it: the rewrite goes on, as
// safe as before for runs sharing the state directory.
func markInplace(f *os.File, jpath string) error {
	err := unix.Fsetxattr(int(f.Fd()), inplaceXattr, []byte(jpath), 0)
	if err == nil || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	return fmt.Errorf("mark the mailbox as being rewritten in place: %w", err)
}

func unmarkInplace(f *os.File) error {
	err := unix.Fremovexattr(int(f.Fd()), inplaceXattr)
	if err == nil || errors.Is(err, errNoXattr) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	return fmt.Errorf("remove the in-place marker: %w", err)
}

// inplaceMark returns the journal the mailbox's marker names, "" for none.
func inplaceMark(f *os.File) string { return mboxscan.InplaceJournal(f) }
