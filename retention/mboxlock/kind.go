package mboxlock

import (
	"errors"
	"fmt"
	"strings"
)

// Kind names one way of locking an mbox.
type Kind string

// The lock kinds delivery agents take. Which ones a host needs depends on
// its agents: see the package documentation.
const (
	// Dotlock is the file <mbox>.lock, created exclusively next to the mbox.
	Dotlock Kind = "dotlock"
	// Fcntl is a whole-file fcntl write lock (taken here as an OFD lock).
	Fcntl Kind = "fcntl"
	// Flock is a BSD flock(2) exclusive lock.
	Flock Kind = "flock"
)

// DefaultKinds is what Postfix local(8) on Linux, Dovecot and procmail take.
var DefaultKinds = []Kind{Dotlock, Fcntl}

// ParseKinds parses lock kinds given as a list whose elements may
// themselves be comma-separated, so both {"dotlock,fcntl"} (a flag) and
// {"dotlock", "fcntl"} (a config array) work. Spaces around names are
// ignored and case does not matter. It rejects an unknown kind, a kind
// named twice and an empty list.
func ParseKinds(list []string) ([]Kind, error) {
	var kinds []Kind
	for _, item := range list {
		for name := range strings.SplitSeq(item, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			kinds = append(kinds, Kind(name))
		}
	}
	if len(kinds) == 0 {
		return nil, errors.New("no lock kinds given (want dotlock, fcntl or flock)")
	}
	if err := checkKinds(kinds); err != nil {
		return nil, err
	}
	return kinds, nil
}

// checkKinds rejects unknown and repeated kinds.
func checkKinds(kinds []Kind) error {
	seen := make(map[Kind]bool, len(kinds))
	for _, k := range kinds {
		switch k {
		case Dotlock, Fcntl, Flock:
		default:
			return fmt.Errorf("unknown lock kind %q (want dotlock, fcntl or flock)", string(k))
		}
		if seen[k] {
			return fmt.Errorf("lock kind %q given twice", string(k))
		}
		seen[k] = true
	}
	return nil
}
