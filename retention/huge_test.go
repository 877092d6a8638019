package retention

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPrunePast2GiB prunes a real 2.1 GiB mbox (sparse: its big message's
// body is a hole, so the test writes little): the old 2 GiB message goes,
// and messages on both sides of offset 2^31 are kept or removed by their
// own dates, copied byte for byte from offsets past 2^31.
func TestPrunePast2GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("reads a 2.1 GiB sparse file: skipped with -short")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "mbox")
	msg := func(d time.Time, subject, body string) []byte {
		return fmt.Appendf(nil, "From a@example.org %s\nSubject: %s\n\n%s\n\n",
			d.UTC().Format("Mon Jan _2 15:04:05 2006"), subject, body)
	}
	young, old := testNow.AddDate(0, 0, -1), testNow.AddDate(-1, 0, 0)
	m1 := msg(young, "before", "kept")
	m3 := msg(young, "after 2^31", "kept too")
	m4 := msg(old, "old after 2^31", "removed")
	m5 := msg(young, "last", "kept as well")

	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// The old message: a header, a 2 GiB hole of NULs, a final newline.
	hugeHead := msg(old, "huge", "")
	hugeHead = hugeHead[:len(hugeHead)-2]
	const hole = 1<<31 + 1<<20
	if _, err := f.Write(append(m1, hugeHead...)); err != nil {
		t.Fatal(err)
	}
	end := int64(len(m1)+len(hugeHead)) + hole
	if err := f.Truncate(end); err != nil {
		t.Skipf("cannot make a sparse 2 GiB file here: %v", err)
	}
	tail := append(append(append([]byte("\n\n"), m3...), m4...), m5...)
	if _, err := f.WriteAt(tail, end); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if end < 1<<31 {
		t.Fatalf("test mbox too small: later messages at %d", end)
	}

	res, err := PruneMbox(context.Background(), path, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if res.MessagesBefore != 5 || res.MessagesRemoved != 2 {
		t.Errorf("messages before %d, removed %d; want 5, 2", res.MessagesBefore, res.MessagesRemoved)
	}
	want := append(append(append([]byte{}, m1...), m3...), m5...)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("pruned mailbox is %d bytes %q, want %q", len(got), got[:min(len(got), 300)], want)
	}
}
