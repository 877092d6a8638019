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
