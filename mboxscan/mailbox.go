package mboxscan

import "time"

// Level says how close a store is to its limit.
type Level string

const (
	LevelOK   Level = "ok"
	LevelWarn Level = "warn"
	LevelCrit Level = "crit"
)

// Mailbox is the measurement of one mailbox: an mbox file or one Maildir
// folder (the INBOX or a Maildir++ ".Folder").
type Mailbox struct {
	Path   string
	Format Format
	Owner  string // user name of the file's owner, else the numeric uid
	UID    int
	GID    int

	// Store names what the limit applies to: the mbox file itself, or the
	// Maildir root whose folders share one quota.
	Store  string
	Folder string // Maildir++ folder name (".Trash"); "" for an INBOX or mbox

	Messages      int   // not counting the UW-IMAP pseudo-message
	Bytes         int64 // mbox: file size; Maildir: sum of message sizes
	Oldest        time.Time
	Newest        time.Time
	Undated       int // messages without a usable received date
	LargestBytes  int64
	LargeMessages int // messages bigger than Options.Large
	Bounces       int

	// ModTime is the mbox file's (or Maildir folder's) modification time.
	ModTime time.Time

	// Quota is the Maildir++ quota of the store (from maildirsize), nil
	// when none is set.
	Quota *Quota

	// Problems lists what was odd but did not stop the scan (leading
	// garbage, a truncated last message, unreadable message files).
	Problems []string

	// Filled in by Assess: the store's use against its limit.
	StoreBytes int64
	LimitBytes int64
	UsedRatio  float64
	Level      Level
}

// Quota is a Maildir++ quota (maildirsize): limits and the current use
// the file records. A zero limit means none.
type Quota struct {
	LimitBytes    int64
	LimitMessages int64
	UsedBytes     int64
	UsedMessages  int64
}

// Skipped is a file or directory under a scan root that is not a mailbox,
// or could not be read, with the reason.
type Skipped struct {
	Path   string
	Reason string
}

// Result is the outcome of scanning a set of roots.
type Result struct {
	Mailboxes []Mailbox // in a stable order: by path
	Skipped   []Skipped // by path
}

// add counts one message into the mailbox's figures.
func (mb *Mailbox) add(m *Message, large int64) {
	if m.Pseudo {
		return
	}
	mb.Messages++
	if d := m.Date(DateReceived); d.IsZero() {
		mb.Undated++
	} else {
		mb.dated(d, d)
	}
	mb.LargestBytes = max(mb.LargestBytes, m.Length)
	if m.Length > large {
		mb.LargeMessages++
	}
	if m.Bounce() {
		mb.Bounces++
	}
}

// merge adds the figures o counted (as add does, and Bytes) to mb's: the
// Maildir readers each count a share of a folder.
func (mb *Mailbox) merge(o *Mailbox) {
	mb.Messages += o.Messages
	mb.Bytes += o.Bytes
	mb.Undated += o.Undated
	mb.LargeMessages += o.LargeMessages
	mb.Bounces += o.Bounces
	mb.LargestBytes = max(mb.LargestBytes, o.LargestBytes)
	if !o.Oldest.IsZero() {
		mb.dated(o.Oldest, o.Newest)
	}
}

// dated widens mb's date range to take in [oldest, newest].
func (mb *Mailbox) dated(oldest, newest time.Time) {
	if mb.Oldest.IsZero() || oldest.Before(mb.Oldest) {
		mb.Oldest = oldest
	}
	if newest.After(mb.Newest) {
		mb.Newest = newest
	}
}
