// Package sockread reads a plain TCP connection straight from its socket,
// sparing the read that finds the socket empty after each message.
//
// The net package's Read clears a socket's readiness and then always tries
// the socket before it waits for the runtime's poller, so a peer that
// exchanges one message at a time on a connection pays two reads per
// message, the second one empty (EAGAIN). A Reader runs its user's message
// loop inside read sessions instead: one RawConn.Read, whose function
// reads the socket without blocking and handles what it read. Each read is
// a recvmsg with the socket option TCP_INQ, whose answer tells how many
// bytes the socket still holds after the read (and not 0 once the peer's
// FIN has arrived, tcp(7)). After a read that left the socket empty, any
// byte or FIN arriving later raises a readiness event that the session's
// wait will see, so the next read of the session waits for the poller
// (ErrWouldBlock at once; the session function returns false) instead of
// trying the socket. (A short read alone would not do: a FIN that came
// with the last bytes raises no further event.) Every entry of the session
// function (a new session, or a wait's end) tries the socket first.
//
// Outside a session Read blocks as the net.Conn's would. Deadlines, Close
// and the connection's errors behave as on the net.Conn: the waits are the
// runtime poller's own. Closing the connection waits until its session is
// waiting or over (package internal/poll): a session must not close its own
// connection, and should bound the messages it handles.
//
// The Reader exists on Linux (kernel 4.18 or later, for TCP_INQ); New
// returns nil elsewhere, and the connection is then read as it is.
package sockread

import "sync/atomic"

// disabled, when set, makes New return nil (see SetDisabled).
var disabled atomic.Bool

// SetDisabled makes New return nil from now on (on true), so that tests
// and benchmarks can compare a connection read through its net.Conn with
// one read by a Reader in one process; false restores New.
func SetDisabled(on bool) { disabled.Store(on) }
