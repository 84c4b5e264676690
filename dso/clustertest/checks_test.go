package clustertest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/blossom-dso/blossom/lincheck"
)

// TestCheckCount checks that the final-count check fails on a lost
// increment and on an increment counted that nobody made.
func TestCheckCount(t *testing.T) {
	for _, tc := range []struct {
		final, acked, unknown, lost int64
		fails                       bool
	}{
		{final: 10, acked: 10, unknown: 0},
		{final: 12, acked: 10, unknown: 3},
		{final: 13, acked: 10, unknown: 3},
		{final: 9, acked: 10, unknown: 3, lost: 1, fails: true},
		{final: 14, acked: 10, unknown: 3, fails: true},
		{final: 11, acked: 10, unknown: 0, fails: true},
	} {
		lost, err := checkCount("c", tc.final, tc.acked, tc.unknown)
		if lost != tc.lost || (err != nil) != tc.fails {
			t.Errorf("checkCount(final %d, acked %d, unknown %d) = %d lost, %v; want %d lost, failing %v",
				tc.final, tc.acked, tc.unknown, lost, err, tc.lost, tc.fails)
		}
	}
}

// errorsTB records the errors a check reports instead of failing.
type errorsTB struct {
	testing.TB
	errs []string
}

func (e *errorsTB) Helper() {}

func (e *errorsTB) Errorf(format string, args ...any) {
	e.errs = append(e.errs, fmt.Sprintf(format, args...))
}

// TestBarrierCheck checks that the barrier check passes complete rounds
// and fails a round that not every party crossed, a generation skipped, a
// failed await, and a departure before the round's last arrival.
func TestBarrierCheck(t *testing.T) {
	// record builds a barrier run of 3 parties from rounds of (arrival,
	// return) times per party, all awaits returning their round.
	record := func(rounds [][3][2]int64) *barrierRun {
		b := &barrierRun{key: "b", parties: 3, rec: lincheck.NewRecorder(), gens: make([][]int64, 3)}
		for g, round := range rounds {
			for p, at := range round {
				in := lincheck.BarrierInput{Name: "b", Parties: 3}
				a := b.rec.Invoke(p, in, at[0])
				in.Depart = true
				d := b.rec.Invoke(p, in, at[0])
				b.rec.Ok(a, nil, at[1])
				b.rec.Ok(d, lincheck.BarrierOutput{Generation: int64(g)}, at[1])
				b.gens[p] = append(b.gens[p], int64(g))
			}
		}
		return b
	}
	good := [][3][2]int64{{{0, 10}, {1, 10}, {5, 11}}, {{12, 20}, {13, 21}, {19, 20}}}
	for _, tc := range []struct {
		name  string
		b     func() *barrierRun
		fails string // a substring of the expected error, "" for none
	}{
		{"complete rounds", func() *barrierRun { return record(good) }, ""},
		{"a party missing from a round", func() *barrierRun {
			b := record(good)
			b.gens[2] = b.gens[2][:1]
			return b
		}, "crossed 1 rounds"},
		{"a generation skipped", func() *barrierRun {
			b := record(good)
			b.gens[1][1] = 2
			return b
		}, "returned generation 2, want 1"},
		{"a failed await", func() *barrierRun {
			b := record(good)
			b.errs = []string{"party 0, await #3: canceled"}
			return b
		}, "canceled"},
		{"a departure before the last arrival", func() *barrierRun {
			// Party 2 arrives in round 1 after the others returned.
			return record([][3][2]int64{{{0, 10}, {1, 10}, {5, 11}}, {{12, 20}, {13, 21}, {22, 23}}})
		}, "not linearizable"},
	} {
		tb := &errorsTB{TB: t}
		_, verdict := tc.b().check(tb)
		got := strings.Join(tb.errs, "\n")
		switch {
		case tc.fails == "" && (len(tb.errs) > 0 || verdict != lincheck.Ok):
			t.Errorf("%s: check failed (%s): %s", tc.name, verdict, got)
		case tc.fails != "" && !strings.Contains(got, tc.fails):
			t.Errorf("%s: check reported %q, want an error containing %q", tc.name, got, tc.fails)
		}
	}
}
