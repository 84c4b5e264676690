// Package skeen implements Skeen's atomic multicast with every group
// replicated by Multi-Paxos — the classic baseline against which white-box
// multicast (package wbcast) is measured — registered as "skeen".
//
// Each process embeds a paxos.Replica over the members of its group (package
// paxos used as a library: no second Paxos). Its Env wraps the Paxos messages
// in Pax, passes the Paxos records through as the process's own (Skeen keeps
// no other durable state) and turns Paxos executions into the steps of a
// deterministic state machine:
//
//   - A submitted command is sent (Multicast) to every destination group at
//     once; each group proposes it to its own log.
//   - The first log entry of a message gives it the group's next local
//     timestamp (clock, group); the group's leader sends it (Stamp) to the
//     other destination groups, which propose it to their logs.
//   - The log entry that completes the set of destination timestamps fixes
//     the global timestamp (their max) and moves the clock past it: that is
//     the group's agreement on the clock update.
//   - A message is delivered once its global timestamp is fixed and no
//     message still waiting for timestamps has a smaller local timestamp
//     (Skeen's rule); ties break on command ids.
//
// Without contention a leader delivers 6 message delays after the client
// sends: the Multicast, a Paxos round trip for the local timestamp, the
// Stamp, and a Paxos round trip for the final timestamp. Since the state is
// a function of the log, a restarted process rebuilds it when Paxos
// re-executes the log. A log entry's command id packs the recorded group
// into the low byte of the client id, so groups are limited to ids below
// 256 and client ids to 2^56.
package skeen
