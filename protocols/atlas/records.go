package atlas

import (
	"fmt"
	"slices"

	"github.com/blossom-dso/blossom/protocols/wire"
)

// Durable records. A replica persists the whole durable state of an
// instance (one recState record) before it sends any message that vouches
// for it: MCollect (coordinator), MCollectAck, MConsensusAck, MRecAck, and
// before it announces or executes a commit. On restart the records are
// replayed in order, the last one of a dot winning; commits are handed to
// the dependency graph in the order their records were written, which is
// the order garbage collection relies on (see the package doc).
//
// A checkpoint (recCheckpoint, see Checkpoint and the package doc) replaces
// every record persisted before it; a restart loads it first and then
// replays the records persisted after it.
const (
	recState      byte = 1
	recCheckpoint byte = 2
)

// stateMinSize is the smallest encoding of an instance's state, so that a
// forged count cannot make a decoder allocate more than the input allows.
const stateMinSize = 19

func stateRecord(in *instance) []byte {
	return appendState([]byte{recState}, in)
}

// appendState appends the durable fields of in.
func appendState(b []byte, in *instance) []byte {
	b = appendDot(b, in.dot)
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

// readState reads what appendState wrote.
func readState(rd *wire.Reader) instance {
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
	return s
}

// decodeRecord decodes one durable state record.
func decodeRecord(rec []byte) (instance, error) {
	if len(rec) == 0 {
		return instance{}, fmt.Errorf("empty")
	}
	if rec[0] != recState {
		return instance{}, fmt.Errorf("unknown type %d", rec[0])
	}
	rd := wire.NewReader(rec[1:])
	s := readState(rd)
	if err := rd.Done(); err != nil {
		return instance{}, err
	}
	if s.phase > phCommit {
		return instance{}, fmt.Errorf("bad phase %d of %v", s.phase, s.dot)
	}
	return s, nil
}

// forgotten reports whether d's state was dropped because d passed
// execution here: d is stable (executed at every replica), or d is executed
// here and its instance is gone. Such a dot was committed; it is never
// treated as unknown (see the package doc).
func (r *Replica) forgotten(d Dot) bool {
	return r.gcd(d) || (r.inst[d] == nil && r.graph.IsExecuted(d))
}

// replay rebuilds the durable state from the checkpoint (nil: none) and
// the records persisted after it. It neither sends nor executes: commits
// are queued in r.replayed and handed to the graph on the first call after
// New, the checkpoint's first (in dot order), then the records' in record
// order.
func (r *Replica) replay(ckpt []byte, recs [][]byte) error {
	if ckpt != nil {
		if err := r.loadCheckpoint(ckpt); err != nil {
			return err
		}
	}
	for i, rec := range recs {
		s, err := decodeRecord(rec)
		if err != nil {
			return fmt.Errorf("atlas: record %d: %w", i, err)
		}
		if !r.validDot(s.dot) {
			return fmt.Errorf("atlas: record %d: bad dot %v", i, s.dot)
		}
		if r.forgotten(s.dot) {
			// Executed before the checkpoint: no record can follow
			// its commit, so this one is stale.
			continue
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

// Checkpoint implements protocols.Compactor. It returns one record that
// replaces every record persisted so far (the format is in the package
// doc): this replica's last sequence number, its executed set per
// coordinator, the garbage-collection state, and the durable state of every
// instance it keeps, that is, every persisted instance not yet stable. It
// also prunes what the checkpoint and the state machine cover: the executed
// command ids, the stable dots left in the conflict index, and the fields of
// executed instances that only an uncommitted instance needs. Checkpoint
// never executes or sends.
func (r *Replica) Checkpoint() []byte {
	r.gc()
	r.done.Reset()
	r.sweepIndex()
	b := make([]byte, 0, r.ckSize+r.ckSize/8)
	b = wire.AppendUvarint(append(b, recCheckpoint), r.seq)
	b = wire.AppendUvarint(b, uint64(r.n))
	for _, p := range r.cfg.Peers {
		b = wire.AppendUvarint(b, r.graph.ExecutedPrefix(p))
		b = appendU64s(b, r.graph.ExecutedAbove(p))
	}
	b = appendU64s(b, r.stable)
	for _, rep := range r.reported {
		b = appendU64s(b, rep)
	}
	var keep []*instance
	for _, d := range r.instDots() {
		in := r.inst[d]
		if in.phase < phCollect {
			continue // never persisted: a restart would not know it either
		}
		if in.phase == phCommit && r.graph.IsExecuted(d) {
			// Kept until stable, for the peers that may still ask and for
			// the conflict index; the rest served the commit only.
			in.cdeps, in.quorum, in.reports = nil, nil, nil
		}
		keep = append(keep, in)
	}
	b = wire.AppendUvarint(b, uint64(len(keep)))
	for _, in := range keep {
		b = appendState(b, in)
	}
	r.ckSize = len(b)
	return b
}

// instDots returns the dots of r.inst in dot order (sortedDots), without
// sorting where it can: the kept dots of a coordinator are mostly a dense
// run above its stable prefix, which is walked instead.
func (r *Replica) instDots() []Dot {
	type span struct {
		hi  uint64
		cnt int
	}
	spans := make([]span, r.n)
	for d := range r.inst {
		k := r.rank[d.Node]
		spans[k].hi = max(spans[k].hi, d.Seq)
		spans[k].cnt++
	}
	out := make([]Dot, 0, len(r.inst))
	for _, p := range r.byID {
		k := r.rank[p]
		sp := spans[k]
		if sp.cnt == 0 {
			continue
		}
		lo := r.stable[k]
		if sp.hi-lo > uint64(2*sp.cnt+64) {
			// Sparse: sort this coordinator's dots.
			i := len(out)
			for d := range r.inst {
				if d.Node == p {
					out = append(out, d)
				}
			}
			slices.SortFunc(out[i:], Dot.Compare)
			continue
		}
		i := len(out)
		for q := lo + 1; q <= sp.hi; q++ {
			if d := (Dot{Node: p, Seq: q}); r.inst[d] != nil {
				out = append(out, d)
			}
		}
		if len(out)-i != sp.cnt {
			// A dot at or below the stable prefix (never kept): sort.
			out = out[:i]
			for d := range r.inst {
				if d.Node == p {
					out = append(out, d)
				}
			}
			slices.SortFunc(out[i:], Dot.Compare)
		}
	}
	return out
}

// sweepIndex drops the stable dots from every key of the conflict index
// (conflicts drops them lazily, only from the keys it reads).
func (r *Replica) sweepIndex() {
	for k, lst := range r.index {
		j := 0
		for _, x := range lst {
			if !r.gcd(x) {
				lst[j] = x
				j++
			}
		}
		clear(lst[j:])
		if j == 0 {
			delete(r.index, k)
		} else {
			r.index[k] = lst[:j]
		}
	}
}

// loadCheckpoint restores what Checkpoint wrote; malformed or inconsistent
// input is an error.
func (r *Replica) loadCheckpoint(b []byte) error {
	if len(b) == 0 || b[0] != recCheckpoint {
		return fmt.Errorf("atlas: checkpoint: not a checkpoint record")
	}
	rd := wire.NewReader(b[1:])
	seq := rd.Uvarint()
	if n := rd.Uvarint(); rd.Err() == nil && n != uint64(r.n) {
		return fmt.Errorf("atlas: checkpoint: written for %d replicas, not %d", n, r.n)
	}
	upto := make([]uint64, r.n)
	above := make([][]uint64, r.n)
	for k := range r.n {
		upto[k] = rd.Uvarint()
		above[k] = readU64s(rd)
	}
	stable := readU64s(rd)
	reported := make([][]uint64, r.n)
	for p := range r.n {
		reported[p] = readU64s(rd)
	}
	cnt := rd.Count(stateMinSize)
	var insts []instance
	for range cnt {
		insts = append(insts, readState(rd))
		if rd.Err() != nil {
			break
		}
	}
	if err := rd.Done(); err != nil {
		return fmt.Errorf("atlas: checkpoint: %w", err)
	}
	if len(stable) != r.n {
		return fmt.Errorf("atlas: checkpoint: %d stable prefixes for %d replicas", len(stable), r.n)
	}
	for p := range r.n {
		if len(reported[p]) != r.n {
			return fmt.Errorf("atlas: checkpoint: %d reported prefixes for %d replicas", len(reported[p]), r.n)
		}
	}
	self := r.rank[r.self]
	for k := range r.n {
		if stable[k] > upto[k] || reported[self][k] > upto[k] {
			return fmt.Errorf("atlas: checkpoint: stable prefix %d or own report %d of %d above the executed prefix %d",
				stable[k], reported[self][k], r.cfg.Peers[k], upto[k])
		}
	}
	if upto[self] > seq || (len(above[self]) > 0 && slices.Max(above[self]) > seq) {
		return fmt.Errorf("atlas: checkpoint: own dots executed beyond the last sequence number %d", seq)
	}
	for k, p := range r.cfg.Peers {
		r.graph.MarkExecutedPrefix(p, upto[k])
		for _, q := range above[k] {
			r.graph.MarkExecuted(Dot{Node: p, Seq: q})
		}
	}
	copy(r.stable, stable)
	for p := range r.n {
		copy(r.reported[p], reported[p])
	}
	r.seq = seq
	for i := range insts {
		s := insts[i]
		switch {
		case !r.validDot(s.dot) || s.phase > phCommit || s.phase < phCollect:
			return fmt.Errorf("atlas: checkpoint: bad dot %v or phase %d", s.dot, s.phase)
		case r.gcd(s.dot):
			return fmt.Errorf("atlas: checkpoint: dot %v is stable", s.dot)
		case r.inst[s.dot] != nil:
			return fmt.Errorf("atlas: checkpoint: dot %v twice", s.dot)
		case s.phase != phCommit && r.graph.IsExecuted(s.dot):
			return fmt.Errorf("atlas: checkpoint: dot %v executed but not committed", s.dot)
		case s.dot.Node == r.self && s.dot.Seq > seq:
			return fmt.Errorf("atlas: checkpoint: own dot %v beyond the last sequence number %d", s.dot, seq)
		}
		in := r.get(s.dot)
		*in = s
		if in.phase == phCommit && !r.graph.IsExecuted(in.dot) {
			r.replayed = append(r.replayed, in.dot)
		}
	}
	return nil
}
