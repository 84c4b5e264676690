package wire

import (
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
