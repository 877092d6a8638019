package main

import (
	"testing"
)

func TestSizeValue(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		str  string
	}{
		{"2GiB", 2 << 30, "2.0 GiB"},
		{"1.5GB", 1_500_000_000, "1.5 GB"},
		{"10MB", 10_000_000, "10 MB"},
		{"500000", 500_000, "500 kB"},
		{"2G", 2_000_000_000, "2.0 GB"},
		{"1 KiB", 1024, "1.0 KiB"},
		{"123456789", 123456789, "123456789"},
		{"0", 0, "0 B"},
	}
	for _, tt := range tests {
		var v sizeValue
		if err := v.Set(tt.in); err != nil {
			t.Errorf("Set(%q): %v", tt.in, err)
			continue
		}
		if int64(v) != tt.want {
			t.Errorf("Set(%q) = %d, want %d", tt.in, v, tt.want)
		}
		if got := v.String(); got != tt.str {
			t.Errorf("Set(%q).String() = %q, want %q", tt.in, got, tt.str)
		}
		// What String prints, Set reads back to the same value.
		var back sizeValue
		if err := back.Set(v.String()); err != nil || back != v {
			t.Errorf("round trip of %q: %v, %d", v.String(), err, back)
		}
	}
	for _, bad := range []string{"", "2XB", "-5", "GiB", "99999999EiB", "1e3"} {
		var v sizeValue
		if err := v.Set(bad); err == nil {
			t.Errorf("Set(%q) = %d, want an error", bad, v)
		}
	}
}

func TestLimitOptionsValidate(t *testing.T) {
	tests := []struct {
		limit      sizeValue
		warn, crit float64
		ok         bool
	}{
		{2 << 30, 80, 95, true},
		{2 << 30, 0.5, 100, true},
		{2 << 30, 95, 80, false},
		{2 << 30, 90, 90, false},
		{2 << 30, 0, 95, false},
		{2 << 30, -1, 95, false},
		{2 << 30, 80, 101, false},
		{0, 80, 95, false},
	}
	for _, tt := range tests {
		o := LimitOptions{Limit: tt.limit, Warn: tt.warn, Crit: tt.crit}
		err := o.validate()
		if (err == nil) != tt.ok {
			t.Errorf("%+v: validate() = %v, want ok=%v", o, err, tt.ok)
		}
		if err != nil {
			if ue, ok := err.(*usageError); !ok || ue.hint == "" {
				t.Errorf("%+v: %v is not a usage error with a hint", o, err)
			}
		}
	}
}
