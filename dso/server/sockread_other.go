//go:build !linux

package server

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
)

// sockReader exists on Linux only (sockread_linux.go); elsewhere every
// connection is read through its net.Conn.
type sockReader struct {
	rc      syscall.RawConn
	session bool
	reads   atomic.Int64
}

// errWouldBlock is never returned off Linux.
var errWouldBlock = errors.New("would block")

func (r *sockReader) enter(int) {}

func (r *sockReader) Read(p []byte) (int, error) { panic("server: sockReader off Linux") }

// newSockReader returns nil: off Linux connections are read as they are.
func newSockReader(net.Conn) *sockReader { return nil }
