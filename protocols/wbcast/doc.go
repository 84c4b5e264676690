// Package wbcast implements white-box atomic multicast (Gotsman, Lefort,
// Chockler, "White-Box Atomic Multicast", DSN 2019), registered as "wbcast".
// DESIGN.md calls its folder protocols/whitebox-multicast; a Go package path
// element cannot carry that dash, so the package lives in protocols/wbcast.
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
// timestamps and ballots so that it can answer a late Accept of another
// group. Dropping those too needs a notice that every destination group
// delivered, which is not implemented.
package wbcast
