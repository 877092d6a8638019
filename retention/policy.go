// Package retention chooses the messages a retention policy removes and
// removes them from mbox files and Maildirs without ever losing mail.
//
// # Selection
//
// A [Policy] names a cutoff (an [Age] before now, or a fixed time) and
// optional conditions; [Decide] says, for one message, whether it goes and,
// when it stays, why ([KeepReason]). Decide is pure: a dry run and a real run
// make the same choice.
//
// # Rewriting an mbox
//
// [PruneMbox] locks the mailbox the way delivery agents do
// ([github.com/mailkeep/mailkeep/retention/mboxlock]), reads it under the
// locks, copies the kept messages' original bytes to a temporary file in the
// same directory and renames it over the mailbox, so the path always names
// either the old or the new mailbox. See PruneMbox for the details.
//
// # In-place rewrites
//
// Where no file can be made in the mailbox's directory (an ordinary user
// pruning /var/mail/USER) or the inode must stay, [RewriteInplace] copies
// the new content over the mailbox instead, from its first changed byte,
// under a journal kept in a state directory ([DefaultStateDir]) that lets
// a rerun finish an interrupted copy; [RewriteAuto], the default, chooses
// per mailbox and says why ([Result.Mode] and a note).
//
// The inode must stay wherever Dovecot's LDA may deliver: it takes fcntl
// before the dotlock and does not look for a replaced mbox after its wait,
// so a rename strands one that was waiting on the old file (it writes to
// the deleted file or loops there). Auto therefore rewrites in place a
// mailbox that shows Dovecot or UW-IMAP state (X-IMAPbase or X-IMAP in its
// first message, or .imap/NAME beside it); an explicit [RewriteRename]
// renames all the same and is safe only with agents that take the dotlock
// first (procmail, Postfix local).
//
// # Archives
//
// With [ArchiveOptions], removed messages are appended to compressed mbox
// files, one per owner, mailbox and month, made durable and read back
// before the mailbox changes, and indexed so that a rerun never archives a
// message twice. See ArchiveOptions for the naming scheme.
//
// # Maildir
//
// [PruneMaildir] unlinks message files from cur/ and new/ and keeps the
// Maildir++ maildirsize file true.
//
// Nothing in this package prints or exits; errors name the path and wrap
// the cause.
package retention

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// ErrEmptyPolicy is returned by [Policy.Validate] for a policy without a
// cutoff: pruning with it would remove nothing or everything.
var ErrEmptyPolicy = errors.New("empty retention policy: give an age (--older-than) or a date (--before)")

// ErrConflictingCutoff is returned by [Policy.Validate] when both an age and
// a fixed date are set.
var ErrConflictingCutoff = errors.New("both an age and a date are set: give only one of --older-than and --before")

// AgeUnit is the unit of an [Age].
type AgeUnit string

const (
	Hours  AgeUnit = "h"
	Days   AgeUnit = "d"
	Weeks  AgeUnit = "w"
	Months AgeUnit = "mo"
	Years  AgeUnit = "y"
)

// Age is a retention age such as 90d, 12w, 6mo, 1y or 36h. Days, weeks,
// months and years are calendar units (time.AddDate): "1d" across a DST
// change is one calendar day, not 24 hours, and "1mo" before March 31 is
// what AddDate makes of February 31 (March 2 or 3).
//
// Age implements pflag.Value (Set, String, Type).
type Age struct {
	N    int
	Unit AgeUnit
}

// ParseAge parses an age: a positive integer followed by h, d, w, mo or y.
// "m" is refused as ambiguous (minutes or months?).
func ParseAge(s string) (Age, error) {
	t := strings.TrimSpace(strings.ToLower(s))
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return Age{}, fmt.Errorf("parse age %q: want a number followed by h, d, w, mo or y (e.g. 90d)", s)
	}
	n, err := strconv.Atoi(t[:i])
	if err != nil {
		return Age{}, fmt.Errorf("parse age %q: %w", s, err)
	}
	if n <= 0 {
		return Age{}, fmt.Errorf("parse age %q: must be positive", s)
	}
	var u AgeUnit
	switch t[i:] {
	case "h":
		u = Hours
	case "d":
		u = Days
	case "w":
		u = Weeks
	case "mo":
		u = Months
	case "y":
		u = Years
	case "m":
		return Age{}, fmt.Errorf("parse age %q: unit \"m\" is ambiguous: write %dmo for months or %dh for hours", s, n, n)
	case "":
		return Age{}, fmt.Errorf("parse age %q: missing unit (h, d, w, mo or y)", s)
	default:
		return Age{}, fmt.Errorf("parse age %q: unknown unit %q (want h, d, w, mo or y)", s, t[i:])
	}
	return Age{N: n, Unit: u}, nil
}

// IsZero reports whether no age is set.
func (a Age) IsZero() bool { return a.N == 0 }

// String formats the age as ParseAge reads it; "" when zero.
func (a Age) String() string {
	if a.IsZero() {
		return ""
	}
	return strconv.Itoa(a.N) + string(a.Unit)
}

// Set parses s into a (pflag.Value).
func (a *Age) Set(s string) error {
	v, err := ParseAge(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Type names the flag's value type in help (pflag.Value).
func (a *Age) Type() string { return "age" }

// maxAgeYears bounds the ages Before computes: past it, time.Duration
// and AddDate overflow and wrap around, possibly to a cutoff in the
// future that would remove every dated message.
const maxAgeYears = 10000

// Before returns the instant a is before t. An age past what the time
// arithmetic holds (10000 years; in hours, a time.Duration's 292 years)
// gives the zero time: no message is that old.
func (a Age) Before(t time.Time) time.Time {
	perYear := map[AgeUnit]int{Days: 366, Weeks: 53, Months: 12, Years: 1}[a.Unit]
	if perYear > 0 && a.N > maxAgeYears*perYear ||
		a.Unit == Hours && int64(a.N) > math.MaxInt64/int64(time.Hour) {
		return time.Time{}
	}
	switch a.Unit {
	case Hours:
		return t.Add(-time.Duration(a.N) * time.Hour)
	case Days:
		return t.AddDate(0, 0, -a.N)
	case Weeks:
		return t.AddDate(0, 0, -7*a.N)
	case Months:
		return t.AddDate(0, -a.N, 0)
	case Years:
		return t.AddDate(-a.N, 0, 0)
	}
	return t
}

// Policy says which messages are removed. A message is removed when its
// date (of kind DateKind) is before the cutoff, it is larger than
// LargerThan (when set), and none of the keep rules applies.
type Policy struct {
	// OlderThan removes messages older than this age at the run's "now".
	// Exactly one of OlderThan and Before must be set.
	OlderThan Age
	// Before removes messages dated before this instant.
	Before time.Time
	// LargerThan, when > 0, further requires a message to be larger than
	// this many bytes (its size in the mailbox).
	LargerThan int64
	// DateKind is the date compared with the cutoff; "" means received.
	DateKind mboxscan.DateKind
	// IncludeFlagged lets flagged messages (X-Status F, Maildir F) go too;
	// by default they are kept.
	IncludeFlagged bool
	// KeepUnread keeps messages not yet read (Status without R, Maildir
	// without S).
	KeepUnread bool
}

// Validate returns ErrEmptyPolicy when no cutoff is set and
// ErrConflictingCutoff when both are.
func (p Policy) Validate() error {
	switch {
	case p.OlderThan.IsZero() && p.Before.IsZero():
		return ErrEmptyPolicy
	case !p.OlderThan.IsZero() && !p.Before.IsZero():
		return ErrConflictingCutoff
	}
	switch p.DateKind {
	case "", mboxscan.DateReceived, mboxscan.DateSaved, mboxscan.DateSent:
	default:
		return fmt.Errorf("unknown date kind %q (want received, saved or sent)", p.DateKind)
	}
	return nil
}

// Cutoff returns the instant before which messages are old enough to go.
func (p Policy) Cutoff(now time.Time) time.Time {
	if !p.Before.IsZero() {
		return p.Before
	}
	return p.OlderThan.Before(now)
}

// dateKind returns the effective date kind.
func (p Policy) dateKind() mboxscan.DateKind {
	if p.DateKind == "" {
		return mboxscan.DateReceived
	}
	return p.DateKind
}

// String describes the policy in one line, e.g.
// "received older than 90d, larger than 1000000 bytes, flagged kept".
func (p Policy) String() string {
	var b strings.Builder
	b.WriteString(string(p.dateKind()))
	if !p.Before.IsZero() {
		b.WriteString(" before " + p.Before.Format(time.RFC3339))
	} else if !p.OlderThan.IsZero() {
		b.WriteString(" older than " + p.OlderThan.String())
	} else {
		b.WriteString(" (no cutoff)")
	}
	if p.LargerThan > 0 {
		fmt.Fprintf(&b, ", larger than %d bytes", p.LargerThan)
	}
	if p.IncludeFlagged {
		b.WriteString(", flagged included")
	} else {
		b.WriteString(", flagged kept")
	}
	if p.KeepUnread {
		b.WriteString(", unread kept")
	}
	return b.String()
}

// KeepReason says why a message is kept; KeepNone means it is removed.
type KeepReason int

const (
	KeepNone     KeepReason = iota // removed
	KeepPseudo                     // the FOLDER INTERNAL DATA pseudo-message
	KeepUndated                    // no usable date of the policy's kind
	KeepFuture                     // dated in the future: the date cannot be trusted
	KeepTooYoung                   // not before the cutoff
	KeepTooSmall                   // not larger than LargerThan
	KeepFlagged                    // flagged, and IncludeFlagged is off
	KeepUnread                     // not read, and KeepUnread is on
)

var keepReasonNames = [...]string{
	KeepNone:     "removed",
	KeepPseudo:   "pseudo",
	KeepUndated:  "undated",
	KeepFuture:   "future",
	KeepTooYoung: "too young",
	KeepTooSmall: "too small",
	KeepFlagged:  "flagged",
	KeepUnread:   "unread",
}

func (r KeepReason) String() string {
	if int(r) >= 0 && int(r) < len(keepReasonNames) {
		return keepReasonNames[r]
	}
	return "KeepReason(" + strconv.Itoa(int(r)) + ")"
}

// Decide says whether the policy removes m at the instant now, and when it
// does not, why. The rules apply in this order: pseudo-message, undated,
// future, too young, too small, flagged, unread. Decide is pure.
func Decide(m *mboxscan.Message, p Policy, now time.Time) (remove bool, reason KeepReason) {
	if m.Pseudo {
		return false, KeepPseudo
	}
	d := m.Date(p.dateKind())
	if d.IsZero() {
		return false, KeepUndated
	}
	if d.After(now) {
		return false, KeepFuture
	}
	if !d.Before(p.Cutoff(now)) {
		return false, KeepTooYoung
	}
	if p.LargerThan > 0 && m.Size() <= p.LargerThan {
		return false, KeepTooSmall
	}
	if !p.IncludeFlagged && m.Flagged() {
		return false, KeepFlagged
	}
	if p.KeepUnread && !m.Seen() {
		return false, KeepUnread
	}
	return true, KeepNone
}
