package server_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/dso/wire"
)

// BenchmarkInvoke measures the in-process call path (type lookup, object
// table, object lock, method) on one object.
func BenchmarkInvoke(b *testing.B) {
	s, err := server.New(server.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	ref := dso.Ref{Type: dso.TypeAtomicLong, Key: "bench"}
	args := []any{int64(1)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Invoke(ctx, ref, "addAndGet", args, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInvokeParallel is BenchmarkInvoke on disjoint objects, one per
// goroutine.
func BenchmarkInvokeParallel(b *testing.B) {
	s, err := server.New(server.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ref := dso.Ref{Type: dso.TypeAtomicLong, Key: fmt.Sprint("bench", n.Add(1))}
		args := []any{int64(1)}
		for pb.Next() {
			if _, err := s.Invoke(ctx, ref, "addAndGet", args, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// pipelineBatch is how many calls pipelined tests and benchmarks keep in
// flight on one connection.
const pipelineBatch = 64

// pipelined starts a server and a connection to it and returns a function
// that sends pipelineBatch calls of AtomicLong key's addAndGet(1) at once
// and reads their replies.
func pipelined(tb testing.TB, key string) (round func()) {
	s, err := server.New(server.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go s.Serve(l)
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	var frames []byte
	for i := 0; i < pipelineBatch; i++ {
		frames, err = wire.AppendCall(frames, uint64(i+1), 0, dso.TypeAtomicLong, key, "addAndGet", []any{int64(1)}, nil)
		if err != nil {
			tb.Fatal(err)
		}
	}
	br := bufio.NewReader(nc)
	buf := make([]byte, 0, 64)
	return func() {
		if _, err := nc.Write(frames); err != nil {
			tb.Fatal(err)
		}
		for i := 0; i < pipelineBatch; i++ {
			if buf, err = wire.ReadFrame(br, buf[:0], 1<<20); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// BenchmarkConnPipelined measures the connection path (framing, decoding,
// dispatch, reply batching) with 64 calls in flight on one connection.
func BenchmarkConnPipelined(b *testing.B) {
	round := pipelined(b, "bench")
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += pipelineBatch {
		round()
	}
}

// TestCallAllocations bounds the heap allocations per call on the
// connection path (framing, decoding, dispatch, the object's method,
// the reply) for an AtomicLong that exists. What is left is the key, the
// argument list, the boxed result and the reads of the test's side (the
// request, the parker, the invocation and the type and method names are
// reused): 4, where it was 11 before they were.
func TestCallAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("-race adds allocations of its own")
	}
	round := pipelined(t, "allocations")
	round() // creates the object
	per := testing.AllocsPerRun(20, round) / pipelineBatch
	t.Logf("%.2f allocations per call", per)
	if per > 4 {
		t.Fatalf("%.2f allocations per call on the connection path; want at most 4", per)
	}
}
