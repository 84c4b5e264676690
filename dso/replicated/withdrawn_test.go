package replicated

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/protocols"
)

// TestWithdrawnIsASet: the same withdrawals added in two orders, beyond
// MaxWithdrawn, leave the same calls remembered and the same encoding;
// at most MaxWithdrawn stay.
func TestWithdrawnIsASet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]protocols.CommandID, MaxWithdrawn+500)
	for i := range ids {
		ids[i] = protocols.CommandID{Client: r.Uint64N(50), Seq: r.Uint64()}
	}
	var a, b withdrawnCalls
	for _, id := range ids {
		a.add(id, withdrawnCall{code: wire.CodeTimeout, msg: "t"})
	}
	shuffled := slices.Clone(ids)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, id := range shuffled {
		b.add(id, withdrawnCall{code: wire.CodeTimeout, msg: "t"})
	}
	require.LessOrEqual(t, len(a.m), MaxWithdrawn)
	require.Equal(t, a.ids(), b.ids())
	require.Equal(t, a.appendTo(nil), b.appendTo(nil))
	_, ok := a.take(a.ids()[0])
	require.True(t, ok)
}
