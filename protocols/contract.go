package protocols

import "fmt"

// Contract is the order contract a registered protocol keeps: what a
// runtime, and the checks of the simulator, may rely on about the order in
// which replicas execute commands and the states that reads observe.
type Contract uint8

// The contracts, from strongest to weakest.
const (
	// Linearizable is the order contract of the package doc: commands that
	// share a key execute in one order at every replica, and every command
	// takes effect between its submission and its answer. Every consensus
	// protocol keeps it; it is the zero value.
	Linearizable Contract = iota
	// Sequential: the updates (commands that Config.ReadOnly does not
	// call read-only) execute in one total order at every replica, as
	// under Linearizable, but a read-only command may execute at the
	// replica that received it alone, against a state that lags behind
	// the newest update. The history then satisfies sequential
	// consistency: one total order of the updates, with each client's
	// operations placed in it in the client's program order, explains the
	// value every read returned.
	Sequential
	// Weak (strong eventual consistency, last-writer-wins): an update
	// executes at once at the replica that received it and reaches the
	// others later, possibly in different orders; a replica executes an
	// update only if it arbitrates after every update it executed on the
	// same keys, so updates must be blind writes of their keys. Every
	// read returns the value of an issued update (or the initial value);
	// while a client stays at one replica incarnation it reads its own
	// writes and its reads never go back in the arbitration order; once
	// the updates stop and the network heals, every live replica holds
	// the same state, in which every acknowledged update is present or
	// overwritten by one arbitrated after it.
	Weak
	// Merge (strong eventual consistency, every update counts): an update
	// executes at once at the replica that received it (its origin) and
	// reaches the others later; every replica executes every update it
	// delivers exactly once, the updates of one origin in the order that
	// origin executed them, and those of different origins in any
	// interleaving. It is for state machines whose updates commute
	// (increments, grow-only set adds, merges with a commutative
	// combiner): replicas that executed the same updates then hold the
	// same state. A read executes at the replica that received it, after
	// every update that replica executed before; while a client stays at
	// one replica incarnation it reads its own updates and its reads see
	// a growing set of updates; once the updates stop and the network
	// heals, every live replica has executed every update executed
	// anywhere, each once.
	Merge
)

// String names the contract as the command line spells it.
func (c Contract) String() string {
	switch c {
	case Linearizable:
		return "linearizable"
	case Sequential:
		return "sequential"
	case Weak:
		return "weak"
	case Merge:
		return "merge"
	}
	return fmt.Sprintf("contract(%d)", uint8(c))
}
