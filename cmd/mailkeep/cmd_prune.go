package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	Format report.Format
	SelectionOptions
	DryRun      bool
	List        bool
	Lock        []string
	LockTimeout time.Duration
	Rewrite     string
	CleanTmp    bool
	Now         string
	Archive     string
	ArchiveComp string
	StateDir    string
	TmpDir      string
}

// AddFlags adds prune's flags to f.
func (o *PruneOptions) AddFlags(f *pflag.FlagSet) {
	f.Var(newFormatValue(&o.Format, report.FormatTable, report.FormatTable, report.FormatJSON, report.FormatCSV),
		"format", "output format: table, json or csv")
	o.SelectionOptions.AddFlags(f, "remove")
	f.BoolVarP(&o.DryRun, "dry-run", "n", false, "change nothing; report what a real run would do")
	f.BoolVar(&o.List, "list", false, "list each removed message (table and json)")
	f.StringSliceVar(&o.Lock, "lock", []string{"dotlock", "fcntl"}, "lock `KINDS` to take on an mbox: dotlock, fcntl, flock")
	f.DurationVar(&o.LockTimeout, "lock-timeout", 30*time.Second, "give up on a mailbox whose locks stay busy this long")
	f.StringVar(&o.Rewrite, "rewrite", "auto", "how an mbox is rewritten: auto (inplace where the directory is not writable or Dovecot/UW-IMAP keeps state in the mailbox, else rename), rename or inplace")
	f.StringVar(&o.Archive, "archive", "", "keep the removed messages in compressed mbox files under `DIR` instead of deleting them")
	f.StringVar(&o.ArchiveComp, "archive-compress", "gzip", "compression of the archive files: gzip or zstd")
	f.StringVar(&o.StateDir, "state-dir", "", "`DIR` for in-place rewrite journals (default /var/lib/mailkeep for root, else $XDG_STATE_HOME/mailkeep or ~/.local/state/mailkeep)")
	f.StringVar(&o.TmpDir, "tmpdir", "", "`DIR` where an in-place rewrite builds the new mailbox (default: the state directory); must survive a reboot")
	f.BoolVar(&o.CleanTmp, "clean-tmp", false, "also remove Maildir tmp/ files older than 36 hours")
	f.StringVar(&o.Now, "now", "", "the current time, `RFC3339` (tests, replays)")
}

// retentionOptions validates the flags and turns them into the options of
// the retention package; every mistake is a usage error.
func (o *PruneOptions) retentionOptions(g globalOptions) (retention.Options, error) {
	// Each spool directory is listed once for all its prunes.
	ro := retention.Options{Listings: &retention.Listings{}}
	pol, set, err := o.SelectionOptions.policy()
	if err != nil {
		return ro, err
	}
	if !set {
		return ro, usageErrorf("%w", retention.ErrEmptyPolicy).
			withHint("for example: mailkeep prune --older-than 1y --dry-run /var/mail")
	}
	ro.Policy = pol

	mode, err := retention.ParseRewriteMode(o.Rewrite)
	if err != nil || o.Rewrite == "" {
		return ro, usageErrorf("--rewrite %q: must be auto, rename or inplace", o.Rewrite).
			withHint("auto rewrites in place where the directory is not writable or Dovecot keeps state in the mailbox, else renames")
	}
	ro.Rewrite = mode
	comp, err := retention.ParseCompression(o.ArchiveComp)
	if err != nil || o.ArchiveComp == "" {
		return ro, usageErrorf("--archive-compress %q: must be gzip or zstd", o.ArchiveComp)
	}
	if o.Archive == "" && o.ArchiveComp != "gzip" {
		return ro, usageErrorf("--archive-compress needs --archive").withHint("for example: --archive /srv/mail-archive --archive-compress zstd")
	}
	if o.Archive != "" {
		dir, err := filepath.Abs(o.Archive)
		if err != nil {
			return ro, usageErrorf("--archive %q: %w", o.Archive, err)
		}
		ro.Archive = retention.ArchiveOptions{Dir: dir, Compress: comp}
	}
	for _, d := range []struct{ flag, dir string }{{"--state-dir", o.StateDir}, {"--tmpdir", o.TmpDir}} {
		if d.dir != "" && !filepath.IsAbs(d.dir) {
			return ro, usageErrorf("%s %q: give an absolute path", d.flag, d.dir).withHint("a relative one would change with the working directory between a crash and the rerun")
		}
	}
	ro.StateDir, ro.TmpDir = o.StateDir, o.TmpDir
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
carried over, once the old file is found unchanged up to where it was read
(else nothing is appended, what it holds from the first changed MiB on is
saved in .NAME.mailkeep-rescue.N beside the mailbox, and the mailbox is
reported failed; the same when a writer keeps the old file locked longer
than --lock-timeout). Symlinks, hard-linked files and files swapped during the run
are refused. A Maildir loses the message files from cur/ and new/, and its
maildirsize is kept true.

--rewrite inplace keeps the mailbox's inode (other programs' fcntl locks,
SELinux labels) and needs no write access to its directory, as mutt and
archivemail do it: the kept messages from the first removed one on are
built in a private file (--tmpdir, default the state directory), fsynced,
then copied over the mailbox under the locks, and the mailbox is cut to
its new size. A journal in the state directory (--state-dir; keyed by the
mailbox's device and inode) holds what is needed to finish the copy: a
rerun after a crash finishes it, keeping mail appended meanwhile. The
default, --rewrite auto, renames where it can and rewrites in place, saying
why, where the directory is not writable (an ordinary user pruning
/var/mail/USER) or where Dovecot or UW-IMAP keeps state in the mailbox
(X-IMAPbase or X-IMAP in its first message, or Dovecot's .imap/NAME index
beside it); where no dotlock can be made, the mailbox is locked with fcntl
(and flock, if listed) only, and a note says so.

Dovecot's dovecot-lda takes fcntl before the dotlock and does not notice a
mailbox renamed over while it waited for fcntl: it then writes to the old,
deleted file, or loops there until killed. --rewrite rename is therefore
safe only where every agent takes the dotlock first (procmail, Postfix
local); on a mailbox that shows Dovecot state it renames all the same,
with a note. Leave auto, or choose inplace, wherever dovecot-lda delivers.

--archive DIR keeps the removed messages instead of deleting them, in
compressed mbox files (gzip; --archive-compress zstd) named
DIR/OWNER/MAILBOX.YYYY-MM.mbox.gz: OWNER is the mailbox owner's user name,
MAILBOX the mbox file's name (a Maildir folder: USER.INBOX, USER.Trash ...)
and YYYY-MM the month (UTC) the message was received. mbox messages are
copied byte for byte; Maildir messages get a From_ line made of their
Return-Path (else MAILER-DAEMON) and received date. Each run appends a new
gzip member or zstd frame (zcat and zstdcat read them all); beside each file
an index (MAILBOX.YYYY-MM.idx) records a SHA-256 per archived message, so
a rerun never archives one twice. The archive is fsynced and read back
before the mailbox changes: a crash leaves a message in the mailbox or in
both, never in neither. Files are 0600 and owned like the mailbox.

--dry-run (-n) makes the same choice and changes nothing, not even a lock
file. --list adds each removed message to the output.

Formats (--format): table (on a terminal, a table with totals; when piped,
tab-separated rows: messages, removed, bytes, bytes removed, kept undated,
format, path, error), json (the CLI contract's document) or csv.

AGE takes 90d, 12w, 6mo, 1y or 36h. SIZE takes 2GiB, 1.5GB, 10MB or
500000 (GB and MB are powers of ten, GiB and MiB powers of two).

EXIT STATUS
  0    every mailbox was pruned (or needed nothing)
  1    one or more mailboxes failed (locked, unsafe, unreadable, disk full,
       archive not writable): each is reported with its error and left
       unchanged (an in-place rewrite cut short is finished by the next
       run); the rest were processed
  2    usage error
  130  interrupted: mailboxes done so far are reported; the one in progress
       is left unchanged (a Maildir, pruned file by file, is reported with
       the messages removed before the interruption)`,
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
		interrupted := err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err())
		if interrupted && res.MessagesRemoved == 0 {
			break // interrupted: this mailbox is unchanged, and not reported
		}
		for _, n := range res.Notes {
			fmt.Fprintf(stderr, "mailkeep: %s: %s\n", report.Printable(loc.Path), report.Printable(n))
		}
		row := pruneRow(loc, res, ro.List)
		if err != nil {
			msg := err.Error()
			if interrupted {
				msg = fmt.Sprintf("interrupted after %d messages were removed; the others are untouched", res.MessagesRemoved)
			}
			row.Error = &msg
			failed++
		}
		rep.Mailboxes = append(rep.Mailboxes, row)
		if interrupted {
			// A Maildir is pruned file by file: what was removed before
			// the interruption is gone, and reported with it.
			break
		}
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
		Path:             loc.Path,
		Format:           string(loc.Format),
		MessagesBefore:   res.MessagesBefore,
		MessagesRemoved:  res.MessagesRemoved,
		BytesBefore:      res.BytesBefore,
		BytesRemoved:     res.BytesRemoved,
		KeptUndated:      res.KeptUndated,
		MessagesArchived: res.MessagesArchived,
		ArchiveFiles:     res.Archives,
		Mode:             string(res.Mode),
	}
	if len(res.Archives) > 0 {
		dir := filepath.Dir(res.Archives[0])
		row.Archive = &dir
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
