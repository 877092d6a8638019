package retention

import (
	"strings"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

// Options tune a prune run. Policy is required; the rest may be zero.
type Options struct {
	Policy Policy
	// Now is the instant the policy's age counts back from; zero means
	// time.Now(). Time stamps written to files always use the real clock.
	Now time.Time
	// DryRun makes the same choice and writes nothing: no lock file, no
	// temporary file, no unlink.
	DryRun bool
	// List fills Result.Removed.
	List bool
	// Lock says which locks to take on an mbox and for how long to try;
	// zero Kinds means mboxlock.DefaultKinds.
	Lock mboxlock.Options
	// CheckOwner refuses an mbox whose owner is not ExpectUID, the owner
	// the caller's scan saw: someone swapped the file in between.
	CheckOwner bool
	ExpectUID  int
	// CleanTmp also removes Maildir tmp/ files whose ctime is older than
	// 36 hours (the Maildir convention for abandoned deliveries).
	CleanTmp bool
	// Archive, when its Dir is set, keeps the removed messages in
	// compressed mbox files under Dir instead of letting them vanish: see
	// [ArchiveOptions]. They are made durable before the mailbox changes.
	Archive ArchiveOptions
	// Rewrite chooses how an mbox is rewritten; "" means RewriteAuto.
	Rewrite RewriteMode
	// StateDir holds the journals of in-place rewrites (and, unless
	// TmpDir is set, their temporary files); "" means the default: see
	// [DefaultStateDir]. It must be on a persistent file system.
	StateDir string
	// TmpDir is where an in-place rewrite builds the new mailbox content;
	// "" means StateDir. It must survive a reboot (not a tmpfs): a crash
	// is finished from it.
	TmpDir string
	// Listings, when set, lists each directory once for all the prunes
	// that share it, to find what killed runs left beside each mailbox
	// (see [Listings]); nil lists the mailbox's directory at every prune.
	Listings *Listings
}

func (o Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

// Result is what a prune did (or, in a dry run, would do) to one mailbox.
type Result struct {
	Path   string
	Format mboxscan.Format

	MessagesBefore  int   // not counting the pseudo-message
	MessagesRemoved int   //
	BytesBefore     int64 // mbox: file size; Maildir: sum of message sizes
	BytesRemoved    int64
	KeptUndated     int // kept because they have no usable date

	// MessagesArchived counts the removed messages that are in the
	// archive: written by this run, or found there already (an earlier
	// run was interrupted after archiving them).
	MessagesArchived int
	// Archives lists the archive files that hold them.
	Archives []string
	// Mode says how the mbox was (or, in a dry run, would be) rewritten:
	// RewriteRename or RewriteInplace; "" for a Maildir or when nothing
	// was removed from an mbox in a real run.
	Mode RewriteMode

	// Removed lists the removed messages when Options.List is set.
	Removed []Removed
	// Notes tell what else happened: stale temporary files removed, bytes
	// carried over from a writer that appended to the replaced file,
	// Maildir tmp/ files cleaned.
	Notes []string
}

// Removed describes one removed message for --list.
type Removed struct {
	MessageID string
	Date      time.Time // of the policy's date kind
	Bytes     int64
	From      string // RFC 2047 decoded
	Subject   string // RFC 2047 decoded
}

func removedEntry(m *mboxscan.Message, p Policy) Removed {
	return Removed{
		MessageID: strings.TrimSpace(m.Header.MessageID),
		Date:      m.Date(p.dateKind()),
		Bytes:     m.Size(),
		From:      mboxscan.DecodeHeader(m.Header.From),
		Subject:   mboxscan.DecodeHeader(m.Header.Subject),
	}
}
