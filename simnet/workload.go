package simnet

import (
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/replica"
)

// Workload replaces the key-value workload of a run (Config.Workload): its
// state machines run at the replicas and its clients' commands are its
// own. The closed-loop clients, their placement, timeouts and the history
// stay the simulator's; a history Op then carries the command's key, Put
// for an update (not ReadOnly), and the answer's bytes in Result. Its
// methods are called in the run's deterministic order, so a Workload that
// draws from its own seeded source keeps the run a function of the seed.
type Workload interface {
	// Machine returns a fresh state machine for an incarnation of node.
	Machine(node protocols.NodeID) replica.StateMachine
	// ReadOnly is the protocols' predicate (protocols.Config.ReadOnly).
	ReadOnly(c protocols.Command) bool
	// Next returns client c's (0-based) next command: its key and
	// payload, or ok false if the client has finished. A client also
	// finishes after Config.Ops/Config.Clients commands (one more for the
	// first Ops%Clients clients), whatever Next says.
	Next(c int) (key string, payload []byte, ok bool)
	// Done gives client c the answer to its last command, or ok false if
	// the command timed out (its outcome unknown).
	Done(c int, result []byte, ok bool)
}
