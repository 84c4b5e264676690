// Package clustertest holds the real-process cluster tests of the replicated
// key-value store: it builds the blossom binary, starts `blossom replica`
// processes on loopback with data dirs in a temp dir, runs a concurrent
// client workload through runner/kvclient while a nemesis kills (SIGKILL),
// pauses (SIGSTOP/SIGCONT) and restarts replicas and partitions their links
// through in-process TCP proxies, and then checks the whole history for
// linearizability (lincheck) and that no acknowledged write was lost.
//
// The package has no code of its own besides this comment: everything is in
// its tests. They are skipped under -short.
//
// # The binary
//
// The tests build ./cmd/blossom once per run into a temp dir, or use the
// binary named by the environment variable BLOSSOM_BIN. The sabotage test
// (build tag failpoint, run by `make test-sabotage`) needs a binary whose
// failpoint markers are rewritten: it builds one with the checkout's
// bin/failpoint-toolexec as the Makefile does (-p 1, GOCACHE and TMPDIR under
// .cache/), or uses the binary named by BLOSSOM_FAILPOINT_BIN.
//
// # Links
//
// Replica i listens for its peers on its own address, but the --peers list
// it is given names, for every other replica j, a proxy that forwards to j's
// address: one proxy per directed link i→j. The transport keeps one
// connection per pair, dialed by the lower id, so the pair {i, j} travels
// through the proxy i→j (i < j); cutting a pair cuts both directed proxies,
// which closes the connections they carry and refuses new ones until healed.
package clustertest
