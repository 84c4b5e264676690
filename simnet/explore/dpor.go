package explore

import (
	"fmt"
	"slices"
	"time"

	"github.com/blossom-dso/blossom/simnet"
)

// dependent reports whether choices a and b may not commute: they touch a
// common object (simnet.Choice.Conflicts), or one is a restart. A restart
// is dependent on every choice because the simulator drops a message or a
// submit sent to a replica that is down: a step at replica 1 sending to
// replica 2 and the restart of replica 2 touch no common object, yet the
// message survives only if the restart comes first.
func dependent(a, b simnet.Choice) bool {
	return a.Conflicts(b) || a.Kind == simnet.ChoiceRestart || b.Kind == simnet.ChoiceRestart
}

// bounded reports whether c counts against Options.Events: a tick or a
// fault.
func bounded(c simnet.Choice) bool { return c.Kind == simnet.ChoiceTick || c.Fault() }

// Options configures DPOR.
type Options struct {
	// MaxRuns bounds the runs (0: no bound); a search cut by it is not
	// covered.
	MaxRuns int
	// Events, if at least 0, bounds the ticks and faults (drops,
	// duplicates, crashes, restarts) of every schedule together, on top
	// of the scope's budgets: once a schedule took Events of them, they
	// are no longer enabled. -1: no bound beyond the budgets.
	Events int
	// Deepen runs the search with Events = 0, 1, ... up to Events
	// (iterative deepening on ticks and faults): a bug needing few of
	// them is found before the larger scopes are entered.
	Deepen bool
	// FIFO explores only the schedules in which every channel delivers
	// (or drops) its messages in the order they were sent, as over one
	// TCP connection: a bound, since simnet's channels may reorder.
	FIFO bool
	// Deadline, if not zero, stops the search at the first run ending
	// after it (the search is then not covered).
	Deadline time.Time
	// Hashing is the state hashing of Exhaustive (DPOR does none).
	Hashing Hashing

	// Tests: omit leaves parts out of the state hash (a planted bug);
	// each sees every schedule of Exhaustive that ran to its end and
	// passed, with the fingerprint of its final state.
	omit simnet.StatePart
	each func(o *Outcome, final uint64)
}

// bitset is a set of steps.
type bitset []uint64

func (b bitset) has(i int) bool { return i >= 0 && i/64 < len(b) && b[i/64]&(1<<(i%64)) != 0 }

func (b *bitset) add(i int) {
	for len(*b) <= i/64 {
		*b = append(*b, 0)
	}
	(*b)[i/64] |= 1 << (i % 64)
}

func (b *bitset) or(c bitset) {
	for len(*b) < len(c) {
		*b = append(*b, 0)
	}
	for i, w := range c {
		(*b)[i] |= w
	}
}

// dframe is one step of the DPOR search: the choices enabled there (within
// the events bound), the one taken in the current run, the backtrack set
// (labels still to explore here), the labels explored, and the sleep set.
type dframe struct {
	enabled   []simnet.Choice
	labels    []string
	chosen    int
	backtrack []string
	done      []simnet.Choice
	sleep     []simnet.Choice
}

// dpor is the scheduler of the DPOR search: it follows the stack, extends
// it with fresh frames, and after each new step adds to the backtrack sets
// of earlier frames the races the step takes part in.
type dpor struct {
	stack  []dframe
	events int // Options.Events, -1: none
	fifo   bool
	// Per run: the choices carried out, the steps that happen before each
	// (its causal past), the last tick, crash and restart step of each
	// replica, the bounded choices taken, and the first step that is new
	// in this run (earlier steps replay the stack).
	trace    []simnet.Choice
	past     []bitset
	lastTick map[int]int
	lastDown map[int]int
	lastChan map[[2]int]int
	taken    int
	newFrom  int
	ended    string
	err      error
	// Races counts the races found, Fallbacks the races whose reversal
	// was not enabled where it had to be tried (every enabled choice was
	// added there instead).
	races, fallbacks int
	// disables counts the choices added because a step disabled them.
	disables int
	// depFn, if not nil, replaces the dependency relation; ignoreDisabling
	// skips disabled. Tests plant bugs with them.
	depFn           func(a, b simnet.Choice) bool
	ignoreDisabling bool
	// frames counts the frames created: the distinct prefixes explored.
	frames int
}

func (d *dpor) reset() {
	d.trace, d.past = d.trace[:0], d.past[:0]
	d.lastTick, d.lastDown, d.lastChan = map[int]int{}, map[int]int{}, map[[2]int]int{}
	d.taken, d.ended = 0, ""
}

// allowed lists the enabled choices within the events bound and, with
// fifo, the deliveries, drops and duplicates of the oldest message of each
// channel only.
func (d *dpor) allowed(enabled []simnet.Choice) []simnet.Choice {
	return filter(enabled, d.events >= 0 && d.taken >= d.events, d.fifo)
}

// filter leaves out of enabled the bounded choices if limit, and with fifo
// the deliveries, drops and duplicates of every message but the oldest of
// its channel.
func filter(enabled []simnet.Choice, limit, fifo bool) []simnet.Choice {
	if !limit && !fifo {
		return enabled
	}
	var head map[[2]int]int
	if fifo {
		head = map[[2]int]int{}
		for _, c := range enabled {
			if c.Kind == simnet.ChoiceDeliver {
				k := [2]int{c.From, c.Node}
				if n, ok := head[k]; !ok || c.N < n {
					head[k] = c.N
				}
			}
		}
	}
	out := make([]simnet.Choice, 0, len(enabled))
	for _, c := range enabled {
		if limit && bounded(c) {
			continue
		}
		switch c.Kind {
		case simnet.ChoiceDeliver, simnet.ChoiceDrop, simnet.ChoiceDup:
			if fifo && head[[2]int{c.From, c.Node}] != c.N {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

// dep is dependent with the events bound: bounded choices share its
// counter.
func (d *dpor) dep(a, b simnet.Choice) bool {
	if d.depFn != nil {
		return d.depFn(a, b)
	}
	return dependent(a, b) || (d.events >= 0 && bounded(a) && bounded(b))
}

func (d *dpor) Next(step int, enabled []simnet.Choice) int {
	if step > 0 && step-1 >= d.newFrom {
		d.disabled(step-1, d.allowed(enabled))
	}
	var c simnet.Choice
	pick := -1
	if step < len(d.stack) {
		f := &d.stack[step]
		want := f.labels[f.chosen]
		for i, e := range enabled {
			if e.Label() == want {
				pick, c = i, e
				break
			}
		}
		if pick < 0 {
			d.err = fmt.Errorf("explore: nondeterministic replay: %q not enabled at step %d", want, step)
			return -1
		}
	} else {
		en := d.allowed(enabled)
		if len(en) == 0 {
			return -1
		}
		var sleep []simnet.Choice
		if step > 0 {
			p := &d.stack[step-1]
			taken := p.enabled[p.chosen]
			for _, u := range append(slices.Clip(p.sleep), p.done...) {
				if !d.dep(u, taken) {
					sleep = append(sleep, u)
				}
			}
		}
		f := dframe{enabled: slices.Clone(en), labels: make([]string, len(en)), chosen: -1, sleep: sleep}
		for i, e := range en {
			f.labels[i] = e.Label()
			if f.chosen < 0 && !containsLabel(sleep, f.labels[i]) {
				f.chosen = i
			}
		}
		if f.chosen < 0 {
			d.ended = "blocked"
			return -1
		}
		f.backtrack = []string{f.labels[f.chosen]}
		d.stack = append(d.stack, f)
		d.frames++
		c = en[f.chosen]
		pick = slices.IndexFunc(enabled, func(e simnet.Choice) bool { return e.Label() == f.labels[f.chosen] })
	}
	d.record(step, c)
	return pick
}

// disabled adds to frame j's backtrack set every choice enabled there that
// its step disabled (now, the choices enabled after it): a crash drops the
// messages to its replica, a fault or tick spends a budget, a crash keeps
// the others down to F. A disabled choice never runs in the schedule, so
// no race names it.
func (d *dpor) disabled(j int, now []simnet.Choice) {
	if d.ignoreDisabling {
		return
	}
	f := &d.stack[j]
	for n, l := range f.labels {
		if n == f.chosen || slices.Contains(f.backtrack, l) || containsLabel(now, l) {
			continue
		}
		d.disables++
		f.backtrack = append(f.backtrack, l)
	}
}

// finish ends a run: if it ended with nothing left to run, every other
// choice of its last frame was disabled by its last step.
func (d *dpor) finish(natural bool) {
	if natural && len(d.trace) > d.newFrom && len(d.trace) == len(d.stack) {
		d.disabled(len(d.stack)-1, nil)
	}
}

// record appends step i (choice c) to the run's causal order and, if the
// step is new in this run, finds its races with earlier steps.
func (d *dpor) record(i int, c simnet.Choice) {
	// The direct causes of step i: the step that created the event, the
	// previous tick of the replica (ticks are numbered), the crash a
	// restart undoes or the restart a second crash follows, and every
	// earlier dependent step.
	cause := c.Cause
	switch c.Kind {
	case simnet.ChoiceTick:
		if t, ok := d.lastTick[c.Node]; ok {
			cause = t
		}
		d.lastTick[c.Node] = i
	case simnet.ChoiceCrash, simnet.ChoiceRestart:
		if t, ok := d.lastDown[c.Node]; ok {
			cause = t
		}
		d.lastDown[c.Node] = i
	case simnet.ChoiceDeliver, simnet.ChoiceDrop:
		// With fifo, a message is enabled by the delivery of the one
		// before it on its channel.
		if d.fifo {
			k := [2]int{c.From, c.Node}
			if t, ok := d.lastChan[k]; ok && t > cause {
				cause = t
			}
			d.lastChan[k] = i
		}
	}
	if bounded(c) {
		d.taken++
	}
	var past, reach bitset
	var deps []int
	if cause >= 0 {
		past.add(cause)
		past.or(d.past[cause])
	}
	for j, e := range d.trace {
		if d.dep(e, c) {
			deps = append(deps, j)
			past.add(j)
			reach.or(d.past[j])
		}
	}
	if cause >= 0 {
		reach.or(d.past[cause])
	}
	past.or(reach)
	d.trace = append(d.trace, c)
	d.past = append(d.past, past)
	if i < d.newFrom {
		return
	}
	// j races with i if it is dependent, did not create i's event and
	// reaches i through no other step.
	for _, j := range deps {
		if j == cause || reach.has(j) {
			continue
		}
		d.races++
		d.reverse(j, i)
	}
}

// reverse makes the search try, at frame j, a schedule that runs step i's
// event before step j's (source-DPOR, Abdulla et al. POPL 2014): v is the
// steps after j that do not depend on j, then i; one of v's initials (the
// steps of v no earlier step of v happens before) joins j's backtrack set
// unless one is there already.
func (d *dpor) reverse(j, i int) {
	f := &d.stack[j]
	var v []int
	for k := j + 1; k < i; k++ {
		if !d.past[k].has(j) {
			v = append(v, k)
		}
	}
	v = append(v, i)
	var initials []string
	for n, k := range v {
		first := true
		for _, k2 := range v[:n] {
			if d.past[k].has(k2) {
				first = false
				break
			}
		}
		if first {
			initials = append(initials, d.trace[k].Label())
		}
	}
	for _, l := range initials {
		if slices.Contains(f.backtrack, l) {
			return
		}
	}
	// Prefer the racing event itself (the last initial when it is one).
	for n := len(initials) - 1; n >= 0; n-- {
		if slices.Contains(f.labels, initials[n]) {
			f.backtrack = append(f.backtrack, initials[n])
			return
		}
	}
	d.fallbacks++
	for _, l := range f.labels {
		if !slices.Contains(f.backtrack, l) {
			f.backtrack = append(f.backtrack, l)
		}
	}
}

// backtrack moves the stack to the next choice of a backtrack set not yet
// explored and not asleep; false when the search is over.
func (d *dpor) backtrack() bool {
	for len(d.stack) > 0 {
		top := &d.stack[len(d.stack)-1]
		top.done = append(top.done, top.enabled[top.chosen])
		next := -1
		for _, l := range top.backtrack {
			if !containsLabel(top.done, l) && !containsLabel(top.sleep, l) {
				next = slices.Index(top.labels, l)
				break
			}
		}
		if next >= 0 {
			top.chosen = next
			d.newFrom = len(d.stack) - 1
			return true
		}
		d.stack = d.stack[:len(d.stack)-1]
	}
	return false
}

// DPOR explores every schedule of sc up to equivalence, depth first,
// re-running each schedule from the start (stateless search), with
// dynamic partial-order reduction: source sets and sleep sets (Abdulla,
// Aronis, Jonsson, Sagonas, POPL 2014). Two choices are dependent if they
// touch a common object (deliveries, submits and ticks at one replica; the
// replies among themselves; a budget) or one is a restart. Each run, the
// search finds the races of its new steps — a dependent earlier step that
// reaches the new one through no other step — and schedules their
// reversal at the earlier step; every Mazurkiewicz trace of the scope
// (within the bounds) is explored at least once, and the checks, which
// depend only on the trace, are decided on every one.
//
// It stops at the first failing schedule. Report.States counts the
// distinct prefixes (search frames) explored; no state hashing is done, as
// sleep sets already keep two equivalent prefixes from both being
// explored, and pruning at a visited state would lose the races of its
// future.
func DPOR(sc Scope, opt Options) *Report { return deepen(sc, opt, dporOnce) }

func dporOnce(sc Scope, opt Options) *Report {
	start := time.Now()
	rep := &Report{Mode: "dpor", EventsBound: opt.Events, FIFO: opt.FIFO}
	d := &dpor{events: opt.Events, fifo: opt.FIFO}
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
		d.finish(d.ended == "" && o.Err == nil && steps < maxSteps)
		if d.ended == "blocked" {
			rep.Blocked++
		} else {
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
		if (opt.MaxRuns > 0 && rep.Runs >= opt.MaxRuns) || past(opt.Deadline) {
			break
		}
	}
	rep.States = d.frames
	rep.Races, rep.Fallbacks = d.races, d.fallbacks
	rep.Elapsed = time.Since(start)
	return rep
}

func containsLabel(cs []simnet.Choice, l string) bool {
	for _, c := range cs {
		if c.Label() == l {
			return true
		}
	}
	return false
}
