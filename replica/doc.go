// Package replica is the pure replica core: one protocol instance, its state
// machine and the rules that connect them, with no clock, goroutine, file or
// socket. The simulator (simnet) and real servers (package runner) are two
// drivers of this one core, so the persistence contract of package protocols
// is enforced in one place.
//
// # Driving a core
//
// A driver feeds the core the protocol's inputs (Submit, Step, Tick) from one
// goroutine. After each input, Ready returns what the driver must do, in the
// manner of etcd raft's Ready/Advance:
//
//   - Records: append them to the durable log, in order, then report the
//     log index they reach with Synced once they are durable;
//   - Outputs: in the order the protocol made them — messages that may leave
//     now (OutSend), commands the state machine just applied (OutExec, for
//     metrics and checks), and client answers that may be released now
//     (OutReply; with Config.WantReply only those the driver waits for at
//     this replica);
//   - Snapshot: a checkpoint to write once the records it covers are durable;
//     after that the log up to Snapshot.Index may be dropped.
//
// Advance tells the core the Ready was consumed; its slices are reused.
//
// # Persistence rules
//
// A message, and likewise a client's answer, leaves only once every record
// persisted before it (in this input or an earlier one) is durable: the
// core holds it back until Synced reports an index at or past the log length
// at the time it was made, and then releases held outputs in the order they
// were made. An acknowledged command thus never rests on a record a crash
// could still lose.
//
// # State machine and exactly-once
//
// Executed commands are applied to a StateMachine in execution order. Before
// applying, the core's client sessions discard a command already executed:
// per key and client, the sequence numbers executed at or above the
// client's acknowledgement watermark (protocols.Command.Acked: the client
// was answered for every lower Seq), and the watermark itself. A command
// whose Seq is below the watermark of one of its keys, or is recorded
// there, was executed and is skipped. The decision for a command depends
// only on earlier commands sharing one of its keys, which every replica
// executes in the same order (the order contract), so every replica decides
// alike.
//
// The session of a command's first key (the empty key for a command
// without keys) also keeps a copy of its result, once the state machine
// answers it, at once or in a later Apply; the core remembers which
// executed commands await their answer, in its checkpointed state. A retry
// of an executed command, found by the sessions or reported by the
// protocol (protocols.RetryAnswerer), is answered after the records
// persisted so far are durable, like any answer: with an ordinary OutReply
// carrying the kept result; with nothing while the command awaits its
// answer (the state machine's answer, at every replica, is its reply); and
// with an OutReply marked Duplicate, without a result, when the result is
// no longer kept. A result is dropped, with its Seq, once a later command
// of the same client on that key carries a watermark above its Seq: the
// sessions hold, per key and client, only the results the client has not
// acknowledged through that key (a client that stops using a key leaves its
// last results there until its session is evicted). A key keeps at most
// Config.MaxSessionsPerKey client sessions; beyond that the least recently
// used is forgotten with its results, and a very late duplicate of that
// client's commands on that key could execute again.
//
// # Checkpoints
//
// With Config.CompactEvery > 0 and a protocol that implements
// protocols.Compactor, the core takes a checkpoint after every CompactEvery
// records (after a checkpoint of 1 MiB or more, once those records also hold
// half its bytes, so that checkpointing a large state costs in proportion to
// what is logged): the protocol's Checkpoint, the state machine's Snapshot and the
// sessions, at log index Snapshot.Index. A restart from Snapshot and the
// durable records after its Index restores the same state.
package replica
