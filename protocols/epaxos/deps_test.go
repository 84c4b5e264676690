package epaxos

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
)

// randDots returns up to max dots of nodes 1..4 (sometimes 9, not a peer)
// with small and large sequence numbers, in no order, with duplicates.
func randDots(r *rand.Rand, max int) []Dot {
	n := r.IntN(max + 1)
	if n == 0 {
		return nil
	}
	out := make([]Dot, n)
	for i := range out {
		node := protocols.NodeID(1 + r.IntN(4))
		if r.IntN(20) == 0 {
			node = 9
		}
		seq := uint64(r.IntN(12))
		if r.IntN(5) == 0 {
			seq = 1<<14 + uint64(r.IntN(1<<20))
		}
		out[i] = Dot{Node: node, Seq: seq}
	}
	return out
}

// sortedUnique is the reference normalization: sorted, no duplicates, no
// self, nil when empty.
func sortedUnique(ds []Dot, self Dot) []Dot {
	var out []Dot
	for _, d := range ds {
		if d != self && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, Dot.Compare)
	return out
}

// Before sharing, every set was built by union (nil when empty): the
// references below are those implementations, so that the new ones are
// checked to return the same sets in the same representation (nil or not),
// which the fingerprints of explored states see.

func refNormDeps(ds []Dot, self Dot) []Dot {
	out := union(ds)
	if i, ok := slices.BinarySearchFunc(out, self, Dot.Compare); ok {
		out = slices.Delete(out, i, i+1)
	}
	return out
}

func (r *Replica) refConflicts(c protocols.Command, d Dot) []Dot {
	sets := [][]Dot{r.nops}
	for _, k := range dedupKeys(c.Keys) {
		sets = append(sets, r.keyIndex[k])
	}
	out := union(sets...)
	if i, ok := slices.BinarySearchFunc(out, d, Dot.Compare); ok {
		out = slices.Delete(out, i, i+1)
	}
	return out
}

// TestDependencySetsAreSharedNotModified checks the set helpers that
// dependency computation relies on against plain references on random
// sets: normDeps normalizes (returning an already normalized set itself),
// covers is inclusion, withConflicts is deps ∪ conflicts (deps itself when
// nothing is added), conflicts is a fresh copy, and none of them writes
// into an argument, since the slices are shared between replicas.
func TestDependencySetsAreSharedNotModified(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 4))
	rep := &Replica{keyIndex: map[string][]Dot{}}
	for i := range 3000 {
		self := Dot{Node: protocols.NodeID(1 + r.IntN(4)), Seq: uint64(r.IntN(12))}
		raw := randDots(r, 12)
		before := slices.Clone(raw)
		norm := normDeps(raw, self)
		require.Equal(t, before, raw, "case %d: normDeps modified its argument", i)
		require.Equal(t, refNormDeps(raw, self), norm, "case %d: normDeps(%v, %v)", i, raw, self)
		require.ElementsMatch(t, sortedUnique(raw, self), norm, "case %d: normDeps(%v, %v)", i, raw, self)
		if len(raw) > 0 && slices.Equal(raw, sortedUnique(raw, self)) {
			require.True(t, sameSlice(norm, raw), "case %d: a normalized set must be returned itself", i)
		}

		// A key index and nops, kept sorted as index() keeps them.
		rep.keyIndex["a"], rep.keyIndex["b"], rep.nops = nil, nil, nil
		for _, d := range randDots(r, 10) {
			rep.keyIndex["a"] = insertSorted(rep.keyIndex["a"], d)
		}
		for _, d := range randDots(r, 3) {
			rep.keyIndex["b"] = insertSorted(rep.keyIndex["b"], d)
		}
		if r.IntN(3) == 0 {
			for _, d := range randDots(r, 2) {
				rep.nops = insertSorted(rep.nops, d)
			}
		}
		keys := [][]string{{"a"}, {"b", "a"}, {"c"}, {"a", "a"}}[r.IntN(4)]
		c := protocols.Command{Keys: keys}
		ka, kb, nops := slices.Clone(rep.keyIndex["a"]), slices.Clone(rep.keyIndex["b"]), slices.Clone(rep.nops)
		var all []Dot
		all = append(all, rep.nops...)
		for _, k := range keys {
			all = append(all, rep.keyIndex[k]...)
		}
		wantConf := sortedUnique(all, self)
		conf := rep.conflicts(c, self)
		require.Equal(t, rep.refConflicts(c, self), conf, "case %d: conflicts", i)
		require.ElementsMatch(t, wantConf, conf, "case %d: conflicts", i)
		if len(conf) > 0 && len(rep.keyIndex["a"]) > 0 {
			require.False(t, &conf[0] == &rep.keyIndex["a"][0], "case %d: conflicts must copy the key index", i)
		}

		deps := sortedUnique(randDots(r, 10), self)
		if deps == nil && r.IntN(2) == 0 {
			deps = []Dot{} // as normDeps([self]) returns it
		}
		depsBefore := slices.Clone(deps)
		wantCovers := true
		for _, d := range wantConf {
			wantCovers = wantCovers && slices.Contains(deps, d)
		}
		got := rep.withConflicts(deps, c, self)
		require.Equal(t, union(deps, rep.refConflicts(c, self)), got, "case %d: withConflicts", i)
		if wantCovers && len(deps) > 0 {
			require.True(t, sameSlice(got, deps), "case %d: covered conflicts must return deps itself", i)
		}
		require.Equal(t, depsBefore, deps, "case %d: withConflicts modified deps", i)
		require.Equal(t, ka, rep.keyIndex["a"], "case %d: key index modified", i)
		require.Equal(t, kb, rep.keyIndex["b"], "case %d: key index modified", i)
		require.Equal(t, nops, rep.nops, "case %d: nops modified", i)
	}
}

// TestPlausibleDotsIsPlausibleDotOfEach checks the per-run limit lookup of
// plausibleDots against plausibleDot on every dot.
func TestPlausibleDotsIsPlausibleDotOfEach(t *testing.T) {
	env := newNullEnv()
	rep, err := New(protocols.Config{Self: 2, Peers: []protocols.NodeID{1, 2, 3, 4, 5}, F: 2, Env: env, SuspectTicks: 10})
	require.NoError(t, err)
	rep.seq = 40
	rep.heard[3] = 1 << 20
	r := rand.New(rand.NewPCG(3, 9))
	accepted, refused := 0, 0
	for i := range 3000 {
		ds := randDots(r, 6)
		for j := range ds {
			switch r.IntN(10) {
			case 0:
				ds[j].Seq = maxSeqAhead + uint64(r.IntN(3))
			case 1:
				ds[j].Seq = 1<<20 + maxSeqAhead + uint64(r.IntN(3))
			case 2:
				ds[j].Seq = 40 + maxSeqAhead + uint64(r.IntN(3))
			}
		}
		if r.IntN(2) == 0 {
			slices.SortFunc(ds, Dot.Compare)
		}
		want := true
		for _, d := range ds {
			want = want && rep.plausibleDot(d)
		}
		require.Equal(t, want, rep.plausibleDots(ds), "case %d: %v", i, ds)
		if want {
			accepted++
		} else {
			refused++
		}
	}
	require.Positive(t, accepted)
	require.Positive(t, refused)
}

// TestInstanceRecordReusesEncodedDeps checks that instanceRecordWith
// allocates its record once at the exact size, that the record decodes to
// the instance, and that a record that reuses the deps encoding of the last
// one (same slice) equals a record encoded afresh, while a different slice
// with other dots is encoded anew.
func TestInstanceRecordReusesEncodedDeps(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	cmd := protocols.Command{ID: protocols.CommandID{Client: 3, Seq: 1 << 30}, Keys: []string{"k"}, Payload: []byte("put 1")}
	var e encodedDeps
	check := func(i int, in *instance) {
		want := instanceRecord(in)
		var rec []byte
		rec, e = instanceRecordWith(in, e)
		require.Equal(t, want, rec, "case %d", i)
		require.Equal(t, len(rec), cap(rec), "case %d: record not sized exactly", i)
		got, err := decodeInstance(rec)
		require.NoError(t, err, "case %d", i)
		require.Equal(t, in.deps, got.deps, "case %d", i)
		require.Equal(t, in.initDeps, got.initDeps, "case %d", i)
		require.Equal(t, in.phase, got.phase, "case %d", i)
		if len(in.deps) > 0 {
			require.True(t, sameSlice(e.of, in.deps), "case %d: the encoding returned is not of deps", i)
		}
	}
	hits := 0
	for i := range 500 {
		e = encodedDeps{}
		in := &instance{dot: Dot{Node: 2, Seq: uint64(1 + r.IntN(1<<16))}, phase: PreAccepted, val: CmdValue(cmd), init: CmdValue(cmd)}
		in.initDeps = sortedUnique(randDots(r, 8), in.dot)
		in.deps = in.initDeps
		if r.IntN(3) == 0 {
			in.deps = sortedUnique(append(slices.Clone(in.initDeps), randDots(r, 3)...), in.dot)
		}
		check(i, in)
		// Committed with the same slice: the encoding is reused.
		if e.of != nil {
			hits++
		}
		in.phase, in.bal, in.abal = Committed, ballot.Ballot{Round: 2, Node: 1}, ballot.Ballot{Round: 2, Node: 1}
		check(i, in)
		// Another slice of the same length but other dots.
		if len(in.deps) > 0 {
			other := slices.Clone(in.deps)
			other[len(other)-1].Seq += 1 << 21
			in.deps = other
			check(i, in)
		}
		// A Nop without deps.
		in.val, in.deps = NopValue, nil
		check(i, in)
	}
	require.Greater(t, hits, 100)
}

// TestRecordCopiesTheGivenEncoding: given the encoding of the very slice it
// persists, instanceRecordWith copies those bytes instead of encoding the
// deps again (a marker encoding shows up in the record).
func TestRecordCopiesTheGivenEncoding(t *testing.T) {
	deps := []Dot{{Node: 1, Seq: 3}, {Node: 3, Seq: 7}}
	in := &instance{dot: Dot{Node: 2, Seq: 1}, phase: Committed, deps: deps, initDeps: deps}
	marker := []byte{2, 1, 3, 3, 8} // deps with 8 in place of 7
	rec, e := instanceRecordWith(in, encodedDeps{of: deps, enc: marker})
	got, err := decodeInstance(rec)
	require.NoError(t, err)
	want := []Dot{{Node: 1, Seq: 3}, {Node: 3, Seq: 8}}
	require.Equal(t, want, got.deps, "the given encoding was not copied")
	require.Equal(t, want, got.initDeps)
	require.True(t, sameSlice(e.of, deps))
	// Another slice with the same dots is encoded afresh.
	rec, _ = instanceRecordWith(in, encodedDeps{of: slices.Clone(deps), enc: marker})
	got, err = decodeInstance(rec)
	require.NoError(t, err)
	require.Equal(t, deps, got.deps)
}

// TestEncodingCacheEmptiesAsInstancesExecute: the per-instance encoding
// cache of persist holds only instances not yet executed.
func TestEncodingCacheEmptiesAsInstancesExecute(t *testing.T) {
	c := newCluster(t, 3, 1, 1)
	for i := range 6 {
		c.reps[protocols.NodeID(1+i%3)].Submit(cmd(uint64(i+1), "a"))
	}
	filled := 0
	for _, id := range c.ids {
		filled += len(c.reps[id].encoded)
	}
	require.Positive(t, filled, "nothing was cached while commands were in flight")
	c.stabilize()
	for _, id := range c.ids {
		require.Len(t, c.envs[id].executed, 6, "replica %d", id)
		require.Empty(t, c.reps[id].encoded, "replica %d keeps encodings of executed instances", id)
	}
}
