package wal

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkAppend measures Append of one 100-byte record per op with real
// fsyncs, from 1, 16 and 256 concurrent appenders sharing b.N ops. Group
// commit should make records/s grow with the number of appenders while
// fsyncs/s stays near the device's fsync rate.
func BenchmarkAppend(b *testing.B) {
	rec := make([]byte, 100)
	for _, appenders := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			l, _, err := Open(Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			base := l.Stats()
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			b.ResetTimer()
			for range appenders {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						if _, err := l.Append(rec); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			secs := b.Elapsed().Seconds()
			st := l.Stats()
			fsyncs := float64(st.Fsyncs - base.Fsyncs)
			b.ReportMetric(float64(b.N)/secs, "records/s")
			b.ReportMetric(fsyncs/secs, "fsyncs/s")
			b.ReportMetric(float64(b.N)/fsyncs, "records/fsync")
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
