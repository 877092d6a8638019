package mboxscan

import (
	"context"
	"errors"
)

// Options tune a scan. The zero value is usable.
type Options struct {
	// Large is the size above which a message counts as oversized
	// (default 10 MB = 10,000,000 bytes).
	Large int64
	// Jobs is the number of mailboxes scanned at once (default: the number of CPUs).
	Jobs int
	// Limit, Warn and Crit set the store limit in bytes (default 2 GiB) and
	// the warn/crit thresholds in percent (default 80, 95); Assess uses them.
	Limit      int64
	Warn, Crit float64
	// Progress, when set, is called from any goroutine with the number of
	// bytes just read, and with mailboxes=1 each time a mailbox is done.
	Progress func(bytes int64, mailboxes int)
}

// Scan discovers the mailboxes under roots and measures each of them.
// STUB: replaced by the discovery/orchestration work.
func Scan(ctx context.Context, roots []string, opts Options) (*Result, error) {
	return nil, errors.New("not implemented")
}
