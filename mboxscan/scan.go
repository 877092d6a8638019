package mboxscan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Defaults of [Options], as the CLI contract states them. DefaultLarge
// (10 MB) is beside the mbox scanner, which uses it too.
const (
	DefaultLimit = 2 << 30 // 2 GiB: the size at which mbox tools break
	DefaultWarn  = 80      // percent of the limit
	DefaultCrit  = 95      // percent of the limit
)

// Options tune a scan. The zero value is usable: [Options.WithDefaults]
// fills in what is unset.
type Options struct {
	// Large is the size above which a message counts as oversized
	// (default 10 MB = 10,000,000 bytes).
	Large int64
	// Jobs is the number of mailboxes scanned at once (default: the number
	// of CPUs). A large Maildir folder is also read by up to Jobs
	// goroutines (at most 8).
	Jobs int
	// Limit, Warn and Crit set the store limit in bytes (default 2 GiB) and
	// the warn/crit thresholds in percent (default 80, 95); Assess uses them.
	Limit      int64
	Warn, Crit float64
	// Progress, when set, is called from any goroutine with the number of
	// bytes just read, and with mailboxes=1 each time a mailbox is done.
	// The per-mailbox scanners (ScanMbox, ScanMaildirFolder) report bytes
	// only, with mailboxes=0; Scan and ScanLocations report each mailbox
	// done, scanned or failed, as Progress(0, 1). For a Maildir, the bytes
	// are the sizes of the messages whose headers were read.
	Progress func(bytes int64, mailboxes int)
}

// WithDefaults returns o with every unset (zero or negative) field set to
// its default. It is the one place the defaults are applied.
func (o Options) WithDefaults() Options {
	if o.Large <= 0 {
		o.Large = DefaultLarge
	}
	if o.Jobs <= 0 {
		o.Jobs = runtime.NumCPU()
	}
	if o.Limit <= 0 {
		o.Limit = DefaultLimit
	}
	if o.Warn <= 0 {
		o.Warn = DefaultWarn
	}
	if o.Crit <= 0 {
		o.Crit = DefaultCrit
	}
	return o
}

// Scan discovers the mailboxes under roots (see [Discover]), measures each
// of them (see [ScanLocations]) and assesses them against their limits
// (see [Assess]). A mailbox that cannot be scanned is listed in
// Result.Skipped with the reason; it does not fail the scan. The error is
// non-nil only when ctx is done, and then the result is nil. Scan only
// reads: it changes no byte, name, mtime or atime.
func Scan(ctx context.Context, roots []string, opts Options) (*Result, error) {
	opts = opts.WithDefaults()
	found, skipped, err := Discover(ctx, roots)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	res, err := ScanLocations(ctx, found, opts)
	if err != nil {
		return nil, err
	}
	res.Skipped = append(res.Skipped, skipped...)
	sortSkipped(res.Skipped)
	return res, nil
}

// ScanLocations measures the mailboxes at locs, found by [Discover], with
// opts.Jobs of them at a time, and assesses them (see [Assess]). Results
// are sorted by path. A mailbox that fails (it vanished since discovery,
// cannot be read, is not an mbox after all) goes to Result.Skipped with
// the reason. The error is non-nil only when ctx is done, and then the
// result is nil.
func ScanLocations(ctx context.Context, locs []Location, opts Options) (*Result, error) {
	opts = opts.WithDefaults()
	mbs := make([]*Mailbox, len(locs))
	errs := make([]error, len(locs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(opts.Jobs, len(locs)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(locs) {
					return
				}
				mbs[i], errs[i] = scanLocation(ctx, locs[i], opts)
				if opts.Progress != nil {
					opts.Progress(0, 1)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}

	res := &Result{Mailboxes: make([]Mailbox, 0, len(locs)), Skipped: []Skipped{}}
	for i, mb := range mbs {
		if errs[i] != nil {
			res.Skipped = append(res.Skipped, Skipped{Path: locs[i].Path, Reason: failReason(errs[i])})
			continue
		}
		res.Mailboxes = append(res.Mailboxes, *mb)
	}
	slices.SortStableFunc(res.Mailboxes, func(a, b Mailbox) int { return strings.Compare(a.Path, b.Path) })
	sortSkipped(res.Skipped)
	Assess(res, opts)
	return res, nil
}

// scanLocation measures one mailbox.
func scanLocation(ctx context.Context, loc Location, opts Options) (*Mailbox, error) {
	if loc.Format == FormatMaildir {
		return ScanMaildirFolder(ctx, loc.Path, loc.Store, loc.Folder, opts)
	}
	mb, err := ScanMbox(ctx, loc.Path, opts)
	if err != nil {
		return nil, err
	}
	if mb == nil {
		return nil, fmt.Errorf("scan %s: no result", loc.Path)
	}
	if mb.Path == "" {
		mb.Path = loc.Path
	}
	mb.Format = FormatMbox
	if mb.Owner == "" {
		if fi, err := os.Lstat(loc.Path); err == nil {
			FillOwner(mb, fi)
		}
	}
	return mb, nil
}

// failReason turns the error of a mailbox's scan into a skip reason.
func failReason(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "vanished during the scan"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case errors.Is(err, errSymlink):
		return ReasonSymlink // replaced by a symlink since discovery
	}
	return "scan failed: " + err.Error()
}

func sortSkipped(s []Skipped) {
	slices.SortStableFunc(s, func(a, b Skipped) int { return strings.Compare(a.Path, b.Path) })
}
