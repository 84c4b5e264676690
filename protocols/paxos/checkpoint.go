package paxos

import (
	"fmt"
	"slices"

	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// maxSlot bounds the slot numbers a checkpoint may name, so that slot
// arithmetic cannot overflow.
const maxSlot = 1 << 62

// Checkpoint implements protocols.Compactor. It first compacts the
// replica's memory — the executed slots below the retention window leave
// the log, the executed command ids outside the window are forgotten, and
// so are the submitted and proposed commands already executed — and then
// returns the checkpoint record of what is left (the format is in the
// package doc). The record replaces every record persisted before it.
func (r *Replica) Checkpoint() []byte {
	r.compact()
	return r.appendCheckpoint(nil)
}

// compact drops what a checkpoint does not keep. The executed ids of the
// commands in the retained executed slots stay in done, so the replica
// keeps executing each of those at most once; an id forgotten here that
// reaches Execute again is discarded by the runtime's client sessions.
func (r *Replica) compact() {
	if len(r.submitted) > 0 {
		r.submitted = slices.DeleteFunc(r.submitted, func(w waiting) bool { return r.done.Has(w.cmd.ID) })
	}
	for id := range r.proposed {
		if r.done.Has(id) {
			delete(r.proposed, id)
		}
	}
	if r.executed <= r.retain {
		return
	}
	base := r.executed - r.retain
	if r.role == leader {
		// A leader counts acknowledgements and its commit point only on
		// slots in its log: a slot it re-proposed after its election
		// and executed before seeing it chosen (it learned it by
		// catch-up as a candidate) stays until its commit point passes
		// it, or the commit point could never move again.
		base = min(base, r.commit)
	}
	if base > r.base {
		r.truncate(base)
		r.rebuildDone()
	}
}

// truncate moves the compaction point up to base (at most executed),
// dropping the log entries at or below it.
func (r *Replica) truncate(base uint64) {
	r.log.dropFront(int(min(base-r.base, uint64(r.log.len()))))
	r.cmds.chunks, r.cmds.untracked = nil, true
	r.base = base
	for slot := range r.encs {
		if slot <= base {
			delete(r.encs, slot)
		}
	}
}

// rebuildDone sets done to the ids of the commands in the retained
// executed slots.
func (r *Replica) rebuildDone() {
	r.done.Reset()
	for s := r.base + 1; s <= r.executed; s++ {
		for _, c := range r.at(s).cmds {
			r.done.Add(c.ID)
		}
	}
}

// appendCheckpoint encodes the checkpoint record.
func (r *Replica) appendCheckpoint(b []byte) []byte {
	b = append(b, recCheckpoint)
	b = wire.AppendBallot(b, r.promised)
	b = wire.AppendUvarint(b, r.base)
	b = wire.AppendUvarint(b, r.executed)
	n, size := 0, 0
	for i := range r.log.len() {
		e := r.log.at(i)
		if !e.chosen && e.bal.IsZero() {
			continue
		}
		n++
		if slot := r.base + uint64(i) + 1; slot <= r.executed {
			c, ok := r.encs[slot]
			if !ok || c.bal != e.bal {
				if r.encs == nil {
					r.encs = map[uint64]encoded{}
				}
				c = encoded{bal: e.bal, enc: appendEntry(nil, slot, e)}
				r.encs[slot] = c
			}
			size += len(c.enc)
		} else {
			size += 32 + 32*len(e.cmds)
		}
	}
	b = slices.Grow(b, size+32)
	b = wire.AppendUvarint(b, uint64(n))
	for i := range r.log.len() {
		e := r.log.at(i)
		switch slot := r.base + uint64(i) + 1; {
		case !e.chosen && e.bal.IsZero():
		case slot <= r.executed:
			b = append(b, r.encs[slot].enc...)
		default:
			b = appendEntry(b, slot, e)
		}
	}
	return b
}

func appendEntry(b []byte, slot uint64, e *entry) []byte {
	b = wire.AppendUvarint(b, slot)
	b = wire.AppendBallot(b, e.bal)
	b = wire.AppendBool(b, e.chosen)
	return wire.AppendCommands(b, e.cmds)
}

// restore loads a checkpoint record into a fresh replica. A malformed
// record is an error.
func (r *Replica) restore(ck []byte) error {
	if len(ck) == 0 || ck[0] != recCheckpoint {
		return fmt.Errorf("paxos: checkpoint: not a checkpoint record")
	}
	rd := wire.NewReader(ck[1:])
	promised := rd.Ballot()
	base, executed := rd.Uvarint(), rd.Uvarint()
	if rd.Err() == nil && (base > executed || executed > maxSlot) {
		return fmt.Errorf("paxos: checkpoint: base %d, executed %d", base, executed)
	}
	// The retention window of this incarnation applies at once; the
	// compaction point never moves down.
	keepFrom := base
	if executed > r.retain {
		keepFrom = max(base, executed-r.retain)
	}
	r.base, r.executed = keepFrom, executed
	n := rd.Count(4)
	prev := base
	for range n {
		slot, bal, chosen, cmds := rd.Uvarint(), rd.Ballot(), rd.Bool(), rd.Commands()
		if rd.Err() != nil {
			break
		}
		switch {
		case slot <= prev:
			return fmt.Errorf("paxos: checkpoint: slot %d after %d", slot, prev)
		case slot > executed+1+maxAhead:
			return fmt.Errorf("paxos: checkpoint: slot %d beyond executed %d", slot, executed)
		case slot <= executed && (!chosen || slot != prev+1):
			return fmt.Errorf("paxos: checkpoint: executed slot %d missing or not chosen", slot)
		case !chosen && bal.IsZero():
			return fmt.Errorf("paxos: checkpoint: empty slot %d", slot)
		}
		prev = slot
		if slot > keepFrom {
			e := r.entry(slot)
			e.bal, e.chosen, e.cmds = bal, chosen, cmds
		}
		r.promised = ballot.Max(r.promised, bal)
	}
	if err := rd.Done(); err != nil {
		return fmt.Errorf("paxos: checkpoint: %w", err)
	}
	if prev < executed {
		return fmt.Errorf("paxos: checkpoint: executed slots %d..%d missing", prev+1, executed)
	}
	r.promised = ballot.Max(r.promised, promised)
	r.rebuildDone()
	return nil
}
