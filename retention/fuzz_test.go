package retention

import (
	"testing"
	"time"
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
