package retention

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// FuzzParseAge: any text parses to an age or an error, and an age that
// parses gives a cutoff that is not after now.
func FuzzParseAge(f *testing.F) {
	for _, s := range []string{"90d", "12w", "6mo", "1y", "36h", "6m", "0d", "-1d", "99999999999y", "1.5d", "", "d"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAge(s)
		if err != nil {
			return
		}
		if c := (Policy{OlderThan: a}).Cutoff(now); c.After(now) {
			t.Errorf("%q: cutoff %v after now", s, c)
		}
	})
}

// FuzzParseShard: a shard that parses selects each store exactly once
// among the N shards.
func FuzzParseShard(f *testing.F) {
	for _, s := range []string{"0/1", "2/7", "7/7", "-1/3", "1/0", "x/y", ""} {
		f.Add(s, "/var/mail/alice")
	}
	f.Fuzz(func(t *testing.T, s, store string) {
		sh, err := ParseShard(s)
		if err != nil || sh.N == 0 {
			return
		}
		hits := 0
		for i := 0; i < sh.N && i < 64; i++ {
			if (Shard{I: i, N: sh.N}).Has(store) {
				hits++
			}
		}
		if sh.N <= 64 && hits != 1 {
			t.Errorf("%q: store %q in %d of %d shards", s, store, hits, sh.N)
		}
	})
}

// FuzzPlanMatchesOracle: whatever the mailbox holds, the plan of a prune
// (what the new mailbox is made of) is exactly what expectedKept, a plain
// in-memory rendering of the grouping rules, says: the kept spans byte for
// byte, every group whole. The rewrite that carries a plan out is tested
// on real files elsewhere; this runs thousands of plans a second.
func FuzzPlanMatchesOracle(f *testing.F) {
	f.Add([]byte(plainMessage(oldDate, 1) + forwardingMessage(youngDate, oldDate, oldDate) + plainMessage(oldDate, 2)))
	f.Add([]byte(forwardingMessage(oldDate, youngDate) + truncatedMultipart(oldDate, "b") + plainMessage(youngDate, 3)))
	f.Add([]byte(truncatedMultipart(youngDate, "x") + plainMessage(oldDate, 1) + "--x--\n" + fromLine(oldDate) + "Subject: glued\n\n"))
	f.Add([]byte(testMessage(oldDate, "a@x", "X-IMAPbase: 1 5\n", "body\nFrom not a separator\n", "\n") + testMessage(youngDate, "b@x", "", "b", "\r\n")))
	dir := fastTempDir(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		opts := testOpts()
		file, err := os.CreateTemp(dir, "mbox")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(file.Name())
		defer file.Close()
		if _, err := file.Write(data); err != nil {
			t.Fatal(err)
		}
		p := &mboxPruner{ctx: context.Background(), path: file.Name(), opts: opts, res: &Result{}, now: opts.now(), f: file}
		pl, err := p.plan(int64(len(data)))
		if scanErr := scanAll(data); scanErr != nil || err != nil {
			if (err == nil) != (scanErr == nil) {
				t.Fatalf("scan error %v, plan error %v", scanErr, err)
			}
			return
		}
		var got []byte
		for _, s := range pl.segs {
			if s.lit != nil {
				got = append(got, s.lit...)
			} else {
				got = append(got, data[s.off:s.off+s.n]...)
			}
		}
		if int64(len(got)) != pl.size {
			t.Fatalf("plan size %d, its segments hold %d bytes", pl.size, len(got))
		}
		want, removed := expectedKept(t, data, opts)
		if !bytes.Equal(got, want) {
			t.Fatalf("plan (%d bytes) differs from the oracle's (%d bytes)\ngot  %q\nwant %q", len(got), len(want), got, want)
		}
		if p.res.MessagesRemoved != removed {
			t.Fatalf("plan removes %d, oracle %d", p.res.MessagesRemoved, removed)
		}
	})
}

func scanAll(data []byte) error {
	sc := mboxscan.NewScanner(bytes.NewReader(data), "x")
	defer sc.Close()
	for {
		if _, err := sc.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// fastTempDir is a test directory on tmpfs where there is one: fsync
// there costs nothing, which lets the fuzzer run hundreds of prunes a
// second instead of a few.
func fastTempDir(t testing.TB) string {
	dir, err := os.MkdirTemp("/dev/shm", "mailkeep-fuzz-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
