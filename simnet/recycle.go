package simnet

import (
	"sync"

	"github.com/blossom-dso/blossom/protocols"
)

// A run's largest buffers that no Result refers to — the executions
// recorded per node incarnation and the scratch arrays of the result's
// checks — are recycled across runs, so that a run allocates (and the
// runtime zeroes, faults in and collects) less. A buffer belongs to one run
// from its get to its put; a run reads only what it wrote into it (a
// recycled buffer starts empty or cleared), so no run's outcome depends on
// an earlier one, and sync.Pool makes the handover safe between runs in
// parallel.

// releaser is a protocol that can hand its memory over to later replicas
// (see paxos.Replica.Release): recycle calls Release on the protocol of
// every node up at the end of a run, when nothing of the run is read any
// more.
type releaser interface{ Release() }

// protocol returns the protocol of nd's incarnation, nil if nd is down.
func (nd *node) protocol() protocols.Protocol {
	if nd.core == nil {
		return nil
	}
	return nd.core.Protocol()
}

// execPool holds *[]execRec arrays of finished runs.
var execPool sync.Pool

// newExecs returns an empty execution list with capacity at least n.
func newExecs(n int) []execRec {
	if p, _ := execPool.Get().(*[]execRec); p != nil && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]execRec, 0, n)
}

// recycle hands the run's recycled buffers back once its Result is built;
// s must not be used after. A run under a Scheduler keeps its buffers: a
// StateScheduler may still hold a view of s.
func (s *sim) recycle() {
	if s.x != nil {
		return
	}
	if s.checkBufs != nil {
		checkPool.Put(s.checkBufs)
		s.checkBufs = nil
	}
	for _, nd := range s.nodes {
		if r, ok := nd.protocol().(releaser); ok {
			r.Release()
		}
		for i, e := range nd.execs {
			if cap(e) > 0 {
				e = e[:0]
				execPool.Put(&e)
			}
			nd.execs[i] = nil
		}
	}
}

// checkBufs are the scratch arrays of result and checkOrder.
type checkBufs struct {
	lats                         []int64
	seenIn, firstV, oneKey, vKey []int32
	vCmd                         []protocols.CommandID
	g                            graph
}

// checkPool holds *checkBufs of finished checks.
var checkPool sync.Pool

// getCheckBufs returns scratch arrays for one run's checks, to be handed
// back with checkPool.Put once nothing refers to them. A run takes them as
// it starts, with its execution lists, rather than when it checks: a pool
// is emptied by two collections, and a run's many collections would leave
// little to reuse at its end.
func getCheckBufs() *checkBufs {
	if b, _ := checkPool.Get().(*checkBufs); b != nil {
		return b
	}
	return new(checkBufs)
}

// sized returns buf with length n, its n elements zero, and capacity at
// least c, reusing buf's array when it is large enough.
func sized[T any](buf []T, n, c int) []T {
	if cap(buf) < max(n, c) {
		return make([]T, n, max(n, c))
	}
	buf = buf[:n]
	clear(buf)
	return buf
}
