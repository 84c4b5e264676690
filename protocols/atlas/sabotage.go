package atlas

import "github.com/pingcap/failpoint"

// The failpoint markers live in this file, named to sort after every other
// file of the package: failpoint-toolexec mishandles the files that follow a
// rewritten one in a compile.

// fastThreshold is the number of fast-quorum members that must report a
// dependency for the fast path: f. The failpoint "fastThresholdOneLess"
// plants a bug for the sabotage tests: f−1, so a recovery without the
// coordinator may miss a dependency of a fast-path commit.
func fastThreshold(f int) int {
	t := f
	failpoint.Inject("fastThresholdOneLess", func() { t = f - 1 })
	return t
}

// skipLocalConflicts reports whether the failpoint "skipLocalConflicts" is
// on: a planted bug for the sabotage tests, where a fast-quorum member
// reports only the coordinator's past and hides the conflicts it knows.
func skipLocalConflicts() bool {
	skip := false
	failpoint.Inject("skipLocalConflicts", func() { skip = true })
	return skip
}

// ackBeforePersist reports whether the failpoint "ackBeforePersist" is on:
// a planted bug for the sabotage tests, where a replica answers MCollect
// and MConsensus of another coordinator without persisting what it
// answered for, so a crash forgets a vote that a quorum counted.
func ackBeforePersist() bool {
	skip := false
	failpoint.Inject("ackBeforePersist", func() { skip = true })
	return skip
}
