package retention

import "testing"

func TestPolicySetFirstMatch(t *testing.T) {
	age := func(s string) Policy {
		a, err := ParseAge(s)
		if err != nil {
			t.Fatal(err)
		}
		return Policy{OlderThan: a}
	}
	ps := PolicySet{
		{Name: "vip", Users: []string{"boss"}, Folders: []string{"*"}, Policy: age("10y")},
		{Name: "org trash", Domains: []string{"Example.ORG"}, Folders: []string{"Trash"}, Policy: age("7d"), Action: ActionDelete},
		{Name: "trash", Folders: []string{"Trash", "Deleted Messages"}, Policy: age("30d"), Action: ActionDelete},
		{Name: "junk", Folders: []string{"Junk", "Spam*"}, Policy: age("14d"), Action: ActionDelete},
		{Name: "lists", Folders: []string{"/home/*/mail/lists/*"}, Policy: age("1y")},
		{Name: "rest", Folders: []string{"*"}, Policy: age("2y")},
	}
	for _, r := range ps {
		if err := r.Validate(); err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
	}
	for _, tc := range []struct {
		t    Target
		want string
	}{
		{Target{Folder: ".Trash", User: "boss", Domain: "example.org"}, "vip"},
		{Target{Folder: ".Trash", User: "alice", Domain: "example.org"}, "org trash"},
		{Target{Folder: ".Trash", User: "alice", Domain: "example.com"}, "trash"},
		{Target{Folder: "Trash", User: "bob"}, "trash"},
		{Target{Folder: "Deleted Messages"}, "trash"},
		{Target{Folder: ".Spam.2024"}, "junk"},
		{Target{Folder: "INBOX"}, "rest"},
		{Target{Path: "/home/carol/mail/lists/golang", Folder: "golang"}, "lists"},
		{Target{Folder: ".Trashy"}, "rest"},
	} {
		i := ps.Match(tc.t)
		if i < 0 || ps[i].Name != tc.want {
			got := "none"
			if i >= 0 {
				got = ps[i].Name
			}
			t.Errorf("Match(%+v) = %s, want %s", tc.t, got, tc.want)
		}
	}
	if i := (PolicySet{{Folders: []string{"Trash"}, Policy: age("1d")}}).Match(Target{Folder: "INBOX"}); i != -1 {
		t.Errorf("no rule should match, got %d", i)
	}
}

func TestParseAction(t *testing.T) {
	for in, want := range map[string]Action{"": ActionReport, "report": ActionReport, "DELETE": ActionDelete, "archive": ActionArchive} {
		if got, err := ParseAction(in); err != nil || got != want {
			t.Errorf("ParseAction(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseAction("purge"); err == nil {
		t.Error("ParseAction(purge) should fail")
	}
	if ActionReport.Removes() || !ActionDelete.Removes() {
		t.Error("Removes is wrong")
	}
}

func TestPathPattern(t *testing.T) {
	p, err := ParsePathPattern("/var/vmail/{domain}/{user}/Maildir")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, user, domain string
		ok                 bool
	}{
		{"/var/vmail/example.org/alice/Maildir", "alice", "example.org", true},
		{"/var/vmail/example.org/alice/Maildir/.Trash", "alice", "example.org", true},
		{"/var/vmail/example.org/alice/Maildirs", "", "", false},
		{"/var/mail/alice", "", "", false},
	} {
		u, d, ok := p.Match(tc.path)
		if u != tc.user || d != tc.domain || ok != tc.ok {
			t.Errorf("Match(%s) = %q, %q, %v", tc.path, u, d, ok)
		}
	}
	g, err := ParsePathPattern("/home/{user}/*")
	if err != nil {
		t.Fatal(err)
	}
	if u, _, ok := g.Match("/home/bob/mbox"); !ok || u != "bob" {
		t.Errorf("glob pattern: %q %v", u, ok)
	}
	for _, bad := range []string{"/var/mail", "/x/{who}", "/x/{user}/{user}", "/x/{user"} {
		if _, err := ParsePathPattern(bad); err == nil {
			t.Errorf("ParsePathPattern(%q) should fail", bad)
		}
	}
}
