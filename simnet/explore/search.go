package explore

import (
	"fmt"
	"hash/fnv"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/blossom-dso/blossom/simnet"
)

// Report is the outcome of a search.
type Report struct {
	// Mode is "pct", "exhaustive", "random" or "swarm".
	Mode string
	// Runs is the number of schedules (or seeds) run.
	Runs int
	// Elapsed is the wall time of the search.
	Elapsed time.Duration
	// Failure is the first failing schedule, nil if none failed.
	Failure *Outcome
	// FailedRun is the 1-based number of the run that failed.
	FailedRun int
	// Seed is the seed of the failing run (pct, random: the run's seed;
	// swarm: the simulation seed).
	Seed uint64

	// Exhaustive search only: Schedules counts the runs that ended in a
	// terminal state or at the step bound, States the distinct states
	// (trace-equivalence fingerprints) reached, Pruned the runs cut at a
	// state already explored, Blocked the runs whose every enabled choice
	// was asleep, Bounded the runs cut by Budget.Steps. Covered says the
	// search explored the whole scope: it finished within MaxRuns and no
	// run hit the step bound.
	Schedules, States, Pruned, Blocked, Bounded int
	Covered                                     bool
	// MaxDepth is the length of the longest schedule run.
	MaxDepth int
	// DPOR only: EventsBound is Options.Events of the last search (-1:
	// none), Races the races found, Fallbacks the races whose reversal
	// had to try every choice at the earlier step.
	EventsBound, Races, Fallbacks int
	// FIFO is Options.FIFO.
	FIFO bool
}

// String summarizes r in one line.
func (r *Report) String() string {
	s := fmt.Sprintf("%s: %d runs in %s", r.Mode, r.Runs, r.Elapsed.Round(time.Millisecond))
	if r.Mode == "exhaustive" {
		s += fmt.Sprintf(", %d schedules, %d states, %d pruned by state hashing, %d sleep-blocked, %d at the step bound, longest %d steps, fully covered: %v",
			r.Schedules, r.States, r.Pruned, r.Blocked, r.Bounded, r.MaxDepth, r.Covered)
	}
	if r.Mode == "dpor" {
		s += fmt.Sprintf(", %d schedules, %d states (prefixes), %d sleep-blocked, %d at the step bound, longest %d steps, %d races (%d fallbacks), ticks+faults bound %d, fifo %v, fully covered: %v",
			r.Schedules, r.States, r.Blocked, r.Bounded, r.MaxDepth, r.Races, r.Fallbacks, r.EventsBound, r.FIFO, r.Covered)
	}
	if r.Failure != nil {
		s += fmt.Sprintf("; run %d (seed %d) FAILED: %v", r.FailedRun, r.Seed, r.Failure.Err)
	} else {
		s += "; no violation"
	}
	return s
}

// PCTSearch runs up to runs PCT schedules of depth d, run i with seed
// seed+i, and stops at the first failure or, if deadline is not zero, at
// the first run ending after it (as every search here). K, the length PCT draws its
// change points from, starts at the length of the tail-only schedule plus
// every tick of the budget and grows to the longest run seen.
func PCTSearch(sc Scope, d, runs int, seed uint64, deadline time.Time) *Report {
	start := time.Now()
	rep := &Report{Mode: "pct"}
	base := Run(sc, &Guided{})
	k := sc.Budget.Ticks*max(sc.Nodes, 1) + len(base.Trace)
	for i := range runs {
		s := seed + uint64(i)
		o := Run(sc, NewPCT(rand.New(rand.NewPCG(s, 0x706374)), d, k, sc.Budget))
		rep.Runs++
		if o.Result != nil {
			k = max(k, o.Result.Steps)
			rep.MaxDepth = max(rep.MaxDepth, o.Result.Steps)
		}
		if o.Err != nil {
			rep.Failure, rep.FailedRun, rep.Seed = o, i+1, s
			break
		}
		if past(deadline) {
			break
		}
	}
	rep.Elapsed = time.Since(start)
	return rep
}

// RandomSearch runs up to runs random walks, run i with seed seed+i.
func RandomSearch(sc Scope, runs int, seed uint64, deadline time.Time) *Report {
	start := time.Now()
	rep := &Report{Mode: "random"}
	for i := range runs {
		s := seed + uint64(i)
		o := Run(sc, &Random{Rand: rand.New(rand.NewPCG(s, 0x726e64))})
		rep.Runs++
		if o.Result != nil {
			rep.MaxDepth = max(rep.MaxDepth, o.Result.Steps)
		}
		if o.Err != nil {
			rep.Failure, rep.FailedRun, rep.Seed = o, i+1, s
			break
		}
		if past(deadline) {
			break
		}
	}
	rep.Elapsed = time.Since(start)
	return rep
}

// SwarmSearch runs the time-ordered simulator (no Scheduler) on seeds
// first, first+1, ... up to runs of them, checking each like
// simtest.Check (order, multicast properties, liveness after the fault
// window, linearizability), and stops at the first failure.
func SwarmSearch(cfg simnet.Config, first uint64, runs int, deadline time.Time) *Report {
	start := time.Now()
	rep := &Report{Mode: "swarm"}
	for i := range runs {
		c := cfg
		c.Seed = first + uint64(i)
		rep.Runs++
		res, err := simnet.Run(c)
		if err == nil {
			if err = res.OrderError(); err == nil {
				if err = res.MulticastError(); err == nil {
					if err = res.LivenessError(); err == nil {
						err = res.CheckLinearizable(LinTimeout).Err()
					}
				}
			}
		}
		if err != nil {
			rep.Failure = &Outcome{Result: res, Err: fmt.Errorf("seed %d: %w", c.Seed, err)}
			rep.FailedRun, rep.Seed = i+1, c.Seed
			break
		}
		if past(deadline) {
			break
		}
	}
	rep.Elapsed = time.Since(start)
	return rep
}

// frame is one step of the depth-first search: the choices enabled there,
// the one taken now, those whose subtrees are done, and the sleep set.
type frame struct {
	enabled []simnet.Choice
	labels  []string
	chosen  int
	done    []simnet.Choice
	sleep   []simnet.Choice
}

func containsLabel(cs []simnet.Choice, l string) bool {
	for _, c := range cs {
		if c.Label() == l {
			return true
		}
	}
	return false
}

// dfs is the scheduler of one run of the exhaustive search: it follows
// the stack, then extends it with fresh frames.
type dfs struct {
	stack   []frame
	visited map[uint64][]string
	chains  map[int]uint64
	// restarts counts the restarts of the run so far: a restart is
	// dependent on every choice (dependent), so every choice's place
	// relative to the restarts is folded into its chain.
	restarts int
	ended    string // why the run ended early: "pruned", "blocked"
	err      error
}

// reset readies d for the next run.
func (d *dfs) reset() { d.chains, d.ended, d.restarts = map[int]uint64{}, "", 0 }

func (d *dfs) fold(c simnet.Choice) {
	if c.Kind == simnet.ChoiceRestart {
		d.restarts++
	}
	l := c.Label() + "@" + strconv.Itoa(d.restarts)
	for o := c.Objects; o != 0; o &= o - 1 {
		b := bits.TrailingZeros64(o)
		h := fnv.New64a()
		var buf [8]byte
		for i := range buf {
			buf[i] = byte(d.chains[b] >> (8 * i))
		}
		h.Write(buf[:])
		h.Write([]byte(l))
		d.chains[b] = h.Sum64()
	}
}

// fingerprint hashes the per-object histories: two prefixes that order
// every pair of dependent choices alike (one Mazurkiewicz trace) reach the
// same state, since protocols, clients and budgets are deterministic
// functions of the choices that touched them.
func (d *dfs) fingerprint() uint64 {
	keys := make([]int, 0, len(d.chains))
	for b := range d.chains {
		keys = append(keys, b)
	}
	slices.Sort(keys)
	h := fnv.New64a()
	for _, b := range keys {
		fmt.Fprintf(h, "%d:%x;", b, d.chains[b])
	}
	return h.Sum64()
}

func (d *dfs) Next(step int, enabled []simnet.Choice) int {
	if step < len(d.stack) {
		f := &d.stack[step]
		want := f.labels[f.chosen]
		for i, c := range enabled {
			if c.Label() == want {
				d.fold(c)
				return i
			}
		}
		d.err = fmt.Errorf("explore: nondeterministic replay: %q not enabled at step %d", want, step)
		return -1
	}
	var sleep []simnet.Choice
	if step > 0 {
		p := &d.stack[step-1]
		taken := p.enabled[p.chosen]
		for _, u := range append(slices.Clip(p.sleep), p.done...) {
			if !dependent(u, taken) {
				sleep = append(sleep, u)
			}
		}
	}
	labels := make([]string, len(enabled))
	for i, c := range enabled {
		labels[i] = c.Label()
	}
	sleepLabels := make([]string, 0, len(sleep))
	for _, u := range sleep {
		sleepLabels = append(sleepLabels, u.Label())
	}
	slices.Sort(sleepLabels)
	fp := d.fingerprint()
	if stored, ok := d.visited[fp]; ok {
		if isSubset(stored, sleepLabels) {
			d.ended = "pruned"
			return -1
		}
		d.visited[fp] = intersect(stored, sleepLabels)
	} else {
		d.visited[fp] = sleepLabels
	}
	chosen := -1
	for i, l := range labels {
		if !slices.Contains(sleepLabels, l) {
			chosen = i
			break
		}
	}
	if chosen < 0 {
		d.ended = "blocked"
		return -1
	}
	d.stack = append(d.stack, frame{enabled: slices.Clone(enabled), labels: labels, chosen: chosen, sleep: sleep})
	d.fold(enabled[chosen])
	return chosen
}

// isSubset reports whether sorted a is a subset of sorted b.
func isSubset(a, b []string) bool {
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) || b[j] != x {
			return false
		}
	}
	return true
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); ok {
			out = append(out, x)
		}
	}
	return out
}

// backtrack moves the stack to the next unexplored choice; false when the
// search is over.
func (d *dfs) backtrack() bool {
	for len(d.stack) > 0 {
		top := &d.stack[len(d.stack)-1]
		top.done = append(top.done, top.enabled[top.chosen])
		next := -1
		for i, l := range top.labels {
			if !containsLabel(top.done, l) && !containsLabel(top.sleep, l) {
				next = i
				break
			}
		}
		if next >= 0 {
			top.chosen = next
			return true
		}
		d.stack = d.stack[:len(d.stack)-1]
	}
	return false
}

// Exhaustive explores every schedule of sc up to maxRuns runs (0: no
// bound), depth first, re-running each schedule from the start (stateless
// search). Two reductions keep it small, both sound for the checks:
//
//   - sleep sets (Godefroid): choices that touch disjoint objects commute
//     (deliveries, submits and ticks at different replicas; replies are
//     ordered among themselves as they fix the history's real-time order),
//     so after exploring choice a, its siblings' subtrees never take a
//     again before something dependent on a happened;
//   - state hashing: a run stops at a state (fingerprint of the
//     per-object histories) already explored with a sleep set no larger.
//
// It stops at the first failing schedule.
func Exhaustive(sc Scope, maxRuns int, deadline time.Time) *Report {
	start := time.Now()
	rep := &Report{Mode: "exhaustive"}
	d := &dfs{visited: map[uint64][]string{}}
	maxSteps := sc.Budget.MaxSteps()
	for {
		d.reset()
		o := Run(sc, d)
		rep.Runs++
		if d.err != nil {
			o.Err = d.err
		}
		steps := len(o.Trace)
		rep.MaxDepth = max(rep.MaxDepth, steps)
		switch {
		case d.ended == "pruned":
			rep.Pruned++
		case d.ended == "blocked":
			rep.Blocked++
		default:
			rep.Schedules++
			if steps >= maxSteps {
				rep.Bounded++
			}
		}
		if o.Err != nil {
			rep.Failure, rep.FailedRun = o, rep.Runs
			break
		}
		if !d.backtrack() {
			rep.Covered = rep.Bounded == 0
			break
		}
		if (maxRuns > 0 && rep.Runs >= maxRuns) || past(deadline) {
			break
		}
	}
	rep.States = len(d.visited)
	rep.Elapsed = time.Since(start)
	return rep
}

// past reports whether deadline is set and passed.
func past(deadline time.Time) bool { return !deadline.IsZero() && time.Now().After(deadline) }
