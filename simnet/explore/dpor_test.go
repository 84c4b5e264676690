package explore

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/simnet"
)

// finalState is what a schedule ends in: every operation's outcome and
// times, and the message counts of every replica (what reached it).
func finalState(o *Outcome) string {
	var b strings.Builder
	for _, op := range o.Result.History {
		fmt.Fprintf(&b, "%d:%s:%d:%d:%d,", op.Client, op.Outcome, op.Output, op.Call, op.Return)
	}
	fmt.Fprintf(&b, "|d%d x%d e%d|", o.Result.Deliveries, o.Result.Dropped, o.Result.Executions)
	for _, n := range o.Result.PerNode {
		fmt.Fprintf(&b, "%d/%d;", n.Delivered, n.Crashes)
	}
	return b.String()
}

// full is the unreduced search: every schedule, depth first.
type full struct {
	stack [][2]int // chosen, number enabled
}

func (f *full) Next(step int, enabled []simnet.Choice) int {
	if step < len(f.stack) {
		return f.stack[step][0]
	}
	f.stack = append(f.stack, [2]int{0, len(enabled)})
	return 0
}

func (f *full) backtrack() bool {
	for len(f.stack) > 0 {
		top := &f.stack[len(f.stack)-1]
		if top[0]+1 < top[1] {
			top[0]++
			return true
		}
		f.stack = f.stack[:len(f.stack)-1]
	}
	return false
}

// finals runs a search to its end, ignoring the checks, and returns the
// final states reached and the number of schedules.
func finals(t *testing.T, sc Scope, sched simnet.Scheduler, reset func(), backtrack func() bool) (map[string]bool, int) {
	out := map[string]bool{}
	runs := 0
	for {
		reset()
		o := Run(sc, sched)
		require.NotNil(t, o.Result, "%v", o.Err)
		d, ok := sched.(*dpor)
		if ok {
			d.finish(d.ended == "" && len(o.Trace) < sc.Budget.Steps)
		}
		if !ok || d.ended == "" {
			out[finalState(o)] = true
			runs++
		}
		if !backtrack() {
			return out, runs
		}
	}
}

// notifyScope: two clients at two replicas of explore-notify, each
// command telling the next replica, with a crash-restart in budget.
func notifyScope() Scope {
	return Scope{Protocol: "explore-notify", Nodes: 3, Clients: 2, Ops: 2, Keys: 1, Conflict: 100, Seed: 1,
		Budget: simnet.Budget{Crashes: 1, Steps: 40}}
}

// TestDPORReachesEveryFinalState: DPOR reaches exactly the final states of
// the unreduced search of every schedule, with fewer schedules; with the
// dependency of simnet.Choice.Conflicts alone (a restart independent of a
// send to the restarted replica) it misses some, so the comparison can
// fail.
func TestDPORReachesEveryFinalState(t *testing.T) {
	sc := notifyScope()
	f := &full{}
	all, nAll := finals(t, sc, f, func() {}, f.backtrack)
	d := &dpor{events: -1}
	red, nRed := finals(t, sc, d, d.reset, d.backtrack)
	t.Logf("unreduced: %d schedules, %d final states; dpor: %d schedules, %d final states, %d races, %d fallbacks",
		nAll, len(all), nRed, len(red), d.races, d.fallbacks)
	require.Equal(t, all, red)
	require.Less(t, nRed, nAll/4)

	for name, broken := range map[string]*dpor{
		"disabling ignored": {events: -1, ignoreDisabling: true},
		"replicas ignored": {events: -1, depFn: func(a, b simnet.Choice) bool {
			return a.Objects&b.Objects&^(1<<simnet.MaxExploreNodes-1) != 0
		}},
	} {
		missed, _ := finals(t, sc, broken, broken.reset, broken.backtrack)
		require.Less(t, len(missed), len(all), "%s: the planted bug must lose final states", name)
		t.Logf("%s: %d final states", name, len(missed))
	}
}

// TestDPORBounds: with the ticks and faults bounded, and with channels
// kept in order, DPOR reaches the final states of the unreduced search of
// the schedules within the bounds.
func TestDPORBounds(t *testing.T) {
	sc := notifyScope()
	sc.Budget.Ticks = 1
	sc.Budget.Dups = 1
	for _, k := range []int{0, 1} {
		for _, fifo := range []bool{false, true} {
			f := &full{}
			bound := &boundedFull{full: f, filter: dpor{events: k, fifo: fifo}}
			all, _ := finals(t, sc, bound, bound.reset, f.backtrack)
			d := &dpor{events: k, fifo: fifo}
			red, _ := finals(t, sc, d, d.reset, d.backtrack)
			require.Equal(t, all, red, "events bound %d, fifo %v", k, fifo)
		}
	}
}

// boundedFull is the unreduced search of the choices filter allows.
type boundedFull struct {
	*full
	filter dpor
}

func (b *boundedFull) reset() { b.filter.taken = 0 }

func (b *boundedFull) Next(step int, enabled []simnet.Choice) int {
	al := b.filter.allowed(enabled)
	if len(al) == 0 {
		return -1
	}
	c := al[b.full.Next(step, al)]
	if bounded(c) {
		b.filter.taken++
	}
	return slices.IndexFunc(enabled, func(e simnet.Choice) bool { return e.Label() == c.Label() })
}

// TestDPORFindsArrivalBugAndCovers: DPOR finds the toy's ordering bug, and
// covers a correct scope with fewer schedules than the sleep-set search.
func TestDPORFindsArrivalBugAndCovers(t *testing.T) {
	rep := DPOR(arrivalScope(), Options{Events: -1})
	require.NotNil(t, rep.Failure, "%s", rep)
	t.Log(rep)
	sc := Scope{Protocol: "explore-local", Nodes: 3, Clients: 2, Ops: 4, Keys: 1, Conflict: 100, Seed: 1,
		Budget: simnet.Budget{Ticks: 1, Steps: 100}}
	rep = DPOR(sc, Options{Events: -1})
	require.Nil(t, rep.Failure, "%s", rep)
	require.True(t, rep.Covered, "%s", rep)
	t.Log(rep)
	deep := DPOR(notifyScope(), Options{Events: 3, Deepen: true})
	require.Nil(t, deep.Failure, "%s", deep)
	require.True(t, deep.Covered, "%s", deep)
	require.Equal(t, 3, deep.EventsBound)
	t.Log(deep)
}

// BenchmarkDPOR: the first 500 runs of DPOR on epaxos, 2 clients x 2
// operations (simulation and search together).
func BenchmarkDPOR(b *testing.B) {
	sc := Scope{Protocol: "epaxos", Nodes: 3, Clients: 2, Ops: 2, Keys: 1, Conflict: 100, Reads: 50, Seed: 1,
		Budget: simnet.Budget{Steps: 300}}
	for b.Loop() {
		rep := DPOR(sc, Options{MaxRuns: 500, Events: -1})
		if rep.Failure != nil {
			b.Fatal(rep)
		}
	}
}
