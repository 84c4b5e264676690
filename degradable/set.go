package degradable

import (
	"maps"
	"slices"
	"sync"
)

// Set is a shared set of E, starting empty, with the same signature at
// every level.
type Set[E comparable] interface {
	Handle
	// Add puts e in the set.
	Add(e E)
	// Remove takes e out of the set.
	Remove(e E)
	// Contains reports whether e is in the set as this replica sees it.
	Contains(e E) bool
	// Len returns the number of elements as this replica sees them.
	Len() int
	// Elements returns the elements as this replica sees them, in no
	// particular order, in a new slice.
	Elements() []E
}

// NewSet creates a set with the given level and number of replicas and
// returns one handle per replica, handle i on replica i. It fails on an
// invalid level, a number of replicas outside [1, MaxReplicas] or an
// invalid option.
//
// At the linearizable level the set is one Go map under a lock; at the
// sequential level its updates go through the sequencer's log; at the weak
// level it is an observed-remove set (add wins over a concurrent remove):
// each add carries a new tag, which replaces its replica's own earlier tags
// of the element, so a replica keeps at most one live tag per writer and
// element, and a removed tag is remembered only until its add arrives.
func NewSet[E comparable](level Level, replicas int, opts ...Option) ([]Set[E], error) {
	cfg, err := newConfig("Set", level, replicas, opts)
	if err != nil {
		return nil, err
	}
	hs := make([]Set[E], replicas)
	switch level {
	case Linearizable:
		one := &lockedSet[E]{m: make(setState[E])}
		for i := range hs {
			hs[i] = &linSet[E]{base: base{level, i}, one: one}
		}
	case Sequential:
		states := make([]machine[setOp[E]], replicas)
		for i := range states {
			states[i] = make(setState[E])
		}
		s := newSequencer(cfg, states)
		for i := range hs {
			hs[i] = &seqSet[E]{base: base{level, i}, s: s, r: s.replicas[i], st: states[i].(setState[E])}
		}
	default:
		states := make([]machine[orOp[E]], replicas)
		for i := range states {
			states[i] = &orSet[E]{elems: make(map[E]*orElem), arrived: make([]uint64, replicas)}
		}
		g := newGossip(cfg, states)
		for i := range hs {
			hs[i] = &weakSet[E]{base: base{level, i}, g: g, r: g.replicas[i], st: states[i].(*orSet[E])}
		}
	}
	return hs, nil
}

// setOp is an update of the sequential specification of a set.
type setOp[E comparable] struct {
	e      E
	remove bool
}

// setState is a set: the linearizable copy, or a sequential replica's.
type setState[E comparable] map[E]struct{}

func (s setState[E]) apply(op setOp[E]) {
	if op.remove {
		delete(s, op.e)
	} else {
		s[op.e] = struct{}{}
	}
}

func (s setState[E]) contains(e E) bool {
	_, ok := s[e]
	return ok
}

// lockedSet is the one copy of a linearizable set.
type lockedSet[E comparable] struct {
	mu sync.Mutex
	m  setState[E]
}

// linSet is a handle on a linearizable set.
type linSet[E comparable] struct {
	base
	one *lockedSet[E]
}

// Add adds e under the lock.
func (s *linSet[E]) Add(e E) { s.update(setOp[E]{e: e}) }

// Remove removes e under the lock.
func (s *linSet[E]) Remove(e E) { s.update(setOp[E]{e: e, remove: true}) }

func (s *linSet[E]) update(op setOp[E]) {
	s.one.mu.Lock()
	s.one.m.apply(op)
	s.one.mu.Unlock()
}

// Contains looks e up under the lock.
func (s *linSet[E]) Contains(e E) bool {
	s.one.mu.Lock()
	defer s.one.mu.Unlock()
	return s.one.m.contains(e)
}

// Len counts the elements under the lock.
func (s *linSet[E]) Len() int {
	s.one.mu.Lock()
	defer s.one.mu.Unlock()
	return len(s.one.m)
}

// Elements copies the elements under the lock.
func (s *linSet[E]) Elements() []E {
	s.one.mu.Lock()
	defer s.one.mu.Unlock()
	return slices.Collect(maps.Keys(s.one.m))
}

// Sync does nothing: there is one copy.
func (s *linSet[E]) Sync() {}

// seqSet is the sequential set.
type seqSet[E comparable] struct {
	base
	s  *sequencer[setOp[E]]
	r  *seqReplica[setOp[E]]
	st setState[E]
}

// Add appends the add to the sequencer's log.
func (s *seqSet[E]) Add(e E) { s.s.update(s.r, setOp[E]{e: e}) }

// Remove appends the remove to the sequencer's log.
func (s *seqSet[E]) Remove(e E) { s.s.update(s.r, setOp[E]{e: e, remove: true}) }

// Contains reads the replica's copy.
func (s *seqSet[E]) Contains(e E) bool {
	s.s.lockRead(s.r)
	defer s.s.done(s.r)
	return s.st.contains(e)
}

// Len reads the replica's copy.
func (s *seqSet[E]) Len() int {
	s.s.lockRead(s.r)
	defer s.s.done(s.r)
	return len(s.st)
}

// Elements reads the replica's copy.
func (s *seqSet[E]) Elements() []E {
	s.s.lockRead(s.r)
	defer s.s.done(s.r)
	return slices.Collect(maps.Keys(s.st))
}

// Sync applies the whole log at this replica.
func (s *seqSet[E]) Sync() { s.s.sync(s.r) }

// tag names one add of an observed-remove set: the replica that made it and
// its number there.
type tag struct {
	w int
	n uint64
}

// orOp is an effector of the observed-remove set: an add of e under a new
// tag, replacing the adder's own earlier tags of e (so that each writer
// keeps at most one live tag per element), or a remove of the tags of e
// that the remover had seen.
type orOp[E comparable] struct {
	e    E
	rem  bool
	add  tag   // the new tag, for an add
	tags []tag // for an add, the adder's tags it replaces; for a remove, the tags removed
}

// orElem is what a replica knows of one element: the tags of its adds not
// yet removed (at most one per writer), and the tags removed before their
// add arrived here. Both are short, so they are slices.
type orElem struct {
	live []tag
	dead []tag
}

// orSet is a weak replica's state: an element is in the set while it has a
// live tag. Adds and removes commute: a tag removed before its add arrives
// waits in dead and cancels the add when it does. As each writer's adds
// arrive in order, a tag numbered at most arrived[w] has arrived, so a
// remove of such a tag that is not live finds it removed already.
type orSet[E comparable] struct {
	elems   map[E]*orElem
	arrived []uint64 // per writer, the number of its last add applied here
	size    int      // elements with a live tag
}

// without returns ts less t, reporting whether t was there.
func without(ts []tag, t tag) ([]tag, bool) {
	for i, x := range ts {
		if x == t {
			ts[i] = ts[len(ts)-1]
			return ts[:len(ts)-1], true
		}
	}
	return ts, false
}

func (s *orSet[E]) apply(op orOp[E]) {
	x := s.elems[op.e]
	if x == nil {
		x = new(orElem)
		s.elems[op.e] = x
	}
	had := len(x.live) > 0
	if !op.rem {
		for _, t := range op.tags {
			x.live, _ = without(x.live, t) // the adder's own earlier tags arrived before this add
		}
		s.arrived[op.add.w] = op.add.n
		var cancelled bool
		if x.dead, cancelled = without(x.dead, op.add); !cancelled {
			x.live = append(x.live, op.add)
		}
	} else {
		for _, t := range op.tags {
			var ok bool
			if x.live, ok = without(x.live, t); !ok && t.n > s.arrived[t.w] {
				x.dead = append(x.dead, t)
			}
		}
	}
	switch has := len(x.live) > 0; {
	case has && !had:
		s.size++
	case had && !has:
		s.size--
	}
	if len(x.live) == 0 && len(x.dead) == 0 {
		delete(s.elems, op.e)
	}
}

func (s *orSet[E]) contains(e E) bool {
	x := s.elems[e]
	return x != nil && len(x.live) > 0
}

// weakSet is one replica of the weak set.
type weakSet[E comparable] struct {
	base
	g  *gossip[orOp[E]]
	r  *weakReplica[orOp[E]]
	st *orSet[E]
}

// Add adds e under a new tag, which replaces this replica's own earlier
// tags of e, at once here.
func (s *weakSet[E]) Add(e E) {
	s.g.lock(s.r)
	var own []tag
	if x := s.st.elems[e]; x != nil {
		for _, t := range x.live {
			if t.w == s.replica {
				own = append(own, t)
			}
		}
	}
	s.g.emit(s.r, orOp[E]{e: e, add: tag{s.replica, s.st.arrived[s.replica] + 1}, tags: own})
	s.g.unlock(s.r)
}

// Remove removes the tags of e seen here, at once here; an add this
// replica has not seen survives it.
func (s *weakSet[E]) Remove(e E) {
	s.g.lock(s.r)
	if x := s.st.elems[e]; x != nil && len(x.live) > 0 {
		s.g.emit(s.r, orOp[E]{e: e, rem: true, tags: slices.Clone(x.live)})
	}
	s.g.unlock(s.r)
}

// Contains reports whether e has a live tag here.
func (s *weakSet[E]) Contains(e E) bool {
	s.g.lock(s.r)
	defer s.g.unlock(s.r)
	return s.st.contains(e)
}

// Len counts the elements with a live tag here.
func (s *weakSet[E]) Len() int {
	s.g.lock(s.r)
	defer s.g.unlock(s.r)
	return s.st.size
}

// Elements lists the elements with a live tag here.
func (s *weakSet[E]) Elements() []E {
	s.g.lock(s.r)
	defer s.g.unlock(s.r)
	var out []E
	for e, x := range s.st.elems {
		if len(x.live) > 0 {
			out = append(out, e)
		}
	}
	return out
}

// Sync pulls every other replica's effectors.
func (s *weakSet[E]) Sync() { s.g.sync(s.r) }
