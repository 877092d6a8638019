package mboxscan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Bounds of the scanner's buffering. Headers are parsed within maxHeader
// bytes of the From_ line; a From_ line longer than maxFromLine is not one.
// Bodies are never buffered: memory is a few chunks whatever the file size.
const (
	maxFromLine = 1024
	maxHeader   = 64 << 10
	chunkSize   = 1 << 20
	// headroom in front of each chunk takes the bytes carried over from the
	// previous one (an unfinished header or From_ line).
	headroom = maxHeader + maxFromLine + 64
	// chunks in flight between the reading goroutine and the parser: the
	// read (a copy out of the page cache) and the search run on two cores.
	chunksInFlight = 4
)

// DefaultLarge is the size above which a message counts as oversized.
const DefaultLarge = 10_000_000

// ErrNotMbox is returned (inside a *ParseError) for input that holds no
// From_ line at all.
var ErrNotMbox = errors.New("not an mbox: no From_ line")

// ParseError reports where reading an mbox went wrong.
type ParseError struct {
	Path   string
	Offset int64
	Err    error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s: offset %d: %v", e.Path, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Scanner reads the messages of an mbox stream, one span at a time.
//
// A message starts at a line beginning "From " — at the start of the input
// or after a line ending — that parses as a From_ line (see
// [ParseFromLine]). A message whose Content-Length header, counted from
// the end of its header, lands exactly on such a line, on one after a
// single blank line, or on the end of the input, ends there (mboxcl and
// mboxcl2, whose bodies may hold unescaped From_ lines); otherwise it ends
// at the next From_ line. Escaped ">From " lines are body text. Line endings
// may be LF, CRLF or (old Mac files) CR.
//
// Bytes before the first From_ line are not a message: [Scanner.Leading]
// gives their length, and when they are not blank lines a problem is
// recorded. The leading bytes and the messages' spans tile the input.
//
// A Scanner is not safe for concurrent use. Call Close when stopping
// before io.EOF.
type Scanner struct {
	path string
	r    io.Reader

	// The window: buf holds the input bytes [off, off+len(buf)).
	buf []byte
	off int64
	eof bool // no input after buf
	cur *chunk

	chunks chan *chunk
	free   chan *chunk
	stop   chan struct{}
	wg     sync.WaitGroup

	// Files (io.ReaderAt) are read by parallel lanes with pread: lane i
	// reads chunks i, i+lanes, … and lists the From_ line candidates in
	// each, so reading and searching run on every core.
	ra    io.ReaderAt
	start int64 // position of r when the Scanner was made: offsets count from it
	base  int64 // offset in ra where reading (re)started: start + a seek's offset
	lanes []*lane
	k     int     // index of the next chunk to take
	cands []int32 // candidates of the window's chunk, relative to cbase
	cbase int64   // input offset of that chunk's first byte

	nl byte // line terminator: '\n', or '\r' in a CR-only file
	// nextGlued: the next message's From_ line found by search has no
	// blank line before it (see Message.Glued).
	nextGlued bool
	started   bool  // first From_ line found
	next      int64 // offset of the next message's From_ line; -1 at the end
	leading   int64
	count     int
	problems  []string
	err       error

	// Progress, when set, is called with the number of new bytes read
	// since the last call.
	Progress func(n int64)
	reported int64 // input offset up to which Progress was told
}

type chunk struct {
	mem   []byte // headroom + chunkSize
	n     int    // bytes read into mem[headroom:]
	err   error
	lane  *lane   // parallel mode: where to hand it back
	off   int64   // parallel mode: input offset of mem[headroom]
	cands []int32 // parallel mode: candidates (see candidates)
}

var chunkPool = sync.Pool{New: func() any {
	return &chunk{mem: make([]byte, headroom+chunkSize), cands: make([]int32, 0, 256)}
}}

// lane is one parallel reader: its own chunks and its output in order.
type lane struct {
	out  chan *chunk
	free chan *chunk
}

// lanes is the number of parallel readers; chunksPerLane the chunks each
// owns (one being read, one queued, one with the parser).
const (
	lanes         = 2
	chunksPerLane = 3
)

// NewScanner returns a Scanner reading r; path is used in errors. When r
// is an io.Seeker (an *os.File), a Content-Length that turns out wrong is
// handled exactly by going back; a pure stream falls back to the first
// From_ line in the body.
func NewScanner(r io.Reader, path string) *Scanner {
	s := &Scanner{path: path, r: r, nl: '\n', next: -1}
	if sk, ok := r.(io.Seeker); ok {
		s.start, _ = sk.Seek(0, io.SeekCurrent)
	}
	// A fixed set of chunks, from a pool shared by all Scanners (a spool
	// of small mailboxes would otherwise allocate megabytes per file): a
	// reader waits for the parser to hand one back.
	if ra, ok := r.(io.ReaderAt); ok {
		s.ra, s.base = ra, s.start
		s.lanes = make([]*lane, lanes)
		for i := range s.lanes {
			l := &lane{free: make(chan *chunk, chunksPerLane)}
			for range chunksPerLane {
				c := chunkPool.Get().(*chunk)
				c.lane = l
				l.free <- c
			}
			s.lanes[i] = l
		}
		s.startLanes()
		return s
	}
	s.free = make(chan *chunk, chunksInFlight+1)
	for range chunksInFlight + 1 {
		c := chunkPool.Get().(*chunk)
		c.lane = nil
		s.free <- c
	}
	s.startReader()
	return s
}

func (s *Scanner) startReader() {
	s.chunks = make(chan *chunk, chunksInFlight-1)
	s.stop = make(chan struct{})
	s.wg.Add(1)
	go func(out chan<- *chunk, stop <-chan struct{}) {
		defer s.wg.Done()
		defer close(out)
		for {
			var c *chunk
			select {
			case c = <-s.free:
			case <-stop:
				return
			}
			c.n, c.err = io.ReadAtLeast(s.r, c.mem[headroom:], chunkSize/2)
			if c.err == io.ErrUnexpectedEOF {
				c.err = io.EOF
			}
			select {
			case out <- c:
			case <-stop:
				s.recycle(c)
				return
			}
			if c.err != nil {
				return
			}
		}
	}(s.chunks, s.stop)
}

// startLanes starts the parallel readers at s.base.
func (s *Scanner) startLanes() {
	s.stop = make(chan struct{})
	s.k = 0
	for i, l := range s.lanes {
		l.out = make(chan *chunk, chunksPerLane-1)
		s.wg.Add(1)
		go func(i int, l *lane, stop <-chan struct{}) {
			defer s.wg.Done()
			defer close(l.out)
			for k := i; ; k += lanes {
				var c *chunk
				select {
				case c = <-l.free:
				case <-stop:
					return
				}
				c.off = s.base + int64(k)*chunkSize
				c.n, c.err = s.ra.ReadAt(c.mem[headroom:], c.off)
				c.cands = candidates(c.mem[headroom:headroom+c.n], c.cands[:0])
				select {
				case l.out <- c:
				case <-stop:
					s.recycle(c)
					return
				}
				if c.err != nil {
					return
				}
			}
		}(i, l, s.stop)
	}
}

// candidates appends to c the positions p in data where "From " starts
// and the byte before is a line feed, or p is 0 (the byte before lies in
// the previous chunk: the parser checks). Positions closer than 5 bytes to
// the end are not listed; the parser looks at those itself.
func candidates(data []byte, c []int32) []int32 {
	near := 0 // 'F's found close together in a row
	for i := 0; i < len(data); {
		if near == 8 {
			// 'F's keep turning up, as in base64 (one byte in 64). A From_
			// line has a space 4 bytes after its 'F' and base64 has none:
			// jump to 4 bytes before the next space.
			near = 0
			s := bytes.IndexByte(data[i:], ' ')
			if s < 0 {
				break
			}
			i += max(s-4, 0)
		}
		j := bytes.IndexByte(data[i:], 'F')
		if j < 0 {
			break
		}
		if j < 256 {
			near++
		} else {
			near = 0
		}
		k := i + j
		i = k + 1
		if k+5 <= len(data) && (k == 0 || data[k-1] == '\n') && bytes.HasPrefix(data[k:], fromPrefix) {
			c = append(c, int32(k))
		}
	}
	return c
}

// nextChunk returns the next chunk of input in order, or false at the end.
func (s *Scanner) nextChunk() (*chunk, bool) {
	if s.lanes == nil {
		c, ok := <-s.chunks
		return c, ok
	}
	c, ok := <-s.lanes[s.k%lanes].out
	s.k++
	return c, ok
}

// Close stops the reading goroutines and gives the buffers back. It does
// not close the underlying reader. The Scanner is unusable afterwards.
func (s *Scanner) Close() error {
	s.halt()
	release := func(free chan *chunk) {
		for {
			select {
			case c := <-free:
				chunkPool.Put(c)
			default:
				return
			}
		}
	}
	if s.cur != nil {
		s.recycle(s.cur)
		s.cur = nil
	}
	s.buf, s.cands = nil, nil
	if s.lanes != nil {
		for _, l := range s.lanes {
			release(l.free)
		}
	} else if s.free != nil {
		release(s.free)
	}
	if s.err == nil {
		s.err = errClosed
	}
	return nil
}

var errClosed = errors.New("mboxscan: Scanner closed")

// halt stops the reading goroutines, keeping the buffers.
func (s *Scanner) halt() {
	if s.stop != nil {
		close(s.stop)
		if s.lanes != nil {
			for _, l := range s.lanes {
				for c := range l.out {
					s.recycle(c)
				}
			}
		} else {
			for c := range s.chunks {
				s.recycle(c)
			}
		}
		s.wg.Wait()
		s.stop = nil
	}
}

// Problems lists what was odd in the input so far: leading garbage, a
// header cut at the bound, a last message without its final line ending.
func (s *Scanner) Problems() []string { return s.problems }

// Leading is the number of bytes before the first message.
func (s *Scanner) Leading() int64 { return s.leading }

// Offset is the number of input bytes consumed so far.
func (s *Scanner) Offset() int64 { return s.off + int64(len(s.buf)) }

func (s *Scanner) problemf(format string, args ...any) {
	if len(s.problems) < 20 {
		s.problems = append(s.problems, fmt.Sprintf(format, args...))
	}
}

// fill drops the bytes before keep and appends the next chunk to the
// window. It returns false at the end of the input.
func (s *Scanner) fill(keep int64) bool {
	if s.eof {
		return false
	}
	if keep < s.off {
		panic("mboxscan: fill keeps dropped bytes")
	}
	if end := s.off + int64(len(s.buf)); keep > end {
		keep = end
	}
	c, ok := s.nextChunk()
	if !ok {
		s.eof = true
		return false
	}
	var carry []byte
	if k := keep - s.off; k < int64(len(s.buf)) {
		carry = s.buf[k:]
	}
	start := headroom - len(carry)
	if start < 0 {
		// Cannot happen with the bounds above; keep correctness anyway.
		mem := make([]byte, len(carry)+c.n)
		copy(mem, carry)
		copy(mem[len(carry):], c.mem[headroom:headroom+c.n])
		s.recycle(c)
		s.buf, s.off = mem, keep
		s.cands = nil
	} else {
		copy(c.mem[start:headroom], carry)
		s.buf = c.mem[start : headroom+c.n]
		s.off = keep
		s.recycle(s.cur)
		s.cur = c
		s.cands, s.cbase = nil, 0
		if c.lane != nil {
			s.cands, s.cbase = c.cands, keep+int64(len(carry))
		}
	}
	if end := s.off + int64(len(s.buf)); s.Progress != nil && end > s.reported {
		// Bytes read again after going back are not counted twice.
		s.Progress(end - s.reported)
		s.reported = end
	}
	if c.err != nil {
		if c.err != io.EOF && s.err == nil {
			s.err = &ParseError{Path: s.path, Offset: s.off + int64(len(s.buf)), Err: c.err}
		}
		s.eof = true
	}
	return true
}

func (s *Scanner) recycle(c *chunk) {
	if c == nil {
		return
	}
	free := s.free
	if c.lane != nil {
		free = c.lane.free
	}
	select {
	case free <- c:
	default:
	}
}

// seek restarts reading at off (only on an io.Seeker).
func (s *Scanner) seek(off int64) bool {
	if s.lanes != nil {
		s.halt()
		s.recycle(s.cur)
		s.cur, s.cands = nil, nil
		s.buf, s.off, s.eof, s.base = nil, off, false, s.start+off
		s.startLanes()
		return true
	}
	sk, ok := s.r.(io.Seeker)
	if !ok {
		return false
	}
	s.halt()
	if _, err := sk.Seek(s.start+off, io.SeekStart); err != nil {
		s.err = &ParseError{Path: s.path, Offset: off, Err: err}
		return false
	}
	s.buf, s.off, s.eof = nil, off, false
	s.recycle(s.cur)
	s.cur = nil
	s.startReader()
	return true
}

// line returns the line starting at absolute offset at, without its
// terminator (and without a CR before LF), and the offset just past the
// terminator. It reads on while the line is shorter than max; ok is false
// when no terminator comes within max bytes (then end is at+max or EOF) or
// the input ends first. The window keeps everything from keep on.
func (s *Scanner) line(at, keep int64, max int) (line []byte, end int64, ok bool) {
	for {
		i := at - s.off
		if i < int64(len(s.buf)) {
			seg := s.buf[i:]
			if len(seg) > max {
				seg = seg[:max]
			}
			if j := bytes.IndexByte(seg, s.nl); j >= 0 {
				l := seg[:j]
				if s.nl == '\n' && j > 0 && l[j-1] == '\r' {
					l = l[:j-1]
				}
				return l, at + int64(j) + 1, true
			}
			if len(seg) == max {
				return nil, at + int64(max), false
			}
		}
		if !s.fill(keep) {
			i := at - s.off
			if i < int64(len(s.buf)) {
				l := s.buf[i:]
				if s.nl == '\n' && len(l) > 0 && l[len(l)-1] == '\r' {
					l = l[:len(l)-1]
				}
				return l, s.off + int64(len(s.buf)), false
			}
			return nil, at, false
		}
	}
}

// fromLineAt reports whether a valid From_ line starts at absolute offset at.
func (s *Scanner) fromLineAt(at, keep int64) bool {
	l, _, ok := s.line(at, keep, maxFromLine)
	if !ok && !s.eof || len(l) < 5 {
		return false
	}
	_, _, valid := ParseFromLine(l)
	return valid
}

// search returns the offset of the first From_ line starting in
// [from, limit), or -1 when there is none before limit or the end of the
// input. A position counts as a line start when the byte before it is a
// line terminator; from must be 0 or have that byte still in the window.
// The window keeps what it needs from the candidate on.
func (s *Scanner) search(from, limit int64) int64 {
	pos := from
	for {
		buf := s.buf
		i := pos - s.off
		end := int64(len(buf))
		if e := limit - s.off; e < end {
			end = e
		}
		for i < end {
			k := s.nextCandidate(i, end)
			if k < 0 {
				i = end
				break
			}
			i = k + 1
			if k == 0 {
				if s.off != 0 {
					continue // the window starts at a candidate already judged
				}
			} else if buf[k-1] != s.nl {
				continue
			}
			if k+5 > int64(len(buf)) && !s.eof {
				i = k // too close to the end of the window to tell: carry it
				break
			}
			if !bytes.HasPrefix(buf[k:], fromPrefix) {
				continue
			}
			at := s.off + k
			glued := !s.blankBefore(at) // before fromLineAt moves the window
			if s.fromLineAt(at, at) {
				s.nextGlued = glued
				return at
			}
			// fromLineAt may have moved the window.
			buf = s.buf
			i = at + 1 - s.off
			end = min(int64(len(buf)), limit-s.off)
		}
		pos = s.off + i
		if pos >= limit {
			return -1
		}
		// Keep the 3 bytes before pos: whether pos starts a line, and
		// whether the line before is blank (LF or CRLF).
		if !s.fill(max(pos-3, s.off)) {
			return -1
		}
	}
}

var fromPrefix = []byte("From ")

// nextCandidate returns the index in the window of the next 'F' in
// [i, end) that may start a From_ line, or -1. In a chunk read by a lane
// it takes the lane's list; bytes carried over from the previous chunk and
// the last 4 bytes, which the list leaves out, it searches itself.
func (s *Scanner) nextCandidate(i, end int64) int64 {
	buf := s.buf
	if s.cands == nil || s.nl != '\n' {
		if j := bytes.IndexByte(buf[i:end], 'F'); j >= 0 {
			return i + int64(j)
		}
		return -1
	}
	cb := s.cbase - s.off // where the chunk starts in the window
	if i < cb {
		if j := bytes.IndexByte(buf[i:min(end, cb)], 'F'); j >= 0 {
			return i + int64(j)
		}
		i = cb
	}
	if i >= end {
		return -1
	}
	c := s.cands
	n, _ := slices.BinarySearch(c, int32(i-cb))
	if n < len(c) && cb+int64(c[n]) < end {
		return cb + int64(c[n])
	}
	if t := max(i, int64(len(buf))-4); t < end {
		if j := bytes.IndexByte(buf[t:end], 'F'); j >= 0 {
			return t + int64(j)
		}
	}
	return -1
}

// blankBefore reports whether the line before the one starting at at is
// empty, as every mbox writer leaves it. It is true when that is unknown.
func (s *Scanner) blankBefore(at int64) bool {
	k := at - s.off
	if at == 0 || k < 2 {
		return true
	}
	if s.buf[k-2] == s.nl {
		return true
	}
	return k >= 3 && s.nl == '\n' && s.buf[k-2] == '\r' && s.buf[k-3] == '\n'
}

// Next returns the next message, or io.EOF after the last one. Other
// errors are *ParseError: ErrNotMbox for input without a From_ line, or
// the read error.
func (s *Scanner) Next() (*Message, error) {
	if s.err != nil {
		return nil, s.err
	}
	if !s.started {
		s.started = true
		s.fill(0)
		s.detectLineEnding()
		s.next = s.search(0, 1<<63-1)
		if s.err != nil {
			return nil, s.err
		}
		if s.next < 0 {
			end := s.off + int64(len(s.buf))
			s.leading = end
			if end == 0 {
				return nil, io.EOF // an empty file is an empty mbox
			}
			if s.blank(0, end) {
				return nil, io.EOF
			}
			s.err = &ParseError{Path: s.path, Offset: 0, Err: ErrNotMbox}
			return nil, s.err
		}
		s.leading = s.next
		if s.next > 0 && !s.blank(0, s.next) {
			s.problemf("%d bytes of leading garbage before the first From_ line", s.next)
		}
	}
	if s.next < 0 {
		return nil, io.EOF
	}
	m, err := s.message(s.next)
	if err != nil {
		return nil, err
	}
	s.count++
	return m, nil
}

// blank reports whether the window bytes [from, to) are only line endings
// and white space (that much is not garbage before the first message).
func (s *Scanner) blank(from, to int64) bool {
	if from < s.off || to > s.off+int64(len(s.buf)) {
		return false // no longer in the window: it was long, so not blank
	}
	return len(bytes.TrimSpace(s.buf[from-s.off:to-s.off])) == 0
}

func (s *Scanner) detectLineEnding() {
	b := s.buf
	if len(b) > maxHeader {
		b = b[:maxHeader]
	}
	lf := bytes.IndexByte(b, '\n')
	cr := bytes.IndexByte(b, '\r')
	if cr >= 0 && (lf < 0 || cr+1 < lf) {
		s.nl = '\r'
	}
}

// message reads the message whose From_ line starts at start.
func (s *Scanner) message(start int64) (*Message, error) {
	fl, pos, _ := s.line(start, start, maxFromLine)
	m := &Message{Offset: start, FromLine: string(fl), HasEnvelope: true, Glued: s.nextGlued}
	s.nextGlued = false
	m.Sender, m.Received, _ = ParseFromLine(fl)
	m.Saved = m.Received

	// The header, within maxHeader bytes of the From_ line: find where it
	// ends, then parse it from the window, which keeps it (keep = start).
	hdrStart := pos
	bodyStart := int64(-1)
	ended := int64(-1) // a From_ line where the header should be: message ends
	for pos-start < maxHeader {
		room := maxHeader - (pos - start)
		l, end, ok := s.line(pos, start, int(room))
		if !ok && (!s.eof || end-pos >= room) {
			break // header too long: truncated
		}
		if len(l) == 0 {
			bodyStart = end // the blank line, or the end of the input
			break
		}
		if bytes.HasPrefix(l, fromPrefix) {
			if _, _, valid := ParseFromLine(l); valid {
				ended = pos
				break
			}
		}
		if l[0] != ' ' && l[0] != '\t' && bytes.IndexByte(l, ':') <= 0 {
			bodyStart = pos // not a header line: the body starts here
			break
		}
		pos = end
		if !ok { // last line, without a terminator
			bodyStart = end
			break
		}
	}
	parseHeader(s.buf[hdrStart-s.off:pos-s.off], &m.Header, s.nl)
	if bodyStart < 0 && ended < 0 {
		m.HeaderTruncated = true
		s.problemf("message at offset %d: header longer than %d bytes, cut there", start, maxHeader)
		bodyStart = pos
	}
	if s.count == 0 && (m.Header.XIMAP != "" || bytes.Contains([]byte(m.Header.Subject), []byte("FOLDER INTERNAL DATA"))) {
		m.Pseudo = true
	}

	var next int64
	switch {
	case ended >= 0:
		next = ended
	default:
		next = s.bodyEnd(start, bodyStart, m.Header.ContentLength)
	}
	if s.err != nil {
		return nil, s.err
	}
	end := next
	if next < 0 {
		end = s.off + int64(len(s.buf))
		if end > start && s.tailByte(end-1) != s.nl {
			s.problemf("last message (offset %d) does not end with a line ending", start)
		}
	}
	m.Length = end - start
	s.next = next
	return m, nil
}

func (s *Scanner) tailByte(at int64) byte {
	if i := at - s.off; i >= 0 && i < int64(len(s.buf)) {
		return s.buf[i]
	}
	return 0
}

// bodyEnd finds where the message whose body starts at bodyStart ends:
// the offset of the next From_ line, or -1 at the end of the input.
func (s *Scanner) bodyEnd(start, bodyStart int64, contentLength string) int64 {
	const noLimit = 1<<63 - 1
	cl, err := strconv.ParseInt(contentLength, 10, 64)
	if contentLength == "" || err != nil || cl < 0 {
		return s.search(bodyStart, noLimit)
	}
	target := bodyStart + cl
	// The first From_ line before the target, in case Content-Length
	// proves wrong; the window keeps it while that costs little.
	first := s.search(bodyStart, target)
	if s.err != nil {
		return -1
	}
	keep := target - 1 // the byte before the target says if it starts a line
	if first >= 0 && target-first < headroom/2 {
		keep = first
	}
	next, ok := s.landsOnBoundary(target, max(keep, s.off))
	if s.err != nil {
		return -1
	}
	if ok {
		// The writer's own boundary; a From_ line search may have met in
		// the body says nothing about it.
		s.nextGlued = false
		return next
	}
	if first >= 0 {
		if first < s.off && !s.seek(first) {
			// A pure stream: the bytes are gone. Say so; go on from here.
			s.problemf("message at offset %d: Content-Length wrong and input not seekable; split at the next From_ line", start)
			return s.search(s.off, noLimit)
		}
		return first
	}
	if target > s.off+int64(len(s.buf)) {
		s.problemf("message at offset %d: Content-Length %d runs past the end of the file", start, cl)
		return -1
	}
	return s.search(target, noLimit)
}

// landsOnBoundary checks a Content-Length target: the end of the input,
// a From_ line, or one blank line then a From_ line or the end. The window
// keeps the bytes from keep on (keep <= target).
func (s *Scanner) landsOnBoundary(target, keep int64) (next int64, ok bool) {
	for target >= s.off+int64(len(s.buf)) && !s.eof {
		if !s.fill(max(min(keep, s.off+int64(len(s.buf))-1), s.off)) {
			break
		}
	}
	if target > s.off+int64(len(s.buf)) {
		return 0, false
	}
	if s.eof && target == s.off+int64(len(s.buf)) {
		return -1, true
	}
	// Counted to the middle of a line: not where the writer ended it.
	if i := target - 1 - s.off; target > 0 && (i < 0 || s.buf[i] != s.nl) {
		return 0, false
	}
	if s.fromLineAt(target, keep) {
		return target, true
	}
	l, end, ok := s.line(target, keep, 3)
	if ok && len(l) == 0 {
		if s.eof && end == s.off+int64(len(s.buf)) {
			return -1, true
		}
		if s.fromLineAt(end, keep) {
			return end, true
		}
	}
	return 0, false
}

// ScanMbox measures the mbox file at path. It reads the file once,
// without changing its access time (see [OpenReadOnly]), and never writes.
// The file must be a regular file; a symlink is refused.
func ScanMbox(ctx context.Context, path string, opts Options) (*Mailbox, error) {
	large := opts.Large
	if large <= 0 {
		large = DefaultLarge
	}
	f, err := OpenMboxReadOnly(path)
	if errors.Is(err, ErrWouldMarkRead) {
		return sizeOnly(path, err)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type())
	}
	mb := &Mailbox{Path: path, Format: FormatMbox, Store: path, ModTime: fi.ModTime()}
	FillOwner(mb, fi)
	if j := InplaceJournal(f.File); j != "" {
		mb.Problems = append(mb.Problems, "an in-place rewrite was interrupted and the mailbox is half copied: run mailkeep prune with the journal "+j+" to finish it")
	}
	sc := NewScanner(f, path)
	defer sc.Close()
	if opts.Progress != nil {
		sc.Progress = func(n int64) { opts.Progress(n, 0) }
	}
	for n := 0; ; n++ {
		if n%256 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		mb.add(m, large)
	}
	mb.Bytes = sc.Offset()
	mb.Problems = append(mb.Problems, sc.Problems()...)
	return mb, nil
}

// sizeOnly measures an mbox that may not be read (ErrWouldMarkRead) by
// what lstat says: its size, which the limit is about, and its owner; the
// messages are not counted, and Problems says why.
func sizeOnly(path string, why error) (*Mailbox, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type())
	}
	mb := &Mailbox{Path: path, Format: FormatMbox, Store: path, ModTime: fi.ModTime(), Bytes: fi.Size()}
	FillOwner(mb, fi)
	mb.Problems = append(mb.Problems, "messages not counted, size from stat: "+errors.Unwrap(why).Error())
	return mb, nil
}

// LooksLikeMbox reports whether head, the first bytes of a file, starts
// like an mbox: a From_ line, possibly after blank lines.
func LooksLikeMbox(head []byte) bool {
	b := bytes.TrimLeft(head, " \t\r\n")
	if !bytes.HasPrefix(b, []byte("From ")) {
		return false
	}
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		b = b[:i]
	}
	_, _, ok := ParseFromLine(b)
	return ok
}

// InplaceXattr is the extended attribute retention's in-place rewrite sets
// on a mailbox, naming its journal, for as long as the mailbox is half
// copied.
const InplaceXattr = "user.mailkeep.inplace-journal"

// InplaceJournal returns the journal an interrupted in-place rewrite left
// on f, "" when there is none (or the file system has no extended
// attributes).
func InplaceJournal(f *os.File) string {
	buf := make([]byte, 4096)
	n, err := unix.Fgetxattr(int(f.Fd()), InplaceXattr, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}
