package degradable

import (
	"sync"
	"sync/atomic"
)

// gossip is the machinery of the weak level for the types whose per-writer
// state is a log of effectors: every replica applies its client's updates
// to its own state at once and appends their effectors to its own log (its
// outbox); every PullEvery operations, and on Sync, it applies the new
// effectors of every other replica's log, in that log's order. Effectors of
// different writers commute, so replicas that applied the same effectors
// are equal whatever the interleaving.
//
// A writer whose log holds too many chunks pushes its oldest chunk to the
// replicas that have not pulled it, then drops it. Locks: one replica at a
// time.
type gossip[O any] struct {
	replicas []*weakReplica[O]
	cfg      config
}

// weakReplica is one replica of a weak object.
type weakReplica[O any] struct {
	id   int
	mu   sync.Mutex      // guards m, the appends to out, and the writes of seen
	m    machine[O]      // the replica's state
	out  *opLog[O]       // the effectors of this replica's client
	seen []atomic.Uint64 // seen[w]: entries of replica w's log applied to m
	ops  int             // operations since the last pull
	_    pad
}

func newGossip[O any](cfg config, states []machine[O]) *gossip[O] {
	g := &gossip[O]{cfg: cfg}
	for i, m := range states {
		g.replicas = append(g.replicas, &weakReplica[O]{
			id: i, m: m, out: newOpLog[O](), seen: make([]atomic.Uint64, len(states)),
		})
	}
	return g
}

// lock locks r for one operation of its client, pulling first when a pull
// is due.
func (g *gossip[O]) lock(r *weakReplica[O]) {
	r.mu.Lock()
	r.ops++
	if r.ops >= g.cfg.pullEvery {
		g.pull(r)
	}
}

// emit applies the effector op at r, which is locked, and publishes it.
func (g *gossip[O]) emit(r *weakReplica[O], op O) {
	r.m.apply(op)
	r.out.append(op)
}

// unlock releases r, then trims r's log if it has grown too long.
func (g *gossip[O]) unlock(r *weakReplica[O]) {
	r.mu.Unlock()
	g.trim(r)
}

// sync pulls everything published so far into r.
func (g *gossip[O]) sync(r *weakReplica[O]) {
	r.mu.Lock()
	g.pull(r)
	r.mu.Unlock()
}

// skip reports whether the merge leaves out writer w: only under the
// planted bugLosingMerge, which loses the last replica's updates.
func (g *gossip[O]) skip(w int) bool {
	return g.cfg.bug == bugLosingMerge && w == len(g.replicas)-1
}

// pull applies at r, which is locked, every effector published by the other
// replicas that r has not applied.
func (g *gossip[O]) pull(r *weakReplica[O]) {
	r.ops = 0
	for _, w := range g.replicas {
		if w != r && !g.skip(w.id) {
			g.pullFrom(r, w, w.out.Len())
		}
	}
}

// pullFrom applies at r, which is locked, the effectors of w's log up to
// index to.
func (g *gossip[O]) pullFrom(r, w *weakReplica[O], to uint64) {
	from := r.seen[w.id].Load()
	if from >= to {
		return
	}
	v := w.out.reader()
	for i := from; i < to; i++ {
		r.m.apply(*v.at(i))
	}
	r.seen[w.id].Store(to)
}

// trim drops the oldest chunk of w's log once it holds too many, after
// pushing it to every replica that has not applied it. Only w's client
// calls it, with no lock held.
func (g *gossip[O]) trim(w *weakReplica[O]) {
	upTo, ok := w.out.full()
	if !ok {
		return
	}
	for _, r := range g.replicas {
		if r == w || r.seen[w.id].Load() >= upTo || g.skip(w.id) {
			continue
		}
		r.mu.Lock()
		g.pullFrom(r, w, upTo)
		r.mu.Unlock()
	}
	w.mu.Lock()
	w.out.drop(upTo)
	w.mu.Unlock()
}
