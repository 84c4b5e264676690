package ring

import (
	"fmt"
	"slices"
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

func TestGroup(t *testing.T) {
	nodes := []string{"a:1", "b:1", "c:1", "d:1", "e:1", "f:1"}
	r, err := New(nodes, 0)
	if err != nil {
		t.Fatal(err)
	}
	for k := range 200 {
		key := fmt.Sprint("k", k)
		owner := r.Owner("AtomicLong", key)
		o := slices.Index(nodes, owner)
		// Ring groups: the owner and the next rf-1 nodes.
		g, m := r.Group("AtomicLong", key, 3, false)
		want := []string{nodes[o], nodes[(o+1)%6], nodes[(o+2)%6]}
		if g != o || !slices.Equal(m, want) {
			t.Fatalf("%s: ring group %d %v, want %d %v", key, g, m, o, want)
		}
		// One group when rf covers every node.
		if g, m := r.Group("AtomicLong", key, 6, false); g != 0 || len(m) != 6 || m[0] != owner {
			t.Fatalf("%s: full group %d %v", key, g, m)
		}
		// Disjoint groups {a,b,c} and {d,e,f}, the owner first.
		g, m = r.Group("AtomicLong", key, 3, true)
		if g != o/3 || len(m) != 3 || m[0] != owner {
			t.Fatalf("%s: disjoint group %d %v (owner %s)", key, g, m, owner)
		}
		for _, x := range m {
			if slices.Index(nodes, x)/3 != g {
				t.Fatalf("%s: member %s outside group %d", key, x, g)
			}
		}
	}
}
