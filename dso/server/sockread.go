package server

import "sync/atomic"

// plainSocketReads, when set (by the tests and benchmarks only), makes
// new connections read through the net.Conn as before sockReader, for a
// comparison within one process.
var plainSocketReads atomic.Bool
