// Package weak is the replication strategy of the weak level of degradable
// objects (protocol "weak", contract protocols.Weak): effector broadcast
// with last-writer-wins arbitration and anti-entropy. It is leaderless and
// waits for no peer: a replica answers every command on its own.
//
// # Merge mode
//
// Protocol "weak-merge" (NewMerge, contract protocols.Merge) is the same
// broadcast, delivery, anti-entropy and durability, but a replica executes
// every update it delivers, once, in its origin's sequence order, whatever
// its stamp: no update is overwritten, so every update counts everywhere.
// It is for state machines whose updates commute (the weak level of the
// DSO's persistent objects: additions to counters, numbered counter
// flushes, an observed-remove set's tagged adds and removes, per-writer
// queue items and their removals, merges of map entries with a
// commutative combiner; dso/replicated's weak table), whose replicas
// then converge to one state once they have executed the same updates.
// Exactly-once per replica relies on the replica core's session floors
// keyed by command id: a client's retry of an update at another replica is
// a second broadcast of the same id, which the core of every replica
// executes once.
//
// # Updates and reads
//
// The strategy needs protocols.Config.ReadOnly (New refuses a Config
// without it), and it is not offered for the DSO's persistent objects,
// whose calls are not blind writes (blossom refuses --protocol weak there).
//
// A read-only command (protocols.Config.ReadOnly) executes at once against
// the local state. An update gets a stamp (Lamport time, origin) above
// every stamp the replica has seen, the next sequence number of its
// origin, is persisted, executed locally and sent to every peer (Update).
// Every replica delivers the updates of each origin in sequence order
// (buffering up to maxAhead ahead of a gap) and executes a delivered
// update only if its stamp is above the stamp of the last update executed
// on its key (the command's first key): an older one is overwritten under
// last-writer-wins and is skipped. The outcome at every replica is
// therefore the update with the greatest stamp per key, whatever the
// delivery order, so updates must be blind writes of one key (a put, a
// register write); commutative updates such as increments would need every
// update executed, which this strategy does not do.
//
// The commands, reads included, are executed with Command.Acked zero: the
// replica core's exactly-once floors assume that a client's commands on a
// key execute in its order, which a client that moved to another replica
// breaks here (its read's watermark would make the core skip its earlier
// update that arrives later as executed); the
// sessions then keep every executed sequence number (memory grows with
// the commands of each key's clients, up to MaxSessionsPerKey clients).
//
// # Anti-entropy
//
// Every aeTicks ticks a replica sends each peer a Digest: for every origin,
// the length of the prefix of its updates delivered here. A peer that has
// more of an origin's updates answers with up to aeBatch of them. Updates
// thus reach every live replica once the network heals, also those of an
// origin that crashed, and a restarted replica catches up.
//
// # Durability
//
// Every delivered update, its own and its peers', is persisted before it is
// executed, so an update whose answer left was durable first. After a crash
// the replica replays its records in order (delivering each again), which
// rebuilds its state, its clock and its delivered prefixes; a lost tail is
// refetched by anti-entropy. The last-writer-wins log is never compacted.
//
// # Compaction (merge mode)
//
// A merge replica (MergeReplica) notes, from each peer's Digests, how many
// of every origin's updates that peer delivered (a Digest leaves only once
// the deliveries it counts are durable at its sender, so a restarted peer
// never has fewer). An update every replica delivered is stable: no peer
// will ask for it again, and the replica forgets it. Its checkpoint
// (protocols.Compactor) holds the delivered count per origin, the Lamport
// clock and the updates not yet stable; with the state machine's snapshot
// it replaces every record before it, and a replica restarted from it
// executes none of those updates again, serves the unstable ones to its
// peers and refetches what it lacks by anti-entropy. While every replica
// is up and exchanging digests the log holds only the updates of the last
// few anti-entropy rounds; a replica that stays down holds back the
// compaction of what it lacks. The Digests of peers are trusted: a forged
// one that overstates a peer's prefix makes the others forget updates that
// peer still needs.
//
// # Guarantees
//
// Every read returns the value of an issued update; while a client stays at
// one replica incarnation it reads its own writes and its reads never go
// back in stamp order; after the updates stop and the network heals, every
// live replica holds, per key, the update with the greatest stamp among
// those delivered anywhere, so no acknowledged update is lost unless one
// with a greater stamp overwrote it. A client that moves to another
// replica may see older values there, and its later write may get a
// smaller stamp than its earlier one and lose to it (sessions do not
// follow a client across replicas).
//
// Hostile input: an Update from a node that is not a peer, with a stamp
// not of its origin, a sequence number beyond maxAhead, or a Lamport time
// more than maxClockAhead beyond the receiver's is dropped; a Digest with
// the wrong number of entries is dropped.
package weak
