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
	a := acceptRec{slot: slot, b: b, cmds: cmds}
	return a.AppendTo(make([]byte, 0, a.Size()))
}

// acceptRec is the accept record of a vote, encoded only if the Env reads
// records back (protocols.PersistRecord).
type acceptRec struct {
	slot uint64
	b    ballot.Ballot
	cmds []protocols.Command
}

// Size implements protocols.Record.
func (a *acceptRec) Size() int {
	return 1 + wire.UvarintLen(a.slot) + wire.BallotLen(a.b) + wire.CommandsLen(a.cmds)
}

// AppendTo implements protocols.Record.
func (a *acceptRec) AppendTo(b []byte) []byte {
	b = append(b, recAccept)
	b = wire.AppendUvarint(b, a.slot)
	b = wire.AppendBallot(b, a.b)
	return wire.AppendCommands(b, a.cmds)
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
