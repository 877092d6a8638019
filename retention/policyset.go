package retention

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Action is what a [Rule] does with the messages its policy selects.
// Deletion is opt-in: the zero Action reports.
type Action string

const (
	// ActionReport only reports and notifies: nothing is removed.
	ActionReport Action = "report"
	// ActionDelete removes the selected messages.
	ActionDelete Action = "delete"
	// ActionArchive writes the selected messages to an archive, then
	// removes them.
	ActionArchive Action = "archive"
)

// ParseAction parses report, delete or archive; "" is report.
func ParseAction(s string) (Action, error) {
	switch a := Action(strings.ToLower(strings.TrimSpace(s))); a {
	case "", ActionReport:
		return ActionReport, nil
	case ActionDelete, ActionArchive:
		return a, nil
	}
	return "", fmt.Errorf("unknown action %q (want report, delete or archive)", s)
}

// Removes reports whether the action takes messages out of the mailbox.
func (a Action) Removes() bool { return a == ActionDelete || a == ActionArchive }

// Target is a mailbox as the rules see it.
type Target struct {
	// Path is the mbox file or the Maildir folder's directory.
	Path string
	// Folder is the folder name the rules' Folders match: see [FolderName].
	Folder string
	// User and Domain are the mailbox's owner, from a [PathPattern] or
	// the file's owner; "" when unknown.
	User, Domain string
}

// FolderName is the name [Rule.Folders] patterns are matched against: a
// Maildir++ folder's directory name (".Trash"), "INBOX" for a Maildir's
// top level, and an mbox file's base name ("Trash", or "alice" for a spool
// file).
func FolderName(mailboxPath, maildirFolder string, maildir bool) string {
	if maildir {
		if maildirFolder == "" {
			return "INBOX"
		}
		return maildirFolder
	}
	return filepath.Base(mailboxPath)
}

// Rule is one retention policy of a [PolicySet], and the mailboxes it
// applies to.
type Rule struct {
	// Name identifies the rule in output and errors, e.g. "policy 2".
	Name string
	// Folders are glob patterns (path.Match syntax) over the folder name
	// (see FolderName). A Maildir++ name also matches without its leading
	// dot, so "Trash" matches ".Trash"; a pattern holding "/" is matched
	// against the whole path instead. Empty matches every folder.
	Folders []string
	// Users and Domains, when not empty, restrict the rule to mailboxes of
	// these users or domains (domains compare case-insensitively).
	Users   []string
	Domains []string
	// Policy selects the messages.
	Policy Policy
	// Action says what happens to them.
	Action Action
}

// Matches reports whether r applies to t.
func (r Rule) Matches(t Target) bool {
	if len(r.Users) > 0 && !containsFold(r.Users, t.User, false) {
		return false
	}
	if len(r.Domains) > 0 && !containsFold(r.Domains, t.Domain, true) {
		return false
	}
	if len(r.Folders) == 0 {
		return true
	}
	for _, pat := range r.Folders {
		if strings.Contains(pat, "/") {
			if ok, _ := path.Match(pat, t.Path); ok {
				return true
			}
			continue
		}
		if ok, _ := path.Match(pat, t.Folder); ok {
			return true
		}
		if rest, dotted := strings.CutPrefix(t.Folder, "."); dotted {
			if ok, _ := path.Match(pat, rest); ok {
				return true
			}
		}
	}
	return false
}

func containsFold(list []string, s string, fold bool) bool {
	if s == "" {
		return false
	}
	for _, v := range list {
		if v == s || fold && strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// Validate checks the rule's patterns, action and policy.
func (r Rule) Validate() error {
	for _, pat := range r.Folders {
		if _, err := path.Match(pat, ""); err != nil {
			return fmt.Errorf("folder pattern %q: %w", pat, err)
		}
	}
	if _, err := ParseAction(string(r.Action)); err != nil {
		return err
	}
	return r.Policy.Validate()
}

// PolicySet is an ordered list of rules: the first rule that matches a
// mailbox applies to it, so put overrides for users and domains, and
// narrow folder patterns, before the catch-all.
type PolicySet []Rule

// Match returns the index of the first rule that applies to t, or -1.
func (ps PolicySet) Match(t Target) int {
	for i, r := range ps {
		if r.Matches(t) {
			return i
		}
	}
	return -1
}

// PathPattern derives a mailbox's user and domain from its path, e.g.
// "/var/vmail/{domain}/{user}/Maildir". Each placeholder matches one path
// element; "*" matches within one element as in globs. The pattern
// matches a prefix of the path that ends at an element boundary, so a
// Maildir++ folder below the Maildir has the same user and domain.
type PathPattern struct {
	src          string
	re           *regexp.Regexp
	user, domain int // submatch indices; 0 when absent
}

// ParsePathPattern compiles a pattern with {user} and/or {domain}
// placeholders. It rejects unknown placeholders, a placeholder given twice
// and a pattern with neither.
func ParsePathPattern(s string) (*PathPattern, error) {
	p := &PathPattern{src: s}
	var b strings.Builder
	b.WriteString("^")
	group := 0
	rest := filepath.Clean(s)
	for rest != "" {
		i := strings.IndexAny(rest, "{*")
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		b.WriteString(regexp.QuoteMeta(rest[:i]))
		if rest[i] == '*' {
			b.WriteString(`[^/]*`)
			rest = rest[i+1:]
			continue
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("path pattern %q: unclosed {", s)
		}
		name := rest[i+1 : i+j]
		group++
		switch name {
		case "user":
			if p.user != 0 {
				return nil, fmt.Errorf("path pattern %q: {user} given twice", s)
			}
			p.user = group
		case "domain":
			if p.domain != 0 {
				return nil, fmt.Errorf("path pattern %q: {domain} given twice", s)
			}
			p.domain = group
		default:
			return nil, fmt.Errorf("path pattern %q: unknown placeholder {%s} (want {user} or {domain})", s, name)
		}
		b.WriteString(`([^/]+)`)
		rest = rest[i+j+1:]
	}
	if group == 0 {
		return nil, fmt.Errorf("path pattern %q: no {user} or {domain} in it", s)
	}
	b.WriteString(`(?:/|$)`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("path pattern %q: %w", s, err)
	}
	p.re = re
	return p, nil
}

// String returns the pattern as given.
func (p *PathPattern) String() string { return p.src }

// Match returns the user and domain the pattern finds in path; ok is
// false when the path does not match.
func (p *PathPattern) Match(mailboxPath string) (user, domain string, ok bool) {
	m := p.re.FindStringSubmatch(filepath.Clean(mailboxPath))
	if m == nil {
		return "", "", false
	}
	if p.user != 0 {
		user = m[p.user]
	}
	if p.domain != 0 {
		domain = m[p.domain]
	}
	return user, domain, true
}
