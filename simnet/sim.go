package simnet

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"

	"github.com/blossom-dso/blossom/protocols"
)

// Payload layout of a workload command: opcode, value (little endian),
// zero padding up to Config.Size.
const (
	opGet        = 'G'
	opPut        = 'P'
	minPayload   = 9
	fnvOffset    = 14695981039346656037
	fnvPrime     = 1099511628211
	digestDeliv  = 1
	digestExec   = 2
	digestClient = 3
	digestCrash  = 4
)

// heldSend is a send waiting for a sync.
type heldSend struct {
	to int
	m  protocols.Message
}

// batch is the records of one call (or, for a call that persisted nothing,
// none) and the sends that wait for them to be synced.
type batch struct {
	upTo  int // log length once synced
	sends []heldSend
}

// execRec is one Execute call. It holds no pointer, so that recording
// executions costs the garbage collector nothing; the keys of a workload
// command are found through its client (sim.keysOf).
type execRec struct {
	id protocols.CommandID
}

// node is one replica: the protocol instance and its Env.
type node struct {
	s     *sim
	idx   int
	id    protocols.NodeID
	proto protocols.Protocol
	cfg   protocols.Config // template for restarts
	seed  uint64
	rand  *rand.Rand

	up      bool
	stopped bool   // crash-stopped for good
	inc     uint32 // incarnation, 0 on first start

	log       [][]byte // every record persisted and not lost
	durable   int      // log[:durable] is synced
	persisted bool     // the current call persisted something
	batches   []batch  // outstanding syncs, oldest first from bhead
	bhead     int

	kv    map[string]uint64
	execs [][]execRec // per incarnation

	stats NodeStats
}

// client is one closed-loop client.
type client struct {
	home    int // node index whose site the client is at
	node    int // replica it talks to now
	total   int
	issued  int
	seq     uint64
	waiting bool
	op      int // history index of the current operation
	private string
	done    bool
	ops     []int32 // history index of each operation, by Seq-1
	// deadline is when the current operation times out; timer says an
	// evTimeout for the client is in the heap (at most one is, so the heap
	// does not fill with the timeouts of operations that completed).
	deadline int64
	timer    bool
	// skip counts the client's timeouts in a multicast run: it then submits
	// to the skip-th closest replica of the destination groups.
	skip int
}

// sim is one run.
type sim struct {
	cfg   *resolved
	q     eventHeap
	msgs  slab[protocols.Message]
	cmds  slab[protocols.Command]
	now   int64
	nodes []*node
	n     int
	links *links
	peers []protocols.NodeID

	master, netRand, workRand, faultRand, phaseRand *rand.Rand

	// faults
	spec       FaultSpec
	window     int64
	faulty     bool    // inside the fault window
	cut        []int32 // n*n: partitions cutting the link
	clog       []int64 // n*n: extra delay
	reorderMax int64
	plan       []fault
	faultLog   []string

	clients     []client
	clientsDone int
	sharedKeys  []string
	nextValue   uint64
	history     []Op
	stuck       int
	// extraKeys holds the keys of executed commands that no client issued
	extraKeys map[protocols.CommandID][]string

	digest               uint64
	messages, deliveries int64
	dropped, duplicated  int64
	fast, slow           int64
	executions           int64
	opsDone              int // operations completed (ok or info)
	err                  error
	done                 bool

	// mc is the multicast state; nil unless Config.Groups > 0.
	mc *mcast
}

// Run simulates cfg and returns its result. A configuration error wraps
// ErrConfig; a run error (a protocol panic, a codec failure, a protocol
// that cannot be built) names the seed.
func Run(cfg Config) (res *Result, err error) {
	rc, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	s := newSim(rc)
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("simnet: seed %d: panic at virtual time %dus: %v\n%s", rc.Seed, s.now, p, debug.Stack())
		}
	}()
	if err := s.start(); err != nil {
		return nil, err
	}
	s.loop()
	if s.err != nil {
		return nil, fmt.Errorf("simnet: seed %d: at virtual time %dus: %w", rc.Seed, s.now, s.err)
	}
	return s.result(), nil
}

func newSim(rc *resolved) *sim {
	n := rc.Nodes
	s := &sim{cfg: rc, n: n, links: rc.links, digest: fnvOffset, nextValue: 1}
	s.master = rand.New(rand.NewPCG(rc.Seed, 0x626c6f73736f6d)) // "blossom"
	stream := func() *rand.Rand { return rand.New(rand.NewPCG(s.master.Uint64(), s.master.Uint64())) }
	s.netRand, s.workRand, s.faultRand, s.phaseRand = stream(), stream(), stream(), stream()
	s.cut = make([]int32, n*n)
	s.clog = make([]int64, n*n)
	s.window = rc.FaultWindow
	s.reorderMax = 2 * max(rc.links.maxOneWay, 1000)
	for i := range n {
		s.peers = append(s.peers, protocols.NodeID(i+1))
	}
	for i := range n {
		nd := &node{s: s, idx: i, id: protocols.NodeID(i + 1), seed: s.master.Uint64()}
		nd.cfg = protocols.Config{
			Self: nd.id, Peers: s.peers, F: rc.F, E: rc.E, Closest: s.closest(i),
			SuspectTicks: rc.SuspectTicks, Env: nd,
		}
		if rc.Groups > 0 {
			nd.cfg.Groups, nd.cfg.GroupOf = multicastGroups(rc.Groups, 2*rc.F+1), GroupOf
		}
		nd.stats.Node = nd.id
		nd.stats.Site = rc.sites[i]
		s.nodes = append(s.nodes, nd)
	}
	return s
}

// closest orders the peers by one-way delay from node i, i first, ties by id.
func (s *sim) closest(i int) []protocols.NodeID {
	idx := make([]int, s.n)
	for j := range idx {
		idx[j] = j
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		da, db := s.links.base[i*s.n+a], s.links.base[i*s.n+b]
		if a == i {
			da = -1
		}
		if b == i {
			db = -1
		}
		switch {
		case da < db:
			return -1
		case da > db:
			return 1
		}
		return 0
	})
	out := make([]protocols.NodeID, s.n)
	for j, x := range idx {
		out[j] = protocols.NodeID(x + 1)
	}
	return out
}

func (s *sim) start() error {
	rc := s.cfg
	// Fault plan.
	s.spec = rc.faults
	if s.spec.Swarm {
		s.spec = drawSwarm(s.faultRand)
	}
	unit := max(s.links.maxOneWay, 1000)
	s.plan = planFaults(s.faultRand, s.spec, s.n, rc.F, s.window, unit)
	for _, cr := range rc.Crashes {
		end := cr.RestartAt
		if cr.Kind == CrashStop {
			end = -1
		} else if end <= cr.At {
			end = max(s.window, cr.At+1)
		}
		s.plan = append(s.plan, fault{kind: fkCrash, crash: cr.Kind, node: int(cr.Node) - 1, start: cr.At, end: end, scripted: true})
	}
	s.faulty = !s.spec.None()
	for i, f := range s.plan {
		s.q.push(event{at: f.start, kind: evFaultStart, a: uint64(i)})
		if f.end >= 0 {
			s.q.push(event{at: f.end, kind: evFaultEnd, a: uint64(i)})
		}
	}
	if s.faulty {
		s.q.push(event{at: s.window, kind: evHeal})
	}
	// Nodes.
	for _, nd := range s.nodes {
		if err := nd.boot(nil); err != nil {
			return err
		}
	}
	// Workload.
	s.sharedKeys = make([]string, rc.Keys)
	for i := range s.sharedKeys {
		s.sharedKeys[i] = "k" + strconv.Itoa(i)
	}
	s.history = make([]Op, 0, rc.Ops)
	if rc.Groups > 0 {
		s.mc = newMcast(s)
	}
	s.clients = make([]client, rc.Clients)
	for i := range s.clients {
		c := &s.clients[i]
		c.home = i % s.n
		c.node = c.home
		c.total = rc.Ops / rc.Clients
		if i < rc.Ops%rc.Clients {
			c.total++
		}
		c.private = "c" + strconv.Itoa(i+1)
		s.q.push(event{at: s.phaseRand.Int64N(rc.TickInterval), kind: evStart, peer: uint32(i)})
	}
	return nil
}

// boot starts a new incarnation of nd with the recovered records.
func (nd *node) boot(recovered [][]byte) error {
	s := nd.s
	nd.up = true
	nd.rand = rand.New(rand.NewPCG(nd.seed, uint64(nd.inc)))
	nd.kv = map[string]uint64{}
	hint := s.cfg.Ops
	if len(nd.execs) > 0 {
		hint = len(nd.execs[len(nd.execs)-1])
	}
	nd.execs = append(nd.execs, make([]execRec, 0, hint))
	cfg := nd.cfg
	cfg.Recovered = recovered
	p, err := protocols.New(s.cfg.Protocol, cfg)
	if err != nil {
		return fmt.Errorf("simnet: seed %d: start node %d (incarnation %d): %w", s.cfg.Seed, nd.id, nd.inc, err)
	}
	nd.proto = p
	s.q.push(event{at: s.now + 1 + s.phaseRand.Int64N(s.cfg.TickInterval), kind: evTick, node: uint32(nd.idx), inc: nd.inc})
	return nil
}

// crash takes nd down; lostTail drops its unsynced records.
func (nd *node) crash(kind CrashKind) {
	s := nd.s
	nd.up = false
	nd.proto = nil
	nd.inc++
	for i := nd.bhead; i < len(nd.batches); i++ {
		clear(nd.batches[i].sends)
	}
	nd.batches, nd.bhead = nd.batches[:0], 0
	nd.persisted = false
	if kind == CrashLostTail {
		clear(nd.log[nd.durable:])
		nd.log = nd.log[:nd.durable]
	} else {
		nd.durable = len(nd.log)
	}
	if kind == CrashStop {
		nd.stopped = true
	}
	nd.stats.Crashes++
	s.fold(digestCrash, uint64(s.now), uint64(nd.idx)<<8|uint64(kind))
}

// restart brings nd back with copies of its remaining records.
func (nd *node) restart() error {
	rec := make([][]byte, len(nd.log))
	for i, r := range nd.log {
		rec[i] = slices.Clone(r)
	}
	nd.durable = len(nd.log)
	return nd.boot(rec)
}

func (s *sim) fold(tag, x, y uint64) {
	h := s.digest
	h = (h ^ tag) * fnvPrime
	h = (h ^ x) * fnvPrime
	h = (h ^ y) * fnvPrime
	s.digest = h
}

func (s *sim) loop() {
	maxTime := s.cfg.MaxTime
	for s.q.len() > 0 && (!s.done || s.draining()) && s.err == nil {
		ev := s.q.pop()
		if ev.at > maxTime {
			break
		}
		s.now = ev.at
		switch ev.kind {
		case evMsg:
			m := s.msgs.take(ev.a)
			nd := s.nodes[ev.node]
			if !nd.up {
				s.dropped++
				continue
			}
			s.deliveries++
			nd.stats.Delivered++
			s.fold(digestDeliv, uint64(ev.at), uint64(ev.peer)<<32|uint64(ev.node))
			nd.persisted = false
			nd.proto.Step(protocols.NodeID(ev.peer+1), m)
			nd.endCall()
		case evSync:
			nd := s.nodes[ev.node]
			if ev.inc == nd.inc && nd.up {
				nd.synced()
			}
		case evTick:
			nd := s.nodes[ev.node]
			if ev.inc == nd.inc && nd.up {
				nd.persisted = false
				nd.proto.Tick()
				nd.endCall()
				s.q.push(event{at: s.now + s.cfg.TickInterval, kind: evTick, node: ev.node, inc: ev.inc})
			}
		case evSubmit:
			cmd := s.cmds.take(ev.a)
			nd := s.nodes[ev.node]
			if !nd.up {
				s.dropped++
				continue
			}
			nd.persisted = false
			nd.proto.Submit(cmd)
			nd.endCall()
		case evReply:
			s.reply(int(ev.peer), ev.a, ev.b)
		case evTimeout:
			s.timeout(int(ev.peer))
		case evStart:
			s.issue(int(ev.peer))
		case evFaultStart:
			s.faultStart(int(ev.a))
		case evFaultEnd:
			s.faultEnd(int(ev.a))
		case evHeal:
			s.heal()
		}
	}
}

// endCall ends a Submit, Step or Tick: if it persisted, its sync starts.
func (nd *node) endCall() {
	if !nd.persisted {
		return
	}
	nd.persisted = false
	if !nd.up { // the protocol cannot crash itself, but be safe
		return
	}
	nd.batches[len(nd.batches)-1].upTo = len(nd.log)
	s := nd.s
	s.q.push(event{at: s.now + s.cfg.DiskDelay, kind: evSync, node: uint32(nd.idx), inc: nd.inc})
}

// synced completes the oldest outstanding sync: its records become durable
// and its held sends leave.
func (nd *node) synced() {
	b := &nd.batches[nd.bhead]
	nd.bhead++
	nd.durable = max(nd.durable, b.upTo)
	for i := range b.sends {
		hs := b.sends[i]
		b.sends[i].m = nil
		nd.s.transmit(nd.idx, hs.to, hs.m)
	}
	b.sends = b.sends[:0]
	if nd.bhead == len(nd.batches) {
		nd.batches, nd.bhead = nd.batches[:0], 0
	}
}

// Send implements protocols.Env. A send leaves at once unless the current
// call persisted a record before it or an earlier call's sync is still
// outstanding; then it leaves when the newest outstanding sync completes,
// so a message never overtakes a record persisted before it was sent.
func (nd *node) Send(to protocols.NodeID, m protocols.Message) {
	s := nd.s
	s.messages++
	nd.stats.Sent++
	if to < 1 || int(to) > s.n {
		if s.err == nil {
			s.err = fmt.Errorf("node %d sent %T to node %d, which does not exist", nd.id, m, to)
		}
		return
	}
	if s.cfg.CodecCheck {
		m = s.roundTrip(m)
	}
	if nd.bhead < len(nd.batches) {
		b := &nd.batches[len(nd.batches)-1]
		b.sends = append(b.sends, heldSend{to: int(to) - 1, m: m})
		return
	}
	s.transmit(nd.idx, int(to)-1, m)
}

func (s *sim) roundTrip(m protocols.Message) protocols.Message {
	codec := s.cfg.spec.Codec
	b, err := codec.Marshal(nil, m)
	if err != nil {
		if s.err == nil {
			s.err = fmt.Errorf("codec check: marshal %T: %w", m, err)
		}
		return m
	}
	out, err := codec.Unmarshal(b)
	if err != nil {
		if s.err == nil {
			s.err = fmt.Errorf("codec check: unmarshal %T (%d bytes): %w", m, len(b), err)
		}
		return m
	}
	return out
}

// transmit puts m on the network from node i to node j.
func (s *sim) transmit(i, j int, m protocols.Message) {
	if i == j {
		s.q.push(event{at: s.now, kind: evMsg, node: uint32(j), peer: uint32(i), a: s.msgs.put(m)})
		return
	}
	d := s.links.delay(s.netRand, i, j)
	if s.faulty {
		l := i*s.n + j
		if s.cut[l] > 0 {
			s.dropped++
			return
		}
		r := s.netRand
		if s.spec.Loss > 0 && r.Float64() < s.spec.Loss {
			s.dropped++
			return
		}
		d += s.clog[l]
		if s.spec.Reorder > 0 && r.Float64() < s.spec.Reorder {
			d += r.Int64N(s.reorderMax)
		}
		if s.spec.Dup > 0 && r.Float64() < s.spec.Dup {
			s.duplicated++
			d2 := s.links.delay(r, i, j) + s.clog[l] + r.Int64N(s.reorderMax)
			s.q.push(event{at: s.now + d2, kind: evMsg, node: uint32(j), peer: uint32(i), a: s.msgs.put(m)})
		}
	}
	s.q.push(event{at: s.now + d, kind: evMsg, node: uint32(j), peer: uint32(i), a: s.msgs.put(m)})
}

// Persist implements protocols.Env.
func (nd *node) Persist(rec []byte) {
	nd.log = append(nd.log, rec)
	nd.stats.Persisted++
	if !nd.persisted {
		nd.persisted = true
		if len(nd.batches) < cap(nd.batches) {
			nd.batches = nd.batches[:len(nd.batches)+1]
			nd.batches[len(nd.batches)-1].sends = nd.batches[len(nd.batches)-1].sends[:0]
		} else {
			nd.batches = append(nd.batches, batch{})
		}
	}
}

// Rand implements protocols.Env.
func (nd *node) Rand() *rand.Rand { return nd.rand }

// ReportPath implements protocols.PathReporter.
func (nd *node) ReportPath(fast bool) {
	if fast {
		nd.s.fast++
		nd.stats.FastPaths++
	} else {
		nd.s.slow++
		nd.stats.SlowPaths++
	}
}

// Execute implements protocols.Env: it applies c to the node's key-value
// state machine and answers the client if c is the command the client is
// waiting for at this node.
func (nd *node) Execute(c protocols.Command) {
	s := nd.s
	s.executions++
	nd.stats.Executed++
	inc := len(nd.execs) - 1
	nd.execs[inc] = append(nd.execs[inc], execRec{id: c.ID})
	if !s.isWorkload(c.ID) {
		if s.extraKeys == nil {
			s.extraKeys = map[protocols.CommandID][]string{}
		}
		if _, ok := s.extraKeys[c.ID]; !ok {
			s.extraKeys[c.ID] = slices.Clone(c.Keys)
		}
	}
	s.fold(digestExec, uint64(s.now)<<16|uint64(nd.idx), c.ID.Client<<40^c.ID.Seq)
	var out uint64
	if len(c.Keys) > 0 && len(c.Payload) >= minPayload {
		if c.Payload[0] == opPut {
			nd.kv[c.Keys[0]] = binary.LittleEndian.Uint64(c.Payload[1:])
			if s.mc != nil {
				for _, k := range c.Keys[1:] {
					nd.kv[k] = binary.LittleEndian.Uint64(c.Payload[1:])
				}
			}
		} else {
			out = nd.kv[c.Keys[0]]
		}
	}
	if s.mc != nil {
		s.mc.executed(nd, c)
	}
	ci := c.ID.Client - 1
	if ci >= uint64(len(s.clients)) {
		return
	}
	cl := &s.clients[ci]
	if cl.waiting && cl.seq == c.ID.Seq && cl.node == nd.idx {
		d := s.links.clientDelay(s.netRand, cl.home, nd.idx)
		s.q.push(event{at: s.now + d, kind: evReply, peer: uint32(ci), a: c.ID.Seq, b: out})
	}
}

// isWorkload reports whether id names a command a client issued.
func (s *sim) isWorkload(id protocols.CommandID) bool {
	ci := id.Client - 1
	return ci < uint64(len(s.clients)) && id.Seq >= 1 && id.Seq <= uint64(len(s.clients[ci].ops))
}

// keysOf returns the keys of an executed command.
func (s *sim) keysOf(id protocols.CommandID) []string {
	if s.isWorkload(id) {
		return s.history[s.clients[id.Client-1].ops[id.Seq-1]].keys
	}
	return s.extraKeys[id]
}

// issue starts client ci's next operation, or finishes the client.
func (s *sim) issue(ci int) {
	cl := &s.clients[ci]
	if cl.issued == cl.total {
		if !cl.done {
			cl.done = true
			s.clientsDone++
			if s.clientsDone == len(s.clients) {
				s.done = true
			}
		}
		return
	}
	cl.issued++
	if s.mc != nil {
		s.mc.issue(ci)
		return
	}
	rc := s.cfg
	r := s.workRand
	key := cl.private
	if r.Float64()*100 < rc.Conflict {
		key = s.sharedKeys[r.IntN(len(s.sharedKeys))]
	}
	put := r.Float64()*100 >= rc.Reads
	var value uint64
	payload := make([]byte, max(rc.Size, minPayload))
	payload[0] = opGet
	if put {
		value = s.nextValue
		s.nextValue++
		payload[0] = opPut
		binary.LittleEndian.PutUint64(payload[1:], value)
	}
	cl.seq++
	cmd := protocols.Command{
		ID:      protocols.CommandID{Client: uint64(ci + 1), Seq: cl.seq},
		Keys:    []string{key},
		Payload: payload,
	}
	cl.waiting = true
	cl.op = len(s.history)
	cl.ops = append(cl.ops, int32(cl.op))
	s.history = append(s.history, Op{
		Client: ci, Node: protocols.NodeID(cl.node + 1), Site: s.cfg.sites[cl.home],
		Key: key, Put: put, Value: value, Call: s.now, Return: -1, keys: cmd.Keys,
	})
	d := s.links.clientDelay(s.netRand, cl.home, cl.node)
	s.q.push(event{at: s.now + d, kind: evSubmit, node: uint32(cl.node), peer: uint32(ci), a: s.cmds.put(cmd)})
	cl.deadline = s.now + rc.ClientTimeout
	if !cl.timer {
		cl.timer = true
		s.q.push(event{at: cl.deadline, kind: evTimeout, peer: uint32(ci)})
	}
}

// next schedules client ci's next operation one microsecond from now, so
// that a client's operations never share a timestamp (which the
// linearizability checker would read as concurrent).
func (s *sim) next(ci int) {
	s.q.push(event{at: s.now + 1, kind: evStart, peer: uint32(ci)})
}

// reply delivers a replica's answer to client ci.
func (s *sim) reply(ci int, seq, value uint64) {
	cl := &s.clients[ci]
	if !cl.waiting || cl.seq != seq {
		return
	}
	cl.waiting = false
	op := &s.history[cl.op]
	op.Return, op.Output, op.Outcome = s.now, value, OutcomeOK
	s.completed()
	s.fold(digestClient, uint64(s.now), uint64(ci)<<32^value)
	s.next(ci)
}

// timeout fires client ci's timer: it gives up on the current operation if
// its deadline has passed, and otherwise re-arms the timer for it.
func (s *sim) timeout(ci int) {
	cl := &s.clients[ci]
	cl.timer = false
	if !cl.waiting {
		return
	}
	if s.now < cl.deadline {
		cl.timer = true
		s.q.push(event{at: cl.deadline, kind: evTimeout, peer: uint32(ci)})
		return
	}
	cl.waiting = false
	h := &s.history[cl.op]
	h.Outcome = OutcomeInfo
	if h.Call >= s.window+s.cfg.ClientTimeout && !s.nodes[h.Node-1].stopped {
		s.stuck++
	}
	s.completed()
	s.fold(digestClient, uint64(s.now), uint64(ci)<<32|1<<31)
	cl.node = (cl.node + 1) % s.n
	cl.skip++
	s.next(ci)
}

// completed counts a completed operation and closes the fault window once
// 60% of the operations completed, so that a live protocol always has
// operations left to complete after the heal.
func (s *sim) completed() {
	s.opsDone++
	if s.faulty && s.opsDone*10 >= s.cfg.Ops*6 {
		s.heal()
	}
}

func (s *sim) logf(format string, args ...any) {
	s.faultLog = append(s.faultLog, fmt.Sprintf("%10.3fms ", float64(s.now)/1000)+fmt.Sprintf(format, args...))
}

func (s *sim) faultStart(i int) {
	f := &s.plan[i]
	switch f.kind {
	case fkCrash:
		nd := s.nodes[f.node]
		if !nd.up || (!f.scripted && !s.faulty) {
			return
		}
		nd.crash(f.crash)
		until := "for good"
		if f.end >= 0 {
			until = fmt.Sprintf("until %.3fms", float64(f.end)/1000)
		}
		s.logf("%s node %d %s", f.crash, nd.id, until)
	case fkPartition:
		if !s.faulty {
			return
		}
		for l, c := range f.cut {
			if c {
				s.cut[l]++
			}
		}
		s.logf("partition %s until %.3fms", s.describeCut(f.cut), float64(f.end)/1000)
	case fkClog:
		if !s.faulty {
			return
		}
		for l, c := range f.cut {
			if c {
				s.clog[l] += f.extra
			}
		}
		s.logf("clog %s +%.3fms until %.3fms", s.describeCut(f.cut), float64(f.extra)/1000, float64(f.end)/1000)
	}
}

func (s *sim) describeCut(cut []bool) string {
	var out []byte
	for l, c := range cut {
		if c {
			if len(out) > 0 {
				out = append(out, ' ')
			}
			out = fmt.Appendf(out, "%d->%d", l/s.n+1, l%s.n+1)
		}
	}
	return string(out)
}

func (s *sim) faultEnd(i int) {
	f := &s.plan[i]
	switch f.kind {
	case fkCrash:
		nd := s.nodes[f.node]
		if nd.up || nd.stopped {
			return
		}
		s.logf("restart node %d", nd.id)
		if err := nd.restart(); err != nil {
			s.err = err
		}
	case fkPartition, fkClog:
		if !s.faulty || s.now >= s.window {
			return // the window closed (or is closing now) and cleared it
		}
		for l, c := range f.cut {
			if !c {
				continue
			}
			if f.kind == fkPartition {
				s.cut[l]--
			} else {
				s.clog[l] -= f.extra
			}
		}
		if f.kind == fkPartition {
			s.logf("heal partition %s", s.describeCut(f.cut))
		} else {
			s.logf("unclog %s", s.describeCut(f.cut))
		}
	}
}

// heal closes the fault window, at Config.FaultWindow or once 60% of the
// operations completed, whichever comes first: links heal, message faults
// stop and every crashed node that may restart restarts.
func (s *sim) heal() {
	if !s.faulty {
		return
	}
	s.faulty = false
	s.window = s.now
	clear(s.cut)
	clear(s.clog)
	s.logf("fault window closes after %d of %d operations: everything heals", s.opsDone, s.cfg.Ops)
	for _, nd := range s.nodes {
		if !nd.up && !nd.stopped {
			s.logf("restart node %d", nd.id)
			if err := nd.restart(); err != nil {
				s.err = err
				return
			}
		}
	}
}
