// Package config reads mailkeep's configuration file, a TOML file (by
// default /etc/mailkeep/mailkeep.toml) that sets up the nightly job: the
// roots to scan, the limits, the retention policies per folder with their
// per-user and per-domain overrides, notification and state.
//
// # Errors
//
// [Load] and [Parse] return an [*Error] naming the file, the line and the
// key: a syntax error, a value of the wrong type, a value that does not
// parse (a size, an age, an action), a key mailkeep does not know (a typo
// must not silently turn a policy off), and settings that contradict each
// other. Nothing should run on a bad configuration.
//
// The keys are listed in the CLI contract and in the commented example
// packaging/mailkeep.example.toml. Command-line flags override the file;
// that is the command's business, not this package's.
package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/dustin/go-humanize"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/retention"
	"github.com/mailkeep/mailkeep/retention/mboxlock"
)

// DefaultPath is where the configuration is read from when no --config is
// given.
const DefaultPath = "/etc/mailkeep/mailkeep.toml"

// Defaults of the keys that are not in the scanner's or the lock's
// defaults.
const (
	DefaultStateDir    = "/var/lib/mailkeep"
	DefaultSendmail    = "/usr/sbin/sendmail"
	DefaultTrendPoints = 30
)

var (
	// DefaultHistoryKeep is how long history rows are kept.
	DefaultHistoryKeep = retention.Age{N: 400, Unit: retention.Days}
	// DefaultTrendHorizon is how far ahead a projected full store warns.
	DefaultTrendHorizon = retention.Age{N: 30, Unit: retention.Days}
	// DefaultNotice is the notice period when notification is on and no
	// notice is given.
	DefaultNotice = retention.Age{N: 7, Unit: retention.Days}
)

// Config is a checked configuration. The zero value is not useful: start
// from [Default] or [Load].
type Config struct {
	// File is the file the configuration was read from; "" for defaults.
	File string

	// Roots are scanned when no PATH is given. They may hold globs
	// (/home/*/Maildir), expanded at run time.
	Roots []string
	// PathPattern derives user and domain from a mailbox's path; nil
	// when not set (the file's owner is the user, with no domain).
	PathPattern *retention.PathPattern

	Limit      int64   // bytes a store may reach
	Warn, Crit float64 // percent of Limit
	Large      int64   // a message bigger than this is large
	Jobs       int     // mailboxes scanned at once; 0: number of CPUs

	// StateDir holds the history database, the run lock and the notice
	// state.
	StateDir string
	// MetricsTextfile is the node_exporter textfile to write; "" for none.
	MetricsTextfile string
	// ArchiveDir receives archived messages (action "archive").
	ArchiveDir string

	// HistoryKeep is how long history and notice rows are kept.
	HistoryKeep retention.Age
	// TrendHorizon: a store projected to be full within it is warned about.
	TrendHorizon retention.Age
	// TrendPoints is how many recent runs the growth fit uses.
	TrendPoints int

	Lock   mboxlock.Options
	Notify Notify

	// Policies are the retention rules, first match wins. A mailbox no
	// rule matches is left alone.
	Policies retention.PolicySet
}

// Notify configures the notices mailed to mailbox owners.
type Notify struct {
	Enabled bool
	// Sendmail is the sendmail-compatible program (run as sendmail -t -oi
	// -f From); SMTP, when set, is HOST:PORT used instead.
	Sendmail string
	SMTP     string
	SMTPUser string
	// To is a text/template over the owner's fields ({{.User}},
	// {{.Domain}}) giving the address; From is the sender and the envelope
	// sender (bounces go there).
	To   string
	From string
	Cc   []string
	Lang string
	// Template is a file replacing the built-in notice template.
	Template string
	// Rate paces sending, e.g. "2/s" or "120/m"; "" for the default. The
	// command that sends checks it.
	Rate string
	// Notice is how long before removal the owner must have been told;
	// zero removes without notice.
	Notice retention.Age
}

// Default returns the configuration used when there is no file.
func Default() *Config {
	return &Config{
		Roots:        []string{"/var/mail"},
		Limit:        mboxscan.DefaultLimit,
		Warn:         mboxscan.DefaultWarn,
		Crit:         mboxscan.DefaultCrit,
		Large:        mboxscan.DefaultLarge,
		StateDir:     DefaultStateDir,
		HistoryKeep:  DefaultHistoryKeep,
		TrendHorizon: DefaultTrendHorizon,
		TrendPoints:  DefaultTrendPoints,
		Lock:         mboxlock.Options{Kinds: slices.Clone(mboxlock.DefaultKinds)},
		Notify:       Notify{Sendmail: DefaultSendmail, Lang: "en"},
	}
}

// Error is a problem in a configuration file: its file, the line (0 when
// unknown) and the key ("" for a syntax error outside any key).
type Error struct {
	File string
	Line int
	Key  string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config ")
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	if e.Key != "" {
		b.WriteString(": key " + e.Key)
	}
	b.WriteString(": " + e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads and checks the configuration file at path. A missing file is
// an error wrapping fs.ErrNotExist; the caller decides whether the
// default path may be absent.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// text is a TOML value kept as text for parsing after decoding, so that
// every value error gets the same file:line: key form. Numbers are kept
// as their decimal text: limit = 2147483648 is a size too.
type text struct {
	s   string
	set bool
}

func (t *text) UnmarshalText(b []byte) error {
	t.s, t.set = string(b), true
	return nil
}

type rawConfig struct {
	Roots           []string    `toml:"roots"`
	PathPattern     text        `toml:"path_pattern"`
	Limit           text        `toml:"limit"`
	Warn            *float64    `toml:"warn"`
	Crit            *float64    `toml:"crit"`
	Large           text        `toml:"large"`
	Jobs            *int        `toml:"jobs"`
	StateDir        text        `toml:"state_dir"`
	MetricsTextfile text        `toml:"metrics_textfile"`
	ArchiveDir      text        `toml:"archive_dir"`
	HistoryKeep     text        `toml:"history_keep"`
	TrendHorizon    text        `toml:"trend_horizon"`
	TrendPoints     *int        `toml:"trend_points"`
	Lock            rawLock     `toml:"lock"`
	Notify          rawNotify   `toml:"notify"`
	Policy          []rawPolicy `toml:"policy"`
}

type rawLock struct {
	Kinds   []string `toml:"kinds"`
	Timeout text     `toml:"timeout"`
}

type rawNotify struct {
	Enabled  bool     `toml:"enabled"`
	Sendmail text     `toml:"sendmail"`
	SMTP     text     `toml:"smtp"`
	SMTPUser text     `toml:"smtp_user"`
	To       text     `toml:"to"`
	From     text     `toml:"from"`
	Cc       []string `toml:"cc"`
	Lang     text     `toml:"lang"`
	Template text     `toml:"template"`
	Rate     text     `toml:"rate"`
	Notice   text     `toml:"notice"`
}

type rawPolicy struct {
	Folders        []string `toml:"folders"`
	Users          []string `toml:"users"`
	Domains        []string `toml:"domains"`
	OlderThan      text     `toml:"older_than"`
	Before         text     `toml:"before"`
	Date           text     `toml:"date"`
	LargerThan     text     `toml:"larger_than"`
	IncludeFlagged bool     `toml:"include_flagged"`
	KeepUnread     bool     `toml:"keep_unread"`
	Action         text     `toml:"action"`
}

// Parse checks the configuration in data, read from the file name (used
// in errors and to resolve nothing else).
func Parse(name string, data []byte) (*Config, error) {
	var raw rawConfig
	md, err := toml.NewDecoder(strings.NewReader(string(data))).Decode(&raw)
	loc := locate(data)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			key := pe.LastKey
			line := pe.Position.Line
			return nil, &Error{File: name, Line: line, Key: key, Err: errors.New(pe.Message)}
		}
		// A type mismatch: the library puts the line and the key in its
		// message only.
		if m := typeErrorRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{File: name, Line: line, Key: m[2], Err: errors.New(m[3])}
		}
		return nil, &Error{File: name, Err: err}
	}
	if und := md.Undecoded(); len(und) > 0 {
		var errs []error
		for _, k := range und {
			// A whole unknown table is reported once, not each of its keys.
			if len(k) > 1 && slices.ContainsFunc(und, func(p toml.Key) bool { return p.String() == k[:len(k)-1].String() }) {
				continue
			}
			errs = append(errs, &Error{File: name, Line: loc.line(k), Key: k.String(), Err: errors.New("unknown key")})
		}
		return nil, errors.Join(errs...)
	}
	c := &checker{name: name, loc: loc, cfg: Default()}
	c.cfg.File = name
	c.apply(&raw)
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return c.cfg, nil
}

// typeErrorRE matches the TOML library's type mismatch messages.
var typeErrorRE = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)

// checker turns the raw values into a Config, collecting errors.
type checker struct {
	name string
	loc  *locator
	cfg  *Config
	errs []error
}

// fail records an error at key, a dotted path; a policy's keys are given
// as "policy.N.key" with N from 1 and reported as "policy.key" with the
// line of that policy's key.
func (c *checker) fail(key string, err error) {
	c.errs = append(c.errs, &Error{File: c.name, Line: c.loc.lineOf(key), Key: displayKey(key), Err: err})
}

func (c *checker) apply(r *rawConfig) {
	cfg := c.cfg
	if r.Roots != nil {
		if len(r.Roots) == 0 {
			c.fail("roots", errors.New("empty: give at least one root, e.g. [\"/var/mail\"]"))
		}
		for _, root := range r.Roots {
			if strings.TrimSpace(root) == "" {
				c.fail("roots", errors.New("empty root"))
				continue
			}
			if _, err := filepath.Match(root, ""); err != nil {
				c.fail("roots", fmt.Errorf("bad glob %q: %w", root, err))
			}
		}
		cfg.Roots = r.Roots
	}
	if r.PathPattern.set && r.PathPattern.s != "" {
		p, err := retention.ParsePathPattern(r.PathPattern.s)
		if err != nil {
			c.fail("path_pattern", err)
		}
		cfg.PathPattern = p
	}
	c.size("limit", r.Limit, &cfg.Limit)
	c.size("large", r.Large, &cfg.Large)
	if r.Warn != nil {
		cfg.Warn = *r.Warn
		c.percent("warn", cfg.Warn)
	}
	if r.Crit != nil {
		cfg.Crit = *r.Crit
		c.percent("crit", cfg.Crit)
	}
	if cfg.Warn >= cfg.Crit {
		c.fail("warn", fmt.Errorf("warn %g is not below crit %g", cfg.Warn, cfg.Crit))
	}
	if r.Jobs != nil {
		if *r.Jobs < 0 {
			c.fail("jobs", fmt.Errorf("%d: must be 0 (one per CPU) or more", *r.Jobs))
		}
		cfg.Jobs = *r.Jobs
	}
	if r.StateDir.set {
		if r.StateDir.s == "" {
			c.fail("state_dir", errors.New("empty: the history and the run lock need a directory"))
		}
		cfg.StateDir = r.StateDir.s
	}
	cfg.MetricsTextfile = r.MetricsTextfile.s
	cfg.ArchiveDir = r.ArchiveDir.s
	c.age("history_keep", r.HistoryKeep, &cfg.HistoryKeep)
	c.age("trend_horizon", r.TrendHorizon, &cfg.TrendHorizon)
	if r.TrendPoints != nil {
		if *r.TrendPoints < 2 {
			c.fail("trend_points", fmt.Errorf("%d: a trend needs at least 2 points", *r.TrendPoints))
		}
		cfg.TrendPoints = *r.TrendPoints
	}

	if r.Lock.Kinds != nil {
		kinds, err := mboxlock.ParseKinds(r.Lock.Kinds)
		if err != nil {
			c.fail("lock.kinds", err)
		}
		cfg.Lock.Kinds = kinds
	}
	if r.Lock.Timeout.set {
		d, err := time.ParseDuration(r.Lock.Timeout.s)
		if err != nil || d <= 0 {
			c.fail("lock.timeout", fmt.Errorf("%q: want a positive duration such as 30s or 2m", r.Lock.Timeout.s))
		}
		cfg.Lock.Timeout = d
	}

	c.notify(&r.Notify)

	for i := range r.Policy {
		c.policy(i+1, &r.Policy[i])
	}
}

func (c *checker) notify(r *rawNotify) {
	n := &c.cfg.Notify
	n.Enabled = r.Enabled
	if r.Sendmail.set {
		n.Sendmail = r.Sendmail.s
	}
	n.SMTP = r.SMTP.s
	n.SMTPUser = r.SMTPUser.s
	if r.SMTP.set && r.Sendmail.set {
		c.fail("notify.smtp", errors.New("both sendmail and smtp are set: give one"))
	}
	n.To = r.To.s
	if n.To != "" {
		if _, err := template.New("to").Option("missingkey=error").Parse(n.To); err != nil {
			c.fail("notify.to", err)
		}
	} else if n.Enabled {
		c.fail("notify.to", errors.New("missing: notices need an address template such as \"{{.User}}@example.org\""))
	}
	n.From = r.From.s
	n.Cc = r.Cc
	if r.Lang.set {
		n.Lang = r.Lang.s
	}
	n.Template = r.Template.s
	n.Rate = r.Rate.s
	switch {
	case r.Notice.set && (r.Notice.s == "0" || r.Notice.s == ""):
		n.Notice = retention.Age{}
	case r.Notice.set:
		c.age("notify.notice", r.Notice, &n.Notice)
		if !n.Enabled {
			// A notice that is never sent would block every removal
			// forever, or be ignored: neither is what was meant.
			c.fail("notify.notice", errors.New("set, but notify.enabled is false: notices cannot be sent (set notice = \"0\" to remove without notice)"))
		}
	case n.Enabled:
		n.Notice = DefaultNotice
	}
}

func (c *checker) policy(i int, r *rawPolicy) {
	pre := "policy." + strconv.Itoa(i) + "."
	rule := retention.Rule{
		Name:    fmt.Sprintf("policy %d", i),
		Folders: r.Folders,
		Users:   r.Users,
		Domains: r.Domains,
	}
	if r.Folders == nil {
		c.fail("policy."+strconv.Itoa(i), errors.New("no folders: give the folder names it applies to, [\"*\"] for all"))
	}
	for _, pat := range r.Folders {
		if _, err := filepath.Match(pat, ""); err != nil {
			c.fail(pre+"folders", fmt.Errorf("bad pattern %q: %w", pat, err))
		}
	}
	p := &rule.Policy
	c.age(pre+"older_than", r.OlderThan, &p.OlderThan)
	if r.Before.set {
		t, err := parseDate(r.Before.s)
		if err != nil {
			c.fail(pre+"before", err)
		}
		p.Before = t
	}
	switch {
	case !r.OlderThan.set && !r.Before.set:
		c.fail("policy."+strconv.Itoa(i), errors.New("no cutoff: set older_than (e.g. \"30d\") or before (a date)"))
	case r.OlderThan.set && r.Before.set:
		c.fail(pre+"before", errors.New("both older_than and before are set: give one"))
	}
	if r.Date.set {
		switch k := mboxscan.DateKind(r.Date.s); k {
		case mboxscan.DateReceived, mboxscan.DateSaved, mboxscan.DateSent:
			p.DateKind = k
		default:
			c.fail(pre+"date", fmt.Errorf("%q: want received, saved or sent", r.Date.s))
		}
	}
	c.size(pre+"larger_than", r.LargerThan, &p.LargerThan)
	p.IncludeFlagged = r.IncludeFlagged
	p.KeepUnread = r.KeepUnread
	a, err := retention.ParseAction(r.Action.s)
	if err != nil {
		c.fail(pre+"action", err)
	}
	rule.Action = a
	if a == retention.ActionArchive && c.cfg.ArchiveDir == "" {
		c.fail(pre+"action", errors.New("archive needs archive_dir"))
	}
	c.cfg.Policies = append(c.cfg.Policies, rule)
}

func (c *checker) size(key string, t text, dst *int64) {
	if !t.set {
		return
	}
	n, err := humanize.ParseBytes(t.s)
	switch {
	case err != nil:
		c.fail(key, fmt.Errorf("%q is not a size (examples: 2GiB, 1.5GB, 10MB, 500000)", t.s))
	case n == 0 || n > math.MaxInt64:
		c.fail(key, fmt.Errorf("%q: must be above 0 and below 8 EiB", t.s))
	default:
		*dst = int64(n)
	}
}

func (c *checker) percent(key string, v float64) {
	if !(v > 0 && v <= 100) {
		c.fail(key, fmt.Errorf("%g: not a percentage above 0 and at most 100", v))
	}
}

func (c *checker) age(key string, t text, dst *retention.Age) {
	if !t.set {
		return
	}
	a, err := retention.ParseAge(t.s)
	if err != nil {
		c.fail(key, err)
		return
	}
	*dst = a
}

// parseDate reads a date (2006-01-02, local midnight) or an RFC 3339 time.
func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation(time.DateOnly, s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want a date such as 2024-01-31 or an RFC 3339 time", s)
	}
	return t, nil
}

// displayKey drops the policy index from a key: "policy.2.action" →
// "policy.action"; the line tells which policy.
func displayKey(key string) string {
	parts := strings.Split(key, ".")
	out := parts[:0]
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err == nil {
			continue
		}
		out = append(out, p)
	}
	return strings.Join(out, ".")
}
