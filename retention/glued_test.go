package retention

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPruneGluedMessages: a From_ line without a blank line before it may
// be body text of the message before, so the two are removed together or
// kept together — never cut apart.
func TestPruneGluedMessages(t *testing.T) {
	old := testNow.AddDate(-1, 0, 0)
	young := testNow.AddDate(0, 0, -1)
	msg := func(d time.Time, body string) string {
		return fmt.Sprintf("From a@example.org %s\nSubject: s\n\n%s\n", d.UTC().Format("Mon Jan _2 15:04:05 2006"), body)
	}
	for _, c := range []struct {
		name             string
		lead, glued      time.Time
		wantRemoved      int
		wantMailboxEmpty bool
	}{
		{"both old: removed together", old, old, 2, true},
		{"old then young glued: both kept", old, young, 0, false},
		{"young then old glued: both kept", young, old, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The second From_ line directly follows body text: Glued.
			first := msg(c.lead, "forwarded mailbox follows:")
			second := msg(c.glued, "inner")
			tail := "\n" + msg(young, "a separate, young message")
			data := first + second + tail
			path := filepath.Join(t.TempDir(), "mbox")
			writeFile(t, path, []byte(data))
			res, err := PruneMbox(context.Background(), path, testOpts())
			if err != nil {
				t.Fatal(err)
			}
			if res.MessagesRemoved != c.wantRemoved {
				t.Errorf("removed %d, want %d", res.MessagesRemoved, c.wantRemoved)
			}
			got, _ := os.ReadFile(path)
			want := data
			if c.wantMailboxEmpty {
				want = data[len(first+second)+1:]
			}
			if string(got) != want {
				t.Errorf("mailbox is\n%q\nwant\n%q", got, want)
			}
		})
	}
}
