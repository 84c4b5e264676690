package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/degradable/workload"
)

// simBench is `degradable-bench --target sim`: the workloads of package
// degradable/workload's Sim, by level, in simulated time.
type simBench struct {
	nodes, clients, ops int
	latency             string
	protocols           string // the linearizable level's protocols, for the second table
	users, timeline     int
}

// run prints the per-level table of types (each level over its default
// strategy, the linearizable one the first of b.protocols) and the
// linearizable level's table across b.protocols. Every run's history is
// checked by its level's checker; a failure names the seed.
func (b *simBench) run(out io.Writer, types []string, seed uint64) error {
	if b.nodes < 1 || b.clients < 1 || b.ops < b.clients || b.users < 2 || b.timeline < 1 {
		return &exitError{2, errors.New("--sim-nodes, --sim-clients, --sim-retwis-users (2), --sim-timeline need at least 1, and --sim-ops at least --sim-clients")}
	}
	protos := strings.Split(b.protocols, ",")
	one := func(typ string, l degradable.Level, proto string) (workload.Result, string, error) {
		if l != degradable.Linearizable {
			proto = ""
		}
		r, err := workload.Sim(workload.SimConfig{Type: typ, Level: l, Protocol: proto, Nodes: b.nodes, Clients: b.clients, Ops: b.ops,
			Latency: b.latency, Seed: seed, Users: b.users, TimelineCap: b.timeline})
		if errors.Is(err, workload.ErrNotOffered) {
			return workload.Result{}, "-", nil
		}
		if err != nil {
			return workload.Result{}, "", err
		}
		return workload.Result{Ops: r.Ops, OpsPerSec: r.OpsPerSec, P50: r.P50, P99: r.P99}, r.Protocol, nil
	}
	lat := b.latency
	if lat == "" {
		lat = "simnet's default"
	}
	fmt.Fprintf(out, "sim: %d nodes, %d clients, %d operations per run (Retwis: %d initial users, timelines of %d), latency %s, no faults, seed %d; ops/s and latencies in simulated time; every history checked at its level\n",
		b.nodes, b.clients, b.ops, b.users, b.timeline, lat, seed)
	var rows [][]workload.Result
	var strategies []string
	for _, typ := range types {
		var row []workload.Result
		var names []string
		for _, l := range degradable.Levels() {
			r, name, err := one(typ, l, protos[0])
			if err != nil {
				return err
			}
			row = append(row, r)
			names = append(names, fmt.Sprintf("%v=%s", l, name))
		}
		rows = append(rows, row)
		strategies = append(strategies, fmt.Sprintf("%s: %s", typ, strings.Join(names, " ")))
	}
	printTable(out, types, rows)
	fmt.Fprintf(out, "strategies: %s\n", strings.Join(strategies, "; "))
	if len(protos) < 2 {
		return nil
	}
	fmt.Fprintf(out, "\nsim linearizable level across protocols (same runs otherwise):\n")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "object\tprotocol\tops/s\tp50\tp99\t")
	for _, typ := range types {
		for _, p := range protos {
			r, _, err := one(typ, degradable.Linearizable, p)
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%v\t%v\t\n", typ, p, r.OpsPerSec, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond))
		}
	}
	return tw.Flush()
}
