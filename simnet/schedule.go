package simnet

import (
	"fmt"
	"strings"

	"github.com/blossom-dso/blossom/protocols"
)

// Scheduler picks the next event of an explored run (Config.Scheduler).
//
// An explored run has no clock: at every step the simulator lists the
// enabled events — message deliveries (and, within Config.Budget, drops and
// duplicates of messages in flight), client submits reaching their replica,
// replies reaching their client, ticks, crashes and restarts — and the
// scheduler picks one. The default run (Scheduler nil) is the time-ordered
// schedule of the event heap, unchanged.
type Scheduler interface {
	// Next returns the index in enabled of the event to run at step step
	// (0-based), or -1 to end the run. enabled is never empty and is valid
	// only during the call.
	Next(step int, enabled []Choice) int
}

// ChoiceKind says what a Choice does.
type ChoiceKind uint8

// The choice kinds.
const (
	// ChoiceDeliver delivers message N of channel From->Node.
	ChoiceDeliver ChoiceKind = iota + 1
	// ChoiceDrop loses that message (Budget.Drops).
	ChoiceDrop
	// ChoiceDup delivers a copy of that message and keeps it in flight
	// (Budget.Dups).
	ChoiceDup
	// ChoiceSubmit hands client From's N-th command to replica Node.
	ChoiceSubmit
	// ChoiceReply hands replica Node's answer to client From's N-th
	// command to the client.
	ChoiceReply
	// ChoiceTick ticks replica Node for the N-th time (Budget.Ticks).
	ChoiceTick
	// ChoiceCrash crashes replica Node, keeping every record it persisted
	// (Budget.Crashes); messages and submits in flight to it are lost.
	ChoiceCrash
	// ChoiceRestart restarts crashed replica Node from its disk.
	ChoiceRestart
)

var choiceNames = [...]string{"?", "deliver", "drop", "dup", "submit", "reply", "tick", "crash", "restart"}

func (k ChoiceKind) String() string {
	if int(k) < len(choiceNames) {
		return choiceNames[k]
	}
	return "?"
}

// Objects a choice touches, as bits of Choice.Objects: bit i-1 is replica
// i (explored runs have at most MaxExploreNodes replicas), and the others
// are shared by the choices named.
const (
	// ObjClients is touched by every reply: the history's real-time order.
	ObjClients uint64 = 1 << 63
	// ObjDrops is the drop budget.
	ObjDrops uint64 = 1 << 62
	// ObjDups is the duplicate budget.
	ObjDups uint64 = 1 << 61
	// ObjCrashes is the crash budget (and the bound of F replicas down).
	ObjCrashes uint64 = 1 << 60
	// MaxExploreNodes is the largest number of replicas of an explored run.
	MaxExploreNodes = 60
)

// Choice is one enabled event of an explored run.
type Choice struct {
	Kind ChoiceKind
	// Node is the replica (1-based) that receives, answers, ticks, crashes
	// or restarts.
	Node int
	// From is the sending replica (deliver, drop, dup) or the client
	// (1-based; submit, reply).
	From int
	// N is the ordinal of the message on its channel, of the command in
	// its client's sequence, of the tick at its replica, or of the crash.
	N int
	// Msg names the message's type (deliver, drop, dup).
	Msg string
	// Cause is the step whose effects enabled the event (-1: the start).
	Cause int
	// Objects has the bits of the objects the event touches: two choices
	// that touch no common object commute and neither disables the other.
	Objects uint64
}

// Label identifies the choice within its run; equal decisions of two runs
// with the same prefix have equal labels. Traces are lists of labels.
func (c Choice) Label() string {
	switch c.Kind {
	case ChoiceDeliver, ChoiceDrop, ChoiceDup:
		return fmt.Sprintf("%s %d>%d #%d %s", c.Kind, c.From, c.Node, c.N, c.Msg)
	case ChoiceSubmit:
		return fmt.Sprintf("submit c%d#%d >%d", c.From, c.N, c.Node)
	case ChoiceReply:
		return fmt.Sprintf("reply c%d#%d <%d", c.From, c.N, c.Node)
	case ChoiceTick, ChoiceCrash:
		return fmt.Sprintf("%s %d #%d", c.Kind, c.Node, c.N)
	case ChoiceRestart:
		return fmt.Sprintf("restart %d #%d", c.Node, c.N)
	}
	return "?"
}

// Conflicts reports whether c and d touch a common object (are dependent).
func (c Choice) Conflicts(d Choice) bool { return c.Objects&d.Objects != 0 }

// Fault reports whether the choice spends a fault budget or restarts.
func (c Choice) Fault() bool {
	switch c.Kind {
	case ChoiceDrop, ChoiceDup, ChoiceCrash, ChoiceRestart:
		return true
	}
	return false
}

// Budget bounds an explored run.
type Budget struct {
	// Drops, Dups and Crashes bound the message drops, duplicates and
	// crash-restarts a scheduler may choose in one run.
	Drops, Dups, Crashes int
	// Ticks bounds the ticks of each replica.
	Ticks int
	// Steps bounds the steps of a run (default 10000; see MaxSteps).
	Steps int
}

// MaxSteps returns the bound on the steps of a run: Steps, or 10000 if
// Steps is 0.
func (b Budget) MaxSteps() int {
	if b.Steps == 0 {
		return 10000
	}
	return b.Steps
}

// pend is an event of an explored run waiting for the scheduler: a message,
// a submit or a reply.
type pend struct {
	ev event
	ch Choice
}

// explorer is the state of an explored run.
type explorer struct {
	sched   Scheduler
	budget  Budget
	pool    []pend
	chanN   []int // per channel i*n+j: messages put on it
	ticks   []int // per node
	crashes int
	drops   int
	dups    int
	step    int // index of the current step
	taken   int // steps carried out
	en      []Choice

	// The step invariants: per (node, incarnation) and key, the commands
	// executed so far; the first order seen of every pair; how many
	// executions of each incarnation were checked.
	seen      map[incKey]int
	perKey    map[incKey]map[string][]protocols.CommandID
	before    map[[2]protocols.CommandID]string
	violation string
}

type incKey struct{ node, inc int }

// StepError describes a breach of a step invariant in an explored run.
type StepError struct {
	// Step is the step after which the breach was seen.
	Step int
	// What describes it.
	What string
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step %d: %s", e.Step, e.What)
}

func (s *sim) validateExplore() error {
	rc := s.cfg
	if !rc.faults.None() || len(rc.Crashes) > 0 {
		return fmt.Errorf("%w: an explored run takes its faults from Budget, not Faults or Crashes", ErrConfig)
	}
	if rc.lat.Kind != Constant {
		return fmt.Errorf("%w: an explored run needs a constant latency model", ErrConfig)
	}
	if s.n > MaxExploreNodes {
		return fmt.Errorf("%w: an explored run has at most %d nodes", ErrConfig, MaxExploreNodes)
	}
	b := rc.Budget
	if b.Drops < 0 || b.Dups < 0 || b.Crashes < 0 || b.Ticks < 0 || b.Steps < 0 {
		return fmt.Errorf("%w: negative budget %+v", ErrConfig, b)
	}
	return nil
}

// exploreLoop runs an explored run: auto events (syncs, client starts) fire
// at once, the others wait in the pool, and the scheduler picks one enabled
// choice per step. s.now counts client events only (the history's clock).
func (s *sim) exploreLoop() {
	x := s.x
	maxSteps := x.budget.MaxSteps()
	s.now = 0
	x.step = -1
	for {
		s.settle()
		s.checkSteps()
		if s.err != nil || x.violation != "" {
			return
		}
		x.step++
		if x.step >= maxSteps {
			return
		}
		x.en = s.enabled(x.en[:0])
		if len(x.en) == 0 {
			return
		}
		i := x.sched.Next(x.step, x.en)
		if i < 0 || i >= len(x.en) {
			return
		}
		s.apply(x.en[i])
		x.taken++
	}
}

// settle empties the event heap: syncs and client starts fire, ticks and
// timeouts are dropped (explored runs tick by choice and never time out),
// and messages, submits and replies join the pool.
func (s *sim) settle() {
	x := s.x
	for s.q.len() > 0 {
		ev := s.q.pop()
		switch ev.kind {
		case evSync:
			nd := s.nodes[ev.node]
			if ev.inc == nd.inc && nd.up {
				nd.synced(ev.a)
			}
		case evStart:
			s.now++
			s.issue(int(ev.peer))
		case evMsg:
			if !s.nodes[ev.node].up {
				s.msgs.take(ev.a)
				s.dropped++
				continue
			}
			l := int(ev.peer)*s.n + int(ev.node)
			x.chanN[l]++
			m := s.msgs.m[ev.a]
			x.pool = append(x.pool, pend{ev: ev, ch: Choice{
				Kind: ChoiceDeliver, Node: int(ev.node) + 1, From: int(ev.peer) + 1, N: x.chanN[l],
				Msg: msgName(m), Cause: x.step, Objects: 1 << ev.node,
			}})
		case evSubmit:
			if !s.nodes[ev.node].up {
				s.cmds.take(ev.a)
				s.dropped++
				continue
			}
			ci := int(ev.peer)
			x.pool = append(x.pool, pend{ev: ev, ch: Choice{
				Kind: ChoiceSubmit, Node: int(ev.node) + 1, From: ci + 1, N: int(s.clients[ci].seq),
				Cause: x.step, Objects: 1 << ev.node,
			}})
		case evReply:
			ci := int(ev.peer)
			x.pool = append(x.pool, pend{ev: ev, ch: Choice{
				Kind: ChoiceReply, Node: int(ev.node) + 1, From: ci + 1, N: int(ev.a),
				Cause: x.step, Objects: ObjClients,
			}})
		}
	}
}

func msgName(m protocols.Message) string {
	t := fmt.Sprintf("%T", m)
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		t = t[i+1:]
	}
	return t
}

// enabled lists the choices of the current step: the pool in the order its
// events were created (each message followed by its drop and duplicate
// within budget), then ticks, crashes and restarts by node.
func (s *sim) enabled(out []Choice) []Choice {
	x := s.x
	b := x.budget
	for _, p := range x.pool {
		out = append(out, p.ch)
		if p.ch.Kind == ChoiceDeliver {
			if x.drops < b.Drops {
				c := p.ch
				c.Kind, c.Objects = ChoiceDrop, c.Objects|ObjDrops
				out = append(out, c)
			}
			if x.dups < b.Dups {
				c := p.ch
				c.Kind, c.Objects = ChoiceDup, c.Objects|ObjDups
				out = append(out, c)
			}
		}
	}
	down := 0
	for _, nd := range s.nodes {
		if !nd.up {
			down++
		}
	}
	for i, nd := range s.nodes {
		if nd.up && x.ticks[i] < b.Ticks {
			out = append(out, Choice{Kind: ChoiceTick, Node: i + 1, N: x.ticks[i] + 1, Cause: -1, Objects: 1 << i})
		}
	}
	for i, nd := range s.nodes {
		switch {
		case nd.up && x.crashes < b.Crashes && down < s.cfg.F:
			out = append(out, Choice{Kind: ChoiceCrash, Node: i + 1, N: int(nd.inc) + 1, Cause: -1, Objects: 1<<i | ObjCrashes})
		case !nd.up && !nd.stopped:
			out = append(out, Choice{Kind: ChoiceRestart, Node: i + 1, N: int(nd.inc), Cause: -1, Objects: 1<<i | ObjCrashes})
		}
	}
	return out
}

// apply carries out choice c.
func (s *sim) apply(c Choice) {
	x := s.x
	take := func() pend {
		for i, p := range x.pool {
			if p.ch.Kind == c.Kind || (p.ch.Kind == ChoiceDeliver && (c.Kind == ChoiceDrop || c.Kind == ChoiceDup)) {
				if p.ch.Node == c.Node && p.ch.From == c.From && p.ch.N == c.N {
					if c.Kind != ChoiceDup {
						x.pool = append(x.pool[:i], x.pool[i+1:]...)
					}
					return p
				}
			}
		}
		panic(fmt.Sprintf("simnet: choice %s is not in the pool", c.Label()))
	}
	switch c.Kind {
	case ChoiceDeliver:
		p := take()
		m := s.msgs.take(p.ev.a)
		s.deliver(p.ev, m)
	case ChoiceDrop:
		p := take()
		s.msgs.take(p.ev.a)
		s.dropped++
		x.drops++
	case ChoiceDup:
		p := take()
		s.duplicated++
		x.dups++
		s.deliver(p.ev, s.roundTrip(s.msgs.m[p.ev.a]))
	case ChoiceSubmit:
		p := take()
		cmd := s.cmds.take(p.ev.a)
		nd := s.nodes[p.ev.node]
		nd.core.Submit(cmd)
		nd.drain()
	case ChoiceReply:
		p := take()
		s.now++
		s.reply(int(p.ev.peer), p.ev.a, p.ev.b)
	case ChoiceTick:
		nd := s.nodes[c.Node-1]
		x.ticks[c.Node-1]++
		nd.core.Tick()
		nd.drain()
	case ChoiceCrash:
		nd := s.nodes[c.Node-1]
		x.crashes++
		nd.crash(CrashRestart)
		s.logf("step %d: crash node %d", x.step, nd.id)
		kept := x.pool[:0]
		for _, p := range x.pool {
			if p.ch.Kind != ChoiceReply && p.ch.Node == c.Node {
				if p.ch.Kind == ChoiceSubmit {
					s.cmds.take(p.ev.a)
				} else {
					s.msgs.take(p.ev.a)
				}
				s.dropped++
				continue
			}
			kept = append(kept, p)
		}
		clear(x.pool[len(kept):])
		x.pool = kept
	case ChoiceRestart:
		nd := s.nodes[c.Node-1]
		s.logf("step %d: restart node %d", x.step, nd.id)
		if err := nd.restart(); err != nil {
			s.err = err
		}
	}
}

// deliver hands message m of event ev to its node.
func (s *sim) deliver(ev event, m protocols.Message) {
	nd := s.nodes[ev.node]
	s.deliveries++
	nd.stats.Delivered++
	s.fold(digestDeliv, uint64(s.x.step), uint64(ev.peer)<<32|uint64(ev.node))
	nd.core.Step(protocols.NodeID(ev.peer+1), m)
	nd.drain()
}

// checkSteps checks the executions since the last check: no command twice
// in one incarnation, and no two conflicting commands executed in opposite
// orders anywhere (the pairwise part of the order contract; longer cycles
// are left to the end-of-run check).
func (s *sim) checkSteps() {
	x := s.x
	if x.violation != "" {
		return
	}
	for _, nd := range s.nodes {
		for inc, execs := range nd.execs {
			k := incKey{nd.idx, inc}
			from := x.seen[k]
			if from == len(execs) {
				continue
			}
			x.seen[k] = len(execs)
			keys := x.perKey[k]
			if keys == nil {
				keys = map[string][]protocols.CommandID{}
				x.perKey[k] = keys
			}
			where := fmt.Sprintf("node %d incarnation %d", nd.id, inc)
			for _, e := range execs[from:] {
				for _, key := range s.keysOf(e.id) {
					prev := keys[key]
					for _, p := range prev {
						if p == e.id {
							x.violation = fmt.Sprintf("command %v executed twice at %s", e.id, where)
							return
						}
						if w, ok := x.before[[2]protocols.CommandID{e.id, p}]; ok {
							x.violation = fmt.Sprintf("key %q executed in conflicting orders: %v before %v at %s; %v before %v at %s",
								key, e.id, p, w, p, e.id, where)
							return
						}
						if _, ok := x.before[[2]protocols.CommandID{p, e.id}]; !ok {
							x.before[[2]protocols.CommandID{p, e.id}] = where
						}
					}
					keys[key] = append(prev, e.id)
				}
			}
		}
	}
}
