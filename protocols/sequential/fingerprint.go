package sequential

import "github.com/blossom-dso/blossom/protocols/statehash"

// Fingerprint implements protocols.Fingerprinter: the inner Paxos
// replica's fingerprint and a canonical hash of the rest of the replica's
// state (the per-client submitted and executed marks) but its Env.
func (r *Replica) Fingerprint() uint64 {
	h := statehash.New()
	h.Uint64(r.inner.Fingerprint())
	h.AddFields(r, "inner", "env")
	return h.Sum()
}
