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
	"github.com/blossom-dso/blossom/simnet/simtest"
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
	// Hashing is the state hashing of an exhaustive search.
	Hashing Hashing
}

// String summarizes r in one line.
func (r *Report) String() string {
	s := fmt.Sprintf("%s: %d runs in %s", r.Mode, r.Runs, r.Elapsed.Round(time.Millisecond))
	if r.Mode == "exhaustive" {
		s += fmt.Sprintf(", %d schedules, %d states (%s hashing), %d pruned by state hashing, %d sleep-blocked, %d at the step bound, longest %d steps, ticks+faults bound %d, fully covered: %v",
			r.Schedules, r.States, r.Hashing, r.Pruned, r.Blocked, r.Bounded, r.MaxDepth, r.EventsBound, r.Covered)
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
// first, first+1, ... up to runs of them, checking each with simtest.Check
// (the order contract the protocol declares, multicast properties,
// liveness after the fault window, linearizability for a linearizable
// protocol), and stops at the first failure.
func SwarmSearch(cfg simnet.Config, first uint64, runs int, deadline time.Time) *Report {
	start := time.Now()
	rep := &Report{Mode: "swarm"}
	for i := range runs {
		c := cfg
		c.Seed = first + uint64(i)
		rep.Runs++
		res, err := simtest.Check(c)
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

// Hashing selects what the exhaustive search hashes to recognise a state
// it explored before.
type Hashing uint8

// The hashings.
const (
	// HashAuto hashes the whole state of the run (HashState) when every
	// replica's protocol offers a fingerprint (protocols.Fingerprinter),
	// and the histories (HashTrace) otherwise.
	HashAuto Hashing = iota
	// HashState hashes the run's state (simnet.StateView.Fingerprint):
	// the replicas' protocols, cores, state machines and disks, the
	// messages in flight as a multiset, the clients and history, the
	// budgets spent, the executions. Schedules that are not equivalent
	// but reach one state are explored once from it.
	HashState
	// HashTrace hashes the per-object histories of choices: only
	// equivalent schedules (one Mazurkiewicz trace) are recognised.
	HashTrace
	// HashOff does no state hashing: sleep sets alone.
	HashOff
)

// String returns the flag value that selects h (--hashing).
func (h Hashing) String() string {
	switch h {
	case HashAuto:
		return "auto"
	case HashState:
		return "state"
	case HashTrace:
		return "trace"
	case HashOff:
		return "off"
	}
	return "?"
}

// entry is a choice of a search frame with its key: the label's hash, or
// under state hashing the content key (simnet.StateView.Key), which names
// the event alike in every schedule that reaches the state.
type entry struct {
	c   simnet.Choice
	key uint64
}

func hasKey(es []entry, k uint64) bool {
	for _, e := range es {
		if e.key == k {
			return true
		}
	}
	return false
}

// frame is one step of the depth-first search: the choices enabled there
// (within the events bound), the one taken now, those whose subtrees are
// done, and the sleep set.
type frame struct {
	enabled []entry
	labels  []string
	chosen  int
	done    []entry
	sleep   []entry
}

// visited is what the search knows of a state: every choice not in sleep
// was explored from it, with a step bound no tighter than at step depth.
type visited struct {
	sleep []uint64 // sorted
	depth int
}

// dfs is the scheduler of one run of the exhaustive search: it follows
// the stack, then extends it with fresh frames.
type dfs struct {
	stack   []frame
	visited map[uint64]visited
	hashing Hashing // HashState, HashTrace or HashOff (resolved)
	omit    simnet.StatePart
	events  int
	view    simnet.StateView
	chains  map[int]uint64
	// restarts counts the restarts of the run so far: a restart is
	// dependent on every choice (dependent), so every choice's place
	// relative to the restarts is folded into its chain.
	restarts int
	taken    int    // bounded choices taken in this run
	ended    string // why the run ended early: "pruned", "blocked"
	err      error
}

// Attach implements simnet.StateScheduler.
func (d *dfs) Attach(v simnet.StateView) { d.view = v }

// reset readies d for the next run.
func (d *dfs) reset() {
	d.chains, d.ended, d.restarts, d.taken = map[int]uint64{}, "", 0, 0
}

// dep is dependent with the events bound: bounded choices share its
// counter.
func (d *dfs) dep(a, b simnet.Choice) bool {
	return dependent(a, b) || (d.events >= 0 && bounded(a) && bounded(b))
}

func (d *dfs) fold(c simnet.Choice) {
	if bounded(c) {
		d.taken++
	}
	if d.hashing != HashTrace {
		return
	}
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

// traceFingerprint hashes the per-object histories: two prefixes that
// order every pair of dependent choices alike (one Mazurkiewicz trace)
// reach the same state, since protocols, clients and budgets are
// deterministic functions of the choices that touched them.
func (d *dfs) traceFingerprint() uint64 {
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

// key names c in sleep sets and in the visited table.
func (d *dfs) key(c simnet.Choice) uint64 {
	if d.hashing == HashState {
		return d.view.Key(c)
	}
	h := fnv.New64a()
	h.Write([]byte(c.Label()))
	return h.Sum64()
}

func (d *dfs) Next(step int, all []simnet.Choice) int {
	if step < len(d.stack) {
		f := &d.stack[step]
		want := f.labels[f.chosen]
		for i, c := range all {
			if c.Label() == want {
				d.fold(c)
				return i
			}
		}
		d.err = fmt.Errorf("explore: nondeterministic replay: %q not enabled at step %d", want, step)
		return -1
	}
	enabled := filter(all, d.events >= 0 && d.taken >= d.events, false)
	if len(enabled) == 0 {
		return -1
	}
	var sleep []entry
	if step > 0 {
		p := &d.stack[step-1]
		taken := p.enabled[p.chosen].c
		for _, u := range append(slices.Clip(p.sleep), p.done...) {
			if !d.dep(u.c, taken) {
				sleep = append(sleep, u)
			}
		}
	}
	f := frame{enabled: make([]entry, len(enabled)), labels: make([]string, len(enabled)), chosen: -1, sleep: sleep}
	for i, c := range enabled {
		f.enabled[i] = entry{c: c, key: d.key(c)}
		f.labels[i] = c.Label()
	}
	if d.hashing != HashOff {
		var fp uint64
		if d.hashing == HashState {
			var ok bool
			if fp, ok = d.view.Fingerprint(d.omit); !ok {
				d.err = fmt.Errorf("explore: state hashing: the run's state cannot be hashed")
				return -1
			}
		} else {
			fp = d.traceFingerprint()
		}
		keys := make([]uint64, len(sleep))
		for i, u := range sleep {
			keys[i] = u.key
		}
		slices.Sort(keys)
		keys = slices.Compact(keys)
		if v, ok := d.visited[fp]; ok {
			if v.depth <= step && isSubset(v.sleep, keys) {
				d.ended = "pruned"
				return -1
			}
			d.visited[fp] = visited{sleep: intersect(v.sleep, keys), depth: max(v.depth, step)}
		} else {
			d.visited[fp] = visited{sleep: keys, depth: step}
		}
	}
	for i, e := range f.enabled {
		if !hasKey(sleep, e.key) {
			f.chosen = i
			break
		}
	}
	if f.chosen < 0 {
		d.ended = "blocked"
		return -1
	}
	d.stack = append(d.stack, f)
	c := f.enabled[f.chosen].c
	d.fold(c)
	return slices.IndexFunc(all, func(e simnet.Choice) bool { return e.Label() == f.labels[f.chosen] })
}

// isSubset reports whether sorted a is a subset of sorted b.
func isSubset(a, b []uint64) bool {
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

func intersect(a, b []uint64) []uint64 {
	var out []uint64
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
		for i, e := range top.enabled {
			if !hasKey(top.done, e.key) && !hasKey(top.sleep, e.key) {
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

// Exhaustive explores every schedule of sc, depth first, re-running each
// schedule from the start (stateless search, with a table of the states
// visited). Two reductions keep it small, both sound for the checks:
//
//   - sleep sets (Godefroid): choices that touch disjoint objects commute
//     (deliveries, submits and ticks at different replicas; replies are
//     ordered among themselves as they fix the history's real-time order),
//     so after exploring choice a, its siblings' subtrees never take a
//     again before something dependent on a happened;
//   - state hashing (opt.Hashing): a run stops at a state already explored
//     with a sleep set no larger and at a step no later. Under HashState
//     the state is the whole state of the run, so schedules that are not
//     equivalent but reach one state (a leader receiving its quorum's
//     replies in two orders) continue once from it.
//
// opt.Events bounds the ticks and faults of a schedule (with opt.Deepen,
// K = 0, 1, ... in turn), opt.MaxRuns and opt.Deadline the search; FIFO is
// not supported (the state hash sees the messages in flight as a
// multiset). It stops at the first failing schedule.
func Exhaustive(sc Scope, opt Options) *Report { return deepen(sc, opt, exhaustiveOnce) }

// deepen runs the search once with opt.Events as the bound of ticks and
// faults, or, with opt.Deepen, once per bound K = 0, 1, ..., opt.Events,
// adding up the reports, until a schedule fails or the budget (opt.MaxRuns,
// opt.Deadline) runs out before a bound is covered.
func deepen(sc Scope, opt Options, once func(Scope, Options) *Report) *Report {
	if !opt.Deepen || opt.Events < 0 {
		return once(sc, opt)
	}
	start := time.Now()
	var total *Report
	for k := 0; k <= opt.Events; k++ {
		o := opt
		o.Events = k
		if opt.MaxRuns > 0 && total != nil {
			o.MaxRuns = max(opt.MaxRuns-total.Runs, 1)
		}
		rep := once(sc, o)
		if total == nil {
			total = rep
		} else {
			total.add(rep)
		}
		if rep.Failure != nil || !rep.Covered && ((opt.MaxRuns > 0 && total.Runs >= opt.MaxRuns) || past(opt.Deadline)) {
			break
		}
	}
	total.Elapsed = time.Since(start)
	return total
}

// add adds the counts of rep, a search of a deeper bound, to r.
func (r *Report) add(rep *Report) {
	r.Runs += rep.Runs
	r.Schedules += rep.Schedules
	r.States += rep.States
	r.Pruned += rep.Pruned
	r.Blocked += rep.Blocked
	r.Races += rep.Races
	r.Fallbacks += rep.Fallbacks
	r.Bounded += rep.Bounded
	r.MaxDepth = max(r.MaxDepth, rep.MaxDepth)
	r.Covered = rep.Covered
	r.Failure, r.EventsBound = rep.Failure, rep.EventsBound
	if rep.Failure != nil {
		r.FailedRun = r.Runs - rep.Runs + rep.FailedRun
	}
}

// resolveHashing returns the hashing Exhaustive uses for sc under h.
func resolveHashing(sc Scope, h Hashing) Hashing {
	if h != HashAuto {
		return h
	}
	probe := &hashProbe{}
	if _, err := simnet.Run(sc.Config(probe)); err == nil && probe.ok {
		return HashState
	}
	return HashTrace
}

// hashProbe is a scheduler that ends a run at its first step, reporting
// whether the state there can be hashed.
type hashProbe struct {
	view simnet.StateView
	ok   bool
}

func (p *hashProbe) Attach(v simnet.StateView) { p.view = v }

func (p *hashProbe) Next(int, []simnet.Choice) int {
	_, p.ok = p.view.Fingerprint(0)
	return -1
}

func exhaustiveOnce(sc Scope, opt Options) *Report {
	start := time.Now()
	hashing := resolveHashing(sc, opt.Hashing)
	rep := &Report{Mode: "exhaustive", EventsBound: opt.Events, Hashing: hashing}
	d := &dfs{visited: map[uint64]visited{}, hashing: hashing, omit: opt.omit, events: opt.Events}
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
		if opt.each != nil && o.Err == nil && d.ended == "" {
			fp, _ := d.view.Fingerprint(0)
			opt.each(o, fp)
		}
		if o.Err != nil {
			rep.Failure, rep.FailedRun = o, rep.Runs
			break
		}
		if !d.backtrack() {
			rep.Covered = rep.Bounded == 0
			break
		}
		if (opt.MaxRuns > 0 && rep.Runs >= opt.MaxRuns) || past(opt.Deadline) {
			break
		}
	}
	rep.States = len(d.visited)
	if hashing == HashOff {
		rep.States = 0
	}
	rep.Elapsed = time.Since(start)
	return rep
}

// past reports whether deadline is set and passed.
func past(deadline time.Time) bool { return !deadline.IsZero() && time.Now().After(deadline) }
