package server

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMemoryReleasedAfterBurst checks that the end of a burst of
// connections (at least releaseBurst, then three quarters closed) starts
// one release of memory to the operating system, and that a smaller burst
// does not.
func TestMemoryReleasedAfterBurst(t *testing.T) {
	s, err := New(Config{})
	require.NoError(t, err)
	defer s.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go s.Serve(l)
	burst := func(n int) {
		ncs := make([]net.Conn, n)
		for i := range ncs {
			ncs[i], err = net.Dial("tcp", l.Addr().String())
			require.NoError(t, err)
		}
		waitConns(t, s, n)
		for _, nc := range ncs {
			nc.Close()
		}
		waitConns(t, s, 0)
	}
	burst(releaseBurst / 2)
	require.Equal(t, int64(0), s.releases.Load(), "a small burst releases nothing")
	burst(releaseBurst + 10)
	require.Equal(t, int64(1), s.releases.Load(), "the end of a burst releases memory once")
}

// waitConns waits until the server counts n open connections.
func waitConns(t *testing.T, s *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().Conns != n {
		require.True(t, time.Now().Before(deadline), "%d connections open, want %d", s.Stats().Conns, n)
		time.Sleep(5 * time.Millisecond)
	}
}
