package paxos

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// Durable records. A replica persists its promise and every value it
// accepts before it answers for them; on restart it replays the records in
// order. The learner state (what is chosen, what was executed) is volatile
// and relearned from the leader.
const (
	recPromise byte = iota + 1
	recAccept
)

func promiseRecord(b ballot.Ballot) []byte {
	return wire.AppendBallot([]byte{recPromise}, b)
}

func acceptRecord(slot uint64, b ballot.Ballot, cmds []protocols.Command) []byte {
	rec := wire.AppendUvarint([]byte{recAccept}, slot)
	rec = wire.AppendBallot(rec, b)
	return wire.AppendCommands(rec, cmds)
}

// recover rebuilds the acceptor state from the records.
func (r *Replica) recover(recs [][]byte) error {
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
			if rd.Err() == nil && (slot == 0 || slot > uint64(len(r.log))+maxAhead) {
				return fmt.Errorf("paxos: record %d: slot %d out of range", i, slot)
			}
			if rd.Err() == nil {
				e := r.entry(slot)
				e.bal, e.cmds = b, cmds
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
