package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/explore"
)

func init() { root.AddCommand(newExploreCmd()) }

// exploreFlags are the flags of blossom explore.
type exploreFlags struct {
	sc       explore.Scope
	mode     string
	depth    int
	runs     int
	maxRuns  int
	seed     uint64
	out      string
	replay   string
	noShrink bool
	quiet    bool
	events   int
	deepen   bool
	fifo     bool
	maxTime  time.Duration
	hashing  string
}

// parseHashing reads --hashing.
func parseHashing(s string) (explore.Hashing, error) {
	for _, h := range []explore.Hashing{explore.HashAuto, explore.HashState, explore.HashTrace, explore.HashOff} {
		if h.String() == s {
			return h, nil
		}
	}
	return 0, fmt.Errorf("--hashing %q: need auto, state, trace or off", s)
}

func newExploreCmd() *cobra.Command {
	var fl exploreFlags
	cmd := &cobra.Command{
		Use:   "explore",
		Short: "Explore the schedules of a small simulated scope systematically",
		Long: `explore runs a small scope of a protocol in simnet under a scheduler that
picks every step: which message is delivered (or, within the budgets,
dropped or duplicated), when a client's command reaches its replica, when a
reply reaches its client, when a replica ticks, crashes or restarts.

  --mode pct         PCT: random chain priorities with depth-1 change points
  --mode dpor        every schedule up to equivalence, depth first, with
                     dynamic partial-order reduction (source sets and sleep
                     sets); --events K bounds the ticks and faults of a
                     schedule together, --deepen explores K = 0, 1, ... in
                     turn, --fifo keeps every channel in order; reports
                     schedules, states, coverage
  --mode exhaustive  every schedule, depth first, with sleep-set reduction
                     and state hashing: --hashing state hashes the whole
                     state of the run (protocols offering a fingerprint:
                     paxos, fpaxos, epaxos, atlas, mencius), trace the
                     per-replica histories, off none; auto (the default)
                     is state where every protocol offers one; --events
                     and --deepen as for dpor
  --mode random      uniform random walks
  --mode swarm       the time-ordered simulator under swarm faults, seed after
                     seed (the baseline; latency uniform:1-4)

Every step is checked (no command executed twice in one incarnation, no two
conflicting commands executed in opposite orders) and every schedule at its
end (order contract, multicast safety properties, linearizability). A failing
schedule is minimized by delta debugging over its decisions and written to
--out; --replay FILE replays a trace step by step. A failure exits with
status 1 and prints the seed and the trace; bad flags exit with status 2.

Planted bugs need a failpoint build, e.g.
  GO_FAILPOINTS=github.com/blossom-dso/blossom/protocols/paxos/executeOutOfOrder=return(true) \
    make sim-sabotage ... (with explore instead of sim)`,
		Example: `  blossom explore --protocol paxos --mode pct --depth 3 --runs 1000
  blossom explore --protocol epaxos --mode exhaustive --clients 2 --ops 2 --ticks 1
  blossom explore --protocol paxos --mode dpor --ticks 2 --events 3 --deepen
  blossom explore --replay paxos.trace.json`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			if fl.replay != "" {
				return replayTrace(w, fl.replay)
			}
			return runExplore(w, &fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.sc.Protocol, "protocol", "paxos", "protocol registry name")
	f.IntVar(&fl.sc.Nodes, "nodes", 3, "replicas (0 with --groups: groups*(2f+1))")
	f.IntVar(&fl.sc.F, "f", 0, "failures tolerated (0: (nodes-1)/2; 1 with --groups)")
	f.IntVar(&fl.sc.E, "e", 0, "protocol's e (0: its default)")
	f.IntVar(&fl.sc.Clients, "clients", 2, "clients")
	f.IntVar(&fl.sc.Ops, "ops", 2, "operations in all")
	f.IntVar(&fl.sc.Keys, "keys", 1, "shared keys")
	f.Float64Var(&fl.sc.Conflict, "conflict", 100, "percentage of operations on a shared key")
	f.Float64Var(&fl.sc.Reads, "reads", 0, "percentage of gets")
	f.IntVar(&fl.sc.Groups, "groups", 0, "multicast groups (0: not a multicast run)")
	f.IntVar(&fl.sc.Dest, "dest", 0, "destination groups per command (0: mixed)")
	f.IntVar(&fl.sc.SuspectTicks, "suspect-ticks", 1, "protocol's SuspectTicks")
	f.IntVar(&fl.sc.Budget.Ticks, "ticks", 2, "ticks per replica")
	f.IntVar(&fl.sc.Budget.Drops, "drops", 0, "message drops per schedule")
	f.IntVar(&fl.sc.Budget.Dups, "dups", 0, "message duplicates per schedule")
	f.IntVar(&fl.sc.Budget.Crashes, "crashes", 0, "crash-restarts per schedule")
	f.IntVar(&fl.sc.Budget.Steps, "steps", 300, "steps per schedule")
	f.StringVar(&fl.mode, "mode", "pct", "pct, dpor, exhaustive, random or swarm")
	f.StringVar(&fl.hashing, "hashing", "auto", "exhaustive: state hashing: auto, state, trace or off")
	f.IntVar(&fl.events, "events", -1, "dpor, exhaustive: bound on the ticks and faults of a schedule together (-1: none)")
	f.BoolVar(&fl.fifo, "fifo", false, "dpor: only schedules in which every channel delivers in sending order")
	f.BoolVar(&fl.deepen, "deepen", false, "dpor, exhaustive: iterative deepening on --events (0, 1, ... up to --events)")
	f.DurationVar(&fl.maxTime, "max-time", 0, "stop the search after this long (0: no limit; a search cut short is not covered)")
	f.IntVar(&fl.depth, "depth", 3, "PCT bug depth d")
	f.IntVar(&fl.runs, "runs", 1000, "schedules (pct, random) or seeds (swarm)")
	f.IntVar(&fl.maxRuns, "max-runs", 200000, "bound on exhaustive and dpor runs (0: none)")
	f.Uint64Var(&fl.seed, "seed", 1, "workload seed of the scope; first run seed of pct, random and swarm")
	f.StringVar(&fl.out, "out", "", "trace file for a failure (default explore-<protocol>-<mode>.trace.json)")
	f.StringVar(&fl.replay, "replay", "", "replay this trace file step by step")
	f.BoolVar(&fl.noShrink, "no-shrink", false, "write the failing schedule without minimizing it")
	f.BoolVar(&fl.quiet, "quiet", false, "do not print the minimized trace")
	return cmd
}

func runExplore(w io.Writer, fl *exploreFlags) error {
	sc := fl.sc
	sc.Seed = fl.seed
	if fl.mode != "swarm" {
		if _, err := simnet.Run(sc.Config(&explore.Guided{})); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	var deadline time.Time
	if fl.maxTime > 0 {
		deadline = time.Now().Add(fl.maxTime)
	}
	var rep *explore.Report
	switch fl.mode {
	case "pct":
		rep = explore.PCTSearch(sc, fl.depth, fl.runs, fl.seed, deadline)
	case "random":
		rep = explore.RandomSearch(sc, fl.runs, fl.seed, deadline)
	case "exhaustive":
		if fl.fifo {
			return &exitError{code: 2, err: fmt.Errorf("--fifo is a dpor option: the exhaustive search's state hash sees the messages in flight as a multiset")}
		}
		if fl.deepen && fl.events < 0 {
			return &exitError{code: 2, err: fmt.Errorf("--deepen needs --events K >= 0")}
		}
		h, err := parseHashing(fl.hashing)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		rep = explore.Exhaustive(sc, explore.Options{MaxRuns: fl.maxRuns, Events: fl.events, Deepen: fl.deepen, Deadline: deadline, Hashing: h})
	case "dpor":
		if fl.deepen && fl.events < 0 {
			return &exitError{code: 2, err: fmt.Errorf("--deepen needs --events K >= 0")}
		}
		rep = explore.DPOR(sc, explore.Options{MaxRuns: fl.maxRuns, Events: fl.events, Deepen: fl.deepen, FIFO: fl.fifo, Deadline: deadline})
	case "swarm":
		cfg := sc.Config(nil)
		cfg.Scheduler, cfg.Budget = nil, simnet.Budget{}
		cfg.Latency, cfg.Faults, cfg.Size, cfg.SuspectTicks = "uniform:1-4", "swarm", 16, 0
		if err := cfg.Validate(); err != nil {
			return &exitError{code: 2, err: err}
		}
		rep = explore.SwarmSearch(cfg, fl.seed, fl.runs, deadline)
		fmt.Fprintf(w, "scope   swarm %s nodes=%d clients=%d ops=%d keys=%d conflict=%g reads=%g groups=%d\n",
			sc.Protocol, sc.Nodes, sc.Clients, sc.Ops, sc.Keys, sc.Conflict, sc.Reads, sc.Groups)
		fmt.Fprintf(w, "result  %s\n", rep)
		if rep.Failure != nil {
			return &exitError{code: 1, err: fmt.Errorf("swarm seed %d failed (replay: blossom sim with --faults swarm --seed %d)", rep.Seed, rep.Seed)}
		}
		return nil
	default:
		return &exitError{code: 2, err: fmt.Errorf("--mode %q: need pct, dpor, exhaustive, random or swarm", fl.mode)}
	}
	fmt.Fprintf(w, "scope   %s\n", sc)
	fmt.Fprintf(w, "result  %s\n", rep)
	if rep.Failure == nil {
		return nil
	}
	found := fmt.Sprintf("%s run %d (seed %d) after %s, %d steps", rep.Mode, rep.FailedRun, rep.Seed, rep.Elapsed.Round(1e6), len(rep.Failure.Trace))
	var t *explore.Trace
	if fl.noShrink {
		t = &explore.Trace{Scope: sc, Failpoints: os.Getenv("GO_FAILPOINTS"), Decisions: rep.Failure.Labels(),
			Steps: rep.Failure.Labels(), Failure: rep.Failure.Err.Error(), Found: found}
	} else {
		t, _ = explore.Minimize(sc, rep.Failure, found)
	}
	out := fl.out
	if out == "" {
		out = fmt.Sprintf("explore-%s-%s.trace.json", sc.Protocol, rep.Mode)
	}
	if err := t.Write(out); err != nil {
		return err
	}
	fmt.Fprintf(w, "trace   %s: %d decisions, %d steps (%s)\n", out, len(t.Decisions), len(t.Steps), t.Found)
	if !fl.quiet {
		for i, d := range t.Decisions {
			fmt.Fprintf(w, "  decision %3d  %s\n", i+1, d)
		}
	}
	fmt.Fprintf(w, "failure %s\n", t.Failure)
	return &exitError{code: 1, err: fmt.Errorf("%s found a violation (seed %d); replay: blossom explore --replay %s", rep.Mode, rep.Seed, out)}
}

// replayTrace replays a trace file, printing every step.
func replayTrace(w io.Writer, path string) error {
	t, err := explore.ReadTrace(path)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	fmt.Fprintf(w, "scope   %s\n", t.Scope)
	if t.Failpoints != "" {
		fmt.Fprintf(w, "written with GO_FAILPOINTS=%s (now %q)\n", t.Failpoints, os.Getenv("GO_FAILPOINTS"))
	}
	fmt.Fprintf(w, "trace   %d decisions; recorded failure: %s\n", len(t.Decisions), t.Failure)
	decided := map[string]bool{}
	for _, d := range t.Decisions {
		decided[d] = true
	}
	o := t.Replay(func(step int, c simnet.Choice) {
		mark := " "
		if decided[c.Label()] {
			mark = "*"
		}
		fmt.Fprintf(w, "%4d %s %s\n", step, mark, c.Label())
	})
	if o.Result != nil {
		fmt.Fprintf(w, "end     %d steps, %d ok, %d pending\n", o.Result.Steps, o.Result.OK, o.Result.Pending)
		for _, l := range o.Result.FaultLog {
			fmt.Fprintf(w, "fault   %s\n", l)
		}
	}
	if o.Err != nil {
		fmt.Fprintf(w, "FAILED  %v\n", o.Err)
		return &exitError{code: 1, err: fmt.Errorf("the trace %s fails: %w", path, o.Err)}
	}
	fmt.Fprintf(w, "passed  every check\n")
	return nil
}
