package experiments

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	_ "github.com/blossom-dso/blossom/protocols/atlas"              // registers atlas
	_ "github.com/blossom-dso/blossom/protocols/epaxos"             // registers epaxos
	_ "github.com/blossom-dso/blossom/protocols/mencius"            // registers mencius
	_ "github.com/blossom-dso/blossom/protocols/paxos"              // registers paxos, fpaxos
	_ "github.com/blossom-dso/blossom/protocols/skeen"              // registers skeen
	_ "github.com/blossom-dso/blossom/protocols/whitebox-multicast" // registers wbcast
	"github.com/blossom-dso/blossom/simnet"
)

// The simulator experiments: the Atlas planet figure, white-box multicast's
// leader-delivery latency, and the simulator's own speed.
func init() {
	Register(planet)
	Register(multicast)
	Register(simSpeed)
}

// WarmupFraction is the share of each client's first operations left out of
// the planet experiment's means: they include the leader election (FPaxos)
// and the first contacts, which the paper's long runs amortise.
const WarmupFraction = 0.1

// steadyStats returns the mean latency in ms of the OK operations of res
// after each client's warm-up (its first WarmupFraction of operations, at
// least one), overall and per site, and how many operations they average.
func steadyStats(res *simnet.Result) (mean float64, count int, perSite map[string]float64) {
	byClient := map[int][]simnet.Op{}
	for _, op := range res.History {
		byClient[op.Client] = append(byClient[op.Client], op)
	}
	sum := 0.0
	siteSum, siteN := map[string]float64{}, map[string]int{}
	for _, ops := range byClient {
		sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
		skip := max(1, int(math.Ceil(float64(len(ops))*WarmupFraction)))
		if skip >= len(ops) {
			skip = len(ops) - 1
		}
		for _, op := range ops[skip:] {
			if op.Outcome != simnet.OutcomeOK || op.Return < op.Call {
				continue
			}
			ms := float64(op.Return-op.Call) / 1000
			sum += ms
			count++
			siteSum[op.Site] += ms
			siteN[op.Site]++
		}
	}
	perSite = map[string]float64{}
	for s, v := range siteSum {
		perSite[s] = v / float64(siteN[s])
	}
	if count == 0 {
		return math.NaN(), 0, perSite
	}
	return sum / float64(count), count, perSite
}

// planetConfigs are the protocol configurations of the Atlas planet figure.
var planetConfigs = []struct{ protocol, f string }{
	{"atlas", "1"}, {"atlas", "2"}, {"fpaxos", "1"}, {"fpaxos", "2"}, {"epaxos", ""}, {"mencius", ""},
}

var planet = &Experiment{
	Name:   "planet",
	Title:  "Mean client latency by number of GCP sites, conflict-free workload (Atlas Fig. planet)",
	Paper:  "Enes et al., State-Machine Replication for Planet-Scale Systems (Atlas), EuroSys 2020",
	Params: []string{"sites", "protocol", "f"},
	Points: func(s Size) []Point {
		var pts []Point
		for _, n := range []int{3, 5, 7, 9, 11, 13} {
			for _, c := range planetConfigs {
				if c.f == "2" && n < 5 {
					continue // f=2 needs 5 sites
				}
				pts = append(pts, Point{{"sites", strconv.Itoa(n)}, {"protocol", c.protocol}, {"f", c.f}})
			}
		}
		return pts
	},
	Reps: func(s Size) int {
		if s == Full {
			return 5
		}
		return 3
	},
	Measure: func(p Point, rep int, size Size) ([]Metric, error) {
		n, _ := strconv.Atoi(p.Get("sites"))
		f, _ := strconv.Atoi(p.Get("f"))
		perClient, perSite := 50, 2
		if size == Full {
			perClient, perSite = 200, 8
		}
		clients := n * perSite
		cfg := simnet.Config{
			Protocol: p.Get("protocol"), Nodes: n, F: f, Clients: clients, Ops: clients * perClient,
			Keys: 10, Conflict: 0, Reads: 50, Size: 16, Latency: "planet:gcp", Faults: "none", Seed: uint64(rep + 1),
		}
		leader := 0.0
		if cfg.Protocol == "fpaxos" || cfg.Protocol == "paxos" {
			// The paper's leader at its best site, elected from the start.
			cfg.Leader = "best"
			id, err := simnet.BestLeader(cfg)
			if err != nil {
				return nil, err
			}
			leader = float64(id)
		}
		res, err := simnet.Run(cfg)
		if err != nil {
			return nil, err
		}
		if !res.AllDone {
			return nil, res.LivenessError()
		}
		mean, count, sites := steadyStats(res)
		ms := []Metric{
			{"mean_ms", mean}, {"mean_all_ms", res.Overall.Mean}, {"p50_ms", res.Overall.P50},
			{"p99_ms", res.Overall.P99}, {"ops_measured", float64(count)},
		}
		if leader > 0 {
			ms = append(ms, Metric{"leader_node", leader})
		}
		names := make([]string, 0, len(sites))
		for s := range sites {
			names = append(names, s)
		}
		sort.Strings(names)
		for _, s := range names {
			ms = append(ms, Metric{"site_mean_ms@" + s, sites[s]})
		}
		return ms, nil
	},
	Figure: Figure{
		Title: "Planet: mean latency, GCP sites, 0% conflict", X: "sites", XLabel: "sites",
		Y: "mean_ms", YLabel: "mean latency (ms), warm-up excluded", Series: []string{"protocol", "f"},
		Breakdown: &Breakdown{
			Prefix: "site_mean_ms@", Title: "Planet: mean latency per site, largest deployment",
			XLabel: "site (GCP region)", YLabel: "mean latency (ms), warm-up excluded",
		},
	},
}

var multicast = &Experiment{
	Name:   "multicast",
	Title:  "Leader-delivery latency in message delays by number of destination groups, wbcast vs skeen",
	Paper:  "Gotsman, Lefort, Chockler, White-Box Atomic Multicast, DSN 2019",
	Params: []string{"groups", "protocol", "clients"},
	Points: func(s Size) []Point {
		gs, cs := []string{"1", "2", "3", "4"}, []string{"1", "8"}
		if s == Full {
			gs, cs = append(gs, "6", "8"), append(cs, "32")
		}
		return grid([]string{"groups", "protocol", "clients"}, gs, []string{"wbcast", "skeen"}, cs)
	},
	Reps: func(s Size) int {
		if s == Full {
			return 5
		}
		return 3
	},
	Measure: func(p Point, rep int, size Size) ([]Metric, error) {
		g, _ := strconv.Atoi(p.Get("groups"))
		clients, _ := strconv.Atoi(p.Get("clients"))
		ops := 50 * clients
		if size == Full {
			ops = 250 * clients
		}
		res, err := simnet.Run(simnet.Config{
			Protocol: p.Get("protocol"), Groups: g, Dest: g, F: 1, Clients: clients, Ops: ops, Keys: 10,
			Conflict: 10, Reads: 50, Size: 16, Latency: "constant:10", Faults: "none", Seed: uint64(rep + 1),
		})
		if err != nil {
			return nil, err
		}
		if !res.AllDone {
			return nil, res.LivenessError()
		}
		if res.LeaderDeliveries == 0 {
			return nil, fmt.Errorf("no leader deliveries measured")
		}
		return []Metric{
			{"leader_delivery_delays", res.LeaderDeliveryLatency / 10},
			{"leader_delivery_ms", res.LeaderDeliveryLatency},
			{"client_mean_ms", res.Overall.Mean},
			{"throughput_ops_s", res.Throughput},
		}, nil
	},
	Figure: Figure{
		Title: "White-box multicast: delivery at a leader, constant 10 ms links", X: "groups", XLabel: "destination groups",
		Y: "leader_delivery_delays", YLabel: "leader-delivery latency (message delays)", Series: []string{"protocol", "clients"},
		Paper: paperDelays(),
	},
}

// paperDelays are DSN'19's failure-free, contention-free message-delay
// counts to delivery at a leader: 3 for the white-box protocol, 6 for
// Skeen layered on Paxos when a message goes to several groups (one group
// is plain Paxos: no second timestamp round). They are drawn beside the
// one-client series, the contention-free runs.
func paperDelays() []PaperValue {
	var out []PaperValue
	for _, g := range []float64{1, 2, 3, 4, 6, 8} {
		out = append(out, PaperValue{Series: "wbcast clients=1", X: g, Y: 3})
		if g > 1 {
			out = append(out, PaperValue{Series: "skeen clients=1", X: g, Y: 6})
		}
	}
	return out
}

// speedProtocols are the protocols whose simulation speed simspeed measures.
var speedProtocols = []string{"paxos", "fpaxos", "epaxos", "atlas", "mencius", "wbcast", "skeen"}

var simSpeed = &Experiment{
	Name:   "simspeed",
	Title:  "Simulator speed: deliveries per wall-clock second per protocol (no faults)",
	Paper:  "(none: a property of Blossom's simulator)",
	Params: []string{"protocol"},
	Points: func(s Size) []Point {
		return grid([]string{"protocol"}, speedProtocols)
	},
	Reps: func(s Size) int {
		if s == Full {
			return 5
		}
		return 3
	},
	Measure: func(p Point, rep int, size Size) ([]Metric, error) {
		ops := 3000
		if size == Full {
			ops = 20000
		}
		cfg := simnet.Config{
			Protocol: p.Get("protocol"), Nodes: 5, Clients: 20, Ops: ops, Keys: 10, Conflict: 10, Reads: 50,
			Size: 16, Latency: "constant:1", Faults: "none", Seed: uint64(rep + 1),
		}
		if cfg.Protocol == "wbcast" || cfg.Protocol == "skeen" {
			cfg.Nodes, cfg.Groups, cfg.F = 0, 2, 1
		}
		start := time.Now()
		res, err := simnet.Run(cfg)
		wall := time.Since(start).Seconds()
		if err != nil {
			return nil, err
		}
		return []Metric{
			{"deliveries_per_s", float64(res.Deliveries) / max(wall, 1e-9)},
			{"deliveries", float64(res.Deliveries)},
			{"wall_s", wall},
			{"ops_per_wall_s", float64(res.OK) / max(wall, 1e-9)},
		}, nil
	},
	Figure: Figure{
		Title: "Simulator speed (5 replicas, constant 1 ms, no faults)", X: "protocol", XLabel: "protocol",
		Y: "deliveries_per_s", YLabel: "deliveries per wall-clock second", Series: nil, Bars: true,
	},
}
