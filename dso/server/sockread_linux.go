//go:build linux

package server

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// sockReader reads a plain TCP connection's socket through its
// syscall.RawConn and spares, between calls, the read that would fail
// with EAGAIN. The net package's Read clears the socket's readiness and
// then always tries the socket before waiting for the runtime's poller,
// so a server answering one call at a time on a connection pays two reads
// per call, the second one empty.
//
// readSock runs the connection's frames inside read sessions: one
// RawConn.Read, whose function reads the socket without blocking
// (session set; errWouldBlock when nothing is there) and handles what it
// read. Within a session the readiness of the socket is never cleared.
// Each read is a recvmsg with the socket option TCP_INQ, whose answer
// tells how many bytes the socket still holds after the read, and not 0
// once the peer's FIN has arrived (tcp(7)): after a read that left the
// socket empty, any byte or FIN arriving later raises a readiness event
// the session's wait will see, so the next read waits for the poller
// (errWouldBlock at once, the function returns false) instead of trying
// the socket. (A short read alone would not do: a FIN that came with the
// last bytes raises no further event.) Every entry of the function (a new
// session, or a wait's end) tries the socket first.
//
// Outside a session (readOne's slow path: large, oversized and empty
// frames) Read blocks as the net.Conn's would. Deadlines, Close and the
// connection's errors behave as on the net.Conn: the waits are the
// runtime poller's own.
type sockReader struct {
	rc      syscall.RawConn
	fd      int  // the socket, while session
	session bool // inside a read session: do not block
	skip    bool // the last read of the session left the socket empty: wait first

	msg syscall.Msghdr // recvmsg's arguments, reused
	iov syscall.Iovec
	oob [32]byte // room for the TCP_INQ control message

	// reads counts the read system calls made, for the tests.
	reads atomic.Int64
}

// errWouldBlock is sockReader's answer, inside a read session, when the
// socket has nothing to read.
var errWouldBlock = syscall.EAGAIN

// tcpInq is TCP_INQ (linux/tcp.h), the socket option and the type of its
// control message (TCP_CM_INQ).
const tcpInq = 36

// newSockReader returns a sockReader for nc, or nil if nc is not a plain
// TCP connection (TLS, a pipe, ...) or the kernel lacks TCP_INQ (before
// 4.18); nc is then read as it is.
func newSockReader(nc net.Conn) *sockReader {
	tc, ok := nc.(*net.TCPConn)
	if !ok || plainSocketReads.Load() {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_TCP, tcpInq, 1)
	}); err != nil || serr != nil {
		return nil
	}
	return &sockReader{rc: rc}
}

// enter starts (or resumes after a wait) a read session on fd: the next
// read tries the socket.
func (r *sockReader) enter(fd int) {
	r.fd, r.session, r.skip = fd, true, false
}

// read is one recvmsg system call (retried on EINTR). It returns the
// bytes the socket holds after it as TCP_INQ tells them (not 0 after a
// FIN), or -1 if the answer lacks them.
func (r *sockReader) read(fd int, p []byte) (n, inq int, err error) {
	r.iov.Base = &p[0]
	r.iov.SetLen(len(p))
	r.msg.Iov = &r.iov
	r.msg.Iovlen = 1
	r.msg.Control = &r.oob[0]
	for {
		r.msg.SetControllen(len(r.oob))
		r.reads.Add(1)
		m, _, e := syscall.Syscall(syscall.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&r.msg)), 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, 0, e
		}
		inq = -1
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&r.oob[0]))
		if r.msg.Controllen >= uint64(syscall.CmsgLen(4)) && h.Level == syscall.SOL_TCP && h.Type == tcpInq && h.Len >= uint64(syscall.CmsgLen(4)) {
			inq = int(*(*int32)(unsafe.Pointer(&r.oob[syscall.CmsgLen(0)])))
		}
		return int(m), inq, nil
	}
}

// Read reads at most len(p) bytes; it returns io.EOF once the peer has
// closed its side. In a session it returns errWouldBlock instead of
// waiting; outside one it waits, and returns the RawConn's error (closed,
// deadline exceeded) as the net.Conn's Read would.
func (r *sockReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !r.session {
		return r.readWait(p)
	}
	if r.skip {
		return 0, errWouldBlock
	}
	n, inq, err := r.read(r.fd, p)
	if err == syscall.EAGAIN {
		return 0, errWouldBlock
	}
	r.skip = err == nil && n > 0 && inq == 0
	return readResult(n, err)
}

// readWait is Read outside a session: it waits for the socket as the
// net.Conn's Read does. (Its own function: the closure's variables escape
// to the heap, which Read's session path must not pay for.)
func (r *sockReader) readWait(p []byte) (int, error) {
	var n int
	var serr error
	err := r.rc.Read(func(fd uintptr) bool {
		n, _, serr = r.read(int(fd), p)
		return serr != syscall.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return readResult(n, serr)
}

// readResult is a read's result as io.Reader has it.
func readResult(n int, err error) (int, error) {
	switch {
	case err != nil:
		return 0, os.NewSyscallError("recvmsg", err)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
