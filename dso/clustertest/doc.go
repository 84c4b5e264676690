// Package clustertest holds the real-process tests of persistent DSO
// objects: it builds the blossom binary, starts `blossom server` processes
// with --protocol, --rf and --data-dir on loopback, and drives them through
// the Go client (client.Client.Persistent) and the command line while a
// seeded nemesis kills (SIGKILL) and restarts nodes, with the same flags and
// data dir, and freezes them (SIGSTOP, then SIGCONT).
//
// TestPersistentFaults runs, for every replication protocol on 3 nodes with
// rf = 3, and for paxos and atlas on 5 nodes and wbcast on 6 (two disjoint
// groups) with rf = 3, a workload of client sessions (one client.Client
// each) that increment and read persistent AtomicLongs and put and read
// entries of a persistent Map (and, under the multicast protocols,
// increment two counters in one multi-object call), together with the
// parties of a persistent CyclicBarrier that await it in rounds, while the
// nemesis kills and freezes one node at a time. The nodes snapshot their
// replicas every few hundred records, so restarted replicas recover from
// snapshots too. At the end, with every node up, it checks that no
// acknowledged increment is lost (for each counter, acknowledged ≤ final ≤
// acknowledged + unknown), that Porcupine (package lincheck) finds the
// counter, map and barrier histories linearizable, and that every barrier
// generation was returned to all of its parties, and that every node
// executes a call submitted at it (no replica left behind for good); then
// it kills every node at once, restarts them all, and checks that the
// objects are unchanged and every node serves. It logs, per scenario, the
// calls acknowledged and of unknown outcome, the increments lost, the
// verdicts and the barrier rounds. Skeen runs with paced sessions: it has
// no state transfer, and a replica killed under the unpaced workload falls
// behind for good (the unpaced scenario is skipped, naming that
// limitation; BLOSSOM_CLUSTERTEST_KNOWN=1 runs it).
//
// TestParkedAwaitsSurviveFaults parks barrier awaits on the barrier's owner
// and freezes, kills and restarts the owner before the last party arrives;
// a round must still be crossed by all its parties, and awaits given up or
// of a closed client must not count.
//
// TestShellFlow runs the command-line flow of persistent objects: three
// servers, `blossom counter --persistent -n tally increment` through
// BLOSSOM_ENDPOINTS, kill -9 of one server, more increments, restart, and
// the final tally, under atlas and paxos.
//
// TestPmemSnapshotsSurviveKill9 runs three paxos nodes with --storage
// pmem:PATH and --rf 3, whose replicas keep their snapshots in the node's
// heap (pmem/snapstore) and their logs in the data dir; it kills -9 every
// node at once, checks that each heap holds its group's snapshot and no
// snapshot file was written, restarts them, and requires each node to
// recover from that snapshot plus its log and the counters to hold every
// acknowledged increment; a foreign file in place of a heap, and a deleted
// heap (the compacted log then lacks its first records), stop a node from
// starting, with an error naming the file.
//
// The package has no code of its own besides this comment: everything is
// in its tests. The cluster tests are skipped under -short. They build
// ./cmd/blossom once per run into a temp dir, or use the binary named by
// the environment variable BLOSSOM_BIN. The nemesis and the workload are
// seeded from BLOSSOM_CLUSTERTEST_SEED if set (else from the clock); the
// seed is logged, and printed again on failure with the command that
// reruns the failed test with it.
//
// Ports: each node needs a client port P and a replica port P plus
// --peer-port-offset, one offset for all nodes; the harness asks
// internal/loopback for 2n free ports and uses them when they form n pairs
// at one offset.
package clustertest
