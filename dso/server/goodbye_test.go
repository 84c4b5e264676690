package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/stretchr/testify/require"
)

// A graceful Close answers every call the connection read (a parked one
// fails with CodeClosing), then says goodbye (id 0, CodeClosing), then
// ends the connection: the goodbye is the last frame, and no frame the
// client sends afterwards is executed.
func TestGracefulCloseAnswersParkedCallsThenSaysGoodbye(t *testing.T) {
	t.Parallel()
	cl, err := dsotest.StartCluster(1, dsotest.Options{})
	require.NoError(t, err)
	addr := cl.Endpoints[0]
	s := cl.Servers[0]
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(nc)
	read := func() (wire.Reply, error) {
		body, err := wire.ReadFrame(br, nil, 1<<20)
		if err != nil {
			return wire.Reply{}, err
		}
		return wire.DecodeReply(body)
	}
	// A parked await (id 1), then an answered increment (id 2).
	f, _ := wire.AppendCall(nil, 1, 0, dso.TypeCyclicBarrier, "b", "await", nil, []any{int64(2)})
	f, _ = wire.AppendCall(f, 2, 0, dso.TypeAtomicLong, "n", "addAndGet", []any{int64(1)}, nil)
	_, err = nc.Write(f)
	require.NoError(t, err)
	r, err := read()
	require.NoError(t, err)
	require.Equal(t, uint64(2), r.ID)
	require.True(t, r.OK, "%+v", r)

	closed := make(chan error, 1)
	go func() { closed <- cl.Close() }()
	r, err = read()
	require.NoError(t, err)
	require.Equal(t, uint64(1), r.ID, "the parked call is answered before the goodbye: %+v", r)
	require.False(t, r.OK)
	require.Equal(t, wire.CodeClosing, r.Code, "%+v", r)
	require.ErrorIs(t, &dso.RemoteError{Code: r.Code, Msg: r.Msg}, dso.ErrClosing)
	r, err = read()
	require.NoError(t, err)
	require.Equal(t, uint64(0), r.ID, "%+v", r)
	require.False(t, r.OK)
	require.Equal(t, wire.CodeClosing, r.Code, "%+v", r)

	// Sent after the goodbye: read and discarded, never executed.
	f, _ = wire.AppendCall(nil, 3, 0, dso.TypeAtomicLong, "n", "addAndGet", []any{int64(100)}, nil)
	_, err = nc.Write(f)
	require.NoError(t, err)
	_, err = read()
	require.True(t, errors.Is(err, io.EOF), "the goodbye is the last frame, then the end of the stream; got %v", err)
	nc.Close()
	require.NoError(t, <-closed)
	v, err := s.Invoke(context.Background(), dso.Ref{Type: dso.TypeAtomicLong, Key: "n"}, "get", nil, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), v, "the call sent after the goodbye was executed")
}
