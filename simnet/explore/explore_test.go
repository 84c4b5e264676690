package explore

import (
	"flag"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/blossom-dso/blossom/protocols/atlas"              // registers atlas
	_ "github.com/blossom-dso/blossom/protocols/epaxos"             // registers epaxos
	_ "github.com/blossom-dso/blossom/protocols/paxos"              // registers paxos
	_ "github.com/blossom-dso/blossom/protocols/whitebox-multicast" // registers wbcast
	"github.com/blossom-dso/blossom/simnet"
)

var update = flag.Bool("update", false, "rewrite testdata/explore-arrival.trace.json")

// arrivalScope is two clients writing one key at replicas 1 and 2.
func arrivalScope() Scope {
	return Scope{Protocol: "explore-arrival", Nodes: 3, Clients: 2, Ops: 2, Keys: 1, Conflict: 100, Seed: 1,
		Budget: simnet.Budget{Steps: 100}}
}

// TestTailScheduleOfArrivalPasses: the oldest-first schedule delivers each
// broadcast before the other command is submitted? No — both submits are
// in flight first, so the tail submits both and the replicas disagree. The
// step invariant must say so, naming both orders.
func TestStepInvariantCatchesOppositeOrders(t *testing.T) {
	o := Run(arrivalScope(), &Guided{})
	require.Error(t, o.Err, "trace %v", o.Labels())
	require.NotNil(t, o.Result.StepError, "trace %v", o.Labels())
	require.Contains(t, o.Err.Error(), "conflicting orders")
	t.Logf("tail schedule %v: %v", o.Labels(), o.Err)
}

// TestArrivalPassesWhenBroadcastsWin: a schedule that delivers replica 1's
// broadcast everywhere before replica 2 gets its command passes every
// check, so the checks do not fail every schedule of the toy.
func TestArrivalPassesWhenBroadcastsWin(t *testing.T) {
	ds := []string{"submit c1#1 >1", "deliver 1>2 #1 arrivalMsg", "deliver 1>3 #1 arrivalMsg", "submit c2#1 >2"}
	g := &Guided{Decisions: ds}
	o := Run(arrivalScope(), g)
	require.NoError(t, o.Err, "trace %v", o.Labels())
	require.Zero(t, g.Skipped)
	require.Equal(t, ds, o.Labels()[:4])
}

// TestGuidedSkipsDisabledDecisions: a decision that is not enabled at its
// turn is skipped and counted.
func TestGuidedSkipsDisabledDecisions(t *testing.T) {
	g := &Guided{Decisions: []string{"deliver 3>1 #9 arrivalMsg", "submit c2#1 >2"}}
	o := Run(arrivalScope(), g)
	require.Equal(t, 1, g.Skipped)
	require.Equal(t, "submit c2#1 >2", o.Labels()[0])
}

// TestModesFindArrivalBug: PCT, random walks and exhaustive search all find
// the toy's ordering bug; PCT is deterministic per seed.
func TestModesFindArrivalBug(t *testing.T) {
	sc := arrivalScope()
	for _, rep := range []*Report{PCTSearch(sc, 2, 100, 1, time.Time{}), RandomSearch(sc, 100, 1, time.Time{}), Exhaustive(sc, Options{MaxRuns: 1000, Events: -1})} {
		require.NotNil(t, rep.Failure, "%s", rep)
		t.Log(rep)
	}
	a := Run(sc, NewPCT(rand.New(rand.NewPCG(7, 1)), 3, 20, sc.Budget))
	b := Run(sc, NewPCT(rand.New(rand.NewPCG(7, 1)), 3, 20, sc.Budget))
	require.Equal(t, a.Labels(), b.Labels())
}

// TestExhaustiveCoversCorrectScope: explore-local (no messages) with two
// clients, each submitting two commands, with one tick each: the search
// ends, finds nothing, and reduces — its replicas never interact, so the
// interleavings of their choices collapse.
func TestExhaustiveCoversCorrectScope(t *testing.T) {
	sc := Scope{Protocol: "explore-local", Nodes: 3, Clients: 2, Ops: 4, Keys: 1, Conflict: 100, Seed: 1,
		Budget: simnet.Budget{Ticks: 1, Steps: 100}}
	rep := Exhaustive(sc, Options{Events: -1})
	require.Nil(t, rep.Failure, "%s", rep)
	require.True(t, rep.Covered, "%s", rep)
	t.Log(rep)
	// Without reduction the same scope has many more schedules: every
	// interleaving of 3 ticks, 4 submits and 4 replies (the replies and
	// the submits of one client are ordered).
	require.Less(t, rep.Schedules, 100, "%s", rep)
}

// TestExhaustiveSoundOnArrival counts every execution order the replicas
// can reach in the toy without checks stopping the search (the toy with a
// broadcast to one peer, one client per replica): the reduced search must
// reach every final state a plain random walk reaches.
func TestExhaustiveReachesWhatRandomReaches(t *testing.T) {
	sc := Scope{Protocol: "explore-local", Nodes: 3, Clients: 3, Ops: 3, Keys: 1, Conflict: 100, Seed: 1,
		Budget: simnet.Budget{Ticks: 1, Crashes: 1, Steps: 100}}
	final := func(o *Outcome) string {
		var b strings.Builder
		for _, op := range o.Result.History {
			b.WriteString(op.Outcome.String())
			b.WriteByte(',')
		}
		for _, l := range o.Result.FaultLog {
			b.WriteString(strings.SplitN(l, ": ", 2)[1])
			b.WriteByte(';')
		}
		return b.String()
	}
	random := map[string]bool{}
	for i := range 300 {
		o := Run(sc, &Random{Rand: rand.New(rand.NewPCG(uint64(i), 2))})
		require.NoError(t, o.Err)
		random[final(o)] = true
	}
	reduced := map[string]bool{}
	d := &dfs{visited: map[uint64]visited{}, hashing: HashTrace, events: -1}
	for {
		d.reset()
		o := Run(sc, d)
		require.NoError(t, o.Err)
		if d.ended == "" {
			reduced[final(o)] = true
		}
		if !d.backtrack() {
			break
		}
	}
	for k := range random {
		require.True(t, reduced[k], "the reduced search missed %q", k)
	}
	t.Logf("%d final states reached by random walks, %d by the reduced search", len(random), len(reduced))
}

// TestShrinkAndReplayTrace: a failing PCT schedule shrinks to a few
// decisions, and the trace written replays to the same failure.
func TestShrinkAndReplayTrace(t *testing.T) {
	sc := arrivalScope()
	sc.Budget.Ticks = 2
	sc.Ops, sc.Clients = 4, 2
	rep := RandomSearch(sc, 200, 3, time.Time{})
	require.NotNil(t, rep.Failure)
	tr, _ := Minimize(sc, rep.Failure, "random")
	require.LessOrEqual(t, len(tr.Decisions), 2, "%v", tr.Decisions)
	require.LessOrEqual(t, len(tr.Decisions), len(rep.Failure.Trace))
	path := filepath.Join(t.TempDir(), "t.json")
	require.NoError(t, tr.Write(path))
	back, err := ReadTrace(path)
	require.NoError(t, err)
	var steps []string
	o := back.Replay(func(_ int, c simnet.Choice) { steps = append(steps, c.Label()) })
	require.Error(t, o.Err)
	require.Equal(t, tr.Failure, o.Err.Error())
	require.Equal(t, tr.Steps, steps)
}

// TestRegressionTraceArrival loads a committed counterexample of the toy
// and checks that it still fails the same way.
func TestRegressionTraceArrival(t *testing.T) {
	path := filepath.Join("testdata", "explore-arrival.trace.json")
	if *update {
		rep := PCTSearch(arrivalScope(), 2, 100, 1, time.Time{})
		require.NotNil(t, rep.Failure)
		tr, _ := Minimize(arrivalScope(), rep.Failure, "pct")
		require.NoError(t, tr.Write(path))
	}
	tr, err := ReadTrace(path)
	require.NoError(t, err)
	o := tr.Replay(nil)
	require.Error(t, o.Err)
	require.Equal(t, tr.Failure, o.Err.Error())
}

// TestRegressionTracePaxos replays the minimized counterexample PCT found
// for paxos with the quorumOneShort failpoint on: without the planted
// bug (this build) the schedule must pass every check. With the failpoint
// build it fails (sabotage_test.go).
func TestRegressionTracePaxos(t *testing.T) {
	tr, err := ReadTrace(filepath.Join("testdata", "paxos-quorumOneShort.trace.json"))
	require.NoError(t, err)
	require.Contains(t, tr.Failpoints+tr.Found, "pct")
	o := tr.Replay(nil)
	require.NoError(t, o.Err, "steps %v", o.Labels())
	require.True(t, slices.Equal(o.Labels()[:len(tr.Decisions)], tr.Decisions) || o.Result.Steps > 0)
}

// TestPaxosAndEPaxosPCT: a few PCT runs of the real protocols with ticks,
// a drop, a duplicate and a crash-restart in budget pass every check.
func TestPaxosAndEPaxosPCT(t *testing.T) {
	for _, p := range []string{"paxos", "epaxos"} {
		sc := Scope{Protocol: p, Nodes: 3, Clients: 2, Ops: 3, Keys: 1, Conflict: 100, Seed: 1,
			Budget: simnet.Budget{Ticks: 3, Drops: 1, Dups: 1, Crashes: 1, Steps: 300}}
		rep := PCTSearch(sc, 3, 150, 1, time.Time{})
		require.Nil(t, rep.Failure, "%s", rep)
		t.Log(rep)
	}
}

// TestAgreementIsLiveness: a wbcast schedule (found by PCT without any
// planted bug) that ends before a command delivered by one group is
// delivered by the other breaks only multicast agreement, a liveness
// property an explored run cannot promise: Check passes it. A safety
// violation of the multicast check still fails.
func TestAgreementIsLiveness(t *testing.T) {
	tr, err := ReadTrace(filepath.Join("testdata", "wbcast-agreement-liveness.trace.json"))
	require.NoError(t, err)
	o := tr.Replay(nil)
	require.NoError(t, o.Err)
	require.NotEmpty(t, o.Result.MulticastViolations)
	for _, v := range o.Result.MulticastViolations {
		require.True(t, strings.HasPrefix(v, "agreement:"), v)
	}
	res := *o.Result
	res.MulticastViolations = append(slices.Clone(res.MulticastViolations), "integrity: node 1 incarnation 0 delivered 9.9 twice")
	require.ErrorContains(t, Check(&res), "integrity")
}

// TestRegressionTraceAtlas replays the minimized counterexample DPOR found
// for atlas with skipLocalConflicts on: without the planted bug the
// schedule passes every check (TestSabotageTraceReplaysAtlas: with it, it
// fails).
func TestRegressionTraceAtlas(t *testing.T) {
	tr, err := ReadTrace(filepath.Join("testdata", "atlas-skipLocalConflicts.trace.json"))
	require.NoError(t, err)
	o := tr.Replay(nil)
	require.NoError(t, o.Err, "steps %v", o.Labels())
	require.Equal(t, tr.Decisions, o.Labels()[:len(tr.Decisions)])
}
