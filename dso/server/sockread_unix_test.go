//go:build unix

package server_test

import (
	"bufio"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/dso/wire"
)

// BenchmarkConnConcurrent is BenchmarkConnSequential with 200 clients at
// once, each on its own connection and object, as bench-dso's throughput
// runs (server and clients share this process); cpu-µs/op is the
// process's CPU time (user and system) per call, of which the clients'
// share is the same in both modes.
func BenchmarkConnConcurrent(b *testing.B) {
	for _, mode := range []struct {
		name  string
		plain bool
	}{{"netconn", true}, {"sockread", false}} {
		b.Run(mode.name, func(b *testing.B) {
			server.SetPlainSocketReads(mode.plain)
			defer server.SetPlainSocketReads(false)
			_, addr, _ := serve(b, server.Config{}, nil)
			var next atomic.Int64
			b.SetParallelism(100) // 200 clients on 2 cores
			cpu0 := processCPU(b)
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
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU is the process's CPU time so far, user and system.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
