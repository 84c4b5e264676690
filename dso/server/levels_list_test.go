package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
)

// TestListAndDeleteAtEveryLevel checks that ListAll lists the persistent
// objects of every degradation level with their level beside the
// ephemeral and linearizable ones, and that Delete removes a sequential
// object at every replica (a later call makes a fresh one), fails naming
// the level for an object of another level, and refuses the weak level.
func TestListAndDeleteAtEveryLevel(t *testing.T) {
	pc := startLevels(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := pc.dial(t)
	seq := c.Persistent().At(degradable.Sequential)
	for _, h := range []dso.Counter{
		dso.NewCounter(c, "e"), dso.NewCounter(c.Persistent(), "lin"),
		dso.NewCounter(seq, "s"), dso.NewCounter(c.Persistent().At(degradable.Weak), "w"),
	} {
		_, err := h.Increment(ctx, 2)
		require.NoError(t, err)
	}
	type row struct {
		key        string
		persistent bool
		level      degradable.Level
	}
	list := func() []row {
		objs, err := c.ListAll(ctx, dso.TypeCounter)
		require.NoError(t, err)
		var out []row
		for _, o := range objs {
			out = append(out, row{o.Ref.Key, o.Persistent, o.Level})
		}
		return out
	}
	require.Equal(t, []row{{"e", false, 0}, {"lin", true, degradable.Linearizable}, {"s", true, degradable.Sequential}, {"w", true, degradable.Weak}}, list())

	s := dso.Ref{Type: dso.TypeCounter, Key: "s"}
	_, err := c.Persistent().Delete(ctx, s)
	require.ErrorIs(t, err, dso.ErrBadArgs)
	require.ErrorContains(t, err, "created at the sequential level")
	_, err = c.Persistent().At(degradable.Weak).Delete(ctx, dso.Ref{Type: dso.TypeCounter, Key: "w"})
	require.ErrorIs(t, err, dso.ErrBadArgs)
	require.ErrorContains(t, err, "weak level cannot be deleted")
	ok, err := seq.Delete(ctx, s)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = seq.Delete(ctx, s)
	require.NoError(t, err)
	require.False(t, ok, "deleted twice")
	require.Eventually(t, func() bool {
		return len(list()) == 3
	}, 30*time.Second, 20*time.Millisecond, "a replica still lists the deleted sequential counter: %v", list())
	v, err := dso.NewCounter(seq, "s").Increment(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, int64(1), v, "the deleted counter's value survived")
}
