package report

import (
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dustin/go-humanize"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// Printable returns s unchanged when it is valid UTF-8 without control
// characters, else Go-quoted: a file name with an escape sequence or a
// newline must not reach a terminal or a line-oriented reader as is.
// Callers writing diagnostics use it too.
func Printable(s string) string { return printable(s) }

func printable(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// day formats t as YYYY-MM-DD, or returns none for the zero time.
func day(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.Format(time.DateOnly)
}

// rfc3339 formats t as RFC 3339 (whole seconds), nil for the zero time.
func rfc3339(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.Format(time.RFC3339)
	return &s
}

// percent formats a ratio as a percentage with one decimal.
func percent(ratio float64) string {
	return strconv.FormatFloat(ratio*100, 'f', 1, 64)
}

// ibytes prints a byte count in binary units; negative counts (which a
// scanner never reports) are printed as they are rather than wrapped.
func ibytes(n int64) string {
	if n < 0 {
		return fmt.Sprintf("%d B", n)
	}
	return humanize.IBytes(uint64(n))
}

// plural returns n and the noun, with an "es" or "s" added unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	if noun == "mailbox" {
		return fmt.Sprintf("%d mailboxes", n)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// storeKey names what a mailbox's limit applies to: its Maildir store, or
// the mailbox itself.
func storeKey(m *mboxscan.Mailbox) string {
	if m.Store != "" {
		return m.Store
	}
	return m.Path
}

// storeBytes is the size the limit is compared with; a result that was not
// assessed has no StoreBytes, and then the mailbox's own size stands in.
func storeBytes(m *mboxscan.Mailbox) int64 {
	if m.StoreBytes == 0 {
		return m.Bytes
	}
	return m.StoreBytes
}
