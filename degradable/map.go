package degradable

import (
	"maps"
	"sync"
)

// Map is a shared map from K to V, starting empty, with the same signature
// at every level.
type Map[K comparable, V any] interface {
	Handle
	// Put sets the value of k to v.
	Put(k K, v V)
	// Delete removes k.
	Delete(k K)
	// Get returns the value of k and true, or V's zero value and false if k
	// is absent, as this replica sees it.
	Get(k K) (V, bool)
	// Len returns the number of keys as this replica sees them.
	Len() int
	// Entries returns the map as this replica sees it, in a new map.
	Entries() map[K]V
}

// NewMap creates a map with the given level and number of replicas and
// returns one handle per replica, handle i on replica i. It fails on an
// invalid level, a number of replicas outside [1, MaxReplicas] or an
// invalid option.
//
// At the linearizable level the map is one Go map under a lock; at the
// sequential level its updates go through the sequencer's log; at the weak
// level it is a last-writer-wins map: every put and delete carries a
// Lamport timestamp and its replica, and for each key the greatest
// (timestamp, replica) wins. A delete leaves a tombstone, which this first
// version never collects.
func NewMap[K comparable, V any](level Level, replicas int, opts ...Option) ([]Map[K, V], error) {
	cfg, err := newConfig("Map", level, replicas, opts)
	if err != nil {
		return nil, err
	}
	hs := make([]Map[K, V], replicas)
	switch level {
	case Linearizable:
		one := &lockedMap[K, V]{m: make(mapState[K, V])}
		for i := range hs {
			hs[i] = &linMap[K, V]{base: base{level, i}, one: one}
		}
	case Sequential:
		states := make([]machine[mapOp[K, V]], replicas)
		for i := range states {
			states[i] = make(mapState[K, V])
		}
		s := newSequencer(cfg, states)
		for i := range hs {
			hs[i] = &seqMap[K, V]{base: base{level, i}, s: s, r: s.replicas[i], st: states[i].(mapState[K, V])}
		}
	default:
		states := make([]machine[lwwOp[K, V]], replicas)
		for i := range states {
			states[i] = &lwwMap[K, V]{m: make(map[K]lwwEntry[V])}
		}
		g := newGossip(cfg, states)
		for i := range hs {
			hs[i] = &weakMap[K, V]{base: base{level, i}, g: g, r: g.replicas[i], st: states[i].(*lwwMap[K, V])}
		}
	}
	return hs, nil
}

// mapOp is an update of the sequential specification of a map.
type mapOp[K comparable, V any] struct {
	k   K
	v   V
	del bool
}

// mapState is a map: the linearizable copy, or a sequential replica's.
type mapState[K comparable, V any] map[K]V

func (m mapState[K, V]) apply(op mapOp[K, V]) {
	if op.del {
		delete(m, op.k)
	} else {
		m[op.k] = op.v
	}
}

// lockedMap is the one copy of a linearizable map.
type lockedMap[K comparable, V any] struct {
	mu sync.Mutex
	m  mapState[K, V]
}

// linMap is a handle on a linearizable map.
type linMap[K comparable, V any] struct {
	base
	one *lockedMap[K, V]
}

// Put sets k under the lock.
func (m *linMap[K, V]) Put(k K, v V) { m.update(mapOp[K, V]{k: k, v: v}) }

// Delete removes k under the lock.
func (m *linMap[K, V]) Delete(k K) { m.update(mapOp[K, V]{k: k, del: true}) }

func (m *linMap[K, V]) update(op mapOp[K, V]) {
	m.one.mu.Lock()
	m.one.m.apply(op)
	m.one.mu.Unlock()
}

// Get looks k up under the lock.
func (m *linMap[K, V]) Get(k K) (V, bool) {
	m.one.mu.Lock()
	defer m.one.mu.Unlock()
	v, ok := m.one.m[k]
	return v, ok
}

// Len counts the keys under the lock.
func (m *linMap[K, V]) Len() int {
	m.one.mu.Lock()
	defer m.one.mu.Unlock()
	return len(m.one.m)
}

// Entries copies the map under the lock.
func (m *linMap[K, V]) Entries() map[K]V {
	m.one.mu.Lock()
	defer m.one.mu.Unlock()
	return maps.Clone(map[K]V(m.one.m))
}

// Sync does nothing: there is one copy.
func (m *linMap[K, V]) Sync() {}

// seqMap is the sequential map.
type seqMap[K comparable, V any] struct {
	base
	s  *sequencer[mapOp[K, V]]
	r  *seqReplica[mapOp[K, V]]
	st mapState[K, V]
}

// Put appends the put to the sequencer's log.
func (m *seqMap[K, V]) Put(k K, v V) { m.s.update(m.r, mapOp[K, V]{k: k, v: v}) }

// Delete appends the delete to the sequencer's log.
func (m *seqMap[K, V]) Delete(k K) { m.s.update(m.r, mapOp[K, V]{k: k, del: true}) }

// Get reads the replica's copy.
func (m *seqMap[K, V]) Get(k K) (V, bool) {
	m.s.lockRead(m.r)
	defer m.s.done(m.r)
	v, ok := m.st[k]
	return v, ok
}

// Len reads the replica's copy.
func (m *seqMap[K, V]) Len() int {
	m.s.lockRead(m.r)
	defer m.s.done(m.r)
	return len(m.st)
}

// Entries copies the replica's copy.
func (m *seqMap[K, V]) Entries() map[K]V {
	m.s.lockRead(m.r)
	defer m.s.done(m.r)
	return maps.Clone(map[K]V(m.st))
}

// Sync applies the whole log at this replica.
func (m *seqMap[K, V]) Sync() { m.s.sync(m.r) }

// lwwOp is an effector of the last-writer-wins map: a put or a delete
// (a tombstone entry) of k with its stamp.
type lwwOp[K comparable, V any] struct {
	k K
	e lwwEntry[V]
}

// lwwEntry is a key's winning write at a replica; a delete's entry is a
// tombstone.
type lwwEntry[V any] struct {
	v   V
	s   stamp
	del bool
}

// lwwMap is a weak replica's state.
type lwwMap[K comparable, V any] struct {
	m     map[K]lwwEntry[V]
	clock uint64 // Lamport clock: at least every time seen here
	size  int    // keys whose winning write is a put
}

func (m *lwwMap[K, V]) apply(op lwwOp[K, V]) {
	m.clock = max(m.clock, op.e.s.t)
	old, ok := m.m[op.k]
	if ok && !op.e.s.after(old.s) {
		return
	}
	if ok && !old.del {
		m.size--
	}
	if !op.e.del {
		m.size++
	}
	m.m[op.k] = op.e
}

// weakMap is one replica of the weak map.
type weakMap[K comparable, V any] struct {
	base
	g  *gossip[lwwOp[K, V]]
	r  *weakReplica[lwwOp[K, V]]
	st *lwwMap[K, V]
}

// Put writes k, stamped after everything seen here, at once here.
func (m *weakMap[K, V]) Put(k K, v V) { m.write(k, v, false) }

// Delete writes a tombstone for k, stamped after everything seen here, at
// once here.
func (m *weakMap[K, V]) Delete(k K) {
	var zero V
	m.write(k, zero, true)
}

func (m *weakMap[K, V]) write(k K, v V, del bool) {
	m.g.lock(m.r)
	m.st.clock++
	m.g.emit(m.r, lwwOp[K, V]{k: k, e: lwwEntry[V]{v: v, s: stamp{m.st.clock, m.replica}, del: del}})
	m.g.unlock(m.r)
}

// Get returns k's winning write here.
func (m *weakMap[K, V]) Get(k K) (V, bool) {
	m.g.lock(m.r)
	defer m.g.unlock(m.r)
	e, ok := m.st.m[k]
	if !ok || e.del {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Len counts the keys whose winning write here is a put.
func (m *weakMap[K, V]) Len() int {
	m.g.lock(m.r)
	defer m.g.unlock(m.r)
	return m.st.size
}

// Entries copies the keys whose winning write here is a put.
func (m *weakMap[K, V]) Entries() map[K]V {
	m.g.lock(m.r)
	defer m.g.unlock(m.r)
	out := make(map[K]V, m.st.size)
	for k, e := range m.st.m {
		if !e.del {
			out[k] = e.v
		}
	}
	return out
}

// Sync pulls every other replica's effectors.
func (m *weakMap[K, V]) Sync() { m.g.sync(m.r) }
