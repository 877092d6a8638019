package mboxscan

import (
	"net/mail"
	"strings"
	"time"
)

// Format names the on-disk layout of a mailbox, as the JSON contract spells it.
type Format string

const (
	FormatMbox    Format = "mbox"
	FormatMaildir Format = "maildir"
)

// DateKind selects which of a message's dates a policy looks at
// (the contract's --date received|saved|sent).
type DateKind string

const (
	// DateReceived is IMAP's INTERNALDATE: the From_ line for mbox, the
	// file's mtime for Maildir (else the time stamp in its name).
	DateReceived DateKind = "received"
	// DateSaved is when the message was stored in this folder: the time
	// stamp in a Maildir name (else mtime); for mbox the From_ line.
	DateSaved DateKind = "saved"
	// DateSent is the Date header.
	DateSent DateKind = "sent"
)

// Header holds the raw (unfolded, not decoded) values of the header fields
// mailkeep needs. A field that is absent is "".
type Header struct {
	Date          string
	MessageID     string
	From          string
	Subject       string
	Status        string
	XStatus       string
	XKeywords     string
	ContentLength string
	ContentType   string
	XIMAP         string
	XIMAPBase     string
	ReturnPath    string
}

// Message is one message of a mailbox.
//
// For mbox, Offset and Length give the message's byte span in the file: it
// starts at the From_ line and runs up to the next message's From_ line (or
// the end of the file), so the spans of a file's messages tile it exactly
// and copying a span reproduces the message byte for byte, escapes and
// separator blank line included.
type Message struct {
	Offset int64 // mbox: offset of the From_ line; Maildir: 0
	Length int64 // mbox: bytes in the span; Maildir: the message's size

	// Line is the 1-based line number of the From_ line (mbox), 0 when not
	// counted.
	Line int64

	FromLine string // mbox: the From_ line without its line ending
	// Sender is the envelope sender: the From_ line's for mbox, the
	// Return-Path header's for Maildir; "" when empty or "<>".
	Sender string
	// HasEnvelope is set when Sender is known (mbox always; Maildir when the
	// message has a Return-Path header).
	HasEnvelope bool
	Received    time.Time // see DateReceived; zero when unknown
	Saved       time.Time // see DateSaved; zero when unknown

	Header Header
	// HeaderTruncated is set when the header did not end within the
	// scanner's bounded header buffer; fields past the bound are missing.
	HeaderTruncated bool

	// Pseudo marks the UW-IMAP / Dovecot "FOLDER INTERNAL DATA" message,
	// which is never counted as a message and never removed.
	Pseudo bool

	// Glued marks an mbox message whose From_ line has no blank line
	// before it. Every mbox writer leaves one, so such a line is often body
	// text of the previous message (an unescaped "From " in mboxo, a
	// forwarded mailbox): a pruner must remove it only together with the
	// message before it, and keep both otherwise.
	Glued bool

	// Maildir only.
	Path  string // file path of the message
	Flags string // the flags after ":2," in its name, e.g. "FS"
}

// Size is the number of bytes the message occupies in its mailbox.
func (m *Message) Size() int64 { return m.Length }

// Sent parses the Date header; ok is false when it is missing or unusable.
func (m *Message) Sent() (t time.Time, ok bool) {
	if m.Header.Date == "" {
		return time.Time{}, false
	}
	t, err := mail.ParseDate(m.Header.Date)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// Date returns the message's date of the given kind, zero when unknown.
func (m *Message) Date(kind DateKind) time.Time {
	switch kind {
	case DateSaved:
		if !m.Saved.IsZero() {
			return m.Saved
		}
		return m.Received
	case DateSent:
		t, _ := m.Sent()
		return t
	default:
		if !m.Received.IsZero() {
			return m.Received
		}
		return m.Saved
	}
}

// Bounce reports whether the message is a delivery status notification:
// its envelope sender is MAILER-DAEMON or empty, or it is a
// multipart/report with report-type=delivery-status.
func (m *Message) Bounce() bool {
	if m.HasEnvelope {
		s := strings.ToLower(m.Sender)
		if s == "" || s == "<>" || strings.HasPrefix(s, "mailer-daemon") {
			return true
		}
	}
	ct := strings.ToLower(m.Header.ContentType)
	return strings.HasPrefix(strings.TrimSpace(ct), "multipart/report") &&
		strings.Contains(strings.ReplaceAll(ct, `"`, ""), "report-type=delivery-status")
}

// Flagged reports whether the user flagged the message (X-Status F, Maildir F).
func (m *Message) Flagged() bool {
	if m.Path != "" {
		return strings.ContainsRune(m.Flags, 'F')
	}
	return strings.ContainsRune(m.Header.XStatus, 'F')
}

// Seen reports whether the message has been read (Status R, Maildir S).
func (m *Message) Seen() bool {
	if m.Path != "" {
		return strings.ContainsRune(m.Flags, 'S')
	}
	return strings.ContainsRune(m.Header.Status, 'R')
}
