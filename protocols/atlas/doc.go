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
// records (or checkpoint) hold the commit of a stable dot and all its
// dependencies before any later command, and a restart replays them first;
// and an MExecuted leaves only once the commits it vouches for are durable.
// The fast path counts and keeps every reported dependency, stable ones
// included: a value that dropped the dots stable at the coordinator could
// not be rebuilt by a recovery, which would commit the dot a second time
// with another dependency set.
//
// # Checkpoints (protocols.Compactor)
//
// Checkpoint returns one record (type 2) that replaces every record
// persisted before it. Its fields, in order (varints, package wire):
//
//   - seq: this replica's last own sequence number (its stable own dots
//     are gone, and a restart must never reuse a dot it sent);
//   - n, then per replica k (Config.Peers order) the executed set of k's
//     dots: the executed prefix and the sorted executed sequence numbers
//     above it. These commands are in the state machine snapshot taken at
//     the same moment; a restart marks them executed in the dependency
//     graph (depgraph.MarkExecutedPrefix, MarkExecuted) and never executes
//     them again;
//   - the garbage-collection state: stable[k], and reported[p][k], the
//     executed prefixes each replica reported (facts that only grow: a
//     report leaves once the commits it covers are durable at the reporter);
//   - every instance this replica persisted that is not stable, in dot
//     order, with its durable fields (phase, payload, collected deps and
//     fast quorum, joined and accepted ballots, accepted value): the
//     uncommitted ones with every promise and vote, the committed but
//     unexecuted ones (handed to the graph first on restart, then the
//     later records' commits in record order), and the executed ones.
//
// A restart loads the checkpoint, then replays Config.Recovered (the
// records persisted after it; a record of a dot the checkpoint shows
// executed or stable is stale and skipped, since nothing is persisted for
// a dot after its commit). A checkpoint that is malformed, written for
// another number of replicas, or inconsistent (a stable or own reported
// prefix above the executed one, an executed dot not committed, a stable
// dot kept, an own dot above seq) is an error. Checkpointing a replica
// restored from a checkpoint yields the same bytes (the tests check it).
//
// What a checkpoint prunes in memory, and why it is safe:
//
//   - the executed command ids (done): the runtime's client sessions
//     discard a second execution (protocols.Compactor);
//   - the stable dots still listed in the conflict index (conflicts drops
//     them lazily, only from the keys it reads);
//   - the stable instances (garbage collection runs first);
//   - of an executed instance, the fields only an uncommitted one needs
//     (collected dependencies, fast quorum). Its commit (payload or no-op,
//     dependencies) and its keys stay until it is stable, because a peer
//     that missed the commit learns it from this replica (MRec and
//     MConsensus about a committed dot are answered with MCommit), and
//     because later conflicting commands must still depend on it.
//
// The rule for forgotten dots: a dot whose state this replica dropped is
// stable (or, defensively, executed here without an instance); it was
// committed and executed at every replica, so a message about it is stale.
// Such a message is ignored: lookup never makes it a fresh, unknown
// instance, which could answer a recovery as if nothing had been decided
// (and let it commit a no-op) or register the dot again, so that later
// commands would wait for a commit that never comes. No executed dot is
// forgotten before it is stable, so every peer that can still need a
// commit gets it.
//
// Gaps. A replica that missed a commit nothing it executes depends on
// would never learn it; its executed prefix, and every replica's garbage
// collection with it, would stop at that dot. Every replica therefore
// looks up at each tick (and, after the usual timeout, recovers without
// payload) the dots up to gapWindow above its executed prefix of each peer
// that another replica reported executed and that it does not know; a
// replica that holds the commit answers with MCommit. This is a recovery
// like any other, so it is safe. A commit merely in flight arrives before
// the timeout and only cancels the timer; a replica that was down or cut
// off while dots committed learns them whether or not it ever
// checkpointed (before, only replicas that had checkpointed did, so a
// restarted replica stalled garbage collection until its first
// checkpoint).
//
// A permanently crashed replica never reports again, so nothing becomes
// stable and garbage collection stops (dependency sets grow). Checkpoints
// still bound the log (one entry per kept instance instead of its history
// of records, and no re-execution on restart), but they, and the memory
// of every replica, then keep every executed instance since that
// replica's last report, trimmed to its commit: they grow with the
// history until the replica returns. Forgetting those commits earlier
// would leave a returning (or lagging) replica unable to learn them:
// Atlas has no state transfer, and silence would block its execution
// forever; answering "unknown" would be unsafe.
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
