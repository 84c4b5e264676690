// Package workload runs throughput workloads over degradable objects in
// one process, one level at a time: a contention mix per object type
// (Objects) and Retwis, a Twitter clone (Retwis). Each client is a
// goroutine with its own handle (its own replica) of every object. They
// are benchmarks, measured by the caller's clock: a Result carries the
// operations per second and the p50 and p99 latencies of a sample of the
// operations (every sampleEvery-th, so that reading the clock costs little
// next to operations of a few nanoseconds).
//
// Sim runs the same mixes and Retwis in the simulator instead (package
// simnet, through its Config.Workload): the objects are one state machine
// replicated by each level's strategy (a linearizable protocol,
// "sequential", "weak-merge" or "weak"), the clients are the simulator's
// closed-loop clients, the measurements are in simulated time, and every
// run's history is checked by its level's checker (degradable/check).
package workload

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/blossom-dso/blossom/degradable"
)

// sampleEvery is the sampling period of the latency measurements.
const sampleEvery = 16

// Result is one run's measurements.
type Result struct {
	// Ops is the number of operations run, Elapsed the wall time.
	Ops     int
	Elapsed time.Duration
	// OpsPerSec is Ops / Elapsed.
	OpsPerSec float64
	// P50 and P99 are latency percentiles of the sampled operations.
	P50, P99 time.Duration
}

// Types are the object types Objects knows, in table order.
var Types = []string{"counter", "register", "set", "map", "queue"}

// universe is the number of elements or keys the set and map mixes draw
// from.
const universe = 1024

// Objects runs ops operations split over clients goroutines on one object
// of type typ (one of Types) at level, with the mix of its type: counter
// 90% Add(1) / 10% Value; register 50% Write / 50% Read; set 50% Contains,
// 25% Add, 25% Remove; map 50% Get, 40% Put, 10% Delete; queue 50% Enqueue,
// 50% Dequeue.
func Objects(typ string, level degradable.Level, clients, ops int, seed uint64) (Result, error) {
	if clients < 1 || ops < clients {
		return Result{}, fmt.Errorf("workload: %d clients and %d operations: need 1 <= clients <= ops", clients, ops)
	}
	var body func(i int) func(r *rand.Rand)
	switch typ {
	case "counter":
		hs, err := degradable.NewCounter(level, clients)
		if err != nil {
			return Result{}, err
		}
		body = func(i int) func(r *rand.Rand) {
			h := hs[i]
			return func(r *rand.Rand) {
				if r.IntN(10) == 0 {
					_ = h.Value()
				} else if err := h.Add(1); err != nil {
					panic(err)
				}
			}
		}
	case "register":
		hs, err := degradable.NewRegister[int](level, clients)
		if err != nil {
			return Result{}, err
		}
		body = func(i int) func(r *rand.Rand) {
			h := hs[i]
			return func(r *rand.Rand) {
				if r.IntN(2) == 0 {
					h.Write(i)
				} else {
					_ = h.Read()
				}
			}
		}
	case "set":
		hs, err := degradable.NewSet[int](level, clients)
		if err != nil {
			return Result{}, err
		}
		body = func(i int) func(r *rand.Rand) {
			h := hs[i]
			return func(r *rand.Rand) {
				e := r.IntN(universe)
				switch r.IntN(4) {
				case 0:
					h.Add(e)
				case 1:
					h.Remove(e)
				default:
					_ = h.Contains(e)
				}
			}
		}
	case "map":
		hs, err := degradable.NewMap[int, int](level, clients)
		if err != nil {
			return Result{}, err
		}
		body = func(i int) func(r *rand.Rand) {
			h := hs[i]
			return func(r *rand.Rand) {
				k := r.IntN(universe)
				switch p := r.IntN(10); {
				case p < 4:
					h.Put(k, i)
				case p == 4:
					h.Delete(k)
				default:
					_, _ = h.Get(k)
				}
			}
		}
	case "queue":
		hs, err := degradable.NewQueue[int](level, clients)
		if err != nil {
			return Result{}, err
		}
		body = func(i int) func(r *rand.Rand) {
			h := hs[i]
			return func(r *rand.Rand) {
				if r.IntN(2) == 0 {
					h.Enqueue(i)
				} else {
					_, _ = h.Dequeue()
				}
			}
		}
	default:
		return Result{}, fmt.Errorf("workload: unknown object type %q (want one of %v)", typ, Types)
	}
	return run(clients, ops, seed, body), nil
}

// run starts clients goroutines, each running its share of ops calls of
// its body with its own random source, and measures them.
func run(clients, ops int, seed uint64, body func(i int) func(r *rand.Rand)) Result {
	bodies := make([]func(*rand.Rand), clients)
	for i := range bodies {
		bodies[i] = body(i)
	}
	samples := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		n := ops / clients
		if i < ops%clients {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			f := bodies[i]
			s := make([]time.Duration, 0, n/sampleEvery+1)
			for k := range n {
				if k%sampleEvery != 0 {
					f(r)
					continue
				}
				t := time.Now()
				f(r)
				s = append(s, time.Since(t))
			}
			samples[i] = s
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(samples...)
	slices.Sort(all)
	res := Result{Ops: ops, Elapsed: elapsed, OpsPerSec: float64(ops) / elapsed.Seconds()}
	if len(all) > 0 {
		res.P50 = all[len(all)/2]
		res.P99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return res
}
