package epaxos

import (
	"fmt"
	"slices"

	"github.com/pingcap/failpoint"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/depgraph"
	"github.com/blossom-dso/blossom/protocols/idset"
	"github.com/blossom-dso/blossom/protocols/quorum"
)

func init() {
	protocols.Register("epaxos", func(cfg protocols.Config) (protocols.Protocol, error) {
		return New(cfg)
	}, Codec{})
}

// instance is the state of one command instance at this replica. bal,
// abal, phase, val, deps, init and initDeps are durable (instanceRecord);
// the rest is volatile bookkeeping.
type instance struct {
	dot      Dot
	bal      ballot.Ballot // promise
	abal     ballot.Ballot // ballot of the vote that produced (val, deps); abal <= bal
	phase    Phase
	val      Value
	deps     []Dot // sorted, without dot
	init     Value // as sent by the initial coordinator (PreAccept or Validate)
	initDeps []Dot

	indexed bool          // val or init payload is in the key index
	ikeys   []string      // the keys it is indexed under
	inNops  bool          // val is Nop and the dot is in nops
	fed     bool          // committed and handed to the graph
	maxSeen ballot.Ballot // highest ballot heard of in a Nack
	// deadline is the tick at which a replica that is not driving the
	// instance starts a recovery.
	deadline int

	coord *coordinator // initial coordinator, ballot 0, this incarnation
	acc   *accepting   // an Accept round this replica leads
	rec   *recovery    // a recovery this replica leads
}

// coordinator is the initial coordinator's PreAccept round.
type coordinator struct {
	from     []protocols.NodeID
	deps     [][]Dot
	started  int
	lastSend int
}

// accepting is an Accept round led by this replica at ballot bal.
type accepting struct {
	bal      ballot.Ballot
	acks     quorum.Tracker
	lastSend int
}

type recStage uint8

const (
	collecting recStage = iota // waiting for n−f RecoverOKs
	validating                 // Validate sent to Q, waiting for all of Q
	waiting                    // waiting for the commands in I
	decided                    // the value of the ballot is chosen: no second decision
)

// recovery is a recovery of an instance led by this replica at ballot bal.
type recovery struct {
	bal      ballot.Ballot
	stage    recStage
	from     []protocols.NodeID
	oks      []RecoverOK
	started  int
	lastSend int
	// validating and waiting
	q     []protocols.NodeID
	cmd   protocols.Command
	deps  []Dot
	rmax  int
	vfrom []protocols.NodeID
	conf  map[Dot]bool // I: dot -> reported committed by someone
	ids   []Dot        // I, sorted, once complete
	late  []RecoverOK  // RecoverOKs from outside q
}

// Replica is one EPaxos* replica: it coordinates the commands submitted to
// it and takes part in everybody else's. It implements protocols.Protocol.
type Replica struct {
	cfg                protocols.Config
	env                protocols.Env
	self               protocols.NodeID
	n, f, e            int
	fastQ, slowQ       int
	retry, fastTimeout int

	seq      uint64 // last sequence number used as initial coordinator
	inst     map[Dot]*instance
	keyIndex map[string][]Dot // key -> dots whose payload has the key
	nops     []Dot            // dots whose value is Nop (conflicts with all)
	pending  map[Dot]struct{} // known, not committed
	waiters  map[Dot]struct{} // recoveries in the waiting stage
	waitK    map[Dot]uint64   // highest Waiting k received per dot
	graph    *depgraph.Graph
	done     idset.Set // executed in this incarnation
	now      int
	// heard is, per peer, the highest sequence number up to which this
	// replica created (or found executed) the peer's instances after a
	// Heartbeat.
	heard    map[protocols.NodeID]uint64
	lastBeat int
	// execOf is, per peer, the highest executed prefix of each replica's
	// instances (Peers order) that the peer reported in a Heartbeat.
	execOf map[protocols.NodeID][]uint64
	// compacting: a checkpoint was taken or restored, so heartbeats go out
	// even before this replica coordinates (they carry executed prefixes).
	compacting bool

	// encoded caches, per instance not yet handed to the graph, the
	// encoding of its deps in its last record (instanceRecord). It depends
	// on the path, not only on the state, so Fingerprint leaves it out.
	encoded map[Dot]encodedDeps

	// Violations counts commits that disagreed with an earlier commit of
	// the same instance here (Agreement); tests read it.
	Violations int
}

// New returns an EPaxos* replica. F is cfg.F; E is cfg.E or, when 0, the
// original EPaxos's ⌈(F+1)/2⌉ (quorum.EPaxosDefaultE).
func New(cfg protocols.Config) (*Replica, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n, f, e := len(cfg.Peers), cfg.F, cfg.E
	if e == 0 && f > 0 {
		e = quorum.EPaxosDefaultE(f)
	}
	if e < 0 || e > f || n < max(2*e+f-1, 2*f+1) {
		return nil, fmt.Errorf("%w: epaxos needs 1 <= e <= f and n >= max(2e+f-1, 2f+1); got n=%d f=%d e=%d",
			protocols.ErrConfig, n, f, e)
	}
	r := &Replica{
		cfg: cfg, env: cfg.Env, self: cfg.Self,
		n: n, f: f, e: e,
		fastQ:       quorum.EPaxosFast(n, e),
		slowQ:       quorum.EPaxosSlow(n, f),
		retry:       max(2, cfg.SuspectTicks/3),
		fastTimeout: max(3, cfg.SuspectTicks/3),
		inst:        map[Dot]*instance{},
		keyIndex:    map[string][]Dot{},
		pending:     map[Dot]struct{}{},
		waiters:     map[Dot]struct{}{},
		waitK:       map[Dot]uint64{},
		heard:       map[protocols.NodeID]uint64{},
		execOf:      map[protocols.NodeID][]uint64{},
	}
	r.graph = depgraph.New(r.execute)
	r.graph.OnDone(r.forget)
	if cfg.Checkpoint != nil {
		if err := r.restore(cfg.Checkpoint); err != nil {
			return nil, err
		}
	}
	if err := r.recover(cfg.Recovered); err != nil {
		return nil, err
	}
	// Replay: index payloads, re-arm timers, execute what was committed.
	ds := r.sortedDots(r.inst)
	for _, d := range ds {
		in := r.inst[d]
		r.index(in)
		if in.phase == Committed {
			delete(r.pending, d)
		}
	}
	for _, d := range ds {
		if in := r.inst[d]; in.phase == Committed && !in.fed {
			in.fed = true
			r.graph.Commit(d, in.val.Cmd, in.deps, in.val.Nop)
		}
	}
	return r, nil
}

// Thresholds returns e, the fast quorum n−e and the slow quorum n−f.
func (r *Replica) Thresholds() (e, fast, slow int) { return r.e, r.fastQ, r.slowQ }

// InstanceState is a snapshot of one instance, for tests and invariants.
type InstanceState struct {
	Bal, Abal ballot.Ballot
	Phase     Phase
	Val       Value
	Deps      []Dot
	// Durable: the commit is known to be durable here (the Durable note to
	// self came back, or it was replayed from the records). A commit that
	// is not durable when its replica crashes never happened: its record,
	// its Commit messages and its execution are all lost.
	Durable bool
}

// Instance returns the state of d here, and whether d is known.
func (r *Replica) Instance(d Dot) (InstanceState, bool) {
	in, ok := r.inst[d]
	if !ok {
		return InstanceState{}, false
	}
	return InstanceState{Bal: in.bal, Abal: in.abal, Phase: in.phase, Val: in.val, Deps: in.deps, Durable: in.fed}, true
}

// Dots returns every known dot, sorted.
func (r *Replica) Dots() []Dot { return r.sortedDots(r.inst) }

// Executed reports whether d has passed execution here.
func (r *Replica) Executed(d Dot) bool { return r.graph.IsExecuted(d) }

func (r *Replica) sortedDots(m map[Dot]*instance) []Dot {
	out := make([]Dot, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	slices.SortFunc(out, Dot.Compare)
	return out
}

func sortedSet(m map[Dot]struct{}) []Dot {
	out := make([]Dot, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	slices.SortFunc(out, Dot.Compare)
	return out
}

// get returns the instance of d, creating it (unknown, pending, with a
// recovery deadline) if needed.
func (r *Replica) get(d Dot) *instance {
	in := r.inst[d]
	if in == nil {
		in = &instance{dot: d}
		r.inst[d] = in
		if !r.graph.IsExecuted(d) {
			r.pending[d] = struct{}{}
		}
		r.arm(in)
	}
	return in
}

// arm sets the recovery deadline one suspicion period (plus jitter) ahead.
func (r *Replica) arm(in *instance) {
	s := r.cfg.SuspectTicks
	in.deadline = r.now + s + r.env.Rand().IntN(s)
}

func (r *Replica) persist(in *instance) {
	e := r.encoded[in.dot]
	rec, e := instanceRecordWith(in, e)
	if e.of != nil && !in.fed {
		// An instance handed to the graph is rarely persisted again;
		// forget drops the entry at execution.
		if r.encoded == nil {
			r.encoded = map[Dot]encodedDeps{}
		}
		r.encoded[in.dot] = e
	}
	r.env.Persist(rec)
}

// send delivers m to to; a message to self is handled at once, inside the
// current step (PROTOCOL-NOTES §0: a coordinator's state reflects its own
// decisions before anything else can happen).
func (r *Replica) send(to protocols.NodeID, m protocols.Message) {
	if to == r.self {
		r.Step(r.self, m)
		return
	}
	r.env.Send(to, m)
}

// broadcast applies m locally first, then sends it to every other peer.
func (r *Replica) broadcast(m protocols.Message) {
	r.Step(r.self, m)
	for _, p := range r.cfg.Peers {
		if p != r.self {
			r.env.Send(p, m)
		}
	}
}

// index records the payload of in for dependency computation, and Nop
// values (which conflict with everything).
func (r *Replica) index(in *instance) {
	if !in.indexed {
		var c *protocols.Command
		if in.val.Known && !in.val.Nop {
			c = &in.val.Cmd
		} else if in.init.Known && !in.init.Nop {
			c = &in.init.Cmd
		}
		if c != nil {
			in.indexed = true
			in.ikeys = dedupKeys(c.Keys)
			for _, k := range in.ikeys {
				r.keyIndex[k] = insertSorted(r.keyIndex[k], in.dot)
			}
		}
	}
	if in.val.Nop && !in.inNops {
		in.inNops = true
		r.nops = insertSorted(r.nops, in.dot)
	}
}

// insertSorted adds d to the sorted set ds.
func insertSorted(ds []Dot, d Dot) []Dot {
	i, ok := slices.BinarySearchFunc(ds, d, Dot.Compare)
	if ok {
		return ds
	}
	return slices.Insert(ds, i, d)
}

func dedupKeys(ks []string) []string {
	if len(ks) <= 1 {
		return ks
	}
	ks = slices.Clone(ks)
	slices.Sort(ks)
	return slices.Compact(ks)
}

// Dependency sets. A deps slice held by an instance or carried by a message
// is sorted, free of duplicates and of its own dot, and never modified in
// place once built: a replica keeps the slice a message carries (received
// messages are read-only, protocols.Message) and its own messages carry the
// slices it holds, so one set is shared, not copied, on its way through
// PreAccept, PreAcceptOK, Commit and the records. Every function below
// builds a new slice or returns one of its arguments unchanged; none writes
// into an argument. The key index and nops grow in place (insertSorted) and
// are therefore never handed out, only copied.

// conflicts returns, sorted, the known dots other than d whose payload
// shares a key with c, and the dots holding Nop, in a new slice (nil when
// no key and no Nop has a dot).
func (r *Replica) conflicts(c protocols.Command, d Dot) []Dot {
	keys := dedupKeys(c.Keys)
	if len(keys) == 1 && len(r.nops) == 0 {
		// The common case, one key and no Nop: a copy of the key's dots.
		return without(r.keyIndex[keys[0]], d)
	}
	sets := [][]Dot{r.nops}
	for _, k := range keys {
		sets = append(sets, r.keyIndex[k])
	}
	out := union(sets...)
	if i, ok := slices.BinarySearchFunc(out, d, Dot.Compare); ok {
		out = slices.Delete(out, i, i+1)
	}
	return out
}

// without returns a copy of the sorted set ds without d: nil when ds is
// empty, as union returns it, and otherwise a new slice, even an empty one.
func without(ds []Dot, d Dot) []Dot {
	if len(ds) == 0 {
		return nil
	}
	i, ok := slices.BinarySearchFunc(ds, d, Dot.Compare)
	n := len(ds)
	if ok {
		n--
	}
	out := make([]Dot, 0, n)
	out = append(out, ds[:i]...)
	if ok {
		i++
	}
	return append(out, ds[i:]...)
}

// withConflicts returns deps ∪ conflicts(c, d), where deps is a normalized
// set (normDeps) without d. When the conflicts add nothing, which is the
// rule when the coordinator saw what this replica sees, the result is deps
// itself and nothing is allocated.
func (r *Replica) withConflicts(deps []Dot, c protocols.Command, d Dot) []Dot {
	keys := dedupKeys(c.Keys)
	add := !covers(deps, r.nops, d)
	for _, k := range keys {
		add = add || !covers(deps, r.keyIndex[k], d)
	}
	if !add {
		if len(deps) == 0 {
			return nil // as union returns the empty set
		}
		return deps
	}
	return union(deps, r.conflicts(c, d))
}

// covers reports whether every dot of sub other than skip is in sup; both
// are sorted without duplicates.
func covers(sup, sub []Dot, skip Dot) bool {
	i := 0
	for _, x := range sub {
		if x == skip {
			continue
		}
		for i < len(sup) && sup[i].Less(x) {
			i++
		}
		if i == len(sup) || sup[i] != x {
			return false
		}
		i++
	}
	return true
}

// union returns the sorted union of dot sets, in a new slice. Sorted
// inputs are merged in linear time; others (from the network) are sorted.
func union(sets ...[]Dot) []Dot {
	var out []Dot
	for _, s := range sets {
		if !slices.IsSortedFunc(s, Dot.Compare) {
			s = slices.Clone(s)
			slices.SortFunc(s, Dot.Compare)
		}
		out = merge(out, s)
	}
	if len(out) == 0 {
		return nil // one representation of the empty set
	}
	return out
}

// merge returns the union of the sorted sets a and b, without duplicates,
// in a new slice.
func merge(a, b []Dot) []Dot {
	out := make([]Dot, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		var d Dot
		switch {
		case len(b) == 0 || (len(a) > 0 && a[0].Less(b[0])):
			d, a = a[0], a[1:]
		case len(a) == 0 || b[0].Less(a[0]):
			d, b = b[0], b[1:]
		default:
			d, a, b = a[0], a[1:], b[1:]
		}
		if n := len(out); n == 0 || out[n-1] != d {
			out = append(out, d)
		}
	}
	return out
}

// normDeps returns ds sorted, without duplicates and without self (nil
// when ds is empty). A set that already is so, as every honest peer sends
// it, is returned itself, not copied.
func normDeps(ds []Dot, self Dot) []Dot {
	if len(ds) == 0 {
		return nil
	}
	if strictlySorted(ds) && !hasDot(ds, self) {
		return ds
	}
	out := union(ds)
	if i, ok := slices.BinarySearchFunc(out, self, Dot.Compare); ok {
		out = slices.Delete(out, i, i+1)
	}
	return out
}

// strictlySorted reports whether ds is increasing without duplicates.
func strictlySorted(ds []Dot) bool {
	for i := 1; i < len(ds); i++ {
		if !ds[i-1].Less(ds[i]) {
			return false
		}
	}
	return true
}

// sameDots reports whether a and b hold the same dots in the same order; a
// shared slice is recognized without comparing its elements.
func sameDots(a, b []Dot) bool {
	return sameSlice(a, b) || slices.Equal(a, b)
}

func hasDot(sorted []Dot, d Dot) bool {
	_, ok := slices.BinarySearchFunc(sorted, d, Dot.Compare)
	return ok
}

// dropStale forgets the rounds this replica leads that in.bal has left.
func (r *Replica) dropStale(in *instance) {
	if in.coord != nil && (!in.bal.IsZero() || in.phase != PreAccepted) {
		in.coord = nil
	}
	if in.acc != nil && (in.acc.bal != in.bal || in.phase == Committed) {
		in.acc = nil
	}
	if in.rec != nil && (in.rec.bal != in.bal || in.phase == Committed) {
		in.rec = nil
		delete(r.waiters, in.dot)
	}
}

// Submit implements protocols.Protocol: this replica becomes the initial
// coordinator of a new instance for c.
func (r *Replica) Submit(c protocols.Command) {
	if r.done.Has(c.ID) {
		protocols.AlreadyExecuted(r.env, c)
		return
	}
	r.seq++
	d := Dot{Node: r.self, Seq: r.seq}
	in := r.get(d)
	in.coord = &coordinator{started: r.now, lastSend: r.now,
		from: make([]protocols.NodeID, 0, r.n), deps: make([][]Dot, 0, r.n)}
	r.broadcast(PreAccept{Dot: d, Cmd: c, Deps: r.conflicts(c, d)})
}

// Step implements protocols.Protocol. A message that no honest peer could
// send is dropped (see plausible).
func (r *Replica) Step(from protocols.NodeID, m protocols.Message) {
	if !r.plausible(from, m) {
		return
	}
	switch m := m.(type) {
	case PreAccept:
		r.handlePreAccept(from, m)
	case PreAcceptOK:
		r.handlePreAcceptOK(from, m)
	case Accept:
		r.handleAccept(from, m)
	case AcceptOK:
		r.handleAcceptOK(from, m)
	case Commit:
		r.handleCommit(m)
	case Recover:
		r.handleRecover(from, m)
	case RecoverOK:
		r.handleRecoverOK(from, m)
	case Nack:
		r.handleNack(m)
	case Validate:
		r.handleValidate(from, m)
	case ValidateOK:
		r.handleValidateOK(from, m)
	case Waiting:
		if m.Dot.Node != 0 && m.K > r.waitK[m.Dot] {
			r.waitK[m.Dot] = m.K
		}
	case Durable:
		if from == r.self {
			r.handleDurable(m)
		}
	case Heartbeat:
		r.handleHeartbeat(from, m)
	}
	if from != r.self {
		r.checkWaiting()
	}
}

func valid(d Dot) bool { return d.Node != 0 && d.Seq != 0 }

// maxSeqAhead bounds how far beyond what this replica knows of a peer's
// instances (its last heartbeat, its executed prefix) a sequence number of
// that peer may run: a real peer's sequence numbers grow by one per
// command, so a dot further ahead comes from a buggy or mismatched peer,
// and each such dot (or each one a Heartbeat reveals) would cost a
// recovery at every replica. The bound is wide on purpose: a replica that
// was down or cut off while a peer ran millions of commands must still
// accept that peer's heartbeats and new instances to catch up, so only
// absurd numbers are refused, not merely large gaps.
const maxSeqAhead = 1 << 32

// plausible reports whether an honest peer could have sent m: the sender
// is a peer, every dot names a peer and a sequence number from 1 to
// maxSeqAhead beyond what this replica knows of that peer (plausibleDot),
// and every ballot is zero (the initial coordinator's) or owned by a peer
// and not absurdly far ahead of the instance's (ballot.Plausible). A
// message with plausible fields but a lie in them cannot be told from a
// real one: see "Hostile input" in package protocols.
func (r *Replica) plausible(from protocols.NodeID, m protocols.Message) bool {
	if r.cfg.Index(from) < 0 {
		return false
	}
	var d Dot
	var bs []ballot.Ballot
	var deps [][]Dot
	switch m := m.(type) {
	case PreAccept:
		d, deps = m.Dot, [][]Dot{m.Deps}
	case PreAcceptOK:
		d, deps = m.Dot, [][]Dot{m.Deps}
	case Accept:
		d, bs, deps = m.Dot, []ballot.Ballot{m.Ballot}, [][]Dot{m.Deps}
	case AcceptOK:
		d, bs = m.Dot, []ballot.Ballot{m.Ballot}
	case Commit:
		d, bs, deps = m.Dot, []ballot.Ballot{m.Ballot}, [][]Dot{m.Deps}
	case Recover:
		d, bs = m.Dot, []ballot.Ballot{m.Ballot}
	case RecoverOK:
		d, bs, deps = m.Dot, []ballot.Ballot{m.Ballot, m.Abal}, [][]Dot{m.Deps, m.InitDeps}
	case Nack:
		d, bs = m.Dot, []ballot.Ballot{m.Ballot}
	case Validate:
		d, bs, deps = m.Dot, []ballot.Ballot{m.Ballot}, [][]Dot{m.Deps}
	case ValidateOK:
		d, bs = m.Dot, []ballot.Ballot{m.Ballot}
		for _, c := range m.Conflicts {
			if !r.plausibleDot(c.Dot) {
				return false
			}
		}
	case Waiting:
		d = m.Dot
	case Heartbeat:
		for i, x := range m.Executed {
			if i < len(r.cfg.Peers) && x > 0 && !r.plausibleDot(Dot{Node: r.cfg.Peers[i], Seq: x}) {
				return false
			}
		}
		return r.plausibleDot(Dot{Node: from, Seq: max(m.Seq, 1)})
	default:
		return true
	}
	if !r.plausibleDot(d) {
		return false
	}
	for _, ds := range deps {
		if !r.plausibleDots(ds) {
			return false
		}
	}
	var cur ballot.Ballot
	if in := r.inst[d]; in != nil {
		cur = ballot.Max(in.bal, in.maxSeen)
	}
	for _, b := range bs {
		if !b.IsZero() && !ballot.Plausible(b, cur, r.cfg.Peers) {
			return false
		}
	}
	return true
}

// plausibleDot reports whether an honest peer could name d: its node is a
// peer and its sequence number lies from 1 to maxSeqAhead beyond the
// highest this replica knows that node to have used.
func (r *Replica) plausibleDot(d Dot) bool {
	if d.Seq == 0 || r.cfg.Index(d.Node) < 0 {
		return false
	}
	return d.Seq <= r.seqLimit(d.Node)
}

// seqLimit is the highest sequence number of node that plausibleDot
// accepts.
func (r *Replica) seqLimit(node protocols.NodeID) uint64 {
	known := max(r.heard[node], r.graph.ExecutedPrefix(node))
	if node == r.self {
		known = max(known, r.seq)
	}
	return known + maxSeqAhead
}

// plausibleDots reports whether plausibleDot holds for every dot of ds. It
// looks up the limit once per run of dots of one node (sorted deps are
// one run per node), not once per dot.
func (r *Replica) plausibleDots(ds []Dot) bool {
	var node protocols.NodeID
	var limit uint64
	for i, x := range ds {
		if i == 0 || x.Node != node {
			if r.cfg.Index(x.Node) < 0 {
				return false
			}
			node, limit = x.Node, r.seqLimit(x.Node)
		}
		if x.Seq == 0 || x.Seq > limit {
			return false
		}
	}
	return true
}

// sendCommitted answers a process that asks about a committed instance.
func (r *Replica) sendCommitted(to protocols.NodeID, in *instance) {
	if to != r.self {
		r.env.Send(to, Commit{Ballot: in.abal, Dot: in.dot, Val: in.val, Deps: in.deps})
	}
}

func (r *Replica) handlePreAccept(from protocols.NodeID, m PreAccept) {
	// An executed instance still known here is committed: its initial
	// coordinator, which may have missed the commit, gets it (below); it
	// retransmits its PreAccept until it does. One forgotten (stable) is
	// executed everywhere, the coordinator included.
	if !valid(m.Dot) || r.graph.IsExecuted(m.Dot) && r.inst[m.Dot] == nil {
		return
	}
	in := r.get(m.Dot)
	switch {
	case in.phase == Committed:
		r.sendCommitted(from, in)
		return
	case in.phase == PreAccepted && in.bal.IsZero():
		r.send(from, PreAcceptOK{Dot: m.Dot, Deps: in.deps}) // a duplicate
		return
	case !in.bal.IsZero() || in.phase != Initial:
		return // joined a recovery: late PreAccepts are shut out
	}
	in.val = CmdValue(m.Cmd)
	in.init = in.val
	in.initDeps = normDeps(m.Deps, m.Dot)
	in.deps = r.withConflicts(in.initDeps, m.Cmd, m.Dot)
	failpoint.Inject("dropDeps", func() {
		// Planted bug for the sabotage test: a replica reports the
		// coordinator's dependencies without its own, so the fast path
		// drops dependencies.
		in.deps = in.initDeps
	})
	in.phase = PreAccepted
	r.index(in)
	r.arm(in)
	persist := true
	failpoint.Inject("preAcceptOKBeforePersist", func() {
		// Planted bug for the sabotage test: a replica answers for
		// dependencies it never made durable; a crash forgets them.
		persist = from == r.self
	})
	if persist {
		r.persist(in)
	}
	r.send(from, PreAcceptOK{Dot: m.Dot, Deps: in.deps})
}

func (r *Replica) handlePreAcceptOK(from protocols.NodeID, m PreAcceptOK) {
	in := r.inst[m.Dot]
	if in == nil || in.coord == nil || !in.bal.IsZero() || in.phase != PreAccepted {
		return
	}
	co := in.coord
	if slices.Contains(co.from, from) {
		return
	}
	co.from = append(co.from, from)
	co.deps = append(co.deps, m.Deps)
	r.tryDecide(in, false)
}

// tryDecide ends the initial coordinator's PreAccept round: the fast path
// when n−e replies report exactly the initial deps, the slow path once n−f
// replies are in and the fast path is impossible or timed out.
func (r *Replica) tryDecide(in *instance, timeout bool) {
	co := in.coord
	match := 0
	for _, ds := range co.deps {
		if sameDots(ds, in.initDeps) {
			match++
		}
	}
	if match >= r.fastQ {
		in.coord = nil
		r.decide(in, ballot.Ballot{}, in.val, in.initDeps, true)
		return
	}
	total := len(co.from)
	if total < r.slowQ || !(timeout || total == r.n || total-match > r.n-r.fastQ) {
		return
	}
	in.coord = nil
	r.startAccept(in, ballot.Ballot{}, in.val, union(append(co.deps, in.initDeps)...))
}

// decide broadcasts a commit decided by this replica.
func (r *Replica) decide(in *instance, b ballot.Ballot, v Value, deps []Dot, fast bool) {
	protocols.ReportPath(r.env, fast)
	r.broadcast(Commit{Ballot: b, Dot: in.dot, Val: v, Deps: deps})
}

func (r *Replica) startAccept(in *instance, b ballot.Ballot, v Value, deps []Dot) {
	in.acc = &accepting{bal: b, acks: quorum.NewTracker(r.slowQ), lastSend: r.now}
	r.broadcast(Accept{Ballot: b, Dot: in.dot, Val: v, Deps: normDeps(deps, in.dot)})
}

func (r *Replica) handleAccept(from protocols.NodeID, m Accept) {
	if !valid(m.Dot) || r.graph.IsExecuted(m.Dot) && r.inst[m.Dot] == nil {
		return
	}
	in := r.get(m.Dot)
	if m.Ballot.Less(in.bal) {
		r.send(from, Nack{Ballot: in.bal, Dot: m.Dot})
		return
	}
	if in.phase == Committed {
		// Committed is terminal (PROTOCOL-NOTES §1.9): keep the value,
		// raise the promise and vote so that the recovery terminates.
		if in.bal.Less(m.Ballot) {
			in.bal = m.Ballot
			r.persist(in)
		}
		r.send(from, AcceptOK{Ballot: m.Ballot, Dot: m.Dot})
		return
	}
	if in.bal != m.Ballot || in.abal != m.Ballot || in.phase != Accepted {
		r.arm(in)
	}
	in.bal, in.abal = m.Ballot, m.Ballot
	in.val, in.deps, in.phase = m.Val, normDeps(m.Deps, m.Dot), Accepted
	r.dropStale(in)
	r.index(in)
	persist := true
	failpoint.Inject("acceptOKBeforePersist", func() {
		// Planted bug for the sabotage test: a replica answers for a
		// vote it never made durable; a crash forgets it.
		persist = from == r.self
	})
	if persist {
		r.persist(in)
	}
	r.send(from, AcceptOK{Ballot: m.Ballot, Dot: m.Dot})
}

func (r *Replica) handleAcceptOK(from protocols.NodeID, m AcceptOK) {
	in := r.inst[m.Dot]
	if in == nil || in.acc == nil || in.acc.bal != m.Ballot || in.bal != m.Ballot || in.phase != Accepted {
		return
	}
	if in.acc.acks.Add(from); in.acc.acks.Reached() {
		in.acc = nil
		r.decide(in, m.Ballot, in.val, in.deps, false)
	}
}

func (r *Replica) handleCommit(m Commit) {
	if !valid(m.Dot) || r.graph.IsExecuted(m.Dot) && r.inst[m.Dot] == nil {
		return
	}
	in := r.get(m.Dot)
	deps := normDeps(m.Deps, m.Dot)
	if in.phase == Committed {
		if in.val.Known != m.Val.Known || in.val.Nop != m.Val.Nop || in.val.Cmd.ID != m.Val.Cmd.ID || !slices.Equal(in.deps, deps) {
			r.Violations++
		}
		return
	}
	in.bal = ballot.Max(in.bal, m.Ballot)
	in.abal = m.Ballot
	in.val, in.deps, in.phase = m.Val, deps, Committed
	r.dropStale(in)
	delete(r.pending, m.Dot)
	r.index(in)
	r.persist(in)
	// Execute only once the commit is durable: the self-send leaves after
	// the record above is synced.
	r.env.Send(r.self, Durable{Dot: m.Dot})
}

func (r *Replica) handleDurable(m Durable) {
	in := r.inst[m.Dot]
	if in == nil || in.phase != Committed || in.fed {
		return
	}
	in.fed = true
	r.graph.Commit(in.dot, in.val.Cmd, in.deps, in.val.Nop)
}

// execute hands a command to the state machine, once per command id.
func (r *Replica) execute(c protocols.Command) {
	if r.done.Add(c.ID) {
		r.env.Execute(c)
	}
}

// forget is the garbage collection of an executed instance: its volatile
// bookkeeping goes; the committed value stays to answer late messages.
func (r *Replica) forget(d Dot, _ bool) {
	if in := r.inst[d]; in != nil {
		in.coord, in.acc, in.rec = nil, nil, nil
	}
	delete(r.encoded, d)
	delete(r.pending, d)
	delete(r.waitK, d)
}

// startRecovery begins recovering d with the smallest own ballot above
// everything seen.
func (r *Replica) startRecovery(in *instance) {
	b := ballot.Max(in.bal, in.maxSeen)
	if in.rec != nil {
		b = ballot.Max(b, in.rec.bal)
	}
	b = b.Next(r.self)
	in.coord, in.acc = nil, nil
	delete(r.waiters, in.dot)
	in.rec = &recovery{bal: b, started: r.now, lastSend: r.now}
	r.broadcast(Recover{Ballot: b, Dot: in.dot})
}

func (r *Replica) handleRecover(from protocols.NodeID, m Recover) {
	if !valid(m.Dot) || r.graph.IsExecuted(m.Dot) && r.inst[m.Dot] == nil {
		return
	}
	in := r.get(m.Dot)
	if in.phase == Committed {
		r.sendCommitted(from, in)
		return
	}
	if m.Ballot.Less(in.bal) {
		r.send(from, Nack{Ballot: in.bal, Dot: m.Dot})
		return
	}
	prev := in.bal
	if in.bal != m.Ballot {
		in.bal = m.Ballot
		if from != r.self {
			r.arm(in)
		}
		r.dropStale(in)
		r.persist(in)
	}
	abal := in.abal
	failpoint.Inject("recoverOKReportsPromise", func() {
		// Planted bug (the original EPaxos one, Sutra IPL 2020): report the
		// promise held before this Recover instead of the vote ballot.
		abal = prev
	})
	r.send(from, RecoverOK{Ballot: m.Ballot, Dot: m.Dot, Abal: abal, Phase: in.phase,
		Val: in.val, Deps: in.deps, InitDeps: in.initDeps})
}

func (r *Replica) handleNack(m Nack) {
	in := r.inst[m.Dot]
	if in == nil || !in.maxSeen.Less(m.Ballot) {
		return
	}
	in.maxSeen = m.Ballot
	if (in.rec != nil && in.rec.bal.Less(m.Ballot)) || (in.acc != nil && in.acc.bal.Less(m.Ballot)) {
		// Our round is dead; let the higher one work, retry later.
		in.rec, in.acc = nil, nil
		delete(r.waiters, in.dot)
		r.arm(in)
	}
}

func (r *Replica) handleRecoverOK(from protocols.NodeID, m RecoverOK) {
	in := r.inst[m.Dot]
	if in == nil || in.rec == nil || in.rec.bal != m.Ballot || in.bal != m.Ballot || in.phase == Committed {
		return
	}
	rec := in.rec
	if slices.Contains(rec.from, from) {
		return
	}
	rec.from = append(rec.from, from)
	if rec.stage != collecting {
		rec.late = append(rec.late, m)
		return
	}
	rec.oks = append(rec.oks, m)
	if len(rec.from) >= r.slowQ {
		r.decideRecovery(in)
	}
}

// decideRecovery applies the rules of EPaxos* recovery (PROTOCOL-NOTES
// §1.5) to the RecoverOKs of the quorum Q.
func (r *Replica) decideRecovery(in *instance) {
	rec := in.rec
	rec.stage = decided // one value per ballot: later replies change nothing
	b := rec.bal
	var bmax ballot.Ballot
	for _, ok := range rec.oks {
		bmax = ballot.Max(bmax, ok.Abal)
	}
	// 2 and 3: the highest vote, committed first, then accepted. Replies
	// are scanned latest first (with the correct abal, replies tied at the
	// highest vote carry the same value, so the order only matters under
	// the planted bug).
	for _, ph := range []Phase{Committed, Accepted} {
		for _, ok := range slices.Backward(rec.oks) {
			if ok.Abal == bmax && ok.Phase == ph {
				if ph == Committed {
					in.rec = nil
					r.decide(in, b, ok.Val, ok.Deps, false)
				} else {
					r.startAccept(in, b, ok.Val, ok.Deps)
				}
				return
			}
		}
	}
	// 4: the initial coordinator answered: it left ballot 0 undecided.
	if slices.Contains(rec.from, in.dot.Node) {
		r.startAccept(in, b, NopValue, nil)
		return
	}
	// 5: enough replicas that added nothing to the initial deps.
	var rset []RecoverOK
	for _, ok := range rec.oks {
		if ok.Phase == PreAccepted && ok.Val.Known && !ok.Val.Nop && slices.Equal(ok.Deps, ok.InitDeps) {
			rset = append(rset, ok)
		}
	}
	if len(rset) == 0 || len(rset) < len(rec.from)-r.e {
		r.startAccept(in, b, NopValue, nil) // 6
		return
	}
	rec.stage = validating
	rec.q = slices.Clone(rec.from)
	rec.cmd, rec.deps, rec.rmax = rset[0].Val.Cmd, rset[0].Deps, len(rset)
	rec.conf = map[Dot]bool{}
	rec.lastSend = r.now
	m := Validate{Ballot: b, Dot: in.dot, Cmd: rec.cmd, Deps: rec.deps}
	for _, q := range rec.q {
		r.send(q, m)
	}
}

func (r *Replica) handleValidate(from protocols.NodeID, m Validate) {
	if !valid(m.Dot) || r.graph.IsExecuted(m.Dot) && r.inst[m.Dot] == nil {
		return
	}
	in := r.get(m.Dot)
	if in.phase == Committed {
		r.sendCommitted(from, in)
		return
	}
	if in.bal != m.Ballot {
		if m.Ballot.Less(in.bal) {
			r.send(from, Nack{Ballot: in.bal, Dot: m.Dot})
		}
		return
	}
	in.init = CmdValue(m.Cmd)
	in.initDeps = normDeps(m.Deps, m.Dot)
	r.index(in)
	r.persist(in)
	var conf []Conflict
	var cands []Dot
	for _, k := range dedupKeys(m.Cmd.Keys) {
		cands = append(cands, r.keyIndex[k]...)
	}
	slices.SortFunc(cands, Dot.Compare)
	for _, d := range slices.Compact(cands) {
		if d == m.Dot || hasDot(in.initDeps, d) {
			continue
		}
		o := r.inst[d]
		if o == nil {
			// Forgotten at a checkpoint: a command executed at every
			// replica. m.Dot is not committed here, so it is not among the
			// forgotten command's deps (its execution here needed every
			// dep committed here): report what its full state would.
			conf = append(conf, Conflict{Dot: d, Committed: true})
			continue
		}
		if o.phase == Committed {
			if o.val.Known && !o.val.Nop && o.val.Cmd.Conflicts(m.Cmd) && !hasDot(o.deps, m.Dot) {
				conf = append(conf, Conflict{Dot: d, Committed: true})
			}
		} else if o.init.Known && !o.init.Nop && o.init.Cmd.Conflicts(m.Cmd) && !hasDot(o.initDeps, m.Dot) {
			conf = append(conf, Conflict{Dot: d})
		}
	}
	r.send(from, ValidateOK{Ballot: m.Ballot, Dot: m.Dot, Conflicts: conf})
}

func (r *Replica) handleValidateOK(from protocols.NodeID, m ValidateOK) {
	in := r.inst[m.Dot]
	if in == nil || in.rec == nil || in.rec.stage != validating || in.rec.bal != m.Ballot || in.bal != m.Ballot {
		return
	}
	rec := in.rec
	if !slices.Contains(rec.q, from) || slices.Contains(rec.vfrom, from) {
		return
	}
	rec.vfrom = append(rec.vfrom, from)
	for _, c := range m.Conflicts {
		rec.conf[c.Dot] = rec.conf[c.Dot] || c.Committed
	}
	if len(rec.vfrom) < len(rec.q) {
		return
	}
	b := rec.bal
	rec.stage = decided
	for d := range rec.conf {
		rec.ids = append(rec.ids, d)
	}
	slices.SortFunc(rec.ids, Dot.Compare)
	if len(rec.ids) == 0 {
		r.startAccept(in, b, CmdValue(rec.cmd), rec.deps)
		return
	}
	for _, d := range rec.ids {
		if rec.conf[d] || (rec.rmax == len(rec.q)-r.e && !slices.Contains(rec.q, d.Node)) {
			r.startAccept(in, b, NopValue, nil)
			return
		}
	}
	rec.stage = waiting
	r.waiters[in.dot] = struct{}{}
	r.broadcast(Waiting{Dot: in.dot, K: uint64(rec.rmax)})
	r.checkWaiting()
}

// checkWaiting re-examines every recovery in the waiting stage (rules
// 5a-5d of PROTOCOL-NOTES §1.5).
func (r *Replica) checkWaiting() {
	if len(r.waiters) == 0 {
		return
	}
	for _, d := range sortedSet(r.waiters) {
		in := r.inst[d]
		rec := in.rec
		if rec == nil || rec.stage != waiting || in.bal != rec.bal || in.phase == Committed {
			delete(r.waiters, d)
			continue
		}
		b := rec.bal
		decide := func(v Value, deps []Dot) {
			delete(r.waiters, d)
			rec.stage = decided
			r.startAccept(in, b, v, deps)
		}
		// d: a late RecoverOK from outside Q that is committed, or else
		// the highest accepted vote among the late ones.
		var best *RecoverOK
		for i := range rec.late {
			ok := &rec.late[i]
			if ok.Phase == Committed || (ok.Phase == Accepted && best == nil) ||
				(ok.Phase == Accepted && best.Phase == Accepted && best.Abal.Less(ok.Abal)) {
				best = ok
			}
			if ok.Phase == Committed {
				break
			}
		}
		if best != nil && best.Phase == Committed {
			delete(r.waiters, d)
			rec.stage = decided
			in.rec = nil
			r.decide(in, b, best.Val, best.Deps, false)
			continue
		}
		if best != nil {
			decide(best.Val, best.Deps)
			continue
		}
		coordLate := false
		for _, f := range rec.from {
			if f == d.Node && !slices.Contains(rec.q, f) {
				coordLate = true
			}
		}
		if coordLate {
			decide(NopValue, nil)
			continue
		}
		all, nop := true, false
		for _, x := range rec.ids {
			o := r.inst[x]
			switch {
			case o == nil && r.graph.IsExecuted(x) && r.forgottenCmd(x, rec.cmd):
				nop = true // a: a forgotten command, committed without d (see Validate)
			case o == nil && r.graph.IsExecuted(x):
				// a forgotten Nop: fine for b
			case o != nil && o.phase == Committed && o.val.Known && !o.val.Nop && !hasDot(o.deps, d):
				nop = true // a
			case o != nil && o.phase == Committed:
				// Nop, or d in its deps: fine for b
			default:
				all = false
			}
			if k := r.waitK[x]; k > 0 && int(k) > r.n-r.f-r.e {
				nop = true // c
			}
		}
		switch {
		case nop:
			decide(NopValue, nil)
		case all:
			decide(CmdValue(rec.cmd), rec.deps)
		}
	}
}

// maxHeartbeatGap bounds how many unknown instances one Heartbeat creates,
// so a forged sequence number cannot exhaust memory; the rest follow with
// the next heartbeats.
const maxHeartbeatGap = 1024

// handleHeartbeat creates the instances of from that this replica has never
// heard of: each gets a recovery deadline, and its recovery learns the
// commit (or, if nobody knows it, commits Nop).
func (r *Replica) handleHeartbeat(from protocols.NodeID, m Heartbeat) {
	if from == r.self || r.cfg.Index(from) < 0 {
		return
	}
	s := r.heard[from]
	for s < m.Seq && s < r.heard[from]+maxHeartbeatGap {
		s++
		if d := (Dot{Node: from, Seq: s}); !r.graph.IsExecuted(d) {
			r.get(d)
		}
	}
	r.heard[from] = s
	if len(m.Executed) == len(r.cfg.Peers) {
		ex := r.execOf[from]
		if ex == nil {
			ex = make([]uint64, len(r.cfg.Peers))
			r.execOf[from] = ex
		}
		for i, x := range m.Executed {
			ex[i] = max(ex[i], x)
		}
	}
}

// Tick implements protocols.Protocol: retransmissions, the fast-path
// timeout, heartbeats, and recovery of instances whose coordinator is
// suspected or on which execution or a recovery waits.
func (r *Replica) Tick() {
	r.now++
	if (r.seq > 0 || r.compacting) && r.now-r.lastBeat >= r.cfg.SuspectTicks {
		r.lastBeat = r.now
		ex := make([]uint64, len(r.cfg.Peers))
		for i, p := range r.cfg.Peers {
			ex[i] = r.graph.ExecutedPrefix(p)
		}
		for _, p := range r.cfg.Peers {
			if p != r.self {
				r.env.Send(p, Heartbeat{Seq: r.seq, Executed: ex})
			}
		}
	}
	for _, d := range r.graph.Missing() {
		r.get(d)
	}
	for _, d := range sortedSet(r.waiters) {
		if rec := r.inst[d].rec; rec != nil {
			for _, x := range rec.ids {
				if !r.graph.IsExecuted(x) {
					r.get(x)
				}
			}
		}
	}
	for _, d := range sortedSet(r.pending) {
		in := r.inst[d]
		if in == nil || in.phase == Committed {
			delete(r.pending, d)
			continue
		}
		if co := in.coord; co != nil {
			if r.now-co.started >= r.fastTimeout {
				r.tryDecide(in, true)
			}
			if in.coord != nil && r.now-co.lastSend >= r.retry {
				co.lastSend = r.now
				m := PreAccept{Dot: d, Cmd: in.init.Cmd, Deps: in.initDeps}
				for _, p := range r.cfg.Peers {
					if !slices.Contains(co.from, p) && p != r.self {
						r.env.Send(p, m)
					}
				}
			}
			if in.coord != nil {
				continue
			}
		}
		if acc := in.acc; acc != nil && r.now-acc.lastSend >= r.retry {
			acc.lastSend = r.now
			m := Accept{Ballot: acc.bal, Dot: d, Val: in.val, Deps: in.deps}
			for _, p := range r.cfg.Peers {
				if !acc.acks.Has(p) && p != r.self {
					r.env.Send(p, m)
				}
			}
		}
		if rec := in.rec; rec != nil && r.now-rec.lastSend >= r.retry {
			rec.lastSend = r.now
			switch rec.stage {
			case collecting:
				for _, p := range r.cfg.Peers {
					if !slices.Contains(rec.from, p) && p != r.self {
						r.env.Send(p, Recover{Ballot: rec.bal, Dot: d})
					}
				}
			case validating:
				for _, p := range rec.q {
					if !slices.Contains(rec.vfrom, p) && p != r.self {
						r.env.Send(p, Validate{Ballot: rec.bal, Dot: d, Cmd: rec.cmd, Deps: rec.deps})
					}
				}
			}
		}
		if r.now >= in.deadline {
			r.arm(in)
			in.deadline += r.cfg.SuspectTicks // a recovery gets two periods
			r.startRecovery(in)
		}
	}
	r.checkWaiting()
}
