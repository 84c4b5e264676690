package mencius

import (
	"fmt"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// DefaultRetain is the number of executed slots a checkpoint keeps (the
// retention window), from which lagging peers are served by catch-up.
const DefaultRetain = 1024

// maxSlot bounds the slot numbers a checkpoint may name, so that slot
// arithmetic cannot overflow.
const maxSlot = 1 << 62

// recCheckpoint is the type byte of the checkpoint record, after the
// durable records' types.
const recCheckpoint byte = 4

// Checkpoint implements protocols.Compactor. It first compacts the
// replica's memory — the executed slots below the retention window leave
// the log, the executed command ids outside the window are forgotten, and
// so are the submitted commands already executed — and then returns the
// checkpoint record of what is left (the format is in the package doc).
// The record replaces every record persisted before it.
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
		r.submitted = slices.DeleteFunc(r.submitted, func(w waiting) bool { return r.done[w.cmd.ID] })
	}
	if r.executed <= r.retain {
		return
	}
	if base := r.executed - r.retain; base > r.base {
		r.truncate(base)
		r.rebuildDone()
		// Own slots up to base are decided: proposing or skipping
		// starts above it.
		r.nextOwn = max(r.nextOwn, r.ownAtOrAbove(base+1))
	}
}

// truncate moves the compaction point up to base (at most executed),
// dropping the log entries at or below it, and the own proposals there,
// which are decided.
func (r *Replica) truncate(base uint64) {
	k := min(base-r.base, uint64(len(r.log)))
	clear(r.log[:k])
	r.log = r.log[k:]
	if len(r.log) == 0 {
		r.log = nil
	}
	r.base = base
	for s := range r.inflight {
		if s <= base {
			delete(r.inflight, s)
		}
	}
}

// rebuildDone sets done to the ids of the commands in the retained
// executed slots.
func (r *Replica) rebuildDone() {
	r.done = map[protocols.CommandID]bool{}
	for s := r.base + 1; s <= r.executed; s++ {
		if e := r.at(s); e != nil {
			for _, c := range e.cmds {
				r.done[c.ID] = true
			}
		}
	}
}

// keep reports whether a checkpoint records e: a slot known chosen, or one
// with a promise or a vote.
func keep(e *entry) bool {
	return e.chosen || !e.prom.IsZero() || !e.bal.IsZero()
}

// appendCheckpoint encodes the checkpoint record.
func (r *Replica) appendCheckpoint(b []byte) []byte {
	b = append(b, recCheckpoint)
	b = wire.AppendUvarint(b, r.base)
	b = wire.AppendUvarint(b, r.executed)
	b = wire.AppendUvarint(b, r.nextOwn)
	n, size := 0, 0
	for i := range r.log {
		e := &r.log[i]
		if !keep(e) {
			continue
		}
		n++
		if slot := r.base + uint64(i) + 1; slot <= r.executed {
			if e.enc == nil {
				e.enc = appendEntry(nil, slot, e)
			}
			size += len(e.enc)
		} else {
			size += 40 + 32*len(e.cmds)
		}
	}
	b = slices.Grow(b, size+16)
	b = wire.AppendUvarint(b, uint64(n))
	for i := range r.log {
		e := &r.log[i]
		switch slot := r.base + uint64(i) + 1; {
		case !keep(e):
		case slot <= r.executed:
			// An executed slot no longer changes: its encoding is kept.
			b = append(b, e.enc...)
		default:
			b = appendEntry(b, slot, e)
		}
	}
	return b
}

func appendEntry(b []byte, slot uint64, e *entry) []byte {
	b = wire.AppendUvarint(b, slot)
	b = wire.AppendBallot(b, e.prom)
	b = wire.AppendBallot(b, e.bal)
	b = wire.AppendBool(b, e.chosen)
	return wire.AppendCommands(b, e.cmds)
}

// restore loads a checkpoint record into a fresh replica, before the
// records persisted after it are replayed. A malformed record is an error.
func (r *Replica) restore(ck []byte) error {
	if len(ck) == 0 || ck[0] != recCheckpoint {
		return fmt.Errorf("mencius: checkpoint: not a checkpoint record")
	}
	rd := wire.NewReader(ck[1:])
	base, executed, nextOwn := rd.Uvarint(), rd.Uvarint(), rd.Uvarint()
	if rd.Err() == nil && (base > executed || executed > maxSlot || nextOwn > maxSlot) {
		return fmt.Errorf("mencius: checkpoint: base %d, executed %d, next own slot %d", base, executed, nextOwn)
	}
	r.base, r.executed, r.horizon = base, executed, executed
	if rd.Err() == nil && nextOwn != r.ownAtOrAbove(nextOwn) {
		return fmt.Errorf("mencius: checkpoint: next own slot %d is not own", nextOwn)
	}
	r.nextOwn = max(r.nextOwn, nextOwn, r.ownAtOrAbove(executed+1))
	n := rd.Count(6)
	prev := base
	for range n {
		slot, prom, bal, chosen, cmds := rd.Uvarint(), rd.Ballot(), rd.Ballot(), rd.Bool(), rd.Commands()
		if rd.Err() != nil {
			break
		}
		switch {
		case slot <= prev:
			return fmt.Errorf("mencius: checkpoint: slot %d after %d", slot, prev)
		case slot > executed+maxAhead:
			return fmt.Errorf("mencius: checkpoint: slot %d beyond executed %d", slot, executed)
		case slot <= executed && (!chosen || slot != prev+1):
			return fmt.Errorf("mencius: checkpoint: executed slot %d missing or not chosen", slot)
		case !chosen && prom.IsZero() && bal.IsZero():
			return fmt.Errorf("mencius: checkpoint: empty slot %d", slot)
		case !bal.IsZero() && (!r.validBallot(slot, bal) || prom.Less(bal)):
			return fmt.Errorf("mencius: checkpoint: slot %d: vote at %v, promise %v", slot, bal, prom)
		case !prom.IsZero() && !r.validBallot(slot, prom):
			return fmt.Errorf("mencius: checkpoint: slot %d: promise %v", slot, prom)
		}
		prev = slot
		e := r.entry(slot)
		e.prom, e.bal, e.chosen, e.cmds = prom, bal, chosen, cmds
		r.raise(prom)
		r.horizon = max(r.horizon, slot)
		if bal == ownBallot(r.self) && !chosen {
			// The own proposal is sent again (retransmit).
			r.inflight[slot] = cmds
		}
	}
	if err := rd.Done(); err != nil {
		return fmt.Errorf("mencius: checkpoint: %w", err)
	}
	if prev < executed {
		return fmt.Errorf("mencius: checkpoint: executed slots %d..%d missing", prev+1, executed)
	}
	r.rebuildDone()
	return nil
}
