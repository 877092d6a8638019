package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// troubleLog collects Dovecot's stderr and fails the test on any line that
// says it found the mailbox or its index broken.
func troubleLog(t *testing.T, step, log string) {
	t.Helper()
	for _, line := range dovecotTrouble(log) {
		t.Errorf("doveadm %s: %s", step, line)
	}
}

// expectAfterPrune is what doveadm must list after a prune: the messages
// listed before, minus the removed ones, with the same UIDs and flags.
func expectAfterPrune(before []fetched, removed func(f fetched) bool) []fetched {
	var want []fetched
	for _, f := range before {
		if !removed(f) {
			want = append(want, f)
		}
	}
	return want
}

func compareFetched(t *testing.T, got, want []fetched) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("doveadm lists %d messages after the prune, want %d", len(got), len(want))
	}
	for i := 0; i < min(len(got), len(want)); i++ {
		g, w := got[i], want[i]
		if g.UID != w.UID || g.Flags != w.Flags || g.MessageID != w.MessageID {
			t.Errorf("message %d after the prune: uid %d flags %q %s, want uid %d flags %q %s",
				i+1, g.UID, g.Flags, g.MessageID, w.UID, w.Flags, w.MessageID)
		}
	}
}

// oldIDs returns the Message-IDs of the old originals.
func oldIDs(origs []original) map[string]bool {
	ids := map[string]bool{}
	for _, o := range origs {
		if o.old {
			ids[origID(o.n)] = true
		}
	}
	return ids
}

// TestDoveadmAfterPrune lets Dovecot index a mailbox and set flags, prunes
// it with mailkeep and asks Dovecot again: the same messages, UIDs and
// flags minus the removed ones, the same UIDVALIDITY and UIDNEXT, and no
// warning in its log. Old messages flagged \Flagged through Dovecot must be
// kept: mailkeep reads the flags Dovecot wrote (X-Status for mbox, the
// ":2," suffix it renamed the file to for Maildir).
func TestDoveadmAfterPrune(t *testing.T) {
	flagCmds := [][]string{
		{`\Seen`, "2:20"},
		{`\Flagged`, "5"},          // an old message: kept
		{`\Answered $Label1`, "8"}, // a new one with a keyword
		{`\Flagged \Seen`, "9:10"}, // an old one and a new one
	}
	isFlagged := func(f fetched) bool { return strings.Contains(f.Flags, `\Flagged`) }

	t.Run("mbox", func(t *testing.T) {
		d := newDovecot(t, false)
		base := time.Now().Truncate(time.Second)
		data, origs := genMbox(40, 400, base)
		inbox := d.inbox(false)
		if err := os.WriteFile(inbox, data, 0o600); err != nil {
			t.Fatal(err)
		}
		d.own(t)
		st0, log := d.status(t, "all")
		troubleLog(t, "status (first open)", log)
		for _, fc := range flagCmds {
			_, log := d.doveadm(t, "flags", "add", fc[0], "mailbox", "INBOX", "uid", fc[1])
			troubleLog(t, "flags add", log)
		}
		before, log := d.fetchAll(t)
		troubleLog(t, "fetch before", log)
		if len(before) != len(origs) {
			t.Fatalf("doveadm lists %d messages, want %d", len(before), len(origs))
		}

		doc := prune(t, "--older-than", "1y", inbox)
		old := oldIDs(origs)
		want := expectAfterPrune(before, func(f fetched) bool { return old[f.MessageID] && !isFlagged(f) })
		if got := doc.Mailboxes[0].MessagesRemoved; got != len(before)-len(want) {
			t.Errorf("prune removed %d messages, want %d", got, len(before)-len(want))
		}

		after, log := d.fetchAll(t)
		troubleLog(t, "fetch after", log)
		compareFetched(t, after, want)
		st1, log := d.status(t, "all")
		troubleLog(t, "status after", log)
		for _, k := range []string{"uidvalidity", "uidnext"} {
			if st0[k] != st1[k] {
				t.Errorf("%s changed from %d to %d", k, st0[k], st1[k])
			}
		}
		if st1["messages"] != int64(len(want)) {
			t.Errorf("doveadm counts %d messages, want %d", st1["messages"], len(want))
		}
		// The first message was old: mailkeep moved the X-IMAPbase header
		// Dovecot keeps UIDVALIDITY in to the new first message.
		pruned, err := os.ReadFile(inbox)
		if err != nil {
			t.Fatal(err)
		}
		hdr, _, _ := bytes.Cut(pruned, []byte("\n\n"))
		if want := fmt.Sprintf("\nX-IMAPbase: %d ", st0["uidvalidity"]); !bytes.Contains(hdr, []byte(want)) {
			t.Errorf("first message of the pruned mbox has no %q:\n%s", strings.TrimSpace(want), hdr)
		}
		t.Logf("doveadm before: %d messages, uidvalidity %d, uidnext %d; after: %d messages, same UIDs and flags",
			len(before), st0["uidvalidity"], st0["uidnext"], len(after))
	})

	t.Run("maildir", func(t *testing.T) {
		d := newDovecot(t, true)
		base := time.Now().Truncate(time.Second)
		root := d.inbox(true)
		msgs := genMaildir(t, root, 40, base, func(i int) string {
			if i%3 == 0 {
				return "S"
			}
			return ""
		})
		d.own(t)
		st0, log := d.status(t, "all")
		troubleLog(t, "status (first open)", log)
		for _, fc := range flagCmds {
			_, log := d.doveadm(t, "flags", "add", fc[0], "mailbox", "INBOX", "uid", fc[1])
			troubleLog(t, "flags add", log)
		}
		before, log := d.fetchAll(t)
		troubleLog(t, "fetch before", log)
		if len(before) != len(msgs) {
			t.Fatalf("doveadm lists %d messages, want %d", len(before), len(msgs))
		}

		doc := prune(t, "--older-than", "1y", root)
		old := map[string]bool{}
		for _, m := range msgs {
			if m.old {
				old[origID(m.n)] = true
			}
		}
		want := expectAfterPrune(before, func(f fetched) bool { return old[f.MessageID] && !isFlagged(f) })
		if got := doc.Mailboxes[0].MessagesRemoved; got != len(before)-len(want) {
			t.Errorf("prune removed %d messages, want %d", got, len(before)-len(want))
		}
		after, log := d.fetchAll(t)
		troubleLog(t, "fetch after", log)
		compareFetched(t, after, want)
		st1, log := d.status(t, "all")
		troubleLog(t, "status after", log)
		for _, k := range []string{"uidvalidity", "uidnext"} {
			if st0[k] != st1[k] {
				t.Errorf("%s changed from %d to %d", k, st0[k], st1[k])
			}
		}
		ents, _ := os.ReadDir(root)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Logf("doveadm before: %d messages, uidvalidity %d, uidnext %d; after: %d messages; Maildir root holds %v",
			len(before), st0["uidvalidity"], st0["uidnext"], len(after), names)
	})
}

// TestScanMatchesDoveadm compares what mailkeep measures with what Dovecot
// reports on the same messages.
//
// Sizes: Dovecot's physical size of an mbox message is its text without
// the From_ line and without the blank separator line that ends it (and
// without the headers Dovecot manages, which these fixtures do not have);
// its virtual size (vsize) counts every line ending as CRLF, i.e. physical
// size plus one byte per LF. mailkeep's size of an mbox message is its span
// in the file, From_ line and separator included, so that the spans tile
// the file. Hence, per message: mailkeep bytes = len(From_ line) + 1 +
// physical + 1, and the file size (scan's bytes) is their sum. For
// Maildir, physical size is the file size, which is what scan sums.
func TestScanMatchesDoveadm(t *testing.T) {
	t.Run("mbox", func(t *testing.T) {
		d := newDovecot(t, false)
		base := time.Now().Truncate(time.Second)
		data, origs := genMbox(60, 700, base)
		orig := filepath.Join(worldDir(t), "inbox")
		if err := os.WriteFile(orig, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// doveadm adds X-IMAPbase, X-UID and Content-Length on its first
		// open: it reads a copy, mailkeep the untouched original.
		if err := os.WriteFile(d.inbox(false), data, 0o600); err != nil {
			t.Fatal(err)
		}
		d.own(t)
		st, log := d.status(t, "all")
		troubleLog(t, "status", log)
		msgs, log := d.fetchAll(t)
		troubleLog(t, "fetch", log)

		scan := scanOne(t, orig)
		if scan.Messages != int(st["messages"]) || scan.Messages != len(origs) {
			t.Errorf("scan counts %d messages, doveadm %d, the fixture has %d", scan.Messages, st["messages"], len(origs))
		}
		if scan.Bytes != int64(len(data)) {
			t.Errorf("scan bytes %d, file size %d", scan.Bytes, len(data))
		}
		// Per message sizes from a dry run that would remove everything.
		doc := prune(t, "--dry-run", "--list", "--before", "2100-01-01", orig)
		mk := map[string]int64{}
		for _, r := range doc.Mailboxes[0].Removed {
			mk[r.MessageID] = r.Bytes
		}
		fromLen := map[string]int64{}
		lines := map[string]int64{}
		for _, o := range origs {
			fromLen[origID(o.n)] = int64(len(o.fromLine))
			lines[origID(o.n)] = int64(bytes.Count(o.raw, []byte("\n"))) - 2 // without From_ line and separator
		}
		var sumPhys, sumVirt, sumMk, largest int64
		for _, m := range msgs {
			got, ok := mk[m.MessageID]
			if !ok {
				t.Errorf("uid %d %s: not in mailkeep's list", m.UID, m.MessageID)
				continue
			}
			if want := fromLen[m.MessageID] + 1 + m.Physical + 1; got != want {
				t.Errorf("uid %d: mailkeep %d bytes, doveadm physical %d (+ From_ line and separator = %d)", m.UID, got, m.Physical, want)
			}
			if m.Virtual != m.Physical+lines[m.MessageID] {
				t.Errorf("uid %d: doveadm virtual %d, physical %d + %d LFs", m.UID, m.Virtual, m.Physical, lines[m.MessageID])
			}
			sumPhys += m.Physical
			sumVirt += m.Virtual
			sumMk += got
			largest = max(largest, got)
		}
		if sumVirt != st["vsize"] {
			t.Errorf("doveadm status vsize %d, sum of fetched virtual sizes %d", st["vsize"], sumVirt)
		}
		if sumMk != scan.Bytes {
			t.Errorf("mailkeep's message sizes add up to %d, scan bytes %d", sumMk, scan.Bytes)
		}
		if largest != scan.LargestBytes {
			t.Errorf("scan largest_bytes %d, largest listed %d", scan.LargestBytes, largest)
		}
		t.Logf("mbox: %d messages both; scan bytes %d = doveadm physical %d + From_ lines and separators; doveadm vsize %d",
			scan.Messages, scan.Bytes, sumPhys, st["vsize"])
	})

	t.Run("maildir", func(t *testing.T) {
		d := newDovecot(t, true)
		base := time.Now().Truncate(time.Second)
		root := d.inbox(true)
		msgs := genMaildir(t, root, 60, base, func(i int) string {
			if i%4 == 0 {
				return "S"
			}
			return ""
		})
		d.own(t)
		// mailkeep first, then Dovecot: scan changes nothing, and Dovecot
		// adds its own files (dovecot-uidlist) that scan must ignore after.
		scanBefore := scanOne(t, root)
		st, log := d.status(t, "all")
		troubleLog(t, "status", log)
		fetchedMsgs, log := d.fetchAll(t)
		troubleLog(t, "fetch", log)
		scan := scanOne(t, root)
		if scan != scanBefore {
			t.Errorf("scan after Dovecot opened the Maildir: %+v, before: %+v", scan, scanBefore)
		}
		var sumPhys, sumVirt, lfs, largest int64
		for _, m := range fetchedMsgs {
			sumPhys += m.Physical
			sumVirt += m.Virtual
			largest = max(largest, m.Physical)
		}
		for _, m := range msgs {
			lfs += m.lines
		}
		if scan.Messages != int(st["messages"]) || scan.Messages != len(msgs) {
			t.Errorf("scan counts %d messages, doveadm %d, the fixture has %d", scan.Messages, st["messages"], len(msgs))
		}
		if scan.Bytes != sumPhys {
			t.Errorf("scan bytes %d, doveadm physical sizes add up to %d", scan.Bytes, sumPhys)
		}
		if scan.LargestBytes != largest {
			t.Errorf("scan largest_bytes %d, doveadm's largest physical size %d", scan.LargestBytes, largest)
		}
		if st["vsize"] != sumVirt || st["vsize"] != scan.Bytes+lfs {
			t.Errorf("doveadm vsize %d, fetched virtual sizes %d, scan bytes %d + %d LFs = %d", st["vsize"], sumVirt, scan.Bytes, lfs, scan.Bytes+lfs)
		}
		t.Logf("maildir: %d messages both; scan bytes %d = doveadm physical; doveadm vsize %d = bytes + %d LFs",
			scan.Messages, scan.Bytes, st["vsize"], lfs)
	})
}

// scanRow is one mailbox of scan's JSON output.
type scanRow struct {
	Messages     int
	Bytes        int64
	LargestBytes int64
}

// scanOne scans one mailbox and returns its row; skipped entries are
// logged, since Dovecot's files in a Maildir must not be taken for mail.
func scanOne(t *testing.T, path string) scanRow {
	t.Helper()
	out, errOut, code := mailkeep(t, "scan", "--format", "json", path)
	var doc scanJSON
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 || len(doc.Mailboxes) != 1 {
		t.Fatalf("scan %s: exit %d, %v\n%s%s", path, code, err, out, errOut)
	}
	for _, s := range doc.Skipped {
		t.Logf("scan skipped %s: %s", s.Path, s.Reason)
	}
	m := doc.Mailboxes[0]
	return scanRow{m.Messages, m.Bytes, m.LargestBytes}
}
