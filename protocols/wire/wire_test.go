package wire

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
)

func TestRoundTripAndStickyErrors(t *testing.T) {
	c := protocols.Command{ID: protocols.CommandID{Client: 5, Seq: 6}, Keys: []string{"x", ""}, Payload: []byte{1, 2}}
	b := AppendCommands(nil, []protocols.Command{c, {ID: protocols.CommandID{Client: 1}}})
	b = AppendBallot(b, ballot.Ballot{Round: 3, Node: 2})
	b = AppendBool(b, true)
	r := NewReader(b)
	cs := r.Commands()
	require.Equal(t, []protocols.Command{c, {ID: protocols.CommandID{Client: 1}}}, cs)
	require.Equal(t, ballot.Ballot{Round: 3, Node: 2}, r.Ballot())
	require.True(t, r.Bool())
	require.NoError(t, r.Done())

	// A bad bool, then everything after it reads as zero with the first
	// error kept.
	r = NewReader([]byte{7, 1})
	require.False(t, r.Bool())
	require.Zero(t, r.Uvarint())
	require.ErrorIs(t, r.Err(), ErrMalformed)
	require.Contains(t, r.Err().Error(), "bad bool")

	// Trailing bytes are an error in Done.
	r = NewReader([]byte{1, 2})
	r.Uvarint()
	require.ErrorIs(t, r.Done(), ErrMalformed)

	// A length beyond the input is rejected without allocation.
	r = NewReader([]byte{0xff, 0xff, 0x03, 'a'})
	require.Nil(t, r.Bytes())
	require.Error(t, r.Err())

	// Node ids above 32 bits are rejected.
	r = NewReader(AppendUvarint(nil, 1<<33))
	r.NodeID()
	require.Error(t, r.Err())
}

// TestLengthsMatchEncodings checks UvarintLen, BallotLen, CommandLen and
// CommandsLen against the encoders, at varint boundaries and on random
// commands.
func TestLengthsMatchEncodings(t *testing.T) {
	var edges []uint64
	for sh := range 64 {
		v := uint64(1) << sh
		edges = append(edges, v-1, v, v+1)
	}
	edges = append(edges, 0, ^uint64(0))
	for _, v := range edges {
		if got, want := UvarintLen(v), len(AppendUvarint(nil, v)); got != want {
			t.Fatalf("UvarintLen(%d) = %d, want %d", v, got, want)
		}
		b := ballot.Ballot{Round: v, Node: protocols.NodeID(v >> 3)}
		if got, want := BallotLen(b), len(AppendBallot(nil, b)); got != want {
			t.Fatalf("BallotLen(%v) = %d, want %d", b, got, want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		cs := make([]protocols.Command, r.IntN(4))
		for j := range cs {
			c := &cs[j]
			c.ID = protocols.CommandID{Client: edges[r.IntN(len(edges))], Seq: edges[r.IntN(len(edges))]}
			c.Acked = edges[r.IntN(len(edges))]
			for range r.IntN(3) {
				c.Keys = append(c.Keys, strings.Repeat("k", r.IntN(200)))
			}
			c.Payload = make([]byte, r.IntN(300))
		}
		if got, want := CommandsLen(cs), len(AppendCommands(nil, cs)); got != want {
			t.Fatalf("case %d: CommandsLen = %d, want %d (%+v)", i, got, want, cs)
		}
	}
}
