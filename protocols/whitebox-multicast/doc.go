// Package wbcast implements white-box atomic multicast (Gotsman, Lefort,
// Chockler, "White-Box Atomic Multicast", DSN 2019), registered as "wbcast".
// It lives in protocols/whitebox-multicast, the folder DESIGN.md names; the
// package name cannot carry the dash, so the package is wbcast.
//
// # Model
//
// The replicas form disjoint groups of 2f+1 (protocols.Config.Groups); the
// keys of a command name its destination groups (Config.GroupOf), and only
// the members of those groups take part in ordering it and deliver it
// (genuineness). Each group has a leader per ballot; timestamps are (clock,
// group) pairs and ties between equal global timestamps break on command ids.
//
// # Normal case (3 message delays to delivery at a leader)
//
// The replica a client submits to sends Multicast to the leader of every
// destination group. A leader gives the message a local timestamp from its
// clock and sends Accept to every member of every destination group. A
// member that holds an Accept of every destination group computes the global
// timestamp (the max), raises its clock to it, persists, and sends AcceptAck
// to the destination leaders. A leader commits once a majority of every
// destination group acknowledged the same ballot vector — one Paxos phase 2
// per group, in parallel — and delivers committed messages in global
// timestamp order once no pending message of its group has a smaller local
// timestamp (Skeen's rule). It tells its followers with Deliver, numbered by
// position; followers deliver in position order and catch up through
// Heartbeat / CatchUpReq.
//
// # Leader change
//
// A member that hears nothing from its leader for SuspectTicks (staggered by
// its rank after the leader) sends NewLeader with a higher ballot; members
// persist the ballot and answer with their state. With a majority, the
// candidate adopts the longest delivery sequence reported and merges the
// accepted records of the replies whose adopted ballot (aballot) is the
// highest, per message and destination group taking the entry of the
// highest ballot. This is the safer rule of PROTOCOL-NOTES §3.3, not the C
// code's (which effectively merges only one reply). It sends the result
// with the deliveries some acknowledger lacks in NewLeaderSync; members
// persist, forget their own-group acceptances of older ballots and answer;
// with a majority the candidate leads. It then re-proposes every undelivered
// message it knows (recovered ones keep their local timestamp) and asks the
// other destination groups to re-send their Accept (a Multicast, the C
// code's REACCEPT). A group that already delivered the message re-sends its
// Accept with its recorded local timestamp and its current ballot, so a
// group that lost track of it can still commit it at the same timestamp.
// Messages that were only proposed are re-multicast by the replica they
// were submitted to, and by the leaders of the other destination groups.
//
// # Durability and garbage collection
//
// A process persists its ballot before NewLeaderAck, the adopted state
// before NewLeaderSyncAck, every accepted message before AcceptAck, and
// every delivery; after a restart it replays its deliveries (executing them
// again, in order) and never resumes leading an old ballot. A delivered
// message's leader bookkeeping is dropped; the process keeps its command,
// timestamps and ballots (done) so that it can answer a late Accept of
// another group, until compaction forgets it.
//
// # Compaction
//
// Replica implements protocols.Compactor. From its first Checkpoint on, a
// process announces its delivery progress (Progress: its count of
// deliveries and the (global timestamp, id) of the last) to every replica,
// when it changed and SuspectTicks passed, and every 4*SuspectTicks anyway.
// A process that never compacts sends none, so runs without compaction are
// unchanged. At each Checkpoint the process prunes, then encodes:
//
//   - The delivery sequence is cut at the smallest count that every member
//     of its group announced (and never past what it executed). Those
//     deliveries are in every member's state machine, so no member asks for
//     them again (CatchUpReq, NewLeader, SyncReq, NewLeaderSync); positions
//     stay absolute. A member that announced nothing, such as one down for
//     good, pins the sequence: without state transfer it could not catch
//     up otherwise.
//   - A delivered message (done) is forgotten once, for every destination
//     group, a majority of the group announced a delivery at or after it
//     in the order of (global timestamp, id). Each group delivers in that
//     order (Skeen's rule), so a majority of every destination group then
//     holds the delivery durably, every future leader of those groups
//     adopts it (the longest sequence of a majority), and no group orders
//     the message again: none will ask for this group's ACCEPT, which is
//     what done served. Forgetting earlier is unsafe (a group still
//     ordering it after a leader change would get a fresh timestamp from
//     this group; the sabotage test pruneOnOwnGroupOnly shows it).
//   - The id of a forgotten message stays as a tombstone: a late copy of
//     it (a retransmitted Accept or Multicast, a client's retry, a stale
//     NewLeaderAck record) is ignored, not ordered again. If one group
//     ordered such a copy afresh while another still remembered it, their
//     answers would carry different timestamps and the copy would block
//     the first group forever. Tombstones are the documented retention:
//     the ids of the last maxTombstones (65536) forgotten messages are
//     kept. A copy of a message delayed past that many later forgotten
//     messages would be ordered again: executing it again is prevented by
//     the replica core's client sessions, but mixed with a group that
//     still remembers it, it could stall its group.
//
// So memory and the checkpoint are bounded by the messages in flight, the
// deliveries some member lacks, and the tombstones. A restart from a
// checkpoint executes only the deliveries after the ones the checkpoint
// counts as executed (the state machine snapshot holds those).
//
// The checkpoint (format 1) is: the byte 1; the current and the adopted
// ballot; the clock; base, the count of deliveries dropped; the count of
// deliveries executed; the global timestamp and id of the last delivery;
// the deliveries after base; the delivered messages kept (each: this
// group's local timestamp, then a Record of the command, its local
// timestamps and ballots per destination group, zero where none is known,
// and its global timestamp); the undelivered messages as Records (an own
// group's ACCEPT only if the message is accepted from every group, as in an
// accept record; the other groups' ACCEPTs as if received again); the
// tombstones, oldest first. Replay installs the checkpoint, then the
// records after it; a malformed checkpoint is an error.
package wbcast
