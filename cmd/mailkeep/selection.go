package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/retention"
)

// SelectionOptions are the retention selection flags that prune and
// notify share: notify announces what prune with the same flags removes.
type SelectionOptions struct {
	OlderThan      retention.Age
	Before         string
	LargerThan     sizeValue
	Date           string
	IncludeFlagged bool
	KeepUnread     bool
}

// AddFlags adds the selection flags to f; verb says what happens to the
// selected messages ("remove", "announce the removal of").
func (o *SelectionOptions) AddFlags(f *pflag.FlagSet, verb string) {
	f.Var(&o.OlderThan, "older-than", verb+" messages older than `AGE` (90d, 12w, 6mo, 1y, 36h)")
	f.StringVar(&o.Before, "before", "", verb+" messages dated before `DATE` (2006-01-02, local midnight, or RFC 3339)")
	f.Var(&o.LargerThan, "larger-than", "only messages larger than this"+sizeHelp)
	f.StringVar(&o.Date, "date", "received", "the date compared: received, saved or sent")
	f.BoolVar(&o.IncludeFlagged, "include-flagged", false, "flagged messages too (kept by default)")
	f.BoolVar(&o.KeepUnread, "keep-unread", false, "keep messages not yet read")
}

// policy builds the retention policy; set is false when neither
// --older-than nor --before was given (no cutoff: no policy). Every
// mistake is a usage error.
func (o *SelectionOptions) policy() (p retention.Policy, set bool, err error) {
	if !o.OlderThan.IsZero() && o.Before != "" {
		return p, false, usageErrorf("--older-than and --before both set a cutoff").
			withHint("give only one: --older-than 90d, or --before 2025-01-01")
	}
	if o.OlderThan.IsZero() && o.Before == "" {
		return p, false, nil
	}
	p.OlderThan = o.OlderThan
	if o.Before != "" {
		t, err := parseDate(o.Before)
		if err != nil {
			return p, false, usageErrorf("--before %q: %w", o.Before, err).withHint("use 2006-01-02 or 2006-01-02T15:04:05Z07:00")
		}
		p.Before = t
	}
	p.LargerThan = int64(o.LargerThan)
	switch o.Date {
	case "received", "saved", "sent":
		p.DateKind = mboxscan.DateKind(o.Date)
	default:
		return p, false, usageErrorf("--date %q: must be received, saved or sent", o.Date).
			withHint("received is the arrival date; saved suits a Trash policy; sent is the Date header")
	}
	p.IncludeFlagged, p.KeepUnread = o.IncludeFlagged, o.KeepUnread
	if err := p.Validate(); err != nil {
		return p, false, usageErrorf("%w", err)
	}
	return p, true, nil
}

// parseDate reads a date (local midnight) or an RFC 3339 time.
func parseDate(s string) (time.Time, error) {
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("not a date: %w", err)
	}
	return t, nil
}
