package client

import (
	"errors"
	"io"
	"net"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/internal/sockio"
)

// A write that fails because the server closed the connection after its
// goodbye does not decide the fate of the calls pending on it: the reader
// does, from the goodbye, so they fail with errGoodbye (and are sent
// again) instead of as unavailable. The writer used to fail the connection
// with its write error at once, and calls racing a graceful close failed
// although the server had said it did not execute them.
func TestWriteErrorLeavesTheVerdictToTheGoodbye(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(map[bool]string{false: "socket", true: "plain"}[plain], func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer l.Close()
			nc, err := net.Dial("tcp", l.Addr().String())
			require.NoError(t, err)
			sc, err := l.Accept()
			require.NoError(t, err)
			sockio.SetDisabled(plain)
			c := newConn(nc, &Options{MaxFrame: 1 << 20, idleCheck: -1})
			sockio.SetDisabled(false)
			if !plain && c.sock == nil {
				t.Skip("no sockio.Socket here")
			}
			w := &errWriter{w: c.w}
			c.w = w
			defer c.fail(errors.New("test over"))

			enc := func(b []byte, id uint64) ([]byte, error) { return wire.AppendSimple(b, wire.OpPing, id), nil }
			first := make(chan result, 1)
			id, err := c.reserve(first)
			require.NoError(t, err)
			require.NoError(t, c.writeCall(enc, id)) // written; nobody reads yet
			// The server reads the call, says goodbye and closes.
			_, err = sc.Read(make([]byte, 64))
			require.NoError(t, err)
			_, err = sc.Write(wire.AppendError(nil, 0, wire.CodeClosing, "closing"))
			require.NoError(t, err)
			require.NoError(t, sc.Close())

			// Calls written after the close: the first one draws the
			// server's reset, a later one's write fails.
			for i := 0; i < 1000 && w.err == nil; i++ {
				id, err := c.reserve(make(chan result, 1))
				require.NoError(t, err, "the connection failed before its reader read")
				require.NoError(t, c.writeCall(enc, id))
				runtime.Gosched()
			}
			require.Error(t, w.err, "no write failed")
			t.Logf("write error: %v", w.err)
			if plain {
				go c.readLoop()
			} else {
				go c.roleLoop()
			}
			r1 := <-first
			require.ErrorIs(t, r1.err, errGoodbye, "the first call's fate is the goodbye's")
		})
	}
}

// errWriter keeps the first error of the writer it wraps.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}
