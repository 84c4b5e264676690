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
// Two failpoints (github.com/pingcap/failpoint) plant bugs for the sabotage
// tests: "quorumOneShort" makes both phases wait for one acceptor less than
// a quorum, and "executeOutOfOrder" makes the leader execute a slot as soon
// as it is chosen, ahead of earlier slots still in flight. Without failpoint
// rewriting the markers are inert.
package paxos
