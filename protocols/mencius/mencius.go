package mencius

import (
	"slices"

	"github.com/pingcap/failpoint"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/quorum"
)

func init() {
	protocols.Register("mencius", func(cfg protocols.Config) (protocols.Protocol, error) {
		return New(cfg)
	}, Codec{})
}

const (
	// maxBatch bounds the commands an owner proposes in one slot.
	maxBatch = 64
	// maxInflight bounds the own slots proposed and not yet chosen; further
	// commands wait in a batch.
	maxInflight = 16
	// maxCatchUp bounds the chosen entries in one CatchUp message.
	maxCatchUp = 256
	// revokeAhead is the number of the suspected owner's slots a revocation
	// covers beyond the highest slot known, so that the others can go on
	// proposing for a while before the next revocation.
	revokeAhead = 32
	// maxRevoke bounds the owner's slots a Prepare may cover.
	maxRevoke = 4 * revokeAhead
	// maxPipeline bounds how far past the executed prefix an owner
	// proposes, so that a revocation covers every slot in use.
	maxPipeline = revokeAhead
	// maxAhead bounds how far past the executed prefix a slot may lie; a
	// message about a farther one is dropped, so a forged slot cannot grow
	// the log without limit.
	maxAhead = 1 << 16
)

// entry is one slot. prom and bal/cmds are the acceptor's promise and vote
// (durable); chosen means cmds is the slot's chosen value. acks counts the
// AcceptOKs at ackBal; chosenAt is the ballot at which a quorum accepted
// the slot while this replica's vote was at another ballot (value unknown).
type entry struct {
	prom     ballot.Ballot
	bal      ballot.Ballot
	cmds     []protocols.Command
	chosen   bool
	ackBal   ballot.Ballot
	acks     quorum.Tracker
	chosenAt ballot.Ballot
	enc      []byte // checkpoint encoding of an executed slot (nil: none yet)
}

// revocation is a phase 1 this replica runs to take over the slots of a
// suspected owner.
type revocation struct {
	ballot   ballot.Ballot
	owner    protocols.NodeID
	from, to uint64
	promises quorum.Tracker
	merged   map[uint64]Accepted
	started  int
}

// waiting is a command submitted here and not yet executed.
type waiting struct {
	cmd protocols.Command
	at  int // tick of the last (re)proposal
}

// Replica is one Mencius replica: the owner of every n-th slot, an acceptor
// and a learner of every slot. It implements protocols.Protocol.
type Replica struct {
	recovering bool // replaying its own records (see inRange)
	cfg        protocols.Config
	env        protocols.Env
	self       protocols.NodeID
	idx        uint64 // position of self in Peers
	n          uint64
	q          int

	log    []entry // log[i] is slot base+i+1
	base   uint64  // compaction point: the slots up to base are forgotten
	retain uint64  // executed slots a checkpoint keeps (Options.Retain)

	nextOwn  uint64 // the next own slot neither proposed nor skipped
	skipFrom uint64 // the latest skip range, piggybacked on AcceptOKs
	skipTo   uint64

	executed uint64
	done     map[protocols.CommandID]bool
	horizon  uint64 // highest slot the durable state names (see persist)

	batch     []protocols.Command
	inflight  map[uint64][]protocols.Command // own slots proposed, not chosen
	submitted []waiting

	rev         *revocation
	top         ballot.Ballot // highest ballot promised or voted here (see plausible)
	revokeAfter int           // tick before which no revocation starts
	now         int
	lastBeat    int
	heard       map[protocols.NodeID]int // tick a message from a peer last arrived
	blockSlot   uint64
	blockSince  int
	snaps       protocols.SnapshotOffers // when a peer may get a Snapshot
}

// Options tunes a Replica.
type Options struct {
	// Retain is the number of executed slots a checkpoint keeps, to serve
	// lagging peers by catch-up (see the package doc); 0 means
	// DefaultRetain, a negative value keeps none.
	Retain int
}

// New returns a Mencius replica configured by cfg, restarted from
// cfg.Checkpoint and cfg.Recovered, with the default options.
func New(cfg protocols.Config) (*Replica, error) {
	return NewWithOptions(cfg, Options{})
}

// NewWithOptions returns a Mencius replica configured by cfg and opts,
// restarted from cfg.Checkpoint (see Checkpoint) and then cfg.Recovered.
// A malformed checkpoint or record is an error.
func NewWithOptions(cfg protocols.Config, opts Options) (*Replica, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := newReplica(cfg)
	switch {
	case opts.Retain > 0:
		r.retain = uint64(opts.Retain)
	case opts.Retain < 0:
		r.retain = 0
	}
	if cfg.Checkpoint != nil {
		if err := r.restore(cfg.Checkpoint); err != nil {
			return nil, err
		}
	}
	if err := r.recover(cfg.Recovered); err != nil {
		return nil, err
	}
	return r, nil
}

// newReplica returns a replica of cfg (validated) in its initial state.
func newReplica(cfg protocols.Config) *Replica {
	r := &Replica{
		cfg:      cfg,
		env:      cfg.Env,
		self:     cfg.Self,
		idx:      uint64(cfg.Index(cfg.Self)),
		n:        uint64(len(cfg.Peers)),
		q:        quorum.Majority(len(cfg.Peers)),
		retain:   DefaultRetain,
		done:     map[protocols.CommandID]bool{},
		inflight: map[uint64][]protocols.Command{},
		heard:    map[protocols.NodeID]int{},
	}
	r.nextOwn = r.idx + 1
	return r
}

// owner returns the replica that owns slot (slot ≥ 1).
func (r *Replica) owner(slot uint64) protocols.NodeID {
	return r.cfg.Peers[(slot-1)%r.n]
}

// ownAtOrAbove returns the smallest own slot at or above s.
func (r *Replica) ownAtOrAbove(s uint64) uint64 {
	s = max(s, 1)
	return s + (r.idx+r.n-(s-1)%r.n)%r.n
}

// ownBallot is the round-1 ballot with which the owner of slot proposes.
func ownBallot(owner protocols.NodeID) ballot.Ballot {
	return ballot.Ballot{Round: 1, Node: owner}
}

// inRange reports whether slot may be stored: above the compaction point
// and at most maxAhead past the executed prefix. While the replica
// recovers its own records, whose executed prefix no record keeps, the
// upper bound is 2·maxAhead past the horizon instead (see persist).
func (r *Replica) inRange(slot uint64) bool {
	if r.recovering {
		return slot > r.base && slot >= 1 && slot <= r.horizon+2*maxAhead
	}
	return slot > r.base && slot >= 1 && slot <= r.executed+maxAhead
}

// persist makes rec durable; high is the highest slot it names, which
// raises the horizon. The horizon is the highest slot the durable state
// names: the checkpoint's executed prefix and slots, the slots of the
// records after it, and the marks (markHorizon). Keeping the executed
// prefix less than maxAhead/2 past it makes every record name slots within
// 2·maxAhead of the horizon of the records before it, which is how
// recovery bounds the log it rebuilds (a corrupt record naming a slot far
// ahead is an error, not an allocation without bound).
func (r *Replica) persist(rec []byte, high uint64) {
	r.env.Persist(rec)
	r.horizon = max(r.horizon, high)
}

// markHorizon persists marks until the executed prefix lies less than
// maxAhead/2 past the horizon: one mark per maxAhead/2 slots executed
// without a record, and after a state transfer one per maxAhead/2 slots
// of the jump, so that each mark too is in range of the ones before.
func (r *Replica) markHorizon() {
	for r.executed >= r.horizon+maxAhead/2 {
		v := r.horizon + maxAhead/2
		r.persist(markRecord(v), v)
	}
}

// entry returns the entry of slot, growing the log; slot must be inRange.
func (r *Replica) entry(slot uint64) *entry {
	for r.lastSlot() < slot {
		r.log = append(r.log, entry{acks: quorum.NewTracker(r.q)})
	}
	return &r.log[slot-r.base-1]
}

// at returns the entry of slot, or nil if it is compacted or beyond the log.
func (r *Replica) at(slot uint64) *entry {
	if slot <= r.base || slot > r.lastSlot() {
		return nil
	}
	return &r.log[slot-r.base-1]
}

// lastSlot is the highest slot the log holds an entry for.
func (r *Replica) lastSlot() uint64 { return r.base + uint64(len(r.log)) }

func (r *Replica) broadcast(m protocols.Message) {
	for _, p := range r.cfg.Peers {
		if p != r.self {
			r.env.Send(p, m)
		}
	}
}

// Submit implements protocols.Protocol.
func (r *Replica) Submit(c protocols.Command) {
	if r.done[c.ID] {
		return
	}
	r.submitted = append(r.submitted, waiting{cmd: c, at: r.now})
	r.batch = append(r.batch, c)
	r.propose()
}

// propose puts batched commands into own slots while the pipeline has room.
func (r *Replica) propose() {
	for len(r.batch) > 0 && len(r.inflight) < maxInflight && r.nextOwn <= r.executed+maxPipeline*r.n && r.inRange(r.nextOwn) {
		k := min(len(r.batch), maxBatch)
		cmds := slices.Clone(r.batch[:k])
		r.batch = r.batch[k:]
		slot := r.nextOwn
		r.nextOwn += r.n
		e := r.entry(slot)
		if ownBallot(r.self).Less(e.prom) || e.chosen {
			// Revoked (or skipped) before this replica used it: try the
			// next own slot.
			r.batch = append(cmds, r.batch...)
			continue
		}
		r.inflight[slot] = cmds
		m := Accept{Ballot: ownBallot(r.self), Slot: slot, Cmds: cmds}
		r.handleAccept(r.self, m)
		r.broadcast(m)
	}
	if len(r.batch) == 0 {
		r.batch = nil
	}
}

// skipThrough skips every unused own slot at or below s: the owner will
// propose nothing there, so each is a no-op, decided at once. The skip is
// durable before any message that announces it leaves.
func (r *Replica) skipThrough(s uint64) {
	if s < r.nextOwn || !r.inRange(s) {
		return
	}
	from, to := r.nextOwn, r.ownAtOrAbove(s+1)
	r.persist(skipRecord(from, to), to-r.n)
	r.applySkip(r.self, from, to)
	r.nextOwn = to
	r.skipFrom, r.skipTo = from, to
}

// applySkip marks the slots of owner in [from, to) chosen no-ops.
func (r *Replica) applySkip(owner protocols.NodeID, from, to uint64) {
	i := r.cfg.Index(owner)
	if i < 0 || from >= to || to-from > maxAhead || !r.inRange(from) && from > r.base {
		// Out of range above (also: s below could wrap around).
		return
	}
	s := max(from, r.base+1)
	s += (uint64(i) + r.n - (s-1)%r.n) % r.n
	for ; s < to && r.inRange(s); s += r.n {
		r.choose(s, nil)
	}
}

// choose records that cmds is the chosen value of slot.
func (r *Replica) choose(slot uint64, cmds []protocols.Command) {
	if !r.inRange(slot) {
		return
	}
	e := r.entry(slot)
	if e.chosen {
		return
	}
	e.chosen, e.cmds = true, cmds
	if own, ok := r.inflight[slot]; ok {
		delete(r.inflight, slot)
		if !sameIDs(own, cmds) {
			// The slot was revoked and chosen without this proposal:
			// propose its commands again.
			r.batch = append(r.batch, own...)
		}
	}
	failpoint.Inject("executeOnChoose", func() {
		// Planted bug for the sabotage test: a slot executes as soon as
		// it is chosen, ahead of the earlier slots still undecided.
		for _, c := range cmds {
			if !r.done[c.ID] {
				r.done[c.ID] = true
				r.env.Execute(c)
			}
		}
	})
}

func sameIDs(a, b []protocols.Command) bool {
	return slices.EqualFunc(a, b, func(x, y protocols.Command) bool { return x.ID == y.ID })
}

// Step implements protocols.Protocol.
func (r *Replica) Step(from protocols.NodeID, m protocols.Message) {
	if r.cfg.Index(from) < 0 {
		return
	}
	r.heard[from] = r.now
	switch m := m.(type) {
	case Accept:
		r.handleAccept(from, m)
	case AcceptOK:
		r.handleAcceptOK(from, m)
	case Skip:
		r.applySkip(from, m.From, m.To)
	case Prepare:
		r.handlePrepare(from, m)
	case Promise:
		r.handlePromise(from, m)
	case Nack:
		if r.rev != nil && r.rev.ballot.Less(m.Promised) && r.plausible(m.Slot, m.Promised) {
			r.abandon()
		}
	case CatchUpReq:
		r.handleCatchUpReq(from, m)
	case CatchUp:
		r.handleCatchUp(from, m)
	case Snapshot:
		r.handleSnapshot(from, m)
	}
	r.execute()
	r.propose()
}

// validBallot reports whether b may be used for slot: round 1 belongs to
// the slot's owner, higher rounds to revokers. It says nothing of how far
// ahead b is (see plausible).
func (r *Replica) validBallot(slot uint64, b ballot.Ballot) bool {
	switch {
	case b.Round == 0 || r.cfg.Index(b.Node) < 0:
		return false
	case b.Round == 1:
		return b.Node == r.owner(slot)
	}
	return true
}

// plausible reports whether an honest peer could send b for slot: a valid
// ballot of the slot (validBallot) whose round is at most ballot.MaxAhead
// beyond the highest ballot this replica promised or voted (ballot.Plausible;
// revokers raise rounds one at a time).
func (r *Replica) plausible(slot uint64, b ballot.Ballot) bool {
	return r.validBallot(slot, b) && ballot.Plausible(b, r.top, r.cfg.Peers)
}

// raise records that this replica promised or voted b.
func (r *Replica) raise(b ballot.Ballot) { r.top = ballot.Max(r.top, b) }

func (r *Replica) handleAccept(from protocols.NodeID, m Accept) {
	if !r.inRange(m.Slot) || !r.plausible(m.Slot, m.Ballot) {
		return
	}
	e := r.entry(m.Slot)
	if m.Ballot.Less(e.prom) {
		r.env.Send(from, Nack{Slot: m.Slot, Promised: e.prom})
		return
	}
	// A proposal for slot s means the others are past s: this replica's
	// unused slots up to s become no-ops, announced with the AcceptOK.
	// Revokers' no-ops reach ahead of the proposals and skip nothing.
	if from != r.self && m.Ballot.Round == 1 {
		r.skipThrough(m.Slot)
	}
	e = r.entry(m.Slot) // skipThrough may have grown the log
	e.prom, e.bal, e.enc = m.Ballot, m.Ballot, nil
	r.raise(m.Ballot)
	if !e.chosen {
		// A chosen slot keeps its value: any later ballot proposes it.
		e.cmds = m.Cmds
	}
	persist := true
	failpoint.Inject("ackBeforePersist", func() {
		// Planted bug for the sabotage test: an acceptor answers for a
		// vote it never made durable, so a crash forgets a vote that a
		// quorum counted.
		persist = from == r.self
	})
	if persist {
		r.persist(acceptRecord(m.Slot, m.Ballot, m.Cmds), m.Slot)
	}
	if e.chosenAt == m.Ballot {
		r.choose(m.Slot, m.Cmds)
	}
	ok := AcceptOK{Ballot: m.Ballot, Slot: m.Slot, SkipFrom: r.skipFrom, SkipTo: r.skipTo}
	r.handleAcceptOK(r.self, ok)
	r.broadcast(ok)
}

func (r *Replica) handleAcceptOK(from protocols.NodeID, m AcceptOK) {
	if from != r.self {
		r.applySkip(from, m.SkipFrom, m.SkipTo)
	}
	if !r.inRange(m.Slot) || !r.plausible(m.Slot, m.Ballot) {
		return
	}
	e := r.entry(m.Slot)
	if e.chosen {
		return
	}
	if e.ackBal.Less(m.Ballot) {
		e.ackBal, e.acks = m.Ballot, quorum.NewTracker(r.q)
	}
	if e.ackBal != m.Ballot || !e.acks.Add(from) || !e.acks.Reached() {
		return
	}
	if e.bal == m.Ballot {
		r.choose(m.Slot, e.cmds)
	} else {
		e.chosenAt = m.Ballot
	}
}

// execute runs chosen slots in order, each command at most once.
func (r *Replica) execute() {
	for e := r.at(r.executed + 1); e != nil && e.chosen; e = r.at(r.executed + 1) {
		for _, c := range e.cmds {
			if !r.done[c.ID] {
				r.done[c.ID] = true
				r.env.Execute(c)
			}
		}
		r.executed++
		r.markHorizon()
	}
}

func (r *Replica) handlePrepare(from protocols.NodeID, m Prepare) {
	i := r.cfg.Index(m.Owner)
	if i < 0 || m.Ballot.Round < 2 || !r.plausible(m.From, m.Ballot) || m.From > m.To || m.To-m.From > maxRevoke*r.n {
		return
	}
	if m.From <= r.base {
		// The votes there are forgotten, so no promise: the slots are
		// executed here and the revoker is behind; it gets the state.
		r.sendSnapshot(from, max(m.From, 1))
		return
	}
	if !r.inRange(m.From) || !r.inRange(m.To) {
		return
	}
	if m.Owner == r.self {
		r.skipThrough(m.To)
	}
	var acc []Accepted
	for s := r.ownerSlot(m.Owner, m.From); s <= m.To; s += r.n {
		e := r.entry(s)
		if m.Ballot.Less(e.prom) {
			r.env.Send(from, Nack{Slot: s, Promised: e.prom})
			return
		}
		if e.chosen {
			// A chosen value (a skip among them) is reported at the
			// revoker's own ballot: it is the only value the slot may
			// take, and it outranks every vote the revoker collects.
			acc = append(acc, Accepted{Slot: s, Ballot: m.Ballot, Cmds: e.cmds})
		} else if !e.bal.IsZero() {
			acc = append(acc, Accepted{Slot: s, Ballot: e.bal, Cmds: e.cmds})
		}
	}
	for s := r.ownerSlot(m.Owner, m.From); s <= m.To; s += r.n {
		e := r.entry(s)
		e.prom, e.enc = m.Ballot, nil
	}
	r.raise(m.Ballot)
	r.persist(promiseRecord(m.Owner, m.From, m.To, m.Ballot), m.To)
	r.env.Send(from, Promise{Ballot: m.Ballot, Owner: m.Owner, From: m.From, To: m.To, Accepted: acc})
}

// ownerSlot returns the smallest slot of owner at or above s.
func (r *Replica) ownerSlot(owner protocols.NodeID, s uint64) uint64 {
	s = max(s, 1)
	i := uint64(r.cfg.Index(owner))
	return s + (i+r.n-(s-1)%r.n)%r.n
}

// suspected reports whether p has been silent for SuspectTicks ticks.
func (r *Replica) suspected(p protocols.NodeID) bool {
	return p != r.self && r.now-r.heard[p] >= r.cfg.SuspectTicks
}

// revoker returns the replica that revokes the slots of a suspected owner,
// as this replica sees it: the first replica after owner in Peers order
// that is not suspected. Choosing one keeps revokers from dueling with ever
// higher ballots; if two replicas see it differently, abandon's random
// back-off settles it.
func (r *Replica) revoker(owner protocols.NodeID) protocols.NodeID {
	i := r.cfg.Index(owner)
	for k := 1; k < len(r.cfg.Peers); k++ {
		if p := r.cfg.Peers[(i+k)%len(r.cfg.Peers)]; !r.suspected(p) {
			return p
		}
	}
	return r.self
}

// abandon gives up the running revocation and waits a random number of
// ticks before the next one.
func (r *Replica) abandon() {
	r.rev = nil
	r.revokeAfter = r.now + 1 + r.env.Rand().IntN(r.cfg.SuspectTicks)
}

// revoke starts phase 1 for the slots of owner from s to revokeAhead of its
// slots past s, or, for a replica further behind (a restart relearning the
// log), up to the highest slot known, at most maxRevoke of its slots.
func (r *Replica) revoke(owner protocols.NodeID, s uint64) {
	to := min(max(s+revokeAhead*r.n, r.lastSlot()+1), s+maxRevoke*r.n) - 1
	to = min(to, r.executed+maxAhead)
	round := uint64(1)
	for t := r.ownerSlot(owner, s); t <= to && t <= r.lastSlot(); t += r.n {
		round = max(round, r.at(t).prom.Round)
	}
	b := ballot.Ballot{Round: round + 1, Node: r.self}
	r.raise(b)
	r.rev = &revocation{ballot: b, owner: owner, from: s, to: to, promises: quorum.NewTracker(r.q), merged: map[uint64]Accepted{}, started: r.now}
	m := Prepare{Ballot: b, Owner: owner, From: s, To: to}
	r.handlePrepare(r.self, m)
	r.broadcast(m)
}

func (r *Replica) handlePromise(from protocols.NodeID, m Promise) {
	v := r.rev
	if v == nil || m.Ballot != v.ballot || m.Owner != v.owner || m.From != v.from || m.To != v.to || !v.promises.Add(from) {
		return
	}
	for _, a := range m.Accepted {
		if a.Slot < v.from || a.Slot > v.to || r.owner(a.Slot) != v.owner || !r.plausible(a.Slot, a.Ballot) {
			continue
		}
		if a.Ballot == v.ballot {
			r.choose(a.Slot, a.Cmds)
		}
		if cur, ok := v.merged[a.Slot]; !ok || cur.Ballot.Less(a.Ballot) {
			v.merged[a.Slot] = a
		}
	}
	if !v.promises.Reached() {
		return
	}
	r.rev = nil
	// Phase 2 is under way: a revocation started before its AcceptOKs
	// can arrive would preempt it with a higher ballot, and the next one
	// that one, with no slot ever chosen.
	r.revokeAfter = r.now + max(2, r.cfg.SuspectTicks/2)
	for s := r.ownerSlot(v.owner, v.from); s <= v.to; s += r.n {
		if !r.inRange(s) {
			// Executed and compacted meanwhile.
			continue
		}
		e := r.entry(s)
		if e.chosen {
			continue
		}
		var cmds []protocols.Command
		if a, ok := v.merged[s]; ok {
			cmds = a.Cmds
		}
		acc := Accept{Ballot: v.ballot, Slot: s, Cmds: cmds}
		r.handleAccept(r.self, acc)
		r.broadcast(acc)
	}
}

func (r *Replica) handleCatchUpReq(from protocols.NodeID, m CatchUpReq) {
	if m.From > m.To {
		return
	}
	if m.From <= r.base {
		// Compacted here: the asker gets the state instead.
		r.sendSnapshot(from, max(m.From, 1))
		return
	}
	if !r.inRange(m.From) {
		return
	}
	r.skipThrough(min(m.To, r.executed+maxAhead))
	var chosen []Accepted
	for s := m.From; s <= m.To && s <= r.lastSlot() && len(chosen) < maxCatchUp; s++ {
		switch e := r.at(s); {
		case e == nil:
		case e.chosen:
			chosen = append(chosen, Accepted{Slot: s, Cmds: e.cmds})
		case !e.bal.IsZero():
			// A vote, for the asker to count: when every replica has
			// restarted none knows the slot chosen, but a majority of
			// votes at one ballot still says it is.
			chosen = append(chosen, Accepted{Slot: s, Ballot: e.bal, Cmds: e.cmds})
		}
	}
	if len(chosen) > 0 {
		r.env.Send(from, CatchUp{Chosen: chosen})
	}
}

// handleCatchUp learns the chosen values of a CatchUp and counts its votes
// as the sender's AcceptOKs: a vote at ballot b is the durable acceptance
// an AcceptOK at b announces, so a majority of them, this replica's own
// vote included, chooses the slot with the value voted at b (one proposer
// per ballot and slot proposes one value).
func (r *Replica) handleCatchUp(from protocols.NodeID, m CatchUp) {
	before := r.executed
	for _, a := range m.Chosen {
		if a.Ballot.IsZero() {
			r.choose(a.Slot, a.Cmds)
			continue
		}
		if !r.inRange(a.Slot) || !r.plausible(a.Slot, a.Ballot) {
			continue
		}
		if e := r.entry(a.Slot); e.bal == a.Ballot && !e.chosen {
			r.handleAcceptOK(r.self, AcceptOK{Ballot: a.Ballot, Slot: a.Slot})
		}
		r.handleAcceptOK(from, AcceptOK{Ballot: a.Ballot, Slot: a.Slot})
		if e := r.entry(a.Slot); !e.chosen && e.chosenAt == a.Ballot {
			r.choose(a.Slot, a.Cmds)
		}
	}
	r.execute()
	if e := r.at(r.executed + 1); r.executed > before && e != nil && !e.chosen {
		// A replica far behind (a restart relearns every slot) asks for
		// the next batch at once: every peer, since votes count only
		// from a majority.
		req := CatchUpReq{From: r.executed + 1, To: r.lastSlot()}
		r.broadcast(req)
	}
}

// Tick implements protocols.Protocol.
func (r *Replica) Tick() {
	r.now++
	beat := max(1, r.cfg.SuspectTicks/3)
	if r.rev != nil && r.now-r.rev.started >= r.cfg.SuspectTicks {
		r.abandon()
	}
	if r.now-r.lastBeat >= beat {
		r.lastBeat = r.now
		r.broadcast(Skip{From: r.skipFrom, To: r.skipTo})
		r.retransmit()
	}
	s := r.executed + 1
	if s != r.blockSlot {
		r.blockSlot, r.blockSince = s, r.now
	}
	if e := r.at(s); e != nil && !e.chosen {
		blocked := r.now - r.blockSince
		o := r.owner(s)
		if o == r.self {
			// Own unused slots up to the highest known are skipped, and
			// the skip announced at once.
			r.skipThrough(r.lastSlot())
			if r.skipTo > s && r.skipFrom <= s {
				r.broadcast(Skip{From: r.skipFrom, To: r.skipTo})
			}
		}
		switch {
		case (r.suspected(o) || blocked >= 2*r.cfg.SuspectTicks) && r.rev == nil && r.now >= r.revokeAfter &&
			(r.revoker(o) == r.self || blocked >= 3*r.cfg.SuspectTicks):
			// A suspected owner's slots are taken over by one replica;
			// so is a slot that stays undecided although its owner is
			// alive (its round-1 proposal refused by acceptors that
			// promised a revoker who then fell silent). When the
			// designated revoker does not act, any blocked replica does.
			r.revoke(o, s)
		case blocked >= beat && (blocked-beat)%beat == 0:
			// The slot may be decided elsewhere (a restart forgets what
			// was chosen; a lost AcceptOK or skip): ask the peers.
			r.broadcast(CatchUpReq{From: s, To: r.lastSlot()})
		}
	}
	// Commands submitted here and not executed for a long while are
	// proposed again: their slot may have been revoked and its outcome
	// lost.
	r.submitted = slices.DeleteFunc(r.submitted, func(w waiting) bool { return r.done[w.cmd.ID] })
	for i := range r.submitted {
		if w := &r.submitted[i]; r.now-w.at >= 2*r.cfg.SuspectTicks {
			w.at = r.now
			if !slices.ContainsFunc(r.batch, func(c protocols.Command) bool { return c.ID == w.cmd.ID }) {
				r.batch = append(r.batch, w.cmd)
			}
		}
	}
	r.execute()
	r.propose()
}

// retransmit resends the own proposals not yet chosen.
func (r *Replica) retransmit() {
	for s := r.executed + 1; s <= r.lastSlot(); s++ {
		if cmds, ok := r.inflight[s]; ok {
			if e := r.at(s); e != nil && e.bal == ownBallot(r.self) {
				r.broadcast(Accept{Ballot: e.bal, Slot: s, Cmds: cmds})
			}
		}
	}
}
