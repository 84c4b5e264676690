//go:build linux

package sockread

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Reader reads a plain TCP connection's socket through its syscall.RawConn
// (see the package comment). It is an io.Reader, meant to be wrapped in a
// bufio.Reader whose buffered messages the session function handles. One
// goroutine at a time may use it.
type Reader struct {
	rc      syscall.RawConn
	fd      int  // the socket, while session
	session bool // inside a read session: do not block
	skip    bool // the last read of the session left the socket empty: wait first

	body  func() bool           // the session function (Session's argument)
	entry func(fd uintptr) bool // RawConn.Read's function, made once

	msg syscall.Msghdr // recvmsg's arguments, reused
	iov syscall.Iovec
	oob [32]byte // room for the TCP_INQ control message

	reads atomic.Int64 // read system calls made
}

// ErrWouldBlock is Read's answer, inside a read session, when the socket
// has nothing to read: the session function should return false, to be
// called again once the socket is readable.
var ErrWouldBlock error = syscall.EAGAIN

// tcpInq is TCP_INQ (linux/tcp.h), the socket option and the type of its
// control message (TCP_CM_INQ).
const tcpInq = 36

// New returns a Reader for nc, or nil if nc is not a plain TCP connection
// (TLS, a pipe, ...), the kernel lacks TCP_INQ, or SetDisabled is on; nc
// is then to be read as it is.
func New(nc net.Conn) *Reader {
	tc, ok := nc.(*net.TCPConn)
	if !ok || disabled.Load() {
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
	r := &Reader{rc: rc}
	r.entry = func(fd uintptr) bool {
		r.fd, r.session, r.skip = int(fd), true, false
		return r.body()
	}
	return r
}

// Session runs body inside a read session, in which Read never blocks: it
// returns ErrWouldBlock when the socket has nothing (more) to read. body
// returns false to wait until the socket is readable and be called again,
// true to end the session. Session returns the wait's error: the
// connection closed, or its read deadline passed. body must not close the
// connection (Close waits for the session to end).
func (r *Reader) Session(body func() bool) error {
	r.body = body
	err := r.rc.Read(r.entry)
	r.session, r.body = false, nil
	return err
}

// Reads returns the read system calls made so far.
func (r *Reader) Reads() int64 { return r.reads.Load() }

// read is one recvmsg system call (retried on EINTR). It returns the bytes
// the socket holds after it as TCP_INQ tells them (not 0 after a FIN), or
// -1 if the answer lacks them.
func (r *Reader) read(fd int, p []byte) (n, inq int, err error) {
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
// closed its side. In a session it returns ErrWouldBlock instead of
// waiting; outside one it waits, and returns the RawConn's error (closed,
// deadline exceeded) as the net.Conn's Read would.
func (r *Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !r.session {
		return r.readWait(p)
	}
	if r.skip {
		return 0, ErrWouldBlock
	}
	n, inq, err := r.read(r.fd, p)
	if err == syscall.EAGAIN {
		return 0, ErrWouldBlock
	}
	r.skip = err == nil && n > 0 && inq == 0
	return readResult(n, err)
}

// readWait is Read outside a session: it waits for the socket as the
// net.Conn's Read does. (Its own function: the closure's variables escape
// to the heap, which Read's session path must not pay for.)
func (r *Reader) readWait(p []byte) (int, error) {
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
