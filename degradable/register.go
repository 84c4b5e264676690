package degradable

import (
	"sync"
	"sync/atomic"
)

// Register is a shared register holding a V, starting at V's zero value,
// with the same signature at every level.
type Register[V any] interface {
	Handle
	// Write sets the register to v.
	Write(v V)
	// Read returns the register's value as this replica sees it.
	Read() V
}

// NewRegister creates a register with the given level and number of
// replicas and returns one handle per replica, handle i on replica i. It
// fails on an invalid level, a number of replicas outside [1, MaxReplicas]
// or an invalid option.
//
// At the linearizable level the register is one value under a lock; at the
// sequential level its writes go through the sequencer's log; at the weak
// level it is a last-writer-wins register: each replica publishes its
// latest write with a Lamport timestamp when it pulls, and returns the
// write with the greatest (timestamp, replica) it has seen.
func NewRegister[V any](level Level, replicas int, opts ...Option) ([]Register[V], error) {
	cfg, err := newConfig("Register", level, replicas, opts)
	if err != nil {
		return nil, err
	}
	hs := make([]Register[V], replicas)
	switch level {
	case Linearizable:
		one := new(lockedRegister[V])
		for i := range hs {
			hs[i] = &linRegister[V]{base: base{level, i}, one: one}
		}
	case Sequential:
		states := make([]machine[V], replicas)
		for i := range states {
			states[i] = new(registerState[V])
		}
		s := newSequencer(cfg, states)
		for i := range hs {
			hs[i] = &seqRegister[V]{base: base{level, i}, s: s, r: s.replicas[i], st: states[i].(*registerState[V])}
		}
	default:
		sh := &lwwShared[V]{cells: make([]atomic.Pointer[stamped[V]], replicas), cfg: cfg}
		for i := range hs {
			hs[i] = &lwwRegister[V]{base: base{level, i}, sh: sh}
		}
	}
	return hs, nil
}

// lockedRegister is the one copy of a linearizable register.
type lockedRegister[V any] struct {
	mu sync.Mutex
	v  V
}

// linRegister is a handle on a linearizable register.
type linRegister[V any] struct {
	base
	one *lockedRegister[V]
}

// Write sets the value under the lock.
func (r *linRegister[V]) Write(v V) {
	r.one.mu.Lock()
	r.one.v = v
	r.one.mu.Unlock()
}

// Read returns the value under the lock.
func (r *linRegister[V]) Read() V {
	r.one.mu.Lock()
	defer r.one.mu.Unlock()
	return r.one.v
}

// Sync does nothing: there is one copy.
func (r *linRegister[V]) Sync() {}

// registerState is a sequential replica's copy of a register; an operation
// is the value written.
type registerState[V any] struct{ v V }

func (s *registerState[V]) apply(v V) { s.v = v }

// seqRegister is the sequential register.
type seqRegister[V any] struct {
	base
	s  *sequencer[V]
	r  *seqReplica[V]
	st *registerState[V]
}

// Write appends the write to the sequencer's log.
func (r *seqRegister[V]) Write(v V) { r.s.update(r.r, v) }

// Read reads the replica's copy, which has applied at least the client's
// own writes.
func (r *seqRegister[V]) Read() V {
	r.s.lockRead(r.r)
	v := r.st.v
	r.s.done(r.r)
	return v
}

// Sync applies the whole log at this replica.
func (r *seqRegister[V]) Sync() { r.s.sync(r.r) }

// stamp orders the writes of a last-writer-wins object: a Lamport time,
// ties broken by the writing replica.
type stamp struct {
	t uint64
	w int
}

// after reports whether s orders after o.
func (s stamp) after(o stamp) bool { return s.t > o.t || (s.t == o.t && s.w > o.w) }

// stamped is a write with its stamp.
type stamped[V any] struct {
	v V
	s stamp
}

// lwwShared is the per-writer state of a weak register: cell i holds
// replica i's latest write.
type lwwShared[V any] struct {
	cells []atomic.Pointer[stamped[V]]
	cfg   config
}

// lwwRegister is one replica of the weak register.
type lwwRegister[V any] struct {
	base
	sh    *lwwShared[V]
	cur   *stamped[V] // the greatest write seen here (nil: none)
	own   *stamped[V] // this replica's latest write (nil: none)
	clock uint64      // Lamport clock: at least every time seen here
	ops   int
	_     pad
}

// Write stamps v after everything this replica has seen; it wins here at
// once and is published at the next pull.
func (r *lwwRegister[V]) Write(v V) {
	r.clock++
	r.cur = &stamped[V]{v: v, s: stamp{r.clock, r.replica}}
	r.own = r.cur
	r.tick()
}

// Read returns the greatest write seen here.
func (r *lwwRegister[V]) Read() V {
	r.tick()
	if r.cur == nil {
		var zero V
		return zero
	}
	return r.cur.v
}

// tick counts an operation and pulls when a pull is due.
func (r *lwwRegister[V]) tick() {
	if r.ops++; r.ops >= r.sh.cfg.pullEvery {
		r.pull()
	}
}

// pull publishes this replica's latest write and merges the other
// replicas': the greatest stamp wins.
func (r *lwwRegister[V]) pull() {
	r.ops = 0
	if r.own != nil {
		r.sh.cells[r.replica].Store(r.own)
	}
	last := len(r.sh.cells) - 1
	for i := range r.sh.cells {
		if i == r.replica || (r.sh.cfg.bug == bugLosingMerge && i == last) {
			continue
		}
		w := r.sh.cells[i].Load()
		if w == nil {
			continue
		}
		r.clock = max(r.clock, w.s.t)
		if r.cur == nil || w.s.after(r.cur.s) {
			r.cur = w
		}
	}
}

// Sync publishes this replica's latest write and pulls every other
// replica's.
func (r *lwwRegister[V]) Sync() { r.pull() }
