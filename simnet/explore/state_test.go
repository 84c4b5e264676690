package explore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	_ "github.com/blossom-dso/blossom/protocols/mencius"    // registers mencius
	_ "github.com/blossom-dso/blossom/protocols/sequential" // registers sequential
	"github.com/blossom-dso/blossom/protocols/statehash"
	_ "github.com/blossom-dso/blossom/protocols/weak" // registers weak
	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// atlas-fp-graph is atlas with a fingerprint that leaves out the
// dependency graph of its replica's state: a planted bug in a
// Fingerprinter.
func init() {
	spec, err := protocols.Lookup("atlas")
	if err != nil {
		panic(err)
	}
	protocols.Register("atlas-fp-graph", func(cfg protocols.Config) (protocols.Protocol, error) {
		p, err := spec.New(cfg)
		return omitFP{Protocol: p, omit: "graph"}, err
	}, spec.Codec)
}

type omitFP struct {
	protocols.Protocol
	omit string
}

func (o omitFP) Fingerprint() uint64 { return statehash.Of(o.Protocol, "cfg", "env", o.omit) }

// observation is what the checks see of a finished schedule: the history
// (calls, answers, their order) and every replica incarnation's
// executions, and the fingerprint of the whole final state.
func observation(o *Outcome, final uint64) string {
	var b strings.Builder
	for _, op := range o.Result.History {
		fmt.Fprintf(&b, "%d:%s:%v:%d:%d:%d-%d:%s,", op.Client, op.Key, op.Put, op.Value, op.Output, op.Call, op.Return, op.Outcome)
	}
	for _, n := range o.Result.PerNode {
		fmt.Fprintf(&b, "|%v", n.Executions)
	}
	fmt.Fprintf(&b, "|%x", final)
	return b.String()
}

// exhaustiveFinals runs Exhaustive and returns the observations of the schedules
// that ran to their end.
func exhaustiveFinals(t *testing.T, sc Scope, opt Options) (map[string]bool, *Report) {
	seen := map[string]bool{}
	opt.each = func(o *Outcome, final uint64) { seen[observation(o, final)] = true }
	rep := Exhaustive(sc, opt)
	require.Nil(t, rep.Failure, "%s", rep)
	require.True(t, rep.Covered, "%s", rep)
	return seen, rep
}

// TestStateHashingSound: on a small atlas scope the search with state
// hashing reaches exactly the final states (histories, executions and the
// whole state's fingerprint) that the search without hashing and the
// search with trace hashing (every Mazurkiewicz trace) reach, in
// fewer schedules; with a part of the run's state left out of the hash,
// or a field left out of atlas's fingerprint, it misses some.
func TestStateHashingSound(t *testing.T) {
	sc := Scope{Protocol: "atlas", Nodes: 3, Clients: 1, Ops: 2, Keys: 1, Conflict: 100, Reads: 50, Seed: 1,
		Budget: simnet.Budget{Steps: 100}}
	ref, repRef := exhaustiveFinals(t, sc, Options{Events: -1, Hashing: HashTrace})
	off, repOff := exhaustiveFinals(t, sc, Options{Events: -1, Hashing: HashOff})
	t.Logf("off: %d observations, %s", len(off), repOff)
	require.Equal(t, off, ref)
	on, repOn := exhaustiveFinals(t, sc, Options{Events: -1, Hashing: HashState})
	t.Logf("trace: %d observations, %s", len(ref), repRef)
	t.Logf("state: %d observations, %s", len(on), repOn)
	require.Equal(t, ref, on)
	require.Greater(t, len(ref), 4)
	require.Less(t, repOn.Schedules, repRef.Schedules)
	require.Positive(t, repOn.Pruned)
	// Without the messages in flight, or the replicas, states that differ
	// there are taken for one; so are states whose replicas' dependency
	// graphs differ when atlas's fingerprint leaves out its graph.
	for _, omit := range []simnet.StatePart{simnet.PartNetwork, simnet.PartReplicas} {
		got, rep := exhaustiveFinals(t, sc, Options{Events: -1, Hashing: HashState, omit: omit})
		t.Logf("state without part %d: %d observations, %s", omit, len(got), rep)
		require.Less(t, len(got), len(ref), "leaving part %d out of the hash changed nothing", omit)
	}
	sc.Protocol = "atlas-fp-graph"
	got, rep := exhaustiveFinals(t, sc, Options{Events: -1, Hashing: HashState})
	t.Logf("fingerprint without the graph: %d observations, %s", len(got), rep)
	require.Less(t, len(got), len(ref), "leaving the graph out of the fingerprint changed nothing")
}

// TestFingerprinters: the protocols that offer a fingerprint get state
// hashing under HashAuto; a multicast run falls back to trace hashing.
func TestFingerprinters(t *testing.T) {
	for _, p := range []string{"paxos", "fpaxos", "epaxos", "atlas", "mencius", "weak", "sequential"} {
		sc := Scope{Protocol: p, Nodes: 3, Clients: 1, Ops: 1, Keys: 1, Conflict: 100, Seed: 1}
		require.Equal(t, HashState, resolveHashing(sc, HashAuto), p)
	}
	sc := Scope{Protocol: "wbcast", Groups: 2, Clients: 1, Ops: 1, Keys: 1, Seed: 1}
	require.Equal(t, HashTrace, resolveHashing(sc, HashAuto))
}

// TestWeakContract: explored schedules of weak and sequential are checked
// against their declared contracts, not linearizability: random walks
// over a scope in which weak's histories are not linearizable pass, and a
// read of a value no put wrote fails the weak contract's check.
func TestWeakContract(t *testing.T) {
	sc := Scope{Protocol: "weak", Nodes: 3, Clients: 3, Ops: 6, Keys: 1, Conflict: 100, Reads: 50, Seed: 3,
		Budget: simnet.Budget{Ticks: 3, Steps: 300}}
	nonLin := 0
	for i := range 100 {
		o := Run(sc, &Random{Rand: rand.New(rand.NewPCG(uint64(i), 0x726e64))})
		require.NoError(t, o.Err, "run %d", i)
		if CheckContract(o.Result, protocols.Linearizable) != nil {
			nonLin++
		}
	}
	t.Logf("weak: 100 random schedules pass the weak contract, %d of them are not linearizable", nonLin)
	require.Positive(t, nonLin)
	o := Run(sc, &Guided{})
	require.NoError(t, o.Err)
	res := *o.Result
	res.History = slices.Clone(res.History)
	read := slices.IndexFunc(res.History, func(op simnet.Op) bool { return !op.Put && op.Outcome == simnet.OutcomeOK })
	require.GreaterOrEqual(t, read, 0)
	res.History[read].Output = 999
	require.ErrorIs(t, CheckContract(&res, protocols.Weak), simtest.ErrContract)

	sc.Protocol = "sequential"
	for i := range 30 {
		o := Run(sc, &Random{Rand: rand.New(rand.NewPCG(uint64(i), 0x726e64))})
		require.NoError(t, o.Err, "run %d", i)
	}
}
