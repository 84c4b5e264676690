package server_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/stretchr/testify/require"
)

func start(t *testing.T) *dsotest.Cluster {
	cl, err := dsotest.StartCluster(1, dsotest.Options{MaxFrame: 4096})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return cl
}

// rawCall sends one well-formed call on a fresh connection and returns
// the reply.
func rawCall(t *testing.T, addr string, method string, args ...any) wire.Reply {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	f, err := wire.AppendCall(nil, 77, 0, dso.TypeAtomicLong, "x", method, args, nil)
	require.NoError(t, err)
	_, err = nc.Write(f)
	require.NoError(t, err)
	body, err := wire.ReadFrame(bufio.NewReader(nc), nil, 1<<20)
	require.NoError(t, err)
	r, err := wire.DecodeReply(body)
	require.NoError(t, err)
	return r
}

func frame(body []byte) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(len(body))) // + body
}

func TestMalformedFramesCloseOnlyTheirConnection(t *testing.T) {
	t.Parallel()
	cl := start(t)
	addr := cl.Endpoints[0]
	// A healthy connection opened before the attacks must keep working.
	healthy, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer healthy.Close()
	hr := bufio.NewReader(healthy)

	good, _ := wire.AppendCall(nil, 1, 0, dso.TypeAtomicLong, "x", "incrementAndGet", nil, nil)
	cases := map[string][]byte{
		"empty frame":     {0, 0, 0, 0},
		"unknown op":      append(frame(make([]byte, 9)), append([]byte{0x7f}, make([]byte, 8)...)...),
		"bad value tag":   append(frame(append(append([]byte{1}, make([]byte, 8)...), 0, 1, 'T', 1, 'k', 1, 'm', 1, 99)), append(append([]byte{1}, make([]byte, 8)...), 0, 1, 'T', 1, 'k', 1, 'm', 1, 99)...),
		"huge count":      append(frame(append(append([]byte{1}, make([]byte, 8)...), 0, 0xff, 0xff, 0xff, 0x0f)), append(append([]byte{1}, make([]byte, 8)...), 0, 0xff, 0xff, 0xff, 0x0f)...),
		"truncated frame": good[:len(good)-3],
		"garbage":         []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"trailing bytes":  append(frame(append(append([]byte{}, good[4:]...), 0)), append(append([]byte{}, good[4:]...), 0)...),
	}
	for name, data := range cases {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = nc.Write(data)
		require.NoError(t, err, name)
		if name == "truncated frame" {
			nc.(*net.TCPConn).CloseWrite()
		}
		// The server answers with at most an error frame, then closes.
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		rest, err := io.ReadAll(nc)
		require.NoError(t, err, name)
		if len(rest) > 0 {
			r, err := wire.DecodeReply(rest[4:])
			require.NoError(t, err, name)
			require.True(t, !r.OK && r.Code == wire.CodeMalformed, "%s: %+v", name, r)
		}
		nc.Close()
		r := rawCall(t, addr, "incrementAndGet")
		require.True(t, r.OK, "%s: %+v", name, r)
	}
	_, err = healthy.Write(good)
	require.NoError(t, err)
	body, err := wire.ReadFrame(hr, nil, 1<<20)
	require.NoError(t, err)
	r, err := wire.DecodeReply(body)
	require.NoError(t, err)
	require.True(t, r.OK)
	require.Equal(t, int64(len(cases)+1), r.Value)
}

func TestOversizedFrameGetsAnErrorAndTheConnectionGoesOn(t *testing.T) {
	t.Parallel()
	cl := start(t)
	nc, err := net.Dial("tcp", cl.Endpoints[0])
	require.NoError(t, err)
	defer nc.Close()
	big, _ := wire.AppendCall(nil, 5, 0, dso.TypeBlob, "b", "write", []any{make([]byte, 10000)}, nil)
	good, _ := wire.AppendCall(nil, 6, 0, dso.TypeBlob, "b", "size", nil, nil)
	_, err = nc.Write(append(big, good...))
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	body, err := wire.ReadFrame(br, nil, 1<<20)
	require.NoError(t, err)
	r, _ := wire.DecodeReply(body)
	require.Equal(t, uint64(5), r.ID)
	require.Equal(t, wire.CodeTooLarge, r.Code)
	body, err = wire.ReadFrame(br, nil, 1<<20)
	require.NoError(t, err)
	r, _ = wire.DecodeReply(body)
	require.Equal(t, uint64(6), r.ID)
	require.Equal(t, int64(0), r.Value)
}

func TestVanishedClientsParkedCallIsWithdrawn(t *testing.T) {
	t.Parallel()
	cl := start(t)
	addr := cl.Endpoints[0]
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	f, _ := wire.AppendCall(nil, 1, 0, dso.TypeCyclicBarrier, "b", "await", nil, []any{int64(2)})
	_, err = nc.Write(f)
	require.NoError(t, err)
	s := cl.Servers[0]
	ref := dso.Ref{Type: dso.TypeCyclicBarrier, Key: "b"}
	waiting := func() any {
		v, err := s.Invoke(context.Background(), ref, "getNumberWaiting", nil, []any{int64(2)})
		require.NoError(t, err)
		return v
	}
	deadline := time.Now().Add(10 * time.Second)
	for waiting() != int64(1) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.Equal(t, int64(1), waiting())
	nc.Close()
	for waiting() != int64(0) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	require.Equal(t, int64(0), waiting())
}

func TestPipelinedCallsAreAnsweredById(t *testing.T) {
	t.Parallel()
	cl := start(t)
	nc, err := net.Dial("tcp", cl.Endpoints[0])
	require.NoError(t, err)
	defer nc.Close()
	var out []byte
	// A parked take first, then 100 increments, then a put that releases it.
	out, _ = wire.AppendCall(out, 1000, 0, dso.TypePipe, "p", "take", nil, nil)
	for i := 1; i <= 100; i++ {
		out, _ = wire.AppendCall(out, uint64(i), 0, dso.TypeAtomicLong, "n", "incrementAndGet", nil, nil)
	}
	out, _ = wire.AppendCall(out, 2000, 0, dso.TypePipe, "p", "put", []any{"v"}, nil)
	_, err = nc.Write(out)
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	seen := map[uint64]any{}
	for len(seen) < 102 {
		body, err := wire.ReadFrame(br, nil, 1<<20)
		require.NoError(t, err)
		r, err := wire.DecodeReply(body)
		require.NoError(t, err)
		require.True(t, r.OK, r)
		seen[r.ID] = r.Value
	}
	for i := 1; i <= 100; i++ {
		require.Equal(t, int64(i), seen[uint64(i)])
	}
	require.Equal(t, "v", seen[1000])
}

type panicky struct{ n int64 }

func (p *panicky) Invoke(inv *dso.Invocation) (any, error) {
	if inv.Method == "boom" {
		panic("boom")
	}
	p.n++
	return p.n, nil
}

func TestPanickingMethodGetsAnInternalErrorAndTheServerGoesOn(t *testing.T) {
	t.Parallel()
	cl, err := dsotest.StartCluster(1, dsotest.Options{Register: func(r *dso.Registry) error {
		return r.Register("Panicky", func([]any) (dso.Object, error) { return &panicky{}, nil })
	}})
	require.NoError(t, err)
	defer cl.Close()
	ctx := context.Background()
	c, err := cl.Dial(ctx)
	require.NoError(t, err)
	defer c.Close()
	h := dso.NewHandle(c, "Panicky", "p")
	_, err = h.Call(ctx, "boom")
	require.ErrorIs(t, err, dso.ErrInternal)
	v, err := h.Call(ctx, "inc")
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
}
