package server_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/dso/wire"
)

// serve starts a server on a loopback listener (wrapped by wrap, if not
// nil) and returns its address and Serve's result channel.
func serve(t testing.TB, cfg server.Config, wrap func(net.Listener) net.Listener) (*server.Server, string, chan error) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := server.New(cfg)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	if wrap != nil {
		l = wrap(l)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	t.Cleanup(func() { s.Close() })
	return s, addr, errc
}

// emfileListener fails its first n accepts as a process out of file
// descriptors does.
type emfileListener struct {
	net.Listener
	left atomic.Int32
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.left.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// Defect 1: an accept error ended Serve (and the blossom server process).
func TestAcceptErrorsAreRetriedNotFatal(t *testing.T) {
	t.Parallel()
	var el *emfileListener
	_, addr, errc := serve(t, server.Config{}, func(l net.Listener) net.Listener {
		el = &emfileListener{Listener: l}
		el.left.Store(8)
		return el
	})
	r := rawCall(t, addr, "incrementAndGet")
	require.True(t, r.OK, "%+v", r)
	require.Equal(t, int64(1), r.Value)
	require.LessOrEqual(t, el.left.Load(), int32(0), "every failing accept was retried")
	select {
	case err := <-errc:
		t.Fatalf("Serve returned after accept errors: %v", err)
	default:
	}
}

// ping sends a PING on nc and waits for its answer.
func ping(t *testing.T, nc net.Conn, br *bufio.Reader) {
	t.Helper()
	_, err := nc.Write(wire.AppendSimple(nil, wire.OpPing, 1))
	require.NoError(t, err)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	body, err := wire.ReadFrame(br, nil, 1<<20)
	require.NoError(t, err)
	r, err := wire.DecodeReply(body)
	require.NoError(t, err)
	require.True(t, r.OK)
}

// Defect 1: connections beyond the limit are refused with an error frame.
func TestConnectionLimitRefusesPolitely(t *testing.T) {
	t.Parallel()
	s, addr, _ := serve(t, server.Config{MaxConns: 2}, nil)
	var keep []net.Conn
	for i := 0; i < 2; i++ {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer nc.Close()
		ping(t, nc, bufio.NewReader(nc))
		keep = append(keep, nc)
	}
	require.Equal(t, 2, s.Stats().Conns)
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	all, err := io.ReadAll(nc)
	require.NoError(t, err)
	nc.Close()
	body, err := wire.ReadFrame(bytesReader(all), nil, 1<<20)
	require.NoError(t, err)
	r, err := wire.DecodeReply(body)
	require.NoError(t, err)
	require.False(t, r.OK)
	require.Equal(t, wire.CodeLimit, r.Code)
	require.Equal(t, uint64(0), r.ID)
	require.Contains(t, r.Msg, "connection limit (2)")
	require.ErrorIs(t, &dso.RemoteError{Code: r.Code, Msg: r.Msg}, dso.ErrLimit)

	// Once a connection closes, a new one is served.
	keep[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Conns >= 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	r = rawCall(t, addr, "incrementAndGet")
	require.True(t, r.OK, "%+v", r)
}

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func bytesReader(b []byte) io.Reader { return &byteReader{b} }

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// Defect 2: each header declaring 16 MiB made the server allocate 16 MiB
// before a byte of the body came. 128 connections that each declare 16 MiB,
// send 100 bytes and stall must cost a bounded amount of memory, and a
// well-formed call must still be served.
func TestStalledHugeHeadersHoldLittleMemory(t *testing.T) {
	const conns = 128
	s, addr, _ := serve(t, server.Config{MaxFrame: 16 << 20, FrameTimeout: time.Hour}, nil)
	before := heapInUse()
	var ncs []net.Conn
	defer func() {
		for _, nc := range ncs {
			nc.Close()
		}
	}()
	hdr := binary.BigEndian.AppendUint32(nil, 16<<20)
	hdr = append(hdr, make([]byte, 100)...)
	for i := 0; i < conns; i++ {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		ncs = append(ncs, nc)
		_, err = nc.Write(hdr)
		require.NoError(t, err)
	}
	// Wait until every connection is inside its frame's body.
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().BufferedBytes < conns*32<<10 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	st := s.Stats()
	require.Equal(t, conns, st.Conns)
	require.GreaterOrEqual(t, st.BufferedBytes, int64(conns*32<<10))
	grown := int64(heapInUse()) - int64(before)
	t.Logf("%d stalled 16 MiB headers: heap grew by %.1f MiB, %d bytes reserved", conns, float64(grown)/(1<<20), st.BufferedBytes)
	require.Less(t, grown, int64(64<<20), "heap growth of %d stalled 16 MiB headers", conns)
	r := rawCall(t, addr, "incrementAndGet")
	require.True(t, r.OK, "%+v", r)
}

// Idle connections hold little memory, and closed ones none: 1,000
// connections that each made a call with a 1 KB argument held 33 KB of heap
// apiece (a 16 KiB read buffer and a 16 KiB write buffer), which a server
// kept until the Go runtime returned the idle heap to the system.
func TestConnectionsHoldLittleMemory(t *testing.T) {
	const conns = 1000
	s, addr, _ := serve(t, server.Config{}, nil)
	f, err := wire.AppendCall(nil, 1, 0, dso.TypeAtomicReference, "x", "set", []any{make([]byte, 1024)}, nil)
	require.NoError(t, err)
	before := heapInUse()
	ncs := make([]net.Conn, 0, conns)
	defer func() {
		for _, nc := range ncs {
			nc.Close()
		}
	}()
	var hdr [4]byte
	for i := 0; i < conns; i++ {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		ncs = append(ncs, nc)
		nc.SetDeadline(time.Now().Add(30 * time.Second))
		_, err = nc.Write(f)
		require.NoError(t, err)
		_, err = io.ReadFull(nc, hdr[:])
		require.NoError(t, err)
		_, err = io.CopyN(io.Discard, nc, int64(binary.BigEndian.Uint32(hdr[:])))
		require.NoError(t, err)
	}
	require.Equal(t, conns, s.Stats().Conns)
	open := int64(heapInUse()) - int64(before)
	t.Logf("%d idle connections: heap grew by %.1f MiB, %.1f KiB each", conns, float64(open)/(1<<20), float64(open)/conns/1024)
	require.Less(t, open, int64(conns*16<<10), "heap of %d idle connections", conns)
	for _, nc := range ncs {
		nc.Close()
	}
	ncs = nil
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().Conns > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	require.Zero(t, s.Stats().Conns)
	left := int64(heapInUse()) - int64(before)
	t.Logf("after they closed: heap %.1f MiB above the start", float64(left)/(1<<20))
	require.Less(t, left, int64(2<<20), "heap held after %d connections closed", conns)
}

// Defect 2: a connection that stalls mid-frame is closed after the frame
// deadline; one idle between frames is not.
func TestStallMidFrameClosesTheConnection(t *testing.T) {
	t.Parallel()
	s, addr, _ := serve(t, server.Config{FrameTimeout: 50 * time.Millisecond}, nil)
	idle, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer idle.Close()
	ibr := bufio.NewReader(idle)
	ping(t, idle, ibr)
	for _, stall := range [][]byte{
		{0, 0},                                  // half a header
		binary.BigEndian.AppendUint32(nil, 100), // a header, no body
		binary.BigEndian.AppendUint32(nil, 1<<20), // a large frame's header
	} {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		_, err = nc.Write(stall)
		require.NoError(t, err)
		nc.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err = io.ReadAll(nc)
		require.NoError(t, err, "the server closes the stalled connection (EOF), not our deadline")
		nc.Close()
	}
	time.Sleep(100 * time.Millisecond) // longer than the frame deadline
	ping(t, idle, ibr)
	require.GreaterOrEqual(t, s.Stats().Conns, 1)
}

// Defect 2: the whole server holds at most MaxBuffered bytes of bodies in
// flight; a connection that would exceed it is closed, the others go on.
// The connections arrive one at a time, each settled (its 100 KiB buffered
// by the server, or its connection closed) before the next, so the outcome
// is exact: two hold 128 KiB each (the whole budget), the other six are
// closed at their first growth.
func TestBufferedBytesAreBoundedServerWide(t *testing.T) {
	t.Parallel()
	const budget = 256 << 10
	const reserved = 128 << 10 // 100 KiB of body in buffers that double from 32 KiB
	s, addr, _ := serve(t, server.Config{MaxFrame: 1 << 20, MaxBuffered: budget, FrameTimeout: time.Hour}, nil)
	const conns = 8 // each sends 100 KiB of a 1 MiB frame
	kept := 0
	for i := 0; i < conns; i++ {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer nc.Close()
		closed := make(chan struct{})
		go func() { io.Copy(io.Discard, nc); close(closed) }()
		msg := binary.BigEndian.AppendUint32(nil, 1<<20)
		_, err = nc.Write(append(msg, make([]byte, 100<<10)...))
		require.NoError(t, err)
		// Settled: kept by the server with its body buffered, or closed by
		// it and no longer counted.
		deadline := time.Now().Add(30 * time.Second)
		settled := false
		for !settled && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			st := s.Stats()
			require.LessOrEqual(t, st.BufferedBytes, int64(budget), "connection %d", i)
			select {
			case <-closed:
				settled = st == server.Stats{Conns: kept, BufferedBytes: int64(kept) * reserved}
			default:
				if st == (server.Stats{Conns: kept + 1, BufferedBytes: int64(kept+1) * reserved}) {
					settled = true
					kept++
				}
			}
		}
		require.True(t, settled, "connection %d neither buffered its body nor was closed: %+v", i, s.Stats())
	}
	st := s.Stats()
	require.Equal(t, server.Stats{Conns: budget / reserved, BufferedBytes: budget}, st,
		"two connections fill the budget and stay; the others are closed")
	r := rawCall(t, addr, "incrementAndGet")
	require.True(t, r.OK, "%+v", r)
}

// Defect 7: a timeout_ms near 2^64 overflowed into an immediate timeout.
func TestHugeTimeoutMeansNoTimeout(t *testing.T) {
	t.Parallel()
	_, addr, _ := serve(t, server.Config{}, nil)
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	br := bufio.NewReader(nc)
	for _, tm := range []uint64{1<<64 - 1, 1 << 63, uint64(1<<63)/1e6 + 1} {
		get, _ := wire.AppendCall(nil, 1, tm, dso.TypeFuture, fmt.Sprint(tm), "get", nil, nil)
		set, _ := wire.AppendCall(nil, 2, 0, dso.TypeFuture, fmt.Sprint(tm), "set", []any{int64(7)}, nil)
		_, err = nc.Write(get)
		require.NoError(t, err)
		// The get is parked (answered later) or timed out (answered now):
		// a PING after it tells which, without a clock.
		_, err = nc.Write(wire.AppendSimple(nil, wire.OpPing, 3))
		require.NoError(t, err)
		body, err := wire.ReadFrame(br, nil, 1<<20)
		require.NoError(t, err)
		r, _ := wire.DecodeReply(body)
		require.Equal(t, uint64(3), r.ID, "timeout %d: the get must still be parked, got %+v", tm, r)
		_, err = nc.Write(set)
		require.NoError(t, err)
		got := map[uint64]wire.Reply{}
		for len(got) < 2 {
			body, err := wire.ReadFrame(br, nil, 1<<20)
			require.NoError(t, err)
			r, _ := wire.DecodeReply(body)
			got[r.ID] = r
		}
		require.True(t, got[1].OK, "%+v", got[1])
		require.Equal(t, int64(7), got[1].Value)
	}
}

// countingHandler counts the records logged at WARN or above.
type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// Defect 14: each hostile connection logged a WARN line (5,971 lines for
// 6,000 connections); the server now logs at most one a second.
func TestHostileConnectionsDoNotFloodTheLog(t *testing.T) {
	t.Parallel()
	h := &countingHandler{}
	s, addr, _ := serve(t, server.Config{Logger: slog.New(h)}, nil)
	start := time.Now()
	const conns = 300
	for i := 0; i < conns; i++ {
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		nc.Write([]byte{0, 0, 0, 0}) // an empty frame: warned about, then closed
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.ReadAll(nc)
		nc.Close()
	}
	elapsed := time.Since(start)
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Conns > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	lines := h.n.Load()
	t.Logf("%d hostile connections in %v: %d WARN lines", conns, elapsed, lines)
	require.LessOrEqual(t, lines, int64(2+elapsed/time.Second), "at most one WARN a second")
	require.Positive(t, lines)
}
