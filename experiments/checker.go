package experiments

import (
	"fmt"
	"strconv"
	"time"

	"github.com/blossom-dso/blossom/lincheck"
	"github.com/blossom-dso/blossom/simnet"
)

func init() { Register(checkerTime) }

// checkerTimeout bounds one Porcupine check: a history it cannot decide in
// time is recorded with its verdict (timed_out 1) and the time spent.
const checkerTimeout = 60 * time.Second

// checkerTime measures the wall time of the two linearizability checkers of
// package lincheck on the same simulator history: the polynomial-time
// checker of unique-value key-value histories (lincheck.CheckUniqueKV) and
// Porcupine (lincheck.Check with lincheck.KVModel), by history size.
var checkerTime = &Experiment{
	Name:   "checker",
	Title:  "Linearizability check time by history size: lincheck.CheckUniqueKV vs Porcupine",
	Paper:  "– (Blossom's own checkers; Porcupine: Athalye, 2017)",
	Params: []string{"ops", "checker"},
	Points: func(s Size) []Point {
		sizes := []string{"1000", "2000", "4000", "8000"}
		if s == Full {
			sizes = []string{"1000", "2000", "4000", "8000", "16000", "32000", "64000"}
		}
		return grid([]string{"ops", "checker"}, sizes, []string{"unique", "porcupine"})
	},
	Reps: func(s Size) int {
		if s == Full {
			return 5
		}
		return 3
	},
	Measure: func(p Point, rep int, _ Size) ([]Metric, error) {
		ops, _ := strconv.Atoi(p.Get("ops"))
		// 20 clients contending for 5 keys half of the time: Porcupine's
		// hard case (many concurrent operations per key).
		res, err := simnet.Run(simnet.Config{
			Protocol: "paxos", Nodes: 3, Clients: 20, Ops: ops, Keys: 5, Conflict: 50, Reads: 50,
			Latency: "constant:1", Faults: "none", Seed: uint64(rep + 1),
		})
		if err != nil {
			return nil, err
		}
		hist := res.Operations()
		var r lincheck.Result
		switch p.Get("checker") {
		case "unique":
			r = lincheck.CheckUniqueKV(hist, checkerTimeout)
		case "porcupine":
			r = lincheck.Check(lincheck.KVModel, hist, checkerTimeout)
		default:
			return nil, fmt.Errorf("unknown checker %q", p.Get("checker"))
		}
		timedOut := 0.0
		switch {
		case r.Verdict == lincheck.Unknown && r.Elapsed >= checkerTimeout:
			timedOut = 1
		case r.Verdict != lincheck.Ok:
			return nil, fmt.Errorf("seed %d: %s: verdict %s on a fault-free history: %v", rep+1, p.Get("checker"), r.Verdict, r.Err())
		}
		return []Metric{
			{"check_ms", float64(r.Elapsed.Microseconds()) / 1000}, {"history_ops", float64(len(hist))},
			{"timed_out", timedOut},
		}, nil
	},
	Figure: Figure{
		Title: "Linearizability checkers: time by history size", X: "ops", XLabel: "operations in the history",
		Y: "check_ms", YLabel: "check time (ms, wall clock)", Series: []string{"checker"},
	},
}
