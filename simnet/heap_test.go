package simnet

import (
	"math/rand/v2"
	"testing"
)

// TestEventHeapOrder checks the event queue against a plain model under
// random pushes and pops: times drawn from a few values or from a wide
// range, pushes at the time of the event just popped (self-sends), far
// more distinct times than the cache of recent times holds, and queues
// that empty and refill. The model is a list searched for its earliest
// (time, scheduling order) event plus the FIFO of the current time, which
// goes first (as the queue's doc says) when some seeds also push events
// before the current time, as explored runs do; in the other seeds the
// model's order is exactly (time, scheduling order).
func TestEventHeapOrder(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 17))
		spread := []int64{1, 3, 1000, 1 << 20}[seed%4]
		backwards := seed%3 == 0
		var q eventHeap
		type ref struct {
			at  int64
			seq uint64
		}
		var list, fifo []ref
		var cur int64 // time of the last event popped from the list
		var seq uint64
		push := func(at int64) {
			seq++
			q.push(event{at: at, a: seq})
			if at == cur {
				fifo = append(fifo, ref{at: at, seq: seq})
			} else {
				list = append(list, ref{at: at, seq: seq})
			}
		}
		for step := 0; step < 20000; step++ {
			if len(list)+len(fifo) == 0 || r.IntN(100) < 52 {
				switch {
				case r.IntN(4) == 0:
					push(cur) // a self-send
				case backwards && r.IntN(4) == 0:
					push(max(0, cur-r.Int64N(spread)))
				default:
					push(cur + r.Int64N(spread))
				}
				continue
			}
			k := 0
			for i, x := range list {
				if x.at < list[k].at || x.at == list[k].at && x.seq < list[k].seq {
					k = i
				}
			}
			var want ref
			if len(fifo) > 0 && (len(list) == 0 || list[k].at != cur) {
				want, fifo = fifo[0], fifo[1:]
			} else {
				want = list[k]
				list = append(list[:k], list[k+1:]...)
				cur = want.at
			}
			if q.len() != len(list)+len(fifo)+1 {
				t.Fatalf("seed %d step %d: len %d, want %d", seed, step, q.len(), len(list)+len(fifo)+1)
			}
			got := q.pop()
			if got.at != want.at || got.a != want.seq {
				t.Fatalf("seed %d step %d: popped (%d, %d), want (%d, %d)", seed, step, got.at, got.a, want.at, want.seq)
			}
		}
	}
}
