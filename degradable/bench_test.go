package degradable

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// The benchmarks measure throughput by level under contention: many
// goroutines (benchParallelism per GOMAXPROCS), each a client with its own
// handle, on one object of a small universe of keys. Each sub-benchmark
// reports ops/s, and every level after the linearizable one also reports
// its speed as a ratio to the linearizable run of the same benchmark in the
// same process (x-linearizable: 2 means twice as many operations per
// second). Run them all, in order: go test -bench . ./degradable/

// benchParallelism is the number of client goroutines per GOMAXPROCS.
const benchParallelism = 16

// benchUniverse is the number of elements or keys the set and map
// workloads draw from.
const benchUniverse = 1024

// baselines holds the ns/op of each benchmark's linearizable run.
var baselines sync.Map

// benchVariant is one sub-benchmark: a level and options.
type benchVariant struct {
	name  string
	level Level
	opts  []Option
}

var benchVariants = []benchVariant{
	{"linearizable", Linearizable, nil},
	{"sequential", Sequential, nil},
	{"weak", Weak, nil},
}

// benchLevels runs body for each variant; body creates the object with
// the given number of replicas and runs its parallel loop.
func benchLevels(b *testing.B, variants []benchVariant, body func(b *testing.B, v benchVariant, replicas int)) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			replicas := benchParallelism * runtimeProcs()
			body(b, v, replicas)
			nsop := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(1e9/nsop, "ops/s")
			if v.level == Linearizable && len(v.opts) == 0 {
				baselines.Store(b.Name()[:len(b.Name())-len(v.name)], nsop)
			} else if base, ok := baselines.Load(b.Name()[:len(b.Name())-len(v.name)]); ok {
				b.ReportMetric(base.(float64)/nsop, "x-linearizable")
			}
		})
	}
}

// parallel runs body in benchParallelism goroutines per GOMAXPROCS, giving
// each a distinct client index and its own random source.
func parallel(b *testing.B, body func(i int, rng *xorshift, pb *testing.PB)) {
	var next atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(1) - 1)
		rng := xorshift(uint64(i)*0x9e3779b97f4a7c15 | 1)
		body(i, &rng, pb)
	})
}

// xorshift is a cheap random source, so that choosing an operation costs
// little next to the operation.
type xorshift uint64

// IntN returns a number in [0, n).
func (x *xorshift) IntN(n int) int {
	*x ^= *x << 13
	*x ^= *x >> 7
	*x ^= *x << 17
	return int(uint64(*x) % uint64(n))
}

// BenchmarkCounter: 90% Add(1), 10% Value; the increment-only variants
// too, and the weak counter pulling 16 times less often than by default (a
// pull reads every replica's slot).
func BenchmarkCounter(b *testing.B) {
	variants := append(benchVariants[:3:3],
		benchVariant{"linearizable-increment-only", Linearizable, []Option{IncrementOnly()}},
		benchVariant{"weak-increment-only", Weak, []Option{IncrementOnly()}},
		benchVariant{"weak-pull-every-256", Weak, []Option{PullEvery(256)}})
	benchLevels(b, variants, func(b *testing.B, v benchVariant, replicas int) {
		hs, err := NewCounter(v.level, replicas, v.opts...)
		if err != nil {
			b.Fatal(err)
		}
		parallel(b, func(i int, rng *xorshift, pb *testing.PB) {
			h := hs[i]
			for pb.Next() {
				if rng.IntN(10) == 0 {
					_ = h.Value()
				} else if err := h.Add(1); err != nil {
					panic(err)
				}
			}
		})
	})
}

// BenchmarkSet: 50% Contains, 25% Add, 25% Remove over benchUniverse
// elements.
func BenchmarkSet(b *testing.B) {
	benchLevels(b, benchVariants, func(b *testing.B, v benchVariant, replicas int) {
		hs, err := NewSet[int](v.level, replicas, v.opts...)
		if err != nil {
			b.Fatal(err)
		}
		parallel(b, func(i int, rng *xorshift, pb *testing.PB) {
			h := hs[i]
			for pb.Next() {
				e := rng.IntN(benchUniverse)
				switch rng.IntN(4) {
				case 0:
					h.Add(e)
				case 1:
					h.Remove(e)
				default:
					_ = h.Contains(e)
				}
			}
		})
	})
}

// BenchmarkMap: 50% Get, 40% Put, 10% Delete over benchUniverse keys.
func BenchmarkMap(b *testing.B) {
	benchLevels(b, benchVariants, func(b *testing.B, v benchVariant, replicas int) {
		hs, err := NewMap[int, int](v.level, replicas, v.opts...)
		if err != nil {
			b.Fatal(err)
		}
		parallel(b, func(i int, rng *xorshift, pb *testing.PB) {
			h := hs[i]
			for pb.Next() {
				k := rng.IntN(benchUniverse)
				switch p := rng.IntN(10); {
				case p < 4:
					h.Put(k, i)
				case p == 4:
					h.Delete(k)
				default:
					_, _ = h.Get(k)
				}
			}
		})
	})
}

// BenchmarkQueue: 50% Enqueue, 50% Dequeue.
func BenchmarkQueue(b *testing.B) {
	benchLevels(b, benchVariants, func(b *testing.B, v benchVariant, replicas int) {
		hs, err := NewQueue[int](v.level, replicas, v.opts...)
		if err != nil {
			b.Fatal(err)
		}
		parallel(b, func(i int, rng *xorshift, pb *testing.PB) {
			h := hs[i]
			for pb.Next() {
				if rng.IntN(2) == 0 {
					h.Enqueue(i)
				} else {
					_, _ = h.Dequeue()
				}
			}
		})
	})
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkCounterAddOnly: 100% Add(1) with no random choice, so that the
// loop costs as little as possible next to the add: what is left is the
// cost of the add itself (one contended word at the linearizable level,
// a replica's own fields at the weak level).
func BenchmarkCounterAddOnly(b *testing.B) {
	benchLevels(b, benchVariants, func(b *testing.B, v benchVariant, replicas int) {
		hs, err := NewCounter(v.level, replicas, v.opts...)
		if err != nil {
			b.Fatal(err)
		}
		parallel(b, func(i int, _ *xorshift, pb *testing.PB) {
			h := hs[i]
			for pb.Next() {
				if err := h.Add(1); err != nil {
					panic(err)
				}
			}
		})
	})
}
