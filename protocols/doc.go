// Package protocols defines the one state-machine-replication (SMR) interface
// that every Blossom replication protocol implements, the registry that maps
// a protocol's name to its constructor and codec, and the contracts that the
// runtimes (the simulator in simnet and the DSO server) rely on.
//
// # Pure state machines
//
// A Protocol is a deterministic state machine in the manner of etcd's raft:
// it owns no goroutine, no clock, no socket, no file and no global random
// source. Input arrives through three calls — Submit (a client's command),
// Step (a peer's message) and Tick (one unit of logical time) — and every
// effect leaves through the Env it was given: Send, Execute, Persist, Rand.
// A runtime calls the three input methods from one goroutine at a time, so a
// protocol needs no locks. Given the same Config, the same Rand seed and the
// same sequence of calls, a protocol makes the same sequence of Env calls;
// in particular a protocol never lets Go's map iteration order reach its
// outputs.
//
// # Order contract
//
// Two commands that share a key are executed (Env.Execute) in the same
// relative order at every replica that executes both; for multicast, at every
// replica of every group they share. Commands that share no key may execute
// in any order. A command (identified by Command.ID) is executed at most once
// per replica incarnation, even when it was submitted, forwarded or proposed
// more than once. The replica that received Submit is the one whose Execute
// answers the client: a protocol may forward a command (for example to a
// leader), but every replica that must answer executes it itself.
//
// A command submitted again after this replica executed it (a client's
// retry after a lost answer) is not executed again: the protocol reports it
// through AlreadyExecuted, and the runtime tells the client it took effect.
//
// A protocol registered with RegisterContract may declare a weaker
// contract (Contract: Sequential, Weak, Merge) for the non-linearizable levels of
// degradable objects; the simulator's checks (simnet/simtest) then check
// the declared one.
//
// # Persistence contract
//
// Env.Persist appends one record to the replica's durable log. After a crash
// the runtime restarts the replica with Config.Recovered holding, in order,
// the records that became durable before the crash; every other field of the
// protocol's state is lost. A Send leaves the replica only once every record
// persisted before it (in this call or an earlier one) is durable, so a
// message may vouch for anything persisted before it was sent. A crash may
// lose the records not yet durable together with the sends they held back
// (the "unsynced tail"), but never a record that a sent message depended on.
// A Send issued while every earlier record is durable leaves at once.
// Client replies follow the same rule: the answer of an executed command is
// released only once every record persisted before the Execute is durable.
// The rule is enforced once, by the replica core (package replica), for the
// simulator and for real servers alike.
//
// # Compaction
//
// A protocol that implements Compactor lets the runtime bound its log: at a
// checkpoint the runtime snapshots the state machine, asks the protocol for a
// Checkpoint record, and once both are durable drops every record persisted
// before them. A restart then gets Config.Checkpoint and, in
// Config.Recovered, only the records persisted after it. Exactly-once
// execution across checkpoints does not rest on the protocol's memory of
// executed command ids: the replica core keeps client sessions per key (see
// Command.Acked) and discards a command it already executed, so a protocol
// may forget the ids its checkpoint covers.
//
// # Messages
//
// Messages are plain Go values. The network may lose, delay, duplicate and
// reorder them, and a runtime may hand the same Message value to Step more
// than once, so Step must treat a received Message as read-only. Each
// protocol registers a Codec that turns its messages into bytes and back;
// the server uses it on the wire and the simulator can round-trip every
// message through it. Decoders reject malformed input with an error and never
// panic; they are fuzzed.
//
// # Hostile input
//
// Peers are trusted to be honest, not to be correct: a buggy or mismatched
// peer (another version, another configuration) may send anything. A
// protocol drops, without panicking and without allocating or looping in
// proportion to a number in the message, every message no honest peer could
// send: a sender that is not a peer, a ballot owned by no replica of the
// deployment or with a round more than ballot.MaxAhead beyond the
// receiver's (ballot.Plausible; adopting it could wrap the round counter),
// slots beyond the receiver's window (paxos's maxAhead past the first
// unchosen slot), an instance of a node that is not a peer or with a
// sequence number more than maxSeqAhead beyond what the receiver knows of
// that node (epaxos and atlas: a Heartbeat, an executed prefix or a
// dependency set naming such instances would cost a recovery for each), a
// record of a message not destined to the receiver's group. Such a message
// changes nothing, so order, liveness once it stops
// and linearizability hold (simtest.InjectForged checks this with gofuzz).
//
// The protocols do not defend against Byzantine peers: a message whose
// fields are all plausible but false (an Accept or a delivery at the
// current ballot with another command, a commit of a value never chosen, a
// catch-up with invented values, a relayed client command that the client
// never sent, or a command under a real client's id with other content)
// cannot be told from a real one and may break safety. The forger of the
// tests is restricted accordingly (foreign ballots, clients outside the
// workload, no forged relayed multicast commands, no forged epaxos or
// atlas message without a ballot or at the zero ballot, the initial
// coordinator's, about a real instance, no forged mencius skip, catch-up
// request or chosen value about real slots).
//
// Covered: paxos, wbcast, skeen (whose Paxos messages are paxos's),
// epaxos, atlas and mencius.
package protocols
