package simnet

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"

	"github.com/blossom-dso/blossom/protocols"
	pmcast "github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/replica"
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

// execRec is one Execute call. It holds no pointer, so that recording
// executions costs the garbage collector nothing; the keys of a workload
// command are found through its client (sim.keysOf).
type execRec struct {
	id protocols.CommandID
}

// node is one replica: a replica core (the protocol, its state machine and
// the persistence rules) driven over the virtual disk and network.
type node struct {
	s       *sim
	idx     int
	id      protocols.NodeID
	core    *replica.Core
	cfg     protocols.Config // template for restarts
	seed    uint64
	rand    *rand.Rand
	kv      kvMachine
	up      bool
	stopped bool   // crash-stopped for good
	inc     uint32 // incarnation, 0 on first start

	// The virtual disk: the last durable checkpoint, and the records
	// persisted after it (log[i] has log index snap.Index+1+i). Records up
	// to log index durable survive a crash that loses the unsynced tail.
	snap    *replica.Snapshot
	log     [][]byte
	durable uint64
	// pending are checkpoints taken but not yet durable: each becomes the
	// node's snapshot once the records it covers are durable.
	pending []pendingSnap
	// snapExecs says which executions snap reflects: the first snapExecs.n
	// entries of execs[snapExecs.inc].
	snapExecs execPrefix

	execs [][]execRec // per incarnation; a restart from a checkpoint
	// starts its list with the executions the checkpoint reflects

	// With the ack-crash fault: sentTo is the last other node the
	// current input released a message to (0 if none), answered says it
	// released an answer to a waiting client, and lossyIncs are the
	// incarnations whose messages in flight were lost with them.
	sentTo    protocols.NodeID
	answered  bool
	lossyIncs []uint32

	stats NodeStats
}

// execPrefix names the first n executions of incarnation inc.
type execPrefix struct {
	inc, n int
}

// pendingSnap is a checkpoint waiting for its records to be durable.
type pendingSnap struct {
	snap  replica.Snapshot
	execs execPrefix
}

// client is one closed-loop client.
type client struct {
	home   int // node index whose site the client is at
	node   int // replica it talks to now
	total  int
	issued int
	seq    uint64
	// answered is the longest prefix of sequence numbers all answered; a
	// command's Acked is answered+1. An operation that timed out ends the
	// prefix for good: the client may not vouch for its outcome.
	answered uint64
	waiting  bool
	op       int // history index of the current operation
	private  string
	done     bool
	ops      []int32 // history index of each operation, by Seq-1
	// deadline is when the current operation times out; timer says an
	// evTimeout for the client is in the heap (at most one is, so the heap
	// does not fill with the timeouts of operations that completed).
	deadline int64
	timer    bool
	// skip counts the client's timeouts in a multicast run: it then submits
	// to the skip-th closest replica of the destination groups.
	skip int
	// seen is the greatest log position the client was answered at
	// (protocols.Positioner), passed with its commands as Command.Seen;
	// replySeen is the position of the answer on its way to it.
	seen, replySeen uint64
	// result is the answer on its way to the client, in a run with a
	// Config.Workload.
	result []byte
}

// sim is one run.
type sim struct {
	drainAt int64 // Config.Drain: when draining ends; 0 before the clients finish
	cfg     *resolved
	q       eventHeap
	msgs    slab[protocols.Message]
	cmds    slab[protocols.Command]
	now     int64
	nodes   []*node
	n       int
	links   *links
	peers   []protocols.NodeID

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
	// ack is the ack-crash fault's state; nil unless the spec has it.
	ack *ackCrash
	// injection (Config.Inject)
	injectRand              *rand.Rand
	injected, injectIgnored int64

	clients     []client
	clientsDone int
	sharedKeys  []string
	nextValue   uint64
	history     []Op
	checkBufs   *checkBufs // scratch arrays of result's checks (recycle.go)
	stuck       int
	// bytes and keyLists are the chunks workload payloads and key lists
	// are cut from.
	bytes    []byte
	keyLists []string
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

	// disk says whether a node may crash (a planned or scripted crash,
	// ack-crash, an explored run): only then is the virtual disk's log
	// kept, since only a restart reads it.
	disk bool

	// mc is the multicast state; nil unless Config.Groups > 0.
	mc *mcast
	// x is the state of an explored run; nil unless Config.Scheduler is set.
	x *explorer
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
	s.checkBufs = getCheckBufs()
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("simnet: seed %d: panic at virtual time %dus: %v\n%s", rc.Seed, s.now, p, debug.Stack())
		}
	}()
	if rc.Scheduler != nil {
		if err := s.validateExplore(); err != nil {
			return nil, err
		}
		s.x = &explorer{
			sched: rc.Scheduler, budget: rc.Budget, chanN: make([]int, s.n*s.n), ticks: make([]int, s.n),
			seen: map[incKey]int{}, perKey: map[incKey]map[string][]protocols.CommandID{}, before: map[[2]protocols.CommandID]string{},
		}
		if a, ok := rc.Scheduler.(StateScheduler); ok {
			a.Attach(StateView{s})
		}
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	if s.x != nil {
		s.exploreLoop()
	} else {
		s.loop()
	}
	if s.err != nil {
		return nil, fmt.Errorf("simnet: seed %d: at virtual time %dus: %w", rc.Seed, s.now, s.err)
	}
	res = s.result()
	s.recycle()
	return res, nil
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
	leader := s.initialLeader(rc)
	for i := range n {
		nd := &node{s: s, idx: i, id: protocols.NodeID(i + 1), seed: s.master.Uint64()}
		nd.cfg = protocols.Config{
			Self: nd.id, Peers: s.peers, F: rc.F, E: rc.E, Closest: s.closest(i),
			SuspectTicks: rc.SuspectTicks, InitialLeader: leader, ReadOnly: isGet,
		}
		if rc.Workload != nil {
			nd.cfg.ReadOnly = rc.Workload.ReadOnly
		}
		if rc.Groups > 0 {
			nd.cfg.Groups, nd.cfg.GroupOf = pmcast.Groups(rc.Groups, 2*rc.F+1), GroupOf
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
		s.spec.AckCrash = rc.faults.AckCrash
	}
	unit := max(s.links.maxOneWay, 1000)
	s.plan = planFaults(s.faultRand, s.spec, s.n, rc.F, s.window, unit)
	if s.spec.AckCrash && rc.F >= 1 {
		s.ack = newAckCrash(rc)
	}
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
	s.disk = s.ack != nil || s.x != nil
	for _, f := range s.plan {
		s.disk = s.disk || f.kind == fkCrash
	}
	for i, f := range s.plan {
		s.q.push(event{at: f.start, kind: evFaultStart, a: uint64(i)})
		if f.end >= 0 {
			s.q.push(event{at: f.end, kind: evFaultEnd, a: uint64(i)})
		}
	}
	if s.faulty {
		s.q.push(event{at: s.window, kind: evHeal})
	}
	if rc.Inject != nil {
		s.injectRand = rand.New(rand.NewPCG(rc.Seed, 0x696e6a656374)) // "inject"
		s.q.push(event{at: rc.InjectEvery, kind: evInject})
	}
	// Nodes.
	for _, nd := range s.nodes {
		if err := nd.boot(); err != nil {
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

// boot starts a new incarnation of nd from its durable checkpoint and the
// records after it.
func (nd *node) boot() error {
	s := nd.s
	nd.up = true
	nd.rand = rand.New(rand.NewPCG(nd.seed, uint64(nd.inc)))
	nd.kv = kvMachine{kv: map[string]uint64{}, multicast: s.cfg.Groups > 0}
	hint := s.cfg.Ops
	if len(nd.execs) > 0 {
		hint = len(nd.execs[len(nd.execs)-1])
	}
	execs := newExecs(hint)
	if nd.snap != nil {
		execs = append(execs, nd.execs[nd.snapExecs.inc][:nd.snapExecs.n]...)
	}
	nd.execs = append(nd.execs, execs)
	recs := make([][]byte, len(nd.log))
	for i, r := range nd.log {
		recs[i] = slices.Clone(r)
	}
	var snap *replica.Snapshot
	if nd.snap != nil {
		c := *nd.snap
		c.Checkpoint, c.State = slices.Clone(c.Checkpoint), slices.Clone(c.State)
		snap = &c
	}
	var sm replica.StateMachine = &nd.kv
	if s.cfg.Workload != nil {
		sm = s.cfg.Workload.Machine(nd.id)
	}
	core, err := replica.New(replica.Config{
		Spec: s.cfg.spec, Protocol: nd.cfg, StateMachine: sm, Rand: nd.rand,
		Snapshot: snap, Records: recs, CompactEvery: s.cfg.CompactEvery, HoldReplies: true,
		DiscardRecords: !s.disk, // only a restart reads the log
		WantReply:      nd.waitedFor,
	})
	if err != nil {
		return fmt.Errorf("simnet: seed %d: start node %d (incarnation %d): %w", s.cfg.Seed, nd.id, nd.inc, err)
	}
	nd.core = core
	nd.durable = core.LastIndex()
	nd.drain()
	s.q.push(event{at: s.now + 1 + s.phaseRand.Int64N(s.cfg.TickInterval), kind: evTick, node: uint32(nd.idx), inc: nd.inc})
	return nil
}

// crash takes nd down; lostTail drops its unsynced records.
func (nd *node) crash(kind CrashKind) {
	s := nd.s
	nd.up = false
	nd.addStats()
	nd.core = nil
	nd.inc++
	nd.pending = nd.pending[:0]
	base := uint64(0)
	if nd.snap != nil {
		base = nd.snap.Index
	}
	if kind == CrashLostTail {
		keep := int(nd.durable - base)
		clear(nd.log[keep:])
		nd.log = nd.log[:keep]
	}
	if kind == CrashStop {
		nd.stopped = true
	}
	nd.stats.Crashes++
	s.fold(digestCrash, uint64(s.now), uint64(nd.idx)<<8|uint64(kind))
}

// addStats adds the counters of nd's core to its totals.
func (nd *node) addStats() {
	st := nd.core.Stats()
	nd.stats.Sent += st.Sent
	nd.stats.Persisted += st.Persisted
	nd.stats.FastPaths += st.FastPaths
	nd.stats.SlowPaths += st.SlowPaths
	nd.stats.Checkpoints += st.Checkpoints
	s := nd.s
	s.messages += st.Sent
	s.fast += st.FastPaths
	s.slow += st.SlowPaths
}

// restart brings nd back from its disk.
func (nd *node) restart() error { return nd.boot() }

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
			if !nd.up || (s.ack != nil && s.lostInFlight(int(ev.peer), int(ev.node), ev.inc)) {
				s.dropped++
				continue
			}
			s.deliveries++
			nd.stats.Delivered++
			s.fold(digestDeliv, uint64(ev.at), uint64(ev.peer)<<32|uint64(ev.node))
			nd.core.Step(protocols.NodeID(ev.peer+1), m)
			nd.drain()
			if s.ack != nil {
				s.afterRelease(nd)
			}
		case evSync:
			nd := s.nodes[ev.node]
			if ev.inc == nd.inc && nd.up {
				nd.synced(ev.a)
				if s.ack != nil {
					s.afterRelease(nd)
				}
			}
		case evTick:
			nd := s.nodes[ev.node]
			if ev.inc == nd.inc && nd.up {
				nd.core.Tick()
				nd.drain()
				s.q.push(event{at: s.now + s.cfg.TickInterval, kind: evTick, node: ev.node, inc: ev.inc})
			}
		case evSubmit:
			cmd := s.cmds.take(ev.a)
			nd := s.nodes[ev.node]
			if !nd.up {
				s.dropped++
				continue
			}
			nd.core.Submit(cmd)
			nd.drain()
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
		case evAckCrash:
			s.ackPeerCrash(ev.a)
		case evInject:
			s.inject()
		}
	}
}

// drain carries out what the core asks after an input: records go to the
// virtual disk, whose sync completes DiskDelay later; messages leave;
// executions are recorded; answers go to waiting clients; a checkpoint
// waits for its records to be durable.
func (nd *node) drain() {
	s := nd.s
	rd := nd.core.Ready()
	for i := range rd.Outputs {
		o := &rd.Outputs[i]
		switch o.Kind {
		case replica.OutSend:
			nd.send(o.To, o.Msg)
			if s.ack != nil && o.To != nd.id {
				nd.sentTo = o.To
			}
		case replica.OutExec:
			nd.executed(&o.Cmd)
		case replica.OutReply:
			if !o.Duplicate { // workload clients never retry an id
				nd.reply(o.Cmd.ID, o.Result)
			}
		}
	}
	if len(rd.Records) > 0 {
		if s.disk {
			nd.log = append(nd.log, rd.Records...)
		}
		upTo := rd.FirstIndex + uint64(len(rd.Records)) - 1
		s.q.push(event{at: s.now + s.cfg.DiskDelay, kind: evSync, node: uint32(nd.idx), inc: nd.inc, a: upTo})
	}
	if rd.Snapshot != nil {
		inc := len(nd.execs) - 1
		nd.pending = append(nd.pending, pendingSnap{snap: *rd.Snapshot, execs: execPrefix{inc: inc, n: len(nd.execs[inc])}})
	}
	nd.core.Advance()
	nd.install()
}

// synced completes a sync: the log is durable up to index upTo, so held
// messages and answers leave and covered checkpoints are installed.
func (nd *node) synced(upTo uint64) {
	nd.durable = max(nd.durable, upTo)
	nd.core.Synced(upTo)
	nd.drain()
}

// install makes durable the newest pending checkpoint whose records are
// durable, dropping the log it covers.
func (nd *node) install() {
	k := -1
	for i := range nd.pending {
		if nd.pending[i].snap.Index <= nd.durable {
			k = i
		}
	}
	if k < 0 {
		return
	}
	p := nd.pending[k]
	base := uint64(0)
	if nd.snap != nil {
		base = nd.snap.Index
	}
	if s := nd.s; s.disk {
		drop := int(p.snap.Index - base)
		clear(nd.log[:drop])
		nd.log = slices.Delete(nd.log, 0, drop)
	}
	nd.snap = &p.snap
	nd.snapExecs = p.execs
	nd.pending = slices.Delete(nd.pending, 0, k+1)
	nd.stats.Compactions++
}

// send puts a message the core released on the network.
func (nd *node) send(to protocols.NodeID, m protocols.Message) {
	s := nd.s
	if to < 1 || int(to) > s.n {
		if s.err == nil {
			s.err = fmt.Errorf("node %d sent %T to node %d, which does not exist", nd.id, m, to)
		}
		return
	}
	if s.cfg.CodecCheck {
		m = s.roundTrip(m)
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
	inc := s.nodes[i].inc
	if i == j {
		s.q.push(event{at: s.now, kind: evMsg, node: uint32(j), peer: uint32(i), inc: inc, a: s.msgs.put(m)})
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
			s.q.push(event{at: s.now + d2, kind: evMsg, node: uint32(j), peer: uint32(i), inc: inc, a: s.msgs.put(m)})
		}
	}
	s.q.push(event{at: s.now + d, kind: evMsg, node: uint32(j), peer: uint32(i), inc: inc, a: s.msgs.put(m)})
}

// executed records an execution of c at nd.
func (nd *node) executed(c *protocols.Command) {
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
	if s.mc != nil {
		s.mc.executed(nd, c.ID)
	}
}

// waitedFor reports whether the client of command id is waiting for it at
// this node: the core's replica.Config.WantReply. A client waits for a
// command from its issue on, at one node, and never again once it got an
// answer or gave up, so an answer not waited for when it is made is not
// waited for when it would be released either.
func (nd *node) waitedFor(id protocols.CommandID) bool {
	s := nd.s
	ci := id.Client - 1
	if ci >= uint64(len(s.clients)) {
		return false
	}
	cl := &s.clients[ci]
	return cl.waiting && cl.seq == id.Seq && cl.node == nd.idx
}

// reply answers the client of command id if it is waiting for it at this
// node.
func (nd *node) reply(id protocols.CommandID, result []byte) {
	s := nd.s
	if nd.waitedFor(id) {
		ci := id.Client - 1
		cl := &s.clients[ci]
		var out uint64
		if len(result) == 8 {
			out = binary.LittleEndian.Uint64(result)
		}
		cl.replySeen = max(cl.replySeen, protocols.Position(nd.core.Protocol()))
		if s.cfg.Workload != nil {
			cl.result = slices.Clone(result)
		}
		d := s.links.clientDelay(s.netRand, cl.home, nd.idx)
		s.q.push(event{at: s.now + d, kind: evReply, node: uint32(nd.idx), peer: uint32(ci), a: id.Seq, b: out})
		nd.answered = s.ack != nil
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
	finish := func() {
		if !cl.done {
			cl.done = true
			s.clientsDone++
			if s.clientsDone == len(s.clients) {
				s.done = true
			}
		}
	}
	if cl.issued == cl.total {
		finish()
		return
	}
	cl.issued++
	if s.mc != nil {
		s.mc.issue(ci)
		return
	}
	rc := s.cfg
	var key string
	var payload []byte
	var put bool
	var value uint64
	if rc.Workload != nil {
		var ok bool
		if key, payload, ok = rc.Workload.Next(ci); !ok {
			finish()
			return
		}
	} else {
		r := s.workRand
		key = cl.private
		if r.Float64()*100 < rc.Conflict {
			key = s.sharedKeys[r.IntN(len(s.sharedKeys))]
		}
		put = r.Float64()*100 >= rc.Reads
		payload, value = s.kvPayload(rc.Size, put)
	}
	cl.seq++
	cmd := protocols.Command{
		ID:      protocols.CommandID{Client: uint64(ci + 1), Seq: cl.seq},
		Acked:   cl.answered + 1,
		Keys:    s.oneKey(key),
		Payload: payload,
		Seen:    cl.seen,
	}
	if rc.Workload != nil {
		put = !rc.Workload.ReadOnly(cmd)
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

// arenaSize is the size of the chunks that payloads and key lists of
// workload commands are cut from.
const arenaSize = 1 << 12

// payload returns n zero bytes cut from a chunk that lives as long as the
// run (every command is in the history), capped so that an append to it
// cannot reach its neighbour.
func (s *sim) payload(n int) []byte {
	if len(s.bytes)+n > cap(s.bytes) {
		s.bytes = make([]byte, 0, max(arenaSize, n))
	}
	k := len(s.bytes)
	s.bytes = s.bytes[:k+n]
	return s.bytes[k : k+n : k+n]
}

// kvPayload returns the payload of a key-value command of size bytes (at
// least minPayload), cut from a chunk like payload: a get, or if put a put
// of the run's next value, which it also returns.
func (s *sim) kvPayload(size int, put bool) (payload []byte, value uint64) {
	payload = s.payload(max(size, minPayload))
	payload[0] = opGet
	if put {
		value = s.nextValue
		s.nextValue++
		payload[0] = opPut
		binary.LittleEndian.PutUint64(payload[1:], value)
	}
	return payload, value
}

// oneKey returns the key list {key}, cut from a chunk like payload.
func (s *sim) oneKey(key string) []string {
	if len(s.keyLists) == cap(s.keyLists) {
		s.keyLists = make([]string, 0, arenaSize/16)
	}
	k := len(s.keyLists)
	s.keyLists = append(s.keyLists, key)
	return s.keyLists[k : k+1 : k+1]
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
	cl.seen = max(cl.seen, cl.replySeen)
	if seq == cl.answered+1 {
		cl.answered = seq
	}
	op := &s.history[cl.op]
	op.Return, op.Output, op.Outcome = s.now, value, OutcomeOK
	if s.cfg.Workload != nil {
		op.Result, cl.result = cl.result, nil
		s.cfg.Workload.Done(ci, op.Result, true)
	}
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
	if s.cfg.Workload != nil {
		cl.result = nil
		s.cfg.Workload.Done(ci, nil, false)
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
		if s.ack != nil && !f.scripted && s.downCount() >= s.cfg.F {
			s.logf("%s node %d skipped: %d nodes are down", f.crash, nd.id, s.downCount())
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
