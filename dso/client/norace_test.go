//go:build !race

package client_test

// raceEnabled reports a -race build, whose tests run several times slower.
const raceEnabled = false
