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
// (base = executed − Options.Retain, DefaultRetain slots by default, but
// at a leader never above its commit point, whose acknowledgements it
// counts on its log; the point never moves down), the executed command ids except those of the
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
// serves no CatchUpReq starting there from its log; an Accept for such a
// slot (a chosen slot re-proposed by a new leader) is still persisted and
// acknowledged. A lagging replica asks the leader (the sender of the Commit
// that showed it behind) for the chosen values above its executed prefix,
// which the leader serves from its log while the replica's first unchosen
// slot is above the leader's base, that is, while it is at most Retain
// slots behind.
//
// State transfer. A replica further behind gets the state instead, when
// the runtime offers protocols.StateTransfer: a replica that is asked for
// slots at or below its base (a CatchUpReq, or a Prepare it refuses)
// answers with a Snapshot — its newest checkpoint record and the state
// machine state at the same point (LastCheckpoint) — at most once per peer
// every SuspectTicks ticks, since snapshots are big. The checkpoint's
// executed prefix E is at least the sender's base, so it covers the
// request. The receiver, unless it leads, takes from the record only E
// (validated as a restart would; a malformed record is ignored) and, if E
// is above its own executed prefix, installs the state (InstallState; a
// state the runtime rejects is ignored) and stands where a checkpoint at E
// would have left it: executed = base = E, its log entries up to E
// dropped, its own promise and its own votes above E kept — nothing of the
// sender's promise or votes, which are the sender's — and its executed
// command ids forgotten, as at a compaction. It then asks the sender for
// the slots above E (the normal catch-up). The slots up to E are chosen,
// since the sender executed them, so forgetting its votes there is what
// compaction does; by the rule above it answers no Prepare starting there.
// Durability: the runtime takes a checkpoint right after the input that
// installed the state; a crash before it is durable restarts the replica
// from its own older checkpoint and records, which it never gave up, so
// only the transfer is lost. Without a checkpoint to send, or without
// StateTransfer, nothing is sent and the lagging replica stays behind,
// safely: it never executes out of order and never breaks a promise or a
// vote.
//
// Elections and the rule. A refused Prepare would block an election for
// ever if the candidate stayed behind a quorum's bases; a refusal
// therefore sends the candidate a Snapshot, which lifts its executed
// prefix to E ≥ the refuser's base, so that its next campaign (from its
// first unchosen slot, above E) is answered. Bases move only when slots
// are executed, which needs a leader; while there is none they stand
// still, so after at most one transfer from each refuser a candidate is
// refused by no live replica. Independently, the live replica with the
// highest executed prefix is refused by nobody (every base is at most its
// owner's executed prefix). A candidate that catches up while it campaigns
// starts its reign above its base, and a leader ignores snapshots: it
// learns every slot from its first unchosen one by re-proposing.
//
// Two failpoints (github.com/pingcap/failpoint) plant bugs for the sabotage
// tests: "quorumOneShort" makes both phases wait for one acceptor less than
// a quorum, and "executeOutOfOrder" makes the leader execute a slot as soon
// as it is chosen, ahead of earlier slots still in flight. Without failpoint
// rewriting the markers are inert.
package paxos
