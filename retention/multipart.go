package retention

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"strings"

	"github.com/mailkeep/mailkeep/mboxscan"
)

// A multipart message whose closing delimiter ("--boundary--") is not at
// its end was most likely cut in two by an unescaped From_ line in one of
// its parts: a forwarded mailbox attached as text, written by a program
// that did not quote "From " (or whose Content-Length was wrong). Every
// mbox reader splits there, so the pieces look like messages with their
// own, usually older, dates; removing them would cut the attachment out of
// a kept message. So such a message and the ones after it, up to the one
// that ends with its closing delimiter, are decided together like Glued
// messages: removed only if all of them are.
const (
	// tailWindow is how much of a message's end is searched for its
	// closing delimiter: the epilogue after it is almost always empty.
	// A longer epilogue only makes the grouping more cautious.
	tailWindow = 8 << 10
	// maxOpenGroup bounds such a group: a multipart message that is
	// merely truncated (a delivery cut short) has no closing delimiter
	// anywhere, and holds back at most this many messages after it,
	// until they are all old enough to go.
	maxOpenGroup = 200
)

// closingDelimiter returns "\n--boundary--" for a multipart Content-Type,
// nil for anything else.
func closingDelimiter(contentType string) []byte {
	if !strings.HasPrefix(strings.ToLower(strings.TrimSpace(contentType)), "multipart/") {
		return nil
	}
	_, params, err := mime.ParseMediaType(contentType)
	b := params["boundary"]
	if err != nil || b == "" || len(b) > 200 {
		return nil
	}
	return []byte("\n--" + b + "--")
}

// grouper cuts the stream of decisions into groups that go or stay
// together: a message with the Glued ones after it, and a multipart message
// that does not end with its closing delimiter with the messages up to the
// first one whose end has that delimiter, if one does within maxOpenGroup
// messages. Messages after an opener are held (tentative) until that is
// known; if none closes it, they are taken back and grouped afresh, so a
// merely truncated message changes nothing. Each message opens at most
// once and its tail is read at most once, so the work is linear.
type grouper struct {
	p      *mboxPruner
	decide func(group []decision) error

	group     []decision // the group being built
	open      []byte     // the closing delimiter awaited, or nil
	tentative []decision // the messages after the opener, while open
	scratch   [tailWindow]byte
}

func (g *grouper) add(d decision) error {
	queue := []decision{d}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if g.open != nil {
			g.tentative = append(g.tentative, d)
			closed, err := g.p.tailHas(&g.tentative[len(g.tentative)-1], g.open)
			if err != nil {
				return err
			}
			switch {
			case closed:
				g.group = append(g.group, g.tentative...)
				g.tentative, g.open = nil, nil
				if err := g.checkOpener(); err != nil {
					return err
				}
			case len(g.tentative) >= maxOpenGroup:
				// Never closed: truncated, not split. Group the held
				// messages as if the opener were an ordinary message.
				back := g.tentative
				g.tentative, g.open = nil, nil
				queue = append(back, queue...)
			}
			continue
		}
		if len(g.group) > 0 && (!d.glued() || g.group[len(g.group)-1].m.Pseudo) {
			if err := g.decide(g.group); err != nil {
				return err
			}
			g.group = g.group[:0]
		}
		g.group = append(g.group, d)
		if err := g.checkOpener(); err != nil {
			return err
		}
	}
	return nil
}

// checkOpener opens the group when its last message is a multipart message
// whose end lacks its closing delimiter.
func (g *grouper) checkOpener() error {
	d := &g.group[len(g.group)-1]
	delim := closingDelimiter(d.m.Header.ContentType)
	if delim == nil || d.m.Pseudo {
		return nil
	}
	// Most multipart messages end properly, and an opener's tail is not
	// needed again: read it into scratch rather than keep it.
	tail := d.tail
	if tail == nil {
		var err error
		if tail, err = g.p.readTail(d.m, g.scratch[:]); err != nil {
			return err
		}
	}
	if !bytes.Contains(tail, delim) {
		g.open = delim
	}
	return nil
}

// flush decides what is left at the end of the mailbox.
func (g *grouper) flush() error {
	for g.open != nil {
		back := g.tentative
		g.tentative, g.open = nil, nil
		for _, d := range back {
			if err := g.add(d); err != nil {
				return err
			}
		}
	}
	if len(g.group) > 0 {
		if err := g.decide(g.group); err != nil {
			return err
		}
		g.group = g.group[:0]
	}
	return nil
}

// tailHas reports whether delim occurs in the last tailWindow bytes of d's
// span, reading them once.
func (p *mboxPruner) tailHas(d *decision, delim []byte) (bool, error) {
	if d.tail == nil {
		tail, err := p.readTail(d.m, make([]byte, tailWindow))
		if err != nil {
			return false, err
		}
		d.tail = tail
	}
	return bytes.Contains(d.tail, delim), nil
}

// readTail reads the last tailWindow bytes of m's span (all of a shorter
// one) into buf, which has room for them.
func (p *mboxPruner) readTail(m *mboxscan.Message, buf []byte) ([]byte, error) {
	n := min(m.Length, tailWindow)
	buf = buf[:n]
	if _, err := p.f.ReadAt(buf, m.Offset+m.Length-n); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read the end of the message at offset %d: %w", m.Offset, err)
	}
	return buf, nil
}
