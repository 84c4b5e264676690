package atlas

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols/wire"
)

// Durable records. A replica persists the whole durable state of an
// instance (one recState record) before it sends any message that vouches
// for it: MCollect (coordinator), MCollectAck, MConsensusAck, MRecAck, and
// before it announces or executes a commit. On restart the records are
// replayed in order, the last one of a dot winning; commits are handed to
// the dependency graph in the order their records were written, which is
// the order garbage collection relies on (see the package doc).
const recState byte = 1

func stateRecord(in *instance) []byte {
	b := appendDot([]byte{recState}, in.dot)
	b = append(b, byte(in.phase))
	b = wire.AppendBool(b, in.hasCmd)
	b = wire.AppendCommand(b, in.cmd)
	b = wire.AppendBool(b, in.collected)
	b = appendDots(b, in.cdeps)
	b = appendNodes(b, in.quorum)
	b = wire.AppendBallot(b, in.bal)
	b = wire.AppendBallot(b, in.abal)
	b = wire.AppendBool(b, in.anop)
	b = appendDots(b, in.adeps)
	return wire.AppendBool(b, in.amnesiac)
}

// replay rebuilds the durable instance state from the records. It neither
// sends nor executes: commits are queued in r.replayed and handed to the
// graph on the first call after New.
func (r *Replica) replay(recs [][]byte) error {
	for i, rec := range recs {
		if len(rec) == 0 {
			return fmt.Errorf("atlas: record %d: empty", i)
		}
		if rec[0] != recState {
			return fmt.Errorf("atlas: record %d: unknown type %d", i, rec[0])
		}
		rd := wire.NewReader(rec[1:])
		var s instance
		s.dot = readDot(rd)
		s.phase = phase(rd.Byte())
		s.hasCmd = rd.Bool()
		s.cmd = rd.Command()
		s.collected = rd.Bool()
		s.cdeps = readDots(rd)
		s.quorum = readNodes(rd)
		s.bal = rd.Ballot()
		s.abal = rd.Ballot()
		s.anop = rd.Bool()
		s.adeps = readDots(rd)
		s.amnesiac = rd.Bool()
		if err := rd.Done(); err != nil {
			return fmt.Errorf("atlas: record %d: %w", i, err)
		}
		if !r.validDot(s.dot) || s.phase > phCommit {
			return fmt.Errorf("atlas: record %d: bad dot %v or phase %d", i, s.dot, s.phase)
		}
		in := r.get(s.dot)
		if in.phase == phCommit {
			continue // committed is final
		}
		*in = s
		if in.phase == phCommit {
			r.replayed = append(r.replayed, in.dot)
		}
		if in.dot.Node == r.self {
			r.seq = max(r.seq, in.dot.Seq)
		}
	}
	// Volatile state derived from the durable one.
	for _, d := range sortedDots(r.inst) {
		in := r.inst[d]
		if in.collected && in.hasCmd {
			r.register(in)
		}
		if in.phase == phCommit {
			continue
		}
		r.pending[d] = struct{}{}
		in.deadline = r.timeout(in)
	}
	return nil
}
