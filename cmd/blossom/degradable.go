package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/degradable/remote"
	"github.com/blossom-dso/blossom/degradable/workload"
)

func init() { root.AddCommand(newDegradableBenchCmd()) }

// newDegradableBenchCmd is `blossom degradable-bench`: the per-level
// throughput table of the degradable objects in one process (ops/s, p50,
// p99 per object type and level, and the ratio to the linearizable level)
// and the Retwis table.
func newDegradableBenchCmd() *cobra.Command {
	var (
		types                   string
		clients, ops, repeat    int
		rUsers, rClients, rOps  int
		seed                    uint64
		skipObjects, skipRetwis bool
		target                  string
		db                      dsoBench
		sb                      simBench
	)
	cmd := &cobra.Command{
		Use:   "degradable-bench",
		Short: "Throughput by level of the degradable objects and of Retwis, in one process",
		Long: `degradable-bench runs each object type's contention mix (package
degradable/workload) at the linearizable, sequential and weak levels, then
Retwis at each level, and prints ops/s, the p50 and p99 latencies of a
sample of the operations, and each level's throughput as a ratio to the
linearizable level's. The levels run interleaved, --repeat times, and the
table shows the median run (by ops/s) of each.

With --target sim the object types (counter, set, map, queue) and
Retwis run in the simulator (package degradable/workload's Sim): their
commands replicated over --sim-nodes replicas by each level's strategy
(linearizable: the first of --sim-protocols; sequential: sequential; weak:
weak-merge for commuting updates, weak for the map's blind writes; the
weak queue is not offered), --sim-clients closed-loop clients, no faults;
ops/s and latencies are in simulated time, every run's history is checked
by its level's checker (Retwis: by every replica's end state) and a
failure names the seed. A second table runs the linearizable level over
each of --sim-protocols.

With --target dso the same tables come from a three-node DSO cluster
started in this process, its servers and replicas talking over loopback
TCP (paxos with --dso-protocol, rf 3, no fsync, the sequential and
weak-merge levels beside it): --dso-clients client goroutines over
--dso-conns connections, --dso-objects objects per type (many clients, few
objects), each run --dso-duration long. The DSO mixes use, at every
level, the updates the weak level offers: counter 90% add / 10% read, at the weak level through a
per-client segment (degradable/remote); set 50% contains / 25% add /
25% remove, at the weak level through a per-client segment too (an
observed-remove set); map 50% get / 50% merge(sum); queue (a List) 50%
add / 50% removeAt(0), at the weak level through per-client segments of
per-writer queues (dequeues at least once). Retwis on the DSO: follows
into grow-only sets, no unfollow, a tweet's fan-out capped at 8
followers, timelines keeping and reading their newest --dso-timeline
posts (remote.Timeline); at the weak level each connection keeps
segments of its counters, sets and timelines for its goroutines, flushed
and pulled in the background (--dso-flush-every, --dso-pull-every), and
a read pulls only a segment's first time; each Retwis run is measured
after --dso-warmup of the same mix, unmeasured, at every level (a cold
start makes a weak run mostly these first pulls). A line after the
Retwis table gives each level's posts per tweet and per read, to compare
the work done.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			switch target {
			case "local":
			case "dso":
				if !cmd.Flags().Changed("types") {
					types = strings.Join(dsoTypes, ",")
				}
				return runDSOBench(cmd.Context(), out, &db, strings.Split(types, ","), repeat, seed, skipObjects, skipRetwis)
			case "sim":
				ts := workload.SimTypes
				if cmd.Flags().Changed("types") {
					ts = strings.Split(types, ",")
				}
				return sb.run(out, ts, seed)
			default:
				return &exitError{2, fmt.Errorf("--target %q: want local, sim or dso", target)}
			}
			if !skipObjects {
				fmt.Fprintf(out, "objects: %d clients, %d operations per run, median of %d interleaved runs, GOMAXPROCS %d\n", clients, ops, repeat, runtime.GOMAXPROCS(0))
				var rows [][]workload.Result
				ts := strings.Split(types, ",")
				for _, typ := range ts {
					row, err := levels(repeat, func(l degradable.Level) (workload.Result, error) {
						return workload.Objects(typ, l, clients, ops, seed)
					})
					if err != nil {
						return err
					}
					rows = append(rows, row)
				}
				printTable(out, ts, rows)
			}
			if !skipRetwis {
				fmt.Fprintf(out, "\nretwis: %d users, %d clients, %d operations per run (5/15/30/50 add/follow/tweet/read), median of %d interleaved runs\n", rUsers, rClients, rOps, repeat)
				row, err := levels(repeat, func(l degradable.Level) (workload.Result, error) {
					res, err := workload.Retwis(workload.RetwisConfig{Level: l, Users: rUsers, Clients: rClients, Ops: rOps, Seed: seed})
					if err == nil && (res.UsersCounted != int64(rUsers)+res.Adds || res.PostsCounted != res.Tweets) {
						err = fmt.Errorf("degradable-bench: retwis at %v lost an update: %d users counted for %d, %d posts for %d", l, res.UsersCounted, int64(rUsers)+res.Adds, res.PostsCounted, res.Tweets)
					}
					return res.Result, err
				})
				if err != nil {
					return err
				}
				printTable(out, []string{"retwis"}, [][]workload.Result{row})
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&types, "types", strings.Join(workload.Types, ","), "object types, comma-separated")
	f.IntVar(&clients, "clients", 16*runtime.GOMAXPROCS(0), "client goroutines (one replica each) per object run")
	f.IntVar(&ops, "ops", 2_000_000, "operations per object run")
	f.IntVar(&repeat, "repeat", 3, "interleaved runs per level; the median is shown")
	f.IntVar(&rUsers, "retwis-users", 1000, "Retwis: initial users")
	f.IntVar(&rClients, "retwis-clients", 8, "Retwis: client goroutines")
	f.IntVar(&rOps, "retwis-ops", 200_000, "Retwis: operations per run")
	f.Uint64Var(&seed, "seed", 1, "seed of the workloads' choices")
	f.BoolVar(&skipObjects, "no-objects", false, "skip the object table")
	f.BoolVar(&skipRetwis, "no-retwis", false, "skip Retwis")
	f.StringVar(&target, "target", "local", "local: the objects in this process; sim: replicated by the strategies in the simulator; dso: a three-node DSO cluster over loopback")
	f.IntVar(&sb.nodes, "sim-nodes", 3, "--target sim: replicas")
	f.IntVar(&sb.clients, "sim-clients", 8, "--target sim: closed-loop clients")
	f.IntVar(&sb.ops, "sim-ops", 200, "--target sim: operations per run (the queue's checkers decide 8 clients and 200 operations quickly; larger queue runs may come back undecided, a failure)")
	f.StringVar(&sb.latency, "sim-latency", "", "--target sim: the latency model (blossom sim --latency; default simnet's)")
	f.StringVar(&sb.protocols, "sim-protocols", "paxos,epaxos,atlas", "--target sim: the linearizable level's protocols: the first for the per-level table, all for the table across protocols")
	f.IntVar(&sb.users, "sim-retwis-users", 100, "--target sim: Retwis's initial users")
	f.IntVar(&sb.timeline, "sim-timeline", 50, "--target sim: the newest posts a Retwis timeline keeps")
	f.StringVar(&db.protocol, "dso-protocol", "paxos", "--target dso: the protocol of the linearizable level")
	f.IntVar(&db.clients, "dso-clients", 32, "--target dso: client goroutines")
	f.IntVar(&db.conns, "dso-conns", 4, "--target dso: client connections the goroutines share")
	f.IntVar(&db.nobjects, "dso-objects", 4, "--target dso: objects per type")
	f.DurationVar(&db.duration, "dso-duration", 2*time.Second, "--target dso: length of each run")
	f.IntVar(&db.users, "dso-retwis-users", 200, "--target dso: Retwis's initial users")
	f.DurationVar(&db.flush, "dso-flush-every", remote.DefaultFlushEvery, "--target dso: the background flush period of the weak segments")
	f.DurationVar(&db.pull, "dso-pull-every", 200*time.Millisecond, "--target dso: Retwis's background pull period of the weak segments")
	f.DurationVar(&db.warmup, "dso-warmup", 3*time.Second, "--target dso: Retwis runs the mix this long, unmeasured, before each measured run (at every level), so that the weak segments are pulled once (0: measure from a cold start)")
	f.IntVar(&db.timeline, "dso-timeline", 50, "--target dso: the newest posts a Retwis timeline keeps and a read returns")
	return cmd
}

// runDSOBench starts the DSO cluster and prints the per-level tables of
// the object types and of Retwis.
func runDSOBench(ctx context.Context, out io.Writer, b *dsoBench, types []string, repeat int, seed uint64, skipObjects, skipRetwis bool) error {
	if b.clients < 1 || b.conns < 1 || b.conns > remote.MaxWriters || b.nobjects < 1 || b.duration <= 0 || b.users < 2 || b.flush <= 0 || b.pull <= 0 || b.timeline < 1 {
		return &exitError{2, fmt.Errorf("--dso-clients, --dso-conns (at most %d), --dso-objects, --dso-duration, --dso-flush-every, --dso-pull-every, --dso-timeline need at least 1 (and --dso-retwis-users 2)", remote.MaxWriters)}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	b.seed = seed
	if err := b.start(ctx); err != nil {
		return err
	}
	defer b.close()
	if !skipObjects {
		fmt.Fprintf(out, "dso objects: 3 nodes (%s rf 3, sequential, weak-merge), %d clients over %d connections, %d objects per type, %v per run, median of %d interleaved runs, GOMAXPROCS %d\n",
			b.protocol, b.clients, b.conns, b.nobjects, b.duration, repeat, runtime.GOMAXPROCS(0))
		var rows [][]workload.Result
		for _, typ := range types {
			row, err := dsoLevels(repeat, func(l degradable.Level) (workload.Result, error) { return b.objects(ctx, typ, l) })
			if err != nil {
				return fmt.Errorf("%s: %w", typ, err)
			}
			rows = append(rows, row)
		}
		printTable(out, types, rows)
	}
	if !skipRetwis {
		fmt.Fprintf(out, "\ndso retwis: %d initial users, %d clients over %d connections, timelines of the newest %d posts, %v per run after %v unmeasured (5/15/30/50 add/follow/tweet/read), median of %d interleaved runs\n", b.users, b.clients, b.conns, b.timeline, b.duration, b.warmup, repeat)
		works := map[degradable.Level][]retwisWork{}
		row, err := dsoLevels(repeat, func(l degradable.Level) (workload.Result, error) {
			res, w, err := b.retwis(ctx, l)
			works[l] = append(works[l], w)
			return res, err
		})
		if err != nil {
			return err
		}
		printTable(out, []string{"retwis"}, [][]workload.Result{row})
		fmt.Fprintln(out, "work per operation, over every run (the same mix at every level: posts a tweet's fan-out made, posts a timeline read returned):")
		for _, l := range degradable.Levels() {
			var t retwisWork
			for _, w := range works[l] {
				t.tweets, t.posts, t.reads, t.readPosts = t.tweets+w.tweets, t.posts+w.posts, t.reads+w.reads, t.readPosts+w.readPosts
			}
			fmt.Fprintf(out, "  %-12v  %.2f posts per tweet, %.2f posts per read\n", l, float64(t.posts)/float64(max(t.tweets, 1)), float64(t.readPosts)/float64(max(t.reads, 1)))
		}
	}
	return nil
}

// levels runs each level repeat times, interleaved, and returns the median
// run of each level by throughput, in degradable.Levels order.
func levels(repeat int, run func(degradable.Level) (workload.Result, error)) ([]workload.Result, error) {
	ls := degradable.Levels()
	runs := make([][]workload.Result, len(ls))
	for range max(repeat, 1) {
		for i, l := range ls {
			res, err := run(l)
			if err != nil {
				return nil, err
			}
			runs[i] = append(runs[i], res)
		}
	}
	out := make([]workload.Result, len(ls))
	for i, rs := range runs {
		slices.SortFunc(rs, func(a, b workload.Result) int { return int(a.OpsPerSec - b.OpsPerSec) })
		out[i] = rs[len(rs)/2]
	}
	return out, nil
}

// printTable prints one row per name and level.
func printTable(out io.Writer, names []string, rows [][]workload.Result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "object\tlevel\tops/s\tp50\tp99\tx linearizable\t")
	for i, name := range names {
		for j, l := range degradable.Levels() {
			r := rows[i][j]
			if r.Ops == 0 {
				fmt.Fprintf(tw, "%s\t%v\tnot offered\t\t\t\t\n", name, l)
				continue
			}
			fmt.Fprintf(tw, "%s\t%v\t%.0f\t%v\t%v\t%.2f\t\n", name, l, r.OpsPerSec, r.P50.Round(time.Nanosecond), r.P99.Round(time.Nanosecond), r.OpsPerSec/rows[i][0].OpsPerSec)
		}
	}
	tw.Flush()
}
