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
//     highest slot it knows; peers answer with up to 256 chosen values and
//     skip their own unused slots in the range. A reply that advanced the
//     executed prefix is followed at once by the next request, so a
//     restarted replica relearns the log quickly.
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
// knows for the owner's slots from s to 32 of them ahead (Prepare; each
// acceptor persists one promise record for the range, and the owner skips
// its unused slots in it), and on a majority of Promises proposes, for each
// slot not known chosen, the highest-ballot value reported or a no-op.
// Acceptors report a slot they know chosen (a skip included) at the
// revoker's own ballot, so it is re-proposed as is. A command whose own
// slot was chosen as something else goes back to the owner's batch; a
// command submitted here and not executed after 2·SuspectTicks ticks is
// proposed again.
//
// # Persistence and recovery
//
// Three records, each made durable before a message that depends on it
// leaves: a vote (slot, ballot, commands), a promise (owner, slot range,
// ballot) and a skip of own slots (range). A restart replays them: promises
// and votes are as before the crash, own skipped slots are chosen no-ops,
// nextOwn lies past every own proposal and skip, and own round-1 proposals
// are retransmitted. What was chosen and executed is relearned by catch-up
// (the peers keep every chosen slot: this package does not implement
// protocols.Compactor yet).
//
// A failpoint (github.com/pingcap/failpoint) plants a bug for the sabotage
// test: "executeOnChoose" executes a slot as soon as it is chosen, ahead of
// earlier undecided slots. Without failpoint rewriting the marker is inert.
package mencius
