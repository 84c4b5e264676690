package mencius

import (
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// sendSnapshot answers a request for slots from which this replica has
// compacted (a CatchUpReq or a Prepare at or below base) with its newest
// checkpoint and the state at that point, if the Env can transfer state
// (protocols.StateTransfer) and the checkpoint covers slot from. Snapshots
// are big: a peer gets at most one every SuspectTicks ticks. Without a
// checkpoint, or without StateTransfer, nothing is sent (the requester
// stays behind).
func (r *Replica) sendSnapshot(to protocols.NodeID, from uint64) {
	if to == r.self {
		return
	}
	covers := func(ck []byte) bool {
		e, ok := checkpointExecuted(ck)
		return ok && e >= from
	}
	if ck, state, ok := r.snaps.Offer(r.env, to, r.now, r.cfg.SuspectTicks, covers); ok {
		r.env.Send(to, Snapshot{Checkpoint: ck, State: state})
	}
}

// checkpointExecuted reads the executed prefix from the header of a
// checkpoint record.
func checkpointExecuted(ck []byte) (uint64, bool) {
	if len(ck) == 0 || ck[0] != recCheckpoint {
		return 0, false
	}
	rd := wire.NewReader(ck[1:])
	rd.Uvarint()
	e := rd.Uvarint()
	return e, rd.Err() == nil
}

// handleSnapshot installs a peer's state when it is ahead of this
// replica's executed prefix: from the peer's checkpoint record it takes
// the executed prefix E alone (the promises and votes in it are the
// peer's, not this replica's), installs the state through the Env, and
// then stands where a checkpoint at E would have left it: executed = base
// = E, the log entries at or below E dropped (with the own proposals
// there, and a revocation that reaches there), its own promises, votes and
// skips above E kept, the executed command ids forgotten, and its next own
// slot above E. It then asks every peer for the slots above E (normal
// catch-up).
//
// The slots up to E are chosen (the peer executed them), so dropping this
// replica's votes there is what compaction does anyway: by the catch-up
// rule it answers no Prepare starting at or below its new base. A stale
// snapshot (E at most the executed prefix), a malformed record and a state
// the Env rejects are ignored. The Env makes the install durable with a
// checkpoint right after this input; a crash before loses only the
// transfer, since no durable promise or vote was given up.
func (r *Replica) handleSnapshot(from protocols.NodeID, m Snapshot) {
	if from == r.self {
		return
	}
	st, ok := r.env.(protocols.StateTransfer)
	if !ok {
		return
	}
	e, ok := checkpointExecuted(m.Checkpoint)
	if !ok || e <= r.executed {
		return
	}
	// Validate the whole record as a restart of the sender would, in a
	// scratch replica that keeps none of it.
	scfg := r.cfg
	scfg.Self = from
	if newReplica(scfg).restore(m.Checkpoint) != nil || st.InstallState(m.State) != nil {
		return
	}
	if r.rev != nil && r.rev.from <= e {
		r.rev = nil
	}
	r.executed = max(r.executed, e)
	r.markHorizon()
	r.truncate(max(r.base, e))
	r.nextOwn = max(r.nextOwn, r.ownAtOrAbove(e+1))
	r.rebuildDone()
	// Slots above E may already be known chosen here.
	r.execute()
	if next := r.at(r.executed + 1); next == nil || !next.chosen {
		r.broadcast(CatchUpReq{From: r.executed + 1, To: max(r.lastSlot(), r.executed+1)})
	}
}
