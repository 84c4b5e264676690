package epaxos

import "github.com/blossom-dso/blossom/protocols/statehash"

// Fingerprint implements protocols.Fingerprinter: a canonical hash of the
// EPaxos replica's whole in-memory state (every field, caches included, maps as
// sets of entries) but its Config and Env, which are fixed for an
// incarnation, and the record encoding cache (encoded), which depends on
// the path to a state rather than on the state. Its random source is the
// Env's, which the caller hashes.
func (r *Replica) Fingerprint() uint64 { return statehash.Of(r, "cfg", "env", "encoded") }
