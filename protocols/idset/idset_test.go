package idset

import (
	"math/rand/v2"
	"testing"

	"github.com/blossom-dso/blossom/protocols"
)

// pattern draws the next sequence number of a client: mostly the next one,
// sometimes a skip, a step back, a far jump or an extreme value.
func pattern(r *rand.Rand, cur uint64) uint64 {
	switch x := r.IntN(100); {
	case x < 70:
		return cur + 1
	case x < 80:
		return cur + 2 + r.Uint64N(100)
	case x < 88:
		return cur - min(cur, r.Uint64N(300))
	case x < 92:
		return cur + r.Uint64N(3*maxWords*64)
	case x < 94:
		return r.Uint64N(10)
	case x < 96:
		return bigSeq - 3 + r.Uint64N(6)
	case x < 98:
		return ^uint64(0) - r.Uint64N(200)
	}
	return r.Uint64()
}

// TestSetMatchesMap checks Add, Has and Len against a map over random
// workloads of sequential, skipping, backward and hostile sequence numbers.
func TestSetMatchesMap(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 17))
		var s Set
		ref := map[protocols.CommandID]bool{}
		clients := 1 + r.IntN(6)
		// client ids on both sides of maxDense (indexed and mapped)
		pool := []uint64{0, 1, 2, 7, maxDense - 1, maxDense, maxDense + 1, 1 << 40, ^uint64(0)}
		r.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
		cur := make([]uint64, clients)
		for i := range cur {
			cur[i] = r.Uint64N(5)
		}
		var probes []protocols.CommandID
		for step := range 20000 {
			c := r.IntN(clients)
			cur[c] = pattern(r, cur[c])
			id := protocols.CommandID{Client: pool[c], Seq: cur[c]}
			if r.IntN(4) == 0 {
				// a lookup only
				if got, want := s.Has(id), ref[id]; got != want {
					t.Fatalf("seed %d step %d: Has(%v) = %v, want %v", seed, step, id, got, want)
				}
				continue
			}
			if got, want := s.Add(id), !ref[id]; got != want {
				t.Fatalf("seed %d step %d: Add(%v) = %v, want %v", seed, step, id, got, want)
			}
			ref[id] = true
			probes = append(probes, id, protocols.CommandID{Client: id.Client, Seq: id.Seq + 1},
				protocols.CommandID{Client: id.Client, Seq: id.Seq - 1})
			if s.Len() != len(ref) {
				t.Fatalf("seed %d step %d: Len = %d, want %d", seed, step, s.Len(), len(ref))
			}
		}
		for _, id := range probes {
			if got, want := s.Has(id), ref[id]; got != want {
				t.Fatalf("seed %d: at the end Has(%v) = %v, want %v", seed, id, got, want)
			}
		}
		all := map[protocols.CommandID]bool{}
		for id := range s.All() {
			if all[id] || !ref[id] {
				t.Fatalf("seed %d: All yields %v twice or wrongly", seed, id)
			}
			all[id] = true
		}
		if len(all) != len(ref) {
			t.Fatalf("seed %d: All yields %d ids, want %d", seed, len(all), len(ref))
		}
		s.Reset()
		if s.Len() != 0 || s.Has(probes[0]) {
			t.Fatalf("seed %d: Reset left members", seed)
		}
	}
}

// TestSetSequentialStaysSmall checks that a long sequential client keeps a
// bounded bitmap and no outliers, and a client with a hole keeps only the
// hole.
func TestSetSequentialStaysSmall(t *testing.T) {
	var s Set
	for seq := uint64(1); seq <= 1_000_000; seq++ {
		if seq == 500 {
			continue
		}
		s.Add(protocols.CommandID{Client: 7, Seq: seq})
	}
	w := s.window(7)
	if len(w.bits) > maxWords || len(w.extra) != 0 || len(w.holes) != 1 {
		t.Fatalf("bitmap %d words, %d outliers, %d holes; want at most %d, 0, 1", len(w.bits), len(w.extra), len(w.holes), maxWords)
	}
	if s.Has(protocols.CommandID{Client: 7, Seq: 500}) || !s.Has(protocols.CommandID{Client: 7, Seq: 499}) {
		t.Fatal("hole 500 lost")
	}
}

func BenchmarkSetSequential(b *testing.B) {
	var s Set
	var seq uint64
	for b.Loop() {
		seq++
		id := protocols.CommandID{Client: seq % 50, Seq: seq / 50}
		if !s.Has(id) {
			s.Add(id)
		}
	}
}

func BenchmarkMapSequential(b *testing.B) {
	m := map[protocols.CommandID]bool{}
	var seq uint64
	for b.Loop() {
		seq++
		id := protocols.CommandID{Client: seq % 50, Seq: seq / 50}
		if !m[id] {
			m[id] = true
		}
	}
}
