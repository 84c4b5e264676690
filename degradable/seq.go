package degradable

import (
	"sync"
	"sync/atomic"
)

// machine is one replica's copy of an object's state: it applies operations
// (of the sequential specification at the sequential level, effectors at
// the weak level) one at a time.
type machine[O any] interface {
	apply(op O)
}

// sequencer is the machinery of the sequential level: one log, appended
// under one lock (the sequencer), that every replica applies in order into
// its own copy of the state, lazily: a replica catches up when its client
// needs it to, and when the log is about to drop entries it has not applied.
//
// Locks are taken in the order replica, then sequencer; the trimmer takes
// one replica at a time, and the sequencer alone afterwards.
type sequencer[O any] struct {
	mu       sync.Mutex // the sequencer: appends are totally ordered under it
	log      *opLog[O]
	replicas []*seqReplica[O]
	trimming atomic.Bool
	cfg      config
}

// seqReplica is one replica of a sequential object.
type seqReplica[O any] struct {
	mu     sync.Mutex    // guards m, and the writes of cursor
	m      machine[O]    // the replica's state
	cursor atomic.Uint64 // number of log entries applied to m
	own    uint64        // the client's last update is entry own-1 (client only)
	ops    int           // operations since the last pull (client only)
	_      pad
}

func newSequencer[O any](cfg config, states []machine[O]) *sequencer[O] {
	s := &sequencer[O]{log: newOpLog[O](), cfg: cfg}
	for _, m := range states {
		s.replicas = append(s.replicas, &seqReplica[O]{m: m})
	}
	return s
}

// append orders op after every update appended before it.
func (s *sequencer[O]) append(r *seqReplica[O], op O) {
	s.mu.Lock()
	i := s.log.append(op)
	s.mu.Unlock()
	r.own = i + 1
	r.ops++
}

// update appends op, an update whose result the client does not wait for.
func (s *sequencer[O]) update(r *seqReplica[O], op O) {
	s.append(r, op)
	s.trim()
}

// updateLocked appends op and applies the log at r up to and including it,
// for an update with a result: it returns with r.mu held, so that the
// caller reads the result from r's state before calling done.
func (s *sequencer[O]) updateLocked(r *seqReplica[O], op O) {
	r.mu.Lock()
	s.append(r, op)
	s.catchUp(r, r.own)
}

// lockRead locks r for a read: r applies the log up to its client's last
// update, and up to the end of the log if a pull is due. The caller reads r's
// state and calls done.
func (s *sequencer[O]) lockRead(r *seqReplica[O]) {
	r.mu.Lock()
	r.ops++
	target := r.own
	if s.cfg.bug == bugStaleRead {
		target = 0 // planted: serve the read without the client's own updates
	}
	if r.ops >= s.cfg.pullEvery {
		target, r.ops = s.log.Len(), 0
	}
	s.catchUp(r, target)
}

// done releases r after lockRead or updateLocked.
func (s *sequencer[O]) done(r *seqReplica[O]) {
	r.mu.Unlock()
	s.trim()
}

// sync applies the whole log at r.
func (s *sequencer[O]) sync(r *seqReplica[O]) {
	r.mu.Lock()
	s.catchUp(r, s.log.Len())
	r.ops = 0
	r.mu.Unlock()
}

// catchUp applies the entries up to target at r, which is locked; target
// must not exceed the log's Len.
func (s *sequencer[O]) catchUp(r *seqReplica[O], target uint64) {
	from := r.cursor.Load()
	if from >= target {
		return
	}
	v := s.log.reader()
	for i := from; i < target; i++ {
		r.m.apply(*v.at(i))
	}
	r.cursor.Store(target)
}

// trim drops the log's oldest chunk once it holds too many, after bringing
// every replica that has not applied that chunk up to its end. One caller
// trims at a time; the others go on.
func (s *sequencer[O]) trim() {
	upTo, ok := s.log.full()
	if !ok || !s.trimming.CompareAndSwap(false, true) {
		return
	}
	defer s.trimming.Store(false)
	for _, r := range s.replicas {
		if r.cursor.Load() < upTo {
			r.mu.Lock()
			s.catchUp(r, upTo)
			r.mu.Unlock()
		}
	}
	s.mu.Lock()
	s.log.drop(upTo)
	s.mu.Unlock()
}
