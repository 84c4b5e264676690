package paxos

import (
	"fmt"
	"slices"

	"github.com/pingcap/failpoint"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/idset"
	"github.com/blossom-dso/blossom/protocols/quorum"
)

func init() {
	protocols.Register("paxos", func(cfg protocols.Config) (protocols.Protocol, error) {
		return New(cfg, false)
	}, Codec{})
	protocols.Register("fpaxos", func(cfg protocols.Config) (protocols.Protocol, error) {
		return New(cfg, true)
	}, Codec{})
}

// Options tune a Replica beyond protocols.Config.
type Options struct {
	// Flexible selects Flexible Paxos quorums: phase 1 with n−f replicas,
	// phase 2 with f+1. Otherwise both phases use a majority.
	Flexible bool
	// Retain is the retention window: the number of executed slots below
	// the last executed one whose chosen values a checkpoint keeps, in
	// memory and in the checkpoint record, to serve lagging replicas (see
	// the package doc). 0 means DefaultRetain; a negative value keeps none.
	// At most MaxRetain.
	Retain int
}

const (
	// DefaultRetain is the retention window when Options.Retain is 0.
	DefaultRetain = 1024
	// MaxRetain bounds Options.Retain.
	MaxRetain = 1 << 20
)

const (
	// maxBatch bounds the commands the leader proposes in one slot.
	maxBatch = 64
	// maxInflight bounds the slots the leader has proposed and not yet seen
	// chosen; further commands wait in a batch.
	maxInflight = 16
	// maxCatchUp bounds the chosen entries in one CatchUp message.
	maxCatchUp = 64
	// maxAhead bounds how far past the first unchosen slot an Accept may
	// reach; a farther one is dropped, so a forged slot cannot grow the log
	// without limit.
	maxAhead = 1 << 16
)

type role uint8

const (
	follower role = iota
	candidate
	leader
)

// entry is one log slot. bal and cmds are the acceptor's vote (durable);
// chosen means cmds is the slot's chosen value.
type entry struct {
	bal    ballot.Ballot
	cmds   []protocols.Command
	chosen bool
}

// encoded caches the checkpoint encoding of an executed slot, whose value
// no longer changes: it is valid while the slot's vote has ballot bal.
type encoded struct {
	bal ballot.Ballot
	enc []byte
}

// proposal is the leader's bookkeeping for a slot it proposed with its
// current ballot and has not yet seen chosen.
type proposal struct {
	acks   quorum.Tracker
	sentAt int // tick of the last (re)send
}

// waiting is a command submitted at this replica and not yet executed here
// (executed ones are dropped from the list at the next tick).
type waiting struct {
	cmd protocols.Command
	at  int // tick of the last (re)send
}

// Replica is one Multi-Paxos replica: proposer, acceptor and learner. It
// implements protocols.Protocol.
type Replica struct {
	cfg    protocols.Config
	env    protocols.Env
	self   protocols.NodeID
	q1, q2 int

	// acceptor state; durable through records and checkpoints
	promised ballot.Ballot
	log      slotLog            // entry i is slot base+i+1
	base     uint64             // compaction point: slots up to base were executed and forgotten
	encs     map[uint64]encoded // checkpoint encodings of executed slots above base
	retain   uint64             // retention window (Options.Retain)

	// learner state
	executed uint64 // slots up to executed have been executed
	done     idset.Set

	// proposer state
	role      role
	ballot    ballot.Ballot // the ballot this replica leads or campaigns with
	leaderID  protocols.NodeID
	promises  quorum.Tracker
	merged    map[uint64]Accepted // candidate: highest-ballot value per slot
	prepFrom  uint64
	next      uint64               // leader: next slot to propose
	commit    uint64               // leader: every slot up to commit is chosen
	inflight  map[uint64]*proposal // leader: proposed, not yet chosen
	spare     []*proposal          // proposals chosen, for reuse
	batch     []protocols.Command
	proposed  map[protocols.CommandID]bool // leader: in a proposed, unexecuted slot
	submitted []waiting                    // commands submitted here, not yet executed

	// timers, in ticks
	now        int
	heard      int // tick a message from the leader last arrived
	timeout    int // election timeout, randomized
	lastBeat   int
	catchingUp bool
	snaps      protocols.SnapshotOffers // when a peer may get a Snapshot

	rec  acceptRec // the record handleAccept persists, reused
	cmds cmdArena  // the command lists of proposals and forwards
}

// New returns a Multi-Paxos replica with the default retention window.
// With flexible, phase 1 uses n−f and phase 2 f+1 replicas (Flexible
// Paxos); otherwise both use a majority. It restarts from cfg.Checkpoint
// and cfg.Recovered.
func New(cfg protocols.Config, flexible bool) (*Replica, error) {
	return NewWithOptions(cfg, Options{Flexible: flexible})
}

// NewWithOptions returns a Multi-Paxos replica configured by cfg and opts.
func NewWithOptions(cfg protocols.Config, opts Options) (*Replica, error) {
	validate := cfg.Validate
	if !opts.Flexible {
		validate = cfg.ValidatePair // majorities: a pair with f = 0 is safe
	}
	if err := validate(); err != nil {
		return nil, err
	}
	if opts.Retain > MaxRetain {
		return nil, fmt.Errorf("%w: paxos: retention window %d > %d", protocols.ErrConfig, opts.Retain, MaxRetain)
	}
	n := len(cfg.Peers)
	r := &Replica{
		cfg:      cfg,
		env:      cfg.Env,
		self:     cfg.Self,
		q1:       quorum.Majority(n),
		q2:       quorum.Majority(n),
		retain:   DefaultRetain,
		proposed: map[protocols.CommandID]bool{},
		inflight: map[uint64]*proposal{},
	}
	switch {
	case opts.Retain > 0:
		r.retain = uint64(opts.Retain)
	case opts.Retain < 0:
		r.retain = 0
	}
	if opts.Flexible {
		r.q1, r.q2 = quorum.FlexiblePhase1(n, cfg.F), quorum.FlexiblePhase2(cfg.F)
	}
	failpoint.Inject("quorumOneShort", func() {
		// Planted bug for the sabotage test: both phases end one
		// acceptor short, so quorums of different ballots need not
		// intersect and a new leader may miss a chosen value.
		r.q1--
		r.q2--
	})
	if err := r.recover(cfg.Checkpoint, cfg.Recovered); err != nil {
		return nil, err
	}
	r.resetTimeout()
	if cfg.InitialLeader == cfg.Self && cfg.Checkpoint == nil && len(cfg.Recovered) == 0 {
		r.heard -= r.timeout // the placed first leader campaigns at its first Tick
	}
	return r, nil
}

// Leader returns the replica this one believes leads, or 0.
func (r *Replica) Leader() protocols.NodeID {
	if r.role == leader {
		return r.self
	}
	return r.leaderID
}

// Executed returns the number of log slots this replica has executed (the
// slots 1 to Executed()): it grows as slots execute and jumps forward with
// a state transfer. Wrappers that report log positions read it.
func (r *Replica) Executed() uint64 { return r.executed }

func (r *Replica) resetTimeout() {
	s := r.cfg.SuspectTicks
	r.timeout = s + r.env.Rand().IntN(s)
	r.heard = r.now
}

// entry returns the log entry of slot (1-based, above base), growing the
// log.
func (r *Replica) entry(slot uint64) *entry {
	for r.lastSlot() < slot {
		r.log.grow()
	}
	return r.log.at(int(slot - r.base - 1))
}

// at returns the log entry of slot, or nil if the slot is compacted (at or
// below base) or beyond the log.
func (r *Replica) at(slot uint64) *entry {
	if slot <= r.base || slot > r.lastSlot() {
		return nil
	}
	return r.log.at(int(slot - r.base - 1))
}

// lastSlot is the highest slot the log holds an entry for.
func (r *Replica) lastSlot() uint64 { return r.base + uint64(r.log.len()) }

// firstUnchosen is the smallest slot not known to be chosen.
func (r *Replica) firstUnchosen() uint64 {
	s := r.executed + 1
	for e := r.at(s); e != nil && e.chosen; e = r.at(s) {
		s++
	}
	return s
}

func (r *Replica) broadcast(m protocols.Message) {
	for _, p := range r.cfg.Peers {
		if p != r.self {
			r.env.Send(p, m)
		}
	}
}

// Submit implements protocols.Protocol.
func (r *Replica) Submit(c protocols.Command) {
	if r.done.Has(c.ID) {
		protocols.AlreadyExecuted(r.env, c)
		return
	}
	r.submitted = append(r.submitted, waiting{cmd: c, at: r.now})
	if r.role == leader {
		// route without the slice a forward needs
		r.enqueue(c)
		r.propose()
		return
	}
	r.route(r.cmds.cut(c))
}

// cmdChunk is the number of commands in a chunk of a cmdArena.
const cmdChunk = 256

// cmdArena hands out copies of command lists cut from shared chunks, so
// that a proposal or a forward of a few commands does not allocate its own
// array. A list's capacity is its length: an append to it copies, never
// reaching its neighbour. A chunk lives as long as a list cut from it.
//
// Until the first compaction the arena also lists every chunk, for
// Release; a compaction ends the list, so that a long-lived replica does
// not keep chunks its log no longer refers to.
type cmdArena struct {
	chunk     []protocols.Command
	chunks    []*[cmdChunk]protocols.Command // every chunk cut from, unless untracked
	untracked bool                           // a compaction ended the list
}

// cut returns a copy of cmds (nil if empty).
func (a *cmdArena) cut(cmds ...protocols.Command) []protocols.Command {
	n := len(cmds)
	if n == 0 {
		return nil
	}
	if n > cmdChunk/4 {
		return slices.Clone(cmds)
	}
	if cap(a.chunk)-len(a.chunk) < n {
		c := chunkStock.get()
		if !a.untracked {
			a.chunks = append(a.chunks, c)
		}
		a.chunk = c[:0]
	}
	k := len(a.chunk)
	a.chunk = append(a.chunk, cmds...)
	return a.chunk[k : k+n : k+n]
}

// enqueue adds c to the leader's batch unless it was executed or proposed.
func (r *Replica) enqueue(c protocols.Command) {
	if !r.done.Has(c.ID) && !r.proposed[c.ID] {
		r.proposed[c.ID] = true
		r.batch = append(r.batch, c)
	}
}

// route hands commands to the leader: proposed here if this replica leads,
// forwarded if another does, kept in submitted for a later retry otherwise.
func (r *Replica) route(cmds []protocols.Command) {
	switch {
	case r.role == leader:
		if r.proposeAsIs(cmds) {
			return
		}
		for _, c := range cmds {
			r.enqueue(c)
		}
		r.propose()
	case r.leaderID != 0 && r.leaderID != r.self:
		r.env.Send(r.leaderID, Forward{Cmds: cmds})
	}
}

// Step implements protocols.Protocol. A message that no honest peer could
// send is dropped (see plausible).
func (r *Replica) Step(from protocols.NodeID, m protocols.Message) {
	if !r.plausible(from, m) {
		return
	}
	switch m := m.(type) {
	case Prepare:
		r.handlePrepare(from, m)
	case Promise:
		r.handlePromise(from, m)
	case Nack:
		r.handleNack(m)
	case Accept:
		r.handleAccept(from, m)
	case AcceptOK:
		r.handleAcceptOK(from, m)
	case Commit:
		r.handleCommit(from, m.Ballot, m.Commit)
	case CatchUpReq:
		r.handleCatchUpReq(from, m)
	case CatchUp:
		r.handleCatchUp(from, m)
	case Snapshot:
		r.handleSnapshot(from, m)
	case Forward:
		if r.role == leader {
			r.route(m.Cmds)
		} else if r.leaderID != 0 && r.leaderID != r.self && r.leaderID != from {
			r.env.Send(r.leaderID, m)
		}
	}
}

// plausible reports whether an honest peer could have sent m: the sender
// is a peer, a ballot is owned by a peer and not absurdly far ahead of this
// replica's (ballot.Plausible), and a chosen value sent in a CatchUp lies
// above this replica's base and within maxAhead of its first unchosen
// slot. A message with plausible fields but a lie in them (a forged
// Accept at the current ballot) cannot be told from a real one: see
// "Hostile input" in package protocols.
func (r *Replica) plausible(from protocols.NodeID, m protocols.Message) bool {
	if peers := r.cfg.Peers; (from == 0 || int(from) > len(peers) || peers[from-1] != from) && !slices.Contains(peers, from) {
		return false // from is not a peer (peers are usually 1..n in order: checked first)
	}
	var b ballot.Ballot
	switch m := m.(type) {
	case Prepare:
		b = m.Ballot
	case Promise:
		b = m.Ballot
	case Nack:
		b = m.Promised
	case Accept:
		b = m.Ballot
	case AcceptOK:
		b = m.Ballot
	case Commit:
		b = m.Ballot
	case CatchUp:
		for _, a := range m.Chosen {
			if a.Slot <= r.base || a.Slot > r.firstUnchosen()+maxAhead {
				return false
			}
		}
		return true
	default:
		return true
	}
	return ballot.Plausible(b, ballot.Max(r.promised, r.ballot), r.cfg.Peers)
}

// observe steps down when a higher ballot shows up.
func (r *Replica) observe(b ballot.Ballot) {
	if r.ballot.Less(b) && r.role != follower {
		r.role = follower
		r.batch = nil
		clear(r.proposed)
		clear(r.inflight)
	}
}

func (r *Replica) handlePrepare(from protocols.NodeID, m Prepare) {
	if m.Ballot.Less(r.promised) {
		r.env.Send(from, Nack{Promised: r.promised})
		return
	}
	if r.base > 0 && m.From <= r.base {
		// The votes of the compacted slots are gone: a promise could not
		// report them, so none is made (see the catch-up rule in the
		// package doc). The candidate is behind this replica's window:
		// a state transfer lifts it above, so that its next campaign
		// starts above this base.
		r.sendSnapshot(from, m.From)
		return
	}
	r.observe(m.Ballot)
	if r.promised.Less(m.Ballot) {
		r.promised = m.Ballot
		r.env.Persist(promiseRecord(m.Ballot))
	}
	var acc []Accepted
	for s := m.From; s >= 1 && s <= r.lastSlot(); s++ {
		if e := r.at(s); !e.bal.IsZero() {
			acc = append(acc, Accepted{Slot: s, Ballot: e.bal, Cmds: e.cmds})
		}
	}
	r.env.Send(from, Promise{Ballot: m.Ballot, From: m.From, Accepted: acc})
}

func (r *Replica) handleNack(m Nack) {
	if r.role != follower && r.ballot.Less(m.Promised) {
		r.observe(m.Promised)
		r.resetTimeout()
	}
}

// campaign starts phase 1 with a ballot above every ballot seen.
func (r *Replica) campaign() {
	r.role = candidate
	r.ballot = ballot.Max(r.promised, r.ballot).Next(r.self)
	r.leaderID = 0
	r.promises = quorum.NewTracker(r.q1)
	r.merged = map[uint64]Accepted{}
	r.prepFrom = r.firstUnchosen()
	r.resetTimeout()
	r.lastBeat = r.now
	m := Prepare{Ballot: r.ballot, From: r.prepFrom}
	r.handlePrepare(r.self, m)
	r.broadcast(m)
}

func (r *Replica) handlePromise(from protocols.NodeID, m Promise) {
	if r.role != candidate || m.Ballot != r.ballot || !r.promises.Add(from) {
		return
	}
	for _, a := range m.Accepted {
		if a.Slot < r.prepFrom {
			continue
		}
		if cur, ok := r.merged[a.Slot]; !ok || cur.Ballot.Less(a.Ballot) {
			r.merged[a.Slot] = a
		}
	}
	if r.promises.Reached() {
		r.becomeLeader()
	}
}

// becomeLeader re-proposes, with the new ballot, every slot from prepFrom up
// to the highest one a promise reported: the highest-ballot value where one
// was reported, a no-op in the gaps.
func (r *Replica) becomeLeader() {
	// Slots this replica executed and compacted while it campaigned are
	// chosen; the new reign starts above them.
	start := max(r.prepFrom, r.base+1)
	r.role = leader
	r.leaderID = r.self
	r.commit = start - 1
	r.next = start
	last := start - 1
	for s := range r.merged {
		last = max(last, s)
	}
	clear(r.proposed)
	clear(r.inflight)
	for s := start; s <= last; s++ {
		var cmds []protocols.Command
		if e := r.entry(s); e.chosen {
			cmds = e.cmds
		} else if a, ok := r.merged[s]; ok {
			cmds = a.Cmds
		}
		for _, c := range cmds {
			r.proposed[c.ID] = true
		}
		r.proposeSlot(s, cmds)
	}
	r.merged = nil
	r.next = last + 1
	for _, w := range r.submitted {
		r.enqueue(w.cmd)
	}
	r.propose()
	r.heartbeat()
}

// proposeAsIs proposes cmds, a list handed over by a Forward or a retry,
// in the next slot without copying it, and reports whether it did. It does
// so only where enqueueing cmds and calling propose would propose a copy
// of exactly cmds in that one slot: the batch is empty, the pipeline has
// room, cmds fits one slot and none of its commands is executed, proposed
// or listed twice. The list is shared, as a follower shares an Accept's
// with its log: nothing writes to a proposed list (capacity is cut to the
// length, so an append copies).
func (r *Replica) proposeAsIs(cmds []protocols.Command) bool {
	n := len(cmds)
	if n == 0 || n > maxBatch || len(r.batch) > 0 || r.next-r.commit > maxInflight {
		return false
	}
	for i, c := range cmds {
		if r.done.Has(c.ID) || r.proposed[c.ID] {
			return false
		}
		for _, d := range cmds[:i] {
			if d.ID == c.ID {
				return false
			}
		}
	}
	for _, c := range cmds {
		r.proposed[c.ID] = true
	}
	r.proposeSlot(r.next, cmds[:n:n])
	r.next++
	return true
}

// propose fills slots from the batch while the pipeline has room.
func (r *Replica) propose() {
	buf, used := r.batch[:0], 0
	for len(r.batch) > 0 && r.next-r.commit <= maxInflight {
		n := min(len(r.batch), maxBatch)
		cmds := r.cmds.cut(r.batch[:n]...)
		r.batch = r.batch[n:]
		used += n
		r.proposeSlot(r.next, cmds)
		r.next++
	}
	if len(r.batch) == 0 && used > 0 {
		// The batch's array is reused for the next batch (each proposal
		// has its own copy).
		clear(buf[:used])
		r.batch = buf
	}
}

func (r *Replica) proposeSlot(slot uint64, cmds []protocols.Command) {
	var p *proposal
	if n := len(r.spare); n > 0 {
		p, r.spare = r.spare[n-1], r.spare[:n-1]
	} else {
		p = new(proposal)
	}
	*p = proposal{acks: quorum.NewTracker(r.q2), sentAt: r.now}
	r.inflight[slot] = p
	m := Accept{Ballot: r.ballot, Slot: slot, Cmds: cmds, Commit: r.commit}
	r.handleAccept(r.self, m)
	r.broadcast(m)
}

func (r *Replica) handleAccept(from protocols.NodeID, m Accept) {
	if m.Ballot.Less(r.promised) {
		r.env.Send(from, Nack{Promised: r.promised})
		return
	}
	if m.Slot == 0 || m.Slot > r.firstUnchosen()+maxAhead {
		return
	}
	r.observe(m.Ballot)
	r.promised = m.Ballot
	r.leaderID = m.Ballot.Node
	r.heard = r.now
	// A compacted slot was executed here, so it is chosen and the leader
	// proposes its chosen value: the vote is made durable by the record but
	// not kept in memory (this replica answers no Prepare reaching it).
	if m.Slot > r.base {
		e := r.entry(m.Slot)
		if !e.chosen {
			e.cmds = m.Cmds
		}
		e.bal = m.Ballot
	}
	persist := true
	failpoint.Inject("ackBeforePersist", func() {
		// Planted bug for the sabotage test: an acceptor answers for a
		// value it never made durable, so a crash forgets a vote that a
		// quorum counted.
		persist = from == r.self
	})
	if persist {
		r.rec = acceptRec{slot: m.Slot, b: m.Ballot, cmds: m.Cmds}
		protocols.PersistRecord(r.env, &r.rec)
		r.rec = acceptRec{}
	}
	r.env.Send(from, AcceptOK{Ballot: m.Ballot, Slot: m.Slot})
	if from != r.self {
		r.handleCommit(from, m.Ballot, m.Commit)
	}
}

func (r *Replica) handleAcceptOK(from protocols.NodeID, m AcceptOK) {
	if r.role != leader || m.Ballot != r.ballot || r.at(m.Slot) == nil {
		return
	}
	p := r.inflight[m.Slot]
	if p == nil || !p.acks.Add(from) || !p.acks.Reached() {
		return
	}
	delete(r.inflight, m.Slot)
	r.spare = append(r.spare, p)
	e := r.at(m.Slot)
	e.chosen = true
	failpoint.Inject("executeOutOfOrder", func() {
		// Planted bug for the sabotage test: the leader executes a slot
		// as soon as it is chosen, before the slots ahead of it.
		for _, c := range e.cmds {
			if r.done.Add(c.ID) {
				r.env.Execute(c)
			}
		}
	})
	before, next := r.commit, r.next
	for e := r.at(r.commit + 1); e != nil && e.chosen; e = r.at(r.commit + 1) {
		r.commit++
	}
	r.execute()
	r.propose()
	// Followers learn the new commit point from the next Accept, which
	// carries it; when no Accept follows at once, tell them now, so that a
	// follower answers its own clients without waiting for a heartbeat.
	if r.commit > before && r.next == next {
		r.broadcast(Commit{Ballot: r.ballot, Commit: r.commit})
	}
}

// handleCommit learns that every slot up to upto is chosen and that entries
// accepted at b hold the chosen value; it asks for the values it lacks.
func (r *Replica) handleCommit(from protocols.NodeID, b ballot.Ballot, upto uint64) {
	if b.Less(r.promised) {
		return
	}
	if r.promised.Less(b) {
		r.observe(b)
		r.promised = b
		r.env.Persist(promiseRecord(b))
	}
	r.leaderID = b.Node
	r.heard = r.now
	if r.role == leader {
		return
	}
	for s := r.executed + 1; s <= upto && s <= r.lastSlot(); s++ {
		if e := r.at(s); e.bal == b {
			e.chosen = true
		}
	}
	r.execute()
	if r.firstUnchosen() <= upto && !r.catchingUp {
		r.catchingUp = true
		r.env.Send(from, CatchUpReq{From: r.firstUnchosen()})
	}
}

func (r *Replica) handleCatchUpReq(from protocols.NodeID, m CatchUpReq) {
	if max(m.From, 1) <= r.base {
		// The requested slots are compacted: they cannot be served from
		// the log any more (the catch-up rule in the package doc); the
		// requester gets the state of the newest checkpoint instead.
		r.sendSnapshot(from, max(m.From, 1))
		return
	}
	var chosen []Accepted
	for s := max(m.From, 1); s <= r.lastSlot() && len(chosen) < maxCatchUp; s++ {
		if e := r.at(s); e.chosen {
			chosen = append(chosen, Accepted{Slot: s, Cmds: e.cmds})
		} else {
			break
		}
	}
	if len(chosen) > 0 {
		r.env.Send(from, CatchUp{Chosen: chosen})
	}
}

func (r *Replica) handleCatchUp(from protocols.NodeID, m CatchUp) {
	r.catchingUp = false
	for _, a := range m.Chosen {
		if a.Slot <= r.base || a.Slot > r.firstUnchosen()+maxAhead {
			continue
		}
		if e := r.entry(a.Slot); !e.chosen {
			e.cmds, e.chosen = a.Cmds, true
		}
	}
	r.execute()
	if len(m.Chosen) == maxCatchUp {
		r.catchingUp = true
		r.env.Send(from, CatchUpReq{From: r.firstUnchosen()})
	}
}

// execute runs chosen slots in order, each command at most once.
func (r *Replica) execute() {
	for e := r.at(r.executed + 1); e != nil && e.chosen; e = r.at(r.executed + 1) {
		for _, c := range e.cmds {
			if r.done.Add(c.ID) {
				if len(r.proposed) > 0 { // only a leader proposes
					delete(r.proposed, c.ID)
				}
				r.env.Execute(c)
			}
		}
		r.executed++
	}
}

func (r *Replica) heartbeat() {
	r.lastBeat = r.now
	r.broadcast(Commit{Ballot: r.ballot, Commit: r.commit})
}

// Tick implements protocols.Protocol.
func (r *Replica) Tick() {
	r.now++
	r.catchingUp = false
	beat := max(1, r.cfg.SuspectTicks/3)
	switch r.role {
	case leader:
		if r.now-r.lastBeat >= beat {
			r.heartbeat()
			r.retransmit(2 * beat)
		}
	case candidate:
		if r.now-r.heard >= r.timeout {
			r.campaign()
		} else if r.now-r.lastBeat >= beat {
			r.lastBeat = r.now
			for _, p := range r.cfg.Peers {
				if p != r.self && !r.promises.Has(p) {
					r.env.Send(p, Prepare{Ballot: r.ballot, From: r.prepFrom})
				}
			}
		}
	case follower:
		if r.now-r.heard >= r.timeout {
			r.campaign()
		}
	}
	// Commands submitted here and not executed after a suspicion period go
	// to the leader again: the forward, the leader or the proposal may have
	// been lost.
	if len(r.submitted) > 0 {
		r.submitted = slices.DeleteFunc(r.submitted, func(w waiting) bool { return r.done.Has(w.cmd.ID) })
	}
	var retry []protocols.Command
	for i := range r.submitted {
		if w := &r.submitted[i]; r.now-w.at >= r.cfg.SuspectTicks {
			w.at = r.now
			if r.role == leader {
				delete(r.proposed, w.cmd.ID)
			}
			retry = append(retry, w.cmd)
		}
	}
	if len(retry) > 0 {
		r.route(retry)
	}
}

// retransmit resends Accepts that have waited age ticks to the acceptors
// that have not answered.
func (r *Replica) retransmit(age int) {
	for s := r.commit + 1; s < r.next && s <= r.lastSlot(); s++ {
		pr := r.inflight[s]
		e := r.at(s)
		if pr == nil || e == nil || r.now-pr.sentAt < age {
			continue
		}
		pr.sentAt = r.now
		m := Accept{Ballot: r.ballot, Slot: s, Cmds: e.cmds, Commit: r.commit}
		for _, p := range r.cfg.Peers {
			if !pr.acks.Has(p) {
				r.env.Send(p, m)
			}
		}
	}
}
