package simnet

import (
	"math/rand/v2"
	"testing"
)

// TestEventHeapOrder checks the event queue against a plain list searched
// for its earliest (time, scheduling order) event, under random pushes and
// pops: times drawn from a few values or from a wide range, pushes at the
// time of the event just popped (self-sends), far more distinct times than
// the cache of newest buckets holds, and queues that empty and refill.
func TestEventHeapOrder(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 17))
		spread := []int64{1, 3, 1000, 1 << 20}[seed%4]
		var q eventHeap
		type ref struct {
			at  int64
			seq uint64
		}
		var list []ref
		var now int64
		var seq uint64
		push := func(at int64) {
			seq++
			q.push(event{at: at, a: seq})
			list = append(list, ref{at: at, seq: seq})
		}
		for step := 0; step < 20000; step++ {
			if len(list) == 0 || r.IntN(100) < 52 {
				switch r.IntN(4) {
				case 0:
					push(now) // a self-send
				default:
					push(now + r.Int64N(spread))
				}
				continue
			}
			k := 0
			for i, x := range list {
				if x.at < list[k].at || x.at == list[k].at && x.seq < list[k].seq {
					k = i
				}
			}
			want := list[k]
			list = append(list[:k], list[k+1:]...)
			if q.len() != len(list)+1 {
				t.Fatalf("seed %d step %d: len %d, want %d", seed, step, q.len(), len(list)+1)
			}
			got := q.pop()
			if got.at != want.at || got.a != want.seq {
				t.Fatalf("seed %d step %d: popped (%d, %d), want (%d, %d)", seed, step, got.at, got.a, want.at, want.seq)
			}
			now = got.at
		}
	}
}
