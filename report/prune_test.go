package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func samplePrune(list bool) *PruneReport {
	errText := "prune /var/mail/eve: unsafe mailbox: has 2 hard links"
	rep := &PruneReport{
		DryRun: true,
		Cutoff: "2026-03-03T12:00:00Z",
		Mailboxes: []PruneMailbox{
			{Path: "/var/mail/bob", Format: "mbox", MessagesBefore: 10, MessagesRemoved: 4,
				BytesBefore: 10240, BytesRemoved: 4096, KeptUndated: 1},
			{Path: "/var/mail/eve", Format: "mbox", Error: &errText},
			{Path: "/home/amy/Maildir/.Trash", Format: "maildir", MessagesBefore: 2, MessagesRemoved: 0, BytesBefore: 300},
		},
	}
	if list {
		removed := []PruneRemoved{{MessageID: "<a@x>", Date: "2025-01-02T03:04:05Z", Bytes: 1024,
			From: "Ann <ann@example.org>", Subject: "café\x1b[31m"}}
		empty := []PruneRemoved{}
		rep.Mailboxes[0].Removed = &removed
		rep.Mailboxes[2].Removed = &empty
	}
	return rep
}

func TestPruneJSONContract(t *testing.T) {
	for _, list := range []bool{false, true} {
		var b bytes.Buffer
		if err := Prune(&b, samplePrune(list), PruneOptions{Format: FormatJSON}); err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if doc["dry_run"] != true || doc["cutoff"] != "2026-03-03T12:00:00Z" {
			t.Errorf("top level: %v", doc)
		}
		boxes := doc["mailboxes"].([]any)
		want := []string{"path", "format", "messages_before", "messages_removed", "bytes_before", "bytes_removed", "kept_undated", "error"}
		for i, mb := range boxes {
			m := mb.(map[string]any)
			for _, k := range want {
				if _, ok := m[k]; !ok {
					t.Errorf("mailbox %d lacks %q", i, k)
				}
			}
			_, hasRemoved := m["removed"]
			if hasRemoved != (list && i != 1) {
				t.Errorf("list=%v mailbox %d: removed present = %v", list, i, hasRemoved)
			}
		}
		if boxes[0].(map[string]any)["error"] != nil || boxes[1].(map[string]any)["error"] == nil {
			t.Error("error must be null when ok, a string when failed")
		}
		if list {
			r := boxes[0].(map[string]any)["removed"].([]any)[0].(map[string]any)
			keys := []string{}
			for k := range r {
				keys = append(keys, k)
			}
			for _, k := range []string{"message_id", "date", "bytes", "from", "subject"} {
				if _, ok := r[k]; !ok {
					t.Errorf("removed entry lacks %q: %v", k, keys)
				}
			}
			if got := boxes[2].(map[string]any)["removed"]; !reflect.DeepEqual(got, []any{}) {
				t.Errorf("empty removed list encodes as %v, want []", got)
			}
		}
	}
	var b bytes.Buffer
	Prune(&b, &PruneReport{Cutoff: "x"}, PruneOptions{Format: FormatJSON})
	if !strings.Contains(b.String(), `"mailboxes": []`) {
		t.Errorf("no mailboxes must encode as []: %s", b.String())
	}
}

func TestPruneCSV(t *testing.T) {
	var b bytes.Buffer
	if err := Prune(&b, samplePrune(true), PruneOptions{Format: FormatCSV}); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || !reflect.DeepEqual(rows[0], PruneCSVHeader) {
		t.Fatalf("rows: %q", rows)
	}
	if got := strings.Join(rows[1], ","); got != "/var/mail/bob,mbox,10,4,10240,4096,1,,true,2026-03-03T12:00:00Z,0,," {
		t.Errorf("row 1: %s", got)
	}
	if rows[2][7] == "" {
		t.Error("error column empty for a failed mailbox")
	}
}

func TestPruneTable(t *testing.T) {
	var b bytes.Buffer
	if err := Prune(&b, samplePrune(true), PruneOptions{Format: FormatTable, TTY: true}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"MSGS  REMOVED  SIZE",
		"error: prune /var/mail/eve: unsafe mailbox",
		"/var/mail/bob would remove:",
		`"café\x1b[31m"`, // control characters quoted, never sent to the terminal
		"would remove 4 messages of 12 (4.0 KiB of 10 KiB) from 3 mailboxes; cutoff 2026-03-03T12:00:00Z; 1 message kept undated; 1 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Error("escape sequence reached the table")
	}

	b.Reset()
	Prune(&b, samplePrune(true), PruneOptions{Format: FormatTable})
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "10\t4\t10240\t4096\t1\tmbox\t/var/mail/bob\t" {
		t.Errorf("piped rows: %q", lines)
	}
}

func TestPruneArchived(t *testing.T) {
	rep := samplePrune(false)
	dir := "/srv/archive/bob"
	rep.Mailboxes[0].MessagesArchived = 4
	rep.Mailboxes[0].Archive = &dir
	rep.Mailboxes[0].ArchiveFiles = []string{dir + "/bob.2025-01.mbox.gz"}
	rep.Mailboxes[0].Mode = "inplace"

	var b bytes.Buffer
	if err := Prune(&b, rep, PruneOptions{Format: FormatJSON}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Mailboxes []map[string]any `json:"mailboxes"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Mailboxes[0]
	if m["messages_archived"] != 4.0 || m["archive"] != dir || m["mode"] != "inplace" ||
		!reflect.DeepEqual(m["archive_files"], []any{dir + "/bob.2025-01.mbox.gz"}) {
		t.Errorf("archived mailbox: %v", m)
	}
	if m := doc.Mailboxes[2]; m["messages_archived"] != 0.0 || m["archive"] != nil {
		t.Errorf("mailbox without archive: %v", m)
	}
	if _, ok := doc.Mailboxes[2]["mode"]; ok {
		t.Error("mode present for a mailbox not rewritten")
	}

	b.Reset()
	Prune(&b, rep, PruneOptions{Format: FormatCSV})
	rows, _ := csv.NewReader(&b).ReadAll()
	if got := strings.Join(rows[1][10:], ","); got != "4,/srv/archive/bob,inplace" {
		t.Errorf("csv archive columns: %s", got)
	}

	b.Reset()
	Prune(&b, rep, PruneOptions{Format: FormatTable, TTY: true})
	for _, want := range []string{"MSGS  REMOVED  ARCHIVED  SIZE", "; would archive 4"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
