package retention

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/emersion/go-mbox"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// Compression names the compression of an archive file.
type Compression string

const (
	// CompressGzip writes gzip members (compress/gzip); the default.
	CompressGzip Compression = "gzip"
	// CompressZstd writes zstd frames (github.com/klauspost/compress/zstd).
	CompressZstd Compression = "zstd"
)

// ParseCompression reads "gzip" or "zstd" ("" means gzip).
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(strings.ToLower(strings.TrimSpace(s))); c {
	case "", CompressGzip:
		return CompressGzip, nil
	case CompressZstd:
		return CompressZstd, nil
	}
	return "", fmt.Errorf("unknown archive compression %q (want gzip or zstd)", s)
}

// ArchiveOptions ask for the removed messages to be archived.
//
// # Archive files
//
// Each mailbox's removed messages go to compressed mbox files named by
// owner, mailbox and period:
//
//	DIR/OWNER/MAILBOX.YYYY-MM.mbox.gz   (.mbox.zst with zstd)
//	DIR/OWNER/MAILBOX.YYYY-MM.idx       what the archive holds
//
// OWNER is the user name of the mailbox's owner (its uid when the name is
// unknown). MAILBOX is an mbox file's name ("bob" for /var/mail/bob), and
// for a Maildir "USER.FOLDER": USER is the name of the directory holding
// the Maildir when that is called "Maildir" (else the Maildir's own name),
// FOLDER is INBOX or the Maildir++ folder without its dot ("bob.Trash" for
// /home/bob/Maildir/.Trash). YYYY-MM is the month (UTC) of the message's
// received date, "undated" when it has none. Names are cleaned of
// slashes, control characters and leading dots.
//
// An mbox message is copied as its original bytes (a missing final
// newline added); a Maildir message is written with go-mbox's Writer, with
// a From_ line made of its envelope sender (Return-Path, else
// MAILER-DAEMON) and received date, and lines starting with "From "
// escaped as ">From ". Each run appends one gzip member or zstd frame;
// readers (zcat, zstdcat, gzip.Reader) decode all of them as one stream.
//
// # Safety
//
// Files and OWNER directories are created 0600 and 0700 and given the
// mailbox's owner and group. Existing archives are appended to, never
// truncated, except for a member that an interrupted run started and its
// index says was not finished. The new member is fsynced, the directory
// too, and read back: its message count must be what was written. Only
// then is the index appended to (SHA-256 of each message's bytes and the
// archive's new size) and fsynced, and only then does the mailbox change.
// A crash leaves a message in the mailbox, or in both, never in neither;
// a rerun finds the messages the index lists and does not write them again.
type ArchiveOptions struct {
	// Dir is the archive root; "" means no archive: removed mail is gone.
	Dir string
	// Compress is CompressGzip ("" too) or CompressZstd.
	Compress Compression
}

func (a ArchiveOptions) enabled() bool { return a.Dir != "" }

func (a ArchiveOptions) suffix() string {
	if a.Compress == CompressZstd {
		return ".mbox.zst"
	}
	return ".mbox.gz"
}

// indexHeader starts every archive index.
const indexHeader = "# mailkeep archive index 1\n"

// archItem is one removed message to archive.
type archItem struct {
	off, n   int64  // mbox: the message's span in the mailbox
	path     string // Maildir: the message file
	sender   string // Maildir: envelope sender, "" when unknown
	received time.Time
	index    int  // Maildir: the caller's index of the message
	done     bool // in the archive (written now or by an earlier run)
}

func (it *archItem) period() string {
	if it.received.IsZero() {
		return "undated"
	}
	return it.received.UTC().Format("2006-01")
}

// archiver appends one mailbox's removed messages to its archive files.
type archiver struct {
	ctx     context.Context
	opts    ArchiveOptions
	source  string // the mailbox path, for the index and errors
	name    string // MAILBOX of the file names
	uid     int
	gid     int
	mbox    bool // items are mbox spans, copied as they are
	open    func(*archItem) (io.ReadCloser, error)
	timeout time.Duration // for the index's flock

	dirfd int    // DIR/OWNER
	dir   string // its path
	files []string
	notes []string
}

// archive writes the items not yet archived and marks each archived item
// done. On error, what this call appended is cut off again (the items
// of the periods committed before the error stay done).
func (a *archiver) archive(items []archItem) (archived int, err error) {
	if len(items) == 0 {
		return 0, nil
	}
	if err := a.openDir(); err != nil {
		return 0, err
	}
	defer unix.Close(a.dirfd)
	byPeriod := map[string][]*archItem{}
	for i := range items {
		p := items[i].period()
		byPeriod[p] = append(byPeriod[p], &items[i])
	}
	periods := make([]string, 0, len(byPeriod))
	for p := range byPeriod {
		periods = append(periods, p)
	}
	slices.Sort(periods)
	for _, p := range periods {
		if err := a.appendPeriod(p, byPeriod[p]); err != nil {
			return countDone(items), err
		}
	}
	return countDone(items), nil
}

func countDone(items []archItem) int {
	n := 0
	for i := range items {
		if items[i].done {
			n++
		}
	}
	return n
}

// openDir opens (making them when missing) DIR and DIR/OWNER.
func (a *archiver) openDir() error {
	if err := os.MkdirAll(a.opts.Dir, 0o700); err != nil {
		return fmt.Errorf("archive directory: %w", err)
	}
	root, err := unix.Open(a.opts.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open archive directory %s: %w", a.opts.Dir, err)
	}
	defer unix.Close(root)
	owner := ownerName(a.uid)
	a.dir = filepath.Join(a.opts.Dir, owner)
	made := false
	if err := unix.Mkdirat(root, owner, 0o700); err == nil {
		made = true
	} else if !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("make archive directory %s: %w", a.dir, err)
	}
	fd, err := unix.Openat(root, owner, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open archive directory %s (symlinks are not followed): %w", a.dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return fmt.Errorf("archive directory %s: %w", a.dir, err)
	}
	if !trustedOwner(st.Uid, a.uid) {
		unix.Close(fd)
		return fmt.Errorf("%w: archive directory %s belongs to uid %d, not to the mailbox's owner", ErrUnsafeMailbox, a.dir, st.Uid)
	}
	if made {
		if err := chownLike(fd, a.uid, a.gid); err != nil {
			unix.Close(fd)
			return fmt.Errorf("give archive directory %s the mailbox's owner: %w", a.dir, err)
		}
		_ = unix.Fsync(root)
	}
	a.dirfd = fd
	return nil
}

// trustedOwner: files in the archive may belong to the mailbox's owner,
// root, or whoever runs mailkeep.
func trustedOwner(uid uint32, mailboxUID int) bool {
	return uid == uint32(mailboxUID) || uid == 0 || uid == uint32(os.Geteuid())
}

// chownLike gives fd the mailbox's owner and group. Not being root, giving
// a group one is not in fails: the file then keeps ours, which is fine.
func chownLike(fd, uid, gid int) error {
	err := unix.Fchown(fd, uid, gid)
	if err != nil && os.Geteuid() != 0 && errors.Is(err, unix.EPERM) {
		return nil
	}
	return err
}

// ownerName is the user name for uid, or the number when it has none.
func ownerName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		return cleanName(u.Username)
	}
	return strconv.Itoa(uid)
}

// cleanName makes s safe as one file name: no slash, no control
// character, no leading dot.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || unicode.IsControl(r) {
			return '_'
		}
		return r
	}, s)
	s = strings.TrimLeft(s, ".")
	if s == "" {
		return "mailbox"
	}
	if len(s) > 160 {
		s = s[:160]
	}
	return s
}

// mboxArchiveName is MAILBOX for an mbox file.
func mboxArchiveName(path string) string { return cleanName(filepath.Base(path)) }

// maildirArchiveName is MAILBOX for a Maildir folder dir of store.
func maildirArchiveName(dir, store string) string {
	dir, store = filepath.Clean(dir), filepath.Clean(store)
	user := filepath.Base(store)
	if user == "Maildir" {
		user = filepath.Base(filepath.Dir(store))
	}
	folder := "INBOX"
	if dir != store {
		folder = strings.TrimPrefix(filepath.Base(dir), ".")
	}
	return cleanName(user + "." + folder)
}

// indexState is what an archive index says.
type indexState struct {
	hashes    map[[32]byte]int // messages archived, by SHA-256
	committed map[string]int64 // archive file name → size at its last commit
	pending   *pendingMember   // a member begun and not committed
	good      int64            // end of the last complete record
}

type pendingMember struct {
	file string
	off  int64
}

// parseIndex reads an index: "# ..." comments, then records of a line
// "> OFFSET FILE" (a member begun at OFFSET), a line "h SHA256HEX" per
// message, and a line "@ SIZE FILE" (committed: the archive is SIZE bytes).
// Anything after the last commit is an interrupted run's, and not trusted.
func parseIndex(data []byte) (*indexState, error) {
	st := &indexState{hashes: map[[32]byte]int{}, committed: map[string]int64{}}
	var batch [][32]byte
	pos := int64(0)
	for len(data) > 0 {
		line, rest, ok := bytes.Cut(data, []byte("\n"))
		if !ok {
			break // a torn last line
		}
		next := pos + int64(len(line)) + 1
		data = rest
		switch {
		case len(line) == 0 || line[0] == '#':
			if st.pending == nil && batch == nil {
				st.good = next
			}
		case line[0] == '>':
			off, file, err := sizeAndName(line)
			if err != nil {
				return nil, err
			}
			st.pending = &pendingMember{file: file, off: off}
			batch = batch[:0]
		case line[0] == 'h':
			var h [32]byte
			if n, err := hex.Decode(h[:], bytes.TrimSpace(line[1:])); err != nil || n != 32 {
				return nil, fmt.Errorf("bad hash line at byte %d", pos)
			}
			batch = append(batch, h)
		case line[0] == '@':
			size, file, err := sizeAndName(line)
			if err != nil {
				return nil, err
			}
			for _, h := range batch {
				st.hashes[h]++
			}
			batch = nil
			st.committed[file] = size
			st.pending = nil
			st.good = next
		default:
			return nil, fmt.Errorf("unknown line at byte %d", pos)
		}
		pos = next
	}
	return st, nil
}

func sizeAndName(line []byte) (int64, string, error) {
	f := strings.SplitN(string(line[1:]), " ", 3)
	if len(f) != 3 || f[0] != "" {
		return 0, "", fmt.Errorf("bad index line %q", line)
	}
	n, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || n < 0 {
		return 0, "", fmt.Errorf("bad index line %q", line)
	}
	return n, f[2], nil
}

// openOwned opens name in the archive directory, never following a
// symlink, creating it 0600 and giving it the mailbox's owner. An existing
// file must be a regular file with one link and a trusted owner.
func (a *archiver) openOwned(name string) (*os.File, bool, error) {
	path := filepath.Join(a.dir, name)
	flags := unix.O_RDWR | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	created := false
	fd, err := unix.Openat(a.dirfd, name, flags|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err == nil {
		created = true
	} else if errors.Is(err, unix.EEXIST) {
		fd, err = unix.Openat(a.dirfd, name, flags, 0)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, false, fmt.Errorf("%w: %s is a symlink, not followed", ErrUnsafeMailbox, path)
		}
		return nil, false, fmt.Errorf("open %s: %w", path, err)
	}
	_ = unix.SetNonblock(fd, false)
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("fstat %s: %w", path, err)
	}
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		err = fmt.Errorf("%w: %s is not a regular file", ErrUnsafeMailbox, path)
	case st.Nlink != 1:
		err = fmt.Errorf("%w: %s has %d hard links", ErrUnsafeMailbox, path, st.Nlink)
	case !trustedOwner(st.Uid, a.uid):
		err = fmt.Errorf("%w: %s belongs to uid %d", ErrUnsafeMailbox, path, st.Uid)
	case created:
		if cerr := chownLike(fd, a.uid, a.gid); cerr != nil {
			err = fmt.Errorf("give %s the mailbox's owner: %w", path, cerr)
		}
	}
	if err != nil {
		f.Close()
		if created {
			unix.Unlinkat(a.dirfd, name, 0)
		}
		return nil, false, err
	}
	return f, created, nil
}

// lockIndex takes an exclusive flock on the index, so that two runs never
// append to one archive at once; bounded like the mailbox locks.
func (a *archiver) lockIndex(f *os.File) error {
	timeout := a.timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lock %s: another run keeps it locked", f.Name())
		}
		select {
		case <-a.ctx.Done():
			return a.ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// hashItem is SHA-256 of the message's bytes as they are in the mailbox.
func (a *archiver) hashItem(it *archItem) ([32]byte, error) {
	var sum [32]byte
	r, err := a.open(it)
	if err != nil {
		return sum, err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// appendPeriod archives the items of one period.
func (a *archiver) appendPeriod(period string, items []*archItem) (err error) {
	base := a.name + "." + period
	file := base + a.opts.suffix()
	path := filepath.Join(a.dir, file)
	idx, idxMade, err := a.openOwned(base + ".idx")
	if err != nil {
		return fmt.Errorf("archive index: %w", err)
	}
	defer idx.Close()
	if err := a.lockIndex(idx); err != nil {
		return err
	}
	data, err := io.ReadAll(io.NewSectionReader(idx, 0, 1<<40))
	if err != nil {
		return fmt.Errorf("read %s: %w", idx.Name(), err)
	}
	ist, err := parseIndex(data)
	if err != nil {
		return fmt.Errorf("read %s: %w", idx.Name(), err)
	}
	if ist.good == 0 {
		// A new index (or one torn before its header was complete).
		if err := writeAtSync(idx, 0, []byte(indexHeader+"# source: "+strings.ReplaceAll(a.source, "\n", "?")+"\n")); err != nil {
			return err
		}
		ist.good = int64(len(indexHeader) + len("# source: ") + len(strings.ReplaceAll(a.source, "\n", "?")) + 1)
		if err := idx.Truncate(ist.good); err != nil {
			return fmt.Errorf("write %s: %w", idx.Name(), err)
		}
	}
	if idxMade {
		if err := unix.Fsync(a.dirfd); err != nil {
			return fmt.Errorf("fsync %s: %w", a.dir, err)
		}
	}

	// Which messages are archived already?
	var toWrite []*archItem
	var sums [][32]byte
	for _, it := range items {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		sum, err := a.hashItem(it)
		if errors.Is(err, errMessageChanged) {
			continue // not archived, so not removed
		}
		if err != nil {
			return fmt.Errorf("archive: read message: %w", err)
		}
		if ist.hashes[sum] > 0 {
			ist.hashes[sum]--
			it.done = true
			continue
		}
		toWrite = append(toWrite, it)
		sums = append(sums, sum)
	}

	arch, archMade, err := a.openOwned(file)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer arch.Close()
	if archMade {
		if err := unix.Fsync(a.dirfd); err != nil {
			return fmt.Errorf("fsync %s: %w", a.dir, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(arch.Fd()), &st); err != nil {
		return fmt.Errorf("fstat %s: %w", path, err)
	}
	size := st.Size
	cut := int64(-1)
	if pm := ist.pending; pm != nil && pm.file == file && size > pm.off && pm.off >= ist.committed[file] {
		// An interrupted run began a member there and never committed
		// it: its messages are still in their mailbox.
		cut = pm.off
	}
	if committed, ok := ist.committed[file]; ok && size > committed && (cut < 0 || committed < cut) {
		// Past the last commit: a member begun by a run whose intent line
		// a later run (on another file of this index) replaced. Nothing
		// was removed for it either; left there, it would make every
		// reader stop before what is appended after it.
		cut = committed
	}
	if cut >= 0 {
		if err := truncateSync(arch, cut); err != nil {
			return err
		}
		a.notes = append(a.notes, fmt.Sprintf("cut %d bytes an interrupted run had begun to append to %s", size-cut, path))
		size = cut
	}
	if committed, ok := ist.committed[file]; ok && size < committed {
		return fmt.Errorf("archive %s is %d bytes, shorter than the %d its index records: not appending to it", path, size, committed)
	}
	if len(toWrite) == 0 {
		if len(items) > 0 {
			a.files = append(a.files, path)
		}
		return idx.Truncate(ist.good)
	}

	// Say where the new member begins, durably, before writing it: a rerun
	// after a crash cuts exactly that off again.
	intent := fmt.Sprintf("> %d %s\n", size, file)
	if err := writeAtSync(idx, ist.good, []byte(intent)); err != nil {
		return err
	}
	idxEnd := ist.good + int64(len(intent))
	if err := idx.Truncate(idxEnd); err != nil {
		return fmt.Errorf("write %s: %w", idx.Name(), err)
	}
	defer func() {
		if err != nil {
			// Cut the member off again: the mailbox stays as it is.
			if terr := truncateSync(arch, size); terr != nil {
				err = errors.Join(err, terr)
			} else {
				_ = idx.Truncate(ist.good)
			}
		}
	}()
	end, raw, err := a.writeMember(arch, size, toWrite)
	if err != nil {
		return fmt.Errorf("write archive %s: %w", path, err)
	}
	if err := arch.Sync(); err != nil {
		return fmt.Errorf("fsync archive %s: %w", path, err)
	}
	crashPoint("after-archive")
	n, got, err := countArchived(arch, size, end, a.opts.Compress, path)
	if err != nil {
		return fmt.Errorf("read back archive %s: %w", path, err)
	}
	if n != len(toWrite) || got != raw {
		return fmt.Errorf("read back archive %s: %d messages in %d bytes, wrote %d in %d", path, n, got, len(toWrite), raw)
	}

	var rec bytes.Buffer
	for _, s := range sums {
		rec.WriteString("h " + hex.EncodeToString(s[:]) + "\n")
	}
	fmt.Fprintf(&rec, "@ %d %s\n", end, file)
	if err := writeAtSync(idx, idxEnd, rec.Bytes()); err != nil {
		return err
	}
	crashPoint("after-index")
	for _, it := range toWrite {
		it.done = true
	}
	a.files = append(a.files, path)
	return nil
}

// writeMember writes the items as one compressed member at offset off of
// arch and returns the archive's new end and the uncompressed size.
func (a *archiver) writeMember(arch *os.File, off int64, items []*archItem) (end, raw int64, err error) {
	cw := &countWriter{w: io.NewOffsetWriter(arch, off)}
	bw := bufio.NewWriterSize(cw, 256<<10)
	var enc io.WriteCloser
	if a.opts.Compress == CompressZstd {
		enc, err = zstd.NewWriter(bw, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return 0, 0, err
		}
	} else {
		enc = gzip.NewWriter(bw)
	}
	rw := &countWriter{w: enc}
	if a.mbox {
		err = a.writeSpans(rw, items)
	} else {
		err = a.writeMessages(rw, items)
	}
	if err != nil {
		enc.Close()
		return 0, 0, err
	}
	if err := enc.Close(); err != nil {
		return 0, 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, 0, err
	}
	return off + cw.n, rw.n, nil
}

// writeSpans copies mbox messages as their original bytes.
func (a *archiver) writeSpans(w io.Writer, items []*archItem) error {
	for i, it := range items {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		r, err := a.open(it)
		if err != nil {
			return err
		}
		lw := &lastByteWriter{w: w}
		_, err = io.Copy(lw, r)
		r.Close()
		if err != nil {
			return err
		}
		if lw.last != '\n' {
			// The mailbox's last message without its final newline: the
			// next From_ line must start a line.
			if _, err := w.Write([]byte("\n")); err != nil {
				return err
			}
		}
		if i == 0 {
			crashPoint("mid-archive")
		}
	}
	return nil
}

// writeMessages writes Maildir messages with go-mbox's Writer.
func (a *archiver) writeMessages(w io.Writer, items []*archItem) error {
	mw := mbox.NewWriter(w)
	for i, it := range items {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		date := it.received
		if date.IsZero() {
			date = time.Now()
		}
		mm, err := mw.CreateMessage(fromLineSender(it.sender), date)
		if err != nil {
			return err
		}
		r, err := a.open(it)
		if err != nil {
			return err
		}
		// go-mbox ends each message with a blank line of its own: the
		// message's final newline is that line's, not one more.
		tw := &trimFinalNewline{w: mm}
		_, err = io.Copy(tw, r)
		r.Close()
		if err != nil {
			return err
		}
		if i == 0 {
			crashPoint("mid-archive")
		}
	}
	return mw.Close()
}

// fromLineSender is the From_ line's sender: the envelope sender when it
// is one word, else MAILER-DAEMON (bounces have none).
func fromLineSender(s string) string {
	s = strings.Trim(strings.TrimSpace(s), "<>")
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
		return "MAILER-DAEMON"
	}
	return s
}

// countArchived decompresses bytes [off, end) of the archive and counts
// the messages in them, and the uncompressed bytes.
func countArchived(f *os.File, off, end int64, c Compression, path string) (int, int64, error) {
	sr := io.NewSectionReader(f, off, end-off)
	var r io.Reader
	if c == CompressZstd {
		d, err := zstd.NewReader(sr, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return 0, 0, err
		}
		defer d.Close()
		r = d
	} else {
		z, err := gzip.NewReader(sr)
		if err != nil {
			return 0, 0, err
		}
		defer z.Close()
		r = z
	}
	cr := &countReader{r: r}
	sc := mboxscan.NewScanner(cr, path)
	defer sc.Close()
	n := 0
	for {
		_, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, cr.n, err
		}
		n++
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return n, cr.n, err
	}
	return n, cr.n, nil
}

func writeAtSync(f *os.File, off int64, b []byte) error {
	if _, err := f.WriteAt(b, off); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	return nil
}

func truncateSync(f *os.File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("truncate %s back to %d bytes: %w", f.Name(), size, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", f.Name(), err)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type lastByteWriter struct {
	w    io.Writer
	last byte
}

func (l *lastByteWriter) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	if n > 0 {
		l.last = p[n-1]
	}
	return n, err
}

// trimFinalNewline passes everything on except a final "\n" or "\r\n".
type trimFinalNewline struct {
	w    io.Writer
	held []byte
}

func (t *trimFinalNewline) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(t.held) > 0 {
		if _, err := t.w.Write(t.held); err != nil {
			return 0, err
		}
		t.held = t.held[:0]
	}
	k := len(p)
	if p[k-1] == '\n' {
		k--
		if k > 0 && p[k-1] == '\r' {
			k--
		}
	}
	if k > 0 {
		if _, err := t.w.Write(p[:k]); err != nil {
			return 0, err
		}
	}
	t.held = append(t.held, p[k:]...)
	return len(p), nil
}

// archiveRemoved archives the removed messages of the locked mbox.
func (p *mboxPruner) archiveRemoved() error {
	a := &archiver{
		ctx: p.ctx, opts: p.opts.Archive, source: p.path, name: mboxArchiveName(p.path),
		uid: int(p.st.Uid), gid: int(p.st.Gid), mbox: true, timeout: p.opts.Lock.Timeout,
		open: func(it *archItem) (io.ReadCloser, error) {
			return io.NopCloser(io.NewSectionReader(p.f, it.off, it.n)), nil
		},
	}
	n, err := a.archive(p.items)
	p.res.MessagesArchived = n
	p.res.Archives = a.files
	p.res.Notes = append(p.res.Notes, a.notes...)
	if err != nil {
		return err
	}
	if n != len(p.items) {
		return fmt.Errorf("archive: %d of %d messages archived", n, len(p.items))
	}
	return nil
}
