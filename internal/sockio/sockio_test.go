package sockio_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/sockio"
)

// pair returns the two ends of a loopback TCP connection, the first
// wrapped in a Socket.
func pair(t *testing.T) (*sockio.Socket, net.Conn, net.Conn) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("a Socket exists on Linux only")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	b, err := l.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { a.Close(); b.Close() })
	s := sockio.New(a)
	require.NotNil(t, s)
	return s, a, b
}

// A write far larger than the socket's buffers waits for room, as often
// as it needs, and delivers every byte in order.
func TestWriteWaitsForRoomAndDeliversAll(t *testing.T) {
	s, _, b := pair(t)
	p := make([]byte, 16<<20)
	for i := range p {
		p[i] = byte(i * 7 / 5)
	}
	got := make(chan []byte)
	go func() {
		all, _ := io.ReadAll(io.LimitReader(b, int64(len(p))))
		got <- all
	}()
	n, err := s.Write(p)
	require.NoError(t, err)
	require.Equal(t, len(p), n)
	require.True(t, bytes.Equal(p, <-got), "the bytes read differ from the bytes written")
}

// A write to a peer that never reads ends at the write deadline with the
// net.Conn's error, having written what fit.
func TestWriteHonoursTheDeadline(t *testing.T) {
	s, a, _ := pair(t)
	require.NoError(t, a.SetWriteDeadline(time.Now().Add(50*time.Millisecond)))
	n, err := s.Write(make([]byte, 256<<20))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	require.Less(t, n, 256<<20)
}

// In a session, a read that empties the socket makes the next read wait
// for the poller instead of trying the socket: a peer sending one message
// at a time costs one read system call per message, and the session sees
// every message, then the peer's close as io.EOF.
func TestSessionReadsEachMessageOnce(t *testing.T) {
	s, _, b := pair(t)
	br := bufio.NewReader(s)
	const messages = 100
	ack := make(chan struct{})
	_, err := b.Write([]byte("ping")) // on loopback, in a's socket once Write returns
	require.NoError(t, err)
	go func() {
		for range messages - 1 {
			<-ack
			b.Write([]byte("ping"))
		}
		<-ack
		b.Close()
	}()
	seen := 0
	var end error
	for end == nil {
		err := s.Session(func() bool {
			for {
				m, err := br.Peek(4)
				switch {
				case err == sockio.ErrWouldBlock:
					return false
				case err != nil:
					end = err
					return true
				case string(m) != "ping":
					end = errors.New("got " + string(m))
					return true
				}
				br.Discard(4)
				seen++
				ack <- struct{}{}
			}
		})
		require.NoError(t, err)
	}
	require.ErrorIs(t, end, io.EOF)
	require.Equal(t, messages, seen)
	// A read per message, and one that reads the FIN.
	require.Equal(t, int64(messages+1), s.Reads())
}

// Outside a session, Read blocks as the net.Conn's does, and its read
// deadline applies.
func TestReadOutsideASessionWaits(t *testing.T) {
	s, a, b := pair(t)
	go b.Write([]byte("hello"))
	p := make([]byte, 5)
	_, err := io.ReadFull(s, p)
	require.NoError(t, err)
	require.Equal(t, "hello", string(p))
	require.NoError(t, a.SetReadDeadline(time.Now().Add(20*time.Millisecond)))
	_, err = s.Read(p)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
}

// A connection that is not plain TCP gets no Socket, nor does any while
// SetDisabled is on.
func TestNewRefusesOtherConnections(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	require.Nil(t, sockio.New(a))
	if runtime.GOOS != "linux" {
		return
	}
	_, c, _ := pair(t)
	sockio.SetDisabled(true)
	defer sockio.SetDisabled(false)
	require.Nil(t, sockio.New(c))
}

// In a session, TryWrite writes what the socket takes without waiting:
// all of a small request, whose reply the session then waits for without
// a read first (one read system call per exchange), and part of one far
// larger than the socket's buffers, with ErrWouldBlock. Outside a session
// it panics.
func TestTryWriteInASession(t *testing.T) {
	s, _, b := pair(t)
	go func() { // an echo server
		p := make([]byte, 4)
		for {
			if _, err := io.ReadFull(b, p); err != nil {
				return
			}
			b.Write(p)
		}
	}()
	br := bufio.NewReader(s)
	const exchanges = 50
	for i := range exchanges {
		first := true
		err := s.Session(func() bool {
			if first {
				first = false
				n, err := s.TryWrite([]byte("ping"))
				require.NoError(t, err)
				require.Equal(t, 4, n)
				return false // the reply cannot be there yet
			}
			m, err := br.Peek(4)
			if err == sockio.ErrWouldBlock {
				return false
			}
			require.NoError(t, err, "exchange %d", i)
			require.Equal(t, "ping", string(m))
			br.Discard(4)
			return true
		})
		require.NoError(t, err)
	}
	require.Equal(t, int64(exchanges), s.Reads(), "a read per exchange")

	s2, _, _ := pair(t) // a peer that never reads
	var n int
	var err error
	require.NoError(t, s2.Session(func() bool {
		n, err = s2.TryWrite(make([]byte, 256<<20))
		return true
	}))
	require.ErrorIs(t, err, sockio.ErrWouldBlock)
	require.Greater(t, n, 0)
	require.Less(t, n, 256<<20)
	require.Panics(t, func() { s2.TryWrite([]byte("x")) })
}
