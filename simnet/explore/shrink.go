package explore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/blossom-dso/blossom/simnet"
)

// Shrink minimizes the decisions of a failing schedule with delta debugging
// (Zeller's ddmin) under the Guided reading: it returns a 1-minimal
// sublist whose guided replay still fails (any check failing counts), the
// replay's outcome, and the number of runs it took. It returns the input
// unchanged if its own replay passes.
func Shrink(sc Scope, decisions []string) ([]string, *Outcome, int) {
	runs := 0
	test := func(ds []string) *Outcome {
		runs++
		o := Run(sc, &Guided{Decisions: ds})
		if o.Err == nil {
			return nil
		}
		return o
	}
	cur := decisions
	best := test(cur)
	if best == nil {
		return decisions, nil, runs
	}
	// Keep only the decisions the replay used (the skipped ones cannot
	// matter), then ddmin.
	if used := best.Labels(); len(used) < len(cur) {
		if o := test(used); o != nil {
			cur, best = used, o
		}
	}
	n := 2
	for len(cur) >= 2 {
		chunk := (len(cur) + n - 1) / n
		reduced := false
		// Try each complement (drop one chunk); subsets rarely fail alone
		// in schedules, so ddmin's subset tests are left out.
		for start := 0; start < len(cur); start += chunk {
			end := min(start+chunk, len(cur))
			cand := append(append([]string(nil), cur[:start]...), cur[end:]...)
			if o := test(cand); o != nil {
				cur, best = cand, o
				n = max(n-1, 2)
				reduced = true
				break
			}
		}
		if !reduced {
			if n >= len(cur) {
				break
			}
			n = min(2*n, len(cur))
		}
	}
	if len(cur) == 1 {
		if o := test(nil); o != nil {
			cur, best = nil, o
		}
	}
	return cur, best, runs
}

// Trace is a replayable counterexample file.
type Trace struct {
	// Scope is the scope the schedule ran in.
	Scope Scope `json:"scope"`
	// Failpoints is GO_FAILPOINTS when the trace was written (planted bugs
	// of a failpoint build): replay it with the same value.
	Failpoints string `json:"failpoints,omitempty"`
	// Decisions are the schedule's decisions (Guided).
	Decisions []string `json:"decisions"`
	// Steps is every choice the replay carried out, decisions and tail,
	// for reading.
	Steps []string `json:"steps"`
	// Failure is the check that failed when the trace was written.
	Failure string `json:"failure"`
	// Found says how the schedule was found: mode, run, seed, time.
	Found string `json:"found,omitempty"`
}

// Write writes t to path as indented JSON.
func (t *Trace) Write(path string) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(t); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// ReadTrace reads a trace file.
func ReadTrace(path string) (*Trace, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Trace
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("explore: trace %s: %w", path, err)
	}
	return &t, nil
}

// Replay runs the trace's schedule, calling each (if not nil) for every
// step as it is carried out, and returns the checked outcome.
func (t *Trace) Replay(each func(step int, c simnet.Choice)) *Outcome {
	return runEach(t.Scope, &Guided{Decisions: t.Decisions}, each)
}

// Minimize shrinks a failing outcome's schedule and returns its trace and
// the number of runs shrinking took.
func Minimize(sc Scope, failing *Outcome, found string) (*Trace, int) {
	start := time.Now()
	ds, o, runs := Shrink(sc, failing.Labels())
	if o == nil {
		o = failing
		ds = failing.Labels()
	}
	t := &Trace{
		Scope: sc, Failpoints: os.Getenv("GO_FAILPOINTS"), Decisions: ds, Steps: o.Labels(),
		Failure: o.Err.Error(),
		Found:   fmt.Sprintf("%s; shrunk from %d to %d decisions in %d runs (%s)", found, len(failing.Trace), len(ds), runs, time.Since(start).Round(time.Millisecond)),
	}
	return t, runs
}
