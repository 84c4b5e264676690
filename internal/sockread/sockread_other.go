//go:build !linux

package sockread

import (
	"errors"
	"net"
)

// Reader exists on Linux only (sockread_linux.go); elsewhere every
// connection is read through its net.Conn, and New returns nil.
type Reader struct{}

// ErrWouldBlock is never returned off Linux.
var ErrWouldBlock = errors.New("sockread: would block")

// New returns nil: off Linux connections are read as they are.
func New(net.Conn) *Reader { return nil }

// Session is never called off Linux (New returns no Reader).
func (r *Reader) Session(func() bool) error { panic("sockread: no Reader off Linux") }

// Read is never called off Linux (New returns no Reader).
func (r *Reader) Read([]byte) (int, error) { panic("sockread: no Reader off Linux") }

// Reads is never called off Linux (New returns no Reader).
func (r *Reader) Reads() int64 { return 0 }
