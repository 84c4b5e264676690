package workload

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/degradable/check"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/replica"
	"github.com/blossom-dso/blossom/simnet"
	"github.com/blossom-dso/blossom/simnet/simtest"
)

// SimTypes are the workloads Sim knows, in table order.
var SimTypes = []string{"counter", "set", "map", "queue", "retwis"}

// ErrNotOffered is returned by Sim for a workload its level does not offer
// in the simulator: the weak level's queue (its updates do not commute and
// are not blind writes).
var ErrNotOffered = errors.New("workload: not offered at this level")

// SimConfig configures one run of a workload in the simulator (simnet).
type SimConfig struct {
	// Type is one of SimTypes.
	Type string
	// Level is the level; Protocol the replication strategy, "" for the
	// level's default (SimProtocol).
	Level    degradable.Level
	Protocol string
	// Nodes, Clients and Ops size the run (Ops operations split over the
	// clients; a Retwis operation is several commands).
	Nodes, Clients, Ops int
	// Latency is simnet's latency model ("" for simnet's default).
	Latency string
	// Seed seeds the run and the workload.
	Seed uint64
	// TimelineCap is Retwis's timeline length (default 50); Users its
	// initial users (default 100).
	TimelineCap, Users int
	// bug plants a bug in the state machines (sabotage tests).
	bug simBug
}

// simBug is a planted bug of the simulator's state machines.
type simBug uint8

// bugDropAdd: every replica drops the counter adds of client 2.
const bugDropAdd simBug = 1

// SimResult is a simulated run's measurements, in simulated time.
type SimResult struct {
	// Ops is the number of operations completed; OpsPerSec their number
	// per simulated second (first call to last return).
	Ops       int
	OpsPerSec float64
	// P50 and P99 are latency percentiles of the operations.
	P50, P99 time.Duration
	// Protocol is the strategy that ran.
	Protocol string
}

// SimProtocol returns the default replication strategy of level for
// workload typ: paxos for the linearizable level, "sequential", and for
// the weak level "weak-merge" (commuting updates: counter, grow-only set,
// Retwis) or "weak" (last-writer-wins blind writes: map).
func SimProtocol(typ string, level degradable.Level) string {
	switch {
	case level == degradable.Linearizable:
		return "paxos"
	case level == degradable.Sequential:
		return "sequential"
	case typ == "map":
		return "weak"
	}
	return "weak-merge"
}

// Sim runs one workload at one level in the simulator, over cfg.Nodes
// replicas of its strategy with cfg.Clients closed-loop clients and no
// faults, then checks the history against the level's checker (package
// degradable/check) with the clients' final reads taken from their
// replicas' states after a drain, and checks that the protocol completed
// every operation and, for the linearizable and sequential strategies,
// kept its order contract. Retwis is checked by its end state: at every
// replica the counters count every add and tweet and every timeline holds
// the newest posts sent to it. The mixes are those of Objects, less the
// set's removes at the weak level (grow-only, as on the DSO); Retwis is
// that of the DSO (follows into grow-only sets, a tweet posted to the
// author and up to 8 followers, timelines trimmed to TimelineCap). A
// failed check returns an error naming the seed.
func Sim(cfg SimConfig) (SimResult, error) {
	if cfg.Protocol == "" {
		cfg.Protocol = SimProtocol(cfg.Type, cfg.Level)
	}
	if cfg.TimelineCap == 0 {
		cfg.TimelineCap = 50
	}
	if cfg.Users == 0 {
		cfg.Users = 100
	}
	if !slices.Contains(SimTypes, cfg.Type) {
		return SimResult{}, fmt.Errorf("workload: unknown simulator workload %q (want one of %v)", cfg.Type, SimTypes)
	}
	if cfg.Type == "queue" && cfg.Level == degradable.Weak {
		return SimResult{}, ErrNotOffered
	}
	if cfg.Clients < 1 || cfg.Ops < cfg.Clients || cfg.Users < 2 {
		return SimResult{}, fmt.Errorf("workload: %d clients, %d operations, %d users: need 1 <= clients <= ops and 2 users", cfg.Clients, cfg.Ops, cfg.Users)
	}
	w := newSimWorkload(cfg)
	sc := simnet.Config{Protocol: cfg.Protocol, Nodes: cfg.Nodes, Clients: cfg.Clients, Ops: w.commands(), Latency: cfg.Latency, Seed: cfg.Seed, Workload: w}
	sc, _, err := simtest.ForContract(sc)
	if err != nil {
		return SimResult{}, err
	}
	if sc.Drain == 0 {
		sc.Drain = simtest.DrainTime
	}
	res, err := simnet.Run(sc)
	if err != nil {
		return SimResult{}, err
	}
	fail := func(err error) (SimResult, error) {
		return SimResult{}, fmt.Errorf("workload: %s at %v over %s, seed %d: %w", cfg.Type, cfg.Level, cfg.Protocol, cfg.Seed, err)
	}
	if err := res.LivenessError(); err != nil {
		return fail(err)
	}
	if cfg.Level != degradable.Weak {
		if err := res.OrderError(); err != nil {
			return fail(err)
		}
	}
	out, err := w.measure(res.History)
	if err != nil {
		return fail(err)
	}
	out.Protocol = cfg.Protocol
	if err := w.check(res.History); err != nil {
		return fail(err)
	}
	return out, nil
}

// Commands of the simulator's state machine: an opcode and two int64
// arguments.
const (
	opAdd      = 'a' // counter add(x)
	opValue    = 'v' // counter read
	opSetAdd   = 'A' // set add(x)
	opSetRem   = 'R' // set remove(x)
	opContains = 'C' // set contains(x)
	opMembers  = 'M' // set members
	opPut      = 'P' // map put(x, y) (the entry is the command's key)
	opDel      = 'D' // map delete
	opGet      = 'G' // map get
	opEnq      = 'E' // queue enqueue(x)
	opDeq      = 'Q' // queue dequeue
	opPost     = 'T' // timeline post(x), trimmed to y posts
	opLatest   = 'L' // timeline read
	payloadLen = 17
	// maxTimeline bounds a timeline's capacity.
	maxTimeline = 1 << 16
)

func encode(op byte, x, y int64) []byte {
	b := make([]byte, payloadLen)
	b[0] = op
	binary.LittleEndian.PutUint64(b[1:], uint64(x))
	binary.LittleEndian.PutUint64(b[9:], uint64(y))
	return b
}

func decode(b []byte) (op byte, x, y int64) {
	if len(b) < payloadLen {
		return 0, 0, 0
	}
	return b[0], int64(binary.LittleEndian.Uint64(b[1:])), int64(binary.LittleEndian.Uint64(b[9:]))
}

// isRead is the strategies' read-only predicate.
func isRead(c protocols.Command) bool {
	op, _, _ := decode(c.Payload)
	switch op {
	case opValue, opContains, opMembers, opGet, opLatest:
		return true
	}
	return false
}

// simMachine is the replicated state of every object, by the command's
// key: counters, sets, map entries, queues and timelines.
type simMachine struct {
	Counters  map[string]int64
	Sets      map[string]map[int64]bool
	Entries   map[string]int64
	Queues    map[string][]int64
	Timelines map[string][]int64 // newest first
	bug       simBug
}

func newSimMachine(bug simBug) *simMachine {
	return &simMachine{Counters: map[string]int64{}, Sets: map[string]map[int64]bool{}, Entries: map[string]int64{},
		Queues: map[string][]int64{}, Timelines: map[string][]int64{}, bug: bug}
}

// Apply implements replica.StateMachine; every command is answered at
// once.
func (m *simMachine) Apply(c protocols.Command, a replica.Answers) {
	if len(c.Keys) == 0 {
		a.Answer(c.ID, nil)
		return
	}
	k := c.Keys[0]
	op, x, y := decode(c.Payload)
	var out []int64
	switch op {
	case opAdd:
		if m.bug == bugDropAdd && c.ID.Client == 3 {
			break // planted: client 2's adds are lost
		}
		m.Counters[k] += x
	case opValue:
		out = []int64{m.Counters[k]}
	case opSetAdd:
		if m.Sets[k] == nil {
			m.Sets[k] = map[int64]bool{}
		}
		m.Sets[k][x] = true
	case opSetRem:
		delete(m.Sets[k], x)
	case opContains:
		out = []int64{b2i(m.Sets[k][x])}
	case opMembers:
		for e := range m.Sets[k] {
			out = append(out, e)
		}
		slices.Sort(out)
	case opPut:
		m.Entries[k] = x
	case opDel:
		delete(m.Entries, k)
	case opGet:
		v, ok := m.Entries[k]
		out = []int64{b2i(ok), v}
	case opEnq:
		m.Queues[k] = append(m.Queues[k], x)
	case opDeq:
		if q := m.Queues[k]; len(q) > 0 {
			out = []int64{1, q[0]}
			m.Queues[k] = q[1:]
		} else {
			out = []int64{0, 0}
		}
	case opPost:
		if y < 1 || y > maxTimeline {
			break // a bad capacity: the command changes nothing
		}
		m.Timelines[k] = newestIDs(int(y), append(slices.Clone(m.Timelines[k]), x))
	case opLatest:
		out = m.Timelines[k]
	}
	b := make([]byte, 8*len(out))
	for i, v := range out {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	a.Answer(c.ID, b)
}

// Snapshot implements replica.StateMachine.
func (m *simMachine) Snapshot() ([]byte, error) { return json.Marshal(m) }

// Restore implements replica.StateMachine.
func (m *simMachine) Restore(b []byte) error {
	n := newSimMachine(m.bug)
	if err := json.Unmarshal(b, n); err != nil {
		return fmt.Errorf("workload: simulator state: %w", err)
	}
	fresh := newSimMachine(m.bug) // a snapshot's null maps are empty ones
	if n.Counters == nil {
		n.Counters = fresh.Counters
	}
	if n.Sets == nil {
		n.Sets = fresh.Sets
	}
	if n.Entries == nil {
		n.Entries = fresh.Entries
	}
	if n.Queues == nil {
		n.Queues = fresh.Queues
	}
	if n.Timelines == nil {
		n.Timelines = fresh.Timelines
	}
	*m = *n
	return nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// ints decodes an answer.
func ints(b []byte) []int64 {
	out := make([]int64, len(b)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}

// newestIDs returns the k greatest distinct ids, greatest first.
func newestIDs(k int, ids []int64) []int64 {
	slices.SortFunc(ids, func(a, b int64) int { return cmp.Compare(b, a) })
	ids = slices.Compact(ids)
	return ids[:min(k, len(ids))]
}

// simCmd is one command a client issued: its key and arguments, and
// whether it ends a workload operation.
type simCmd struct {
	key     string
	op      byte
	x, y    int64
	opEnd   bool
	payload []byte
}

// simWorkload is a simnet.Workload: the clients' mixes and the replicas'
// machines.
type simWorkload struct {
	cfg      SimConfig
	r        *rand.Rand
	zipf     *rand.Zipf
	machines map[protocols.NodeID]*simMachine
	issued   [][]simCmd // per client, in order
	queued   [][]simCmd // per client: the rest of its current operation
	left     []int      // per client: operations not yet started
	next     int64      // unique values
	graph    map[int][]int64
	posts    map[string][]int64 // Retwis: posts sent per timeline (newest kept)
	adds     int64
	tweets   int64
}

func newSimWorkload(cfg SimConfig) *simWorkload {
	w := &simWorkload{cfg: cfg, r: rand.New(rand.NewPCG(cfg.Seed, 0x646567)), machines: map[protocols.NodeID]*simMachine{},
		issued: make([][]simCmd, cfg.Clients), queued: make([][]simCmd, cfg.Clients), left: make([]int, cfg.Clients),
		posts: map[string][]int64{}}
	for i := range w.left {
		w.left[i] = cfg.Ops / cfg.Clients
		if i < cfg.Ops%cfg.Clients {
			w.left[i]++
		}
	}
	if cfg.Type == "retwis" {
		w.zipf = rand.NewZipf(w.r, 1.2, 1, uint64(cfg.Users-1))
		w.graph = map[int][]int64{}
		for u := range cfg.Users {
			for range 1 + int(w.zipf.Uint64())%4 {
				if v := int(w.zipf.Uint64()); v != u && !slices.Contains(w.graph[v], int64(u)) {
					w.graph[v] = append(w.graph[v], int64(u))
				}
			}
		}
	}
	return w
}

// commands bounds the commands of the run: the operations for the object
// mixes; for Retwis, whose operations are several commands, a bound that
// Next's end of the clients' operations keeps the run below.
func (w *simWorkload) commands() int {
	if w.cfg.Type != "retwis" {
		return w.cfg.Ops
	}
	return w.cfg.Ops * retwisMaxCommands
}

// retwisMaxCommands bounds the commands of one Retwis operation: a
// tweet's counter add, followers read and up to 9 posts.
const retwisMaxCommands = 11

// Machine implements simnet.Workload.
func (w *simWorkload) Machine(node protocols.NodeID) replica.StateMachine {
	m := newSimMachine(w.cfg.bug)
	for v, fs := range w.graph { // Retwis's initial follower graph
		set := map[int64]bool{}
		for _, u := range fs {
			set[u] = true
		}
		m.Sets[fmt.Sprint("followers/", v)] = set
	}
	if w.cfg.Type == "retwis" {
		m.Counters["users"] = int64(w.cfg.Users)
	}
	w.machines[node] = m
	return m
}

// ReadOnly implements simnet.Workload.
func (w *simWorkload) ReadOnly(c protocols.Command) bool { return isRead(c) }

// Next implements simnet.Workload.
func (w *simWorkload) Next(c int) (string, []byte, bool) {
	if len(w.queued[c]) == 0 {
		if w.left[c] == 0 {
			return "", nil, false
		}
		w.left[c]--
		w.queued[c] = w.start(c)
	}
	cmd := w.queued[c][0]
	w.queued[c] = w.queued[c][1:]
	cmd.opEnd = len(w.queued[c]) == 0 && w.cfg.Type != "retwis" || cmd.opEnd
	cmd.payload = encode(cmd.op, cmd.x, cmd.y)
	w.issued[c] = append(w.issued[c], cmd)
	return cmd.key, cmd.payload, true
}

// start returns the first commands of client c's next operation.
func (w *simWorkload) start(c int) []simCmd {
	r := w.r
	w.next++
	v := w.next
	switch w.cfg.Type {
	case "counter":
		if r.IntN(10) == 0 {
			return []simCmd{{key: "c", op: opValue}}
		}
		return []simCmd{{key: "c", op: opAdd, x: 1}}
	case "set":
		e := int64(r.IntN(universe))
		switch p := r.IntN(4); {
		case p == 0 && w.cfg.Level != degradable.Weak:
			return []simCmd{{key: "s", op: opSetRem, x: e}}
		case p <= 1:
			return []simCmd{{key: "s", op: opSetAdd, x: e}}
		}
		return []simCmd{{key: "s", op: opContains, x: e}}
	case "map":
		k := fmt.Sprint("m/", r.IntN(universe/16))
		switch p := r.IntN(10); {
		case p < 4:
			return []simCmd{{key: k, op: opPut, x: v}}
		case p == 4:
			return []simCmd{{key: k, op: opDel}}
		}
		return []simCmd{{key: k, op: opGet}}
	case "queue":
		if r.IntN(2) == 0 {
			return []simCmd{{key: "q", op: opEnq, x: v}}
		}
		return []simCmd{{key: "q", op: opDeq}}
	}
	// Retwis.
	u := int(w.zipf.Uint64())
	switch x := r.IntN(100); {
	case x < 5:
		w.adds++
		return []simCmd{{key: "users", op: opAdd, x: 1}, {key: "userset", op: opSetAdd, x: int64(w.cfg.Users) + w.adds, opEnd: true}}
	case x < 20:
		return []simCmd{{key: fmt.Sprint("followers/", int(w.zipf.Uint64())), op: opSetAdd, x: int64(u), opEnd: true}}
	case x < 50:
		w.tweets++
		id := v<<8 | int64(c)&0xff
		return []simCmd{{key: "posts", op: opAdd, x: 1}, {key: fmt.Sprint("followers/", u), op: opMembers, x: id, y: int64(u)}}
	}
	return []simCmd{{key: fmt.Sprint("timeline/", u), op: opLatest, opEnd: true}}
}

// Done implements simnet.Workload: a Retwis tweet's followers read makes
// its posts.
func (w *simWorkload) Done(c int, result []byte, ok bool) {
	is := w.issued[c]
	last := is[len(is)-1]
	if last.op != opMembers {
		return
	}
	targets := []int64{last.y}
	if ok {
		fs := ints(result)
		targets = append(targets, fs[:min(len(fs), 8)]...)
	}
	for i, t := range targets {
		key := fmt.Sprint("timeline/", t)
		w.queued[c] = append(w.queued[c], simCmd{key: key, op: opPost, x: last.x, y: int64(w.cfg.TimelineCap), opEnd: i == len(targets)-1})
		w.posts[key] = newestIDs(w.cfg.TimelineCap, append(w.posts[key], last.x))
	}
}

// measure returns the throughput and latencies of the history's workload
// operations, each the span from its first command's call to its last's
// return; a command without an answer is an error (the run is unchecked).
func (w *simWorkload) measure(h []simnet.Op) (SimResult, error) {
	k := make([]int, w.cfg.Clients)
	start := make([]int64, w.cfg.Clients)
	var lat []time.Duration
	first, last := int64(-1), int64(0)
	for _, op := range h {
		c := op.Client
		cmd := w.issued[c][k[c]]
		if k[c] == 0 || w.issued[c][k[c]-1].opEnd {
			start[c] = op.Call
		}
		k[c]++
		if op.Outcome != simnet.OutcomeOK {
			return SimResult{}, fmt.Errorf("client %d's %c on %s has no answer (outcome %v): the run cannot be checked", c, cmd.op, cmd.key, op.Outcome)
		}
		if !cmd.opEnd {
			continue
		}
		lat = append(lat, time.Duration(op.Return-start[c])*time.Microsecond)
		if first < 0 || start[c] < first {
			first = start[c]
		}
		last = max(last, op.Return)
	}
	out := SimResult{Ops: len(lat)}
	if len(lat) == 0 || last <= first {
		return out, errors.New("no operation completed")
	}
	out.OpsPerSec = float64(len(lat)) / (float64(last-first) / 1e6)
	slices.Sort(lat)
	out.P50, out.P99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	return out, nil
}

// final returns the state of client c's replica after the run.
func (w *simWorkload) final(h []simnet.Op, c int) *simMachine {
	node := protocols.NodeID(c%w.cfg.Nodes + 1)
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Client == c {
			node = h[i].Node
			break
		}
	}
	return w.machines[node]
}

// check checks the history against the level's checker.
func (w *simWorkload) check(h []simnet.Op) error {
	n := w.cfg.Clients
	k := make([]int, n)
	cmds := make([]simCmd, len(h))
	for i, op := range h {
		cmds[i] = w.issued[op.Client][k[op.Client]]
		k[op.Client]++
	}
	l := w.cfg.Level
	switch w.cfg.Type {
	case "counter":
		var ops []check.CounterOp
		for i, op := range h {
			o := check.CounterOp{Client: op.Client, Call: op.Call, Return: op.Return, Read: cmds[i].op == opValue, Delta: cmds[i].x}
			if o.Read {
				o.Value = ints(op.Result)[0]
			}
			ops = append(ops, o)
		}
		final := make([]int64, n)
		for c := range final {
			final[c] = w.final(h, c).Counters["c"]
		}
		return pick(l, check.CounterLinearizable, check.CounterSequential, check.CounterWeak)(ops, final)
	case "set":
		var ops []check.SetOp[int64]
		for i, op := range h {
			o := check.SetOp[int64]{Client: op.Client, Call: op.Call, Return: op.Return, Elem: cmds[i].x}
			switch cmds[i].op {
			case opSetAdd:
				o.Kind = check.SetAdd
			case opSetRem:
				o.Kind = check.SetRemove
			default:
				o.Kind, o.Result = check.SetContains, ints(op.Result)[0] == 1
			}
			ops = append(ops, o)
		}
		final := make([][]int64, n)
		for c := range final {
			for e := range w.final(h, c).Sets["s"] {
				final[c] = append(final[c], e)
			}
		}
		return pick(l, check.SetLinearizable[int64], check.SetSequential[int64], check.SetWeak[int64])(ops, final)
	case "map":
		var ops []check.MapOp[string, int64]
		for i, op := range h {
			o := check.MapOp[string, int64]{Client: op.Client, Call: op.Call, Return: op.Return, Key: cmds[i].key, Value: cmds[i].x}
			switch cmds[i].op {
			case opPut:
				o.Kind = check.MapPut
			case opDel:
				o.Kind = check.MapDelete
			default:
				r := ints(op.Result)
				o.Kind, o.Found, o.Value = check.MapGet, r[0] == 1, r[1]
			}
			ops = append(ops, o)
		}
		final := make([]map[string]int64, n)
		for c := range final {
			final[c] = w.final(h, c).Entries
		}
		return pick(l, check.MapLinearizable[string, int64], check.MapSequential[string, int64], check.MapWeak[string, int64])(ops, final)
	case "queue":
		var ops []check.QueueOp[int64]
		for i, op := range h {
			o := check.QueueOp[int64]{Client: op.Client, Call: op.Call, Return: op.Return, Kind: check.Enqueue, Elem: cmds[i].x}
			if cmds[i].op == opDeq {
				r := ints(op.Result)
				o.Kind, o.Ok, o.Elem = check.Dequeue, r[0] == 1, r[1]
			}
			ops = append(ops, o)
		}
		final := make([][]int64, n)
		for c := range final {
			final[c] = w.final(h, c).Queues["q"]
		}
		return pick(l, check.QueueLinearizable[int64], check.QueueSequential[int64], check.QueueWeak[int64])(ops, final)
	}
	return w.checkRetwis()
}

// checkRetwis checks every replica's end state: the counters count every
// add and tweet, and every timeline holds the newest posts sent to it.
func (w *simWorkload) checkRetwis() error {
	for _, node := range slices.Sorted(mapKeys(w.machines)) {
		m := w.machines[node]
		if got, want := m.Counters["users"], int64(w.cfg.Users)+w.adds; got != want {
			return fmt.Errorf("replica %d counts %d users, want %d (an update was lost)", node, got, want)
		}
		if got, want := m.Counters["posts"], w.tweets; got != want {
			return fmt.Errorf("replica %d counts %d posts, want %d (an update was lost)", node, got, want)
		}
		for _, key := range slices.Sorted(mapKeys(w.posts)) {
			if got, want := m.Timelines[key], w.posts[key]; !slices.Equal(got, want) {
				return fmt.Errorf("replica %d's %s holds %v, want the newest posts %v (a post was lost)", node, key, got, want)
			}
		}
	}
	return nil
}

func mapKeys[K cmp.Ordered, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// pick returns the checker of level l.
func pick[F any](l degradable.Level, lin, seq, weak F) F {
	switch l {
	case degradable.Linearizable:
		return lin
	case degradable.Sequential:
		return seq
	}
	return weak
}
