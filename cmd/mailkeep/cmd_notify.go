package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mailkeep/mailkeep/mboxscan"
	"github.com/mailkeep/mailkeep/report"
	"github.com/mailkeep/mailkeep/retention"
)

// NotifyOptions are the flags of notify.
type NotifyOptions struct {
	LimitOptions
	Jobs int

	// The selection, as prune takes it.
	SelectionOptions
	Now string

	All         bool
	Largest     int
	PathPattern string
	To          string
	Map         string
	Admin       string
	Cc          []string
	From        string
	Envelope    string
	Host        string
	Lang        string
	Template    string

	Sendmail    string
	SMTP        string
	SMTPUser    string
	SMTPCA      string
	Rate        string
	MaxFailures int
	DryRun      bool
	Out         string

	// StateDir holds the history of nightly runs, for the stores' trends;
	// "" means state_dir of the configuration.
	StateDir string
}

// AddFlags adds notify's flags to f.
func (o *NotifyOptions) AddFlags(f *pflag.FlagSet) {
	o.LimitOptions.AddFlags(f)
	f.IntVar(&o.Jobs, "jobs", 0, "scan `N` mailboxes at once (default: the number of CPUs)")

	o.SelectionOptions.AddFlags(f, "announce the removal of")
	f.StringVar(&o.Now, "now", "", "the current time, `RFC3339` (tests, replays)")

	f.BoolVar(&o.All, "all", false, "notify every owner, even one with nothing to hear")
	f.IntVar(&o.Largest, "largest", report.DefaultLargest, "list the owner's `N` largest messages (0: none)")
	f.StringVar(&o.PathPattern, "path-pattern", "", "take user and domain from paths, e.g. `/var/vmail/{domain}/{user}/Maildir`")
	f.StringVar(&o.To, "to", "", "address `TEMPLATE` of an owner, e.g. '{{.User}}@example.org' (fields User, UID, Domain)")
	f.StringVar(&o.Map, "map", "", "`FILE` of \"user address\" lines (tried before --to)")
	f.StringVar(&o.Admin, "admin", "", "the admin's `ADDRESS`: gets the notices of owners over their limit (default postmaster@HOST)")
	f.StringSliceVar(&o.Cc, "cc", nil, "copy every notice to these `ADDRESSES`")
	f.StringVar(&o.From, "from", "", "the From header (default: the admin address)")
	f.StringVar(&o.Envelope, "envelope", "", "the envelope sender, where bounces go (default: the From address)")
	f.StringVar(&o.Host, "host", "", "the host name notices name (default: this host's name)")
	f.StringVar(&o.Lang, "lang", "en", "language of the built-in template: "+strings.Join(report.NoticeLangs, ", "))
	f.StringVar(&o.Template, "template", "", "use the notice template in `FILE` instead of the built-in one")

	f.StringVar(&o.Sendmail, "sendmail", report.DefaultSendmail, "send with this sendmail-compatible `PATH` (run as PATH -t -oi -f ENVELOPE)")
	f.StringVar(&o.SMTP, "smtp", "", "send over SMTP to `HOST:PORT` instead (STARTTLS when offered)")
	f.StringVar(&o.SMTPUser, "smtp-user", "", "log in to the SMTP server as `USER` (AUTH PLAIN; password from $MAILKEEP_SMTP_PASSWORD)")
	f.StringVar(&o.SMTPCA, "smtp-ca", "", "trust the CA certificates in `FILE` (PEM) for STARTTLS, instead of the system's")
	f.StringVar(&o.Rate, "rate", report.DefaultRate.String(), "send at most this many notices per second, minute or hour (`N/s`, N/m, N/h)")
	f.IntVar(&o.MaxFailures, "max-failures", report.DefaultMaxConsecutiveFailures, "give up after `N` failed notices in a row")
	f.BoolVarP(&o.DryRun, "dry-run", "n", false, "send nothing: write the notices to stdout, as an mbox")
	f.StringVar(&o.Out, "out", "", "send nothing: write each notice to `DIR` as an .eml file")
	f.StringVar(&o.StateDir, "state-dir", "", "read the stores' growth trends from the history of nightly runs in `DIR` (default: state_dir of the configuration)")
}

// notifyPlan is what the validated flags amount to.
type notifyPlan struct {
	scan     mboxscan.Options
	now      time.Time
	policy   *report.NoticePolicy
	notice   report.NoticeOptions
	tmpl     *report.NoticeTemplate
	from     string
	envelope string
	sender   report.Sender // nil for a dry run
	deliver  report.DeliverOptions
	// history is the history database's path, for trends; trendPoints
	// the runs a trend is fitted over.
	history     string
	trendPoints int
}

func hostName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

// plan validates the flags; every mistake is a usage error, found before
// anything is read or sent.
func (o *NotifyOptions) plan(g globalOptions, changed func(string) bool) (*notifyPlan, error) {
	if err := o.LimitOptions.validate(); err != nil {
		return nil, err
	}
	if o.Jobs < 0 {
		return nil, usageErrorf("--jobs %d: must be at least 1", o.Jobs)
	}
	cfg, err := scanConfig(g)
	if err != nil {
		return nil, err
	}
	if o.StateDir != "" {
		cfg.StateDir = o.StateDir
	}
	p := &notifyPlan{now: g.clock(), history: filepath.Join(cfg.StateDir, historyFile), trendPoints: cfg.TrendPoints}
	if o.Now != "" {
		t, err := time.Parse(time.RFC3339, o.Now)
		if err != nil {
			return nil, usageErrorf("--now %q: %w", o.Now, err).withHint("use RFC 3339, e.g. 2026-01-02T15:04:05Z")
		}
		p.now = t
	}
	p.scan = mboxscan.Options{Jobs: o.Jobs}
	if p.scan.Jobs == 0 {
		p.scan.Jobs = runtime.NumCPU()
	}
	o.LimitOptions.apply(&p.scan)

	// The policy: optional for notify (without one, only full mailboxes
	// are reported), but the selection flags mean nothing without a cutoff.
	pol, set, err := o.SelectionOptions.policy()
	if err != nil {
		return nil, err
	}
	if set {
		now := p.now
		p.policy = &report.NoticePolicy{
			Description:  pol.String(),
			Cutoff:       pol.Cutoff(now),
			DateKind:     pol.DateKind,
			KeepsFlagged: !pol.IncludeFlagged,
			Decide: func(m *mboxscan.Message) (bool, bool) {
				remove, why := retention.Decide(m, pol, now)
				return remove, why == retention.KeepUndated
			},
		}
	} else {
		for _, name := range []string{"larger-than", "date", "include-flagged", "keep-unread"} {
			if changed(name) {
				return nil, usageErrorf("--%s needs a cutoff", name).withHint("add --older-than AGE or --before DATE")
			}
		}
	}

	host := o.Host
	if host == "" {
		host = hostName()
	}
	admin := o.Admin
	if admin == "" {
		admin = "postmaster@" + host
	}
	if err := checkFlagAddress("admin", admin); err != nil {
		return nil, err
	}
	for _, c := range o.Cc {
		if err := checkFlagAddress("cc", c); err != nil {
			return nil, err
		}
	}
	p.from = o.From
	if p.from == "" {
		p.from = admin
	}
	if err := checkFlagAddress("from", p.from); err != nil {
		return nil, err
	}
	p.envelope = o.Envelope
	if p.envelope == "" {
		a, _ := mail.ParseAddress(p.from)
		p.envelope = a.Address
	}
	if strings.ContainsAny(p.envelope, "<> \r\n") || !strings.Contains(p.envelope, "@") {
		return nil, usageErrorf("--envelope %q: want a bare address such as postmaster@example.org", p.envelope)
	}

	var books report.AddressBooks
	if o.Map != "" {
		m, err := report.ReadAddressMap(o.Map)
		if err != nil {
			return nil, usageErrorf("--map: %w", err)
		}
		books = append(books, m)
	}
	if o.To != "" {
		t, err := report.ParseToTemplate(o.To)
		if err != nil {
			return nil, usageErrorf("--to: %w", err).withHint("for example --to '{{.User}}@example.org'")
		}
		books = append(books, t)
	}
	if len(books) == 0 {
		return nil, usageErrorf("no way to address the owners").withHint("give --to '{{.User}}@example.org' or --map FILE")
	}
	var pattern *report.PathPattern
	if o.PathPattern != "" {
		pp, err := report.ParsePathPattern(o.PathPattern)
		if err != nil {
			return nil, usageErrorf("--path-pattern: %w", err).withHint("for example --path-pattern '/var/vmail/{domain}/{user}/Maildir'")
		}
		pattern = pp
	}
	largest := o.Largest
	if largest < 0 {
		return nil, usageErrorf("--largest %d: must be 0 or more", largest)
	}
	if largest == 0 {
		largest = -1 // none
	}
	p.notice = report.NoticeOptions{
		Policy: p.policy, All: o.All, Largest: largest, Addresses: books, PathPattern: pattern,
		Admin: admin, Cc: o.Cc, Host: host, Now: p.now,
	}

	if o.Template != "" {
		if changed("lang") {
			return nil, usageErrorf("--template and --lang both choose the template").withHint("give only one")
		}
		p.tmpl, err = report.ReadNoticeTemplate(o.Template)
	} else {
		p.tmpl, err = report.BuiltinNoticeTemplate(o.Lang)
	}
	if err != nil {
		return nil, usageErrorf("%w", err)
	}

	r, err := report.ParseRate(o.Rate)
	if err != nil {
		return nil, usageErrorf("--rate: %w", err)
	}
	if o.MaxFailures < 1 {
		return nil, usageErrorf("--max-failures %d: must be at least 1", o.MaxFailures)
	}
	p.deliver = report.DeliverOptions{Rate: r, MaxConsecutiveFailures: o.MaxFailures}

	if o.DryRun || o.Out != "" {
		if o.SMTP != "" || changed("sendmail") {
			return nil, usageErrorf("--dry-run and --out send nothing, --smtp and --sendmail send").withHint("leave one out")
		}
		return p, nil
	}
	if o.SMTP != "" {
		if changed("sendmail") {
			return nil, usageErrorf("--smtp and --sendmail both choose how to send").withHint("give only one")
		}
		if _, _, err := net.SplitHostPort(o.SMTP); err != nil {
			return nil, usageErrorf("--smtp %q: %w", o.SMTP, err).withHint("for example --smtp 127.0.0.1:25")
		}
		s := &report.SMTP{Addr: o.SMTP, User: o.SMTPUser, LocalName: host}
		if o.SMTPUser != "" {
			pw, ok := os.LookupEnv("MAILKEEP_SMTP_PASSWORD")
			if !ok {
				return nil, usageErrorf("--smtp-user needs the password in $MAILKEEP_SMTP_PASSWORD")
			}
			s.Password = pw
		}
		if o.SMTPCA != "" {
			pem, err := os.ReadFile(o.SMTPCA)
			if err != nil {
				return nil, usageErrorf("--smtp-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, usageErrorf("--smtp-ca %s: no PEM certificate in it", o.SMTPCA)
			}
			s.TLSConfig = &tls.Config{RootCAs: pool}
		}
		p.sender = s
		return p, nil
	}
	if o.SMTPUser != "" || o.SMTPCA != "" {
		return nil, usageErrorf("--smtp-user and --smtp-ca are for --smtp")
	}
	p.sender = &report.Sendmail{Path: o.Sendmail}
	return p, nil
}

func checkFlagAddress(name, a string) error {
	if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, "\r\n") {
		return usageErrorf("--%s %q: not a mail address", name, a).withHint("for example --%s postmaster@example.org", name)
	}
	return nil
}

func newNotifyCommand(g *globalOptions) *cobra.Command {
	var opts NotifyOptions
	cmd := &cobra.Command{
		Use:   "notify [PATH...]",
		Short: "Email each mailbox owner a report on their mailboxes",
		Long: `Notify scans the mailboxes under the PATHs (default /var/mail), groups them by
owner, and emails each owner with something to hear one notice about their
own mailboxes: a store at warn or crit level, or messages that the retention
policy (--older-than or --before, with prune's --larger-than, --date,
--include-flagged and --keep-unread) would remove. That is a dry run of
prune: notify never changes a mailbox. With --all, every owner is told.

A notice gives each store's size against its limit, each mailbox's messages
and what the policy removes from it (how many, how many bytes, from when to
when), the owner's largest messages (date, sender and subject, decoded from
any charset), and what the owner can do.

Owners and addresses. An owner is the user owning the mailbox's files, or,
with --path-pattern '/var/vmail/{domain}/{user}/Maildir', the user and domain
in its path. --to renders a template over the owner's fields User, UID and
Domain ('{{.User}}@{{.Domain}}'); --map FILE lists "user address" lines
(user@domain matches a domain's user; # starts a comment) and is tried first.

An owner whose store is at or over its limit cannot receive mail: the notice
would bounce or push the store further over. It goes to --admin instead
(default postmaster@HOST), saying whom it is for, and the summary says so.
--cc copies every notice to admins.

The message is MIME: text/plain in UTF-8, quoted-printable, an RFC 2047
Subject, Date, Message-ID, and "Auto-Submitted: auto-generated" so that
vacation responders stay quiet. The envelope sender (--envelope, default the
From address, itself default the admin) gets the bounces: never the owner,
so a failed notice cannot loop.

Sending. By default each notice is handed to --sendmail (run as
"sendmail -t -oi -f ENVELOPE"); --smtp HOST:PORT talks SMTP instead, with
STARTTLS whenever the server offers it (the certificate is verified; --smtp-ca
adds a private CA) and AUTH PLAIN as --smtp-user with the password from the
environment variable MAILKEEP_SMTP_PASSWORD (never sent in clear except to a
loopback address). Notices are paced (--rate, default 2/s) so that a
site-wide run does not flood the MTA. A failed notice does not stop the
others; --max-failures in a row (default 10) do: the mail system is down.

--dry-run writes the notices to stdout as an mbox instead, for review with
a mail reader; --out DIR writes each to DIR as USER.eml.

Templates. --lang chooses the built-in English (en) or Japanese (ja)
template; --template FILE uses a site's own text/template, which must define
"subject" and "body":

  {{define "subject"}}Your mailbox on {{.Host}}{{end}}
  {{define "body"}}Hello {{.User}}, you use {{size .Bytes}} ...{{end}}

The fields a template can use:
  .User .UID .Domain   the owner
  .Address             the owner's address
  .To                  where the notice goes (.Address, or the admin's)
  .Redirected          the store is over its limit: sent to the admin
  .Admin .Cc .Host .Now
  .Level               worst level of the owner's stores: ok, warn, crit
  .OverLimit           a store is at or over its limit
  .Stores              each: .Path .Bytes .LimitBytes .UsedRatio .Level
                       .OverLimit .Quota (limit is the maildirsize quota),
                       and its trend: .Growing (it grows toward its limit)
                       .GrowthBytesPerDay .FullInDays (whole days from
                       .Now) .FullAt (when it will be full at that rate)
  .Mailboxes           each: .Path .Name .Format .Folder .Store .Messages
                       .Bytes .Oldest .Newest .Remove .Error
  .Messages .Bytes     totals of the owner's mailboxes
  .HasPolicy .Policy   a policy was given; it in words
  .Cutoff .DateKind    messages dated (received, saved, sent) before go
  .KeepsFlagged        flagged messages are kept
  .Remove              what the policy removes: .Messages .Bytes .Oldest
                       .Newest .Undated (each mailbox has one too)
  .RemoveAfter         when it will be removed ("mailkeep run": the end of
                       the notice period; zero otherwise)
  .Largest             the largest messages: .Mailbox .Path .Date .From
                       .Subject .Bytes .Remove (the policy removes it)
Functions: size N (1.5 GiB), percent RATIO (87.5%), date T (2006-01-02),
datetime T, trunc N S, plural N ONE MANY, pad N S and rpad N S (align in N
columns, East Asian wide characters counting two).

Trends. When "mailkeep run" keeps a history (state_dir/history.db of the
configuration, or --state-dir DIR), each store in a notice says how fast it
grows and when it will be full at that rate; the history is only read.

On stderr, one line per failed notice and a summary.

EXIT STATUS
  0    every notice that was due was sent (or written)
  1    some notices failed, an owner had no address, a mailbox could not be
       read, or a PATH could not be scanned; the rest were sent
  2    usage error
  130  interrupted`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			changed := func(name string) bool { return cmd.Flags().Changed(name) }
			return runNotify(cmd.Context(), opts, *g, changed, cmd.OutOrStdout(), cmd.ErrOrStderr(), args)
		},
	}
	opts.AddFlags(cmd.Flags())
	return cmd
}

func runNotify(ctx context.Context, opts NotifyOptions, g globalOptions, changed func(string) bool, stdout, stderr io.Writer, args []string) error {
	p, err := opts.plan(g, changed)
	if err != nil {
		return err
	}
	if opts.Out != "" {
		if err := os.MkdirAll(opts.Out, 0o700); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	roots := args
	if len(roots) == 0 {
		roots = g.defaultRoots()
	}
	res, scanErr := scanRoots(ctx, g, stderr, roots, p.scan)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	if res == nil {
		return scanErr
	}
	var errs []error
	if scanErr != nil {
		errs = append(errs, scanErr)
	}
	// The stores' growth, when "mailkeep run" keeps a history here.
	p.notice.Trends = scanTrends(ctx, res, p.history, p.trendPoints, p.now)
	plan, err := report.PlanNotices(ctx, res, p.notice)
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	for _, pr := range plan.Problems {
		warnf(stderr, "%s", report.Printable(pr.Err.Error()))
		errs = append(errs, pr.Err)
	}

	var out []report.Outgoing
	redirected := 0
	for i, n := range plan.Notices {
		subject, body, err := p.tmpl.Render(n)
		if err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		var msg bytes.Buffer
		if err := report.WriteMessage(&msg, n, subject, body, report.MessageOptions{From: p.from, Date: p.now}); err != nil {
			warnf(stderr, "notice for %s: %s", report.Printable(n.User), report.Printable(err.Error()))
			errs = append(errs, err)
			continue
		}
		label := noticeLabel(n)
		if n.Redirected {
			redirected++
		}
		env := report.Envelope{From: p.envelope}
		for _, a := range append([]string{n.To}, n.Cc...) {
			if pa, err := mail.ParseAddress(a); err == nil {
				env.To = append(env.To, pa.Address)
			}
		}
		switch {
		case opts.Out != "":
			name := filepath.Join(opts.Out, fmt.Sprintf("%03d-%s.eml", i+1, fileSafe(n)))
			if err := os.WriteFile(name, msg.Bytes(), 0o600); err != nil {
				return fmt.Errorf("notify: %w", err)
			}
		case opts.DryRun:
			if err := writeMboxMessage(stdout, p.envelope, p.now, msg.Bytes()); err != nil {
				return fmt.Errorf("notify: write: %w", err)
			}
		default:
			out = append(out, report.Outgoing{Envelope: env, Msg: msg.Bytes(), Label: label})
		}
	}

	verb := "sent"
	var sum *report.DeliverySummary
	if p.sender != nil {
		d := p.deliver
		d.OnResult = func(r report.DeliveryResult) {
			if r.Err != nil {
				warnf(stderr, "notice for %s failed: %s", report.Printable(r.Label), report.Printable(r.Err.Error()))
			}
		}
		var derr error
		sum, derr = report.Deliver(ctx, p.sender, out, d)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
		if sum.Stopped {
			warnf(stderr, "gave up after %d failed notices in a row; %d not attempted", opts.MaxFailures, sum.NotAttempted)
		}
		if derr != nil {
			errs = append(errs, fmt.Errorf("%d of %d notices failed", sum.Failed+sum.NotAttempted, len(out)))
		}
	} else if opts.Out != "" {
		verb = "written to " + opts.Out
	} else {
		verb = "written to stdout (dry run)"
	}

	// The summary.
	var b strings.Builder
	done := len(plan.Notices)
	if sum != nil {
		done = sum.Sent
	}
	fmt.Fprintf(&b, "notify: %s %s", plural(int64(done), "notice", "notices"), verb)
	if redirected > 0 {
		fmt.Fprintf(&b, ", %d to %s instead (over the limit:", redirected, p.notice.Admin)
		for _, n := range plan.Notices {
			if n.Redirected {
				fmt.Fprintf(&b, " %s", report.Printable(n.User))
			}
		}
		b.WriteString(")")
	}
	if sum != nil && sum.Failed > 0 {
		fmt.Fprintf(&b, ", %d failed", sum.Failed)
	}
	if sum != nil && sum.NotAttempted > 0 {
		fmt.Fprintf(&b, ", %d not attempted", sum.NotAttempted)
	}
	if len(plan.Problems) > 0 {
		fmt.Fprintf(&b, ", %s", plural(int64(len(plan.Problems)), "problem", "problems"))
	}
	fmt.Fprintf(&b, ", %s with nothing to report", plural(int64(plan.Quiet), "owner", "owners"))
	fmt.Fprintln(stderr, b.String())
	return errors.Join(errs...)
}

func noticeLabel(n *report.Notice) string {
	who := n.User
	if n.Domain != "" {
		who += "@" + n.Domain
	}
	if n.Redirected {
		return fmt.Sprintf("%s (to %s: over the limit)", who, n.To)
	}
	return fmt.Sprintf("%s <%s>", who, n.To)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._@+-]+`)

// fileSafe names a notice's .eml file after its owner, in characters any
// file system and shell take.
func fileSafe(n *report.Notice) string {
	s := n.User
	if n.Domain != "" {
		s += "@" + n.Domain
	}
	s = strings.Trim(unsafeName.ReplaceAllString(s, "_"), "._")
	if s == "" {
		s = "owner"
	}
	return s
}

// writeMboxMessage appends msg to w as an mbox message (mboxrd: a From_
// line, lines in LF, ">From " escaped, a blank line after), so that a
// dry run can be read with any mail reader.
func writeMboxMessage(w io.Writer, envelope string, date time.Time, msg []byte) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From %s %s\n", envelope, date.UTC().Format("Mon Jan _2 15:04:05 2006"))
	text := strings.ReplaceAll(string(msg), "\r\n", "\n")
	for _, line := range strings.SplitAfter(text, "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
			b.WriteByte('>')
		}
		b.WriteString(line)
	}
	if !strings.HasSuffix(text, "\n") {
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}
