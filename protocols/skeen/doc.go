// Package skeen implements Skeen's atomic multicast with every group
// replicated by Multi-Paxos — the classic baseline against which white-box
// multicast (package wbcast) is measured — registered as "skeen".
//
// Each process embeds a paxos.Replica over the members of its group (package
// paxos used as a library: no second Paxos). Its Env wraps the Paxos messages
// in Pax, passes the Paxos records through as the process's own (Skeen keeps
// no other durable state) and turns Paxos executions into the steps of a
// deterministic state machine:
//
//   - A submitted command is sent (Multicast) to every destination group at
//     once; each group proposes it to its own log.
//   - The first log entry of a message gives it the group's next local
//     timestamp (clock, group); the group's leader sends it (Stamp) to the
//     other destination groups, which propose it to their logs.
//   - The log entry that completes the set of destination timestamps fixes
//     the global timestamp (their max) and moves the clock past it: that is
//     the group's agreement on the clock update.
//   - A message is delivered once its global timestamp is fixed and no
//     message still waiting for timestamps has a smaller local timestamp
//     (Skeen's rule); ties break on command ids.
//
// Without contention a leader delivers 6 message delays after the client
// sends: the Multicast, a Paxos round trip for the local timestamp, the
// Stamp, and a Paxos round trip for the final timestamp. Since the state is
// a function of the log, a restarted process without a checkpoint rebuilds
// it when Paxos re-executes the log. A log entry's command id packs the
// recorded group into the low byte of the client id, so groups are limited
// to ids below 256 and client ids to 2^56.
//
// # Checkpoints
//
// A Replica implements protocols.Compactor. Its checkpoint record is
//
//	version (1) | clock | n | n × (command, k, k × (have, local ts)) |
//	m | m × (command, local ts) | Paxos checkpoint (length-prefixed)
//
// the state Skeen's state machine derived from the executed prefix of the
// group's log: the clock; every undelivered message (sorted by id) with the
// timestamps of its k destination groups recorded so far (its final flag
// and global timestamp are recomputed); the delivered messages, oldest
// first, with this group's timestamp — to answer a group that still waits
// for it, and to order no message twice; and the embedded Paxos checkpoint
// (package paxos: promise, executed prefix, retained and in-flight slots).
// A restart restores the Skeen state from it and Paxos resumes above the
// executed prefix, so no step is applied twice. A malformed checkpoint is
// an error.
//
// Pruning. A delivered message addressed to this group alone is forgotten
// once Options.Retain (paxos.DefaultRetain by default) later messages were
// delivered, and Paxos forgets executed step ids (package paxos). A late
// Multicast or duplicate step of such a message makes the group order it
// again with a new timestamp; its second execution is discarded by the
// runtime's client sessions at every replica alike, and no other group
// depends on that timestamp. A delivered message with other destination
// groups is kept: forgetting it would be unsafe, since a group that still
// waits for this group's timestamp would get a new one and fix a different
// global timestamp. Those entries are therefore not bounded yet: bounding
// them needs a confirmation that every destination group fixed the global
// timestamp, which the protocol does not exchange.
//
// No state transfer. A process that falls behind the retention window of
// its group's Paxos leader cannot catch up (the catch-up rule of package
// paxos): the Env of the embedded Paxos instance does not offer
// protocols.StateTransfer, so Paxos neither sends nor installs snapshots
// in a Skeen group. Installing a peer's state would also have to install
// the Skeen state derived from the skipped slots (clock, undelivered
// messages with their timestamps, delivered messages) — the Skeen part of
// the peer's checkpoint, taken at the same executed prefix — and a process
// that installs delivers none of the skipped messages itself, which the
// simulator's multicast agreement check counts per replica and would
// report; it stays out until the check can see installed states.
package skeen
