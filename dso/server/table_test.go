package server

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEntryTableMatchesMap runs random puts, gets and removes on an
// entryTable and a map and checks they agree (few distinct keys, so runs
// collide, wrap around and shift back).
func TestEntryTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tab entryTable
	ref := map[string]*entry{}
	for i := 0; i < 200000; i++ {
		key := fmt.Sprint("k", rng.IntN(3000))
		h := hashKey(key)
		switch rng.IntN(3) {
		case 0:
			if ref[key] == nil {
				e := &entry{key: key}
				ref[key] = e
				tab.put(e, h)
			}
		case 1:
			require.Same(t, ref[key], tab.remove(key, h), key)
			delete(ref, key)
		}
		require.Equal(t, ref[key], tab.get(key, h), key)
		require.Equal(t, len(ref), tab.n)
	}
	n := 0
	tab.each(func(e *entry) {
		require.Same(t, ref[e.key], e)
		n++
	})
	require.Equal(t, len(ref), n)
	for k, e := range ref {
		require.Same(t, e, tab.get(k, hashKey(k)))
	}
}
