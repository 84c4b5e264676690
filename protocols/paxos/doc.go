// Package paxos implements Multi-Paxos as a pure state machine behind the
// protocols interface, registered as "paxos" (majority quorums) and
// "fpaxos" (Flexible Paxos: phase 1 with n−f replicas, phase 2 with f+1).
//
// A replica is proposer, acceptor and learner at once. Leader election is
// driven by Tick: a follower that hears nothing from a leader for a
// randomized election timeout (SuspectTicks to 2·SuspectTicks ticks) runs
// phase 1 with a ballot above every ballot it has seen, over all slots from
// its first unchosen one. On a phase-1 quorum it becomes leader and
// re-proposes every reported slot with its own ballot — the highest-ballot
// value reported for the slot, or a no-op in a gap — then proposes new
// batches of commands, pipelining up to maxInflight slots. Acceptors persist
// every promise and every accepted value before they answer (the persistence
// contract of package protocols), and a restarted replica replays them.
//
// Commit notification: the leader piggybacks its commit index on every
// Accept and sends it as a heartbeat. A follower learns that a slot up to the
// commit index is chosen when it accepted that slot at the leader's ballot;
// for the others it asks the leader for the chosen values (catch-up), which
// also brings restarted and lagging replicas up to date.
//
// A replica that is not the leader forwards the commands submitted to it to
// the leader, and sends them again when they have not executed after
// SuspectTicks ticks; duplicate proposals are harmless because each replica
// executes a command id at most once.
//
// # Checkpoints and compaction
//
// A Replica implements protocols.Compactor. Checkpoint first compacts the
// replica's memory and then returns one record (type byte 3) holding
//
//	promised ballot | base | executed | n | n × (slot, ballot, chosen, commands)
//
// (ballots and numbers as in package wire): the promise; the compaction
// point base; the executed prefix (every slot up to executed was executed
// and is in the state machine snapshot the runtime takes at the same
// moment); and every log entry above base that holds a vote or a value
// known to be chosen, in increasing slot order — the retained executed
// slots base+1..executed (all chosen, with the commands, to serve lagging
// replicas) and every slot above executed with its vote. A restart reads
// the checkpoint (Config.Checkpoint), then replays the records after it
// (Config.Recovered): promise and votes are as a restart from every record
// would have them, and it executes no slot at or below executed again. A
// malformed checkpoint is an error.
//
// What compaction forgets: the executed slots below the retention window
// (base = executed − Options.Retain, DefaultRetain slots by default; the
// point never moves down), the executed command ids except those of the
// retained slots, and the submitted and proposed commands already
// executed. Memory and checkpoints are thus bounded by the in-flight slots
// plus the window, not by history. A command id that was forgotten and
// reaches Execute again (a late duplicate proposal, a client's retry) is
// discarded by the runtime's client sessions, at every replica alike; the
// replica still executes each id it remembers at most once.
//
// Catch-up rule. The votes of the slots at or below base are gone from
// memory (their records stay durable until the checkpoint that covers them
// is), so a replica answers no Prepare whose first slot is at or below its
// base — a promise must report every vote above its first slot — and
// serves no CatchUpReq starting there; an Accept for such a slot (a chosen
// slot re-proposed by a new leader) is still persisted and acknowledged.
// A lagging replica asks the leader (the sender of the Commit that showed
// it behind): it catches up as long as its first unchosen slot is above the
// leader's base, that is, while it is at most Retain slots behind the
// leader's executed prefix. A replica further behind cannot catch up (that would
// need a transfer of the state machine snapshot, which the protocol does
// not have) and stays behind, safely: it never executes out of order and
// never breaks a promise or a vote. Such a replica cannot win an election
// either while a quorum has compacted past its first unchosen slot.
//
// Two failpoints (github.com/pingcap/failpoint) plant bugs for the sabotage
// tests: "quorumOneShort" makes both phases wait for one acceptor less than
// a quorum, and "executeOutOfOrder" makes the leader execute a slot as soon
// as it is chosen, ahead of earlier slots still in flight. Without failpoint
// rewriting the markers are inert.
package paxos
