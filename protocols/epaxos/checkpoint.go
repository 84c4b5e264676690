package epaxos

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// recCheckpoint is the tag of a checkpoint (Config.Checkpoint); it is never
// among the records of Config.Recovered.
const recCheckpoint byte = 2

var _ protocols.Compactor = (*Replica)(nil)

// Checkpoint implements protocols.Compactor. It first forgets the executed
// instances that every replica has executed (stable, see Compaction in the
// package doc) and the executed command ids, then returns a record that
// replaces every record persisted so far:
//
//	2 (tag)
//	seq                          own last sequence number as coordinator
//	#heard, (node, seq)*         Heartbeat progress per peer
//	#nodes, (node, upto, #above, above*)*
//	                             executed dots per coordinator: 1..upto and above
//	#instances, (record)*        every instance still known, as instanceRecord
//	#keys, (key, dots)*          per key, the forgotten commands' dots
//	dots                         the forgotten Nops' dots
//
// (counts and numbers as uvarints, records and keys length-prefixed, dots
// as in messages.) Instances at or below the executed summary are not
// executed again after a restart: the state machine snapshot holds them.
func (r *Replica) Checkpoint() []byte {
	r.compacting = true
	r.prune()
	b := []byte{recCheckpoint}
	b = binary.AppendUvarint(b, r.seq)
	peers := make([]protocols.NodeID, 0, len(r.heard))
	for p := range r.heard {
		peers = append(peers, p)
	}
	slices.Sort(peers)
	b = binary.AppendUvarint(b, uint64(len(peers)))
	for _, p := range peers {
		b = binary.AppendUvarint(b, uint64(p))
		b = binary.AppendUvarint(b, r.heard[p])
	}
	nodes := r.graph.ExecutedNodes()
	b = binary.AppendUvarint(b, uint64(len(nodes)))
	for _, nd := range nodes {
		b = binary.AppendUvarint(b, uint64(nd))
		b = binary.AppendUvarint(b, r.graph.ExecutedPrefix(nd))
		above := r.graph.ExecutedAbove(nd)
		b = binary.AppendUvarint(b, uint64(len(above)))
		for _, s := range above {
			b = binary.AppendUvarint(b, s)
		}
	}
	ds := r.Dots()
	b = binary.AppendUvarint(b, uint64(len(ds)))
	for _, d := range ds {
		b = wire.AppendBytes(b, instanceRecord(r.inst[d]))
	}
	keys := make([]string, 0, len(r.keyIndex))
	for k, ds := range r.keyIndex {
		if slices.ContainsFunc(ds, r.forgotten) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = wire.AppendString(b, k)
		b = appendDots(b, slices.DeleteFunc(slices.Clone(r.keyIndex[k]), func(d Dot) bool { return !r.forgotten(d) }))
	}
	return appendDots(b, slices.DeleteFunc(slices.Clone(r.nops), func(d Dot) bool { return !r.forgotten(d) }))
}

// forgotten reports whether d's instance was forgotten at a checkpoint.
func (r *Replica) forgotten(d Dot) bool {
	_, known := r.inst[d]
	return !known && r.graph.IsExecuted(d)
}

// forgottenCmd reports whether the forgotten instance x held a command that
// conflicts with c: its dot stayed in the key index under a key of c.
func (r *Replica) forgottenCmd(x Dot, c protocols.Command) bool {
	for _, k := range dedupKeys(c.Keys) {
		if hasDot(r.keyIndex[k], x) {
			return true
		}
	}
	return false
}

// stable returns, for each replica in Peers order, the prefix of its
// instances that every replica is known to have executed: this replica's
// own executed prefix and what every peer last reported in a Heartbeat.
func (r *Replica) stable() []uint64 {
	st := make([]uint64, len(r.cfg.Peers))
	for i, p := range r.cfg.Peers {
		st[i] = r.graph.ExecutedPrefix(p)
	}
	for _, p := range r.cfg.Peers {
		if p == r.self {
			continue
		}
		ex := r.execOf[p]
		for i := range st {
			if ex == nil {
				st[i] = 0
			} else {
				st[i] = min(st[i], ex[i])
			}
		}
	}
	return st
}

// prune forgets the instances every replica has executed, and the executed
// command ids (the runtime's sessions discard a second execution). A
// forgotten command keeps its dot in the key index and a forgotten Nop in
// nops, so that dependencies and Validate's conflicts are computed exactly
// as before.
func (r *Replica) prune() {
	r.done.Reset()
	for d := range r.waitK {
		if r.graph.IsExecuted(d) {
			delete(r.waitK, d)
		}
	}
	st := r.stable()
	for _, d := range r.Dots() {
		i := r.cfg.Index(d.Node)
		if i < 0 || d.Seq > st[i] {
			continue
		}
		in := r.inst[d]
		if in.phase != Committed || !r.graph.IsExecuted(d) {
			continue // cannot happen below the own executed prefix
		}
		if !(in.val.Known && !in.val.Nop) {
			// A Nop (or an unknown value) is never reported by Validate:
			// its dot leaves the key index, it stays in nops.
			for _, k := range in.ikeys {
				ks := r.keyIndex[k]
				if j, ok := slices.BinarySearchFunc(ks, d, Dot.Compare); ok {
					ks = slices.Delete(ks, j, j+1)
				}
				if len(ks) == 0 {
					delete(r.keyIndex, k)
				} else {
					r.keyIndex[k] = ks
				}
			}
		}
		delete(r.inst, d)
		delete(r.pending, d)
		delete(r.waiters, d)
	}
}

// restore loads a checkpoint written by Checkpoint; malformed input is an
// error.
func (r *Replica) restore(ck []byte) error {
	if len(ck) == 0 || ck[0] != recCheckpoint {
		return fmt.Errorf("epaxos: checkpoint: %w: bad tag", wire.ErrMalformed)
	}
	r.compacting = true
	rd := wire.NewReader(ck[1:])
	bad := func(what string) error {
		return fmt.Errorf("epaxos: checkpoint: %w: %s", wire.ErrMalformed, what)
	}
	r.seq = rd.Uvarint()
	nh := rd.Count(2)
	for range nh {
		p, s := rd.NodeID(), rd.Uvarint()
		if rd.Err() != nil {
			break
		}
		if r.cfg.Index(p) < 0 || p == r.self {
			return bad(fmt.Sprintf("heartbeat progress of non-peer %d", p))
		}
		r.heard[p] = s
	}
	nn := rd.Count(3)
	for range nn {
		nd, upto := rd.NodeID(), rd.Uvarint()
		na := rd.Count(1)
		if rd.Err() != nil {
			break
		}
		if nd == 0 {
			return bad("executed dots of node 0")
		}
		if len(r.graph.ExecutedAbove(nd)) > 0 || r.graph.ExecutedPrefix(nd) > 0 {
			return bad(fmt.Sprintf("node %d listed twice", nd))
		}
		r.graph.MarkExecutedPrefix(nd, upto)
		last := upto
		for range na {
			s := rd.Uvarint()
			if rd.Err() != nil {
				break
			}
			if s <= last {
				return bad(fmt.Sprintf("executed dots of node %d not above the prefix, or unsorted", nd))
			}
			last = s
			r.graph.MarkExecuted(Dot{Node: nd, Seq: s})
		}
	}
	ni := rd.Count(2)
	if ni > maxRecoveredInstances {
		return bad("too many instances")
	}
	for i := range ni {
		rec := rd.Bytes()
		if rd.Err() != nil {
			break
		}
		in, err := decodeInstance(rec)
		if err != nil {
			return fmt.Errorf("epaxos: checkpoint instance %d: %w", i, err)
		}
		if _, dup := r.inst[in.dot]; dup {
			return bad(fmt.Sprintf("instance %v listed twice", in.dot))
		}
		if err := r.load(in); err != nil {
			return fmt.Errorf("epaxos: checkpoint instance %d: %w", i, err)
		}
	}
	nk := rd.Count(2)
	for range nk {
		k := rd.String()
		ds := readDots(rd)
		if rd.Err() != nil {
			break
		}
		for _, d := range ds {
			if !r.forgotten(d) {
				return bad(fmt.Sprintf("indexed dot %v is not a forgotten executed instance", d))
			}
			r.keyIndex[k] = insertSorted(r.keyIndex[k], d)
		}
	}
	nops := readDots(rd)
	if err := rd.Done(); err != nil {
		return fmt.Errorf("epaxos: checkpoint: %w", err)
	}
	for _, d := range nops {
		if !r.forgotten(d) {
			return bad(fmt.Sprintf("Nop %v is not a forgotten executed instance", d))
		}
		r.nops = insertSorted(r.nops, d)
	}
	return nil
}

// load installs a recovered instance (from a checkpoint or a record),
// the later state of an instance replacing the earlier one.
func (r *Replica) load(in *instance) error {
	if r.graph.IsExecuted(in.dot) && in.phase != Committed {
		return fmt.Errorf("%w: executed instance %v is %v", wire.ErrMalformed, in.dot, in.phase)
	}
	if _, ok := r.inst[in.dot]; !ok && len(r.inst) >= maxRecoveredInstances {
		return fmt.Errorf("too many instances")
	}
	cur := r.get(in.dot)
	cur.bal, cur.abal, cur.phase = ballot.Max(cur.bal, in.bal), in.abal, in.phase
	cur.val, cur.deps, cur.init, cur.initDeps = in.val, in.deps, in.init, in.initDeps
	if in.dot.Node == r.self && in.dot.Seq > r.seq {
		r.seq = in.dot.Seq
	}
	if in.phase == Committed && r.graph.IsExecuted(in.dot) {
		cur.fed = true // executed before the checkpoint, so durable
	}
	return nil
}
