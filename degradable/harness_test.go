package degradable

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"github.com/blossom-dso/blossom/degradable/check"
)

// The harness runs one goroutine per handle, each a client calling random
// operations with random yields (runtime.Gosched) between them, seeded per
// client, and records every operation with its invocation and response
// times in a monotonic clock, per client (no shared lock, which would
// serialise the clients). After every client is done, each replica calls
// Sync, then each calls Sync again and reads the whole state: the finals
// (two rounds, as a weak replica publishes its own updates when it pulls).

// workload sizes one run.
type workload struct {
	clients, ops int
	pullEvery    int
	opts         []Option
}

// options returns the options of the run, PullEvery included.
func (w workload) options() []Option {
	return append([]Option{PullEvery(w.pullEvery)}, w.opts...)
}

// drive runs w.clients goroutines, client c calling do(c, k, rng) for k in
// [0, w.ops), with rng seeded by (seed, c), yielding at random in between.
func drive(w workload, seed uint64, do func(c, k int, rng *rand.Rand)) {
	var wg sync.WaitGroup
	for c := range w.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(c)))
			for k := range w.ops {
				if rng.IntN(3) == 0 {
					runtime.Gosched()
				}
				do(c, k, rng)
			}
		}()
	}
	wg.Wait()
}

// clock is the monotonic clock of one run, in nanoseconds since its start.
type clock struct{ start time.Time }

func newClock() clock      { return clock{time.Now()} }
func (c clock) now() int64 { return int64(time.Since(c.start)) }
func flatten[O any](per [][]O) []O {
	var out []O
	for _, ops := range per {
		out = append(out, ops...)
	}
	return out
}

// unique returns a value no other operation of the run uses: client c's
// k-th, never zero.
func unique(c, k int) int { return c*1_000_000 + k + 1 }

// counterRun runs a counter workload: reads with probability 1/2, adds of
// a delta from deltas otherwise.
func counterRun(level Level, w workload, seed uint64, deltas []int64) ([]check.CounterOp, []int64, error) {
	hs, err := NewCounter(level, w.clients, w.options()...)
	if err != nil {
		return nil, nil, err
	}
	clk, per := newClock(), make([][]check.CounterOp, w.clients)
	drive(w, seed, func(c, k int, rng *rand.Rand) {
		op := check.CounterOp{Client: c, Call: clk.now()}
		if rng.IntN(2) == 0 {
			op.Read, op.Value = true, hs[c].Value()
		} else {
			op.Delta = deltas[rng.IntN(len(deltas))]
			if err := hs[c].Add(op.Delta); err != nil {
				panic(err) // the workloads only use allowed deltas
			}
		}
		op.Return = clk.now()
		per[c] = append(per[c], op)
	})
	final := make([]int64, w.clients)
	syncTwice(hs)
	for i, h := range hs {
		final[i] = h.Value()
	}
	return flatten(per), final, nil
}

// registerRun runs a register workload: reads and writes of unique values,
// half each.
func registerRun(level Level, w workload, seed uint64) ([]check.RegisterOp[int], []int, error) {
	hs, err := NewRegister[int](level, w.clients, w.options()...)
	if err != nil {
		return nil, nil, err
	}
	clk, per := newClock(), make([][]check.RegisterOp[int], w.clients)
	drive(w, seed, func(c, k int, rng *rand.Rand) {
		op := check.RegisterOp[int]{Client: c, Call: clk.now()}
		if rng.IntN(2) == 0 {
			op.Value = hs[c].Read()
		} else {
			op.Write, op.Value = true, unique(c, k)
			hs[c].Write(op.Value)
		}
		op.Return = clk.now()
		per[c] = append(per[c], op)
	})
	final := make([]int, w.clients)
	syncTwice(hs)
	for i, h := range hs {
		final[i] = h.Read()
	}
	return flatten(per), final, nil
}

// setRun runs a set workload over elements 0..universe-1: adds 35%,
// removes 25%, contains 40%.
func setRun(level Level, w workload, seed uint64, universe int) ([]check.SetOp[int], [][]int, error) {
	hs, err := NewSet[int](level, w.clients, w.options()...)
	if err != nil {
		return nil, nil, err
	}
	clk, per := newClock(), make([][]check.SetOp[int], w.clients)
	drive(w, seed, func(c, k int, rng *rand.Rand) {
		op := check.SetOp[int]{Client: c, Call: clk.now(), Elem: rng.IntN(universe)}
		switch p := rng.IntN(100); {
		case p < 35:
			op.Kind = check.SetAdd
			hs[c].Add(op.Elem)
		case p < 60:
			op.Kind = check.SetRemove
			hs[c].Remove(op.Elem)
		default:
			op.Kind, op.Result = check.SetContains, hs[c].Contains(op.Elem)
		}
		op.Return = clk.now()
		per[c] = append(per[c], op)
	})
	final := make([][]int, w.clients)
	syncTwice(hs)
	for i, h := range hs {
		final[i] = h.Elements()
		if n := h.Len(); n != len(final[i]) {
			panic("Len disagrees with Elements")
		}
	}
	return flatten(per), final, nil
}

// mapRun runs a map workload over keys 0..keys-1: puts of unique values
// 35%, deletes 15%, gets 50%.
func mapRun(level Level, w workload, seed uint64, keys int) ([]check.MapOp[int, int], []map[int]int, error) {
	hs, err := NewMap[int, int](level, w.clients, w.options()...)
	if err != nil {
		return nil, nil, err
	}
	clk, per := newClock(), make([][]check.MapOp[int, int], w.clients)
	drive(w, seed, func(c, k int, rng *rand.Rand) {
		op := check.MapOp[int, int]{Client: c, Call: clk.now(), Key: rng.IntN(keys)}
		switch p := rng.IntN(100); {
		case p < 35:
			op.Kind, op.Value = check.MapPut, unique(c, k)
			hs[c].Put(op.Key, op.Value)
		case p < 50:
			op.Kind = check.MapDelete
			hs[c].Delete(op.Key)
		default:
			op.Kind = check.MapGet
			op.Value, op.Found = hs[c].Get(op.Key)
		}
		op.Return = clk.now()
		per[c] = append(per[c], op)
	})
	final := make([]map[int]int, w.clients)
	syncTwice(hs)
	for i, h := range hs {
		final[i] = h.Entries()
		if n := h.Len(); n != len(final[i]) {
			panic("Len disagrees with Entries")
		}
	}
	return flatten(per), final, nil
}

// queueRun runs a queue workload: enqueues of unique elements and dequeues,
// half each.
func queueRun(level Level, w workload, seed uint64) ([]check.QueueOp[int], [][]int, error) {
	hs, err := NewQueue[int](level, w.clients, w.options()...)
	if err != nil {
		return nil, nil, err
	}
	clk, per := newClock(), make([][]check.QueueOp[int], w.clients)
	drive(w, seed, func(c, k int, rng *rand.Rand) {
		op := check.QueueOp[int]{Client: c, Call: clk.now()}
		if rng.IntN(2) == 0 {
			op.Kind, op.Elem = check.Enqueue, unique(c, k)
			hs[c].Enqueue(op.Elem)
		} else {
			op.Kind = check.Dequeue
			op.Elem, op.Ok = hs[c].Dequeue()
		}
		op.Return = clk.now()
		per[c] = append(per[c], op)
	})
	final := make([][]int, w.clients)
	syncTwice(hs)
	for i, h := range hs {
		final[i] = h.Elements()
		if n := h.Len(); n != len(final[i]) {
			panic("Len disagrees with Elements")
		}
	}
	return flatten(per), final, nil
}

// syncTwice calls Sync on every handle, twice round: the first round
// publishes every replica's updates, the second applies them everywhere.
func syncTwice[H Handle](hs []H) {
	for range 2 {
		for _, h := range hs {
			h.Sync()
		}
	}
}
