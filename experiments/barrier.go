package experiments

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/blossom-dso/blossom/experiments/barrier"
)

// Figure 6c of the CRUCIAL deliverable (D4.3): the time to cross a barrier
// by number of parties, the DSO's CyclicBarrier against a Redis barrier on
// BLPOP and a ZooKeeper double barrier. Each measurement starts its own
// server (a `blossom server` child, redis-server, a ZooKeeper ensemble of
// ZooKeeperNodes from Debian's zookeeperd) on loopback and stops it after.
func init() { Register(barrierCrossing) }

// ZooKeeperNodes is the size of the ZooKeeper ensemble of the barrier
// experiment: 3, as in the deliverable.
const ZooKeeperNodes = 3

// barrierRounds is the number of barriers crossed back to back (after one
// warm-up barrier) per measurement; the deliverable crossed 1,000. Quick
// crosses 4: on two loaded cores the ZooKeeper barrier takes about a
// second per crossing at 100 parties, ten at 1,000.
func barrierRounds(s Size) int {
	if s == Full {
		return 100
	}
	return 4
}

// measureBarrier starts the server of system and measures the mean
// crossing time of parties parties over rounds barriers.
func measureBarrier(system string, parties, rounds int) ([]Metric, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var (
		srv  *barrier.Server
		err  error
		join barrier.Join
	)
	key := fmt.Sprint("fig6c-", time.Now().UnixNano())
	switch system {
	case "blossom":
		if srv, err = barrier.StartBlossom(ctx, BlossomBinary); err == nil {
			join = func(ctx context.Context, _ int) (barrier.Party, error) {
				return barrier.JoinDSO(ctx, srv.Addrs, key, parties)
			}
		}
	case "redis":
		if srv, err = barrier.StartRedis(ctx); err == nil {
			join = func(ctx context.Context, _ int) (barrier.Party, error) {
				return barrier.JoinRedis(ctx, srv.Addrs[0], key, parties)
			}
		}
	case "zookeeper":
		if srv, err = barrier.StartZooKeeper(ctx, ZooKeeperNodes); err == nil {
			join = func(ctx context.Context, i int) (barrier.Party, error) {
				// Each party talks to one server of the ensemble, spread
				// evenly, as clients of a ZooKeeper cluster do.
				return barrier.JoinZooKeeper(ctx, []string{srv.Addrs[i%len(srv.Addrs)]}, "/"+key, parties)
			}
		}
	default:
		return nil, fmt.Errorf("barrier: unknown system %q", system)
	}
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	res, err := barrier.Cross(ctx, parties, rounds, join)
	if err != nil {
		return nil, err
	}
	return []Metric{
		{"crossing_ms", float64(res.Crossing) / 1e6},
		{"join_s", res.Join.Seconds()},
	}, nil
}

var barrierCrossing = &Experiment{
	Name:   "barrier",
	Title:  "Barrier crossing time by number of parties: the DSO's CyclicBarrier (one server), a Redis BLPOP barrier (one server), a ZooKeeper double barrier (3-node ensemble), on loopback (D4.3 Figure 6c)",
	Paper:  "CloudButton D4.3 (CRUCIAL), Figure 6c: average time to cross one of 1,000 back-to-back barriers, AWS Lambda threads; text: 68 ms for CRUCIAL and Redis at 1,800 threads, ZooKeeper twice CRUCIAL (P)'s 287 ms",
	Params: []string{"parties", "system"},
	Points: func(s Size) []Point {
		if s == Full {
			return grid([]string{"parties", "system"}, []string{"10", "100", "250", "500", "750", "1000", "1800"},
				[]string{"blossom", "redis", "zookeeper"})
		}
		// Quick leaves out ZooKeeper at 1,000 parties: 10-20 s per
		// crossing and 10-40 s to open the sessions on two loaded cores,
		// more than the rest of the quick grid together.
		pts := grid([]string{"parties", "system"}, []string{"10", "100", "250", "1000"}, []string{"blossom", "redis", "zookeeper"})
		return slices.DeleteFunc(pts, func(p Point) bool { return p.Get("parties") == "1000" && p.Get("system") == "zookeeper" })
	},
	Reps: func(s Size) int {
		if s == Full {
			return 3
		}
		return 2
	},
	Measure: func(p Point, rep int, size Size) ([]Metric, error) {
		parties, err := strconv.Atoi(p.Get("parties"))
		if err != nil || parties < 1 {
			return nil, fmt.Errorf("barrier: parties %q", p.Get("parties"))
		}
		return measureBarrier(p.Get("system"), parties, barrierRounds(size))
	},
	Figure: Figure{
		Title: "Barrier crossing time by parties (D4.3 Figure 6c)", X: "parties", XLabel: "parties (goroutines, one connection each)",
		Y: "crossing_ms", YLabel: "mean time to cross one barrier (ms)", Series: []string{"system"},
		// The text's numbers at 1,800 threads: CRUCIAL's and Redis's
		// barriers 68 ms, ZooKeeper twice the 287 ms of CRUCIAL (P).
		Paper: []PaperValue{
			{Series: "blossom", X: 1800, Y: 68}, {Series: "redis", X: 1800, Y: 68}, {Series: "zookeeper", X: 1800, Y: 2 * 287},
		},
		PaperOutside: true,
		LogY:         true,
	},
}
