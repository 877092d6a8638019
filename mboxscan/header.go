package mboxscan

import (
	"bytes"
	"strings"
)

// set records a header field if it is one mailkeep needs and returns its
// key for continuation lines ("" when the field is not kept). The first
// occurrence of a field wins, as in mail readers.
func (h *Header) set(name, value []byte) string {
	p := h.field(name)
	if p == nil {
		return ""
	}
	if *p == "" {
		*p = string(bytes.TrimSpace(value))
	}
	return string(name)
}

// append adds a folded continuation line to the field named name.
func (h *Header) append(name string, cont []byte) {
	p := h.field([]byte(name))
	if p == nil {
		return
	}
	c := bytes.TrimSpace(cont)
	if len(c) == 0 {
		return
	}
	if *p == "" {
		*p = string(c)
		return
	}
	*p += " " + string(c)
}

func (h *Header) field(name []byte) *string {
	if len(name) < 4 || len(name) > 14 {
		return nil
	}
	switch strings.ToLower(string(bytes.TrimRight(name, " \t"))) {
	case "date":
		return &h.Date
	case "message-id":
		return &h.MessageID
	case "from":
		return &h.From
	case "subject":
		return &h.Subject
	case "status":
		return &h.Status
	case "x-status":
		return &h.XStatus
	case "x-keywords":
		return &h.XKeywords
	case "content-length":
		return &h.ContentLength
	case "content-type":
		return &h.ContentType
	case "x-imap":
		return &h.XIMAP
	case "x-imapbase":
		return &h.XIMAPBase
	case "return-path":
		return &h.ReturnPath
	}
	return nil
}

// ParseHeader reads the fields mailkeep needs from a message header (the
// bytes up to the blank line; more is ignored). Maildir uses it.
func ParseHeader(b []byte) (h Header, complete bool) {
	var name string
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		var l []byte
		if i < 0 {
			l, b = b, nil
		} else {
			l, b = b[:i], b[i+1:]
		}
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) == 0 {
			return h, true
		}
		if l[0] == ' ' || l[0] == '\t' {
			if name != "" {
				h.append(name, l)
			}
		} else if c := bytes.IndexByte(l, ':'); c > 0 {
			name = h.set(l[:c], l[c+1:])
		} else {
			return h, true
		}
	}
	return h, false
}
