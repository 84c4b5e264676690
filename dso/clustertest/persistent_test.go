package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/ring"
	"github.com/blossom-dso/blossom/lincheck"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/runner"
)

// scenario is one cluster run of TestPersistentFaults.
type scenario struct {
	clusterSpec
	clients  int           // workload sessions
	parties  int           // barrier parties (sessions of their own)
	duration time.Duration // the workload's and the nemesis's time
	think    time.Duration // see workload.think
	// skip, if not empty, names a known bug that makes the scenario fail.
	skip string
}

// String names the scenario: its cluster, and whether its sessions are
// paced.
func (s scenario) String() string {
	if s.think > 0 {
		return s.clusterSpec.String() + "-paced"
	}
	return s.clusterSpec.String()
}

// scenarios are the runs of TestPersistentFaults: every protocol on three
// nodes with rf = 3, and paxos, atlas and wbcast on more nodes than rf
// (wbcast needs a multiple of rf: two disjoint groups of three).
//
// Skeen runs with paced sessions, as in runner/clustertest: it has no
// state transfer (protocols/skeen/doc.go), so a replica killed for a
// second or two under the unpaced workload falls behind its group's
// retention window for good and never serves again (everyNodeServes
// catches it); the unpaced scenario is skipped, naming that limitation.
func scenarios() []scenario {
	var out []scenario
	for _, s := range []clusterSpec{
		{protocol: "paxos", n: 3, rf: 3},
		{protocol: "fpaxos", n: 3, rf: 3},
		{protocol: "epaxos", n: 3, rf: 3},
		{protocol: "atlas", n: 3, rf: 3},
		{protocol: "mencius", n: 3, rf: 3},
		{protocol: "wbcast", n: 3, rf: 3},
		{protocol: "skeen", n: 3, rf: 3},
		{protocol: "paxos", n: 5, rf: 3},
		{protocol: "atlas", n: 5, rf: 3},
		{protocol: "wbcast", n: 6, rf: 3},
	} {
		// Snapshots every few hundred records: restarted replicas
		// recover objects and parked awaits from a snapshot too.
		s.compactEvery = 300
		// With one group, the nemesis freezes its leader (where the
		// protocol has one), read from the nodes' metrics.
		s.admin = s.n == s.rf
		sc := scenario{clusterSpec: s, clients: 4, parties: 3, duration: 10 * time.Second}
		if s.protocol == "skeen" {
			sc.skip = skeenNoStateTransfer
			paced := sc
			// 60 ms between a session's calls: at 40 ms, seed
			// 1796183892088324732 (its leader frozen, node 3 killed
			// twice) left node 3 behind the retention window for good.
			paced.skip, paced.think = "", 60*time.Millisecond
			out = append(out, paced)
		}
		out = append(out, sc)
	}
	return out
}

// skeenNoStateTransfer is the reason the unpaced skeen scenario is skipped.
const skeenNoStateTransfer = "known limitation of skeen, not of persistent objects: no state transfer (protocols/skeen/doc.go), " +
	"so a replica killed or frozen for 1-2s under the unpaced workload falls behind its group's Paxos retention window (1024 slots) for good: " +
	"it never executes a command again, even after every node restarts, and everyNodeServes finds that calls submitted at it " +
	"never return (seeds 1796149596854843854, 1796149713500087642)"

// TestScenariosCoverEveryProtocol checks that TestPersistentFaults runs
// every registered protocol, so that a new one is not left out silently.
func TestScenariosCoverEveryProtocol(t *testing.T) {
	have := map[string]bool{}
	for _, s := range scenarios() {
		if s.n == 3 && s.rf == 3 && s.skip == "" {
			have[s.protocol] = true
		}
	}
	for _, p := range protocols.Names() {
		if !have[p] {
			t.Errorf("protocol %s has no 3-node rf=3 scenario in TestPersistentFaults", p)
		}
	}
}

// faults counts the nemesis's work.
type faults struct {
	kills, stops int
	leaderStops  int // stops of a group's leader
	events       []string
}

// report is the outcome of one scenario, for the summary table.
type report struct {
	name                       string
	acked, unknown             int64
	incAcked, incUnknown, lost int64
	counterVerdict, mapVerdict lincheck.Verdict
	counterOps, mapOps         int
	rounds                     int
	barrierVerdict             lincheck.Verdict
	faults                     faults
	recovered, fromSnapshot    int // replicas recovered by restarts, and from a snapshot
	errs                       string
	took                       time.Duration
}

func (r report) String() string {
	return fmt.Sprintf("%-16s acknowledged=%d unknown=%d increments(acknowledged=%d unknown=%d lost=%d) porcupine(counters=%s/%d ops, map=%s/%d ops) barrier(rounds=%d porcupine=%s) kill9=%d sigstop=%d (of a leader %d) (replicas recovered %d, from a snapshot %d) took=%v errors: %s",
		r.name, r.acked, r.unknown, r.incAcked, r.incUnknown, r.lost, r.counterVerdict, r.counterOps, r.mapVerdict, r.mapOps,
		r.rounds, r.barrierVerdict, r.faults.kills, r.faults.stops, r.faults.leaderStops, r.recovered, r.fromSnapshot, r.took.Round(100*time.Millisecond), r.errs)
}

// TestPersistentFaults runs, for every scenario, the counter and map
// workload and the barrier parties on persistent objects while the nemesis
// kills and restarts nodes and freezes them, then checks that no
// acknowledged increment is lost, that the histories are linearizable and
// that every barrier round was crossed by all its parties.
func TestPersistentFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("real-process cluster test; skipped under -short")
	}
	var reports []report
	for _, s := range scenarios() {
		t.Run(s.String(), func(t *testing.T) {
			if s.skip != "" && os.Getenv("BLOSSOM_CLUSTERTEST_KNOWN") == "" {
				t.Skip(s.skip + " (set BLOSSOM_CLUSTERTEST_KNOWN=1 to run it)")
			}
			r := s.run(t)
			r.name = s.String()
			t.Log(r)
			reports = append(reports, r)
		})
	}
	var b strings.Builder
	for _, r := range reports {
		b.WriteString("\n" + r.String())
	}
	t.Logf("summary:%s", b.String())
}

// run starts the cluster, runs the workload, the barrier parties and the
// nemesis, heals every node, reads the final values and checks them.
func (s scenario) run(t *testing.T) report {
	seed := testSeed(t)
	blossomBinary(t) // built before the clock starts
	t0 := time.Now()
	c := startCluster(t, s.clusterSpec)
	disjoint := runner.Multicast(s.protocol)
	counters := countersFor(t, c, 3, disjoint)
	entries := []string{"e0", "e1", "e2"}

	// The first calls wait for the groups to be ready (leaders elected).
	warm := c.dial(context.Background()).Persistent()
	for _, k := range counters {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := dso.NewAtomicLong(warm, k).Get(ctx)
		cancel()
		if err != nil {
			t.Fatalf("first read of %s: %v", k, err)
		}
	}

	h := newHistory()
	w := workload{clients: s.clients, counters: counters, entries: entries, multi: disjoint, think: s.think, seed: seed}
	sessions := w.dial(c)
	stopIssuing, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(sessions, h, stopIssuing)
	}()
	bar, stopBarrier, waitBarrier := runBarrier(c, "b", s.parties, seed)
	barrierDone := make(chan struct{})
	go func() {
		defer close(barrierDone)
		waitBarrier()
	}()

	fs := nemesis(t, c, rand.New(rand.NewPCG(seed, 1)), time.Now().Add(s.duration))
	stop()
	c.healAll()
	stopBarrier()
	for _, e := range fs.events {
		t.Log("nemesis: " + e)
	}
	if s.admin && (s.protocol == "paxos" || s.protocol == "fpaxos") && fs.stops > 0 && fs.leaderStops == 0 {
		t.Errorf("no SIGSTOP hit the leader: the nodes reported none (blossom_dso_replica_leader)")
	}
	t.Logf("nemesis done, every node up: %v after the start", time.Since(t0).Round(time.Millisecond))
	select {
	case <-done:
	case <-time.After(callTimeout + 10*time.Second):
		t.Fatalf("the workload did not end within %v of its last call", callTimeout+10*time.Second)
	}
	t.Logf("workload ended: %v after the start", time.Since(t0).Round(time.Millisecond))
	select {
	case <-barrierDone:
	case <-time.After(awaitTimeout + 10*time.Second):
		t.Fatalf("the barrier parties did not end within %v", awaitTimeout+10*time.Second)
	}
	t.Logf("barrier parties ended: %v after the start", time.Since(t0).Round(time.Millisecond))

	// Final reads, every node up, recorded in the histories too.
	p := c.dial(context.Background()).Persistent()
	final := map[string]int64{}
	for _, k := range counters {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, err := h.get(ctx, p, 1000, k)
		cancel()
		if err != nil {
			t.Fatalf("final read of counter %s, every node up: %v", k, err)
		}
		final[k] = v
	}
	finalMap := map[string]any{}
	for _, e := range entries {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		v, err := h.mapGet(ctx, p, 1000, e)
		cancel()
		if err != nil {
			t.Fatalf("final read of map entry %s, every node up: %v", e, err)
		}
		finalMap[e] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	waiting, err := dso.NewCyclicBarrier(p, "b", s.parties).Call(ctx, "getNumberWaiting")
	cancel()
	if err != nil {
		t.Fatalf("final getNumberWaiting of the barrier: %v", err)
	}
	if n, _ := dso.AsInt(waiting); n != 0 {
		t.Errorf("barrier b: %v parties still waiting after the last round, want 0", waiting)
	}

	t.Logf("final reads done: %v after the start", time.Since(t0).Round(time.Millisecond))
	everyNodeServes(t, c, "after healing")
	r := report{acked: h.acked.Load(), unknown: h.unknown.Load(), faults: fs, errs: h.errSummary()}
	// Every acknowledged increment counted, and nothing more than the
	// increments of unknown outcome besides.
	h.mu.Lock()
	for _, k := range counters {
		acked, unknown, v := h.incAcked[k], h.incUnknown[k], final[k]
		r.incAcked += acked
		r.incUnknown += unknown
		t.Logf("counter %s: final %d, acknowledged increments %d, unknown %d", k, v, acked, unknown)
		lost, err := checkCount(k, v, acked, unknown)
		r.lost += lost
		if err != nil {
			t.Error(err)
		}
	}
	h.mu.Unlock()

	cops, mops := h.counters.Operations(), h.maps.Operations()
	r.counterOps, r.mapOps = len(cops), len(mops)
	r.counterVerdict = linearizable(t, "counters", lincheck.CounterModel, cops)
	r.mapVerdict = linearizable(t, "map", lincheck.MapModel, mops)
	r.rounds, r.barrierVerdict = bar.check(t)
	if r.rounds == 0 {
		t.Errorf("barrier b: no round crossed")
	}
	if r.incAcked == 0 {
		t.Errorf("no increment acknowledged")
	}
	for _, e := range c.unexpectedExits() {
		t.Errorf("unexpected exit: %s", e)
	}
	fullRestart(t, c, counters, final, finalMap, int64(r.rounds))
	r.recovered, r.fromSnapshot = c.recoveries()
	if r.faults.kills > 0 && r.recovered == 0 {
		t.Errorf("%d nodes were killed and restarted, but no restarted replica logged its recovery", r.faults.kills)
	}
	r.took = time.Since(t0)
	return r
}

// fullRestart kills every node (kill -9) and restarts them all, then
// checks that the persistent objects are as they were: the counters, the
// map's entries and the barrier's generation.
func fullRestart(t *testing.T, c *cluster, counters []string, final map[string]int64, finalMap map[string]any, generation int64) {
	t.Helper()
	t0 := time.Now()
	for i := range c.procs {
		c.kill9(i)
	}
	c.healAll()
	up := time.Since(t0)
	defer func() {
		t.Logf("every node killed and restarted: up in %v, objects read back in %v", up.Round(time.Millisecond), (time.Since(t0) - up).Round(time.Millisecond))
	}()
	p := c.dial(context.Background()).Persistent()
	read := func(what string, f func(ctx context.Context) (any, error)) any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		v, err := f(ctx)
		if err != nil {
			t.Fatalf("after the restart of every node: read of %s: %v", what, err)
		}
		return v
	}
	for _, k := range counters {
		v := read("counter "+k, func(ctx context.Context) (any, error) { return dso.NewAtomicLong(p, k).Get(ctx) })
		if v != final[k] {
			t.Errorf("after the restart of every node: counter %s is %v, was %d", k, v, final[k])
		}
	}
	for e, want := range finalMap {
		v := read("map entry "+e, func(ctx context.Context) (any, error) { return dso.NewMap(p, mapName).Get(ctx, e) })
		if v != want {
			t.Errorf("after the restart of every node: map entry %s is %v, was %v", e, v, want)
		}
	}
	g := read("barrier generation", func(ctx context.Context) (any, error) {
		return dso.NewHandle(p, dso.TypeCyclicBarrier, "b").Call(ctx, "generation")
	})
	if n, _ := dso.AsInt(g); n != generation {
		t.Errorf("after the restart of every node: barrier b is at generation %v, want %d (the rounds crossed)", g, generation)
	}
	everyNodeServes(t, c, "after the restart of every node")
}

// serveTimeout bounds the wait of everyNodeServes for one node.
const serveTimeout = 30 * time.Second

// everyNodeServes checks that every node executes a persistent call
// submitted at it: a first increment of a new counter the node owns,
// through a client that knows only that node (no failover), must return
// 1. A replica that cannot catch up with its group after a restart would
// never answer, and its clients' calls would go to the other replicas
// unnoticed.
func everyNodeServes(t *testing.T, c *cluster, when string) {
	t.Helper()
	rg, err := ring.New(c.addrs, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range c.addrs {
		var key string
		for j := 0; key == ""; j++ {
			if k := fmt.Sprintf("serve-%d-%d-%s", i, j, strings.ReplaceAll(when, " ", "-")); rg.Owner(dso.TypeAtomicLong, k) == a {
				key = k
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), serveTimeout)
		pinned, err := client.DialOptions(ctx, client.Options{
			Endpoints: []string{a}, NoDiscovery: true, ConnsPerNode: 1, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			cancel()
			t.Fatalf("%s: dial node %d alone: %v", when, i+1, err)
		}
		v, err := dso.NewAtomicLong(pinned.Persistent(), key).AddAndGet(ctx, 1)
		cancel()
		pinned.Close()
		if err != nil || v != 1 {
			t.Errorf("%s: node %d does not serve: a first increment of %s submitted at it returned %d, %v (bound %v)", when, i+1, key, v, err, serveTimeout)
		}
	}
}

// checkCount checks the final value of a counter that only increments of
// 1 changed: acknowledged ≤ final ≤ acknowledged + unknown. It returns the
// increments lost (acknowledged but not counted) and an error describing
// a violation.
func checkCount(key string, final, acked, unknown int64) (lost int64, err error) {
	switch {
	case final < acked:
		return acked - final, fmt.Errorf("counter %s: final value %d < %d acknowledged increments: %d lost", key, final, acked, acked-final)
	case final > acked+unknown:
		return 0, fmt.Errorf("counter %s: final value %d > %d acknowledged + %d unknown increments", key, final, acked, unknown)
	}
	return 0, nil
}

// linearizable checks ops against model and fails the test unless they are
// linearizable; on a violation it writes Porcupine's visualization to a
// temp file and names it.
func linearizable(t *testing.T, what string, model porcupine.Model, ops []porcupine.Operation) lincheck.Verdict {
	t.Helper()
	res := lincheck.Check(model, ops, time.Minute)
	if err := res.Err(); err != nil {
		msg := fmt.Sprintf("%s history (%d operations): %v", what, len(ops), err)
		if res.Verdict == lincheck.Illegal {
			p := filepath.Join(os.TempDir(), fmt.Sprintf("blossom-dso-clustertest-%s-%s-%d.html",
				strings.ReplaceAll(t.Name(), "/", "_"), what, time.Now().UnixNano()))
			if werr := res.WriteHTML(p); werr == nil {
				msg += "; visualization: " + p
			}
		}
		t.Error(msg)
	}
	return res.Verdict
}

// nemesis injects one fault at a time until the time until: kill -9 of a
// random node, restarted (same flags, same data dir) after a while, and
// SIGSTOP of a node, continued after a while, alternately. The node
// stopped is the leader of replica group 0 when the nodes report one
// (blossom_dso_replica_leader, on clusters started with admin endpoints:
// paxos, fpaxos and mencius on one group), else a random node. One fault at
// a time keeps a majority of every group up.
func nemesis(t *testing.T, c *cluster, rng *rand.Rand, until time.Time) faults {
	t.Helper()
	var fs faults
	t0 := time.Now()
	kind := rng.IntN(2)
	for {
		gap := between(rng, 300*time.Millisecond, 800*time.Millisecond)
		hold := between(rng, time.Second, 2*time.Second)
		if time.Now().Add(gap + hold).After(until) {
			break
		}
		time.Sleep(gap)
		i := rng.IntN(len(c.procs))
		at := time.Since(t0).Round(time.Millisecond)
		if kind%2 == 0 {
			c.kill9(i)
			time.Sleep(hold)
			c.restart(i)
			fs.kills++
			fs.events = append(fs.events, fmt.Sprintf("%v: kill -9 node %d, restarted after %v (up at %v)", at, i+1, hold.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond)))
		} else {
			what := "node"
			if l, ok := c.leader(); ok {
				i, what = l, "leader"
				fs.leaderStops++
			}
			c.signal(i, syscall.SIGSTOP)
			time.Sleep(hold)
			c.signal(i, syscall.SIGCONT)
			fs.stops++
			fs.events = append(fs.events, fmt.Sprintf("%v: SIGSTOP %s %d, SIGCONT after %v", at, what, i+1, hold.Round(time.Millisecond)))
		}
		kind++
	}
	if d := time.Until(until); d > 0 {
		time.Sleep(d)
	}
	return fs
}

// between returns a random duration in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}
