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

// TestForwardProposedAsIs checks the leader's proposal of a forwarded list:
// proposed in the next slot without a copy when the batch is empty and the
// pipeline has room, and through the batch (a copy holding each command
// once) otherwise: a list that repeats a command, a command already
// proposed, a full pipeline.
func TestForwardProposedAsIs(t *testing.T) {
	nt := newTNet(t, 1, 3, Options{})
	nt.drop = 0
	all := func(tMsg) bool { return true }
	n1 := nt.nodes[1]
	n1.r.campaign()
	nt.pass(5, all)
	require.Equal(t, leader, n1.r.role, "1 leads")
	cmd := func(seq uint64) protocols.Command {
		return protocols.Command{ID: protocols.CommandID{Client: 9, Seq: seq}, Keys: []string{"k"}}
	}

	// A forward of one command: slot 1 holds the forward's own array.
	fwd := make([]protocols.Command, 1, 4)
	fwd[0] = cmd(1)
	n1.r.Step(2, Forward{Cmds: fwd})
	e := n1.r.at(1)
	require.NotNil(t, e, "slot 1 proposed")
	require.Equal(t, fwd, e.cmds)
	require.Same(t, &fwd[0], &e.cmds[0], "the forwarded list is proposed as is")
	require.Equal(t, 1, cap(e.cmds), "a proposed list's capacity is its length")

	// The same forward again proposes nothing.
	n1.r.Step(2, Forward{Cmds: fwd})
	require.Nil(t, n1.r.at(2), "a proposed command is not proposed twice")

	// A list naming a command twice is proposed through the batch, once.
	twice := []protocols.Command{cmd(2), cmd(2)}
	n1.r.Step(2, Forward{Cmds: twice})
	e = n1.r.at(2)
	require.NotNil(t, e, "slot 2 proposed")
	require.Equal(t, []protocols.Command{cmd(2)}, e.cmds)
	require.NotSame(t, &twice[0], &e.cmds[0], "a list with a repeat is copied")

	// Fill the pipeline: the next forward waits in the batch, and is
	// proposed from a copy once slots are chosen.
	seq := uint64(3)
	for n1.r.next-n1.r.commit <= maxInflight {
		n1.r.Step(2, Forward{Cmds: []protocols.Command{cmd(seq)}})
		seq++
	}
	last := n1.r.next - 1
	held := []protocols.Command{cmd(seq)}
	n1.r.Step(2, Forward{Cmds: held})
	require.Nil(t, n1.r.at(last+1), "a full pipeline proposes nothing")
	require.Equal(t, held, n1.r.batch)
	nt.pass(10, all)
	found := false
	for s := uint64(1); s <= n1.r.lastSlot(); s++ {
		if e := n1.r.at(s); len(e.cmds) > 0 && e.cmds[0].ID == held[0].ID {
			found = true
			require.NotSame(t, &held[0], &e.cmds[0], "a batched command is copied")
		}
	}
	require.True(t, found, "the held command was proposed once slots were chosen")
}
