package mboxscan

import (
	"bytes"
)

// returnPathBit marks a Return-Path field, even an empty one: its
// presence says the envelope sender is known.
const returnPathBit = 1 << 9

// headerField returns the Header field named name (any case), and
// its bit for first-occurrence tracking; nil when mailkeep does not need it.
func headerField(h *Header, name []byte) (*string, uint16) {
	switch len(name) {
	case 4:
		if asciiEqualFold(name, "date") {
			return &h.Date, 1 << 0
		}
		if asciiEqualFold(name, "from") {
			return &h.From, 1 << 1
		}
	case 6:
		if asciiEqualFold(name, "status") {
			return &h.Status, 1 << 2
		}
		if asciiEqualFold(name, "x-imap") {
			return &h.XIMAP, 1 << 3
		}
	case 7:
		if asciiEqualFold(name, "subject") {
			return &h.Subject, 1 << 4
		}
	case 8:
		if asciiEqualFold(name, "x-status") {
			return &h.XStatus, 1 << 5
		}
	case 10:
		if asciiEqualFold(name, "message-id") {
			return &h.MessageID, 1 << 6
		}
		if asciiEqualFold(name, "x-keywords") {
			return &h.XKeywords, 1 << 7
		}
		if asciiEqualFold(name, "x-imapbase") {
			return &h.XIMAPBase, 1 << 8
		}
	case 11:
		if asciiEqualFold(name, "return-path") {
			return &h.ReturnPath, returnPathBit
		}
	case 12:
		if asciiEqualFold(name, "content-type") {
			return &h.ContentType, 1 << 10
		}
	case 14:
		if asciiEqualFold(name, "content-length") {
			return &h.ContentLength, 1 << 11
		}
	}
	return nil, 0
}

func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// parseHeader fills h from the header at the start of b, whose lines end
// with nl (LF, CRLF when nl is '\n', or CR), up to the first blank line
// (or the end of b). mbox and Maildir messages share it. Values are unfolded (line breaks
// before continuation lines removed, each joined with one space), not
// decoded; the first occurrence of a field wins, as the topmost
// Return-Path is the one the final delivery wrote. Lines that are not fields (a leading From_ line some tools keep,
// garbage) are passed over.
func parseHeader(b []byte, h *Header, nl byte) (seen uint16) {
	var cur *string
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, nl); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if n := len(line); nl == '\n' && n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if c := bytes.TrimSpace(line); cur != nil && len(c) > 0 {
				if *cur == "" {
					*cur = string(c)
				} else {
					*cur += " " + string(c)
				}
			}
			continue
		}
		cur = nil
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			continue
		}
		name := line[:c]
		for len(name) > 0 && (name[len(name)-1] == ' ' || name[len(name)-1] == '\t') {
			name = name[:len(name)-1] // obsolete "Subject :" syntax
		}
		dst, bit := headerField(h, name)
		if dst == nil || seen&bit != 0 {
			continue
		}
		seen |= bit
		*dst = string(bytes.TrimSpace(line[c+1:]))
		cur = dst
	}
	return seen
}
