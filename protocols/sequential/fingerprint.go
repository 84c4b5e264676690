package sequential

// Fingerprint implements protocols.Fingerprinter: the inner Paxos
// replica's fingerprint (the read counters are statistics, not state).
func (r *Replica) Fingerprint() uint64 { return r.inner.Fingerprint() }
