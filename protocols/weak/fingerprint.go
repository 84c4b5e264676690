package weak

import "github.com/blossom-dso/blossom/protocols/statehash"

// Fingerprint implements protocols.Fingerprinter: a canonical hash of the
// replica's whole in-memory state (every field, maps as sets of entries)
// but its Config and Env, which are fixed for an incarnation.
func (r *Replica) Fingerprint() uint64 { return statehash.Of(r, "cfg", "env") }
