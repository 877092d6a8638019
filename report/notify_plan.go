package report

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// NoticePolicy is the retention policy whose dry run a notice reports.
// report does not import retention: the caller passes the policy's
// decision (retention.Decide) as a function, so that the notice and a
// real prune choose the same messages.
type NoticePolicy struct {
	Description string // the policy in words (retention.Policy.String)
	Cutoff      time.Time
	DateKind    mboxscan.DateKind // "" means received
	// KeepsFlagged says that flagged messages are kept (what a user can do
	// to keep a message).
	KeepsFlagged bool
	// Decide says whether the policy removes m; undated is set when m is
	// kept because it has no usable date. It must be pure and safe for
	// concurrent use.
	Decide func(m *mboxscan.Message) (remove, undated bool)
}

func (p *NoticePolicy) dateKind() mboxscan.DateKind {
	if p == nil || p.DateKind == "" {
		return mboxscan.DateReceived
	}
	return p.DateKind
}

// DefaultLargest is how many of an owner's largest messages a notice lists.
const DefaultLargest = 5

// candidate is a listed message before its header is decoded.
type candidate struct {
	mailbox, path string
	date          time.Time
	from, subject string
	bytes         int64
	remove        bool
}

// topN keeps the n largest candidates, largest first; ties keep the
// earlier one (the order of reading).
type topN struct {
	n    int
	list []candidate
}

func (t *topN) offer(c candidate) {
	if t.n <= 0 || (len(t.list) == t.n && c.bytes <= t.list[len(t.list)-1].bytes) {
		return
	}
	i, _ := slices.BinarySearchFunc(t.list, c.bytes, func(e candidate, b int64) int {
		// Descending, and a new equal size goes after the old ones.
		if e.bytes >= b {
			return -1
		}
		return 1
	})
	t.list = slices.Insert(t.list, i, c)
	if len(t.list) > t.n {
		t.list = t.list[:t.n]
	}
}

func (t *topN) messages() []NoticeMessage {
	out := make([]NoticeMessage, 0, len(t.list))
	for _, c := range t.list {
		out = append(out, NoticeMessage{
			Mailbox: c.mailbox, Path: c.path, Date: c.date,
			From: DisplayFrom(mboxscan.DecodeHeader(c.from)), Subject: mboxscan.DecodeHeader(c.subject),
			Bytes: c.bytes, Remove: c.remove,
		})
	}
	return out
}

// mailboxName is what the owner calls a mailbox: the Maildir++ folder
// name without its dot ("Trash"), "INBOX" for a Maildir root, the file
// name of an mbox.
func mailboxName(mb *mboxscan.Mailbox) string {
	if mb.Format == mboxscan.FormatMaildir {
		if mb.Folder != "" {
			return strings.TrimPrefix(mb.Folder, ".")
		}
		return "INBOX"
	}
	return filepath.Base(mb.Path)
}

// PlanMailbox reads the mailbox mb (found by a scan) once, read-only, and
// returns what pol would remove from it (a dry run: nothing is written, no
// lock is taken) and its largest messages, at most largest of them,
// largest first. pol may be nil: then nothing is removed. Messages are
// read with [mboxscan.NewScanner] or [mboxscan.ReadMaildirFolder]; the
// UW-IMAP pseudo-message is passed over. ctx is checked between messages.
func PlanMailbox(ctx context.Context, mb *mboxscan.Mailbox, pol *NoticePolicy, largest int) (NoticeRemoval, []NoticeMessage, error) {
	var (
		rm   NoticeRemoval
		top  = topN{n: largest}
		name = mailboxName(mb)
		kind = pol.dateKind()
	)
	visit := func(m *mboxscan.Message) {
		if m.Pseudo {
			return
		}
		remove, undated := false, false
		if pol != nil && pol.Decide != nil {
			remove, undated = pol.Decide(m)
		}
		d := m.Date(kind)
		if remove {
			rm.add(NoticeRemoval{Messages: 1, Bytes: m.Size(), Oldest: d, Newest: d})
		}
		if undated {
			rm.Undated++
		}
		top.offer(candidate{mailbox: name, path: mb.Path, date: d, from: m.Header.From,
			subject: m.Header.Subject, bytes: m.Size(), remove: remove})
	}

	if mb.Format == mboxscan.FormatMaildir {
		err := mboxscan.ReadMaildirFolder(ctx, mb.Path, func(m *mboxscan.Message) error {
			visit(m)
			return nil
		})
		if err != nil {
			return rm, top.messages(), fmt.Errorf("dry run %s: %w", mb.Path, err)
		}
		return rm, top.messages(), nil
	}

	f, err := mboxscan.OpenMboxReadOnly(mb.Path)
	if err != nil {
		return rm, nil, fmt.Errorf("dry run: %w", err)
	}
	defer f.Close()
	sc := mboxscan.NewScanner(f, mb.Path)
	defer sc.Close()
	for n := 0; ; n++ {
		if n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return rm, nil, fmt.Errorf("dry run %s: %w", mb.Path, err)
			}
		}
		m, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return rm, top.messages(), fmt.Errorf("dry run %s: %w", mb.Path, err)
		}
		visit(m)
	}
	return rm, top.messages(), nil
}

// Owner identifies a mailbox owner, as an address template sees it.
type Owner struct {
	User   string // user name: from the path pattern, else the files' owner
	UID    int    // uid of the mailbox's files
	Domain string // from the path pattern; "" without one
}

func (o Owner) String() string {
	if o.Domain != "" {
		return o.User + "@" + o.Domain
	}
	return o.User
}

// AddressBook gives an owner's mail address.
type AddressBook interface {
	// Address returns the owner's address, or an error wrapping
	// ErrNoAddress.
	Address(o Owner) (string, error)
}

// ToTemplate is an [AddressBook] that renders a text/template over an
// [Owner]: "{{.User}}@example.org".
type ToTemplate struct{ t *template.Template }

// ParseToTemplate parses an address template.
func ParseToTemplate(s string) (*ToTemplate, error) {
	t, err := template.New("to").Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fmt.Errorf("parse address template %q: %w", s, err)
	}
	if _, err := (&ToTemplate{t}).Address(Owner{User: "user", UID: 1000, Domain: "example.org"}); err != nil {
		return nil, err
	}
	return &ToTemplate{t: t}, nil
}

// Address renders the template for o and checks that it is an address.
func (tt *ToTemplate) Address(o Owner) (string, error) {
	var b strings.Builder
	if err := tt.t.Execute(&b, o); err != nil {
		return "", fmt.Errorf("address of %s: %w", o, err)
	}
	a := strings.TrimSpace(b.String())
	if err := checkAddress(a); err != nil {
		return "", fmt.Errorf("address of %s: %w", o, err)
	}
	return a, nil
}

// checkAddress accepts a bare addr-spec or "Name <addr>", one address,
// nothing that could add a header line.
func checkAddress(a string) error {
	if a == "" || strings.ContainsAny(a, "\r\n\x00") {
		return fmt.Errorf("%w: %q is not an address", ErrNoAddress, a)
	}
	if _, err := parseAddress(a); err != nil {
		return fmt.Errorf("%w: %q is not an address: %w", ErrNoAddress, a, err)
	}
	return nil
}

// AddressMap is an [AddressBook] read from a file of "user address"
// lines; blank lines and lines starting with # are ignored. A user may
// also be written user@domain to match an owner with that domain.
type AddressMap map[string]string

// ReadAddressMap reads a map file.
func ReadAddressMap(path string) (AddressMap, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read address map: %w", err)
	}
	defer f.Close()
	m := AddressMap{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		user, addr, ok := strings.Cut(t, " ")
		if !ok {
			user, addr, ok = strings.Cut(t, "\t")
		}
		addr = strings.TrimSpace(addr)
		if !ok || addr == "" {
			return nil, fmt.Errorf("read address map %s: line %d: want \"user address\"", path, line)
		}
		if err := checkAddress(addr); err != nil {
			return nil, fmt.Errorf("read address map %s: line %d: %w", path, line, err)
		}
		m[user] = addr
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read address map %s: %w", path, err)
	}
	return m, nil
}

// Address looks up user@domain, then user.
func (m AddressMap) Address(o Owner) (string, error) {
	if o.Domain != "" {
		if a, ok := m[o.User+"@"+o.Domain]; ok {
			return a, nil
		}
	}
	if a, ok := m[o.User]; ok {
		return a, nil
	}
	return "", fmt.Errorf("address of %s: %w in the map", o, ErrNoAddress)
}

// AddressBooks tries each book in turn.
type AddressBooks []AddressBook

// Address returns the first address found.
func (bs AddressBooks) Address(o Owner) (string, error) {
	var errs []error
	for _, b := range bs {
		a, err := b.Address(o)
		if err == nil {
			return a, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return "", fmt.Errorf("address of %s: %w (give --to or --map)", o, ErrNoAddress)
	}
	return "", errors.Join(errs...)
}

// PathPattern takes the user and domain of a virtual mailbox from its
// path, as in "/var/vmail/{domain}/{user}/Maildir". {user} and {domain}
// match one path element; * matches within one element. The pattern
// matches the start of a path, so Maildir++ folders below it match too.
type PathPattern struct {
	re           *regexp.Regexp
	user, domain int
	text         string
}

// ParsePathPattern parses a pattern; it must contain {user}.
func ParsePathPattern(s string) (*PathPattern, error) {
	p := &PathPattern{text: s, user: -1, domain: -1}
	var b strings.Builder
	b.WriteString("^")
	group := 0
	for rest := s; rest != ""; {
		switch {
		case strings.HasPrefix(rest, "{user}"), strings.HasPrefix(rest, "{domain}"):
			name := rest[1:strings.IndexByte(rest, '}')]
			group++
			if name == "user" {
				if p.user >= 0 {
					return nil, fmt.Errorf("path pattern %q: {user} appears twice", s)
				}
				p.user = group
			} else {
				if p.domain >= 0 {
					return nil, fmt.Errorf("path pattern %q: {domain} appears twice", s)
				}
				p.domain = group
			}
			b.WriteString("([^/]+)")
			rest = rest[len(name)+2:]
		case rest[0] == '*':
			b.WriteString("[^/]*")
			rest = rest[1:]
		default:
			b.WriteString(regexp.QuoteMeta(rest[:1]))
			rest = rest[1:]
		}
	}
	if p.user < 0 {
		return nil, fmt.Errorf("path pattern %q: no {user}", s)
	}
	b.WriteString("(?:/|$)")
	re, err := regexp.Compile(strings.Replace(b.String(), "/(?:/|$)", "(?:/|$)", 1))
	if err != nil {
		return nil, fmt.Errorf("path pattern %q: %w", s, err)
	}
	p.re = re
	return p, nil
}

// Match returns the user and domain in path.
func (p *PathPattern) Match(path string) (user, domain string, ok bool) {
	m := p.re.FindStringSubmatch(filepath.Clean(path))
	if m == nil {
		return "", "", false
	}
	if p.domain >= 0 {
		domain = m[p.domain]
	}
	return m[p.user], domain, true
}

func (p *PathPattern) String() string { return p.text }

// NoticeOptions choose who is told what.
type NoticeOptions struct {
	// Policy is the retention policy whose dry run is reported; nil: none.
	Policy *NoticePolicy
	// All makes a notice for every owner, even one with nothing to hear.
	All bool
	// Largest is how many largest messages to list (0: DefaultLargest;
	// negative: none).
	Largest int
	// Addresses maps owners to addresses.
	Addresses AddressBook
	// PathPattern, when set, takes owners from paths (virtual users).
	PathPattern *PathPattern
	// Admin gets the notices of owners over their limit. Required.
	Admin string
	// Cc are copied on every notice.
	Cc   []string
	Host string
	Now  time.Time
	// Trends are the stores' growth, keyed by store, as for
	// [ScanOptions.Trends]; nil: none. Each notice's stores get theirs.
	Trends map[string]Trend
}

// NoticeProblem is an owner who should have been told but cannot be, or a
// mailbox whose dry run failed.
type NoticeProblem struct {
	Owner Owner
	Path  string // the mailbox, for a failed dry run
	Err   error
}

// NoticePlan is the outcome of [PlanNotices].
type NoticePlan struct {
	Notices []*Notice // by owner
	// Problems: owners without an address, and failed dry runs (whose
	// owner still gets a notice, without that mailbox's removals).
	Problems []NoticeProblem
	Quiet    int // owners with nothing to hear (not notified)
}

// PlanNotices groups the mailboxes of res by owner and makes a notice for
// each owner with something to hear: a store at warn or crit level, or
// messages opts.Policy would remove (a dry run: see [PlanMailbox]); with
// opts.All, for everyone. A notice for an owner whose store is at or over
// its limit goes to opts.Admin instead (Redirected): the owner's mailbox
// cannot take it. The error is non-nil only when ctx is done.
func PlanNotices(ctx context.Context, res *mboxscan.Result, opts NoticeOptions) (*NoticePlan, error) {
	if opts.Largest == 0 {
		opts.Largest = DefaultLargest
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	type group struct {
		owner Owner
		boxes []*mboxscan.Mailbox
	}
	groups := map[Owner]*group{}
	for i := range res.Mailboxes {
		mb := &res.Mailboxes[i]
		o := Owner{User: mb.Owner, UID: mb.UID}
		if opts.PathPattern != nil {
			if u, d, ok := opts.PathPattern.Match(mb.Path); ok {
				o.User, o.Domain = u, d
			}
		}
		g := groups[o]
		if g == nil {
			g = &group{owner: o}
			groups[o] = g
		}
		g.boxes = append(g.boxes, mb)
	}
	owners := make([]*group, 0, len(groups))
	for _, g := range groups {
		owners = append(owners, g)
	}
	slices.SortFunc(owners, func(a, b *group) int {
		return cmp.Or(strings.Compare(a.owner.Domain, b.owner.Domain),
			strings.Compare(a.owner.User, b.owner.User), cmp.Compare(a.owner.UID, b.owner.UID))
	})

	plan := &NoticePlan{}
	for _, g := range owners {
		n := &Notice{
			User: g.owner.User, UID: g.owner.UID, Domain: g.owner.Domain,
			Admin: opts.Admin, Host: opts.Host, Now: now, Level: mboxscan.LevelOK,
		}
		if p := opts.Policy; p != nil {
			n.HasPolicy = true
			n.Policy = p.Description
			n.Cutoff = p.Cutoff
			n.DateKind = p.dateKind()
			n.KeepsFlagged = p.KeepsFlagged
		}
		stores := map[string]bool{}
		for _, mb := range g.boxes {
			key := storeKey(mb)
			if !stores[key] {
				stores[key] = true
				st := NoticeStore{
					Path: key, Bytes: storeBytes(mb), LimitBytes: mb.LimitBytes, UsedRatio: mb.UsedRatio,
					Level: mb.Level, OverLimit: mb.LimitBytes > 0 && storeBytes(mb) >= mb.LimitBytes,
					Quota: mb.Quota != nil && mb.Quota.LimitBytes > 0 && mb.Quota.LimitBytes == mb.LimitBytes,
				}
				if t, ok := opts.Trends[key]; ok {
					st.SetTrend(t)
				}
				n.Stores = append(n.Stores, st)
				n.Level = worse(n.Level, st.Level)
				n.OverLimit = n.OverLimit || st.OverLimit
			}
			n.Messages += mb.Messages
			n.Bytes += mb.Bytes
		}
		// Reading the mailboxes is the expensive part: only for owners who
		// may be told something.
		if !opts.All && n.Level == mboxscan.LevelOK && opts.Policy == nil {
			plan.Quiet++
			continue
		}
		var top topN
		top.n = max(opts.Largest, 0)
		for _, mb := range g.boxes {
			nm := NoticeMailbox{
				Path: mb.Path, Name: mailboxName(mb), Format: mb.Format, Folder: mb.Folder,
				Store: storeKey(mb), Messages: mb.Messages, Bytes: mb.Bytes, Oldest: mb.Oldest, Newest: mb.Newest,
			}
			rm, largest, err := PlanMailbox(ctx, mb, opts.Policy, top.n)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("plan notices: %w", ctx.Err())
			}
			if err != nil {
				nm.Error = err.Error()
				plan.Problems = append(plan.Problems, NoticeProblem{Owner: g.owner, Path: mb.Path, Err: err})
				rm = NoticeRemoval{}
			}
			nm.Remove = rm
			n.Remove.add(rm)
			for _, m := range largest {
				top.offer(candidate{mailbox: m.Mailbox, path: m.Path, date: m.Date, from: m.From,
					subject: m.Subject, bytes: m.Bytes, remove: m.Remove})
			}
			n.Mailboxes = append(n.Mailboxes, nm)
		}
		// Already decoded: copy rather than decode twice.
		for _, c := range top.list {
			n.Largest = append(n.Largest, NoticeMessage{Mailbox: c.mailbox, Path: c.path, Date: c.date,
				From: c.from, Subject: c.subject, Bytes: c.bytes, Remove: c.remove})
		}
		if !opts.All && n.Level == mboxscan.LevelOK && n.Remove.Messages == 0 {
			plan.Quiet++
			continue
		}
		if opts.Addresses == nil {
			plan.Problems = append(plan.Problems, NoticeProblem{Owner: g.owner,
				Err: fmt.Errorf("address of %s: %w (give --to or --map)", g.owner, ErrNoAddress)})
			continue
		}
		addr, err := opts.Addresses.Address(g.owner)
		if err != nil {
			plan.Problems = append(plan.Problems, NoticeProblem{Owner: g.owner, Err: err})
			continue
		}
		n.Address, n.To = addr, addr
		if n.OverLimit {
			n.To, n.Redirected = opts.Admin, true
		}
		for _, c := range opts.Cc {
			if !sameAddress(c, n.To) && !slices.ContainsFunc(n.Cc, func(x string) bool { return sameAddress(x, c) }) {
				n.Cc = append(n.Cc, c)
			}
		}
		plan.Notices = append(plan.Notices, n)
	}
	return plan, nil
}

func worse(a, b mboxscan.Level) mboxscan.Level {
	rank := map[mboxscan.Level]int{mboxscan.LevelOK: 0, mboxscan.LevelWarn: 1, mboxscan.LevelCrit: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func sameAddress(a, b string) bool {
	pa, err1 := parseAddress(a)
	pb, err2 := parseAddress(b)
	if err1 != nil || err2 != nil {
		return strings.EqualFold(a, b)
	}
	return strings.EqualFold(pa, pb)
}
