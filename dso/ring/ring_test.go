package ring

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRingSpreadsObjectsOverAllNodes(t *testing.T) {
	t.Parallel()
	r, err := New([]string{"a:1", "b:1", "c:1"}, 0)
	require.NoError(t, err)
	count := map[string]int{}
	for i := 0; i < 30000; i++ {
		count[r.Owner("AtomicLong", fmt.Sprint("k", i))]++
	}
	require.Equal(t, 3, len(count))
	for n, c := range count {
		require.True(t, c > 6000, "node %s got too few objects", n)
	}
}

func TestRingAgreesRegardlessOfNodeOrder(t *testing.T) {
	t.Parallel()
	r1, _ := New([]string{"a:1", "b:1", "c:1"}, 0)
	r2, _ := New([]string{"c:1", "a:1", "b:1", "a:1"}, 0)
	for i := 0; i < 1000; i++ {
		k := fmt.Sprint(i)
		require.Equal(t, r1.Owner("Map", k), r2.Owner("Map", k))
	}
}

func TestRingMovesFewObjectsWhenANodeJoins(t *testing.T) {
	t.Parallel()
	r1, _ := New([]string{"a:1", "b:1", "c:1"}, 0)
	r2, _ := New([]string{"a:1", "b:1", "c:1", "d:1"}, 0)
	moved := 0
	for i := 0; i < 10000; i++ {
		k := fmt.Sprint(i)
		o1, o2 := r1.Owner("T", k), r2.Owner("T", k)
		if o1 != o2 {
			require.Equal(t, "d:1", o2)
			moved++
		}
	}
	require.True(t, moved < 4000, moved)
}

func TestRingRejectsNoNodes(t *testing.T) {
	t.Parallel()
	_, err := New(nil, 0)
	require.Error(t, err)
}
