//go:build linux

package sockio

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Socket reads and writes a plain TCP connection's socket through its
// syscall.RawConn (see the package comment). It is an io.Reader, meant to
// be wrapped in a bufio.Reader whose buffered messages the session
// function handles, and an io.Writer. One goroutine at a time may read,
// and one at a time may write.
type Socket struct {
	rc syscall.RawConn

	// Reading.
	fd      int  // the socket, while session
	session bool // inside a read session: do not block
	skip    bool // the last read of the session left the socket empty: wait first

	body  func() bool           // the session function (Session's argument)
	entry func(fd uintptr) bool // RawConn.Read's function, made once

	msg syscall.Msghdr // recvmsg's arguments, reused
	iov syscall.Iovec
	oob [32]byte // room for the TCP_INQ control message

	reads atomic.Int64 // read system calls made

	// Writing: Write's state, for its function (made once).
	wbuf   []byte
	wn     int
	werr   error
	wentry func(fd uintptr) bool
}

// ErrWouldBlock is Read's answer, inside a read session, when the socket
// has nothing to read: the session function should return false, to be
// called again once the socket is readable.
var ErrWouldBlock error = syscall.EAGAIN

// tcpInq is TCP_INQ (linux/tcp.h), the socket option and the type of its
// control message (TCP_CM_INQ).
const tcpInq = 36

// New returns a Socket for nc, or nil if nc is not a plain TCP connection
// (TLS, a pipe, ...), the kernel lacks TCP_INQ, or SetDisabled is on; nc
// is then to be used as it is.
func New(nc net.Conn) *Socket {
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
	s := &Socket{rc: rc}
	s.entry = func(fd uintptr) bool {
		s.fd, s.session, s.skip = int(fd), true, false
		return s.body()
	}
	s.wentry = s.writeSome
	return s
}

// Session runs body inside a read session, in which Read never blocks: it
// returns ErrWouldBlock when the socket has nothing (more) to read. body
// returns false to wait until the socket is readable and be called again,
// true to end the session. Session returns the wait's error: the
// connection closed, or its read deadline passed. body must not close the
// connection (Close waits for the session to end).
func (s *Socket) Session(body func() bool) error {
	s.body = body
	err := s.rc.Read(s.entry)
	s.session, s.body = false, nil
	return err
}

// Reads returns the read system calls made so far.
func (s *Socket) Reads() int64 { return s.reads.Load() }

// read is one recvmsg system call (retried on EINTR). It returns the bytes
// the socket holds after it as TCP_INQ tells them (not 0 after a FIN), or
// -1 if the answer lacks them.
func (s *Socket) read(fd int, p []byte) (n, inq int, err error) {
	s.iov.Base = &p[0]
	s.iov.SetLen(len(p))
	s.msg.Iov = &s.iov
	s.msg.Iovlen = 1
	s.msg.Control = &s.oob[0]
	for {
		s.msg.SetControllen(len(s.oob))
		s.reads.Add(1)
		m, _, e := syscall.RawSyscall(syscall.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&s.msg)), 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, 0, e
		}
		inq = -1
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&s.oob[0]))
		if s.msg.Controllen >= uint64(syscall.CmsgLen(4)) && h.Level == syscall.SOL_TCP && h.Type == tcpInq && h.Len >= uint64(syscall.CmsgLen(4)) {
			inq = int(*(*int32)(unsafe.Pointer(&s.oob[syscall.CmsgLen(0)])))
		}
		return int(m), inq, nil
	}
}

// Read reads at most len(p) bytes; it returns io.EOF once the peer has
// closed its side. In a session it returns ErrWouldBlock instead of
// waiting; outside one it waits, and returns the RawConn's error (closed,
// deadline exceeded) as the net.Conn's Read would.
func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if !s.session {
		return s.readWait(p)
	}
	if s.skip {
		return 0, ErrWouldBlock
	}
	n, inq, err := s.read(s.fd, p)
	if err == syscall.EAGAIN {
		return 0, ErrWouldBlock
	}
	s.skip = err == nil && n > 0 && inq == 0
	return readResult(n, err)
}

// readWait is Read outside a session: it waits for the socket as the
// net.Conn's Read does. (Its own function: the closure's variables escape
// to the heap, which Read's session path must not pay for.)
func (s *Socket) readWait(p []byte) (int, error) {
	var n int
	var serr error
	err := s.rc.Read(func(fd uintptr) bool {
		n, _, serr = s.read(int(fd), p)
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

// Write writes all of p, waiting for room in the socket through the
// runtime's poller as the net.Conn's Write does (its write deadline
// applies). It returns the bytes written and, if fewer than len(p), why.
func (s *Socket) Write(p []byte) (int, error) {
	s.wbuf, s.wn, s.werr = p, 0, nil
	err := s.rc.Write(s.wentry)
	n, werr := s.wn, s.werr
	s.wbuf, s.werr = nil, nil
	if err == nil && werr != nil {
		err = os.NewSyscallError("write", werr)
	}
	return n, err
}

// writeSome is Write's function: it writes what the socket takes of the
// rest of s.wbuf and reports whether it is done (false: wait for room).
func (s *Socket) writeSome(fd uintptr) bool {
	n, e := writeRaw(fd, s.wbuf[s.wn:])
	s.wn += n
	switch e {
	case 0:
	case syscall.EAGAIN:
		return false
	default:
		s.werr = e
	}
	return true
}

// writeRaw writes p to the non-blocking socket fd with raw write system
// calls (retried on EINTR) until all is written, the socket is full
// (EAGAIN) or a write fails; it returns the bytes written and the errno
// that stopped it (0 if none).
func writeRaw(fd uintptr, p []byte) (int, syscall.Errno) {
	n := 0
	for n < len(p) {
		m, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
		switch e {
		case 0:
			n += int(m)
		case syscall.EINTR:
		default:
			return n, e
		}
	}
	return n, 0
}

// TryWrite writes what the socket takes of p without waiting for room,
// inside a read session only (it writes the session's socket): it returns
// the bytes written and, if fewer than len(p), ErrWouldBlock (the socket
// is full) or the write's error. It is for a reader that writes a request
// in the session whose reply it then waits for: the session's first wait
// need not be preceded by a read, since the reply cannot have come before
// the request went. The Socket's one writer at a time must be its caller.
func (s *Socket) TryWrite(p []byte) (int, error) {
	if !s.session {
		panic("sockio: TryWrite outside a read session")
	}
	n, e := writeRaw(uintptr(s.fd), p)
	switch e {
	case 0:
		return n, nil
	case syscall.EAGAIN:
		return n, ErrWouldBlock
	}
	return n, os.NewSyscallError("write", e)
}
