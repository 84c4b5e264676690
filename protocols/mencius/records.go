package mencius

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// Durable records. A replica persists each vote (recAccept), each promise
// to a revoker (recPromise, for a range of one owner's slots) and each skip
// of its own slots (recSkip) before any message that depends on it leaves.
// A restart replays them in order; what is chosen and what was executed is
// relearned from the peers, except the own skips, which are decisions.
const (
	recAccept byte = iota + 1
	recPromise
	recSkip
	// recMark (type 5, after recCheckpoint) raises the horizon (see
	// Replica.persist).
	recMark byte = 5
)

func acceptRecord(slot uint64, b ballot.Ballot, cmds []protocols.Command) []byte {
	rec := wire.AppendUvarint([]byte{recAccept}, slot)
	rec = wire.AppendBallot(rec, b)
	return wire.AppendCommands(rec, cmds)
}

func promiseRecord(owner protocols.NodeID, from, to uint64, b ballot.Ballot) []byte {
	rec := wire.AppendUvarint([]byte{recPromise}, uint64(owner))
	rec = wire.AppendUvarint(rec, from)
	rec = wire.AppendUvarint(rec, to)
	return wire.AppendBallot(rec, b)
}

func skipRecord(from, to uint64) []byte {
	return wire.AppendUvarint(wire.AppendUvarint([]byte{recSkip}, from), to)
}

func markRecord(horizon uint64) []byte {
	return wire.AppendUvarint([]byte{recMark}, horizon)
}

// recover replays the records persisted before a crash.
func (r *Replica) recover(recs [][]byte) error {
	r.recovering = true
	defer func() { r.recovering = false }()
	for i, rec := range recs {
		if len(rec) == 0 {
			return fmt.Errorf("mencius: record %d: empty", i)
		}
		rd := wire.NewReader(rec[1:])
		switch rec[0] {
		case recAccept:
			slot, b, cmds := rd.Uvarint(), rd.Ballot(), rd.Commands()
			if rd.Err() != nil {
				break
			}
			if !r.inRange(slot) || !r.validBallot(slot, b) {
				return fmt.Errorf("mencius: record %d: vote for slot %d at %v out of range", i, slot, b)
			}
			e := r.entry(slot)
			if !e.chosen {
				e.cmds = cmds
			}
			e.bal, e.prom = b, ballot.Max(e.prom, b)
			r.raise(b)
			r.horizon = max(r.horizon, slot)
			if b == ownBallot(r.self) {
				// The own proposal is sent again (retransmit): the
				// others may never have seen it.
				r.nextOwn = max(r.nextOwn, slot+r.n)
				r.inflight[slot] = cmds
			}
		case recPromise:
			owner, from, to, b := rd.NodeID(), rd.Uvarint(), rd.Uvarint(), rd.Ballot()
			if rd.Err() != nil {
				break
			}
			if r.cfg.Index(owner) < 0 || from > to || !r.inRange(from) || !r.inRange(to) || to-from > maxRevoke*r.n {
				return fmt.Errorf("mencius: record %d: promise for slots %d-%d of %d out of range", i, from, to, owner)
			}
			for s := r.ownerSlot(owner, from); s <= to; s += r.n {
				e := r.entry(s)
				e.prom = ballot.Max(e.prom, b)
			}
			r.raise(b)
			r.horizon = max(r.horizon, to)
		case recSkip:
			from, to := rd.Uvarint(), rd.Uvarint()
			if rd.Err() != nil {
				break
			}
			// The own slots skipped end at to−n (from and to are own
			// slots), within range of the horizon; applySkip ignores
			// ranges too long to apply, as it did when the skip was made.
			if from >= to || from != r.ownAtOrAbove(from) || to != r.ownAtOrAbove(to) || !r.inRange(to-r.n) {
				return fmt.Errorf("mencius: record %d: skip %d-%d out of range", i, from, to)
			}
			r.applySkip(r.self, from, to)
			r.nextOwn = max(r.nextOwn, r.ownAtOrAbove(to))
			r.horizon = max(r.horizon, to-r.n)
		case recMark:
			h := rd.Uvarint()
			if rd.Err() != nil {
				break
			}
			if h > r.horizon+maxAhead {
				return fmt.Errorf("mencius: record %d: mark %d beyond the horizon %d", i, h, r.horizon)
			}
			r.horizon = max(r.horizon, h)
		default:
			return fmt.Errorf("mencius: record %d: unknown type %d", i, rec[0])
		}
		if err := rd.Done(); err != nil {
			return fmt.Errorf("mencius: record %d: %w", i, err)
		}
	}
	return nil
}
