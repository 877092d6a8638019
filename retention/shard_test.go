package retention

import (
	"errors"
	"fmt"
	"testing"
)

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Shard
		bad  bool
	}{
		{"", Shard{}, false},
		{"0/1", Shard{0, 1}, false},
		{"3/4", Shard{3, 4}, false},
		{" 2/7 ", Shard{2, 7}, false},
		{"4/4", Shard{}, true},
		{"-1/4", Shard{}, true},
		{"1/0", Shard{}, true},
		{"1", Shard{}, true},
		{"a/b", Shard{}, true},
	} {
		got, err := ParseShard(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrBadShard) {
				t.Errorf("ParseShard(%q) error = %v, want ErrBadShard", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, _ := ParseShard(got.String()); back != got {
			t.Errorf("String/ParseShard round trip of %v gave %v", got, back)
		}
	}
}

// TestShardCoverage checks over 10,000 paths that for each N the shards
// are disjoint and together cover every path, and that they are roughly
// even (a bad hash would pile paths up in one shard).
func TestShardCoverage(t *testing.T) {
	paths := make([]string, 10000)
	for i := range paths {
		paths[i] = fmt.Sprintf("/var/vmail/example%d.org/user%d/Maildir", i%37, i)
	}
	for n := 1; n <= 7; n++ {
		counts := make([]int, n)
		for _, p := range paths {
			owners := 0
			for i := range n {
				if (Shard{I: i, N: n}).Has(p) {
					owners++
					counts[i]++
				}
			}
			if owners != 1 {
				t.Fatalf("N=%d: %s is in %d shards, want exactly 1", n, p, owners)
			}
		}
		for i, c := range counts {
			if want := len(paths) / n; c < want*8/10 || c > want*12/10 {
				t.Errorf("N=%d: shard %d has %d paths, want about %d", n, i, c, want)
			}
		}
	}
	if !(Shard{}).Has("/anything") {
		t.Error("the zero Shard must hold everything")
	}
}

// TestShardStable pins the hash: hosts running different builds must
// agree. FNV-1a 64 of "/var/mail/alice" is 0xc4de5a92b85d26c4 (computed
// independently), whose residues mod 2, 3 and 7 are 0, 1 and 3.
func TestShardStable(t *testing.T) {
	for _, tc := range []struct{ n, want int }{{1, 0}, {2, 0}, {3, 1}, {7, 3}} {
		if got := ShardOf("/var/mail/alice", tc.n); got != tc.want {
			t.Errorf("ShardOf(/var/mail/alice, %d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}
