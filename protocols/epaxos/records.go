package epaxos

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// Durable records. A replica persists the whole durable state of an
// instance (bal, abal, phase, value, deps, initial value and deps) every
// time it changes and before any message vouches for it; on restart it
// replays the records in order, the last one of an instance winning.
const recInstance byte = 1

// maxRecoveredInstances bounds what a (possibly corrupt) log may create.
const maxRecoveredInstances = 1 << 24

func instanceRecord(in *instance) []byte {
	b := appendDot([]byte{recInstance}, in.dot)
	b = wire.AppendBallot(b, in.bal)
	b = wire.AppendBallot(b, in.abal)
	b = append(b, byte(in.phase))
	b = appendValue(b, in.val)
	b = appendDots(b, in.deps)
	b = appendValue(b, in.init)
	return appendDots(b, in.initDeps)
}

// recover rebuilds instances from the records.
func (r *Replica) recover(recs [][]byte) error {
	for i, rec := range recs {
		if len(rec) == 0 {
			return fmt.Errorf("epaxos: record %d: empty", i)
		}
		if rec[0] != recInstance {
			return fmt.Errorf("epaxos: record %d: unknown type %d", i, rec[0])
		}
		rd := wire.NewReader(rec[1:])
		bad := false
		d := readDot(rd)
		bal, abal := rd.Ballot(), rd.Ballot()
		ph := readPhase(rd, &bad)
		val := readValue(rd, &bad)
		deps := readDots(rd)
		init := readValue(rd, &bad)
		initDeps := readDots(rd)
		if err := rd.Done(); err != nil {
			return fmt.Errorf("epaxos: record %d: %w", i, err)
		}
		if bad || d.Node == 0 || d.Seq == 0 || bal.Less(abal) {
			return fmt.Errorf("epaxos: record %d: %w: inconsistent instance", i, wire.ErrMalformed)
		}
		if _, ok := r.inst[d]; !ok && len(r.inst) >= maxRecoveredInstances {
			return fmt.Errorf("epaxos: record %d: too many instances", i)
		}
		in := r.get(d)
		in.bal, in.abal, in.phase = ballot.Max(in.bal, bal), abal, ph
		in.val, in.deps, in.init, in.initDeps = val, deps, init, initDeps
		if d.Node == r.self && d.Seq > r.seq {
			r.seq = d.Seq
		}
	}
	return nil
}
