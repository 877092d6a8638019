package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
)

// progress redraws one status line on a terminal ("\r" and erase to the
// end of the line) as the scanner reports bytes read and mailboxes done.
// A hand-written line rather than a progress bar library: the total is not
// known before the walk ends, so there is no bar to draw, and this needs
// no dependency.
type progress struct {
	w         io.Writer
	bytes     atomic.Int64
	mailboxes atomic.Int64
	start     time.Time
	stopc     chan struct{}
	wg        sync.WaitGroup
}

// progressInterval keeps redraws to ten a second: enough to look alive,
// cheap on a slow terminal.
const progressInterval = 100 * time.Millisecond

// startProgress starts redrawing on w, which must be a terminal.
func startProgress(w io.Writer) *progress {
	p := &progress{w: w, start: time.Now(), stopc: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.stopc:
				// Clear the line so that what follows starts clean.
				fmt.Fprint(p.w, "\r\x1b[K")
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
	return p
}

// add is the scanner's Options.Progress; safe from any goroutine.
func (p *progress) add(bytes int64, mailboxes int) {
	p.bytes.Add(bytes)
	p.mailboxes.Add(int64(mailboxes))
}

func (p *progress) draw() {
	b := p.bytes.Load()
	line := fmt.Sprintf("scanning: %s done, %s read",
		plural(p.mailboxes.Load(), "mailbox", "mailboxes"), humanize.IBytes(uint64(max(b, 0))))
	if secs := time.Since(p.start).Seconds(); secs >= 1 {
		line += fmt.Sprintf(" (%s/s)", humanize.IBytes(uint64(float64(max(b, 0))/secs)))
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
}

// stop ends the redraws and clears the line; a nil progress does nothing.
func (p *progress) stop() {
	if p == nil {
		return
	}
	close(p.stopc)
	p.wg.Wait()
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
