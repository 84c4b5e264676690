package paxos

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
)

// TestSlotLogModel checks the paged log against a slice under random
// growth and truncation across page boundaries: same length, same entries,
// and dropped entries cleared.
func TestSlotLogModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var l slotLog
	var model []entry
	next := uint64(1)
	for step := range 20000 {
		if r.IntN(3) > 0 {
			e := l.grow()
			require.Equal(t, entry{}, *e, "step %d: a new entry is zero", step)
			e.bal = ballot.Ballot{Round: next, Node: 1}
			model = append(model, *e)
			next++
		} else if len(model) > 0 {
			k := r.IntN(min(len(model), 3*logPage) + 1)
			var dropped []*entry
			for i := range k {
				dropped = append(dropped, l.at(i))
			}
			l.dropFront(k)
			model = model[k:]
			for _, e := range dropped {
				require.Equal(t, entry{}, *e, "step %d: a dropped entry is cleared", step)
			}
		}
		require.Equal(t, len(model), l.len(), "step %d", step)
		for _, i := range []int{0, len(model) / 2, len(model) - 1} {
			if i >= 0 && i < len(model) {
				require.Equal(t, model[i], *l.at(i), "step %d entry %d", step, i)
			}
		}
		require.LessOrEqual(t, len(l.pages), (l.off+l.len())/logPage+1, "step %d: pages before the first entry are dropped", step)
	}
}

// TestCmdArena checks the lists cut from a cmdArena: each equals the list
// it copies, however the source changes later; an append to one leaves its
// neighbours alone (a list cut from a chunk has its length as capacity);
// an empty list is nil.
func TestCmdArena(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var a cmdArena
	var want, got [][]protocols.Command
	seq := uint64(0)
	for range 2000 {
		src := make([]protocols.Command, r.IntN(maxBatch+8))
		for i := range src {
			seq++
			src[i] = protocols.Command{ID: protocols.CommandID{Client: 1, Seq: seq}, Keys: []string{"k"}}
		}
		want = append(want, slices.Clone(src))
		l := a.cut(src...)
		if len(src) == 0 {
			require.Nil(t, l)
		}
		if len(src) <= cmdChunk/4 { // cut from a chunk
			require.Equal(t, len(l), cap(l))
		}
		got = append(got, l)
		clear(src) // the source is reused by its owner
	}
	for i := range got {
		got[i] = append(got[i], protocols.Command{ID: protocols.CommandID{Client: 2, Seq: uint64(i)}})
	}
	for i := range got {
		require.Equal(t, want[i], got[i][:len(got[i])-1], "list %d", i)
	}
}
