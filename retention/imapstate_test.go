package retention

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAutoInplaceForIMAPState: auto rewrites in place a mailbox in which
// Dovecot or UW-IMAP keeps state (a rename would strand a dovecot-lda
// waiting on the old file), renames one without, and an explicit rename
// still renames, with a note.
func TestAutoInplaceForIMAPState(t *testing.T) {
	pseudo := testMessage(oldDate, "pseudo@test", "X-IMAP: 1234567890 0000000042\n", "This text is part of the internal format of your mail folder.\n", "\n")
	pseudo = strings.Replace(pseudo, "Subject: test pseudo@test", "Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA", 1)
	cases := []struct {
		name     string
		first    string // header lines of the first (old) message
		pre      string // before the first message
		indexDir bool   // .imap/inbox beside the mailbox
		rewrite  RewriteMode
		dryRun   bool
		mode     RewriteMode
		note     string // a note must contain this ("" : no note)
	}{
		{name: "x-imapbase", first: "X-IMAPbase: 1700000000 0000000010\nX-UID: 1\n", mode: RewriteInplace, note: "Dovecot/UW-IMAP state (X-IMAPbase)"},
		{name: "x-imapbase-dry-run", first: "X-IMAPbase: 1700000000 0000000010\nX-UID: 1\n", dryRun: true, mode: RewriteInplace, note: "(X-IMAPbase)"},
		{name: "pseudo-x-imap", pre: pseudo, first: "X-UID: 1\n", mode: RewriteInplace, note: "(X-IMAP)"},
		{name: "index-dir", indexDir: true, mode: RewriteInplace, note: ".imap/inbox"},
		{name: "none", mode: RewriteRename},
		{name: "x-imapbase-later", mode: RewriteRename}, // only the first message counts: see below
		{name: "explicit-rename", first: "X-IMAPbase: 1700000000 0000000010\nX-UID: 1\n", rewrite: RewriteRename, mode: RewriteRename, note: "renamed as --rewrite rename asks"},
		{name: "explicit-inplace", rewrite: RewriteInplace, mode: RewriteInplace},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &mboxCase{}
			c.all.WriteString(tc.pre)
			c.kept.WriteString(tc.pre)
			c.add(true, "a@test", tc.first, "old\n", "\n")
			later := ""
			if tc.name == "x-imapbase-later" {
				// A header a sender wrote into a later message is no
				// server's state.
				later = "X-IMAPbase: 1 2\n"
			}
			c.add(false, "b@test", later, "young\n", "\n")
			c.add(true, "c@test", "", "old\n", "\n")
			c.add(false, "d@test", "", "young\n", "\n")
			dir := t.TempDir()
			path := filepath.Join(dir, "inbox")
			writeFile(t, path, c.all.Bytes())
			if tc.indexDir {
				if err := os.MkdirAll(filepath.Join(dir, ".imap", "inbox"), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			ino := inode(t, path)
			opts := testOpts()
			opts.StateDir = t.TempDir()
			opts.Rewrite, opts.DryRun = tc.rewrite, tc.dryRun
			res, err := PruneMbox(context.Background(), path, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Mode != tc.mode {
				t.Errorf("mode %q, want %q (notes %q)", res.Mode, tc.mode, res.Notes)
			}
			notes := strings.Join(res.Notes, "\n")
			switch {
			case tc.note == "" && notes != "":
				t.Errorf("notes %q, want none", res.Notes)
			case tc.note != "" && !strings.Contains(notes, tc.note):
				t.Errorf("notes %q, want one containing %q", res.Notes, tc.note)
			}
			got, _ := os.ReadFile(path)
			want := c.kept.Bytes()
			if strings.Contains(tc.first, "X-IMAPbase") {
				k := string(want)
				nl := strings.Index(k, "\n") + 1
				want = []byte(k[:nl] + "X-IMAPbase: 1700000000 0000000010\n" + k[nl:])
			}
			if tc.dryRun {
				want = c.all.Bytes()
			}
			if !bytes.Equal(got, want) {
				t.Errorf("mailbox after the prune:\n%s\nwant\n%s", got, want)
			}
			if same := inode(t, path) == ino; same != (tc.mode == RewriteInplace || tc.dryRun) {
				t.Errorf("inode kept: %v, mode %s", same, tc.mode)
			}
			if left := stateLeft(t, opts.StateDir); len(left) != 0 {
				t.Errorf("state left: %v", left)
			}
		})
	}
}
