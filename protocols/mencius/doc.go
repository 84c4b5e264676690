// Package mencius implements Mencius, the rotating-leader (multi-leader)
// Paxos of Mao, Junqueira and Marzullo (OSDI 2008), as a pure state machine
// behind the protocols interface, registered as "mencius". It is the
// fourth baseline of the Atlas paper's planet figure.
//
// # Slots and owners
//
// The log's slot s (1-based) is owned by Peers[(s−1) mod n]. A replica
// proposes the commands submitted to it in its own slots, in increasing
// order (nextOwn), batching up to 64 commands per slot and keeping at most
// 16 own slots proposed and not yet chosen, and none more than 32·n slots
// past its executed prefix. Each slot is a single-decree Paxos instance in
// which the owner holds ballot (1, owner) without a phase 1: round 1 of a
// slot belongs to its owner alone, so its proposal is safe at once.
//
// Handlers:
//
//   - Submit: the command joins the batch; propose puts the batch in the
//     next own slot and sends Accept{(1,self), slot, cmds} to every replica
//     (itself included).
//   - Accept: an acceptor votes unless the slot is promised to a higher
//     ballot (then Nack). Before voting for another owner's round-1
//     proposal for slot s it skips its own unused slots up to s (below).
//     It persists the vote, then broadcasts AcceptOK — to every replica, so
//     that each learns the decision itself, one message delay after the
//     acceptors, with no separate commit message.
//   - AcceptOK: counted per slot and ballot (quorum.Tracker); a majority at
//     ballot b chooses the slot. The value is the receiver's own vote at b
//     or, if it voted otherwise, the value of the Accept at b when it comes
//     (or a CatchUp).
//   - Skip: see below. It doubles as the heartbeat (every SuspectTicks/3
//     ticks), by which replicas suspect silent peers.
//   - Prepare / Promise / Nack: revocation, below.
//   - CatchUpReq / CatchUp: a replica blocked on a slot for a heartbeat
//     period asks every peer for the chosen slots from it up to the
//     highest slot it knows; peers answer with up to 256 entries — chosen
//     values, and their votes on slots they do not know chosen — and skip
//     their own unused slots in the range. The asker counts a vote at
//     ballot b as the peer's AcceptOK at b (its own vote too): a majority
//     chooses the voted value. Knowing a slot chosen is volatile, so when
//     every replica has restarted, this is how the slots chosen by a
//     majority of durable votes are relearned without a revocation each.
//     A reply that advanced the executed prefix is followed at once by
//     the next request to every peer, so a restarted replica relearns the
//     log quickly.
//
// Execution is in slot order: a replica executes slot s once every slot
// below s is executed and s is chosen; an empty slot is a no-op, and each
// command id executes at most once per incarnation (a command proposed
// twice, by a retry, executes at its first slot).
//
// # Skips
//
// A replica that learns of another owner's proposal for slot s will
// propose nothing in its own slots below s: it skips every unused own slot
// up to s (skipThrough). A skipped slot is decided as a no-op at once,
// with no acceptor round: only its owner may propose a command at round 1,
// it proposed none, and a revoker proposes either a value it found voted
// or a no-op, so no command can ever be chosen there. The skip is persisted
// (record) before any message announcing it leaves, so a restarted owner
// never proposes in a slot it skipped. The range [From, To) of the latest
// skip is piggybacked on every AcceptOK the replica sends (the message it
// sends anyway in answer to the proposal that caused the skip) and on the
// heartbeat; a replica blocked on its own unused slot skips it at the next
// tick and announces it at once. This is what makes a replica's
// execution wait for every other replica — its latency is bounded by the
// round trip to the farthest replica, Mencius's known price.
//
// # Revocation
//
// A replica blocked on another owner's undecided slot s takes it over when
// the owner is suspected (silent for SuspectTicks ticks) or the slot stays
// undecided for 2·SuspectTicks ticks (a round-1 proposal refused by
// acceptors that promised an earlier revoker who fell silent). To avoid
// dueling revokers, one replica revokes: the first replica after the owner
// in Peers order that is not suspected; any blocked replica does after
// 3·SuspectTicks ticks, and a failed revocation (a Nack, or no quorum
// within SuspectTicks ticks) backs off a random number of ticks. The
// revoker runs phase 1 with a ballot (round ≥ 2) above every promise it
// knows for the owner's slots from s to 32 of them ahead, or up to the
// highest slot it knows if that is farther, at most 128 (Prepare; each
// acceptor persists one promise record for the range, and the owner skips
// its unused slots in it), and on a majority of Promises proposes, for each
// slot not known chosen, the highest-ballot value reported or a no-op; it
// starts no other revocation for SuspectTicks/2 ticks, which would preempt
// this phase 2.
// Acceptors report a slot they know chosen (a skip included) at the
// revoker's own ballot, so it is re-proposed as is. A command whose own
// slot was chosen as something else goes back to the owner's batch; a
// command submitted here and not executed after 2·SuspectTicks ticks is
// proposed again.
//
// # Hostile input
//
// As package protocols requires, a message no honest peer could send
// changes nothing: a sender that is not a peer; a ballot of round 0, owned
// by no peer, of round 1 not owned by the slot's owner, or with a round
// more than ballot.MaxAhead above the highest ballot this replica promised
// or voted (plausible; in an Accept, AcceptOK, Prepare, Nack, or an entry
// of a Promise or CatchUp); a slot at or below the compaction point or
// more than maxAhead (65,536) past the executed prefix; a skip range
// longer than maxAhead or out of range; a Prepare range longer than 128
// of the owner's slots. The ballot bound matters beyond the ballot itself:
// a forged Accept or AcceptOK far ahead that was accepted grew the log up
// to its slot, the owners then skipped their unused slots up to the highest
// slot known, and catch-up requests made every peer skip as far, so that
// forged messages pushed the whole cluster tens of thousands of empty
// slots ahead, through which no owner could propose (the pipeline bound)
// and catch-up crawled 256 slots per message (the forged-message test,
// seed 2, lost 14 operations after the heal). Messages without a ballot
// (Skip, a CatchUpReq, a value in a CatchUp) cannot be told from the truth
// when their slots are plausible; see "Hostile input" in package protocols.
//
// # Persistence and recovery
//
// Three records, each made durable before a message that depends on it
// leaves: a vote (slot, ballot, commands), a promise (owner, slot range,
// ballot) and a skip of own slots (range). A restart replays them: promises
// and votes are as before the crash, own skipped slots are chosen no-ops,
// nextOwn lies past every own proposal and skip, and own round-1 proposals
// are retransmitted. What was chosen and executed is relearned by catch-up.
//
// No record keeps the executed prefix, yet a replica may execute any
// number of slots learned from its peers without writing a record, and
// then vote or skip up to maxAhead past it. So that a restart can bound
// the log it rebuilds, a replica keeps a horizon — the highest slot its
// durable state names (checkpoint, votes, promise ranges, skips) — and
// writes a mark record (type 5: the new horizon) whenever its executed
// prefix reaches maxAhead/2 past it (after a state transfer, one mark per
// maxAhead/2 slots of the jump). Every record then names slots within
// 2·maxAhead of the horizon of the durable state before it, and recovery
// rejects one that does not (and a mark more than maxAhead ahead) as an
// error instead of growing the log up to a slot a corrupt record names.
//
// # Checkpoints and compaction
//
// A Replica implements protocols.Compactor. Checkpoint first compacts the
// replica's memory and then returns one record (type byte 4) holding
//
//	base | executed | nextOwn | n | n × (slot, promise, vote ballot, chosen, commands)
//
// (ballots and numbers as in package wire): the compaction point base;
// the executed prefix (every slot up to executed was executed and is in
// the state machine snapshot the runtime takes at the same moment); the
// next own slot neither proposed nor skipped; and every log entry above
// base that holds a promise, a vote or a value known chosen, in increasing
// slot order — the retained executed slots base+1..executed (all chosen,
// with their commands, to serve catch-up; their encoding is cached) and
// every slot above executed as it stands, own skips included (chosen
// no-ops). A restart reads the checkpoint (Config.Checkpoint), then
// replays the records after it (Config.Recovered): promises, votes and
// skips are as a restart from every record would have them, own round-1
// proposals not chosen are retransmitted, and no slot at or below executed
// executes again. A malformed checkpoint is an error, never a panic
// (FuzzCheckpoint).
//
// What compaction prunes: the executed slots below the retention window
// (base = executed − Options.Retain, DefaultRetain = 1024 slots; the
// point never moves down), the own proposals there, the executed command
// ids except those of the retained slots, and the submitted commands
// already executed; the next own slot moves above base. A forgotten id
// that reaches Execute again (a late re-proposal, a client's retry) is
// discarded by the runtime's client sessions.
//
// Catch-up rule. The votes of the slots at or below base are gone from
// memory, so a replica answers no Prepare whose first slot is at or below
// its base (a promise must report every vote in its range), and serves no
// CatchUpReq starting there from its log; an Accept for such a slot is
// dropped (the slot is executed). Instead, when the runtime offers
// protocols.StateTransfer, the asker gets a Snapshot — the newest
// checkpoint record and the state machine state at the same point
// (LastCheckpoint) — at most once per peer every SuspectTicks ticks. The
// receiver validates the whole record as a restart of the sender would,
// takes from it only the executed prefix E, and if E is above its own
// installs the state (InstallState) and stands where a checkpoint at E
// would have left it: executed = base = E, its entries up to E dropped
// (with its own proposals there and a revocation reaching there), its own
// promises, votes and skips above E kept, its executed ids forgotten and
// its next own slot above E; then it asks every peer for the slots above
// E. The runtime checkpoints right after the install; a crash before that
// loses only the transfer. The compaction sweep includes a 4-slot window.
//
// A failpoint (github.com/pingcap/failpoint) plants a bug for the sabotage
// test: "executeOnChoose" executes a slot as soon as it is chosen, ahead of
// earlier undecided slots. Without failpoint rewriting the marker is inert.
package mencius
