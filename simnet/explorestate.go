package simnet

import (
	"slices"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/statehash"
)

// StateScheduler is a Scheduler that also reads the states of an explored
// run: before the first step the simulator hands it a view of the run,
// valid for the run, whose Fingerprint hashes the current state.
type StateScheduler interface {
	Scheduler
	Attach(v StateView)
}

// StateView reads the state of an explored run between steps (in
// Scheduler.Next).
type StateView struct{ s *sim }

// StatePart names a part of an explored run's state (StateView.Fingerprint).
type StatePart uint8

// The parts of a state.
const (
	// PartReplicas: every live replica's protocol (protocols.Fingerprinter),
	// its core (client sessions, held outputs, log positions), its state
	// machine and its random source.
	PartReplicas StatePart = 1 << iota
	// PartDisks: every replica's durable checkpoint and records, whether
	// it is up or stopped, its incarnation; left out once every replica
	// is up and the crash budget is spent, as no restart can read a disk
	// again.
	PartDisks
	// PartNetwork: the messages, submits and replies in flight, as a
	// multiset of (kind, sender, receiver, contents).
	PartNetwork
	// PartClients: the clients (sequence numbers, waiting, answered), the
	// history so far with its clock, the workload's random sources and
	// next value.
	PartClients
	// PartBudget: the ticks each replica took and the drops, duplicates
	// and crashes spent.
	PartBudget
	// PartExecs: the executions of every replica incarnation, which the
	// step invariants and the end-of-run checks read.
	PartExecs
)

// Fingerprint returns a hash of the run's current state minus the parts
// in omit (0: the whole state; tests omit parts to show that the search
// needs them), and ok false if the state cannot be hashed: a replica's
// protocol is not a protocols.Fingerprinter, or the run is a multicast
// run. Two states with equal fingerprints have the same futures: the same
// enabled choices up to the numbering of messages on their channels, and
// after the same choices the same checks' outcomes.
func (v StateView) Fingerprint(omit StatePart) (uint64, bool) {
	s := v.s
	if s.mc != nil {
		return 0, false
	}
	h := statehash.New()
	part := func(p StatePart) bool {
		h.Uint64(uint64(p))
		return omit&p == 0
	}
	if part(PartReplicas) {
		for _, nd := range s.nodes {
			if !nd.up {
				h.Uint64(0)
				continue
			}
			fp, ok := nd.core.Protocol().(protocols.Fingerprinter)
			if !ok {
				return 0, false
			}
			h.Uint64(fp.Fingerprint())
			h.AddFields(nd.core, "proto", "sm", "compact", "stats")
			h.Add(&nd.kv)
			h.Add(nd.rand)
		}
	}
	if part(PartDisks) && s.diskMatters() {
		for _, nd := range s.nodes {
			h.Add(nd.up)
			h.Add(nd.stopped)
			h.Uint64(uint64(nd.inc))
			h.Add(nd.snap)
			h.Add(nd.log)
			h.Uint64(nd.durable)
			h.Add(nd.pending)
			h.Add(nd.snapExecs)
		}
	}
	if part(PartNetwork) {
		x := s.x
		inflight := make([]uint64, 0, len(x.pool))
		for _, p := range x.pool {
			e := statehash.New()
			e.Uint64(uint64(p.ch.Kind))
			e.Uint64(uint64(p.ev.node))
			e.Uint64(uint64(p.ev.peer))
			switch p.ch.Kind {
			case ChoiceDeliver:
				e.Add(s.msgs.m[p.ev.a])
			case ChoiceSubmit:
				e.Add(s.cmds.m[p.ev.a])
			case ChoiceReply:
				e.Uint64(p.ev.a)
				e.Uint64(p.ev.b)
			}
			inflight = append(inflight, e.Sum())
		}
		slices.Sort(inflight)
		h.Add(inflight)
	}
	if part(PartClients) {
		h.Add(s.clients)
		h.Add(s.history)
		h.Uint64(uint64(s.now))
		h.Uint64(s.nextValue)
		h.Add(s.workRand)
		h.Add(s.netRand)
		h.Add(s.phaseRand)
		h.Add(s.extraKeys)
	}
	if part(PartBudget) {
		h.Add(s.x.ticks)
		h.Uint64(uint64(s.x.drops))
		h.Uint64(uint64(s.x.dups))
		h.Uint64(uint64(s.x.crashes))
	}
	if part(PartExecs) {
		for _, nd := range s.nodes {
			h.Add(nd.execs)
		}
	}
	return h.Sum(), true
}

// Key names choice c, enabled at the current step, by what it does rather
// than by its label: its kind, replica and sender or client, and the
// contents of its message, submit or reply, not the message's number on
// its channel (which two schedules reaching one state may number
// differently). Two copies of one message in flight on one channel have
// one key; delivering either leads to the same state.
func (v StateView) Key(c Choice) uint64 {
	s := v.s
	h := statehash.New()
	h.Uint64(uint64(c.Kind))
	h.Uint64(uint64(c.Node))
	h.Uint64(uint64(c.From))
	switch c.Kind {
	case ChoiceDeliver, ChoiceDrop, ChoiceDup, ChoiceSubmit, ChoiceReply:
		for _, p := range s.x.pool {
			if p.ch.Node != c.Node || p.ch.From != c.From || p.ch.N != c.N {
				continue
			}
			switch {
			case p.ch.Kind == ChoiceDeliver && (c.Kind == ChoiceDeliver || c.Kind == ChoiceDrop || c.Kind == ChoiceDup):
				h.Add(s.msgs.m[p.ev.a])
			case p.ch.Kind == ChoiceSubmit && c.Kind == ChoiceSubmit:
				h.Add(s.cmds.m[p.ev.a])
			case p.ch.Kind == ChoiceReply && c.Kind == ChoiceReply:
				h.Uint64(p.ev.a)
				h.Uint64(p.ev.b)
			default:
				continue
			}
			return h.Sum()
		}
	}
	return h.Sum()
}

// diskMatters reports whether a replica is down or the crash budget is not
// spent: whether a restart may still read a disk.
func (s *sim) diskMatters() bool {
	if s.x.crashes < s.x.budget.Crashes {
		return true
	}
	for _, nd := range s.nodes {
		if !nd.up {
			return true
		}
	}
	return false
}
