package skeen

import (
	"fmt"
	"maps"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// ckVersion is the first byte of a Skeen checkpoint record.
const ckVersion byte = 1

// Checkpoint implements protocols.Compactor: the embedded Paxos instance
// compacts and checkpoints (paxos.Replica.Checkpoint), the process forgets
// the single-group delivered messages beyond its retention window, and the
// record holds
// the state Skeen's state machine derived from the executed log prefix —
// the clock, the undelivered messages with the timestamps their groups
// recorded so far, the retained delivered messages with this group's
// timestamps — followed by the Paxos checkpoint (format in the package
// doc).
func (r *Replica) Checkpoint() []byte {
	pax := r.pax.Checkpoint()
	r.forget()
	b := []byte{ckVersion}
	b = wire.AppendUvarint(b, r.clock)
	ids := slices.SortedFunc(maps.Keys(r.entries), cmpID)
	b = wire.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		e := r.entries[id]
		b = wire.AppendCommand(b, e.cmd)
		b = wire.AppendUvarint(b, uint64(len(e.dest)))
		for k := range e.dest {
			b = wire.AppendBool(b, e.have[k])
			b = mcast.AppendTS(b, e.lts[k])
		}
	}
	b = wire.AppendUvarint(b, uint64(len(r.order)))
	for _, id := range r.order {
		st := r.delivered[id]
		b = wire.AppendCommand(b, st.cmd)
		b = mcast.AppendTS(b, st.lts)
	}
	return wire.AppendBytes(b, pax)
}

func cmpID(a, b protocols.CommandID) int {
	if a.Less(b) {
		return -1
	}
	if b.Less(a) {
		return 1
	}
	return 0
}

// restore loads the Skeen part of a checkpoint and returns the embedded
// Paxos checkpoint. A malformed record is an error.
func (r *Replica) restore(ck []byte) ([]byte, error) {
	if len(ck) == 0 || ck[0] != ckVersion {
		return nil, fmt.Errorf("skeen: checkpoint: unknown version")
	}
	rd := wire.NewReader(ck[1:])
	r.clock = rd.Uvarint()
	n := rd.Count(4)
	for range n {
		c := rd.Command()
		k := rd.Count(2)
		if rd.Err() != nil {
			break
		}
		d := r.dests(c)
		own := slices.Index(d, r.group)
		if k != len(d) || own < 0 {
			return nil, fmt.Errorf("skeen: checkpoint: message %v: %d timestamps for destinations %v", c.ID, k, d)
		}
		e := &entry{cmd: c, dest: d, have: make([]bool, k), lts: make([]mcast.TS, k)}
		for j := range k {
			e.have[j], e.lts[j] = rd.Bool(), mcast.ReadTS(rd)
		}
		if rd.Err() != nil {
			break
		}
		if _, dup := r.entries[c.ID]; dup || !e.have[own] {
			return nil, fmt.Errorf("skeen: checkpoint: message %v repeated or without a local timestamp", c.ID)
		}
		if !slices.Contains(e.have, false) {
			e.final = true
			for _, t := range e.lts {
				if e.gts.Less(t) {
					e.gts = t
				}
			}
		}
		r.entries[c.ID] = e
	}
	n = rd.Count(4)
	for range n {
		c := rd.Command()
		lts := mcast.ReadTS(rd)
		if rd.Err() != nil {
			break
		}
		_, dup := r.delivered[c.ID]
		if _, undelivered := r.entries[c.ID]; dup || undelivered {
			return nil, fmt.Errorf("skeen: checkpoint: delivered message %v repeated", c.ID)
		}
		r.delivered[c.ID] = stamped{cmd: c, lts: lts}
		r.order = append(r.order, c.ID)
	}
	pax := rd.Bytes()
	if err := rd.Done(); err != nil {
		return nil, fmt.Errorf("skeen: checkpoint: %w", err)
	}
	if len(pax) == 0 {
		return nil, fmt.Errorf("skeen: checkpoint: no paxos checkpoint")
	}
	r.forget()
	return pax, nil
}

// forget drops the delivered messages addressed to this group alone that
// are older than the last retain deliveries. A message with other
// destination groups is kept: one of them may still wait for this group's
// timestamp, and answering it with a new one would let the groups fix
// different global timestamps.
func (r *Replica) forget() {
	drop := len(r.order) - r.retain
	if drop <= 0 {
		return
	}
	kept := r.order[:0]
	for i, id := range r.order {
		if i < drop && len(r.dests(r.delivered[id].cmd)) == 1 {
			delete(r.delivered, id)
			continue
		}
		kept = append(kept, id)
	}
	clear(r.order[len(kept):])
	r.order = kept
}
