//go:build race

package server_test

// raceEnabled reports a -race build, whose instrumentation allocates and
// runs several times slower.
const raceEnabled = true
