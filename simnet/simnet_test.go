package simnet

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/lincheck"
	"github.com/blossom-dso/blossom/protocols"
)

func toyConfig(seed uint64) Config {
	return Config{
		Protocol: "toy-seq", Nodes: 5, Clients: 10, Ops: 600, Keys: 3,
		Conflict: 50, Reads: 40, Size: 16, Latency: "uniform:1-3", Seed: seed,
	}
}

func TestSameSeedSameDigest(t *testing.T) {
	t.Parallel()
	for _, faults := range []string{"none", "swarm"} {
		cfg := toyConfig(7)
		cfg.Faults = faults
		a, err := Run(cfg)
		require.NoError(t, err)
		b, err := Run(cfg)
		require.NoError(t, err)
		require.Equal(t, a.Digest, b.Digest, "faults=%s", faults)
		require.Equal(t, a.History, b.History)
		require.Equal(t, a.FaultLog, b.FaultLog)
		cfg.Seed = 8
		c, err := Run(cfg)
		require.NoError(t, err)
		require.NotEqual(t, a.Digest, c.Digest, "faults=%s", faults)
	}
}

func TestParseLatency(t *testing.T) {
	t.Parallel()
	good := map[string]Latency{
		"constant:1":            {Kind: Constant, ConstantMS: 1},
		"constant:0.5":          {Kind: Constant, ConstantMS: 0.5},
		"uniform:1-5":           {Kind: Uniform, MinMS: 1, MaxMS: 5},
		"planet:gcp":            {Kind: Planet, Planet: "gcp"},
		"planet:aws,jitter=2":   {Kind: Planet, Planet: "aws", JitterMS: 2},
		"constant:3,jitter=10%": {Kind: Constant, ConstantMS: 3, JitterPct: 10},
		" uniform:0-0 ":         {Kind: Uniform},
	}
	for s, want := range good {
		got, err := ParseLatency(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
		again, err := ParseLatency(got.String())
		require.NoError(t, err)
		require.Equal(t, got, again)
	}
	for _, s := range []string{"", "constant", "constant:", "constant:x", "constant:-1", "uniform:5", "uniform:5-1",
		"uniform:a-b", "planet:azure", "planet", "gauss:1", "constant:1,jitter", "constant:1,jitter=x", "constant:1,foo=1"} {
		_, err := ParseLatency(s)
		require.ErrorIs(t, err, ErrLatency, "%q", s)
	}
}

func TestParseFaults(t *testing.T) {
	t.Parallel()
	good := map[string]FaultSpec{
		"":                                   {},
		"none":                               {},
		"swarm":                              {Swarm: true},
		"swarm,ack-crash":                    {Swarm: true, AckCrash: true},
		"ack-crash,lost-tail":                {AckCrash: true, LostTail: true},
		"loss=0.05":                          {Loss: 0.05},
		"loss":                               {Loss: 0.05},
		"dup=1%,reorder":                     {Dup: 0.01, Reorder: 0.2},
		"partition,clog":                     {Partition: true, Clog: true},
		"crash-stop,crash-restart,lost-tail": {CrashStop: true, CrashRestart: true, LostTail: true},
		"loss=0.05,dup=0.01,reorder,partition,clog,crash-stop,crash-restart,lost-tail": {
			Loss: 0.05, Dup: 0.01, Reorder: 0.2, Partition: true, Clog: true, CrashStop: true, CrashRestart: true, LostTail: true},
	}
	for s, want := range good {
		got, err := ParseFaults(s)
		require.NoError(t, err, s)
		require.Equal(t, want, got, s)
		again, err := ParseFaults(got.String())
		require.NoError(t, err)
		require.Equal(t, got, again)
	}
	for _, s := range []string{"flood", "loss=2", "loss=-0.1", "loss=abc", "partition=3", "none,loss", "swarm,loss", "swarm,ack-crash,loss", "ack-crash=1", "swarm=1", "loss=0.1,", "crash"} {
		_, err := ParseFaults(s)
		require.ErrorIs(t, err, ErrFaults, "%q", s)
	}
}

func TestPlanetMatrices(t *testing.T) {
	t.Parallel()
	gcp, err := PlanetMatrix("gcp")
	require.NoError(t, err)
	for _, r := range gcpSites {
		require.True(t, gcp.HasRegion(r), r)
	}
	require.Len(t, gcpSites, 13)
	for _, a := range gcpSites {
		for _, b := range gcpSites {
			v, ok := gcp.RTT(a, b)
			require.True(t, ok, "%s-%s", a, b)
			require.Greater(t, v, 0.0)
		}
	}
	aws, err := PlanetMatrix("aws")
	require.NoError(t, err)
	for _, a := range awsSites {
		for _, b := range awsSites {
			_, ok := aws.RTT(a, b)
			require.True(t, ok, "%s-%s", a, b)
		}
	}
	_, err = PlanetMatrix("azure")
	require.Error(t, err)

	// Planet runs place nodes at the default sites and derive the tick.
	cfg := toyConfig(3)
	cfg.Latency, cfg.Ops, cfg.Nodes = "planet:gcp", 100, 3
	res, err := Run(cfg)
	require.NoError(t, err)
	require.Equal(t, gcpSites[:3], res.Sites)
	require.True(t, res.AllDone)
	require.GreaterOrEqual(t, res.Tick, int64(50_000))
	cfg.Sites = []string{"mars-north1"}
	_, err = Run(cfg)
	require.ErrorIs(t, err, ErrConfig)
	require.ErrorIs(t, err, ErrLatency)
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	base := toyConfig(1)
	for name, mut := range map[string]func(*Config){
		"unknown protocol": func(c *Config) { c.Protocol = "nope" },
		"no nodes":         func(c *Config) { c.Nodes = 0 },
		"f too big":        func(c *Config) { c.F = 3 },
		"conflict":         func(c *Config) { c.Conflict = 101 },
		"reads":            func(c *Config) { c.Reads = -1 },
		"latency":          func(c *Config) { c.Latency = "fast" },
		"faults":           func(c *Config) { c.Faults = "meteor" },
		"sites":            func(c *Config) { c.Sites = []string{"a", "b", "c", "d", "e", "f"} },
	} {
		cfg := base
		mut(&cfg)
		require.ErrorIs(t, cfg.Validate(), ErrConfig, name)
		_, err := Run(cfg)
		require.ErrorIs(t, err, ErrConfig, name)
	}
	cfg := base
	cfg.Protocol = "nope"
	require.ErrorIs(t, cfg.Validate(), protocols.ErrUnknownProtocol)
}

// TestCorrectToyPassesChecksUnderSwarm runs the correct sequencer under
// swarm faults over several seeds: order and linearizability hold, and all
// operations complete unless node 1 (the toy's fixed leader) crashed for
// good.
func TestCorrectToyPassesChecksUnderSwarm(t *testing.T) {
	t.Parallel()
	crashed := 0
	for seed := uint64(1); seed <= 40; seed++ {
		cfg := toyConfig(seed)
		cfg.Faults = "swarm"
		cfg.CodecCheck = seed%2 == 0
		res, err := Run(cfg)
		require.NoError(t, err)
		require.NoError(t, res.OrderError())
		lin := res.CheckLinearizable(30 * time.Second)
		require.Equal(t, lincheck.Ok, lin.Verdict, "seed %d: %v", seed, lin.Err())
		leaderStopped := false
		for _, l := range res.FaultLog {
			if slicesContainsStr(l, "crash-stop node 1 ") {
				leaderStopped = true
			}
		}
		if !leaderStopped {
			require.NoError(t, res.LivenessError(), "seed %d faults %s\n%v", seed, res.Faults, res.FaultLog)
		}
		for _, ns := range res.PerNode {
			crashed += ns.Crashes
		}
	}
	require.Positive(t, crashed, "swarm never crashed a node")
}

func slicesContainsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestAllFaultsTogether(t *testing.T) {
	t.Parallel()
	cfg := toyConfig(5)
	cfg.Faults = "loss=0.05,dup=0.05,reorder=0.3,partition,clog,crash-restart,lost-tail"
	res, err := Run(cfg)
	require.NoError(t, err)
	require.NoError(t, res.OrderError())
	require.NoError(t, res.LivenessError())
	require.Equal(t, lincheck.Ok, res.CheckLinearizable(30*time.Second).Verdict)
	require.Positive(t, res.Dropped)
	require.Positive(t, res.Duplicated)
	require.NotEmpty(t, res.FaultLog)
}

// TestChecksCatchBrokenToy shows that the checks can fail: replicas that
// execute in arrival order break the order contract and linearizability.
func TestChecksCatchBrokenToy(t *testing.T) {
	t.Parallel()
	orderCaught, linCaught := 0, 0
	for seed := uint64(1); seed <= 3; seed++ {
		cfg := toyConfig(seed)
		cfg.Protocol = "toy-arrival"
		cfg.Faults = "reorder=0.5"
		cfg.Conflict = 80
		cfg.Ops = 200
		res, err := Run(cfg)
		require.NoError(t, err)
		if res.OrderError() != nil {
			orderCaught++
			require.Equal(t, "order", res.OrderViolations[0].Kind)
			require.NotEmpty(t, res.OrderViolations[0].Key)
			require.GreaterOrEqual(t, len(res.OrderViolations[0].Commands), 2)
		}
		if lin := res.CheckLinearizable(30 * time.Second); lin.Verdict == lincheck.Illegal {
			linCaught++
			require.ErrorIs(t, lin.Err(), lincheck.ErrIllegal)
		}
	}
	require.Equal(t, 3, orderCaught)
	require.Positive(t, linCaught)
}

// TestChecksCatchForgottenPersist plants a persistence bug: the sequencer
// forgets its slot assignments on restart. Crashing it is caught.
func TestChecksCatchForgottenPersist(t *testing.T) {
	t.Parallel()
	caught := 0
	for seed := uint64(1); seed <= 5; seed++ {
		cfg := toyConfig(seed)
		cfg.Protocol = "toy-seq-nopersist"
		cfg.Ops = 300
		cfg.Crashes = []Crash{{At: 100_000, Node: 1, Kind: CrashRestart, RestartAt: 110_000}}
		res, err := Run(cfg)
		require.NoError(t, err)
		lin := res.CheckLinearizable(10 * time.Second)
		t.Logf("seed %d: order=%v liveness=%v lin=%s", seed, res.OrderError() != nil, res.LivenessError() != nil, lin.Verdict)
		if res.OrderError() != nil || res.LivenessError() != nil || lin.Verdict != lincheck.Ok {
			caught++
		}
	}
	require.Equal(t, 5, caught)
}

// orderSim builds a sim holding only executions: execs[node][incarnation]
// lists command ids; keys gives each command's keys.
func orderSim(keys map[protocols.CommandID][]string, execs ...[][]protocols.CommandID) *sim {
	s := &sim{extraKeys: keys}
	for i, incs := range execs {
		nd := &node{id: protocols.NodeID(i + 1)}
		for _, ids := range incs {
			var recs []execRec
			for _, id := range ids {
				recs = append(recs, execRec{id: id})
			}
			nd.execs = append(nd.execs, recs)
		}
		s.nodes = append(s.nodes, nd)
	}
	return s
}

type cids = []protocols.CommandID

func TestOrderCheckDuplicate(t *testing.T) {
	t.Parallel()
	x := protocols.CommandID{Client: 1, Seq: 1}
	s := orderSim(map[protocols.CommandID][]string{x: {"a"}}, [][]protocols.CommandID{{x, x}, {x}})
	v := s.checkOrder(10)
	require.Len(t, v, 1)
	require.Equal(t, "duplicate", v[0].Kind)
	require.Contains(t, v[0].String(), "node 1 incarnation 0")
}

func TestOrderCheckCycleAcrossNodes(t *testing.T) {
	t.Parallel()
	x, y, z := protocols.CommandID{Client: 1, Seq: 1}, protocols.CommandID{Client: 2, Seq: 1}, protocols.CommandID{Client: 3, Seq: 1}
	k := []string{"k"}
	s := orderSim(map[protocols.CommandID][]string{x: k, y: k, z: k},
		[]cids{{x, z, y}}, []cids{{y, x}}, []cids{{x, z}})
	v := s.checkOrder(10)
	require.Len(t, v, 1)
	require.Equal(t, "order", v[0].Kind)
	require.Equal(t, "k", v[0].Key)
	require.ElementsMatch(t, []protocols.CommandID{x, y, z}, v[0].Commands)
	require.Contains(t, v[0].String(), "node 2 incarnation 0")

	// Restarted incarnations replaying the same order are fine.
	s = orderSim(map[protocols.CommandID][]string{x: k, y: k, z: k},
		[]cids{{x, y}, {x, y, z}}, []cids{{x}, {x, y, z}})
	require.Empty(t, s.checkOrder(10))
}

func TestOrderCheckMultiKey(t *testing.T) {
	t.Parallel()
	x, y, z := protocols.CommandID{Client: 1, Seq: 1}, protocols.CommandID{Client: 2, Seq: 1}, protocols.CommandID{Client: 3, Seq: 1}
	keys := map[protocols.CommandID][]string{x: {"a", "b"}, y: {"b", "c"}, z: {"a"}}
	// x and y share only b; node 2 orders them the other way round.
	v := orderSim(keys, []cids{{x, y, z}}, []cids{{y, x}}).checkOrder(10)
	require.Len(t, v, 1)
	require.Equal(t, "b", v[0].Key)

	// The same order everywhere on every shared key: no violation, even
	// though z and y are unordered relative to each other.
	require.Empty(t, orderSim(keys, []cids{{x, y, z}}, []cids{{x, z, y}}).checkOrder(10))
}

// probeRun runs toy-probe: one client submits one command to node 1 at
// t < 1ms; node 1 persists a record and sends a message to node 2 that is
// held for the 50ms sync. crash, if any, hits node 1 at 10ms.
func probeRun(t *testing.T, crash CrashKind) []probeEvent {
	probeLog = nil
	cfg := Config{Protocol: "toy-probe", Nodes: 3, Clients: 1, Ops: 1, Latency: "constant:1",
		DiskDelay: 50_000, TickInterval: 1000, ClientTimeout: 100_000, Seed: 1}
	if crash != 0 {
		cfg.Crashes = []Crash{{At: 10_000, Node: 1, Kind: crash, RestartAt: 20_000}}
	}
	res, err := Run(cfg)
	require.NoError(t, err)
	require.Equal(t, 1, res.Info)
	return slices.Clone(probeLog)
}

// The probe tests share probeLog, so they run one at a time (no Parallel).

func TestPersistHeldSendLeavesAfterSync(t *testing.T) {
	log := probeRun(t, 0)
	var got int
	for _, e := range log {
		if e.got != nil {
			require.Equal(t, protocols.NodeID(2), e.node)
			got++
		}
	}
	require.Equal(t, 1, got)
}

func TestCrashRestartKeepsUnsyncedRecordsAndDropsHeldSends(t *testing.T) {
	log := probeRun(t, CrashRestart)
	var starts []probeEvent
	for _, e := range log {
		require.Nil(t, e.got, "a held send was delivered after its sender crashed")
		if e.node == 1 {
			starts = append(starts, e)
		}
	}
	require.Len(t, starts, 2)
	require.Empty(t, starts[0].recovered)
	require.Equal(t, []string{"1.1"}, starts[1].recovered)
}

func TestCrashLostTailDropsUnsyncedRecords(t *testing.T) {
	log := probeRun(t, CrashLostTail)
	var starts []probeEvent
	for _, e := range log {
		require.Nil(t, e.got)
		if e.node == 1 {
			starts = append(starts, e)
		}
	}
	require.Len(t, starts, 2)
	require.Empty(t, starts[1].recovered)
}

func TestSyncedRecordsSurviveLostTail(t *testing.T) {
	probeLog = nil
	cfg := Config{Protocol: "toy-probe", Nodes: 3, Clients: 1, Ops: 1, Latency: "constant:1",
		DiskDelay: 1000, TickInterval: 1000, ClientTimeout: 100_000, Seed: 1,
		Crashes: []Crash{{At: 10_000, Node: 1, Kind: CrashLostTail, RestartAt: 20_000}}}
	_, err := Run(cfg)
	require.NoError(t, err)
	var starts [][]string
	for _, e := range probeLog {
		if e.node == 1 && e.got == nil {
			starts = append(starts, e.recovered)
		}
	}
	require.Equal(t, [][]string{{}, {"1.1"}}, starts)
}

func TestRunErrorNamesSeed(t *testing.T) {
	t.Parallel()
	cfg := toyConfig(99)
	cfg.Protocol = "toy-panic"
	_, err := Run(cfg)
	require.Error(t, err)
	require.Contains(t, err.Error(), "seed 99")
	require.False(t, errors.Is(err, ErrConfig))
}

type toyPanic struct{}

func (toyPanic) Submit(protocols.Command)                 { panic("boom") }
func (toyPanic) Step(protocols.NodeID, protocols.Message) {}
func (toyPanic) Tick()                                    {}

func init() {
	protocols.Register("toy-panic", func(protocols.Config) (protocols.Protocol, error) { return toyPanic{}, nil }, toyCodec{})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	cfg := toyConfig(2)
	cfg.Latency = "constant:2"
	res, err := Run(cfg)
	require.NoError(t, err)
	require.True(t, res.AllDone)
	require.Equal(t, cfg.Ops, res.OK)
	require.Len(t, res.PerSite, 5)
	require.Equal(t, cfg.Ops, res.Overall.Count)
	// toy-seq: forward (2ms unless at node 1) + order (2ms) + reply.
	require.GreaterOrEqual(t, res.Overall.P50, 2.0)
	require.LessOrEqual(t, res.Overall.P50, res.Overall.P99)
	require.Positive(t, res.Throughput)
	require.Positive(t, res.MessagesPerCommand)
	require.Equal(t, int64(cfg.Ops*cfg.Nodes), res.Executions)
	var sent int64
	for _, ns := range res.PerNode {
		sent += ns.Sent
	}
	require.Equal(t, res.Messages, sent)
}

func TestFaultPlanRespectsF(t *testing.T) {
	t.Parallel()
	spec := FaultSpec{CrashStop: true, CrashRestart: true, LostTail: true, Partition: true, Clog: true}
	for seed := uint64(0); seed < 200; seed++ {
		r := newRand(seed)
		n, f := 5, 1+int(seed%2)
		plan := planFaults(r, spec, n, f, 1_000_000, 1000)
		stops := 0
		var crashes []fault
		for _, p := range plan {
			if p.kind != fkCrash {
				require.LessOrEqual(t, p.end, int64(1_000_000))
				continue
			}
			crashes = append(crashes, p)
			if p.crash == CrashStop {
				stops++
			} else {
				require.LessOrEqual(t, p.end, int64(1_000_000))
			}
		}
		require.LessOrEqual(t, stops, f)
		for _, c := range crashes {
			down := 0
			for _, d := range crashes {
				if d.start <= c.start && (d.end < 0 || c.start < d.end) {
					down++
				}
			}
			require.LessOrEqual(t, down, f, "seed %d", seed)
		}
	}
}

// TestAckCrash runs the correct toy under swarm faults with the ack-crash
// fault: every check passes, episodes happen (answering nodes restart,
// peers crash), runs repeat exactly, and the swarm draws of a seed are the
// same with and without it.
func TestAckCrash(t *testing.T) {
	t.Parallel()
	episodes, peerCrashes := 0, 0
	for seed := uint64(1); seed <= 20; seed++ {
		cfg := toyConfig(seed)
		cfg.Faults = "swarm,ack-crash"
		res, err := Run(cfg)
		require.NoError(t, err)
		require.NoError(t, res.OrderError())
		require.Equal(t, lincheck.Ok, res.CheckLinearizable(30*time.Second).Verdict, "seed %d", seed)
		leaderStopped := false
		for _, l := range res.FaultLog {
			leaderStopped = leaderStopped || slicesContainsStr(l, "crash-stop node 1 ")
			if slicesContainsStr(l, "answered node") {
				episodes++
			}
			if slicesContainsStr(l, "messages in flight are lost") {
				peerCrashes++
			}
		}
		if !leaderStopped {
			require.NoError(t, res.LivenessError(), "seed %d faults %s\n%v", seed, res.Faults, res.FaultLog)
		}
		again, err := Run(cfg)
		require.NoError(t, err)
		require.Equal(t, res.Digest, again.Digest, "seed %d", seed)
		cfg.Faults = "swarm"
		plain, err := Run(cfg)
		require.NoError(t, err)
		require.Equal(t, plain.Faults+",ack-crash", res.Faults, "seed %d", seed)
	}
	t.Logf("%d episodes, %d peer crashes in 20 seeds", episodes, peerCrashes)
	require.Positive(t, episodes)
	require.Positive(t, peerCrashes)
}

// TestOrderCheckWorkloadMatchesExtra checks that the order check finds the
// same violations whether commands are workload commands (numbered by their
// history index, keys from the history) or commands no client issued (keys
// from extraKeys), on random executions with duplicates and conflicting
// orders.
func TestOrderCheckWorkloadMatchesExtra(t *testing.T) {
	t.Parallel()
	found := 0
	for seed := uint64(1); seed <= 60; seed++ {
		r := rand.New(rand.NewPCG(seed, 5))
		clients, perClient := 1+r.IntN(4), 1+r.IntN(5)
		names := []string{"a", "b", "c", "d"}
		keys := map[protocols.CommandID][]string{}
		var ids []protocols.CommandID
		w := &sim{clients: make([]client, clients)}
		for ci := range clients {
			for q := range perClient {
				id := protocols.CommandID{Client: uint64(ci + 1), Seq: uint64(q + 1)}
				ks := []string{names[r.IntN(len(names))]}
				if r.IntN(3) == 0 {
					ks = append(ks, names[r.IntN(len(names))])
				}
				keys[id] = ks
				ids = append(ids, id)
				w.clients[ci].ops = append(w.clients[ci].ops, int32(len(w.history)))
				w.history = append(w.history, Op{keys: ks})
			}
		}
		// one command no client issued, in both sims
		stray := protocols.CommandID{Client: 99, Seq: 1}
		keys[stray] = []string{"a"}
		ids = append(ids, stray)
		w.extraKeys = map[protocols.CommandID][]string{stray: {"a"}}
		var execs [][][]protocols.CommandID
		for range 2 + r.IntN(3) {
			var incs [][]protocols.CommandID
			for range 1 + r.IntN(2) {
				var inc []protocols.CommandID
				for range r.IntN(2 * len(ids)) {
					inc = append(inc, ids[r.IntN(len(ids))])
				}
				incs = append(incs, inc)
			}
			execs = append(execs, incs)
		}
		e := orderSim(keys, execs...)
		w.nodes = e.nodes
		want, got := e.checkOrder(20), w.checkOrder(20)
		require.Equal(t, want, got, "seed %d", seed)
		found += len(want)
	}
	require.Greater(t, found, 20, "the random executions should break the order")
}
