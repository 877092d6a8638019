package mboxscan

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Location is a mailbox found by [Discover].
type Location struct {
	Path   string // the mbox file, or the Maildir folder's directory
	Format Format
	// Store is what the limit applies to: the mbox file itself, or the
	// Maildir root whose folders share one quota.
	Store string
	// Folder is the Maildir++ folder name (".Trash"); "" for a Maildir's
	// INBOX and for mbox.
	Folder string
}

// sniffSize is how much of a file Discover reads to tell an mbox from
// other files.
const sniffSize = 4 << 10

// Skip reasons that scripts may match on.
const (
	ReasonSymlink = "symlink, not followed"
	ReasonTemp    = "temp file"
	ReasonRescue  = "rescued mail: appended during a prune, to be merged by hand"
	ReasonLock    = "lock file"
	ReasonIndex   = "index file"
	ReasonArchive = "archive"
)

// Discover finds the mailboxes under roots. A root may be an mbox file, a
// Maildir (or one of its Maildir++ folders), or a directory, which is
// searched recursively.
//
// mbox files are recognised by their content (a From_ line at the start;
// an empty file is an empty mbox), Maildirs by having cur/ and new/ (tmp/
// is optional: some trees lack it). Each Maildir yields one Location for
// its INBOX and one per Maildir++ ".Folder" directory; files in cur/,
// new/ and tmp/ are never listed, nor are the Maildir's own control files
// (maildirsize, dovecot-uidlist, dovecot.index*, subscriptions, …).
//
// Everything else found is returned in skipped with the reason: symlinks
// (never followed, a root included), lock, index and temp files,
// compressed archives, files that are not mailboxes, and files and
// directories that cannot be read. A root that does not exist is skipped
// too, so err is only ctx's error. Both lists are sorted by path and hold
// each path once. Discover reads directories and the first 4 KiB of
// candidate files, with O_NOATIME; it changes nothing.
func Discover(ctx context.Context, roots []string) (found []Location, skipped []Skipped, err error) {
	w := &walker{ctx: ctx}
	for _, root := range roots {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		w.root(filepath.Clean(root))
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(w.found, func(a, b Location) int { return strings.Compare(a.Path, b.Path) })
	w.found = slices.CompactFunc(w.found, func(a, b Location) bool { return a.Path == b.Path })
	slices.SortStableFunc(w.skipped, func(a, b Skipped) int { return strings.Compare(a.Path, b.Path) })
	w.skipped = slices.CompactFunc(w.skipped, func(a, b Skipped) bool { return a.Path == b.Path })
	return w.found, w.skipped, nil
}

type walker struct {
	ctx     context.Context
	found   []Location
	skipped []Skipped
}

func (w *walker) skip(path, reason string) {
	w.skipped = append(w.skipped, Skipped{Path: path, Reason: reason})
}

func (w *walker) root(path string) {
	fi, err := os.Lstat(path)
	if err != nil {
		w.skip(path, errReason(err))
		return
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		// A root the admin named that is a link to a directory is followed
		// (RHEL's /var/mail is a link to /var/spool/mail); nothing below a
		// root ever is, and a link to a file is not: prune would refuse it.
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			w.skip(path, ReasonSymlink)
			return
		}
		if tfi, err := os.Lstat(target); err != nil || !tfi.IsDir() {
			w.skip(path, ReasonSymlink)
			return
		}
		path, fi = target, nil
		if fi, err = os.Lstat(path); err != nil {
			w.skip(path, errReason(err))
			return
		}
	}
	switch {
	case fi.IsDir():
		ents, err := readDirSorted(path)
		if err != nil {
			w.skip(path, errReason(err))
			return
		}
		if !isMaildir(ents) {
			w.dir(path, ents)
			return
		}
		// A Maildir++ folder given as the root: its store is the Maildir
		// above it, whose quota it shares.
		store, folder := path, ""
		if base := filepath.Base(path); isFolderName(base) {
			parent := filepath.Dir(path)
			if pents, err := readDirSorted(parent); err == nil && isMaildir(pents) {
				store, folder = parent, base
			}
		}
		w.maildir(path, ents, store, folder)
	case fi.Mode().IsRegular():
		w.file(path, fi)
	default:
		w.skip(path, notRegularReason(fi.Mode()))
	}
}

// dir searches a directory that is not a Maildir.
func (w *walker) dir(path string, ents []fs.DirEntry) {
	for _, e := range ents {
		if w.ctx.Err() != nil {
			return
		}
		w.entry(filepath.Join(path, e.Name()), e)
	}
}

// entry handles one directory entry found while searching.
func (w *walker) entry(path string, e fs.DirEntry) {
	t := e.Type()
	switch {
	case t&fs.ModeSymlink != 0:
		w.skip(path, ReasonSymlink)
	case t.IsDir():
		if e.Name() == ".imap" {
			// Dovecot's index directory for an mbox tree: one entry, not
			// one per index file.
			w.skip(path, "index directory")
			return
		}
		ents, err := readDirSorted(path)
		if err != nil {
			w.skip(path, errReason(err))
			return
		}
		if isMaildir(ents) {
			w.maildir(path, ents, path, "")
		} else {
			w.dir(path, ents)
		}
	case t.IsRegular():
		fi, err := e.Info()
		if err != nil {
			w.skip(path, errReason(err))
			return
		}
		w.file(path, fi)
	default:
		w.skip(path, notRegularReason(t))
	}
}

// maildir records the Maildir folder at path (the INBOX when folder is "")
// and looks through what else its directory holds.
func (w *walker) maildir(path string, ents []fs.DirEntry, store, folder string) {
	w.found = append(w.found, Location{Path: path, Format: FormatMaildir, Store: store, Folder: folder})
	for _, e := range ents {
		if w.ctx.Err() != nil {
			return
		}
		name := e.Name()
		sub := filepath.Join(path, name)
		t := e.Type()
		switch {
		case name == "cur" || name == "new" || name == "tmp":
			if t&fs.ModeSymlink != 0 {
				w.skip(sub, ReasonSymlink)
			} else if !t.IsDir() {
				w.skip(sub, "not a mailbox: a file where a Maildir has a directory")
			}
			// The messages are the folder's scan's business; tmp/ holds
			// deliveries in progress and is never listed.
		case t&fs.ModeSymlink != 0:
			w.skip(sub, ReasonSymlink)
		case maildirControlFile(name):
			// maildirsize, dovecot-uidlist, courierimapkeywords/ …: part of
			// the Maildir, not something the scan missed.
		case t.IsDir() && strings.HasPrefix(name, "..") && folder == "":
			w.skip(sub, "not a Maildir++ folder: name starts with \"..\"")
		case t.IsDir() && isFolderName(name) && folder == "":
			// Maildir++: every ".Name" directory of the root is a folder,
			// even one whose cur/ and new/ are not there yet (its scan
			// reports that). Folders are flat (".A.B"), so a folder's own
			// subdirectories are searched like any other directory.
			fents, err := readDirSorted(sub)
			if err != nil {
				w.skip(sub, errReason(err))
				continue
			}
			w.maildir(sub, fents, store, name)
		default:
			// Anything else (a nested Maildir, a stray mbox) is searched
			// for on its own.
			w.entry(sub, e)
		}
	}
}

// file classifies a regular file found while searching.
func (w *walker) file(path string, fi fs.FileInfo) {
	name := fi.Name()
	if reason := nameReason(name); reason != "" {
		w.skip(path, reason)
		return
	}
	if fi.Size() == 0 {
		if strings.HasPrefix(name, ".") {
			// .gitkeep, .noindex: placeholders, not empty mailboxes.
			w.skip(path, "not a mailbox: empty hidden file")
			return
		}
		w.found = append(w.found, Location{Path: path, Format: FormatMbox, Store: path})
		return
	}
	head, err := readHead(path)
	if errors.Is(err, ErrWouldMarkRead) {
		// A file with new mail in a mail directory that this reader may
		// not read without a trace: taken for an mbox, and measured by
		// its size alone (ScanMbox says so).
		w.found = append(w.found, Location{Path: path, Format: FormatMbox, Store: path})
		return
	}
	if err != nil {
		w.skip(path, errReason(err))
		return
	}
	if len(head) == 0 {
		// It was emptied since the stat: still an (empty) mbox.
		w.found = append(w.found, Location{Path: path, Format: FormatMbox, Store: path})
		return
	}
	if reason := contentReason(head); reason != "" {
		w.skip(path, reason)
		return
	}
	w.found = append(w.found, Location{Path: path, Format: FormatMbox, Store: path})
}

// readHead reads the first sniffSize bytes of path without touching its
// access time.
func readHead(path string) ([]byte, error) {
	f, err := OpenMboxReadOnly(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, sniffSize)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, err
	}
	return buf[:n], nil
}

// readDirSorted lists a directory by name without touching its access
// time or following a symlink.
func readDirSorted(path string) ([]fs.DirEntry, error) {
	f, err := openDirNoatime(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, &os.PathError{Op: "readdir", Path: path, Err: err}
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return ents, nil
}

// isMaildir reports whether a directory with these entries is a Maildir:
// it has cur/ and new/, or cur/ and tmp/, or new/ and tmp/; some trees
// lack one of the three (mox's importtest.maildir has no tmp/). A lone
// cur/ counts too (mu's testdir2/wom_bat): a directory named cur beside
// nothing else is a Maildir whose other two were never created.
func isMaildir(ents []fs.DirEntry) bool {
	var cur, nw, tmp bool
	for _, e := range ents {
		if !e.IsDir() { // symlinks report false: never followed
			continue
		}
		switch e.Name() {
		case "cur":
			cur = true
		case "new":
			nw = true
		case "tmp":
			tmp = true
		}
	}
	return cur || nw && tmp
}

// isFolderName reports whether name is a Maildir++ folder name: ".Name",
// but not "..Name" (not a valid folder; staktrace/maildir excludes it).
func isFolderName(name string) bool {
	return len(name) > 1 && name[0] == '.' && name[1] != '.'
}

// maildirControlFile reports whether name is one of the files and
// directories that Maildir servers keep beside cur/, new/ and tmp/.
func maildirControlFile(name string) bool {
	switch name {
	case "maildirsize", "maildirfolder", "subscriptions", "dovecot-shared",
		".customflags", ".uidvalidity", "courierimapacl", "courierimaphieracl":
		return true
	}
	return strings.HasPrefix(name, "dovecot") || strings.HasPrefix(name, "courierimap") ||
		strings.HasPrefix(name, "courierpop3d")
}

// archiveSuffixes are compressed or archive file names: a scan measures
// plain mailboxes only.
var archiveSuffixes = []string{".gz", ".tgz", ".bz2", ".xz", ".zst", ".zip", ".7z", ".lz", ".lz4", ".lzma", ".z"}

// nameReason returns why a file is skipped by its name alone, or "".
func nameReason(name string) string {
	lower := strings.ToLower(name)
	switch {
	case strings.Contains(name, ".mailkeep-tmp."):
		return ReasonTemp
	case strings.HasSuffix(lower, ".mbox.idx") || archiveIndex(name):
		// The index of a prune --archive file (MAILBOX.YYYY-MM.idx).
		return ReasonArchive
	case strings.Contains(name, ".mailkeep-rescue."):
		// Mail prune could not carry into a rewritten mailbox: an admin
		// must look at it; pruning it as a mailbox would hide it.
		return ReasonRescue
	case strings.HasSuffix(lower, ".lock"), strings.HasSuffix(lower, ".lck"),
		strings.HasPrefix(name, "dovecot.") && strings.HasSuffix(name, ".lock"):
		return ReasonLock
	case strings.HasPrefix(name, "dovecot.index"), strings.HasPrefix(name, "dovecot.list.index"),
		strings.HasPrefix(name, "dovecot-uidlist"), strings.HasPrefix(name, "dovecot-keywords"),
		strings.HasPrefix(name, "dovecot-uidvalidity"), name == "dovecot.mailbox.log",
		strings.HasPrefix(name, "courierimapuiddb"), name == "courierimapkeywords":
		return ReasonIndex
	case name == "maildirsize":
		return "quota file"
	case name == "subscriptions", name == ".subscriptions", name == "courierimapsubscribed":
		return "subscriptions file"
	}
	for _, s := range archiveSuffixes {
		if strings.HasSuffix(lower, s) {
			return ReasonArchive
		}
	}
	return ""
}

// magics are the first bytes of compressed formats, for archives without
// a telling name.
var magics = []struct {
	magic []byte
	what  string
}{
	{[]byte{0x1f, 0x8b}, "gzip"},
	{[]byte{0x28, 0xb5, 0x2f, 0xfd}, "zstd"},
	{[]byte("BZh"), "bzip2"},
	{[]byte{0xfd, '7', 'z', 'X', 'Z', 0x00}, "xz"},
	{[]byte("PK\x03\x04"), "zip"},
	{[]byte{'7', 'z', 0xbc, 0xaf, 0x27, 0x1c}, "7z"},
}

// contentReason returns why a file starting with head is not an mbox, or
// "" when it is one.
func contentReason(head []byte) string {
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return ReasonArchive + " (" + m.what + " data)"
		}
	}
	if LooksLikeMbox(head) {
		return ""
	}
	if bytes.IndexByte(head, 0) >= 0 {
		return "not a mailbox: binary file"
	}
	if looksLikeMessage(head) {
		return "not a mailbox: a single message without a From_ line"
	}
	return "not a mailbox: no From_ line at the start"
}

// looksLikeMessage reports whether head starts with a header field, as a
// lone message file (.eml, a Maildir file out of its Maildir) does.
func looksLikeMessage(head []byte) bool {
	line, _, _ := bytes.Cut(head, []byte("\n"))
	name, _, ok := bytes.Cut(line, []byte(":"))
	if !ok || len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// errReason turns an error from stat, open or read into a skip reason.
func errReason(err error) string {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case errors.Is(err, errSymlink):
		return ReasonSymlink
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "cannot read: " + pe.Err.Error()
	}
	return "cannot read: " + err.Error()
}

func notRegularReason(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "not a mailbox: a named pipe"
	case m&fs.ModeSocket != 0:
		return "not a mailbox: a socket"
	case m&fs.ModeDevice != 0:
		return "not a mailbox: a device"
	}
	return "not a mailbox: not a regular file"
}

// archiveIndex reports whether name is the index prune --archive keeps
// beside an archive: NAME.YYYY-MM.idx.
func archiveIndex(name string) bool {
	base, ok := strings.CutSuffix(name, ".idx")
	if !ok || len(base) < 8 {
		return false
	}
	p := base[len(base)-8:] // ".YYYY-MM"
	return p[0] == '.' && p[5] == '-' && isDigits(p[1:5], 4, 4) && isDigits(p[6:8], 2, 2)
}
