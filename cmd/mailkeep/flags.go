package main

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/report"
)

// sizeHelp is appended to the help of every SIZE flag: humanize reads "GB"
// as 10^9, which surprises people who mean 2^30.
const sizeHelp = " (GB/MB are 10^9/10^6 bytes, GiB/MiB 2^30/2^20)"

// sizeValue is a byte count flag that takes humanize forms: 2GiB, 1.5GB,
// 10MB, 500000.
type sizeValue int64

var _ pflag.Value = (*sizeValue)(nil)

func (v *sizeValue) Set(s string) error {
	n, err := humanize.ParseBytes(s)
	if err != nil {
		return fmt.Errorf("not a size (examples: 2GiB, 1.5GB, 10MB, 500000): %w", err)
	}
	if n > math.MaxInt64 {
		return fmt.Errorf("size %s is too large", s)
	}
	*v = sizeValue(n)
	return nil
}

// String prints the size in binary units when that is exact, so that
// "2GiB" shows as "2.0 GiB"; a decimal default like 10MB would become a
// misleading "9.5 MiB", so it is printed in decimal units, and a size that
// neither prints exactly stays a plain byte count. What String prints,
// Set reads back to the same value.
func (v *sizeValue) String() string {
	n := uint64(*v)
	for _, s := range []string{humanize.IBytes(n), humanize.Bytes(n)} {
		if back, err := humanize.ParseBytes(s); err == nil && back == n {
			return s
		}
	}
	return fmt.Sprint(n)
}

func (v *sizeValue) Type() string { return "SIZE" }

// formatValue is the --format flag; it accepts only the listed formats.
type formatValue struct {
	f       *report.Format
	allowed []report.Format
}

func newFormatValue(f *report.Format, def report.Format, allowed ...report.Format) *formatValue {
	*f = def
	return &formatValue{f: f, allowed: allowed}
}

func (v *formatValue) Set(s string) error {
	if !slices.Contains(v.allowed, report.Format(s)) {
		return fmt.Errorf("must be one of %s", v.names())
	}
	*v.f = report.Format(s)
	return nil
}

func (v *formatValue) names() string {
	var names []string
	for _, f := range v.allowed {
		names = append(names, string(f))
	}
	return strings.Join(names, "|")
}

func (v *formatValue) String() string { return string(*v.f) }
func (v *formatValue) Type() string   { return "FORMAT" }

// LimitOptions are the limit and thresholds that scan, check and the other
// commands that assess mailboxes share.
type LimitOptions struct {
	Limit sizeValue
	Warn  float64
	Crit  float64
}

// AddFlags adds --limit, --warn and --crit with the contract's defaults.
func (o *LimitOptions) AddFlags(f *pflag.FlagSet) {
	o.Limit = 2 << 30
	f.Var(&o.Limit, "limit", "the size a mailbox may reach"+sizeHelp)
	f.Float64Var(&o.Warn, "warn", 80, "warn at `PCT` percent of the limit")
	f.Float64Var(&o.Crit, "crit", 95, "critical at `PCT` percent of the limit")
}

// validate rejects thresholds that cannot be meant, before anything is read.
func (o *LimitOptions) validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"warn", o.Warn}, {"crit", o.Crit}} {
		// Written so that NaN fails too.
		if !(p.v > 0 && p.v <= 100) {
			return usageErrorf("--%s %g: not a percentage above 0 and at most 100", p.name, p.v).
				withHint("--%s is a percentage of --limit, e.g. --%s %g", p.name, p.name, map[string]float64{"warn": 80, "crit": 95}[p.name])
		}
	}
	if o.Warn >= o.Crit {
		return usageErrorf("--warn %g is not below --crit %g", o.Warn, o.Crit).
			withHint("the defaults are --warn 80 --crit 95")
	}
	if o.Limit <= 0 {
		return usageErrorf("--limit must be above 0").withHint("give a size such as --limit 2GiB")
	}
	return nil
}

// apply copies the options into the scanner's.
func (o *LimitOptions) apply(opts *mboxscan.Options) {
	opts.Limit = int64(o.Limit)
	opts.Warn = o.Warn
	opts.Crit = o.Crit
}
