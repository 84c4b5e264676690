// Package simnet is Blossom's deterministic discrete-event network
// simulator. It runs n replicas of a registered protocol (protocols.New) on
// a virtual clock in microseconds, drives them with closed-loop key-value
// clients, injects faults, and returns metrics, a trace digest and the
// operation history for lincheck.
//
// # Use
//
// The caller imports the protocol packages it needs (for their init
// registration) and runs:
//
//	import _ "github.com/blossom-dso/blossom/protocols/paxos"
//
//	res, err := simnet.Run(simnet.Config{
//		Protocol: "paxos", Nodes: 5, Clients: 20, Ops: 5000, Keys: 10,
//		Conflict: 10, Reads: 50, Size: 16,
//		Latency: "planet:gcp", Faults: "swarm", Seed: 7,
//	})
//	// err wraps ErrConfig for a bad Config; other errors name the seed.
//	if err := res.OrderError(); err != nil { ... }     // order contract
//	if err := res.LivenessError(); err != nil { ... }  // all ops completed
//	lin := res.CheckLinearizable(time.Minute)          // lincheck.CheckKV
//	if err := lin.Err(); err != nil { lin.WriteHTML("report.html") }
//
// Result also carries the metrics (Overall, PerSite, Throughput,
// MessagesPerCommand, FastPaths, SlowPaths, PerNode), the fault log, the
// history and the trace Digest.
//
// # Determinism
//
// A run has one event heap, ordered by virtual time and then by the order in
// which events were scheduled, and one random source seeded by Config.Seed
// (PCG from math/rand/v2). Every other stream — the network's delays and
// faults, the workload, the fault plan, each replica's Env.Rand (one per
// incarnation) — is derived from it in a fixed order, and no Go map is
// iterated where its order could reach the run. The same seed, Config and
// code therefore give a bit-identical run, and Result.Digest (FNV-1a over
// every delivery, execution, crash and client completion) is equal.
//
// # Persistence
//
// Env.Persist appends a record to the replica's log. When a call (Submit,
// Step or Tick) that persisted returns, a sync starts and completes after
// Config.DiskDelay; the call's records are then durable. A send leaves at
// once unless the current call persisted before it or an earlier sync is
// still outstanding: then it waits for the newest outstanding sync, so no
// message ever overtakes a record persisted before it was sent. A
// crash-restart keeps every record (a process crash; the OS cache survives)
// and drops the held sends; a crash with lost tail also drops the records
// whose sync had not completed. A restarted replica is a new protocol
// instance with Config.Recovered holding copies of the remaining records; its
// state machine starts empty and its executions count as a new incarnation.
//
// # Time
//
// Every replica is ticked every Config.TickInterval, with a seeded phase per
// incarnation. The default interval is max(1 ms, greatest one-way delay), so
// the protocols' SuspectTicks (10) span five greatest round trips.
// Self-sends are delivered with zero delay, after the current call.
//
// # Faults
//
// Faults (FaultSpec) are active during the fault window only: message loss,
// duplication and reordering apply to messages between distinct replicas,
// partitions and clogs heal, at most F replicas are down at any instant and
// at most F crash-stop in total. When the window closes every restartable
// replica restarts, so a live protocol must complete every later operation;
// Result.AllDone and Result.LivenessError report whether it did.
// Client-to-replica traffic suffers no network faults, but a client whose
// replica is down times out, records the outcome as unknown and moves on to
// the next replica.
//
// # Workload
//
// Closed-loop clients are placed round-robin at the replicas' sites and each
// submits to the replica at its site; the client-to-replica delay is the
// site's intra-site delay (planet models: half the diagonal RTT; others:
// 1µs). A client issues its next operation 1µs after the previous one
// completed, so that its operations never share a timestamp. Each replica
// applies executed commands to its own key-value map, and the replica a
// client is waiting on answers it when it executes the client's command.
//
// # Checks
//
// Result.OrderViolations is the order check (no command executed twice in an
// incarnation; per key, the executions of all incarnations agree on one
// order) and Result.CheckLinearizable checks the history against
// lincheck.KVModel, with lincheck.CheckKV's polynomial-time checker since
// every put writes a unique value (Porcupine against lincheck.MultiKVModel
// for multicast runs).
//
// # Atomic multicast runs
//
// Config.Groups > 0 makes a multicast run (multicast.go): groups of 2F+1
// replicas, keys named "g<group>/<name>" (GroupOf), commands addressed to
// Config.Dest groups, multi-group commands writing one key per group, and
// clients submitting to the closest replica of a destination group. After
// the clients finish the run drains, then Result.MulticastViolations reports
// integrity, agreement, per-group order and acyclic order, and
// Result.LeaderDeliveryLatency the mean time from a client's send to the
// first delivery at a destination group's leader.
//
// # Memory across runs
//
// A run's largest buffers that no Result refers to (recycle.go) serve the
// runs after it: its execution lists and the scratch arrays of its checks,
// and the memory of a protocol with a Release method (paxos.Replica's log
// pages and command chunks), which a run calls on every replica up at its
// end. A recycled buffer starts empty or cleared, so no run's outcome
// depends on another's; runs under a Scheduler keep theirs.
package simnet
