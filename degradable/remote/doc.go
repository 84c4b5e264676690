// Package remote holds the client side of degradable objects on the DSO:
// per-client segments of weak objects, which apply their client's updates
// locally at once and send them to the object's weak replicas in the
// background, so that an update costs no round trip: a counter's segment
// (Counter) sends the sum of its additions; a set's (Set, an
// observed-remove set) and a queue's (Queue, per-writer queues, with a
// single-reader variant) send batches of their updates, flushed by one
// Flusher per client for all its sets and queues; a bounded timeline's
// (Timeline, the newest posts of a feed on a Map of max-merged per-writer
// slots, with post ids from a Clock) its new posts. A Syncer flushes and
// pulls a client's segments in the background, so that reads are served
// from the segments' copies (the Retwis of degradable-bench --target dso,
// whose connections each keep one copy for their goroutines).
//
// The objects live on the DSO as persistent objects of the weak level
// (client.Persistent.At(degradable.Weak), replicated by the weak-merge
// strategy beside the cluster's protocol): every replica executes every
// update sent to any replica, once, in an order that differs between
// replicas, and the weak table's objects (dso/replicated) make the
// updates commute: a counter's flush carries its segment's (id, number)
// and counts once; a set's add carries a tag and its remove the tags it
// observed; a queue's item carries its writer and number and its removal
// names it. Replicas that executed the same updates hold equal objects.
//
// # Histories
//
// A client is one segment (a segment is safe for concurrent use, but the
// guarantees speak of one client: give each thread its own segment). Its
// updates are Counter.Add, Set.Add and Remove, Queue.Enqueue and Dequeue;
// its reads are Counter.Value, Set.Contains and Members, Queue.Len,
// Elements and Dequeue (which reads the front, then removes it).
//
// # Guarantee
//
// A segment serves reads from its view: the object as the replica that
// answered the segment's last pull held it (the merge of every update
// that replica had executed, the client's acknowledged ones included),
// with the client's updates not yet acknowledged applied on top. A pull
// happens after a flush, on a segment's first read (sets, queues) and
// every PullEvery reads. Hence, while the client's calls reach the same
// replica (the object's owner, while it answers), every read returns
// merge(V) for a set V of issued updates such that V holds every update
// of the client before the read (read-your-writes) and the V of every
// earlier read of the client (monotonic reads: a replica's executed set
// only grows); once every segment has flushed and the updates have
// spread, every replica, and so every pull, returns the merge of every
// update (convergence). A client that fails over to another replica may
// see a smaller executed set there until the updates spread. The merge
// is, per type:
//
//   - Counter: the sum of the additions in V.
//   - Set: an observed-remove set: e is in merge(V) if V holds an add of e
//     that no remove in V observed; a remove observes the adds of e in its
//     client's view when it is called (its own included), so an add it did
//     not observe (concurrent) wins.
//   - Queue: the items enqueued in V and not removed by a dequeue in V, in
//     (stamp, writer, number) order (dso.CompareQueueItems, the replicas'
//     order too), so each writer's items in its order; a
//     dequeue removes the item it returned, the front of its client's view.
//     Two clients that dequeue concurrently may return the same item
//     (at-least-once); no item is lost (an item is removed only by a
//     dequeue that returned it); one client never returns an item twice
//     and returns each writer's items in that writer's order. With
//     SingleReader, one segment alone dequeues (a linearizable claim), and
//     every item is returned at most once.
//
// Every update counts once. A flush that fails has an unknown outcome (a
// replica may have applied it before the answer was lost), so the segment
// sends the same flush again, unchanged, until a replica acknowledges it,
// before any later update: a counter's flush carries the segment's id
// (random, 64 bits) and the flush's number, and every replica applies a
// (segment, number) once; a set's and a queue's batches are idempotent
// (an add under a tag, an item under its number, a removal by name).
// Flushes fail only when no replica of the object answers before the
// flush's context ends.
//
// Package degradable/check's SetWeak and QueueWeak check recorded
// histories of these segments (the tests here, on a cluster with a
// replica crashed and restarted midway).
package remote
