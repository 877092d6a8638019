package interop

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// asctime is the date format of a From_ line.
const asctime = "Mon Jan _2 15:04:05 2006"

// The old messages of a fixture lie between one year and two days and one
// year and oldSpan before its base time; the others are younger than one
// year by at least a day. The margins make the choice independent of how
// "1y" is counted (365 days or a calendar year).
const oldSpan = 300 * 24 * time.Hour

// original is one message of a generated mbox.
type original struct {
	n        int
	date     time.Time
	old      bool   // older than one year at the fixture's base time
	fromLine string // without the newline
	raw      []byte // From_ line through the separator blank line
}

// messageID is the Message-ID of original n.
func origID(n int) string { return fmt.Sprintf("<orig-%d@interop.test>", n) }

// genMbox builds an mbox of n messages with bodies of about bodySize bytes,
// every second one old (see oldSpan), so that a prune keeps and removes
// alternate spans all through the file. Every From_ line is unique.
func genMbox(n, bodySize int, base time.Time) ([]byte, []original) {
	var buf bytes.Buffer
	msgs := make([]original, 0, n)
	half := (n + 1) / 2
	oldStep := oldSpan / time.Duration(half)
	newStep := 330 * 24 * time.Hour / time.Duration(half)
	for i := 0; i < n; i++ {
		old := i%2 == 0
		j := half - 1 - i/2 // oldest first within each half
		var d time.Time
		if old {
			d = base.AddDate(-1, 0, -2).Add(-time.Duration(j) * oldStep)
		} else {
			d = base.AddDate(0, 0, -1).Add(-time.Duration(j) * newStep)
		}
		d = d.Add(time.Duration(i) * time.Second).UTC() // unique From_ lines
		from := fmt.Sprintf("From orig-%d@example.org %s", i, d.Format(asctime))
		start := buf.Len()
		fmt.Fprintf(&buf, "%s\nReturn-Path: <orig-%d@example.org>\nFrom: Original %d <orig-%d@example.org>\n"+
			"To: user@example.org\nSubject: original %d\nDate: %s\nMessage-ID: %s\n\n",
			from, i, i, i, i, d.Format(time.RFC1123Z), origID(i))
		body := 0
		for k := 0; body < bodySize; k++ {
			var line string
			switch k % 17 {
			case 5:
				line = ">From the archive, an escaped line\n" // mboxrd escape, as procmail writes
			case 11:
				line = "From: a body line that looks like a header\n"
			default:
				line = fmt.Sprintf("original %d line %d: some body text to give the mailbox its weight\n", i, k)
			}
			buf.WriteString(line)
			body += len(line)
		}
		buf.WriteString("\n")
		msgs = append(msgs, original{n: i, date: d, old: old, fromLine: from, raw: append([]byte(nil), buf.Bytes()[start:]...)})
	}
	return buf.Bytes(), msgs
}

// delivery is the message delivered with sequence number seq. Its body has
// a valid From_ line that procmail escapes and dovecot-lda does not (it
// writes Content-Length instead): a pruner that splits there would see an
// old message from 2001 inside it.
func delivery(seq int) []byte {
	return fmt.Appendf(nil, "From: Deliverer <deliver@example.org>\nTo: user@example.org\n"+
		"Subject: delivery %d\nMessage-ID: <seq-%d@interop.test>\nX-Seq: %d\n\n"+
		"body of %d\nFrom old@example.com Mon Jan  1 00:00:00 2001\nend of %d\n", seq, seq, seq, seq, seq)
}

// mboxCheck is what checkMbox found in a mailbox after deliveries and
// prunes.
type mboxCheck struct {
	seqs      map[int]int // X-Seq → occurrences with an intact body
	seqBad    map[int]int // X-Seq → occurrences with a damaged body
	origSeen  map[int]int // original → Message-ID occurrences
	origExact map[int]int // original → byte-exact copies
	// origSame counts copies equal to the original once the headers
	// Dovecot writes into an mbox are left out of the copy (with
	// dovecotHeaders set).
	origSame map[int]int
}

// dovecotOwn are the headers Dovecot adds to or rewrites in mbox messages
// for its own bookkeeping (and hides from IMAP clients).
var dovecotOwn = []string{"X-IMAPbase:", "X-IMAP:", "X-UID:", "Status:", "X-Status:", "X-Keywords:", "Content-Length:"}

// withoutDovecotHeaders returns the message at the start of data (a From_
// line, then headers) with Dovecot's own header lines left out, up to
// limit bytes of it.
func withoutDovecotHeaders(data []byte, limit int) []byte {
	var out []byte
	pos, inHeader := 0, true
	for pos < len(data) && len(out) < limit {
		end := bytes.IndexByte(data[pos:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += pos + 1
		}
		line := data[pos:end]
		if inHeader && pos > 0 {
			if len(line) == 1 {
				inHeader = false
			}
			drop := false
			for _, h := range dovecotOwn {
				if len(line) >= len(h) && strings.EqualFold(string(line[:len(h)]), h) {
					drop = true
					break
				}
			}
			if drop {
				pos = end
				continue
			}
		}
		out = append(out, line...)
		pos = end
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// checkMbox reads an mbox in one pass over its lines, independently of
// mailkeep's parser: it counts the X-Seq headers of deliveries (checking
// the body that follows each), the Message-IDs of the originals and the
// byte-exact copies of the originals, found at their unique From_ lines.
func checkMbox(data []byte, origs []original, dovecotHeaders bool) mboxCheck {
	c := mboxCheck{seqs: map[int]int{}, seqBad: map[int]int{}, origSeen: map[int]int{}, origExact: map[int]int{}, origSame: map[int]int{}}
	byFrom := make(map[string]int, len(origs))
	for i, o := range origs {
		byFrom[o.fromLine] = i
	}
	for pos := 0; pos < len(data); {
		end := bytes.IndexByte(data[pos:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += pos
		}
		line := string(data[pos:end])
		switch {
		case strings.HasPrefix(line, "From "):
			i, ok := byFrom[line]
			switch {
			case !ok:
			case bytes.HasPrefix(data[pos:], origs[i].raw):
				c.origExact[i]++
				c.origSame[i]++
			case dovecotHeaders && bytes.Equal(withoutDovecotHeaders(data[pos:], len(origs[i].raw)), origs[i].raw):
				c.origSame[i]++
			}
		case strings.HasPrefix(line, "Message-ID: <orig-"):
			var n int
			if _, err := fmt.Sscanf(line, "Message-ID: <orig-%d@interop.test>", &n); err == nil {
				c.origSeen[n]++
			}
		case strings.HasPrefix(line, "X-Seq: "):
			n, err := strconv.Atoi(line[len("X-Seq: "):])
			if err != nil {
				break
			}
			if deliveredBodyIntact(data[end:], n) {
				c.seqs[n]++
			} else {
				c.seqBad[n]++
			}
		}
		pos = end + 1
	}
	return c
}

// deliveredBodyIntact tells whether the text after a delivery's X-Seq line
// holds its whole body, the From_ line in it escaped or not. Agents may add
// headers (Dovecot: X-UID, Status, Content-Length) before the body.
func deliveredBodyIntact(rest []byte, n int) bool {
	if len(rest) > 2048 {
		rest = rest[:2048]
	}
	i := bytes.Index(rest, []byte("\n\n"))
	if i < 0 {
		return false
	}
	body := string(rest[i+2:])
	for _, from := range []string{"From", ">From"} {
		want := fmt.Sprintf("body of %d\n%s old@example.com Mon Jan  1 00:00:00 2001\nend of %d\n", n, from, n)
		if strings.HasPrefix(body, want) {
			return true
		}
	}
	return false
}

// maildirMsg is one message of a generated Maildir.
type maildirMsg struct {
	n     int
	sub   string // "cur" or "new"
	name  string
	flags string
	date  time.Time
	old   bool
	size  int64
	lines int64 // LF count: Dovecot's virtual size adds one CR per line
}

// genMaildir writes n messages into the Maildir root (cur, new, tmp),
// alternately old and new as in genMbox; received dates are file mtimes.
// Messages in cur get the flags flagsOf returns; every fifth new one is in
// new/.
func genMaildir(t *testing.T, root string, n int, base time.Time, flagsOf func(i int) string) []maildirMsg {
	t.Helper()
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	_, origs := genMbox(n, 600, base)
	var out []maildirMsg
	for i, o := range origs {
		// The message is the mbox message without its From_ line and
		// separator, with the envelope sender as Return-Path (already there).
		raw := o.raw[len(o.fromLine)+1 : len(o.raw)-1]
		m := maildirMsg{n: i, sub: "cur", date: o.date, old: o.old, size: int64(len(raw)), lines: int64(bytes.Count(raw, []byte("\n")))}
		unique := fmt.Sprintf("%d.M%dP%d.interop", o.date.Unix(), i, os.Getpid())
		if !o.old && i%5 == 1 {
			m.sub, m.name = "new", unique
		} else {
			m.flags = flagsOf(i)
			m.name = unique + ":2," + m.flags // ':' names exist only at run time
		}
		p := filepath.Join(root, m.sub, m.name)
		if err := os.WriteFile(p, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, o.date, o.date); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}
