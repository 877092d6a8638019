package retention

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Shard is this run's share of the stores when N hosts (or the N pods of
// an indexed Kubernetes CronJob) split one large shared store: a store
// belongs to shard I of N when the FNV-1a 64-bit hash of its path, mod N,
// is I. The unit is the store (an mbox file, or a Maildir root with all its
// folders), so a Maildir's folders and its maildirsize quota are never
// split between hosts. The shards of one N never overlap and together cover
// every store; the hash depends on the path alone, so every host computes
// the same split.
//
// The zero Shard (N == 0) is the whole set.
type Shard struct {
	I, N int
}

// ErrBadShard is wrapped by [ParseShard] errors.
var ErrBadShard = errors.New("bad shard")

// ParseShard parses "I/N" with 0 <= I < N (e.g. "0/4" … "3/4"). An empty
// string is the zero Shard: everything.
func ParseShard(s string) (Shard, error) {
	if strings.TrimSpace(s) == "" {
		return Shard{}, nil
	}
	is, ns, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Shard{}, fmt.Errorf("%w %q: want I/N, e.g. 0/4 (shards count from 0)", ErrBadShard, s)
	}
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	if err := errors.Join(err1, err2); err != nil {
		return Shard{}, fmt.Errorf("%w %q: want I/N with whole numbers: %w", ErrBadShard, s, err)
	}
	if n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("%w %q: want 0 <= I < N (shards count from 0: 0/%d … %d/%d)", ErrBadShard, s, max(n, 1), max(n, 1)-1, max(n, 1))
	}
	return Shard{I: i, N: n}, nil
}

// IsZero reports whether s selects everything.
func (s Shard) IsZero() bool { return s.N == 0 }

// String formats s as ParseShard reads it; "" for the zero Shard.
func (s Shard) String() string {
	if s.IsZero() {
		return ""
	}
	return strconv.Itoa(s.I) + "/" + strconv.Itoa(s.N)
}

// Set parses v into s (pflag.Value).
func (s *Shard) Set(v string) error {
	p, err := ParseShard(v)
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// Type names the flag's value type in help (pflag.Value).
func (s *Shard) Type() string { return "I/N" }

// ShardOf returns the shard, 0 to n-1, that the store at path belongs to.
// n must be at least 1.
func ShardOf(store string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(store)) // never fails
	return int(h.Sum64() % uint64(n))
}

// Has reports whether the store at path is in this shard.
func (s Shard) Has(store string) bool {
	return s.IsZero() || ShardOf(store, s.N) == s.I
}
