package atlas

import (
	"maps"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/depgraph"
	"github.com/blossom-dso/blossom/protocols/idset"
	"github.com/blossom-dso/blossom/protocols/quorum"
)

func init() {
	protocols.Register("atlas", func(cfg protocols.Config) (protocols.Protocol, error) {
		return New(cfg)
	}, Codec{})
}

// phase is where an instance stands at this replica. It only moves forward,
// except that phRecover and phAccept alternate as ballots are joined.
type phase uint8

const (
	// phStart: nothing known but the dot (e.g. a missing dependency).
	phStart phase = iota
	// phPayload: the payload is known; this replica is not in the fast
	// quorum and vouched for nothing.
	phPayload
	// phCollect: dependencies collected as a fast-quorum member (or as the
	// coordinator) at ballot 0.
	phCollect
	// phRecover: joined a recovery ballot, accepted nothing yet.
	phRecover
	// phAccept: accepted a proposal (abal is its ballot).
	phAccept
	// phCommit: committed; final.
	phCommit
)

// instance is the state of one dot at this replica. The fields up to
// amnesiac are durable (stateRecord); the rest is volatile.
type instance struct {
	dot    Dot
	phase  phase
	hasCmd bool
	cmd    protocols.Command // the payload, once known
	// collected: cdeps are dependencies this replica computed itself, at
	// MCollect as a fast-quorum member or at MRec; the dot is then in the
	// conflict index, so later conflicting commands depend on it.
	collected bool
	cdeps     []Dot
	quorum    []protocols.NodeID // the fast quorum, from MCollect
	bal       ballot.Ballot      // highest ballot joined; zero: the initial one
	abal      ballot.Ballot      // ballot of the accepted proposal; zero: none
	anop      bool               // accepted (or committed) value: a no-op ...
	adeps     []Dot              // ... or the payload with these deps
	amnesiac  bool               // always false (see MRecAck.Amnesiac)

	registered bool // in the conflict index
	awaitSelf  bool // fast-path commit not yet handed to the graph

	// Initial coordinator, collecting MCollectAcks at ballot 0.
	collecting bool
	acks       quorum.Tracker
	reports    [][]Dot // reports[i] is the deps of acks.Nodes()[i]
	// Owner of bal, waiting for MConsensusAcks.
	proposing bool
	accAcks   quorum.Tracker
	// Recoverer, waiting for MRecAcks at rec.ballot.
	rec *recovery

	deadline int // tick at which this replica starts a recovery
	attempts int // recoveries started here
	sentAt   int // tick of the last (re)transmission
}

type recovery struct {
	ballot  ballot.Ballot
	withCmd bool // MRec carried the payload
	acks    quorum.Tracker
	// amnesiac: the initial coordinator replied amnesiac; one more reply
	// is needed.
	amnesiac bool
	replies  []MRecAck // replies[i] is from acks.Nodes()[i]
}

// Replica is one Atlas process: coordinator of the commands submitted to
// it, fast-quorum member, acceptor, recoverer and executor. It implements
// protocols.Protocol.
type Replica struct {
	cfg  protocols.Config
	env  protocols.Env
	self protocols.NodeID
	n, f int
	rank map[protocols.NodeID]int // index in Peers

	fastQuorum []protocols.NodeID // the ⌊n/2⌋+f closest, self first
	threshold  int                // fast path: each dep reported by >= threshold members
	slowSize   int                // f+1
	recSize    int                // n−f

	seq      uint64 // last own dot
	inst     map[Dot]*instance
	pending  map[Dot]struct{} // instances not committed here
	index    map[string][]Dot // key -> registered dots, not yet stable
	graph    *depgraph.Graph
	done     idset.Set                   // executed in this incarnation
	mine     map[protocols.CommandID]Dot // submitted here, not committed yet
	replayed []Dot                       // commits to hand to the graph

	// Garbage collection: reported[p][k] is the executed prefix of
	// coordinator Peers[k] that Peers[p] reported; stable[k] is their
	// minimum, up to which instances were dropped.
	reported [][]uint64
	stable   []uint64
	lastGC   int
	gcSent   []uint64
	ckSize   int                // size of the last checkpoint
	byID     []protocols.NodeID // Peers sorted by id (dot order)

	now int
}

// New returns an Atlas replica; cfg.Checkpoint, if any, is loaded and
// cfg.Recovered, if any, is replayed. A malformed checkpoint or record is
// an error.
func New(cfg protocols.Config) (*Replica, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := len(cfg.Peers)
	r := &Replica{
		cfg:       cfg,
		env:       cfg.Env,
		self:      cfg.Self,
		n:         n,
		f:         cfg.F,
		rank:      map[protocols.NodeID]int{},
		threshold: cfg.F,
		slowSize:  max(1, quorum.AtlasSlow(cfg.F)),
		recSize:   max(1, quorum.AtlasRecovery(n, cfg.F)),
		inst:      map[Dot]*instance{},
		pending:   map[Dot]struct{}{},
		index:     map[string][]Dot{},
		mine:      map[protocols.CommandID]Dot{},
		reported:  make([][]uint64, n),
		stable:    make([]uint64, n),
	}
	for i, p := range cfg.Peers {
		r.rank[p] = i
		r.reported[i] = make([]uint64, n)
	}
	r.byID = slices.Sorted(slices.Values(cfg.Peers))
	r.fastQuorum = slices.Clone(cfg.Closest[:max(1, quorum.AtlasFast(n, cfg.F))])
	r.threshold = fastThreshold(cfg.F)
	r.graph = depgraph.New(r.execute)
	if err := r.replay(cfg.Checkpoint, cfg.Recovered); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Replica) validDot(d Dot) bool {
	_, ok := r.rank[d.Node]
	return ok && d.Seq >= 1
}

// gcd reports whether d is stable and its state was dropped.
func (r *Replica) gcd(d Dot) bool { return d.Seq <= r.stable[r.rank[d.Node]] }

// get returns the instance of d, creating it.
func (r *Replica) get(d Dot) *instance {
	in := r.inst[d]
	if in == nil {
		in = &instance{dot: d}
		r.inst[d] = in
	}
	return in
}

// lookup returns the instance of a valid dot that is not forgotten,
// creating it; nil if the message about d must be ignored. A forgotten dot
// (stable, or executed here with its state dropped) was committed: it is
// never made a fresh, unknown instance, which could vouch for it as
// uncommitted or let a recovery no-op it.
func (r *Replica) lookup(d Dot) *instance {
	if !r.validDot(d) || r.forgotten(d) {
		return nil
	}
	in := r.get(d)
	if in.phase != phCommit {
		if _, ok := r.pending[d]; !ok {
			r.pending[d] = struct{}{}
			in.deadline = r.timeout(in)
		}
	}
	return in
}

// timeout is the tick at which this replica suspects the coordinator (or
// the last recoverer) of in: SuspectTicks for the replica's own commands,
// randomized and growing with every attempt for the others, so that
// concurrent recoveries of one dot rarely duel.
func (r *Replica) timeout(in *instance) int {
	s := r.cfg.SuspectTicks
	if in.dot.Node == r.self && in.attempts == 0 {
		return r.now + s
	}
	return r.now + s*(1+min(in.attempts, 4)) + r.env.Rand().IntN(s)
}

// touch postpones the recovery of in after a sign of progress.
func (r *Replica) touch(in *instance) {
	if in.phase != phCommit {
		in.deadline = max(in.deadline, r.timeout(in))
	}
}

func (r *Replica) persist(in *instance) { r.env.Persist(stateRecord(in)) }

func (r *Replica) broadcast(m protocols.Message) {
	for _, p := range r.cfg.Peers {
		if p != r.self {
			r.env.Send(p, m)
		}
	}
}

// flush hands the commits replayed from the records to the graph; it runs
// at the start of the first call after New, so that New calls no Env.
func (r *Replica) flush() {
	if r.replayed == nil {
		return
	}
	ds := r.replayed
	r.replayed = nil
	for _, d := range ds {
		if in := r.inst[d]; in != nil {
			r.graph.Commit(d, in.cmd, slices.Clone(in.adeps), in.anop)
		}
	}
}

// conflicts returns, sorted, the registered dots other than d whose
// commands share a key with c. Stable dots leave the index here.
func (r *Replica) conflicts(d Dot, c protocols.Command) []Dot {
	var out []Dot
	for _, k := range c.Keys {
		lst := r.index[k]
		j := 0
		for _, x := range lst {
			if r.gcd(x) {
				continue
			}
			lst[j] = x
			j++
			if x != d {
				out = append(out, x)
			}
		}
		clear(lst[j:])
		if j == 0 {
			delete(r.index, k)
		} else {
			r.index[k] = lst[:j]
		}
	}
	slices.SortFunc(out, Dot.Compare)
	return slices.Compact(out)
}

// register adds in to the conflict index.
func (r *Replica) register(in *instance) {
	if in.registered {
		return
	}
	in.registered = true
	for i, k := range in.cmd.Keys {
		if !slices.Contains(in.cmd.Keys[:i], k) {
			r.index[k] = append(r.index[k], in.dot)
		}
	}
}

func union(a, b []Dot) []Dot {
	out := append(slices.Clone(a), b...)
	slices.SortFunc(out, Dot.Compare)
	return slices.Compact(out)
}

func sortedDots[V any](m map[Dot]V) []Dot {
	ds := slices.Collect(maps.Keys(m))
	slices.SortFunc(ds, Dot.Compare)
	return ds
}

// Submit implements protocols.Protocol: this replica becomes the initial
// coordinator of c and sends MCollect to every replica.
func (r *Replica) Submit(c protocols.Command) {
	r.flush()
	if r.done.Has(c.ID) {
		protocols.AlreadyExecuted(r.env, c)
		return
	}
	if _, ok := r.mine[c.ID]; ok {
		return
	}
	r.seq++
	d := Dot{Node: r.self, Seq: r.seq}
	r.mine[c.ID] = d
	in := r.get(d)
	r.pending[d] = struct{}{}
	past := r.conflicts(d, c)
	in.hasCmd, in.cmd = true, c
	in.collected, in.cdeps, in.quorum, in.phase = true, past, r.fastQuorum, phCollect
	r.register(in)
	in.collecting = true
	in.acks = quorum.NewTracker(len(r.fastQuorum))
	in.acks.Add(r.self)
	in.reports = [][]Dot{past}
	in.deadline = r.timeout(in)
	in.sentAt = r.now
	r.persist(in)
	r.broadcast(MCollect{Dot: d, Cmd: c, Past: past, Quorum: r.fastQuorum})
	if in.acks.Reached() {
		r.decide(in)
	}
}

// Step implements protocols.Protocol.
func (r *Replica) Step(from protocols.NodeID, m protocols.Message) {
	r.flush()
	if _, ok := r.rank[from]; !ok || !r.plausible(m) {
		return
	}
	switch m := m.(type) {
	case MCollect:
		r.handleCollect(from, m)
	case MCollectAck:
		r.handleCollectAck(from, m)
	case MConsensus:
		r.handleConsensus(from, m)
	case MConsensusAck:
		r.handleConsensusAck(from, m)
	case MCommit:
		r.handleCommit(from, m)
	case MRec:
		r.handleRec(from, m)
	case MRecAck:
		r.handleRecAck(from, m)
	case MExecuted:
		r.handleExecuted(from, m)
	}
}

// maxSeqAhead bounds how far beyond what this replica knows of a
// coordinator's dots (its executed prefix, what peers reported executed,
// and for its own dots its counter) a dot's sequence number may run: a real
// coordinator numbers its commands one by one, so a dot much further ahead
// comes from a buggy or mismatched peer, and would cost a recovery at every
// replica. The bound is wide on purpose, so that a replica cut off while a
// peer ran millions of commands still accepts that peer's dots.
const maxSeqAhead = 1 << 32

// plausible reports whether an honest peer could have sent m: every dot
// names a peer and a sequence number from 1 to maxSeqAhead beyond what this
// replica knows of that peer, every node id is a peer, and every ballot is
// zero or owned by a peer and at most ballot.MaxAhead rounds up. A message
// that fails is dropped (the "Hostile input" section of package protocols).
func (r *Replica) plausible(m protocols.Message) bool {
	dots := func(ds ...[]Dot) bool {
		for _, d := range ds {
			for _, x := range d {
				if !r.plausibleDot(x) {
					return false
				}
			}
		}
		return true
	}
	nodes := func(ns []protocols.NodeID) bool {
		for _, n := range ns {
			if _, ok := r.rank[n]; !ok {
				return false
			}
		}
		return true
	}
	bal := func(bs ...ballot.Ballot) bool {
		for _, b := range bs {
			if !b.IsZero() && !ballot.Plausible(b, ballot.Ballot{}, r.cfg.Peers) {
				return false
			}
		}
		return true
	}
	switch m := m.(type) {
	case MCollect:
		return r.plausibleDot(m.Dot) && dots(m.Past) && nodes(m.Quorum)
	case MCollectAck:
		return r.plausibleDot(m.Dot) && dots(m.Deps)
	case MConsensus:
		return r.plausibleDot(m.Dot) && dots(m.Deps) && bal(m.Ballot)
	case MConsensusAck:
		return r.plausibleDot(m.Dot) && bal(m.Ballot)
	case MCommit:
		return r.plausibleDot(m.Dot) && dots(m.Deps)
	case MRec:
		return r.plausibleDot(m.Dot) && bal(m.Ballot)
	case MRecAck:
		return r.plausibleDot(m.Dot) && dots(m.Deps) && nodes(m.Quorum) && bal(m.Ballot, m.ABal)
	case MExecuted:
		for k, x := range m.Prefix {
			if k < len(r.cfg.Peers) && x > 0 && !r.plausibleDot(Dot{Node: r.cfg.Peers[k], Seq: x}) {
				return false
			}
		}
	}
	return true
}

// plausibleDot reports whether d names a peer and a sequence number from 1
// to maxSeqAhead beyond what this replica knows of that peer.
func (r *Replica) plausibleDot(d Dot) bool {
	k, ok := r.rank[d.Node]
	if !ok || d.Seq == 0 {
		return false
	}
	known := r.graph.ExecutedPrefix(d.Node)
	for _, rep := range r.reported {
		if k < len(rep) {
			known = max(known, rep[k])
		}
	}
	if d.Node == r.self {
		known = max(known, r.seq)
	}
	return d.Seq <= known+maxSeqAhead
}

func (r *Replica) handleCollect(from protocols.NodeID, m MCollect) {
	in := r.lookup(m.Dot)
	if in == nil || in.phase == phCommit || from != m.Dot.Node {
		return
	}
	r.touch(in)
	if !in.hasCmd {
		in.hasCmd, in.cmd = true, m.Cmd
	}
	if !slices.Contains(m.Quorum, r.self) {
		if in.phase == phStart {
			in.phase = phPayload
		}
		return
	}
	if in.collected {
		// A retransmission: repeat the (durable) answer while still at
		// ballot 0.
		if in.phase == phCollect && in.bal.IsZero() {
			r.env.Send(from, MCollectAck{Dot: m.Dot, Deps: in.cdeps})
		}
		return
	}
	if !in.bal.IsZero() {
		// Joined a recovery: never vouch for ballot 0 again, so the
		// coordinator cannot complete its fast quorum.
		return
	}
	in.cdeps = union(r.conflicts(m.Dot, in.cmd), m.Past)
	if skipLocalConflicts() {
		in.cdeps = slices.Clone(m.Past)
	}
	in.collected, in.quorum, in.phase = true, slices.Clone(m.Quorum), phCollect
	r.register(in)
	if from == r.self || !ackBeforePersist() {
		r.persist(in)
	}
	r.env.Send(from, MCollectAck{Dot: m.Dot, Deps: in.cdeps})
}

func (r *Replica) handleCollectAck(from protocols.NodeID, m MCollectAck) {
	in := r.inst[m.Dot]
	if in == nil || !in.collecting || in.phase != phCollect || !in.bal.IsZero() {
		return
	}
	if !slices.Contains(in.quorum, from) || !in.acks.Add(from) {
		return
	}
	in.reports = append(in.reports, m.Deps)
	if in.acks.Reached() {
		r.decide(in)
	}
}

// decide ends the collect phase at the initial coordinator: fast path if
// every dependency of the union was reported by at least threshold (f)
// fast-quorum members, else the slow path at the coordinator's own first
// ballot {0, self}, below every recovery ballot, so phase 1 is skipped.
func (r *Replica) decide(in *instance) {
	in.collecting = false
	count := map[Dot]int{}
	var deps []Dot
	for _, rep := range in.reports {
		for i, d := range rep {
			if slices.Contains(rep[:i], d) {
				continue
			}
			if count[d] == 0 {
				deps = append(deps, d)
			}
			count[d]++
		}
	}
	slices.SortFunc(deps, Dot.Compare)
	fast := true
	for _, d := range deps {
		if count[d] < r.threshold {
			fast = false
			break
		}
	}
	in.reports = nil
	if fast {
		protocols.ReportPath(r.env, true)
		// Only this replica knows of the decision: it executes the
		// command only when its own MCommit comes back, which the runtime
		// delivers once the commit record is durable. A crash that loses
		// the record thus loses every trace of the decision, and a
		// recovery that hears from this coordinator may choose anew.
		in.awaitSelf = true
		r.commit(in, false, in.cmd, deps)
		m := MCommit{Dot: in.dot, Cmd: in.cmd, Deps: deps}
		r.env.Send(r.self, m)
		r.broadcast(m)
		return
	}
	r.propose(in, ballot.Ballot{Node: r.self}, false, in.cmd, deps)
}

// propose starts phase 2 of ballot b for in: accept locally, then ask every
// replica; f+1 acceptances commit.
func (r *Replica) propose(in *instance, b ballot.Ballot, nop bool, cmd protocols.Command, deps []Dot) {
	m := MConsensus{Dot: in.dot, Ballot: b, Nop: nop, Cmd: cmd, Deps: deps}
	if nop {
		m.Cmd = protocols.Command{}
	}
	in.proposing = true
	in.accAcks = quorum.NewTracker(r.slowSize)
	in.sentAt = r.now
	r.handleConsensus(r.self, m)
	if in.phase != phCommit {
		r.broadcast(m)
	}
}

func (r *Replica) handleConsensus(from protocols.NodeID, m MConsensus) {
	in := r.lookup(m.Dot)
	if in == nil {
		return
	}
	if in.phase == phCommit {
		if from != r.self {
			r.env.Send(from, r.commitMsg(in))
		}
		return
	}
	if m.Ballot.Less(in.bal) {
		return
	}
	if in.bal != m.Ballot {
		in.proposing = in.proposing && from == r.self
		in.rec = nil
	}
	r.touch(in)
	in.collecting = false
	in.bal, in.abal, in.anop, in.adeps = m.Ballot, m.Ballot, m.Nop, slices.Clone(m.Deps)
	if !m.Nop && !in.hasCmd {
		in.hasCmd, in.cmd = true, m.Cmd
	}
	in.phase = phAccept
	if from == r.self || !ackBeforePersist() {
		r.persist(in)
	}
	ack := MConsensusAck{Dot: m.Dot, Ballot: m.Ballot}
	if from == r.self {
		r.handleConsensusAck(r.self, ack)
	} else {
		r.env.Send(from, ack)
	}
}

func (r *Replica) handleConsensusAck(from protocols.NodeID, m MConsensusAck) {
	in := r.inst[m.Dot]
	if in == nil || !in.proposing || in.phase != phAccept || in.bal != m.Ballot || in.abal != m.Ballot {
		return
	}
	if !in.accAcks.Add(from) || !in.accAcks.Reached() {
		return
	}
	protocols.ReportPath(r.env, false)
	r.commit(in, in.anop, in.cmd, in.adeps)
	r.broadcast(r.commitMsg(in))
}

func (r *Replica) commitMsg(in *instance) MCommit {
	m := MCommit{Dot: in.dot, Nop: in.anop, Deps: in.adeps}
	if !in.anop {
		m.Cmd = in.cmd
	}
	return m
}

func (r *Replica) handleCommit(from protocols.NodeID, m MCommit) {
	in := r.lookup(m.Dot)
	if in == nil {
		return
	}
	if in.awaitSelf {
		if from == r.self {
			in.awaitSelf = false
			r.execCommit(in)
		}
		return
	}
	r.commit(in, m.Nop, m.Cmd, m.Deps)
}

// commit makes in committed with (nop or cmd, deps), durably, and hands it
// to the dependency graph. A no-op'd command that was submitted here is
// submitted again under a new dot.
func (r *Replica) commit(in *instance, nop bool, cmd protocols.Command, deps []Dot) {
	if in.phase == phCommit {
		return
	}
	in.phase, in.anop, in.adeps = phCommit, nop, slices.Clone(deps)
	if !nop {
		in.hasCmd, in.cmd = true, cmd
	}
	in.collecting, in.proposing, in.rec, in.reports = false, false, nil, nil
	delete(r.pending, in.dot)
	r.persist(in)
	if !in.awaitSelf {
		r.execCommit(in)
	}
}

// execCommit hands the committed in to the dependency graph.
func (r *Replica) execCommit(in *instance) {
	nop := in.anop
	var resubmit *protocols.Command
	if in.dot.Node == r.self && in.hasCmd {
		if d, ok := r.mine[in.cmd.ID]; ok && d == in.dot {
			delete(r.mine, in.cmd.ID)
			if nop {
				c := in.cmd
				resubmit = &c
			}
		}
	}
	if nop {
		r.graph.Commit(in.dot, protocols.Command{}, nil, true)
	} else {
		r.graph.Commit(in.dot, in.cmd, slices.Clone(in.adeps), false)
	}
	if resubmit != nil {
		r.Submit(*resubmit)
	}
}

// execute is the graph's callback: each command id runs at most once per
// incarnation.
func (r *Replica) execute(c protocols.Command) {
	if r.done.Add(c.ID) {
		r.env.Execute(c)
	}
}

// recover starts a recovery of in with a ballot above every ballot this
// replica joined for it.
func (r *Replica) recover(in *instance) {
	b := ballot.Ballot{Round: in.bal.Round + 1, Node: r.self}
	in.attempts++
	in.rec = &recovery{ballot: b, withCmd: in.hasCmd, acks: quorum.NewTracker(r.recSize)}
	in.collecting = false
	in.sentAt = r.now
	m := MRec{Dot: in.dot, Ballot: b, HasCmd: in.hasCmd}
	if in.hasCmd {
		m.Cmd = in.cmd
	}
	r.handleRec(r.self, m)
	if in.phase != phCommit {
		r.broadcast(m)
	}
}

func (r *Replica) handleRec(from protocols.NodeID, m MRec) {
	in := r.lookup(m.Dot)
	if in == nil {
		return
	}
	if in.phase == phCommit {
		if from != r.self {
			r.env.Send(from, r.commitMsg(in))
		}
		return
	}
	if in.bal == m.Ballot && from == m.Ballot.Node && from != r.self {
		r.env.Send(from, r.recAck(in)) // a retransmission
		return
	}
	if !in.bal.Less(m.Ballot) {
		return
	}
	if !in.hasCmd && m.HasCmd {
		in.hasCmd, in.cmd = true, m.Cmd
	}
	if !in.collected && in.hasCmd {
		// Never collected: compute the dependencies now, and register
		// the command so that later conflicting commands depend on it.
		in.cdeps = r.conflicts(in.dot, in.cmd)
		in.collected = true
		r.register(in)
	}
	in.bal = m.Ballot
	if in.abal.IsZero() {
		in.phase = phRecover
	}
	in.collecting, in.proposing = false, false
	if in.rec != nil && in.rec.ballot != m.Ballot {
		in.rec = nil
	}
	r.touch(in)
	r.persist(in)
	ack := r.recAck(in)
	if from == r.self {
		r.handleRecAck(r.self, ack)
	} else {
		r.env.Send(from, ack)
	}
}

func (r *Replica) recAck(in *instance) MRecAck {
	a := MRecAck{Dot: in.dot, Ballot: in.bal, HasCmd: in.hasCmd, Collected: in.collected,
		Quorum: in.quorum, ABal: in.abal, Amnesiac: in.amnesiac}
	if in.hasCmd {
		a.Cmd = in.cmd
	}
	if in.abal.IsZero() {
		a.Deps = in.cdeps
	} else {
		a.Nop, a.Deps = in.anop, in.adeps
	}
	return a
}

func (r *Replica) handleRecAck(from protocols.NodeID, m MRecAck) {
	in := r.inst[m.Dot]
	if in == nil || in.phase == phCommit || in.rec == nil || in.rec.ballot != m.Ballot || in.bal != m.Ballot {
		return
	}
	rec := in.rec
	if !rec.acks.Add(from) {
		return
	}
	rec.replies = append(rec.replies, m)
	if m.Amnesiac && from == in.dot.Node {
		// An amnesiac coordinator is treated as absent (rule 2), so it
		// must not take the place of one of the n−f other replies.
		rec.amnesiac = true
	}
	need := r.recSize
	if rec.amnesiac {
		need++
	}
	if rec.acks.Count() < need {
		return
	}
	in.rec = nil
	r.recoveryDecide(in, rec)
}

// recoveryDecide chooses the value of a recovery from n−f MRecAcks (see the
// package doc for the rules and their justification).
func (r *Replica) recoveryDecide(in *instance, rec *recovery) {
	nodes := rec.acks.Nodes()
	// 1. Some reply accepted a proposal: the highest-ballot one.
	best := -1
	for i, a := range rec.replies {
		if !a.ABal.IsZero() && (best < 0 || rec.replies[best].ABal.Less(a.ABal)) {
			best = i
		}
	}
	if best >= 0 {
		a := rec.replies[best]
		cmd := a.Cmd
		if !a.Nop && !a.HasCmd {
			cmd = in.cmd
		}
		r.propose(in, rec.ballot, a.Nop, cmd, a.Deps)
		return
	}
	// The MRec went without the payload: the replies could not compute
	// dependencies. Learn the payload and start again if anybody has it.
	if !rec.withCmd {
		for _, a := range rec.replies {
			if a.HasCmd && !in.hasCmd {
				in.hasCmd, in.cmd = true, a.Cmd
			}
		}
		if in.hasCmd {
			r.recover(in)
			return
		}
	}
	// 2. Someone saw MCollect: the payload with the union of the
	// dependencies of the replies from the fast quorum, or of all replies
	// if the initial coordinator (not amnesiac) replied.
	var fq []protocols.NodeID
	coord := false
	for i, a := range rec.replies {
		if len(a.Quorum) > 0 && fq == nil {
			fq = a.Quorum
		}
		if nodes[i] == in.dot.Node && !a.Amnesiac {
			coord = true
		}
	}
	if fq != nil {
		// A reply with a fast quorum collected, so it held the payload,
		// and an MRec without it was restarted above: in.hasCmd holds.
		var deps []Dot
		for i, a := range rec.replies {
			if a.Collected && (coord || slices.Contains(fq, nodes[i])) {
				deps = append(deps, a.Deps...)
			}
		}
		r.propose(in, rec.ballot, false, in.cmd, union(nil, deps))
		return
	}
	// 3. Nobody in n−f saw MCollect: no fast or slow decision can exist.
	r.propose(in, rec.ballot, true, protocols.Command{}, nil)
}

func (r *Replica) handleExecuted(from protocols.NodeID, m MExecuted) {
	if len(m.Prefix) != r.n {
		return
	}
	rep := r.reported[r.rank[from]]
	for k, v := range m.Prefix {
		rep[k] = max(rep[k], v)
	}
	r.gc()
}

// gc drops the instances executed at every replica (stable): their
// commits are in every replica's records, so nobody will ask for them, and
// later commands need not depend on them.
func (r *Replica) gc() {
	self := r.reported[r.rank[r.self]]
	for k, p := range r.cfg.Peers {
		self[k] = max(self[k], r.graph.ExecutedPrefix(p))
	}
	for k, p := range r.cfg.Peers {
		s := self[k]
		for _, rep := range r.reported {
			s = min(s, rep[k])
		}
		if s <= r.stable[k] {
			continue
		}
		if s-r.stable[k] <= uint64(len(r.inst)) {
			for q := r.stable[k] + 1; q <= s; q++ {
				d := Dot{Node: p, Seq: q}
				delete(r.inst, d)
				delete(r.pending, d)
			}
		} else {
			// A long stretch (a checkpoint's prefix after a long
			// absence): visit the instances instead of the dots.
			lo := r.stable[k]
			drop := func(d Dot) bool { return d.Node == p && d.Seq > lo && d.Seq <= s }
			maps.DeleteFunc(r.inst, func(d Dot, _ *instance) bool { return drop(d) })
			maps.DeleteFunc(r.pending, func(d Dot, _ struct{}) bool { return drop(d) })
		}
		r.stable[k] = s
	}
}

// gapWindow bounds the dots per coordinator that one fillGaps looks up.
const gapWindow = 32

// fillGaps starts the timer of the dots that a peer reported executed but
// that this replica neither knows nor executed: it missed their commit, and
// unless a command it executes depends on them it would never learn them,
// so its executed prefix, and garbage collection at every replica, would
// stop there. Such a dot is committed (a peer executed it); its recovery
// learns the commit from the replicas that hold it (a committed replica
// answers MRec with MCommit). At most gapWindow dots per coordinator, from
// the executed prefix up. It runs at every tick, whether or not the replica
// ever checkpointed: a replica that missed commits before its first
// checkpoint would otherwise stall garbage collection at every replica.
func (r *Replica) fillGaps() {
	me := r.rank[r.self]
	for k, p := range r.cfg.Peers {
		if p == r.self {
			continue // a dot of ours we do not know was never sent
		}
		mine := r.graph.ExecutedPrefix(p)
		top := mine
		for i, rep := range r.reported {
			if i != me {
				top = max(top, rep[k])
			}
		}
		for i := uint64(1); i <= gapWindow && mine+i > mine && mine+i <= top; i++ {
			d := Dot{Node: p, Seq: mine + i}
			if r.inst[d] == nil && !r.graph.IsExecuted(d) {
				r.lookup(d)
			}
		}
	}
}

// Tick implements protocols.Protocol: retransmissions, the executed
// frontier for garbage collection, and recovery of the instances that made
// no progress for a suspicion timeout.
func (r *Replica) Tick() {
	r.flush()
	r.now++
	s := r.cfg.SuspectTicks
	retrans := max(2, s/3)

	r.gc()
	prefix := slices.Clone(r.reported[r.rank[r.self]])
	if !slices.Equal(prefix, r.gcSent) || r.now-r.lastGC >= s {
		r.lastGC, r.gcSent = r.now, prefix
		r.broadcast(MExecuted{Prefix: prefix})
	}

	for _, d := range r.graph.Missing() {
		r.lookup(d) // a committed command waits for d: start its timer
	}
	r.fillGaps()
	for _, d := range sortedDots(r.pending) {
		in := r.inst[d]
		if in == nil || in.phase == phCommit {
			delete(r.pending, d)
			continue
		}
		if r.now >= in.deadline {
			in.deadline = r.timeout(in)
			r.recover(in)
			continue
		}
		if r.now-in.sentAt < retrans {
			continue
		}
		in.sentAt = r.now
		switch {
		case in.collecting:
			m := MCollect{Dot: d, Cmd: in.cmd, Past: in.cdeps, Quorum: in.quorum}
			for _, p := range in.quorum {
				if !in.acks.Has(p) {
					r.env.Send(p, m)
				}
			}
		case in.proposing:
			m := MConsensus{Dot: d, Ballot: in.bal, Nop: in.anop, Deps: in.adeps}
			if !in.anop {
				m.Cmd = in.cmd
			}
			for _, p := range r.cfg.Peers {
				if !in.accAcks.Has(p) {
					r.env.Send(p, m)
				}
			}
		case in.rec != nil:
			m := MRec{Dot: d, Ballot: in.rec.ballot, HasCmd: in.rec.withCmd}
			if in.rec.withCmd {
				m.Cmd = in.cmd
			}
			for _, p := range r.cfg.Peers {
				if !in.rec.acks.Has(p) {
					r.env.Send(p, m)
				}
			}
		}
	}
}
