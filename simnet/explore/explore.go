// Package explore explores the schedules of simnet runs systematically:
// PCT (probabilistic concurrency testing, Burckhardt et al.), exhaustive
// search of small scopes with sleep-set partial-order reduction and state
// hashing, and minimal counterexamples (delta debugging over scheduling
// decisions) written as replayable trace files.
//
// A Scope is a small run: a few replicas, a few client commands, budgets of
// drops, duplicates, crash-restarts and ticks. Every schedule runs through
// simnet with a simnet.Scheduler; the simulator checks the step invariants
// (no command executed twice in one incarnation, no two conflicting
// commands executed in opposite orders) after every step, and
// CheckContract checks every schedule at its end against the order
// contract its protocol declares: for a linearizable protocol the order
// contract, the safety properties of atomic multicast, and
// linearizability of the completed operations; for the sequential and weak
// ones sequential consistency and the weak contract's safety.
//
// A schedule is a list of decisions: choice labels (simnet.Choice.Label).
// A Guided scheduler replays one: at each step it takes the next decision
// if it is enabled and skips it otherwise; when the decisions run out it
// delivers the oldest message, submit or reply in flight (never a tick or a
// fault) until none is left. Shrink minimizes a failing list under this
// reading, and a Trace file holds the result.
package explore

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// Scope is the configuration of an explored run.
type Scope struct {
	// Protocol is the registry name of the protocol.
	Protocol string `json:"protocol"`
	// Nodes is the number of replicas (0: Groups*(2F+1) in a multicast
	// run); F and E are passed to the protocol (0: their defaults).
	Nodes int `json:"nodes"`
	F     int `json:"f,omitempty"`
	E     int `json:"e,omitempty"`
	// Clients issue Ops operations in all, one after another per client.
	Clients int `json:"clients"`
	Ops     int `json:"ops"`
	// Keys, Conflict and Reads shape the workload as in simnet.Config.
	Keys     int     `json:"keys,omitempty"`
	Conflict float64 `json:"conflict"`
	Reads    float64 `json:"reads"`
	// Groups and Dest make a multicast run (simnet.Config).
	Groups int `json:"groups,omitempty"`
	Dest   int `json:"dest,omitempty"`
	// SuspectTicks is passed to the protocol (default 1: a tick without
	// news from the leader is a suspicion, so few ticks reach elections).
	SuspectTicks int `json:"suspect_ticks,omitempty"`
	// Seed seeds the workload and the protocols' random sources.
	Seed uint64 `json:"seed"`
	// Budget bounds every schedule.
	Budget simnet.Budget `json:"budget"`
}

// Config returns the simnet configuration of one schedule of sc run by
// sched.
func (sc Scope) Config(sched simnet.Scheduler) simnet.Config {
	st := sc.SuspectTicks
	if st == 0 {
		st = 1
	}
	return simnet.Config{
		Protocol: sc.Protocol, Nodes: sc.Nodes, F: sc.F, E: sc.E,
		Clients: sc.Clients, Ops: sc.Ops, Keys: sc.Keys, Conflict: sc.Conflict, Reads: sc.Reads,
		Size: 9, Latency: "constant:1", Faults: "none", Seed: sc.Seed, SuspectTicks: st,
		Groups: sc.Groups, Dest: sc.Dest,
		Scheduler: sched, Budget: sc.Budget, RecordExecutions: true,
	}
}

// String describes sc in one line.
func (sc Scope) String() string {
	b := sc.Budget
	return fmt.Sprintf("%s nodes=%d f=%d clients=%d ops=%d keys=%d conflict=%g reads=%g groups=%d seed=%d ticks=%d drops=%d dups=%d crashes=%d steps=%d",
		sc.Protocol, sc.Nodes, sc.F, sc.Clients, sc.Ops, sc.Keys, sc.Conflict, sc.Reads, sc.Groups, sc.Seed,
		b.Ticks, b.Drops, b.Dups, b.Crashes, b.Steps)
}

// LinTimeout bounds the linearizability check of one schedule.
const LinTimeout = 10 * time.Second

// Outcome is one checked schedule.
type Outcome struct {
	// Result is the simulator's result (nil if the run failed to run).
	Result *simnet.Result
	// Trace is the choices carried out, in order.
	Trace []simnet.Choice
	// Err is the first check that failed (the run itself, a step
	// invariant, the order contract, the multicast properties,
	// linearizability), nil if the schedule passed.
	Err error
}

// Labels returns the labels of the trace.
func (o *Outcome) Labels() []string {
	out := make([]string, len(o.Trace))
	for i, c := range o.Trace {
		out[i] = c.Label()
	}
	return out
}

// recorder wraps a scheduler and records what it picks.
type recorder struct {
	inner simnet.Scheduler
	trace []simnet.Choice
	each  func(step int, c simnet.Choice)
}

// Attach implements simnet.StateScheduler: it hands the view to the inner
// scheduler if that reads states.
func (r *recorder) Attach(v simnet.StateView) {
	if a, ok := r.inner.(simnet.StateScheduler); ok {
		a.Attach(v)
	}
}

func (r *recorder) Next(step int, enabled []simnet.Choice) int {
	i := r.inner.Next(step, enabled)
	if i >= 0 && i < len(enabled) {
		r.trace = append(r.trace, enabled[i])
		if r.each != nil {
			r.each(step, enabled[i])
		}
	}
	return i
}

// Run runs one schedule of sc with sched and checks it.
func Run(sc Scope, sched simnet.Scheduler) *Outcome {
	return runEach(sc, sched, nil)
}

func runEach(sc Scope, sched simnet.Scheduler, each func(int, simnet.Choice)) *Outcome {
	rec := &recorder{inner: sched, each: each}
	res, err := simnet.Run(sc.Config(rec))
	o := &Outcome{Result: res, Trace: rec.trace}
	if err != nil {
		o.Err = err
		return o
	}
	spec, err := protocols.Lookup(sc.Protocol)
	if err != nil {
		o.Err = err
		return o
	}
	o.Err = CheckContract(res, spec.Contract)
	return o
}

// Check checks a finished run of a linearizable protocol (CheckContract
// with protocols.Linearizable).
func Check(res *simnet.Result) error { return CheckContract(res, protocols.Linearizable) }

// CheckContract checks a finished run against the order contract k its
// protocol declares: a step invariant; then for Linearizable the order
// contract, the safety properties of atomic multicast (integrity,
// per-group and acyclic order) and linearizability of the completed
// operations; for Sequential the order contract and sequential
// consistency (simtest.CheckSequential); for Weak simtest.CheckWeak but
// its convergence. Multicast agreement (a command delivered somewhere is
// delivered by every live replica of its groups) and Weak convergence
// (every live replica holds the same state after the updates stop) are
// liveness properties: an explored schedule may end, out of ticks or
// messages, before they hold, so they are not checked.
func CheckContract(res *simnet.Result, k protocols.Contract) error {
	if res.StepError != nil {
		return fmt.Errorf("step invariant: %w", res.StepError)
	}
	switch k {
	case protocols.Sequential:
		if err := res.OrderError(); err != nil {
			return err
		}
		return simtest.CheckSequential(res)
	case protocols.Weak:
		// CheckWeak checks convergence on the replicas that are up at the
		// end; with none up it checks everything but convergence.
		r := *res
		r.PerNode = slices.Clone(res.PerNode)
		for i := range r.PerNode {
			r.PerNode[i].Up = false
		}
		return simtest.CheckWeak(&r)
	}
	if err := res.OrderError(); err != nil {
		return err
	}
	var safety []string
	for _, v := range res.MulticastViolations {
		if !strings.HasPrefix(v, "agreement:") {
			safety = append(safety, v)
		}
	}
	if len(safety) > 0 {
		return fmt.Errorf("multicast check: %d safety violations: %s", len(safety), strings.Join(safety[:min(3, len(safety))], "; "))
	}
	if err := res.CheckLinearizable(LinTimeout).Err(); err != nil {
		return fmt.Errorf("linearizability: %w", err)
	}
	return nil
}
