// Command genmbox writes realistic test mailboxes for benchmarks: a big
// mbox file, or a Maildir with many messages.
//
//	go run ./testdata/gen/genmbox -size 1GiB -out /tmp/big.mbox
//	go run ./testdata/gen/genmbox -maildir /tmp/Maildir -count 100000
//
// The mbox holds text messages whose bodies carry a few escaped ">From "
// lines, a third of them with a base64 attachment of 10-300 KB (about
// 15,000 messages per GiB). Messages are in delivery order; the first
// -old fraction of the bytes is dated two to three years back, the rest
// within the last year, so a prune of "older than a year" removes about
// that fraction. Maildir messages are small, named with ",S=size" and
// ":2,S" (some ":2,FS", some unread in new/), with the mtime set to the
// received date. The output is the same for the same -seed.
package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	size := flag.String("size", "64MiB", "mbox size to write (bytes, or with KiB/MiB/GiB, KB/MB/GB)")
	out := flag.String("out", "", "mbox file to write")
	maildir := flag.String("maildir", "", "Maildir to create (instead of an mbox)")
	count := flag.Int("count", 100_000, "number of Maildir messages")
	old := flag.Float64("old", 0.5, "fraction of the bytes (mbox) or messages (Maildir) dated 2-3 years back")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()

	g := newGen(*seed)
	var err error
	switch {
	case *maildir != "":
		err = g.writeMaildir(*maildir, *count, *old)
	case *out != "":
		var n int64
		if n, err = parseSize(*size); err == nil {
			err = g.writeMbox(*out, n, *old)
		}
	default:
		err = errors.New("give -out FILE or -maildir DIR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genmbox:", err)
		os.Exit(1)
	}
}

// parseSize reads 1GiB, 64MiB, 500KB, 1000.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || f < 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return int64(f * float64(u.mult)), nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n, nil
}

type gen struct {
	rng   *rand.Rand
	lines []string // body text lines
	b64   string   // base64 lines, 77 bytes each with the newline
	now   time.Time
	seq   int
}

var words = strings.Fields(`the of and to in is that for it as with was on be by this are or
from at have an but not which were all they their has been one more will would there
mailbox server message quota backup disk limit archive please thanks regards meeting
report attached review monday friday project budget deadline update question answer`)

func newGen(seed uint64) *gen {
	g := &gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	for range 4096 {
		var b strings.Builder
		for b.Len() < 40+g.rng.IntN(30) {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[g.rng.IntN(len(words))])
		}
		g.lines = append(g.lines, b.String())
	}
	raw := make([]byte, 57*8192) // 8192 base64 lines of 76 characters
	for i := range raw {
		raw[i] = byte(g.rng.Uint32())
	}
	var b strings.Builder
	for i := 0; i < len(raw); i += 57 {
		b.WriteString(base64.StdEncoding.EncodeToString(raw[i : i+57]))
		b.WriteByte('\n')
	}
	g.b64 = b.String()
	return g
}

// date returns a received date: old ones 2-3 years back, recent ones
// within the last year, increasing with progress (0..1) inside each part.
func (g *gen) date(old bool, progress float64) time.Time {
	day := 24 * time.Hour
	jitter := time.Duration(g.rng.IntN(3600)) * time.Second
	if old {
		return g.now.Add(-3*365*day + time.Duration(progress*365)*day + jitter)
	}
	return g.now.Add(-365*day + time.Duration(progress*360)*day + jitter)
}

// message writes one message (header and body, no From_ line).
func (g *gen) message(b *strings.Builder, d time.Time, attach bool, textLines int) {
	g.seq++
	user := fmt.Sprintf("user%d@example.org", g.rng.IntN(500))
	fmt.Fprintf(b, "Return-Path: <%s>\n", user)
	fmt.Fprintf(b, "Received: from mx%d.example.org (mx.example.org [192.0.2.%d])\n\tby mail.example.net with ESMTPS id %08x\n\tfor <alice@example.net>; %s\n",
		g.rng.IntN(9), g.rng.IntN(250), g.rng.Uint32(), d.Format(time.RFC1123Z))
	fmt.Fprintf(b, "Date: %s\n", d.Add(-time.Minute).Format(time.RFC1123Z))
	fmt.Fprintf(b, "From: User <%s>\nTo: Alice <alice@example.net>\n", user)
	fmt.Fprintf(b, "Subject: %s %s %d\n", words[g.rng.IntN(len(words))], words[g.rng.IntN(len(words))], g.seq)
	fmt.Fprintf(b, "Message-ID: <%d.%08x@example.org>\nMIME-Version: 1.0\n", g.seq, g.rng.Uint32())
	if g.rng.IntN(3) > 0 {
		b.WriteString("Status: RO\n")
	}
	boundary := fmt.Sprintf("=_b%08x", g.rng.Uint32())
	if attach {
		fmt.Fprintf(b, "Content-Type: multipart/mixed; boundary=\"%s\"\n\n--%s\nContent-Type: text/plain; charset=utf-8\n\n", boundary, boundary)
	} else {
		b.WriteString("Content-Type: text/plain; charset=utf-8\n\n")
	}
	for range textLines {
		switch g.rng.IntN(400) {
		case 0:
			b.WriteString(">From the desk of the director: nothing new.\n") // escaped
		case 1:
			b.WriteString("\n")
		}
		b.WriteString(g.lines[g.rng.IntN(len(g.lines))])
		b.WriteByte('\n')
	}
	if attach {
		n := (10_000 + g.rng.IntN(290_000)) / 77 // 10-300 KB of base64
		start := g.rng.IntN(len(g.b64)/77-n) * 77
		fmt.Fprintf(b, "\n--%s\nContent-Type: application/octet-stream; name=\"file%d.bin\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"file%d.bin\"\n\n",
			boundary, g.seq, g.seq)
		for n > 0 { // the pool may be shorter than the attachment
			k := min(n, len(g.b64)/77-start/77)
			b.WriteString(g.b64[start : start+k*77])
			n -= k
			start = 0
		}
		fmt.Fprintf(b, "\n--%s--\n", boundary)
	}
}

func (g *gen) writeMbox(path string, size int64, oldFrac float64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var written int64
	var b strings.Builder
	oldBytes := int64(float64(size) * oldFrac)
	for written < size {
		old := written < oldBytes
		var progress float64
		if old {
			progress = float64(written) / float64(max(oldBytes, 1))
		} else {
			progress = float64(written-oldBytes) / float64(max(size-oldBytes, 1))
		}
		d := g.date(old, progress)
		b.Reset()
		// asctime, as delivery agents write it; zone-less: local time.
		fmt.Fprintf(&b, "From user%d@example.org %s\n", g.rng.IntN(500), d.Format("Mon Jan _2 15:04:05 2006"))
		g.message(&b, d, g.rng.IntN(3) == 0, 20+g.rng.IntN(400))
		b.WriteByte('\n') // the blank line before the next From_ line
		n, err := w.WriteString(b.String())
		if err != nil {
			f.Close()
			return err
		}
		written += int64(n)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (g *gen) writeMaildir(dir string, count int, oldFrac float64) error {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	var b strings.Builder
	oldCount := int(float64(count) * oldFrac)
	for i := range count {
		old := i < oldCount
		var progress float64
		if old {
			progress = float64(i) / float64(max(oldCount, 1))
		} else {
			progress = float64(i-oldCount) / float64(max(count-oldCount, 1))
		}
		d := g.date(old, progress)
		b.Reset()
		g.message(&b, d, false, 5+g.rng.IntN(40))
		data := b.String()
		base := fmt.Sprintf("%d.M%dP%d.bench,S=%d", d.Unix(), g.rng.IntN(1_000_000), 4000+i%1000, len(data))
		var name string
		switch r := g.rng.IntN(20); {
		case r == 0 && !old:
			name = filepath.Join(dir, "new", base)
		case r == 1:
			name = filepath.Join(dir, "cur", base+":2,FS")
		default:
			name = filepath.Join(dir, "cur", base+":2,S")
		}
		if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
			return err
		}
		if err := os.Chtimes(name, d, d); err != nil {
			return err
		}
	}
	return nil
}
