package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/lincheck"
	"github.com/blossom-dso/blossom/protocols"
	_ "github.com/blossom-dso/blossom/protocols/atlas"              // registers atlas
	_ "github.com/blossom-dso/blossom/protocols/epaxos"             // registers epaxos
	_ "github.com/blossom-dso/blossom/protocols/mencius"            // registers mencius
	_ "github.com/blossom-dso/blossom/protocols/paxos"              // registers paxos, fpaxos
	_ "github.com/blossom-dso/blossom/protocols/sequential"         // registers sequential
	_ "github.com/blossom-dso/blossom/protocols/skeen"              // registers skeen
	_ "github.com/blossom-dso/blossom/protocols/weak"               // registers weak
	_ "github.com/blossom-dso/blossom/protocols/whitebox-multicast" // registers wbcast
	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

func init() { root.AddCommand(newSimCmd()) }

// simFlags are the flags of blossom sim.
type simFlags struct {
	protocol         string
	nodes, f, e      int
	clients, ops     int
	keys             int
	conflict, reads  float64
	size             int
	latency          string
	sites            []string
	faults           string
	seed             uint64
	check            bool
	checkDeterminism bool
	checkTimeout     time.Duration
	porcupine        bool
	report           string
	json             bool
	codecCheck       bool
	compactEvery     int
	groups           int
	dest             string
}

func newSimCmd() *cobra.Command {
	var fl simFlags
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run a protocol in the deterministic network simulator",
		Long: `sim runs replicas of a registered protocol in simnet, a deterministic
discrete-event simulator, under a closed-loop key-value workload, with the
chosen latency model and faults. The seed is the bug report: the same seed,
flags and code replay the same run, whose trace digest is printed.

--check checks the history for linearizability (Porcupine, per key), the
executions for the order contract, and that every operation completed after
the fault window closed; a failure exits with status 1 and names the seed.
With --groups the run is an atomic multicast run (wbcast, skeen): G groups
of 2f+1 replicas, each command addressed to --dest groups, and --check also
checks integrity, agreement, per-group order and acyclic order.
A protocol that declares a weaker order contract is checked against it
instead of linearizability: sequential (the degradable objects' sequential
level) for sequential consistency against the executed update order, weak
(last-writer-wins effector broadcast) for merge of issued updates, one
arbitration order, read-your-writes and monotonic reads per session, and
convergence after a drain.
Bad flags exit with status 2.`,
		Example: `  blossom sim --protocol paxos --nodes 5 --faults swarm --seed 7 --check
  blossom sim --latency planet:gcp --nodes 5 --clients 50 --ops 5000 --json
  blossom sim --faults loss=0.05,partition,crash-restart --check --report out.html
  blossom sim --seed 42 --check-determinism
  blossom sim --protocol wbcast --groups 4 --dest mixed --f 1 --faults swarm --seed 1 --check
  blossom sim --protocol weak --nodes 5 --faults swarm --seed 1 --check`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := fl.config(cmd)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			return runSim(cmd.OutOrStdout(), cfg, &fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.protocol, "protocol", "paxos", "protocol registry name ("+strings.Join(protocols.Names(), ", ")+")")
	f.IntVar(&fl.nodes, "nodes", 5, "number of replicas")
	f.IntVar(&fl.f, "f", 0, "failures tolerated, 1..(nodes-1)/2 (default (nodes-1)/2)")
	f.IntVar(&fl.e, "e", 0, "fast-path failures for leaderless protocols (0 = protocol default)")
	f.IntVar(&fl.clients, "clients", 20, "closed-loop clients, placed round-robin at the replicas' sites")
	f.IntVar(&fl.ops, "ops", 5000, "total operations, split across the clients")
	f.IntVar(&fl.keys, "keys", 10, "shared keys that conflicting operations pick from")
	f.Float64Var(&fl.conflict, "conflict", 10, "percentage of operations on a shared key (0..100)")
	f.Float64Var(&fl.reads, "reads", 50, "percentage of operations that are gets (0..100)")
	f.IntVar(&fl.size, "size", 16, "command payload size in bytes")
	f.StringVar(&fl.latency, "latency", "constant:1", "latency model: constant:MS, uniform:MIN-MAX, planet:gcp or planet:aws, optionally with ,jitter=MS or ,jitter=P%")
	f.StringSliceVar(&fl.sites, "sites", nil, "sites of the replicas, REGION,... (planet default: the first nodes regions of a list spread over continents)")
	f.StringVar(&fl.faults, "faults", "none", "faults: none, swarm, swarm,ack-crash, or a list of loss[=P],dup[=P],reorder[=P],partition,clog,crash-stop,crash-restart,lost-tail,ack-crash")
	f.Uint64Var(&fl.seed, "seed", 1, "random seed of the run")
	f.BoolVar(&fl.check, "check", false, "check linearizability, execution order and liveness; exit 1 on a violation")
	f.BoolVar(&fl.checkDeterminism, "check-determinism", false, "run twice and compare the trace digests; exit 1 if they differ")
	f.DurationVar(&fl.checkTimeout, "check-timeout", time.Minute, "timeout of the linearizability check (an unfinished check fails)")
	f.BoolVar(&fl.porcupine, "porcupine", false, "check linearizability with Porcupine, the reference checker, even when every put's value is unique (by default such histories are decided in polynomial time)")
	f.StringVar(&fl.report, "report", "", "write Porcupine's HTML visualization of the history to this file (runs the linearizability check with Porcupine); with --check a violation is always written, by default to the temp directory")
	f.BoolVar(&fl.json, "json", false, "print one JSON object instead of the table")
	f.BoolVar(&fl.codecCheck, "codec-check", false, "round-trip every message through the protocol's codec")
	f.IntVar(&fl.compactEvery, "compact-every", 0, "checkpoint every N persisted records (protocols that compact); restarts then start from the checkpoint")
	f.IntVar(&fl.groups, "groups", 0, "atomic multicast: G groups of 2f+1 replicas (nodes = G*(2f+1)); 0 = no multicast")
	f.StringVar(&fl.dest, "dest", "mixed", "atomic multicast: destination groups per command, K or mixed (1..G drawn per command)")
	return cmd
}

// config turns the flags into a validated simnet.Config.
func (fl *simFlags) config(cmd *cobra.Command) (simnet.Config, error) {
	cfg := simnet.Config{
		Protocol: fl.protocol, Nodes: fl.nodes, F: fl.f, E: fl.e,
		Clients: fl.clients, Ops: fl.ops, Keys: fl.keys, Conflict: fl.conflict, Reads: fl.reads, Size: fl.size,
		Latency: fl.latency, Sites: fl.sites, Faults: fl.faults, Seed: fl.seed, CodecCheck: fl.codecCheck, CompactEvery: fl.compactEvery,
	}
	if fl.groups > 0 {
		cfg.Groups = fl.groups
		if !cmd.Flags().Changed("nodes") {
			cfg.Nodes = 0
		}
		if fl.dest != "mixed" {
			k, err := strconv.Atoi(fl.dest)
			if err != nil || k < 1 || k > fl.groups {
				return cfg, fmt.Errorf("sim: --dest %q: need mixed or 1..%d", fl.dest, fl.groups)
			}
			cfg.Dest = k
		}
		if cfg.F == 0 {
			cfg.F = 1
		}
		if cfg.F < 1 {
			return cfg, fmt.Errorf("sim: --f %d: need at least 1", fl.f)
		}
		cfg.Nodes = fl.groups * (2*cfg.F + 1)
		if cmd.Flags().Changed("nodes") && fl.nodes != cfg.Nodes {
			return cfg, fmt.Errorf("sim: --nodes %d with --groups %d and f %d: need %d", fl.nodes, fl.groups, cfg.F, cfg.Nodes)
		}
	} else if cmd.Flags().Changed("dest") {
		return cfg, fmt.Errorf("sim: --dest needs --groups")
	}
	switch {
	case fl.nodes < 1:
		return cfg, fmt.Errorf("sim: --nodes %d: need at least 1", fl.nodes)
	case fl.groups == 0 && cmd.Flags().Changed("f") && (fl.f < 1 || fl.f > (fl.nodes-1)/2):
		return cfg, fmt.Errorf("sim: --f %d with %d nodes: need 1 <= f <= %d", fl.f, fl.nodes, (fl.nodes-1)/2)
	case fl.clients < 1:
		return cfg, fmt.Errorf("sim: --clients %d: need at least 1", fl.clients)
	case fl.ops < 1:
		return cfg, fmt.Errorf("sim: --ops %d: need at least 1", fl.ops)
	case fl.keys < 1:
		return cfg, fmt.Errorf("sim: --keys %d: need at least 1", fl.keys)
	case fl.conflict < 0 || fl.conflict > 100:
		return cfg, fmt.Errorf("sim: --conflict %v: need a percentage in 0..100", fl.conflict)
	case fl.reads < 0 || fl.reads > 100:
		return cfg, fmt.Errorf("sim: --reads %v: need a percentage in 0..100", fl.reads)
	case fl.checkTimeout <= 0:
		return cfg, fmt.Errorf("sim: --check-timeout %v: need a positive duration", fl.checkTimeout)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("sim: %w", err)
	}
	return cfg, nil
}

// simReport is the --json output.
type simReport struct {
	Protocol           string       `json:"protocol"`
	Nodes              int          `json:"nodes"`
	F                  int          `json:"f"`
	Seed               uint64       `json:"seed"`
	Digest             string       `json:"digest"`
	Latency            string       `json:"latency"`
	Faults             string       `json:"faults"`
	FaultLog           []string     `json:"fault_log,omitempty"`
	Ops                int          `json:"ops"`
	Completed          int          `json:"completed"`
	OK                 int          `json:"ok"`
	Unknown            int          `json:"unknown"`
	AllDone            bool         `json:"all_done"`
	Linearizable       any          `json:"linearizable,omitempty"`
	OrderOK            *bool        `json:"order_ok,omitempty"`
	Contract           string       `json:"contract,omitempty"`
	Deterministic      *bool        `json:"deterministic,omitempty"`
	MeanLatencyMS      float64      `json:"mean_latency_ms"`
	P50LatencyMS       float64      `json:"p50_latency_ms"`
	P95LatencyMS       float64      `json:"p95_latency_ms"`
	P99LatencyMS       float64      `json:"p99_latency_ms"`
	ThroughputOpsS     float64      `json:"throughput_ops_s"`
	FastPaths          int64        `json:"fast_paths"`
	SlowPaths          int64        `json:"slow_paths"`
	MessagesPerCommand float64      `json:"messages_per_command"`
	Messages           int64        `json:"messages"`
	Deliveries         int64        `json:"deliveries"`
	VirtualSeconds     float64      `json:"virtual_seconds"`
	WallSeconds        float64      `json:"wall_seconds"`
	PerSite            []siteReport `json:"per_site"`
	Leader             uint32       `json:"leader,omitempty"`
	LeaderSite         string       `json:"leader_site,omitempty"`
	Errors             []string     `json:"errors,omitempty"`
	// Multicast runs only.
	Groups                  int      `json:"groups,omitempty"`
	LeaderDeliveryLatencyMS *float64 `json:"leader_delivery_latency_ms,omitempty"`
	MulticastOK             *bool    `json:"multicast_ok,omitempty"`
}

type siteReport struct {
	Site          string  `json:"site"`
	Ops           int     `json:"ops"`
	MeanLatencyMS float64 `json:"mean_latency_ms"`
	P50LatencyMS  float64 `json:"p50_latency_ms"`
	P99LatencyMS  float64 `json:"p99_latency_ms"`
}

// contractChecks says what --check verifies for a weaker contract.
var contractChecks = map[protocols.Contract]string{
	protocols.Sequential: "update order, sequential consistency against the executed update order",
	protocols.Weak:       "merge of issued updates, one arbitration order, read-your-writes and monotonic reads per session, convergence after the drain, no lost update",
	protocols.Merge:      "no update executed twice, read-your-writes and monotonic reads per session, every node executed the same updates after the drain, every acknowledged one",
}

// runSim runs cfg, checks what the flags ask for, and prints the result.
func runSim(out io.Writer, cfg simnet.Config, fl *simFlags) error {
	contract := protocols.Linearizable
	if fl.check {
		// A protocol with a weaker declared contract is checked against
		// that contract: its run records executions (and drains, weak).
		if c, k, err := simtest.ForContract(cfg); err == nil {
			cfg, contract = c, k
		}
	}
	start := time.Now()
	res, err := simnet.Run(cfg)
	wall := time.Since(start)
	if err != nil {
		if errors.Is(err, simnet.ErrConfig) {
			return &exitError{code: 2, err: fmt.Errorf("sim: %w", err)}
		}
		return &exitError{code: 1, err: fmt.Errorf("sim: seed %d: run failed: %w", cfg.Seed, err)}
	}
	var failures []string
	rep := simReport{
		Protocol: res.Protocol, Nodes: res.Nodes, F: res.F, Seed: res.Seed, Digest: fmt.Sprintf("%016x", res.Digest),
		Latency: res.Latency, Faults: res.Faults, FaultLog: res.FaultLog,
		Ops: res.Ops, Completed: res.Completed, OK: res.OK, Unknown: res.Info, AllDone: res.AllDone,
		MeanLatencyMS: res.Overall.Mean, P50LatencyMS: res.Overall.P50, P95LatencyMS: res.Overall.P95, P99LatencyMS: res.Overall.P99,
		ThroughputOpsS: res.Throughput, FastPaths: res.FastPaths, SlowPaths: res.SlowPaths,
		MessagesPerCommand: res.MessagesPerCommand, Messages: res.Messages, Deliveries: res.Deliveries,
		Leader: uint32(res.Leader), LeaderSite: res.LeaderSite,
		VirtualSeconds: float64(res.Duration) / 1e6, WallSeconds: wall.Seconds(),
	}
	if res.Groups > 0 {
		rep.Groups = res.Groups
		lat := res.LeaderDeliveryLatency
		rep.LeaderDeliveryLatencyMS = &lat
	}
	for _, s := range res.PerSite {
		rep.PerSite = append(rep.PerSite, siteReport{Site: s.Site, Ops: s.Count, MeanLatencyMS: s.Mean, P50LatencyMS: s.P50, P99LatencyMS: s.P99})
	}

	var checks []string
	if fl.checkDeterminism {
		again, err := simnet.Run(cfg)
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("sim: seed %d: second run failed: %w", cfg.Seed, err)}
		}
		same := again.Digest == res.Digest
		rep.Deterministic = &same
		if same {
			checks = append(checks, fmt.Sprintf("determinism ok (two runs, digest %016x)", res.Digest))
		} else {
			failures = append(failures, fmt.Sprintf("seed %d: determinism violated: digests %016x and %016x differ", cfg.Seed, res.Digest, again.Digest))
		}
	}
	if fl.check && contract != protocols.Linearizable {
		if err := simtest.CheckContract(res, contract); err != nil {
			failures = append(failures, fmt.Sprintf("seed %d: %s contract check failed: %v", cfg.Seed, contract, err))
		} else {
			checks = append(checks, fmt.Sprintf("%s contract ok (%s)", contract, contractChecks[contract]))
		}
		rep.Contract = contract.String()
	}
	if fl.check && contract == protocols.Sequential {
		orderOK := len(res.OrderViolations) == 0
		rep.OrderOK = &orderOK
	}
	if fl.check && contract == protocols.Linearizable {
		orderOK := len(res.OrderViolations) == 0
		rep.OrderOK = &orderOK
		if orderOK {
			checks = append(checks, "order ok")
		} else {
			failures = append(failures, fmt.Sprintf("seed %d: order check failed: %v", cfg.Seed, res.OrderError()))
		}
		if res.Groups > 0 {
			mcOK := len(res.MulticastViolations) == 0
			rep.MulticastOK = &mcOK
			if mcOK {
				checks = append(checks, "multicast ok (integrity, agreement, per-group order, acyclic order)")
			} else {
				failures = append(failures, fmt.Sprintf("seed %d: multicast check failed: %v", cfg.Seed, res.MulticastError()))
			}
		}
	}
	if fl.check {
		if err := res.LivenessError(); err != nil {
			failures = append(failures, fmt.Sprintf("seed %d: liveness check failed: %v", cfg.Seed, err))
		} else {
			checks = append(checks, "liveness ok (all operations completed)")
		}
	}
	if (fl.check && contract == protocols.Linearizable) || fl.report != "" {
		var lin lincheck.Result
		if fl.porcupine || fl.report != "" { // the report is Porcupine's drawing of its linearization
			model := lincheck.KVModel
			if res.Groups > 0 {
				model = lincheck.MultiKVModel
			}
			lin = lincheck.Check(model, res.Operations(), fl.checkTimeout)
		} else {
			lin = res.CheckLinearizable(fl.checkTimeout)
		}
		switch lin.Verdict {
		case lincheck.Ok:
			rep.Linearizable = true
			checks = append(checks, fmt.Sprintf("linearizable ok (%d operations, %d keys, %.1fs, %s)", lin.Operations, lin.Partitions, lin.Elapsed.Seconds(), lin.Checker))
		case lincheck.Illegal:
			rep.Linearizable = false
		default:
			rep.Linearizable = "unknown"
		}
		where := ""
		report := fl.report
		if report == "" && lin.Verdict == lincheck.Illegal && fl.check {
			report = filepath.Join(os.TempDir(), fmt.Sprintf("blossom-sim-%s-seed-%d.html", cfg.Protocol, cfg.Seed))
		}
		if report != "" {
			if err := lin.WriteHTML(report); err != nil {
				failures = append(failures, fmt.Sprintf("seed %d: write report: %v", cfg.Seed, err))
			} else {
				where = "; report: " + report
				checks = append(checks, "report written to "+report)
			}
		}
		if lin.Verdict != lincheck.Ok && fl.check {
			failures = append(failures, fmt.Sprintf("seed %d: linearizability check failed (%s): %v%s", cfg.Seed, lin.Verdict, lin.Err(), where))
		}
	}
	rep.Errors = failures

	if fl.json {
		enc := json.NewEncoder(out)
		if err := enc.Encode(rep); err != nil {
			return &exitError{code: 1, err: fmt.Errorf("sim: write json: %w", err)}
		}
	} else {
		printSim(out, res, wall, checks, failures)
	}
	if len(failures) > 0 {
		return &exitError{code: 1, err: errors.New(strings.Join(failures, "\n"))}
	}
	return nil
}

func printSim(out io.Writer, res *simnet.Result, wall time.Duration, checks, failures []string) {
	yes := map[bool]string{true: "yes", false: "NO"}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "protocol\t%s (nodes %d, f %d)\n", res.Protocol, res.Nodes, res.F)
	fmt.Fprintf(w, "seed\t%d\n", res.Seed)
	fmt.Fprintf(w, "digest\t%016x\n", res.Digest)
	fmt.Fprintf(w, "latency\t%s (tick %s, client timeout %s)\n", res.Latency, usDur(res.Tick), usDur(res.ClientTimeout))
	if res.Faults != "none" {
		fmt.Fprintf(w, "faults\t%s (window until %s)\n", res.Faults, usDur(res.FaultWindow))
		for _, l := range res.FaultLog {
			fmt.Fprintf(w, "\t%s\n", l)
		}
	} else {
		fmt.Fprintf(w, "faults\tnone\n")
	}
	fmt.Fprintf(w, "ops\t%d requested, %d completed (%d ok, %d unknown outcome); all done: %s\n",
		res.Ops, res.Completed, res.OK, res.Info, yes[res.AllDone])
	fmt.Fprintf(w, "duration\t%.3f s virtual, %.3f s wall (%.0f deliveries/s)\n",
		float64(res.Duration)/1e6, wall.Seconds(), float64(res.Deliveries)/max(wall.Seconds(), 1e-9))
	fmt.Fprintf(w, "throughput\t%.1f ops/s\n", res.Throughput)
	fmt.Fprintf(w, "messages\t%d sent, %d delivered, %d dropped; %.2f per command\n",
		res.Messages, res.Deliveries, res.Dropped, res.MessagesPerCommand)
	fmt.Fprintf(w, "paths\tfast %d, slow %d\n", res.FastPaths, res.SlowPaths)
	if res.Groups > 0 {
		fmt.Fprintf(w, "multicast\t%d groups; leader delivery latency %.3f ms (mean of %d commands)\n", res.Groups, res.LeaderDeliveryLatency, res.LeaderDeliveries)
	}
	if res.Leader != 0 {
		fmt.Fprintf(w, "leader\tnode %d (%s) at the end of the run\n", res.Leader, res.LeaderSite)
	}
	w.Flush()

	fmt.Fprintln(out)
	width := len("overall")
	for _, s := range res.PerSite {
		width = max(width, len(s.Site))
	}
	fmt.Fprintf(out, "%-*s %7s %9s %9s %9s %9s\n", width, "site", "ops", "mean ms", "p50 ms", "p95 ms", "p99 ms")
	row := func(name string, s simnet.LatencyStats) {
		fmt.Fprintf(out, "%-*s %7d %9.2f %9.2f %9.2f %9.2f\n", width, name, s.Count, s.Mean, s.P50, s.P95, s.P99)
	}
	row("overall", res.Overall)
	for _, s := range res.PerSite {
		row(s.Site, s.LatencyStats)
	}
	if len(checks)+len(failures) > 0 {
		fmt.Fprintln(out)
	}
	for _, c := range checks {
		fmt.Fprintf(out, "check: %s\n", c)
	}
	for _, f := range failures {
		fmt.Fprintf(out, "FAILED: %s\n", f)
	}
}

func usDur(us int64) time.Duration { return time.Duration(us) * time.Microsecond }
