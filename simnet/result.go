package simnet

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/blossom-dso/blossom/lincheck"
	"github.com/blossom-dso/blossom/protocols"
)

// Outcome is how a client operation ended.
type Outcome uint8

// The outcomes.
const (
	// OutcomePending: the run ended while the client was waiting.
	OutcomePending Outcome = iota
	// OutcomeOK: the client got a reply.
	OutcomeOK
	// OutcomeInfo: the client timed out; the operation may or may not
	// have taken effect.
	OutcomeInfo
)

func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeInfo:
		return "info"
	}
	return "pending"
}

// Op is one client operation of the history. (The small fields are
// together, so that an Op has no padding: a history holds every operation
// of a run.)
type Op struct {
	Client int              // client index, 0-based
	Node   protocols.NodeID // replica the command was submitted to
	Put    bool
	Outcome
	Site   string // the client's site
	Key    string
	Value  uint64 // put: the value written
	Call   int64  // virtual µs the client sent the command
	Return int64  // virtual µs the reply arrived; -1 if none
	Output uint64 // get: the value read
	// Result is the answer's bytes in a run with a Config.Workload.
	Result []byte
	keys   []string // the command's keys
	// leaderAt is when a leader of a destination group first delivered the
	// command (multicast runs), -1 if none did
	leaderAt int64
}

// LatencyStats summarises the latencies of completed operations, in
// milliseconds.
type LatencyStats struct {
	Count                    int
	Mean, P50, P95, P99, Max float64
}

// SiteStats is LatencyStats for the clients of one site.
type SiteStats struct {
	Site string
	LatencyStats
}

// NodeStats counts what happened at one replica over all its incarnations.
type NodeStats struct {
	Node                 protocols.NodeID
	Site                 string
	Sent, Delivered      int64
	Executed, Persisted  int64
	FastPaths, SlowPaths int64
	Crashes              int
	// Checkpoints counts the checkpoints taken, Compactions those that
	// became durable and replaced the log before them (Config.CompactEvery).
	Checkpoints, Compactions int64
	// Leader is the replica this node believed led at the end of the run,
	// for protocols that implement protocols.LeaderReporter; 0 if none or
	// the node was down.
	Leader protocols.NodeID
	// Up says the node was up at the end of the run, and State is then its
	// state machine's key-value map (not to be modified); nil if down.
	Up    bool
	State map[string]uint64
	// Executions lists the ids of the commands the node executed, per
	// incarnation, in execution order (Config.RecordExecutions only). An
	// incarnation restarted from a checkpoint starts with the executions
	// the checkpoint reflects.
	Executions [][]protocols.CommandID
}

// OrderViolation is a breach of the order contract.
type OrderViolation struct {
	// Kind is "duplicate" (a command executed twice in one incarnation) or
	// "order" (conflicting commands executed in different orders).
	Kind string
	// Key is the key whose order is broken ("" for a duplicate).
	Key string
	// Commands are the commands involved: the duplicate, or a cycle c0 ->
	// c1 -> ... -> c0 where each arrow is an execution order seen at Nodes.
	Commands []protocols.CommandID
	// Nodes says where each order (or the duplicate) was seen, as
	// "node N incarnation I".
	Nodes []string
}

func (v OrderViolation) String() string {
	if v.Kind == "duplicate" {
		return fmt.Sprintf("command %v executed twice at %s", v.Commands[0], strings.Join(v.Nodes, ", "))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "key %q executed in conflicting orders:", v.Key)
	for i, c := range v.Commands {
		next := v.Commands[(i+1)%len(v.Commands)]
		fmt.Fprintf(&b, " %v before %v at %s;", c, next, v.Nodes[i])
	}
	return strings.TrimSuffix(b.String(), ";")
}

// Result is the outcome of a run.
type Result struct {
	Protocol string
	Seed     uint64
	// Digest is an FNV-1a hash folded over every delivery, execution,
	// crash and client completion: equal seeds, configs and code give
	// equal digests.
	Digest uint64
	Nodes  int
	F      int
	// Latency is the latency model.
	Latency string
	// Sites lists each node's site.
	Sites []string
	// Faults is the fault mix in force (for swarm, the one drawn).
	Faults string
	// FaultLog lists the faults as they happened, with virtual times.
	FaultLog []string
	// Injected counts the forged messages delivered (Config.Inject), and
	// InjectIgnored those the receiver ignored: no record, no message, no
	// execution.
	Injected, InjectIgnored int64
	// Tick, FaultWindow and ClientTimeout are the timing used, in µs.
	Tick, FaultWindow, ClientTimeout int64
	// Duration is the virtual time of the run in µs.
	Duration int64

	// Ops is the number of operations asked for; OK got a reply, Info
	// timed out (unknown outcome), Pending were waiting when the run
	// stopped. Completed = OK + Info.
	Ops, OK, Info, Pending, Completed int
	// Stuck counts operations that a client sent to a live replica at
	// least one client timeout after the fault window closed and that
	// got no reply: a correct protocol has none.
	Stuck int
	// AllDone: every client finished all its operations and none is Stuck
	// (with a Config.Workload: every client finished and every operation
	// it issued completed).
	AllDone bool

	Overall LatencyStats
	PerSite []SiteStats
	// Throughput is OK operations per virtual second.
	Throughput float64
	// Messages counts protocol sends, Deliveries Step calls, Dropped
	// messages lost, cut or sent to a crashed node, Duplicated extra
	// copies.
	Messages, Deliveries, Dropped, Duplicated int64
	// MessagesPerCommand is Messages / OK.
	MessagesPerCommand   float64
	FastPaths, SlowPaths int64
	Executions           int64
	PerNode              []NodeStats
	// Leader is the replica most live nodes believed led at the end of the
	// run (ties to the lowest id), 0 for leaderless protocols; LeaderSite
	// is its site.
	Leader     protocols.NodeID
	LeaderSite string

	// Groups is the number of multicast groups (0: not a multicast run).
	Groups int
	// MulticastViolations lists breaches of the atomic multicast
	// properties (integrity, agreement, per-group order, acyclic order), at
	// most 20; multicast runs only.
	MulticastViolations []string
	// LeaderDeliveryLatency is the mean time, in ms, from a client's send to
	// the first delivery of its command at a leader of a destination group
	// (multicast runs of protocols that implement protocols.LeaderReporter);
	// LeaderDeliveries is the number of commands it averages over.
	LeaderDeliveryLatency float64
	LeaderDeliveries      int

	// OrderViolations lists breaches of the order contract (at most 20).
	OrderViolations []OrderViolation
	// Steps is the number of steps of an explored run (Config.Scheduler).
	Steps int
	// StepError is the first breach of a step invariant of an explored run
	// (the run stopped there), nil if none.
	StepError *StepError
	// History is every client operation in invocation order.
	History []Op
}

// LivenessError returns nil if every operation completed and no operation
// after the fault window was lost, and otherwise says what did not.
func (r *Result) LivenessError() error {
	if r.AllDone {
		return nil
	}
	return fmt.Errorf("simnet: seed %d: liveness: %d of %d operations completed (%d ok, %d unknown), %d pending, %d lost after the fault window closed at %.3fms (run stopped at %.3fms)",
		r.Seed, r.Completed, r.Ops, r.OK, r.Info, r.Pending, r.Stuck, float64(r.FaultWindow)/1000, float64(r.Duration)/1000)
}

// OrderError returns nil if the order check passed, and otherwise an error
// that names the seed and the first violations.
func (r *Result) OrderError() error {
	if len(r.OrderViolations) == 0 {
		return nil
	}
	var lines []string
	for _, v := range r.OrderViolations[:min(3, len(r.OrderViolations))] {
		lines = append(lines, v.String())
	}
	return fmt.Errorf("simnet: seed %d: order check: %d violations: %s", r.Seed, len(r.OrderViolations), strings.Join(lines, "; "))
}

// Operations converts the history for lincheck.KVModel: inputs are
// lincheck.KVInput (lincheck.MultiKVInput in multicast runs, for
// lincheck.MultiKVModel), outputs lincheck.KVOutput, times virtual µs.
func (r *Result) Operations() []porcupine.Operation {
	rec := lincheck.NewRecorder()
	for _, op := range r.History {
		var in any = lincheck.KVInput{Key: op.Key, Put: op.Put, Value: op.Value}
		if r.Groups > 0 {
			in = lincheck.MultiKVInput{Keys: op.keys, Put: op.Put, Value: op.Value}
		}
		id := rec.Invoke(op.Client, in, op.Call)
		switch op.Outcome {
		case OutcomeOK:
			rec.Ok(id, lincheck.KVOutput{Value: op.Output}, op.Return)
		case OutcomeInfo:
			rec.Info(id)
		}
	}
	return rec.Operations()
}

// CheckLinearizable checks the history against lincheck.KVModel with
// lincheck.CheckKV: in polynomial time when every put's value is unique
// (the workload draws them from one counter), and with Porcupine otherwise.
// Multicast runs are checked by Porcupine against lincheck.MultiKVModel.
// timeout bounds Porcupine (lincheck.DefaultTimeout if <= 0).
func (r *Result) CheckLinearizable(timeout time.Duration) lincheck.Result {
	if r.Groups > 0 {
		return lincheck.Check(lincheck.MultiKVModel, r.Operations(), timeout)
	}
	return lincheck.CheckKV(r.Operations(), timeout)
}

func (s *sim) result() *Result {
	rc := s.cfg
	// The counters of the cores still up, added to a copy of the totals.
	saved := make([]NodeStats, s.n)
	messages, fast, slow := s.messages, s.fast, s.slow
	for i, nd := range s.nodes {
		saved[i] = nd.stats
		if nd.up {
			nd.addStats()
		}
	}
	defer func() {
		for i, nd := range s.nodes {
			nd.stats = saved[i]
		}
		s.messages, s.fast, s.slow = messages, fast, slow
	}()
	r := &Result{
		Protocol: rc.Protocol, Seed: rc.Seed, Digest: s.digest, Nodes: s.n, F: rc.F,
		Latency: rc.lat.String(), Sites: slices.Clone(rc.sites), Faults: s.spec.String(), FaultLog: s.faultLog,
		Tick: rc.TickInterval, FaultWindow: s.window, ClientTimeout: rc.ClientTimeout, Duration: s.now,
		Ops: rc.Ops, Stuck: s.stuck, Injected: s.injected, InjectIgnored: s.injectIgnored,
		Messages: s.messages, Deliveries: s.deliveries, Dropped: s.dropped, Duplicated: s.duplicated,
		FastPaths: s.fast, SlowPaths: s.slow, Executions: s.executions, History: s.history,
	}
	if rc.faults.Swarm {
		r.Faults = "swarm: " + r.Faults
	}
	// The latencies of the operations that completed: all of them, then
	// those of each site, in one array cut in parts of the right sizes.
	perSite := map[string][]int64{}
	var siteOrder []string
	for _, site := range rc.sites {
		if _, ok := perSite[site]; !ok {
			perSite[site] = nil
			siteOrder = append(siteOrder, site)
		}
	}
	okAt := map[string]int{}
	for i := range s.history {
		if op := &s.history[i]; op.Outcome == OutcomeOK {
			okAt[op.Site]++
		}
	}
	nOK := 0
	for _, n := range okAt {
		nOK += n
	}
	bufs := s.checkBufs
	if bufs == nil {
		bufs = new(checkBufs)
	}
	bufs.lats = sized(bufs.lats, 2*nOK, 0)
	lats := bufs.lats
	all, k := lats[:0:nOK], nOK
	for _, site := range siteOrder {
		n := okAt[site]
		perSite[site] = lats[k : k : k+n]
		k += n
	}
	for i := range s.history {
		op := &s.history[i]
		switch op.Outcome {
		case OutcomeOK:
			r.OK++
			lat := op.Return - op.Call
			all = append(all, lat)
			perSite[op.Site] = append(perSite[op.Site], lat)
		case OutcomeInfo:
			r.Info++
		default:
			r.Pending++
			if op.Call >= s.window+rc.ClientTimeout && !s.nodes[op.Node-1].stopped {
				r.Stuck++
			}
		}
	}
	r.Completed = r.OK + r.Info
	r.AllDone = r.Completed == rc.Ops && r.Stuck == 0
	if rc.Workload != nil { // its clients may finish early: every client must have
		r.AllDone = s.clientsDone == len(s.clients) && r.Completed == len(s.history) && r.Stuck == 0
	}
	r.Overall = latencyStats(all)
	for _, site := range siteOrder {
		r.PerSite = append(r.PerSite, SiteStats{Site: site, LatencyStats: latencyStats(perSite[site])})
	}
	if s.now > 0 {
		r.Throughput = float64(r.OK) / (float64(s.now) / 1e6)
	}
	if r.OK > 0 {
		r.MessagesPerCommand = float64(s.messages) / float64(r.OK)
	}
	votes := make([]int, s.n+1)
	for _, nd := range s.nodes {
		st := nd.stats
		if nd.up {
			st.Up, st.State = true, nd.kv.kv
		}
		if rc.RecordExecutions {
			st.Executions = make([][]protocols.CommandID, len(nd.execs))
			for i, inc := range nd.execs {
				ids := make([]protocols.CommandID, len(inc))
				for j, e := range inc {
					ids[j] = e.id
				}
				st.Executions[i] = ids
			}
		}
		if nd.up {
			if lr, ok := nd.core.Protocol().(protocols.LeaderReporter); ok {
				if l := lr.Leader(); l >= 1 && int(l) <= s.n {
					st.Leader = l
					votes[l]++
				}
			}
		}
		r.PerNode = append(r.PerNode, st)
	}
	for id := 1; id <= s.n; id++ {
		if votes[id] > 0 && votes[id] > votes[r.Leader] {
			r.Leader = protocols.NodeID(id)
		}
	}
	if r.Leader != 0 {
		r.LeaderSite = rc.sites[r.Leader-1]
	}
	r.OrderViolations = s.checkOrderWith(bufs, 20)
	if s.x != nil {
		r.Steps = s.x.taken
		if s.x.violation != "" {
			r.StepError = &StepError{Step: s.x.step, What: s.x.violation}
		}
	}
	if s.mc != nil {
		s.mc.result(r)
	}
	return r
}

func latencyStats(us []int64) LatencyStats {
	if len(us) == 0 {
		return LatencyStats{}
	}
	slices.Sort(us)
	var sum int64
	for _, v := range us {
		sum += v
	}
	pct := func(p float64) float64 {
		i := int(p*float64(len(us))+0.999999) - 1
		return float64(us[min(max(i, 0), len(us)-1)]) / 1000
	}
	return LatencyStats{
		Count: len(us), Mean: float64(sum) / float64(len(us)) / 1000,
		P50: pct(0.50), P95: pct(0.95), P99: pct(0.99), Max: float64(us[len(us)-1]) / 1000,
	}
}

// checkOrder checks the executions of every node incarnation: no command
// twice in one incarnation, and for every key the union over incarnations
// of the "executed right after" edges is acyclic. It returns at most limit
// violations. Vertices are (key, command) pairs, so every edge and every
// cycle stays within one key.
func (s *sim) checkOrder(limit int) []OrderViolation {
	return s.checkOrderWith(new(checkBufs), limit)
}

// checkOrderWith is checkOrder with its scratch arrays in b, which the
// violations it returns do not refer to.
func (s *sim) checkOrderWith(b *checkBufs, limit int) []OrderViolation {
	var out []OrderViolation
	total := 0
	for _, nd := range s.nodes {
		for _, execs := range nd.execs {
			total += len(execs)
		}
	}
	hint := total / max(1, s.n)
	// Commands are numbered by their history index (workload commands)
	// or, after those, in the order first seen (cmdIdx, the others).
	nh := len(s.history)
	cmdIdx := map[protocols.CommandID]int32{}
	seenIn := sized(b.seenIn, nh, hint) // per command: serial of the incarnation that last executed it
	firstV := sized(b.firstV, nh, hint) // per command: vertex of (its first key, it), or -1
	for i := range firstV {
		firstV[i] = -1
	}
	oneKey := sized(b.oneKey, nh, 0) // per workload command of one key: its key index + 1, 0 until known
	keyIdx := map[string]int32{}
	var keyNames []string
	var lastIn, lastV []int32    // per key: serial of the incarnation that last executed it, and the vertex
	vertex := map[uint64]int32{} // (key, command) -> vertex, for keys other than firstV's
	vKey := sized(b.vKey, 0, hint)
	vCmd := sized(b.vCmd, 0, hint)
	g := &b.g
	g.grow(hint)
	defer func() {
		// The arrays, grown or not, serve the next check.
		b.seenIn, b.firstV, b.oneKey, b.vKey, b.vCmd = seenIn, firstV, oneKey, vKey, vCmd
	}()
	var wheres []string
	serial := int32(0)
	for _, nd := range s.nodes {
		for inc, execs := range nd.execs {
			serial++
			where := int32(len(wheres))
			wheres = append(wheres, fmt.Sprintf("node %d incarnation %d", nd.id, inc))
			for _, e := range execs {
				var c int32
				workload := s.isWorkload(e.id)
				if workload {
					c = s.clients[e.id.Client-1].ops[e.id.Seq-1]
				} else {
					var ok bool
					if c, ok = cmdIdx[e.id]; !ok {
						c = int32(len(seenIn))
						cmdIdx[e.id] = c
						seenIn, firstV = append(seenIn, 0), append(firstV, -1)
					}
				}
				if seenIn[c] == serial {
					if len(out) < limit {
						out = append(out, OrderViolation{Kind: "duplicate", Commands: []protocols.CommandID{e.id}, Nodes: []string{wheres[where]}})
					}
					continue
				}
				seenIn[c] = serial
				keys := s.keysOf(e.id)
				for _, k := range keys {
					var ki int32
					if workload && len(keys) == 1 && oneKey[c] > 0 {
						ki = oneKey[c] - 1
					} else {
						var ok bool
						if ki, ok = keyIdx[k]; !ok {
							ki = int32(len(keyNames))
							keyIdx[k] = ki
							keyNames = append(keyNames, k)
							lastIn, lastV = append(lastIn, 0), append(lastV, 0)
						}
						if workload && len(keys) == 1 {
							oneKey[c] = ki + 1
						}
					}
					v := firstV[c]
					if v < 0 || vKey[v] != ki {
						vk := uint64(ki)<<32 | uint64(c)
						var ok bool
						if v, ok = vertex[vk]; !ok {
							v = int32(len(vKey))
							vKey, vCmd = append(vKey, ki), append(vCmd, e.id)
							g.addVertex()
							if firstV[c] < 0 {
								firstV[c] = v
							} else {
								vertex[vk] = v
							}
						}
					}
					if lastIn[ki] == serial {
						g.addEdge(lastV[ki], v, where)
					}
					lastIn[ki], lastV[ki] = serial, v
				}
			}
		}
	}
	// One cycle per key, keys in sorted order.
	for _, cyc := range findCycles(g, vKey) {
		if len(out) >= limit {
			break
		}
		v := OrderViolation{Kind: "order", Key: keyNames[vKey[cyc[0]]]}
		for i, x := range cyc {
			y := cyc[(i+1)%len(cyc)]
			v.Commands = append(v.Commands, vCmd[x])
			v.Nodes = append(v.Nodes, wheres[g.where[g.edge(x, y)]])
		}
		out = append(out, v)
	}
	slices.SortStableFunc(out, func(a, b OrderViolation) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// graph is a directed graph with edge lists threaded through flat arrays,
// so that building it allocates little.
type graph struct {
	head            []int32 // per vertex: first edge, or -1
	to, next, where []int32 // per edge
}

// grow empties g and gives it room for vertices vertices and edges,
// reusing its arrays when they are large enough.
func (g *graph) grow(vertices int) {
	g.head = sized(g.head, 0, vertices)
	g.to = sized(g.to, 0, vertices)
	g.next = sized(g.next, 0, vertices)
	g.where = sized(g.where, 0, vertices)
}

func (g *graph) addVertex() {
	g.head = append(g.head, -1)
}

// edge returns the index of edge u->v, or -1.
func (g *graph) edge(u, v int32) int32 {
	for e := g.head[u]; e >= 0; e = g.next[e] {
		if g.to[e] == v {
			return e
		}
	}
	return -1
}

// addEdge adds u->v, labelled where, unless it exists.
func (g *graph) addEdge(u, v, where int32) {
	if g.edge(u, v) >= 0 {
		return
	}
	g.to = append(g.to, v)
	g.where = append(g.where, where)
	g.next = append(g.next, g.head[u])
	g.head[u] = int32(len(g.to) - 1)
}

// findCycles returns at most one cycle per key (vertices in edge order).
func findCycles(g *graph, vKey []int32) [][]int32 {
	var out [][]int32
	reported := map[int32]bool{}
	for {
		cyc := findCycle(g, reported, vKey)
		if cyc == nil {
			return out
		}
		reported[vKey[cyc[0]]] = true
		out = append(out, cyc)
	}
}

// findCycle returns the vertices of one cycle of g whose key is not in skip,
// in edge order, or nil if there is none. Iterative DFS with three colours.
func findCycle(g *graph, skip map[int32]bool, vKey []int32) []int32 {
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, len(g.head))
	type frame struct {
		v, e int32 // vertex, next edge to follow
	}
	var stack []frame
	for root := range g.head {
		if color[root] != white || skip[vKey[root]] {
			continue
		}
		stack = append(stack[:0], frame{v: int32(root), e: g.head[root]})
		color[root] = grey
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.e < 0 {
				color[top.v] = black
				stack = stack[:len(stack)-1]
				continue
			}
			w := g.to[top.e]
			top.e = g.next[top.e]
			switch color[w] {
			case white:
				color[w] = grey
				stack = append(stack, frame{v: w, e: g.head[w]})
			case grey:
				start := 0
				for i := range stack {
					if stack[i].v == w {
						start = i
						break
					}
				}
				var cyc []int32
				for _, f := range stack[start:] {
					cyc = append(cyc, f.v)
				}
				return cyc
			}
		}
	}
	return nil
}
