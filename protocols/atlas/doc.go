// Package atlas implements Atlas (Enes, Baquero, Rezende, Gotsman, Perrin,
// Sutra, "State-Machine Replication for Planet-Scale Systems", EuroSys
// 2020, arXiv 2003.11789) as a pure state machine behind the protocols
// interface, registered as "atlas", with 1 <= f <= (n−1)/2.
//
// # Commit
//
// Submit makes this replica the initial coordinator of a new dot (self,
// counter). It records the command's conflicts it knows (past), registers
// the dot, persists, and sends MCollect to every replica; the fast quorum
// is the ⌊n/2⌋+f first replicas of Config.Closest (itself first). Members
// answer MCollectAck with past ∪ their own conflicts (durably); the others
// keep the payload only. With every member's report, the coordinator takes
// the fast path (MCommit to all) when every dependency of the union was
// reported by at least f members, else the slow path: Flexible-Paxos phase
// 2 (MConsensus/MConsensusAck, f+1 acceptances) at ballot {0, coordinator},
// which is below every recovery ballot, so phase 1 is skipped. Conflict is
// Command.Conflicts (a shared key); dependencies are full sets of
// conflicting dots (no per-key transitive reduction: a recovered no-op or a
// recovered union may break the chain such a reduction relies on).
// Execution is the shared protocols/depgraph executor; every replica
// executes every committed command, each command id at most once per
// incarnation, so the replica that received Submit answers its client.
// Each decision taken here is reported with protocols.ReportPath: fast at
// the coordinator, slow for a phase-2 commit (coordinator or recoverer).
//
// # Recovery (our reading; the paper's Algorithm 2 could not be read here)
//
// PROTOCOL-NOTES.md §2.4 reconstructs the recovery; the text of the paper
// was not retrievable beyond its introduction, so every point below is a
// design decision, checked by the scripted scenarios and the sweeps.
//
//   - Trigger (Tick): a replica that knows an uncommitted dot (payload, a
//     role in it, or a committed command depending on it: depgraph
//     Missing) and sees no progress for SuspectTicks (its own commands) or
//     SuspectTicks·(1+attempts)+rand(SuspectTicks) (others) recovers it.
//     The randomized, growing timeout keeps concurrent recoveries rare;
//     any message about the dot postpones it.
//   - Ballots are ballot.Ballot values: {0, c} is the initial coordinator's
//     slow-path ballot, a recovery uses {bal.Round+1, self}, above every
//     ballot the recoverer joined. (The notes' integer formula would do as
//     well; a round-0 recovery ballot of a lower id would not.)
//   - MRec(dot, ballot, payload if known). A replica joins if the ballot is
//     above its own; if it never computed dependencies for the dot and
//     knows the payload (its own or the MRec's), it computes them now and
//     registers the dot (so later commands depend on it). Joining a ballot
//     shuts out a later MCollect, and a coordinator that joined can no
//     longer decide. A committed replica answers MCommit instead.
//   - With n−f MRecAcks: (1) the highest accepted ballot's value if any;
//     (2) if the MRec went without the payload and a reply has it, restart
//     with the payload at a higher ballot (so every reply could compute
//     dependencies); (3) if some reply saw MCollect (non-empty fast
//     quorum): the payload with the union of the dependencies of all
//     replies if the initial coordinator replied, else of the replies from
//     fast-quorum members — this rebuilds exactly a fast-path decision,
//     because the coordinator's past is in every report and each other
//     dependency was reported by f members of which at most f−1 miss the
//     recovery quorum; (4) otherwise a no-op. The value then goes through
//     MConsensus at the recovery ballot.
//   - Crash-recovery (our extension; the paper is crash-stop): rule (3)
//     counts on "the coordinator answered MRec uncommitted, so it never
//     decided the fast path". A coordinator that decided, executed and
//     lost the commit record with its unsynced tail would break that; so
//     after a fast decision the coordinator sends MCommit to itself too and
//     executes only when that copy arrives, which the runtime delivers once
//     the commit record is durable. A lost record then takes every trace of
//     the decision with it (the MCommits it held back are dropped too).
//     (MRecAck.Amnesiac belonged to an earlier design that made such a
//     coordinator count as absent; it needed n−f other replies and could
//     block. It is always false now and kept for the wire format.)
//   - A command of this replica committed as a no-op is submitted again
//     under a new dot, so a live client's command is not lost.
//
// # Durability and garbage collection
//
// The whole durable state of a dot is one record, persisted before any
// message that vouches for it and before a commit is announced or
// executed. A restarted replica replays the records, rebuilds its conflict
// index, re-executes its commits in record order and recovers what is
// still open. Replicas exchange their executed prefixes (MExecuted); a dot
// executed at every replica is stable: its state is dropped and later
// commands no longer depend on it. This is safe because every replica's
// records hold the commit of a stable dot and all its dependencies before
// any later command, and a restart replays them first. A crash-stopped
// replica stops garbage collection (dependency sets then grow).
//
// # Failpoints
//
// Markers of github.com/pingcap/failpoint (sabotage.go), inert without
// failpoint rewriting, plant bugs for the sabotage tests:
// "skipLocalConflicts" makes fast-quorum members report only the
// coordinator's past; "fastThresholdOneLess" lets a dependency reported by
// f−1 members pass the fast-path test. The swarm sweep catches both within
// 200 seeds (seed 1 and seed 57 when written).
package atlas
