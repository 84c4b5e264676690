// Package degradable provides degradable objects in one process: shared
// counters, registers, sets, maps and queues whose consistency level is
// chosen per object, at creation, while the signature stays the same. This
// follows the degradable objects of the CloudButton deliverable D4.3 (§6.1,
// task T4.2): a hierarchy of object types with one signature and weaker
// post-conditions at each degradation level, where a weaker level needs less
// synchronisation and so runs faster and scales better.
//
// # Objects, replicas and handles
//
// Each constructor (NewCounter, NewRegister, NewSet, NewMap, NewQueue) takes
// a Level and a number of replicas and returns one handle per replica; the
// interface (Counter, Register, Set, Map, Queue) is the same at every level.
// A replica is a copy of the object's state; here replicas are memory shared
// by goroutines, one per handle. A handle is one client's session at its
// replica and must not be used by two goroutines at once. Handle.Sync
// publishes a replica's updates and applies the others'.
//
// # Histories
//
// A history is the set of operations called on the handles of one object:
// each with its client (handle), invocation and response instants,
// arguments and result. A client's program order is the order of its calls.
// Updates are Counter.Add, Register.Write, Set.Add and Remove, Map.Put and
// Delete, Queue.Enqueue and Dequeue; the other methods are reads. The
// sequential specification of each type is the obvious one (a counter
// starts at 0 and adds; a register starts at V's zero value; a set and a map
// start empty; a queue is FIFO and Dequeue on an empty queue returns false).
// The object is quiescent once every update invoked has returned.
//
// # Linearizable
//
// There is one copy, under a lock or in an atomic word. Guarantee: there is
// a total order of all the operations of the history such that (1) an
// operation that responds before another is invoked comes first, and (2)
// every operation returns what the sequential specification returns when
// the operations are applied in that order from the initial state. Every
// operation takes effect atomically between its invocation and its response.
//
// # Sequential
//
// Every update is appended, under one lock (the sequencer), to one log;
// each replica applies the log in order into its own copy of the state and
// serves reads from it (the counter's log entries carry the running sum, so
// a replica applies a run of them in one step). A replica is lazy: before a read it applies the log
// up to its client's own last update, and up to the end of the log only
// when a pull is due (every PullEvery operations) or on Sync, so a read may
// miss other clients' recent updates. A Dequeue waits until its replica has
// applied it, to learn its result. Guarantee: there is a total order of all
// the operations such that (1) it extends every client's program order, (2)
// every operation returns what the sequential specification returns in that
// order, and (3) an update that responds before another update is invoked
// comes first (the sequencer's order). Reads are monotonic and
// read-your-writes, as (1) and (2) imply. Quiescence: after Sync, a
// replica's reads reflect every update that returned before Sync was called.
//
// # Weak
//
// Each replica applies its own client's updates to its own state at once and
// keeps a per-writer state that the others merge: a slot holding the net sum
// of its adds for the counter, its latest write for the register (both
// published when the replica pulls), a log of effectors for the set, map and
// queue (published at once). Every PullEvery operations, and on Sync, a
// replica pulls: it merges the other replicas' published state into its
// own (the counter keeps two cadences: it publishes its slot every
// PullEvery adds and pulls every PullEvery reads, so that an add never
// reads the slots the other writers keep writing). Propagation happens on these pulls, with no background goroutine; a
// replica whose log grows long pushes its oldest entries to the replicas
// that have not pulled them, then drops them. Guarantee: every read by
// client c returns merge(V) for a set V of updates, its visible set, such
// that
//
//   - V holds only updates invoked before the read responds (validity);
//   - V holds every update of c before the read in c's program order
//     (read-your-writes);
//   - V holds the visible set of every earlier operation of c (monotonic
//     reads);
//   - V holds, of each writer's updates, a prefix of that writer's program
//     order;
//   - after quiescence, once every replica has called Sync, a replica that
//     calls Sync again has every update in its visible set, so all of them
//     then return the same (strong eventual consistency: replicas with equal
//     visible sets have equal states).
//
// The merge is, per type:
//
//   - Counter: the sum of the deltas in V (a PN-counter, one slot per
//     writer holding its net sum; with IncrementOnly, a G-counter).
//   - Register: the value of the write in V with the greatest stamp, V's
//     zero value if none. A stamp is (Lamport time, replica), and a write's
//     time exceeds the time of every write in its writer's visible set.
//   - Set: an observed-remove set: e is in merge(V) if V holds an add of e
//     that no remove in V observed; a remove observes the adds of e in its
//     own visible set. An add wins over a concurrent remove.
//   - Map: per key, last writer wins as for the register, a delete being a
//     write of a tombstone (tombstones are never collected in this version).
//   - Queue: the elements of the enqueues in V in stamp order (so each
//     writer's elements in its order), less those removed by the dequeues
//     in V. A dequeue removes and returns the first element of its own
//     visible queue, so two replicas that dequeue concurrently may return
//     the same element (at-least-once); no element is lost, as every
//     element removed anywhere was returned by some dequeue.
//
// # Restricted variants
//
// IncrementOnly restricts a counter to Add(1); any other delta returns an
// error wrapping ErrIncrementOnly and has no effect. At the linearizable
// level the restriction allows a cheaper implementation: one slot per
// replica, summed by a read (a collect of unit increments is linearizable),
// instead of one word that every add contends for; what that buys depends
// on how many cores contend (BenchmarkCounter measures it). At every level
// it makes the value non-decreasing.
//
// # Checkers, replication strategies, workloads, the DSO
//
// Package degradable/check checks recorded histories against each level.
// The weaker levels also exist as replication strategies behind the SMR
// interface, with a declared order contract that the simulator checks:
// protocols/sequential (Paxos-ordered updates, local reads),
// protocols/weak (last-writer-wins effector broadcast) and its merge mode
// "weak-merge" (every update executed once at every replica, for
// commuting state machines). Package degradable/workload runs the
// per-type contention mixes and Retwis over these objects (blossom
// degradable-bench).
//
// On the DSO, a persistent object's level is chosen at its first call
// (client.Persistent.At, the object commands' --level) and kept: the
// linearizable level is the cluster's protocol, the sequential level the
// sequential strategy and the weak level weak-merge, each an instance per
// replica group (runner.HostConfig.Levels, dso/replicated for what each
// level's table offers: the weak one only the updates that commute).
// Package degradable/remote gives weak counters, sets (observed-remove)
// and queues (per-writer, with a single-reader variant) per-client
// segments, so that an update costs no round trip (blossom
// degradable-bench --target dso), and bounded Retwis timelines segments
// too; on the DSO a set's remove and a queue's dequeue carry what their
// caller observed, prepared at the origin (dso/client,
// degradable/remote), so that every weak replica applies the same
// effect. Package degradable/workload's Sim runs the mixes and Retwis in
// the simulator over each level's strategy (degradable-bench --target
// sim). Not yet: in the simulator the weak queue is not offered.
package degradable
