package protocols

// SnapshotOffers decides, for a protocol that brings lagging replicas up to
// date by state transfer (StateTransfer), when to send a peer this
// replica's newest checkpoint. Snapshots are big, so a peer gets at most
// one per period of ticks. The zero value is ready to use.
type SnapshotOffers struct {
	last map[NodeID]int // tick a snapshot last went to a peer
}

// Offer returns the newest checkpoint and state of env for peer to at tick
// now, if env transfers state, a checkpoint exists, covers says it covers
// what to asked for, and to got no snapshot in the last every ticks; it
// then records the offer. ok is false, and nothing is recorded, otherwise
// (the requester stays behind).
func (o *SnapshotOffers) Offer(env Env, to NodeID, now, every int, covers func(checkpoint []byte) bool) (checkpoint, state []byte, ok bool) {
	st, can := env.(StateTransfer)
	if !can {
		return nil, nil, false
	}
	if at, sent := o.last[to]; sent && now-at < every {
		return nil, nil, false
	}
	checkpoint, state, ok = st.LastCheckpoint()
	if !ok || !covers(checkpoint) {
		return nil, nil, false
	}
	if o.last == nil {
		o.last = map[NodeID]int{}
	}
	o.last[to] = now
	return checkpoint, state, true
}
