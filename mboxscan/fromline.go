package mboxscan

import (
	"bytes"
	"strings"
	"time"
)

// ParseFromLine parses an mbox From_ line ("From sender date"), given
// without its line ending. It accepts what delivery agents write in
// practice (RFC 4155; Dovecot lib-mail/mbox-from.c; mailutils env.at):
//
//	From user@example.org Thu Nov 26 21:42:18 2026          asctime (ctime(3))
//	From user@example.org  Thu Nov  6 21:42:18 2026         procmail: two spaces, padded day
//	From user@example.org Wed Dec  2 05:53 1992             no seconds
//	From user@example.org Wed Dec  2 05:53 PST 1992         zone name before the year
//	From user@example.org Wed Dec  2 05:53:01 -0700 1992    numeric zone before the year
//	From user@example.org Wed Dec  2 05:53:01 1992 -0700    ... or after it
//	From user Wed Dec  2 05:53:01 1992 remote from host     UUCP
//	From  Wed Dec  2 05:53:01 1992                          empty sender (a bounce)
//	From user@example.org Sun, 11 Nov 2007 06:58:35 +0200   RFC 5322 date (Exim)
//
// The weekday may be followed by a comma and the day may come before the
// month. A date without a zone, or with a zone name it does not know, is
// taken as local time: that is what ctime(3) wrote on the delivering host.
//
// A body line such as "From here to eternity" has no date and is rejected,
// which is what keeps such lines from splitting a message.
func ParseFromLine(line []byte) (sender string, date time.Time, ok bool) {
	if !bytes.HasPrefix(line, []byte("From ")) {
		return "", time.Time{}, false
	}
	rest := string(line[5:])
	fields := strings.Fields(rest)
	// Find "Www Mmm" (or "Www dd Mmm"): the sender is everything before the
	// weekday, so senders holding spaces ("john doe"@x) still parse.
	wd := -1
	for i := 0; i+1 < len(fields) && i < 8; i++ {
		if isWeekday(fields[i]) {
			wd = i
			break
		}
	}
	if wd < 0 {
		return "", time.Time{}, false
	}
	if wd > 0 {
		// The sender is the text before the weekday field, as written.
		idx := indexField(rest, fields, wd)
		sender = strings.TrimSpace(rest[:idx])
	}
	if sender == "<>" {
		sender = ""
	}
	d := fields[wd+1:]
	var month time.Month
	var day int
	switch {
	case len(d) >= 2 && monthOf(d[0]) > 0 && isDigits(d[1], 1, 2):
		month, day = monthOf(d[0]), atoi(d[1])
	case len(d) >= 2 && isDigits(d[0], 1, 2) && monthOf(d[1]) > 0:
		month, day = monthOf(d[1]), atoi(d[0])
	default:
		return "", time.Time{}, false
	}
	d = d[2:]
	if day < 1 || day > 31 {
		return "", time.Time{}, false
	}
	// The rest, in the orders seen in the wild: the time, the year and up
	// to two zone fields, then an optional UUCP "remote from host".
	hh, mm, ss, clock := 0, 0, 0, false
	year := -1
	var loc *time.Location
	zones := 0
	for len(d) > 0 {
		f := d[0]
		switch {
		case !clock && strings.Contains(f, ":"):
			if hh, mm, ss, clock = parseClock(f); !clock {
				return "", time.Time{}, false
			}
		case year < 0 && isDigits(f, 4, 4):
			year = atoi(f)
		case year < 0 && isDigits(f, 2, 2):
			year = atoi(f) + 1900
			if year < 1970 {
				year += 100
			}
		case zones < 2 && isNumericZone(f):
			loc = numericZone(f)
			zones++
		case zones < 2 && isZoneName(f):
			if loc == nil {
				loc = namedZone(f) // nil: unknown name, local time
			}
			zones++
		case len(d) == 3 && year >= 0 && d[0] == "remote" && d[1] == "from":
			d = nil
			continue
		default:
			return "", time.Time{}, false
		}
		d = d[1:]
	}
	if !clock {
		return "", time.Time{}, false
	}
	if year < 0 {
		return "", time.Time{}, false
	}
	if loc == nil {
		loc = time.Local
	}
	date = time.Date(year, month, day, hh, mm, ss, 0, loc)
	if date.Day() != day { // Feb 31 and the like
		return "", time.Time{}, false
	}
	return sender, date, true
}

// indexField returns the byte index in s of fields[n], where fields came
// from strings.Fields(s).
func indexField(s string, fields []string, n int) int {
	i := 0
	for k := 0; k <= n; k++ {
		j := strings.Index(s[i:], fields[k])
		i += j
		if k < n {
			i += len(fields[k])
		}
	}
	return i
}

var weekdays = [...]string{"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"}
var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func isWeekday(f string) bool {
	f = strings.TrimSuffix(f, ",")
	if len(f) != 3 {
		return false
	}
	for _, w := range weekdays {
		if strings.EqualFold(f, w) {
			return true
		}
	}
	return false
}

func monthOf(f string) time.Month {
	if len(f) != 3 {
		return 0
	}
	for i, m := range months {
		if strings.EqualFold(f, m) {
			return time.Month(i + 1)
		}
	}
	return 0
}

func isDigits(f string, min, max int) bool {
	if len(f) < min || len(f) > max {
		return false
	}
	for i := 0; i < len(f); i++ {
		if f[i] < '0' || f[i] > '9' {
			return false
		}
	}
	return true
}

func atoi(f string) int {
	n := 0
	for i := 0; i < len(f); i++ {
		n = n*10 + int(f[i]-'0')
	}
	return n
}

// parseClock parses hh:mm or hh:mm:ss.
func parseClock(f string) (hh, mm, ss int, ok bool) {
	parts := strings.Split(f, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, 0, false
	}
	for _, p := range parts {
		if !isDigits(p, 1, 2) {
			return 0, 0, 0, false
		}
	}
	hh, mm = atoi(parts[0]), atoi(parts[1])
	if len(parts) == 3 {
		ss = atoi(parts[2])
	}
	if hh > 23 || mm > 59 || ss > 60 {
		return 0, 0, 0, false
	}
	return hh, mm, ss, true
}

func isNumericZone(f string) bool {
	return len(f) == 5 && (f[0] == '+' || f[0] == '-') && isDigits(f[1:], 4, 4)
}

func numericZone(f string) *time.Location {
	off := (atoi(f[1:3])*60 + atoi(f[3:5])) * 60
	if f[0] == '-' {
		off = -off
	}
	return time.FixedZone(f, off)
}

func isZoneName(f string) bool {
	if len(f) < 1 || len(f) > 6 {
		return false
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return false
		}
	}
	return !isWeekday(f) && monthOf(f) == 0 && f != "remote" && f != "from"
}

// namedZone knows the zone names whose offsets are unambiguous in mail
// (RFC 5322 obsolete zones); other names give nil: local time.
func namedZone(f string) *time.Location {
	off, ok := map[string]int{
		"UT": 0, "UTC": 0, "GMT": 0, "Z": 0,
		"EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
		"MST": -7, "MDT": -6, "PST": -8, "PDT": -7,
	}[strings.ToUpper(f)]
	if !ok {
		return nil
	}
	if off == 0 {
		return time.UTC
	}
	return time.FixedZone(strings.ToUpper(f), off*3600)
}
