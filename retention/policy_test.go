package retention

import (
	"errors"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
)

func TestParseAge(t *testing.T) {
	tests := []struct {
		in      string
		want    Age
		wantErr bool
	}{
		{"90d", Age{90, Days}, false},
		{"12w", Age{12, Weeks}, false},
		{"6mo", Age{6, Months}, false},
		{"1y", Age{1, Years}, false},
		{"36h", Age{36, Hours}, false},
		{" 2Y ", Age{2, Years}, false},
		{"6m", Age{}, true}, // ambiguous
		{"0d", Age{}, true},
		{"-1d", Age{}, true},
		{"d", Age{}, true},
		{"10", Age{}, true},
		{"10s", Age{}, true},
		{"", Age{}, true},
		{"99999999999999999999d", Age{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAge(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseAge(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ParseAge(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if err == nil {
				if back, _ := ParseAge(got.String()); back != got {
					t.Errorf("round trip %q -> %q -> %v", tt.in, got.String(), back)
				}
			}
		})
	}
}

func TestAgeBefore(t *testing.T) {
	now := time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		age  string
		want time.Time
	}{
		{"36h", time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC)},
		{"90d", time.Date(2025, 12, 31, 12, 0, 0, 0, time.UTC)},
		{"2w", time.Date(2026, 3, 17, 12, 0, 0, 0, time.UTC)},
		{"1mo", time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC)}, // Feb 31 normalised
		{"6mo", time.Date(2025, 10, 1, 12, 0, 0, 0, time.UTC)},
		{"1y", time.Date(2025, 3, 31, 12, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		a, err := ParseAge(tt.age)
		if err != nil {
			t.Fatal(err)
		}
		if got := (Policy{OlderThan: a}).Cutoff(now); !got.Equal(tt.want) {
			t.Errorf("%s before %v = %v, want %v", tt.age, now, got, tt.want)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := (Policy{}).Validate(); !errors.Is(err, ErrEmptyPolicy) {
		t.Errorf("empty policy: %v, want ErrEmptyPolicy", err)
	}
	if err := (Policy{LargerThan: 10}).Validate(); !errors.Is(err, ErrEmptyPolicy) {
		t.Errorf("size-only policy: %v, want ErrEmptyPolicy", err)
	}
	both := Policy{OlderThan: Age{1, Days}, Before: time.Now()}
	if err := both.Validate(); !errors.Is(err, ErrConflictingCutoff) {
		t.Errorf("both cutoffs: %v, want ErrConflictingCutoff", err)
	}
	if err := (Policy{OlderThan: Age{1, Days}, DateKind: "arrived"}).Validate(); err == nil {
		t.Error("unknown date kind accepted")
	}
	if err := (Policy{OlderThan: Age{1, Days}, DateKind: mboxscan.DateSent}).Validate(); err != nil {
		t.Error(err)
	}
	p := Policy{OlderThan: Age{90, Days}, LargerThan: 1000, KeepUnread: true}
	if got, want := p.String(), "received older than 90d, larger than 1000 bytes, flagged kept, unread kept"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	old := now.AddDate(-1, 0, 0)
	young := now.AddDate(0, 0, -1)
	future := now.AddDate(0, 0, 2)
	base := Policy{OlderThan: Age{30, Days}}
	mbox := func(received time.Time, status, xstatus string, size int64) *mboxscan.Message {
		return &mboxscan.Message{Received: received, Saved: received, Length: size,
			Header: mboxscan.Header{Status: status, XStatus: xstatus, Date: "Mon, 1 Jun 2020 10:00:00 +0000"}}
	}
	maildir := func(mtime, saved time.Time, flags string) *mboxscan.Message {
		return &mboxscan.Message{Path: "/m/cur/x", Received: mtime, Saved: saved, Flags: flags, Length: 100}
	}
	with := func(f func(*Policy)) Policy { p := base; f(&p); return p }
	tests := []struct {
		name   string
		m      *mboxscan.Message
		p      Policy
		remove bool
		why    KeepReason
	}{
		{"old read", mbox(old, "RO", "", 10), base, true, KeepNone},
		{"young", mbox(young, "RO", "", 10), base, false, KeepTooYoung},
		{"undated", mbox(time.Time{}, "RO", "", 10), base, false, KeepUndated},
		{"future", mbox(future, "RO", "", 10), base, false, KeepFuture},
		{"pseudo", &mboxscan.Message{Pseudo: true, Received: old}, base, false, KeepPseudo},
		{"flagged", mbox(old, "RO", "F", 10), base, false, KeepFlagged},
		{"flagged included", mbox(old, "RO", "F", 10), with(func(p *Policy) { p.IncludeFlagged = true }), true, KeepNone},
		{"unread kept", mbox(old, "O", "", 10), with(func(p *Policy) { p.KeepUnread = true }), false, KeepUnread},
		{"unread removed by default", mbox(old, "O", "", 10), base, true, KeepNone},
		{"too small", mbox(old, "RO", "", 10), with(func(p *Policy) { p.LargerThan = 10 }), false, KeepTooSmall},
		{"large enough", mbox(old, "RO", "", 11), with(func(p *Policy) { p.LargerThan = 10 }), true, KeepNone},
		{"sent date old", mbox(young, "RO", "", 10), with(func(p *Policy) { p.DateKind = mboxscan.DateSent }), true, KeepNone},
		{"sent date missing", &mboxscan.Message{Received: old}, with(func(p *Policy) { p.DateKind = mboxscan.DateSent }), false, KeepUndated},
		{"before date", mbox(old, "RO", "", 10), Policy{Before: old.Add(time.Second)}, true, KeepNone},
		{"at cutoff kept", mbox(old, "RO", "", 10), Policy{Before: old}, false, KeepTooYoung},
		{"maildir old seen", maildir(old, old, "S"), base, true, KeepNone},
		{"maildir flagged", maildir(old, old, "FS"), base, false, KeepFlagged},
		{"maildir unread", maildir(old, old, ""), with(func(p *Policy) { p.KeepUnread = true }), false, KeepUnread},
		{"maildir saved young", maildir(old, young, "S"), with(func(p *Policy) { p.DateKind = mboxscan.DateSaved }), false, KeepTooYoung},
		{"maildir received old, saved young", maildir(old, young, "S"), base, true, KeepNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remove, why := Decide(tt.m, tt.p, now)
			if remove != tt.remove || why != tt.why {
				t.Errorf("Decide = %v, %v; want %v, %v", remove, why, tt.remove, tt.why)
			}
		})
	}
}

// TestDecodeHeader: prune --list decodes subjects in any charset.
func TestListDecodesHeaders(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"=?UTF-8?B?w6lsw6h2ZQ==?=", "élève"},
		{"=?ISO-8859-1?Q?caf=E9?= au lait", "café au lait"},
		{"=?bogus", "=?bogus"},
		{"=?ISO-2022-JP?B?GyRCRnxLXDhsGyhC?=", "日本語"},
		{"=?windows-1252?Q?=80uro?=", "€uro"},
	}
	for _, tt := range tests {
		if got := mboxscan.DecodeHeader(tt.in); got != tt.want {
			t.Errorf("DecodeHeader(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestAgeBeforeHuge: an age too large for time arithmetic must not wrap
// around into a cutoff in the recent past or the future, which would
// remove every dated message; nothing is that old, so nothing goes.
func TestAgeBeforeHuge(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	floor := now.AddDate(-292, 0, 0)
	for _, s := range []string{"2562048h", "9000000000000000h", "100000000000000d",
		"10000000000000w", "1000000000000000mo", "100000000000000y", "300000000000y"} {
		a, err := ParseAge(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if c := a.Before(now); c.After(floor) {
			t.Errorf("%s before %v is %v, want no later than %v", s, now, c, floor)
		}
		m := &mboxscan.Message{Received: now.AddDate(0, 0, -1)}
		if remove, _ := Decide(m, Policy{OlderThan: a}, now); remove {
			t.Errorf("older than %s removes a message from yesterday", s)
		}
	}
}
