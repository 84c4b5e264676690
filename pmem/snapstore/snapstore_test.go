package snapstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/pmem"
)

// data returns n deterministic pseudo-random bytes.
func data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestSaveLoadFileHeap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.heap")
	h, err := pmem.Create(path, 32<<20, nil)
	require.NoError(t, err)
	s, err := Open(h)
	require.NoError(t, err)
	g0, g1 := s.Named("group-0"), s.Named("group-1")
	idx, got, err := g0.Load()
	require.NoError(t, err)
	require.Zero(t, idx)
	require.Nil(t, got)

	sizes := []int{0, 1, ChunkBytes, ChunkBytes + 1, 3*ChunkBytes - 5, 100}
	for i, n := range sizes {
		d := data(uint64(i), n)
		require.NoError(t, g0.Save(uint64(10*i+1), d))
		require.NoError(t, g1.Save(uint64(10*i+2), data(uint64(i+100), n/2)))
		idx, got, err := g0.Load()
		require.NoError(t, err)
		require.Equal(t, uint64(10*i+1), idx)
		require.True(t, bytes.Equal(d, got), "size %d", n)
	}
	st, err := h.Check()
	require.NoError(t, err, "no leak after the swaps")
	require.NoError(t, h.Close())

	h, err = pmem.Open(path)
	require.NoError(t, err)
	defer h.Close()
	require.Zero(t, h.Recovery().Freed, "the swaps left nothing unreachable")
	s, err = Open(h)
	require.NoError(t, err)
	idx, got, err = s.Named("group-0").Load()
	require.NoError(t, err)
	require.Equal(t, uint64(51), idx)
	require.Equal(t, data(5, 100), got)
	names, err := s.Names()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"group-0", "group-1"}, names)
	require.NoError(t, s.Named("group-1").Delete())
	idx, _, err = s.Named("group-1").Load()
	require.NoError(t, err)
	require.Zero(t, idx)
	st2, err := h.Check()
	require.NoError(t, err)
	require.Less(t, st2.Allocated, st.Allocated)
}

// TestLoadRefusesDamage: a flipped data byte fails the checksum, and the
// error names the heap file and the snapshot.
func TestLoadRefusesDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "node.heap")
	h, err := pmem.Create(path, 8<<20, nil)
	require.NoError(t, err)
	defer h.Close()
	s, err := Open(h)
	require.NoError(t, err)
	g := s.Named("group-2")
	require.NoError(t, g.Save(9, data(1, ChunkBytes+500)))
	require.NoError(t, h.Atomic(func(tx *pmem.Tx) error {
		p, _ := s.m.Get(tx, []byte("group-2"))
		c := tx.Ptr(tx.Ptr(pmem.Ptr(p)+fTable) + 8) // second chunk
		b := tx.Bytes(c+8+100, 1)
		tx.Write(c+8+100, []byte{b[0] ^ 1})
		return nil
	}))
	_, _, err = g.Load()
	require.ErrorIs(t, err, pmem.ErrCorrupt)
	require.Contains(t, err.Error(), path)
	require.Contains(t, err.Error(), `"group-2"`)
	require.Contains(t, err.Error(), "checksum")
}

// TestOpenRefusesForeignHeap: a file that is not a heap is refused by
// pmem.Open with an error naming it, before the store sees it.
func TestOpenRefusesForeignHeap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "foreign.heap")
	require.NoError(t, os.WriteFile(path, bytes.Repeat([]byte("not a heap "), 100000), 0o644))
	_, err := pmem.Open(path)
	require.Error(t, err)
	require.Contains(t, err.Error(), path)
}

// crashRun saves A then B on a crash simulator, crashing at persistence
// event crashAt during B's Save (0: no crash), then recovers and returns
// what Load finds and the heap's check; events is the number of the last
// event before B's Save and after it.
type crashOutcome struct {
	before, after int // events before and after B's Save (no crash)
	index         uint64
	data          []byte
	loadErr       error
	checkErr      error
	crashed       bool
}

const simSize = 6 << 20

var (
	snapA = data(11, 2*ChunkBytes+300) // three chunks
	snapB = data(12, ChunkBytes-7)     // one chunk
	snapC = data(13, ChunkBytes/3)     // one chunk of another class
)

func crashRun(t *testing.T, seed uint64, crashAt int, split bool) crashOutcome {
	t.Helper()
	sim := pmem.NewSim(simSize)
	h, err := sim.Create(nil)
	require.NoError(t, err)
	s, err := Open(h)
	require.NoError(t, err)
	g := s.Named("group-0")
	// An earlier snapshot of another size fills the free lists, so B
	// reuses freed blocks (logged) as well as carving new ones.
	require.NoError(t, g.Save(1, snapC))
	require.NoError(t, g.Save(2, snapA))
	s.splitSwap = split
	var out crashOutcome
	out.before = sim.Events()
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(*pmem.SimCrash); !ok {
					panic(r)
				}
				out.crashed = true
			}
		}()
		if crashAt > 0 {
			sim.CrashAt(crashAt)
		}
		require.NoError(t, g.Save(3, snapB))
	}()
	out.after = sim.Events()
	sim.CrashAt(0)
	sim.Crash(rand.New(rand.NewPCG(seed, uint64(crashAt))))
	h, err = sim.Open()
	require.NoError(t, err, "recovery after a crash at event %d", crashAt)
	s, err = Open(h)
	require.NoError(t, err)
	out.index, out.data, out.loadErr = s.Named("group-0").Load()
	_, out.checkErr = h.Check()
	return out
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// swapCrashes crashes B's Save at each of its persistence events, with
// seeds seeds per event, and counts what recovery found: the old snapshot
// whole, the new one whole, or a violation (anything else, a load error,
// a leak).
func swapCrashes(t *testing.T, seeds int, split bool) (old, new int, violations []string) {
	ref := crashRun(t, 1, 0, split)
	require.False(t, ref.crashed)
	require.Greater(t, ref.after, ref.before)
	for ev := ref.before + 1; ev <= ref.after; ev++ {
		for seed := range uint64(seeds) {
			o := crashRun(t, seed, ev, split)
			require.True(t, o.crashed, "event %d", ev)
			switch {
			case o.loadErr != nil:
				violations = append(violations, fmt.Sprintf("event %d seed %d: load: %v", ev, seed, o.loadErr))
			case o.checkErr != nil:
				violations = append(violations, fmt.Sprintf("event %d seed %d: check: %v", ev, seed, o.checkErr))
			case o.index == 2 && bytes.Equal(o.data, snapA):
				old++
			case o.index == 3 && bytes.Equal(o.data, snapB):
				new++
			default:
				violations = append(violations, fmt.Sprintf("event %d seed %d: index %d, %d bytes: neither the old snapshot nor the new", ev, seed, o.index, len(o.data)))
			}
		}
	}
	return old, new, violations
}

// TestSwapCrashKeepsOldOrNew crashes a snapshot swap at every persistence
// event of its Save (with several seeded choices of which unflushed cache
// lines reach the medium) and requires recovery to find the old snapshot
// or the new one, whole, and a heap without leaks; both outcomes must
// occur (crashes before and after the commit point).
func TestSwapCrashKeepsOldOrNew(t *testing.T) {
	seeds := envInt("SNAPSTORE_SEEDS", 4)
	if testing.Short() {
		seeds = 1
	}
	old, new, violations := swapCrashes(t, seeds, false)
	t.Logf("snapshot swap: %d crashes, old snapshot kept %d, new %d, violations %d", old+new+len(violations), old, new, len(violations))
	require.Empty(t, violations)
	require.Positive(t, old)
	require.Positive(t, new)
}

// TestSabotageSplitSwap: a Save that drops the old snapshot in one block
// and puts the new one in the next must be caught by the crash test.
func TestSabotageSplitSwap(t *testing.T) {
	old, new, violations := swapCrashes(t, 1, true)
	if len(violations) == 0 {
		t.Fatalf("a swap in two blocks went unnoticed (%d old, %d new)", old, new)
	}
	t.Logf("sabotage (swap in two blocks) caught: %d violations of %d crashes; first: %s", len(violations), old+new+len(violations), violations[0])
}

// TestSaveOutOfMemoryKeepsOld: a snapshot the heap has no room for fails
// with pmem.ErrOutOfMemory and leaves the previous one, and no leak.
func TestSaveOutOfMemoryKeepsOld(t *testing.T) {
	h, err := pmem.NewVolatile(2<<20, nil)
	require.NoError(t, err)
	s, err := Open(h)
	require.NoError(t, err)
	g := s.Named("group-0")
	old := data(31, 600<<10)
	require.NoError(t, g.Save(4, old))
	err = g.Save(5, data(32, 1500<<10))
	require.ErrorIs(t, err, pmem.ErrOutOfMemory)
	idx, got, err := g.Load()
	require.NoError(t, err)
	require.Equal(t, uint64(4), idx)
	require.Equal(t, old, got)
	_, err = h.Check()
	require.NoError(t, err)
}
