package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/internal/cputime"
)

// hangGuard bounds a test's wait for replies so that a server that stops
// reading fails the test with a message instead of hanging it; it is far
// above any wait of a working server, however loaded the machine.
const hangGuard = time.Minute

// sequentialCalls makes n calls of AtomicLong key's addAndGet(1) on nc,
// one at a time, and checks each reply.
func sequentialCalls(t testing.TB, nc net.Conn, key string, n int) {
	br := bufio.NewReader(nc)
	var buf []byte
	for i := 1; i <= n; i++ {
		f, err := wire.AppendCall(nil, uint64(i), 0, dso.TypeAtomicLong, key, "addAndGet", []any{int64(1)}, nil)
		require.NoError(t, err)
		_, err = nc.Write(f)
		require.NoError(t, err)
		buf, err = wire.ReadFrame(br, buf[:0], 1<<20)
		require.NoError(t, err)
		r, err := wire.DecodeReply(buf)
		require.NoError(t, err)
		require.True(t, r.OK, "call %d: %v", i, r.Msg)
		require.Equal(t, uint64(i), r.ID)
	}
}

// A connection whose client waits for each reply costs the server one read
// system call per call: the read that found the socket empty after each
// request (EAGAIN, then a wait for the poller) is spared. Reading through
// the net.Conn it costs two.
func TestOneReadSystemCallPerSequentialCall(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("package sockio reads sockets on Linux only")
	}
	s, addr, _ := serve(t, server.Config{}, nil)
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	const calls = 200
	sequentialCalls(t, nc, "seq", calls)
	reads, conns := server.SocketReads(s)
	require.Equal(t, 1, conns, "the connection should read its socket directly")
	t.Logf("%d read system calls for %d calls", reads, calls)
	// A reply can go out before the server's next wait, and a request can
	// come in more than one segment: allow a few extra reads, far from the
	// 2 per call of the net.Conn path.
	require.LessOrEqual(t, reads, int64(calls+calls/4), "read system calls for %d sequential calls", calls)
}

// A burst larger than the read buffer is read in full: a read that filled
// the buffer may leave bytes in the socket for which no new readiness
// event will come, so the next read must try the socket before waiting.
func TestBurstLargerThanReadBufferIsReadInFull(t *testing.T) {
	_, addr, _ := serve(t, server.Config{}, nil)
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	const calls = 2000 // about 90 KB of requests, eleven read buffers
	var frames []byte
	for i := 1; i <= calls; i++ {
		frames, err = wire.AppendCall(frames, uint64(i), 0, dso.TypeAtomicLong, "burst", "addAndGet", []any{int64(1)}, nil)
		require.NoError(t, err)
	}
	require.Greater(t, len(frames), 64<<10)
	require.NoError(t, nc.SetDeadline(time.Now().Add(hangGuard)))
	werr := make(chan error, 1)
	go func() { _, err := nc.Write(frames); werr <- err }()
	br := bufio.NewReader(nc)
	var buf []byte
	for i := 1; i <= calls; i++ {
		buf, err = wire.ReadFrame(br, buf[:0], 1<<20)
		require.NoError(t, err, "reply %d of %d (a server that stopped reading its socket times out here)", i, calls)
		r, err := wire.DecodeReply(buf)
		require.NoError(t, err)
		require.True(t, r.OK, r.Msg)
		require.Equal(t, uint64(i), r.ID)
		require.Equal(t, int64(i), r.Value)
	}
	require.NoError(t, <-werr)
}

// eachReadPath runs bench twice, as sub-benchmarks: with the server reading
// plain TCP sockets through the net.Conn as before (netconn), and reading
// them directly (sockio).
func eachReadPath(b *testing.B, bench func(b *testing.B)) {
	for _, mode := range []struct {
		name  string
		plain bool
	}{{"netconn", true}, {"sockio", false}} {
		b.Run(mode.name, func(b *testing.B) {
			server.SetPlainSocketReads(mode.plain)
			defer server.SetPlainSocketReads(false)
			bench(b)
		})
	}
}

// BenchmarkConnSequential measures one client making calls one at a time
// (the round trip, both sides) on each read path (eachReadPath); reads/call
// is the server's read system calls per call where it counts them.
func BenchmarkConnSequential(b *testing.B) {
	eachReadPath(b, func(b *testing.B) {
		s, addr, _ := serve(b, server.Config{}, nil)
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		sequentialCalls(b, nc, "warm", 1)
		f, err := wire.AppendCall(nil, 1, 0, dso.TypeAtomicLong, "bench", "addAndGet", []any{int64(1)}, nil)
		if err != nil {
			b.Fatal(err)
		}
		br := bufio.NewReader(nc)
		buf := make([]byte, 0, 64)
		before, _ := server.SocketReads(s)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := nc.Write(f); err != nil {
				b.Fatal(err)
			}
			if buf, err = wire.ReadFrame(br, buf[:0], 1<<20); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		if after, conns := server.SocketReads(s); conns > 0 {
			b.ReportMetric(float64(after-before)/float64(b.N), "reads/call")
		}
	})
}

// BenchmarkConnConcurrent is BenchmarkConnSequential with 200 clients at
// once, each on its own connection and object, as bench-dso's throughput
// runs (server and clients share this process); cpu-µs/op is the
// process's CPU time (user and system) per call, of which the clients'
// share is the same on both read paths.
func BenchmarkConnConcurrent(b *testing.B) {
	eachReadPath(b, func(b *testing.B) {
		_, addr, _ := serve(b, server.Config{}, nil)
		var next atomic.Int64
		b.SetParallelism(100) // 200 clients on 2 cores
		cpu0 := cputime.Process()
		if cpu0 == 0 {
			b.Skip("the process's CPU time is not known on this system")
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer nc.Close()
			f, err := wire.AppendCall(nil, 1, 0, dso.TypeAtomicLong, fmt.Sprint("c", next.Add(1)), "addAndGet", []any{int64(1)}, nil)
			if err != nil {
				b.Error(err)
				return
			}
			br := bufio.NewReader(nc)
			buf := make([]byte, 0, 64)
			for pb.Next() {
				if _, err := nc.Write(f); err != nil {
					b.Error(err)
					return
				}
				if buf, err = wire.ReadFrame(br, buf[:0], 1<<20); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(cputime.Process()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
	})
}

// A client that sends its calls and then closes its side (a FIN right
// behind the last request, often read together with it) gets every reply
// and then the server's close, on the plain TCP path as on the net.Conn
// path: the FIN raises no readiness event of its own once the bytes before
// it are read, so a reader that waited after reading them would wait for
// good.
func TestHalfClosedClientGetsItsRepliesThenEOF(t *testing.T) {
	for _, plain := range []bool{false, true} {
		server.SetPlainSocketReads(plain)
		_, addr, _ := serve(t, server.Config{}, nil)
		server.SetPlainSocketReads(false)
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		var frames []byte
		const calls = 3
		for i := 1; i <= calls; i++ {
			frames, err = wire.AppendCall(frames, uint64(i), 0, dso.TypeAtomicLong, "half", "addAndGet", []any{int64(1)}, nil)
			require.NoError(t, err)
		}
		_, err = nc.Write(frames)
		require.NoError(t, err)
		require.NoError(t, nc.(*net.TCPConn).CloseWrite())
		require.NoError(t, nc.SetReadDeadline(time.Now().Add(hangGuard)))
		rest, err := io.ReadAll(nc)
		require.NoError(t, err, "plain %v: the server should answer and close (a server that missed the FIN times out here)", plain)
		br := bufio.NewReader(bytes.NewReader(rest))
		for i := 1; i <= calls; i++ {
			body, err := wire.ReadFrame(br, nil, 1<<20)
			require.NoError(t, err, "plain %v: reply %d", plain, i)
			r, err := wire.DecodeReply(body)
			require.NoError(t, err)
			require.True(t, r.OK, r.Msg)
			require.Equal(t, uint64(i), r.ID)
		}
		nc.Close()
	}
}

// A call of a client that waits for each reply allocates no more on the
// server than a pipelined one (TestCallAllocations): the read session and
// its waits allocate nothing.
func TestSequentialCallAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("-race adds allocations of its own")
	}
	_, addr, _ := serve(t, server.Config{}, nil)
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer nc.Close()
	f, err := wire.AppendCall(nil, 1, 0, dso.TypeAtomicLong, "seqalloc", "addAndGet", []any{int64(1)}, nil)
	require.NoError(t, err)
	br := bufio.NewReader(nc)
	buf := make([]byte, 0, 64)
	call := func() {
		if _, err := nc.Write(f); err != nil {
			t.Fatal(err)
		}
		if buf, err = wire.ReadFrame(br, buf[:0], 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	call() // creates the object
	per := testing.AllocsPerRun(200, call)
	t.Logf("%.2f allocations per sequential call", per)
	require.LessOrEqual(t, per, 4.0, "allocations per sequential call (key, arguments, result, test side; 7 when the read session allocated)")
}
