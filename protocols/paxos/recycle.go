package paxos

import (
	"sync"

	"github.com/blossom-dso/blossom/protocols"
)

// A replica's log pages and command chunks are its largest allocations. A
// simulator that runs many replicas one run after another calls Release on
// every replica of a run once the run is over, and the next replicas reuse
// the pages and chunks instead of allocating (and the runtime zeroing,
// faulting in and collecting) fresh ones. What is stocked is cleared first,
// so a reused page or chunk holds nothing of its past: no replica's
// behaviour depends on another's. A replica that is never released (every
// one outside a simulator) just leaves its memory to the collector.

// stockMax bounds the pages and the chunks kept in stock (about 3 MB and
// 5 MB), enough for the five replicas of a benchmark run of 20,000 commands
// without compaction.
const stockMax = 256

// stock is a bounded free list of cleared arrays, safe for concurrent use.
// Unlike a sync.Pool it is not emptied by garbage collections, which a run
// goes through many of between a release and the reuse.
type stock[T any] struct {
	mu   sync.Mutex
	free []*T
}

// get returns a zero T, from the stock if it has one.
func (s *stock[T]) get() *T {
	s.mu.Lock()
	n := len(s.free)
	if n == 0 {
		s.mu.Unlock()
		return new(T)
	}
	p := s.free[n-1]
	s.free[n-1] = nil
	s.free = s.free[:n-1]
	s.mu.Unlock()
	return p
}

// put stocks p, which must be zero and no longer used, unless the stock is
// full.
func (s *stock[T]) put(p *T) {
	s.mu.Lock()
	if len(s.free) < stockMax {
		s.free = append(s.free, p)
	}
	s.mu.Unlock()
}

var (
	pageStock  stock[[logPage]entry]
	chunkStock stock[[cmdChunk]protocols.Command]
)

// Release hands the replica's log pages and, if it never compacted, the
// chunks its command lists were cut from to replicas created later, and
// leaves the replica empty.
// The caller promises that neither the replica nor any command list it
// ever handed out — in a message, in another replica's log, in an
// Execute — is used again: a simulator calls it on every replica of a run
// at the run's end, when nothing of the run is read any more.
func (r *Replica) Release() {
	r.log.release()
	r.cmds.release()
}

// release stocks the log's pages, cleared, and empties the log.
func (l *slotLog) release() {
	for _, p := range l.pages {
		clear(p[:])
		pageStock.put(p)
	}
	*l = slotLog{}
}

// release stocks the arena's listed chunks, cleared, and empties the
// arena.
func (a *cmdArena) release() {
	for _, c := range a.chunks {
		clear(c[:])
		chunkStock.put(c)
	}
	*a = cmdArena{}
}
