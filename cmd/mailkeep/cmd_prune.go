package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/report"
	"github.com/mailkeep/mailkeep/retention"
	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

// PruneOptions are the flags of prune.
type PruneOptions struct {
	Format         report.Format
	OlderThan      retention.Age
	Before         string
	LargerThan     sizeValue
	Date           string
	IncludeFlagged bool
	KeepUnread     bool
	DryRun         bool
	List           bool
	Lock           []string
	LockTimeout    time.Duration
	Rewrite        string
	CleanTmp       bool
	Now            string
}

// AddFlags adds prune's flags to f.
func (o *PruneOptions) AddFlags(f *pflag.FlagSet) {
	f.Var(newFormatValue(&o.Format, report.FormatTable, report.FormatTable, report.FormatJSON, report.FormatCSV),
		"format", "output format: table, json or csv")
	f.Var(&o.OlderThan, "older-than", "remove messages older than `AGE` (90d, 12w, 6mo, 1y, 36h)")
	f.StringVar(&o.Before, "before", "", "remove messages dated before `DATE` (2006-01-02, local midnight, or RFC 3339)")
	f.Var(&o.LargerThan, "larger-than", "only remove messages larger than this"+sizeHelp)
	f.StringVar(&o.Date, "date", "received", "the date compared: received, saved or sent")
	f.BoolVar(&o.IncludeFlagged, "include-flagged", false, "remove flagged messages too (kept by default)")
	f.BoolVar(&o.KeepUnread, "keep-unread", false, "keep messages not yet read")
	f.BoolVarP(&o.DryRun, "dry-run", "n", false, "change nothing; report what a real run would do")
	f.BoolVar(&o.List, "list", false, "list each removed message (table and json)")
	f.StringSliceVar(&o.Lock, "lock", []string{"dotlock", "fcntl"}, "lock `KINDS` to take on an mbox: dotlock, fcntl, flock")
	f.DurationVar(&o.LockTimeout, "lock-timeout", 30*time.Second, "give up on a mailbox whose locks stay busy this long")
	f.StringVar(&o.Rewrite, "rewrite", "auto", "how an mbox is rewritten: auto, rename or inplace (auto means rename for now)")
	f.BoolVar(&o.CleanTmp, "clean-tmp", false, "also remove Maildir tmp/ files older than 36 hours")
	f.StringVar(&o.Now, "now", "", "the current time, `RFC3339` (tests, replays)")
}

// retentionOptions validates the flags and turns them into the options of
// the retention package; every mistake is a usage error.
func (o *PruneOptions) retentionOptions(g globalOptions) (retention.Options, error) {
	var ro retention.Options
	p := &ro.Policy
	if !o.OlderThan.IsZero() && o.Before != "" {
		return ro, usageErrorf("--older-than and --before both set a cutoff").
			withHint("give only one: --older-than 90d, or --before 2025-01-01")
	}
	if o.OlderThan.IsZero() && o.Before == "" {
		return ro, usageErrorf("%w", retention.ErrEmptyPolicy).
			withHint("for example: mailkeep prune --older-than 1y --dry-run /var/mail")
	}
	p.OlderThan = o.OlderThan
	if o.Before != "" {
		t, err := parseDate(o.Before)
		if err != nil {
			return ro, usageErrorf("--before %q: %w", o.Before, err).withHint("use 2006-01-02 or 2006-01-02T15:04:05Z07:00")
		}
		p.Before = t
	}
	p.LargerThan = int64(o.LargerThan)
	switch o.Date {
	case "received", "saved", "sent":
		p.DateKind = mboxscan.DateKind(o.Date)
	default:
		return ro, usageErrorf("--date %q: must be received, saved or sent", o.Date).
			withHint("received is the arrival date; saved suits a Trash policy; sent is the Date header")
	}
	p.IncludeFlagged, p.KeepUnread = o.IncludeFlagged, o.KeepUnread
	if err := p.Validate(); err != nil {
		return ro, usageErrorf("%w", err)
	}

	switch o.Rewrite {
	case "auto", "rename":
	case "inplace":
		return ro, usageErrorf("--rewrite inplace is not yet supported").withHint("use --rewrite rename (the default, auto, means rename)")
	default:
		return ro, usageErrorf("--rewrite %q: must be auto, rename or inplace", o.Rewrite)
	}
	kinds, err := mboxlock.ParseKinds(o.Lock)
	if err != nil {
		return ro, usageErrorf("--lock: %w", err).withHint("the default is --lock dotlock,fcntl; sendmail's mail.local takes flock")
	}
	if o.LockTimeout <= 0 {
		return ro, usageErrorf("--lock-timeout must be above 0").withHint("for example --lock-timeout 30s")
	}
	if o.List && o.Format == report.FormatCSV {
		return ro, usageErrorf("--list cannot be shown as csv").withHint("use --format json or table with --list")
	}
	ro.Lock = mboxlock.Options{Kinds: kinds, Timeout: o.LockTimeout}
	ro.Now = g.clock()
	if o.Now != "" {
		t, err := time.Parse(time.RFC3339, o.Now)
		if err != nil {
			return ro, usageErrorf("--now %q: %w", o.Now, err).withHint("use RFC 3339, e.g. 2026-01-02T15:04:05Z")
		}
		ro.Now = t
	}
	ro.DryRun, ro.List, ro.CleanTmp = o.DryRun, o.List, o.CleanTmp
	return ro, nil
}

// parseDate reads a date (local midnight) or an RFC 3339 time.
func parseDate(s string) (time.Time, error) {
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

func newPruneCommand(g *globalOptions) *cobra.Command {
	var opts PruneOptions
	cmd := &cobra.Command{
		Use:   "prune [PATH...]",
		Short: "Remove old mail from mbox files and Maildirs, safely",
		Long: `Prune removes the messages a retention policy selects from every mailbox under
the PATHs (an mbox file, a Maildir, or a directory holding mailboxes, searched
recursively; with no PATH, /var/mail).

Selection: --older-than AGE or --before DATE (one is required), and
optionally --larger-than SIZE (both must hold). --date chooses the date:
received (the From_ line for mbox, the file's mtime for Maildir), saved (when
it was stored in this folder: the Maildir name's time stamp), or sent (the
Date header). Always kept: messages without a usable date or dated in the
future, the "FOLDER INTERNAL DATA" pseudo-message, flagged messages (unless
--include-flagged) and, with --keep-unread, unread ones.

An mbox is rewritten atomically: under the locks the delivery agents take
(--lock, default dotlock,fcntl; add flock for sendmail's mail.local), the
kept messages are copied byte for byte to a new file in the same directory,
which gets the original's owner, mode and extended attributes and is renamed
over the mailbox. A crash, a kill or a full disk leaves the old or the new
mailbox, never a mix; temporary files of a killed run are removed by the
next. Mail appended meanwhile by a writer that takes fcntl or flock only is
carried over. Symlinks, hard-linked files and files swapped during the run
are refused. A Maildir loses the message files from cur/ and new/, and its
maildirsize is kept true.

--dry-run (-n) makes the same choice and changes nothing, not even a lock
file. --list adds each removed message to the output.

Formats (--format): table (on a terminal, a table with totals; when piped,
tab-separated rows: messages, removed, bytes, bytes removed, kept undated,
format, path, error), json (the CLI contract's document) or csv.

AGE takes 90d, 12w, 6mo, 1y or 36h. SIZE takes 2GiB, 1.5GB, 10MB or
500000 (GB and MB are powers of ten, GiB and MiB powers of two).

EXIT STATUS
  0    every mailbox was pruned (or needed nothing)
  1    one or more mailboxes failed (locked, unsafe, unreadable, disk full):
       each is reported with its error and left unchanged; the rest were
       processed
  2    usage error
  130  interrupted: mailboxes done so far are reported; the one in progress
       is left unchanged`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPrune(cmd.Context(), opts, *g, cmd.OutOrStdout(), cmd.ErrOrStderr(), args)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

func runPrune(ctx context.Context, opts PruneOptions, g globalOptions, stdout, stderr io.Writer, args []string) error {
	ro, err := opts.retentionOptions(g)
	if err != nil {
		return err
	}
	roots := args
	if len(roots) == 0 {
		roots = g.defaultRoots()
	}
	var (
		errs    []error
		present []string
	)
	for _, root := range roots {
		if _, err := os.Lstat(root); err != nil {
			errs = append(errs, fmt.Errorf("prune root: %w", err))
			continue
		}
		present = append(present, root)
	}
	locs, skipped, err := mboxscan.Discover(ctx, present)
	if err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	for _, s := range skipped {
		if slices.Contains(present, s.Path) {
			// A root the operator named that cannot be pruned is a failure.
			errs = append(errs, fmt.Errorf("%s: %s", report.Printable(s.Path), s.Reason))
			continue
		}
		warnf(stderr, "skipped %s: %s", report.Printable(s.Path), report.Printable(s.Reason))
	}

	rep := &report.PruneReport{
		DryRun:    ro.DryRun,
		Cutoff:    ro.Policy.Cutoff(ro.Now).Format(time.RFC3339),
		Mailboxes: []report.PruneMailbox{},
	}
	failed := 0
	for _, loc := range locs {
		if ctx.Err() != nil {
			break
		}
		o := ro
		var st unix.Stat_t
		if err := unix.Lstat(loc.Path, &st); err == nil {
			// What discovery saw: a mailbox owned by someone else when it
			// is rewritten was swapped meanwhile.
			o.CheckOwner, o.ExpectUID = true, int(st.Uid)
		}
		var res *retention.Result
		switch loc.Format {
		case mboxscan.FormatMaildir:
			res, err = retention.PruneMaildir(ctx, loc.Path, loc.Store, o)
		default:
			res, err = retention.PruneMbox(ctx, loc.Path, o)
		}
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			break // interrupted: this mailbox is unchanged, and not reported
		}
		for _, n := range res.Notes {
			fmt.Fprintf(stderr, "mailkeep: %s: %s\n", report.Printable(loc.Path), report.Printable(n))
		}
		row := pruneRow(loc, res, ro.List)
		if err != nil {
			msg := err.Error()
			row.Error = &msg
			failed++
		}
		rep.Mailboxes = append(rep.Mailboxes, row)
	}

	tty := g.stdoutTTY && opts.Format == report.FormatTable
	if werr := report.Prune(stdout, rep, report.PruneOptions{Format: opts.Format, TTY: tty}); werr != nil {
		errs = append(errs, fmt.Errorf("write report: %w", werr))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	if failed > 0 {
		errs = append(errs, fmt.Errorf("%d of %d mailboxes failed", failed, len(rep.Mailboxes)))
	}
	return errors.Join(errs...)
}

// pruneRow converts one retention result to its report row.
func pruneRow(loc mboxscan.Location, res *retention.Result, list bool) report.PruneMailbox {
	row := report.PruneMailbox{
		Path:            loc.Path,
		Format:          string(loc.Format),
		MessagesBefore:  res.MessagesBefore,
		MessagesRemoved: res.MessagesRemoved,
		BytesBefore:     res.BytesBefore,
		BytesRemoved:    res.BytesRemoved,
		KeptUndated:     res.KeptUndated,
	}
	if list {
		removed := make([]report.PruneRemoved, 0, len(res.Removed))
		for _, r := range res.Removed {
			removed = append(removed, report.PruneRemoved{
				MessageID: r.MessageID,
				Date:      r.Date.Format(time.RFC3339),
				Bytes:     r.Bytes,
				From:      strings.TrimSpace(r.From),
				Subject:   strings.TrimSpace(r.Subject),
			})
		}
		row.Removed = &removed
	}
	return row
}
