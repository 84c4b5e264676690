package statehash

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

type node struct {
	name   string
	next   *node
	vals   map[string][]int
	iface  any
	fn     func()
	hidden int
}

// TestEqualContentsHashAlike: copies built in different orders (maps
// filled in another order, pointers to distinct but equal values) hash
// alike; a change anywhere, even in an unexported field behind a pointer
// inside a map, changes the hash.
func TestEqualContentsHashAlike(t *testing.T) {
	build := func(order []string, leaf int) *node {
		n := &node{name: "a", vals: map[string][]int{}, iface: &node{name: "i", hidden: leaf}, fn: func() {}}
		for _, k := range order {
			n.vals[k] = []int{len(k), leaf}
		}
		n.next = &node{name: "b", next: n} // a cycle back to n
		return n
	}
	a, b := build([]string{"x", "yy", "zzz"}, 1), build([]string{"zzz", "x", "yy"}, 1)
	require.Equal(t, Of(a), Of(b))
	require.NotEqual(t, Of(a), Of(build([]string{"x", "yy", "zzz"}, 2)), "a change behind an interface and in a map")
	c := build([]string{"x", "yy", "zzz"}, 1)
	c.iface.(*node).hidden = 7
	require.NotEqual(t, Of(a), Of(c), "an unexported field behind a pointer")
	d := build([]string{"x", "yy"}, 1)
	require.NotEqual(t, Of(a), Of(d), "a map entry fewer")
	e := build([]string{"x", "yy", "zzz"}, 1)
	e.vals["x"] = nil
	f := build([]string{"x", "yy", "zzz"}, 1)
	f.vals["x"] = []int{}
	require.NotEqual(t, Of(e), Of(f), "nil and empty slices")
}

// TestSkip: AddFields leaves out exactly the fields named and refuses a
// name the struct does not have.
func TestSkip(t *testing.T) {
	a, b := &node{name: "a", hidden: 1}, &node{name: "a", hidden: 2}
	require.NotEqual(t, Of(a), Of(b))
	require.Equal(t, Of(a, "hidden"), Of(b, "hidden"))
	require.NotEqual(t, Of(a, "name"), Of(&node{name: "b", hidden: 1}, "hidden"))
	require.Panics(t, func() { Of(a, "hiden") })
}

// TestRandomSource: a random source hashes by its state, so two sources
// that drew different numbers differ and two in the same state agree.
func TestRandomSource(t *testing.T) {
	r1, r2 := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(1, 2))
	require.Equal(t, Of(r1), Of(r2))
	r1.Uint64()
	require.NotEqual(t, Of(r1), Of(r2))
	r2.Uint64()
	require.Equal(t, Of(r1), Of(r2))
}
