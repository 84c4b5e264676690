//go:build !linux

package sockio

import (
	"errors"
	"net"
)

// Socket exists on Linux only (sockio_linux.go); elsewhere every
// connection is used through its net.Conn, and New returns nil.
type Socket struct{}

// ErrWouldBlock is never returned off Linux.
var ErrWouldBlock = errors.New("sockio: would block")

// New returns nil: off Linux connections are used as they are.
func New(net.Conn) *Socket { return nil }

// Session is never called off Linux (New returns no Socket).
func (s *Socket) Session(func() bool) error { panic("sockio: no Socket off Linux") }

// Read is never called off Linux (New returns no Socket).
func (s *Socket) Read([]byte) (int, error) { panic("sockio: no Socket off Linux") }

// Write is never called off Linux (New returns no Socket).
func (s *Socket) Write([]byte) (int, error) { panic("sockio: no Socket off Linux") }

// Reads is never called off Linux (New returns no Socket).
func (s *Socket) Reads() int64 { return 0 }

// TryWrite is not available off Linux (see New).
func (s *Socket) TryWrite([]byte) (int, error) { panic("sockio: no Socket off Linux") }
