// Package check decides whether a recorded history of operations on a
// degradable object (package degradable) keeps the guarantee of its level:
// one checker per type and level, CounterLinearizable, CounterSequential,
// CounterWeak, and likewise for Register, Set, Map and Queue.
//
// # Histories
//
// A history is a slice of completed operations (CounterOp, RegisterOp[V],
// SetOp[E], MapOp[K, V], QueueOp[E]), each with its client (the index of the
// handle, which is also its replica) and its invocation and response
// timestamps in one clock (say, nanoseconds of a monotonic clock since the
// start), plus the finals: final[i] is what replica i read (Value, Read,
// Elements, Entries) after the object became quiescent and the replicas
// called Sync (nil finals check no quiescent state). One client's
// operations must not overlap; a client's program
// order is the order of its invocations. Every checker returns nil for a
// history that keeps the level, an error wrapping ErrViolation that names
// the operations at fault for one that does not, ErrUndecided when it could
// not decide (never a pass), and ErrBadHistory for a malformed history.
//
// # Linearizable
//
// Porcupine, through lincheck.Check, with lincheck's models: CounterModel,
// KVModel (the register, one key), SetModel (partitioned by element),
// MapModel (partitioned by key), PipeModel (the queue, unbounded). Updates
// return nothing here, so their outputs are left unknown, which the models
// accept while still applying the update. The finals are reads after
// everything. Exact within PorcupineTimeout.
//
// # Sequential
//
// One total order of all the operations must extend every client's program
// order and explain every result; the finals are each client's last read and
// must equal one another.
//
//   - Counter: exact in O(n log c) when every add has the same delta (a read
//     of v then sits after exactly v/delta adds, which gives each add a
//     window of positions, and earliest-deadline-first decides whether one
//     order fits every window); otherwise an exact search of interleavings.
//   - Register: exact in linear time for unique written values: every read
//     names its write, and the history is sequentially consistent if and
//     only if the orderings each client's program forces between writes
//     have no cycle.
//   - Set, Map: an exact search per element or key; sequential consistency
//     is not compositional, so this is necessary, not sufficient.
//   - Queue: an exact search over the whole history; when a short search
//     does not decide, a history that Porcupine finds linearizable passes (a
//     linearizable history is sequentially consistent).
//
// The searches are depth-first over (frontier, state), memoised, taking
// every enabled read at once; they are exponential in the number of
// clients and give up (ErrUndecided) beyond SearchBudget states, so keep
// the histories given to them small (a few clients, tens of operations
// each). Real time is not part of sequential consistency and is not
// checked.
//
// # Weak
//
// The visible set of a read is not observable, so the weak checkers check
// necessary conditions: validity (a read reflects only updates invoked
// before it returned), read-your-writes, monotonic reads, and, on the
// finals, convergence (equal at every replica) and that the common state is
// a merge of every update. Counter reads are checked against bounds (the
// reader's own adds plus the negative and the positive adds of others
// invoked by then), and so are the differences of a client's successive
// reads, which makes increment-only reads non-decreasing. The register and
// map checks are the write-order graph of the sequential register check,
// with validity and the final write last (for one key, a last-writer-wins
// register with Lamport timestamps and monotonic reads is sequentially
// consistent; the map's absent reads name no write and are checked more
// loosely). The set check follows observed-remove semantics per element;
// the queue check allows two clients to dequeue the same element
// (at-least-once) but no loss, no element dequeued twice by one client, and
// each producer's order at each consumer.
package check
