// Package epaxos implements EPaxos*, the corrected and simplified
// Egalitarian Paxos of Ryabinin, Gotsman and Sutra ("Making Democracy Work:
// Fixing and Simplifying Egalitarian Paxos", OPODIS 2025, arXiv 2511.02743),
// as a pure state machine behind the protocols interface, registered as
// "epaxos". The handler-by-handler walkthrough it follows is
// ../../../shared/PROTOCOL-NOTES.md §1 (names and rule numbers below are
// those of the notes).
//
// # Thresholds
//
// f = Config.F crashes are tolerated; the fast path works with up to e =
// Config.E crashes (0: quorum.EPaxosDefaultE(f) = ⌈(f+1)/2⌉, the original
// EPaxos). New rejects e > f and n < max(2e+f−1, 2f+1). The fast quorum is
// quorum.EPaxosFast (n−e, coordinator included), the slow and recovery
// quorum quorum.EPaxosSlow (n−f).
//
// # Commit
//
// Submit makes this replica the initial coordinator of a new Dot
// (self, seq), with initial deps D0 = the known instances whose payload
// shares a key with the command (protocols.Command.Conflicts), plus the
// instances holding Nop. PreAccept goes to every replica (no thrifty mode).
// The fast path commits (ballot 0) once n−e PreAcceptOKs, the coordinator's
// own included, report exactly D0; the slow path (Accept at ballot 0, n−f
// AcceptOKs) starts once n−f replies are in and either every replica
// answered, more than e replies differ from D0, or max(3, SuspectTicks/3)
// ticks passed (a tick spans at least the greatest one-way delay in the
// simulator, so the fast quorum is not cut short on planet latencies). Commit is broadcast; ReportPath is called for every commit this
// replica decides (fast only for the ballot-0 fast path).
//
// # Recovery
//
// Each instance keeps the promise bal and the vote ballot abal apart
// (§1.2, §1.8). Recovery (rules 1-6, Validate/ValidateOK, Waiting and the
// wait conditions a-d of §1.5) is implemented as in the notes. Triggers are
// Tick-driven: every known, uncommitted instance has a deadline of
// SuspectTicks plus a random jitter of up to SuspectTicks ticks after it was
// learned or last made progress here; at the deadline the replica recovers
// it with the smallest own ballot (package ballot, round.node, ballot 0 =
// {0,0} is the initial coordinator's) above every ballot it has seen.
// Instances that a committed command depends on (depgraph Missing) and the
// instances a waiting recovery waits on are created locally and so get
// such a deadline too. Ongoing rounds retransmit to the replicas that have
// not answered every max(2, SuspectTicks/3) ticks.
//
// # Execution
//
// Committed instances go to the shared executor protocols/depgraph (Tarjan
// components, dependencies first, Dot order inside a component; Nop
// committed, never executed). A command id is executed at most once per
// incarnation (a client that retries at another replica creates a second
// instance of the same command).
//
// # Persistence and restart
//
// Every change of an instance's durable fields (bal, abal, phase, value,
// deps, initial value and deps) is persisted as one record before any
// message vouching for it is sent; a restart replays the records (last
// record of an instance wins, after the checkpoint if any, see Compaction)
// and re-executes the committed instances that the checkpoint does not
// cover, in a new incarnation. A commit is executed only when a Durable message the
// replica sends to itself comes back: the runtime holds that send until the
// commit record is synced, so no client is answered for a commit that a
// crash could lose.
//
// # Choices on the points PROTOCOL-NOTES marks unverified, and deviations
//
//   - Guards: messages whose guard fails are dropped; no buffering: a
//     Commit carries the payload, and instance state is created on first
//     mention. Three messages are ours, not the paper's: Nack carries a
//     higher ballot back to the sender of Accept, Recover or Validate (its
//     round is abandoned and its next attempt jumps above it); Durable
//     (below) is a note to self; Heartbeat, sent every SuspectTicks ticks,
//     carries the sender's last sequence number as initial coordinator, so
//     that a replica that lost every message about an instance (and has
//     nothing depending on it) still creates it, recovers it and learns its
//     commit — full replication under message loss.
//   - Commit is accepted at any ballot and raises bal to at least its
//     ballot (§1.9 relaxed Commit). Committed is terminal: PreAccept and
//     Validate on a committed instance are answered with the Commit; an
//     Accept at a ballot >= bal raises bal and is acknowledged without
//     changing the committed value; Recover is answered with the Commit.
//   - Conflicts for dependency computation: same key, and Nop conflicts
//     with everything (§1.1). The instance itself is never its own
//     dependency (§1.9, line 16).
//   - Rule 5 requires a non-empty R (with |Q|−e <= 0 an empty R would
//     carry no payload); R members must be PREACCEPTED with a payload and
//     dep = initDep. Rules 2 and 3 scan the replies latest first; with
//     a correct abal, replies tied at the highest vote hold the same value,
//     so this tie-break only shows under the planted bug (the §1.10 script
//     needs the remote reply to win, and the recoverer's own reply always
//     arrives first).
//   - Wait conditions are checked after every message from a peer and every
//     Tick, in the order d (late RecoverOK from outside Q), a, c, b; a and c
//     lead to Nop, b to the validated value.
//   - Blocked dependencies (Waiting, §1.5 liveness): the waited instances
//     get a local recovery deadline, so this replica recovers them itself if
//     it does not learn their commit.
//   - Thrifty mode is not implemented: rule 4 and the set I rely on every
//     replica possibly being in the fast quorum, and the thrifty variant's
//     recovery is unverified.
//
// # Garbage collection
//
// When an instance executes, its volatile bookkeeping (coordinator,
// Accept and recovery rounds, Waiting counts, the pending entry) is
// dropped. Its committed value and deps stay until a checkpoint finds it
// stable (below): until then late Recover, PreAccept and Validate messages
// are answered from them and Validate needs them to compute I.
//
// # Compaction
//
// Replica implements protocols.Compactor. Heartbeats carry the sender's
// executed prefix of every replica's instances (depgraph ExecutedPrefix, in
// Peers order), and, once a checkpoint was taken or restored, go out even
// from a replica that coordinates nothing. An instance is stable here when
// it is within this replica's own executed prefix and within the prefix
// every peer last reported. Checkpoint first prunes, then encodes.
//
// Pruned at a checkpoint: every stable instance (value, deps, initial value
// and deps, ballots), the executed command ids (the runtime's client
// sessions discard a second execution), and Waiting counts of executed
// instances. Kept: every instance that is not stable, executed or not, in
// full, and — so that dependencies and Validate's I are computed exactly
// as without compaction — the dot of every forgotten command in the key
// index and of every forgotten Nop in the Nop list.
//
// The rule for forgotten instances. Executed is monotone across restarts: a
// command executes only once its commit is durable (Durable), and a
// restart re-executes every durable commit not covered by the checkpoint's
// executed summary, so a replica that reported executing a dot has it
// executed in every later incarnation. A stable instance is therefore
// executed at every replica forever: nobody recovers it, waits for it or
// misses it as a dependency, and every message about it (PreAccept, Accept,
// Commit, Recover, Validate, Heartbeat) is stale and ignored — it is never
// reported as unknown or Nop. Two places read a forgotten instance through
// its dot: Validate of an instance d not committed here reports a forgotten
// command of a conflicting key as a committed conflict without d (what its
// full state would report: it executed here, so every dep of it is committed
// here, so d is not among them), and a waiting recovery treats it likewise
// (condition a). A forgotten Nop is not in the key index, so neither reports
// it, as for a committed Nop. A replica that stays down keeps everything
// from becoming stable: compaction then bounds the log but not the memory.
//
// What still grows with history: the dots of forgotten commands in the key
// index (16 bytes each, in memory and in every checkpoint), hence the
// dependency sets of new conflicting commands. Shrinking them would change
// the deps replicas compute and the I of Validate, so that a replica that
// forgot an instance and one that did not could disagree on the fast path;
// that needs a watermark decided with the deps, which the notes do not
// cover.
//
// Since a dependency set holds every conflicting command ever seen (a
// client's own key gathers all its commands), the sets are large and their
// cost is linear in their size at every step that touches them. They are
// therefore shared, never copied: a set in a message or an instance is
// sorted, without duplicates or its own dot, and never modified in place,
// so a replica keeps the slice a PreAccept or Commit carries (normDeps
// returns it), PreAccept adds the replica's conflicts without allocating
// when they add nothing (withConflicts), the fast path recognizes the
// coordinator's own slice without comparing it, and an instance record is
// allocated once at its exact size and copies the deps encoding of the
// instance's previous record when the slice is the same.
//
// The checkpoint record (Checkpoint documents the encoding) holds: the
// replica's last sequence number as coordinator, its Heartbeat progress per
// peer, the executed summary per coordinator (the executed prefix and the
// executed dots above it; the state machine snapshot holds their commands,
// and a restart marks them executed without executing them), the full
// durable state of every kept instance as an instance record, and the
// forgotten dots of the key index and the Nop list. New restores it
// (Config.Checkpoint) and then replays Config.Recovered over it, the last
// record of an instance winning; a malformed checkpoint, or a record that
// would make an executed instance uncommitted, is an error.
//
// # Tests
//
// Besides codec round trips and fuzz targets: scripted scenarios on a
// deterministic harness that controls every delivery (the EPaxos*
// analogue of the IPL 2020 counterexample, the Validate and Waiting paths,
// concurrent recoveries, a late RecoverOK, restart); a seeded chaos
// scheduler (random delivery order, loss, duplication, crash-restart and
// overlapping recoveries at random replicas) that checks Agreement,
// Visibility, abal <= bal, liveness once quiet and the per-key execution
// order; and simnet sweeps with Porcupine, the order check and the same
// invariants over every replica of every run. Compaction: scripted
// checkpoint-and-restart scenarios (promises kept, executed commands not
// executed again, only stable instances forgotten, forgotten ones answered
// alike), the chaos scheduler with random checkpoints and restarts from
// them (a command executed twice across incarnations fails it), a fuzz
// target for checkpoints, and swarm sweeps with CompactEvery 3 and 10.
//
// # Failpoints
//
// "recoverOKReportsPromise" makes RecoverOK report the promise held before
// the Recover instead of abal — the original EPaxos bug (Sutra, IPL 2020).
// "dropDeps" makes PreAccept report the coordinator's deps without the
// replica's own conflicts, so fast-path commits lose dependencies.
// "preAcceptOKBeforePersist" and "acceptOKBeforePersist" make a replica
// answer a PreAccept or an Accept without persisting what it answered for
// (the first is caught by the ack-crash sweep, the second by the scripted
// ack-crash scenario, acceptOKScript). All are inert unless the build is
// rewritten by failpoint-toolexec.
package epaxos
