package paxos

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// Durable records. A replica persists its promise and every value it
// accepts before it answers for them; on restart it replays the records in
// order, after its checkpoint if it has one (recCheckpoint, see
// checkpoint.go). Without a checkpoint the learner state (what is chosen,
// what was executed) is volatile and relearned from the leader.
const (
	recPromise byte = iota + 1
	recAccept
	recCheckpoint
)

func promiseRecord(b ballot.Ballot) []byte {
	return wire.AppendBallot([]byte{recPromise}, b)
}

func acceptRecord(slot uint64, b ballot.Ballot, cmds []protocols.Command) []byte {
	rec := make([]byte, 1, 1+wire.UvarintLen(slot)+wire.BallotLen(b)+wire.CommandsLen(cmds))
	rec[0] = recAccept
	rec = wire.AppendUvarint(rec, slot)
	rec = wire.AppendBallot(rec, b)
	return wire.AppendCommands(rec, cmds)
}

// recover rebuilds the acceptor state from the checkpoint ck (nil if none)
// and the records persisted after it.
func (r *Replica) recover(ck []byte, recs [][]byte) error {
	if ck != nil {
		if err := r.restore(ck); err != nil {
			return err
		}
	}
	for i, rec := range recs {
		if len(rec) == 0 {
			return fmt.Errorf("paxos: record %d: empty", i)
		}
		rd := wire.NewReader(rec[1:])
		switch rec[0] {
		case recPromise:
			r.promised = ballot.Max(r.promised, rd.Ballot())
		case recAccept:
			slot, b, cmds := rd.Uvarint(), rd.Ballot(), rd.Commands()
			if rd.Err() == nil && (slot == 0 || slot > max(r.lastSlot(), r.executed)+maxAhead) {
				return fmt.Errorf("paxos: record %d: slot %d out of range", i, slot)
			}
			if rd.Err() == nil {
				// A vote for a compacted slot is durable in the record;
				// in memory the compaction point stands for it.
				if slot > r.base {
					e := r.entry(slot)
					if !e.chosen {
						e.cmds = cmds
					}
					e.bal = b
				}
				r.promised = ballot.Max(r.promised, b)
			}
		default:
			return fmt.Errorf("paxos: record %d: unknown type %d", i, rec[0])
		}
		if err := rd.Done(); err != nil {
			return fmt.Errorf("paxos: record %d: %w", i, err)
		}
	}
	r.ballot = r.promised
	return nil
}
