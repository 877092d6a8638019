package mboxscan

import (
	"strings"
	"testing"
	"time"
)

// zone returns a fixed zone of the given offset in hours and minutes, for
// comparing instants (Equal) rather than locations.
func zone(h, m int) *time.Location {
	off := h*3600 + m*60
	if h < 0 {
		off = h*3600 - m*60
	}
	return time.FixedZone("", off)
}

func TestParseFromLine(t *testing.T) {
	tests := []struct {
		name   string
		line   string
		sender string
		date   time.Time
		// local: the date carries no usable zone, so it must be read as
		// local time (what ctime(3) wrote on the delivering host).
		local bool
	}{
		{"asctime one space, local time",
			"From user@example.org Thu Nov 26 21:42:18 2026",
			"user@example.org", time.Date(2026, 11, 26, 21, 42, 18, 0, time.Local), true},
		{"procmail two spaces and padded day, local time",
			"From user@example.org  Thu Nov  6 21:42:18 2026",
			"user@example.org", time.Date(2026, 11, 6, 21, 42, 18, 0, time.Local), true},
		{"zero-padded day, local time",
			"From envelope-sender-mailbox-name Mon Jun 01 10:00:00 2009",
			"envelope-sender-mailbox-name", time.Date(2009, 6, 1, 10, 0, 0, 0, time.Local), true},
		{"no seconds, local time",
			"From user@example.org Wed Dec  2 05:53 1992",
			"user@example.org", time.Date(1992, 12, 2, 5, 53, 0, 0, time.Local), true},
		{"zone name PST before the year",
			"From user@example.org Wed Dec  2 05:53 PST 1992",
			"user@example.org", time.Date(1992, 12, 2, 5, 53, 0, 0, zone(-8, 0)), false},
		{"zone name GMT before the year",
			"From user@example.org Wed Dec  2 05:53:01 GMT 1992",
			"user@example.org", time.Date(1992, 12, 2, 5, 53, 1, 0, time.UTC), false},
		{"unknown zone names MET DST before the year, local time",
			"From user@example.org Wed Dec  2 05:53:01 MET DST 1992",
			"user@example.org", time.Date(1992, 12, 2, 5, 53, 1, 0, time.Local), true},
		{"numeric zone before the year",
			"From user@example.org Wed Dec  2 05:53:01 -0700 1992",
			"user@example.org", time.Date(1992, 12, 2, 5, 53, 1, 0, zone(-7, 0)), false},
		{"numeric zone after the year",
			"From user@example.org Wed Dec  2 05:53:01 1992 +0530",
			"user@example.org", time.Date(1992, 12, 2, 5, 53, 1, 0, zone(5, 30)), false},
		{"RFC 5322 date (Exim)",
			"From user@example.org Sun, 11 Nov 2007 06:58:35 +0200",
			"user@example.org", time.Date(2007, 11, 11, 6, 58, 35, 0, zone(2, 0)), false},
		{"UUCP remote from, local time",
			"From user Wed Dec  2 05:53:01 1992 remote from host",
			"user", time.Date(1992, 12, 2, 5, 53, 1, 0, time.Local), true},
		{"two-digit year, local time",
			"From user Wed Dec  2 05:53:01 92",
			"user", time.Date(1992, 12, 2, 5, 53, 1, 0, time.Local), true},
		{"empty sender (a bounce), local time",
			"From  Wed Dec  2 05:53:01 1992",
			"", time.Date(1992, 12, 2, 5, 53, 1, 0, time.Local), true},
		{"null sender <>, local time",
			"From <> Wed Dec  2 05:53:01 1992",
			"", time.Date(1992, 12, 2, 5, 53, 1, 0, time.Local), true},
		{"MAILER-DAEMON, local time",
			"From MAILER-DAEMON Fri Jul  8 12:08:34 2011",
			"MAILER-DAEMON", time.Date(2011, 7, 8, 12, 8, 34, 0, time.Local), true},
		{"quoted local part with spaces, local time",
			`From "john doe"@example.org Wed Dec  2 05:53:01 1992`,
			`"john doe"@example.org`, time.Date(1992, 12, 2, 5, 53, 1, 0, time.Local), true},
		{"lower-case names, local time",
			"From user wed dec  2 05:53:01 1992",
			"user", time.Date(1992, 12, 2, 5, 53, 1, 0, time.Local), true},
		{"leap day, local time",
			"From user Thu Feb 29 00:00:00 2024",
			"user", time.Date(2024, 2, 29, 0, 0, 0, 0, time.Local), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender, date, ok := ParseFromLine([]byte(tt.line))
			if !ok {
				t.Fatalf("ParseFromLine(%q) rejected it", tt.line)
			}
			if sender != tt.sender {
				t.Errorf("sender = %q, want %q", sender, tt.sender)
			}
			if !date.Equal(tt.date) {
				t.Errorf("date = %v, want %v", date, tt.date)
			}
			if tt.local && date.Location() != time.Local {
				t.Errorf("date location = %v, want time.Local", date.Location())
			}
			if !tt.local && date.Location() == time.Local {
				t.Errorf("date location is time.Local, want the line's zone")
			}
		})
	}
}

// TestParseFromLineLocalIsReallyLocal pins the documented rule with a
// zone far from UTC: a zone-less From_ date is wall-clock time of the
// host the scan runs on.
func TestParseFromLineLocalIsReallyLocal(t *testing.T) {
	saved := time.Local
	t.Cleanup(func() { time.Local = saved })
	time.Local = time.FixedZone("TEST", 9*3600)
	_, d, ok := ParseFromLine([]byte("From a Wed Dec  2 05:53:01 1992"))
	if !ok {
		t.Fatal("rejected")
	}
	if want := time.Date(1992, 12, 1, 20, 53, 1, 0, time.UTC); !d.Equal(want) {
		t.Errorf("date = %v, want %v (05:53:01 at UTC+9)", d.UTC(), want)
	}
}

// TestParseFromLineLongZoneName: real mboxes carry zone names longer than
// five letters after the year (mail-mbox-messageparser's mailarc-3.txt
// has "WETDST"); Dovecot ignores whatever follows the date.
func TestParseFromLineLongZoneName(t *testing.T) {
	for _, line := range []string{
		"From goldt@et.byu.edu  Tue Jul  7 20:33:03 1998 WETDST",
		"From user Tue Jul  7 20:33:03 WETDST 1998",
	} {
		if _, _, ok := ParseFromLine([]byte(line)); !ok {
			t.Fatalf("%q rejected (zone names over 5 letters), want accepted as local time", line)
		}
	}
}

func TestParseFromLineRejects(t *testing.T) {
	tests := []struct{ name, line string }{
		{"body text", "From here to eternity"},
		{"body text with a weekday", "From Mon to Fri we are closed"},
		{"body text with weekday and month", "From Mon Dec 2 on, the office is closed"},
		{"header field", "From: user@example.org"},
		{"header field with date", "From: user Wed Dec  2 05:53:01 1992"},
		{"prefix alone", "From "},
		{"no space", "From"},
		{"empty", ""},
		{"escaped", ">From user Wed Dec  2 05:53:01 1992"},
		{"leading space", " From user Wed Dec  2 05:53:01 1992"},
		{"sender only", "From user@example.org"},
		{"no date fields", "From user@example.org Wed"},
		{"Feb 31", "From user Wed Feb 31 05:53:01 1992"},
		{"Feb 29 of a common year", "From user Thu Feb 29 05:53:01 2023"},
		{"day 0", "From user Wed Dec  0 05:53:01 1992"},
		{"day 32", "From user Wed Dec 32 05:53:01 1992"},
		{"hour 25", "From user Wed Dec  2 25:00:00 1992"},
		{"minute 60", "From user Wed Dec  2 05:60:00 1992"},
		{"second 61", "From user Wed Dec  2 05:53:61 1992"},
		{"bad clock", "From user Wed Dec  2 05-53-01 1992"},
		{"clock with four parts", "From user Wed Dec  2 05:53:01:00 1992"},
		{"no clock", "From user Wed Dec  2 1992"},
		{"no year", "From user Wed Dec  2 05:53:01"},
		{"bad month", "From user Wed Dex  2 05:53:01 1992"},
		{"garbage after the year", "From user Wed Dec  2 05:53:01 1992 garbage"},
		{"number after the year", "From user Wed Dec  2 05:53:01 1992 12345"},
		{"two years", "From user Wed Dec  2 05:53:01 1992 1993"},
		{"three zones", "From user Wed Dec  2 05:53:01 -0700 1992 +0100 +0200"},
		{"remote without from", "From user Wed Dec  2 05:53:01 1992 remote"},
		{"remote from without host", "From user Wed Dec  2 05:53:01 1992 remote from"},
		{"punctuation after the year", "From user Wed Dec  2 05:53:01 1992 !!"},
		{"weekday as the last field", "From user Wed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, d, ok := ParseFromLine([]byte(tt.line)); ok {
				t.Errorf("ParseFromLine(%q) = %q, %v, true; want rejected", tt.line, s, d)
			}
		})
	}
}

func FuzzParseFromLine(f *testing.F) {
	for _, s := range []string{
		"From user@example.org Thu Nov 26 21:42:18 2026",
		"From user@example.org  Thu Nov  6 21:42:18 2026",
		"From user@example.org Wed Dec  2 05:53 PST 1992",
		"From user@example.org Wed Dec  2 05:53:01 1992 -0700",
		"From user@example.org Sun, 11 Nov 2007 06:58:35 +0200",
		"From user Wed Dec  2 05:53:01 1992 remote from host",
		"From  Wed Dec  2 05:53:01 1992",
		`From "john doe"@example.org Wed Dec  2 05:53:01 1992`,
		"From here to eternity",
		"From: header",
		"From ",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		sender, date, ok := ParseFromLine(line)
		if !ok {
			if sender != "" || !date.IsZero() {
				t.Fatalf("rejected %q but returned %q, %v", line, sender, date)
			}
			return
		}
		if !strings.HasPrefix(string(line), "From ") {
			t.Fatalf("accepted %q, which does not start with \"From \"", line)
		}
		if date.IsZero() {
			t.Fatalf("accepted %q with a zero date", line)
		}
		if len(sender) > len(line) {
			t.Fatalf("sender %q longer than the line %q", sender, line)
		}
		if sender == "<>" {
			t.Fatalf("sender <> must read as empty")
		}
	})
}
