package protocols

// Fingerprinter is an optional interface of a Protocol: Fingerprint
// returns a hash of the instance's in-memory state, such that two
// instances with equal fingerprints, given the same inputs (Submit, Step,
// Tick) and the same environment (its random source included), behave
// alike: they send the same messages, persist the same records and execute
// the same commands, now and after any further inputs. It must cover every
// field that can influence future behaviour, and may leave out only what
// is fixed for an incarnation (the Config, the Env). Schedule exploration
// (simnet/explore) uses it to recognise a state it has explored before;
// a fingerprint that leaves out a field makes that search unsound.
type Fingerprinter interface {
	Fingerprint() uint64
}
