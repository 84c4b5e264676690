package ballot

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBallotOrderAndNext(t *testing.T) {
	z := Ballot{}
	require.True(t, z.IsZero())
	b := z.Next(3)
	require.Equal(t, Ballot{Round: 0, Node: 3}, b)
	require.True(t, z.Less(b))
	// The next ballot of a lower-numbered node must still be higher.
	c := b.Next(1)
	require.Equal(t, Ballot{Round: 1, Node: 1}, c)
	require.True(t, b.Less(c))
	require.Equal(t, c, Max(b, c))
	require.Equal(t, c, Max(c, b))
	require.False(t, c.Less(c))
}
