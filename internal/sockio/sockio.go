// Package sockio reads and writes a plain TCP connection straight on its
// socket, sparing the system calls and the scheduler's work that the net
// package spends on a connection exchanging one message at a time.
//
// Reads. The net package's Read clears a socket's readiness and then
// always tries the socket before it waits for the runtime's poller, so a
// peer that exchanges one message at a time on a connection pays two
// reads per message, the second one empty (EAGAIN). A Socket runs its
// user's message loop inside read sessions instead: one RawConn.Read,
// whose function reads the socket without blocking and handles what it
// read. Each read is a recvmsg with the socket option TCP_INQ, whose
// answer tells how many bytes the socket still holds after the read (and
// not 0 once the peer's FIN has arrived, tcp(7)). After a read that left
// the socket empty, any byte or FIN arriving later raises a readiness
// event that the session's wait will see, so the next read of the session
// waits for the poller (ErrWouldBlock at once; the session function
// returns false) instead of trying the socket. (A short read alone would
// not do: a FIN that came with the last bytes raises no further event.)
// Every entry of the session function (a new session, or a wait's end)
// tries the socket first, except a first entry that writes a request with
// TryWrite and returns false at once: it waits for the reply, which
// cannot have come before the request went (bytes that came before the
// session are read with the reply). Outside a session Read blocks as the
// net.Conn's would.
//
// Raw system calls. The socket is non-blocking, so its reads and writes
// never block: a Socket makes them as raw system calls, which the runtime
// does not count as system calls. A goroutine in the net package's write
// on a loopback connection (which runs the receiver's side of TCP too) is
// often found in its system call by the runtime's monitor, which then
// hands its processor to another thread, waking one; a raw call keeps the
// processor. That hand-off, and the thread wake-ups it brings, cost more
// than the write on a busy two-core machine.
//
// Deadlines, Close and the connection's errors behave as on the net.Conn:
// the waits are the runtime poller's own. Closing the connection waits
// until its read session is waiting or over (package internal/poll): a
// session must not close its own connection, and should bound the
// messages it handles.
//
// A Socket exists on Linux (kernel 4.18 or later, for TCP_INQ); New
// returns nil elsewhere, and the connection is then used as it is.
package sockio

import "sync/atomic"

// disabled, when set, makes New return nil (see SetDisabled).
var disabled atomic.Bool

// SetDisabled makes New return nil from now on (on true), so that tests
// and benchmarks can compare a connection used through its net.Conn with
// one used through a Socket in one process; false restores New.
func SetDisabled(on bool) { disabled.Store(on) }
