package mboxscan

import (
	"context"
	"errors"
	"io"
)

// Scanner reads the messages of an mbox stream. STUB.
type Scanner struct{}

// NewScanner returns a Scanner reading r; path is used in errors. STUB.
func NewScanner(r io.Reader, path string) *Scanner { return &Scanner{} }

// Next returns the next message, or io.EOF. STUB.
func (s *Scanner) Next() (*Message, error) { return nil, io.EOF }

// Problems lists what was odd in the input. STUB.
func (s *Scanner) Problems() []string { return nil }

// ScanMbox measures the mbox file at path. STUB.
func ScanMbox(ctx context.Context, path string, opts Options) (*Mailbox, error) {
	return nil, errors.New("not implemented")
}

// LooksLikeMbox reports whether head, the first bytes of a file, starts
// like an mbox (a From_ line, possibly after blank lines). STUB.
func LooksLikeMbox(head []byte) bool { return false }
