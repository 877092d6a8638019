package config

import (
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// locator finds the line of each key in a TOML file. The TOML library
// keeps one position per key name, the last one, which names the wrong
// line for a key of the first of several [[policy]] tables; so the lines
// are found here, with a light line scanner that knows tables, arrays of
// tables (numbered from 1: "policy.2.action"), dotted and quoted keys, and
// skips multi-line strings and arrays. It only has to be right for files
// that parse.
type locator struct {
	keys  []string       // in file order
	lines map[string]int // key → first line
}

func locate(data []byte) *locator {
	l := &locator{lines: map[string]int{}}
	arrays := map[string]int{} // array-of-tables path (without indices) → count
	var table []string         // current table path, with indices
	var inString string        // the closing delimiter of a multi-line string
	depth := 0                 // open brackets and braces of a value
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		s := strings.TrimSpace(line)
		if inString != "" {
			if strings.Count(s, inString)%2 == 1 {
				inString = ""
			}
			continue
		}
		if depth > 0 {
			depth += bracketDepth(s)
			continue
		}
		switch {
		case s == "" || s[0] == '#':
			continue
		case strings.HasPrefix(s, "[["):
			end := strings.Index(s, "]]")
			if end < 0 {
				continue
			}
			names := splitKey(s[2:end])
			table = l.tablePath(names, arrays, true)
			l.add(strings.Join(table, "."), n)
			continue
		case s[0] == '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				continue
			}
			table = l.tablePath(splitKey(s[1:end]), arrays, false)
			l.add(strings.Join(table, "."), n)
			continue
		}
		eq := keyEnd(s)
		if eq < 0 {
			continue
		}
		key := append(append([]string{}, table...), splitKey(s[:eq])...)
		l.add(strings.Join(key, "."), n)
		val := strings.TrimSpace(stripComment(s[eq+1:]))
		for _, delim := range []string{`"""`, `'''`} {
			if strings.HasPrefix(val, delim) && strings.Count(val, delim)%2 == 1 {
				inString = delim
			}
		}
		depth = bracketDepth(val)
	}
	return l
}

// tablePath turns a header's names into a path with array indices: the
// names before the last that name arrays of tables get their current
// index, and for [[x]] the last one gets a new one.
func (l *locator) tablePath(names []string, arrays map[string]int, array bool) []string {
	var path, plain []string
	for j, name := range names {
		plain = append(plain, name)
		path = append(path, name)
		p := strings.Join(plain, ".")
		if j == len(names)-1 && array {
			arrays[p]++
			path = append(path, strconv.Itoa(arrays[p]))
		} else if c := arrays[p]; c > 0 {
			path = append(path, strconv.Itoa(c))
		}
	}
	return path
}

func (l *locator) add(key string, line int) {
	if _, ok := l.lines[key]; !ok {
		l.lines[key] = line
		l.keys = append(l.keys, key)
	}
}

// lineOf returns the line of key (with indices), or of its closest
// enclosing table, or 0.
func (l *locator) lineOf(key string) int {
	for key != "" {
		if n, ok := l.lines[key]; ok {
			return n
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// line returns the first line of a key the library reports without
// indices (policy.foo), or 0.
func (l *locator) line(k toml.Key) int {
	want := k.String()
	for _, key := range l.keys {
		if displayKey(key) == want {
			return l.lines[key]
		}
	}
	return 0
}

// keyEnd returns the index of the '=' that ends the key, outside quotes,
// or -1.
func keyEnd(s string) int {
	var q byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '=':
			return i
		case c == '#':
			return -1
		}
	}
	return -1
}

// splitKey splits a dotted key, dropping quotes and spaces.
func splitKey(s string) []string {
	var parts []string
	var b strings.Builder
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == q {
				q = 0
			} else {
				b.WriteByte(c)
			}
		case c == '"' || c == '\'':
			q = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(b.String()))
			b.Reset()
		case c == ' ' || c == '\t':
		default:
			b.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(b.String()))
}

// outsideQuotes calls fn with each byte of s that is outside a quoted
// string, up to a comment. It returns where the comment's '#' is, or
// len(s).
func outsideQuotes(s string, fn func(c byte)) int {
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == '\\' && q == '"' {
				i++
			} else if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		case c == '#':
			return i
		default:
			fn(c)
		}
	}
	return len(s)
}

// stripComment drops a trailing comment outside quotes.
func stripComment(s string) string {
	return s[:outsideQuotes(s, func(byte) {})]
}

// bracketDepth counts [ and { minus ] and } outside quotes and comments.
func bracketDepth(s string) int {
	d := 0
	outsideQuotes(s, func(c byte) {
		switch c {
		case '[', '{':
			d++
		case ']', '}':
			d--
		}
	})
	return d
}
