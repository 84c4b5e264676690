package wbcast

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/pingcap/failpoint"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/protocols/quorum"
)

func init() {
	protocols.Register("wbcast", func(cfg protocols.Config) (protocols.Protocol, error) {
		return New(cfg)
	}, Codec{})
}

const (
	// maxCatchUp bounds the deliveries sent for one CatchUpReq.
	maxCatchUp = 64
	// maxBuffered bounds how far ahead of its deliveries a follower buffers
	// a Deliver.
	maxBuffered = 1 << 12
)

type status uint8

const (
	follower status = iota
	recovering
	leader
)

type phase uint8

const (
	phStart     phase = iota // known, not accepted from every destination group
	phAccepted               // an ACCEPT from every destination group recorded
	phCommitted              // the leader saw a majority of each group acknowledge
)

// msg is the state of one undelivered message at a process. Slices are
// indexed like dest.
type msg struct {
	cmd   protocols.Command
	dest  []protocols.GroupID // increasing
	have  []bool              // an ACCEPT from dest[i] is recorded
	lts   []mcast.TS
	bals  []ballot.Ballot
	gts   mcast.TS
	phase phase

	// Leader bookkeeping: the ballot vector being counted, its gts and the
	// acknowledgers per destination group.
	ackBals []ballot.Ballot
	ackGTS  mcast.TS
	acks    []quorum.Tracker
	sentAt  int // tick of the last (re)transmission of its ACCEPT
}

// done is what a process keeps of a delivered message (garbage collection
// drops the leader bookkeeping): enough to acknowledge a late ACCEPT of
// another group, and for a leader to re-send its group's ACCEPT (same local
// timestamp, current ballot) to a group that has not committed it yet.
type done struct {
	cmd    protocols.Command
	ownLTS mcast.TS
	dest   []protocols.GroupID
	have   []bool
	lts    []mcast.TS
	bals   []ballot.Ballot
	gts    mcast.TS
}

// mine is a command submitted at this replica and not yet delivered here.
type mine struct {
	cmd    protocols.Command
	sentAt int
}

// Replica is one white-box atomic multicast process. It is a
// protocols.Protocol and a protocols.LeaderReporter.
type Replica struct {
	cfg     protocols.Config
	env     protocols.Env
	self    protocols.NodeID
	group   protocols.GroupID
	members []protocols.NodeID // of own group, in configuration order
	groupOf map[protocols.NodeID]protocols.GroupID
	suspect int

	status           status
	cballot, aballot ballot.Ballot
	clock            uint64

	msgs      map[protocols.CommandID]*msg
	delivered []Delivered // this group's deliveries base+1, base+2, ... as known here
	base      uint64      // deliveries dropped from the front of delivered
	done      map[protocols.CommandID]*done
	buffer    map[uint64]Deliver

	// Compaction (see the package doc): the last delivery, the ids
	// forgotten at checkpoints (oldest first, at most maxTombstones), and
	// the delivery progress announced by the other replicas.
	lastGTS    mcast.TS
	lastID     protocols.CommandID
	tomb       map[protocols.CommandID]struct{}
	tombQ      []protocols.CommandID
	tombEnc    []byte // tombQ encoded
	compacting bool
	prog       map[protocols.NodeID]Progress
	progSent   uint64
	progAt     int

	// Leader change (candidate side).
	nlFrom    uint64
	nlAcks    map[protocols.NodeID]NewLeaderAck
	syncing   bool
	syncAcks  quorum.Tracker
	candSince int

	ticks, lastHeard, lastReq int
	mustCampaign              bool
	replayed                  uint64 // deliveries executed so far (recovered ones are executed by replay)
	mine                      map[protocols.CommandID]*mine
	hint                      map[protocols.GroupID]protocols.NodeID
}

// New returns a white-box multicast process. cfg.Groups must hold the
// groups, each of 2f+1 members, and cfg.GroupOf map keys to groups.
func New(cfg protocols.Config) (*Replica, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.GroupOf == nil || len(cfg.Groups) == 0 {
		cfg.Groups = map[protocols.GroupID][]protocols.NodeID{0: cfg.Peers}
		cfg.GroupOf = func(string) protocols.GroupID { return 0 }
	}
	r := &Replica{
		cfg: cfg, env: cfg.Env, self: cfg.Self, suspect: cfg.SuspectTicks,
		groupOf: map[protocols.NodeID]protocols.GroupID{},
		msgs:    map[protocols.CommandID]*msg{}, done: map[protocols.CommandID]*done{},
		buffer: map[uint64]Deliver{}, mine: map[protocols.CommandID]*mine{},
		hint: map[protocols.GroupID]protocols.NodeID{},
		tomb: map[protocols.CommandID]struct{}{}, prog: map[protocols.NodeID]Progress{},
	}
	found := false
	for _, g := range slices.Sorted(maps.Keys(cfg.Groups)) {
		ms := cfg.Groups[g]
		if len(ms) == 0 {
			return nil, fmt.Errorf("%w: wbcast: group %d is empty", protocols.ErrConfig, g)
		}
		r.hint[g] = ms[0]
		for _, p := range ms {
			if _, dup := r.groupOf[p]; dup {
				return nil, fmt.Errorf("%w: wbcast: node %d in two groups", protocols.ErrConfig, p)
			}
			r.groupOf[p] = g
			if p == cfg.Self {
				r.group, r.members, found = g, ms, true
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: wbcast: node %d in no group", protocols.ErrConfig, cfg.Self)
	}
	r.cballot = ballot.Ballot{Round: 0, Node: r.members[0]}
	r.aballot = r.cballot
	if cfg.Recovered == nil && cfg.Checkpoint == nil {
		if r.members[0] == r.self {
			r.status = leader
		}
		return r, nil
	}
	if cfg.Checkpoint != nil {
		if err := r.restore(cfg.Checkpoint); err != nil {
			return nil, err
		}
	}
	if err := r.recover(cfg.Recovered); err != nil {
		return nil, err
	}
	if r.aballot != r.cballot {
		r.status = recovering
	}
	// A process never resumes leading a ballot it led before a crash: its
	// bookkeeping is gone. It starts a new ballot instead.
	r.mustCampaign = r.cballot.Node == r.self

	return r, nil
}

// Leader implements protocols.LeaderReporter: this process if it leads its
// group, else the owner of its current ballot once it follows it, else 0.
func (r *Replica) Leader() protocols.NodeID {
	switch r.status {
	case leader:
		return r.self
	case follower:
		return r.cballot.Node
	}
	return 0
}

func (r *Replica) majority() int { return quorum.Majority(len(r.members)) }

// dests returns the destination groups of c: the groups of its keys.
func (r *Replica) dests(c protocols.Command) []protocols.GroupID {
	return mcast.Destinations(&r.cfg, r.group, c)
}

// get returns the state of c's message, creating it.
func (r *Replica) get(c protocols.Command) *msg {
	if m, ok := r.msgs[c.ID]; ok {
		return m
	}
	d := r.dests(c)
	m := &msg{cmd: c, dest: d, have: make([]bool, len(d)), lts: make([]mcast.TS, len(d)), bals: make([]ballot.Ballot, len(d))}
	r.msgs[c.ID] = m
	return m
}

func (r *Replica) sortedIDs() []protocols.CommandID {
	ids := slices.Collect(maps.Keys(r.msgs))
	slices.SortFunc(ids, func(a, b protocols.CommandID) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	return ids
}

// count is the number of deliveries of this group's sequence held here.
func (r *Replica) count() uint64 { return r.base + uint64(len(r.delivered)) }

// at returns the delivery at position pos (1-based, base < pos <= count).
func (r *Replica) at(pos uint64) Delivered { return r.delivered[pos-1-r.base] }

// since returns the deliveries after position from (base <= from).
func (r *Replica) since(from uint64) []Delivered { return r.delivered[from-r.base:] }

// finished reports whether the message id was delivered here: it is in
// done, or was forgotten at a checkpoint (a tombstone).
func (r *Replica) finished(id protocols.CommandID) bool {
	if _, ok := r.done[id]; ok {
		return true
	}
	_, ok := r.tomb[id]
	return ok
}

// replay executes the deliveries recovered from the records, in order,
// before anything else happens in this incarnation.
func (r *Replica) replay() {
	for ; r.replayed < r.count(); r.replayed++ {
		r.env.Execute(r.at(r.replayed + 1).Cmd)
	}
}

// Submit implements protocols.Protocol: the command is multicast to the
// leaders of its destination groups.
func (r *Replica) Submit(c protocols.Command) {
	r.replay()
	if r.finished(c.ID) {
		protocols.AlreadyExecuted(r.env, c)
		return
	}
	r.mine[c.ID] = &mine{cmd: c, sentAt: r.ticks}
	for _, g := range r.dests(c) {
		if g == r.group && r.status == leader {
			r.propose(c)
			continue
		}
		to := r.hint[g]
		if g == r.group {
			to = r.cballot.Node
		}
		r.env.Send(to, Multicast{Cmd: c})
	}
}

// Step implements protocols.Protocol.
func (r *Replica) Step(from protocols.NodeID, m protocols.Message) {
	r.replay()
	if _, ok := r.groupOf[from]; !ok || !r.plausible(m) {
		return
	}
	switch m := m.(type) {
	case Multicast:
		r.handleMulticast(from, m)
	case Accept:
		r.handleAccept(from, m)
	case AcceptAck:
		r.handleAcceptAck(from, m)
	case Deliver:
		r.handleDeliver(from, m)
	case Heartbeat:
		r.handleHeartbeat(from, m)
	case CatchUpReq:
		r.handleCatchUpReq(from, m)
	case NewLeader:
		r.handleNewLeader(from, m)
	case NewLeaderAck:
		r.handleNewLeaderAck(from, m)
	case NewLeaderSync:
		r.handleNewLeaderSync(from, m)
	case NewLeaderSyncAck:
		r.handleNewLeaderSyncAck(from, m)
	case SyncReq:
		r.handleSyncReq(from, m)
	case Progress:
		if cur, ok := r.prog[from]; !ok || cur.Count < m.Count {
			r.prog[from] = m
		}
	}
}

// plausible reports whether an honest peer could have sent m: every
// ballot in it is owned by a replica of the deployment and not absurdly
// far ahead of this process's (ballot.Plausible; a record's or an ack's
// ballot may also be zero, for a group not yet accepted). A message with
// plausible fields but a lie in them cannot be told from a real one: see
// "Hostile input" in package protocols.
func (r *Replica) plausible(m protocols.Message) bool {
	cur := ballot.Max(r.cballot, r.aballot)
	ok := func(b ballot.Ballot) bool { return ballot.Plausible(b, cur, r.cfg.Peers) }
	okOrZero := func(b ballot.Ballot) bool { return b.IsZero() || ok(b) }
	records := func(rs []Record) bool {
		for _, rec := range rs {
			if !slices.ContainsFunc(rec.Bals, func(b ballot.Ballot) bool { return !okOrZero(b) }) {
				continue
			}
			return false
		}
		return true
	}
	switch m := m.(type) {
	case Accept:
		return ok(m.Ballot)
	case AcceptAck:
		return !slices.ContainsFunc(m.Bals, func(b ballot.Ballot) bool { return !okOrZero(b) })
	case Deliver:
		return ok(m.Ballot)
	case Heartbeat:
		return ok(m.Ballot)
	case NewLeader:
		return ok(m.Ballot)
	case NewLeaderAck:
		return ok(m.Ballot) && okOrZero(m.ABallot) && records(m.Records)
	case NewLeaderSync:
		return ok(m.Ballot) && records(m.Records)
	case NewLeaderSyncAck:
		return ok(m.Ballot)
	case SyncReq:
		return ok(m.Ballot)
	}
	return true
}

func (r *Replica) handleMulticast(from protocols.NodeID, m Multicast) {
	if _, old := r.tomb[m.Cmd.ID]; old || !slices.Contains(r.dests(m.Cmd), r.group) {
		return
	}
	if d, ok := r.done[m.Cmd.ID]; ok {
		// Another destination group still orders it (its leader changed
		// and lost our ACCEPT): re-send ours, at our current ballot.
		if r.status == leader && d.ownLTS != (mcast.TS{}) {
			a := Accept{Group: r.group, Ballot: r.cballot, LTS: d.ownLTS, Cmd: d.cmd}
			r.acceptDelivered(d, a)
			for _, g := range d.dest {
				for _, p := range r.cfg.Groups[g] {
					if p != r.self {
						r.env.Send(p, a)
					}
				}
			}
			return
		}
	} else if r.status == leader {
		r.propose(m.Cmd)
		return
	}
	// A follower forwards a request from outside its group to its leader.
	if r.status == follower && r.groupOf[from] != r.group && r.cballot.Node != r.self {
		r.env.Send(r.cballot.Node, m)
	}
}

// propose assigns c a local timestamp (or reuses the one it has in this
// ballot) and sends ACCEPT to every member of every destination group.
func (r *Replica) propose(c protocols.Command) {
	m := r.get(c)
	i := slices.Index(m.dest, r.group)
	if !m.have[i] || m.bals[i] != r.cballot {
		r.clock++
		m.lts[i] = mcast.TS{Counter: r.clock, Group: r.group}
	}
	r.sendAccept(m, Accept{Group: r.group, Ballot: r.cballot, LTS: m.lts[i], Cmd: c})
}

// sendAccept applies a to this process first, then sends it to the other
// members of m's destination groups.
func (r *Replica) sendAccept(m *msg, a Accept) {
	m.sentAt = r.ticks
	r.handleAccept(r.self, a)
	for _, g := range m.dest {
		for _, p := range r.cfg.Groups[g] {
			if p != r.self {
				r.env.Send(p, a)
			}
		}
	}
}

func (r *Replica) handleAccept(from protocols.NodeID, a Accept) {
	if d, ok := r.done[a.Cmd.ID]; ok {
		r.acceptDelivered(d, a)
		return
	}
	if _, old := r.tomb[a.Cmd.ID]; old || r.status == recovering {
		return
	}
	if a.Group == r.group && a.Ballot != r.cballot {
		return
	}
	if r.groupOf[a.Ballot.Node] != a.Group || from != a.Ballot.Node && from != r.self {
		return
	}
	m := r.get(a.Cmd)
	i := slices.Index(m.dest, a.Group)
	if i < 0 || !slices.Contains(m.dest, r.group) {
		delete(r.msgs, a.Cmd.ID)
		return
	}
	if m.have[i] && a.Ballot.Less(m.bals[i]) {
		return
	}
	changed := !m.have[i] || m.bals[i] != a.Ballot || m.lts[i] != a.LTS
	m.have[i], m.bals[i], m.lts[i] = true, a.Ballot, a.LTS
	if a.Group != r.group {
		r.hint[a.Group] = a.Ballot.Node
	}
	r.vouch(m, changed)
}

// vouch moves m to ACCEPTED once an ACCEPT of every destination group is
// recorded, persists it if it changed, and acknowledges it to the
// destination leaders.
func (r *Replica) vouch(m *msg, changed bool) {
	if slices.Contains(m.have, false) {
		return
	}
	gts := slices.MaxFunc(m.lts, func(a, b mcast.TS) int { return cmpTS(a, b) })
	if m.phase < phCommitted {
		m.phase, m.gts = phAccepted, gts
	}
	r.clock = max(r.clock, m.gts.Counter)
	persist := changed
	failpoint.Inject("ackBeforePersist", func() {
		// Planted bug for the sabotage test: a replica acknowledges
		// ACCEPTs it never made durable; a crash forgets its vote.
		persist = false
	})
	if persist {
		r.env.Persist(acceptRecord(m))
	}
	ack := AcceptAck{ID: m.cmd.ID, Group: r.group, Bals: slices.Clone(m.bals), GTS: m.gts}
	// The ack to itself goes through the runtime too, so that it counts
	// only once the record is durable.
	for _, b := range m.bals {
		r.env.Send(b.Node, ack)
	}
}

// acceptDelivered acknowledges a late ACCEPT of a delivered message with
// its committed global timestamp.
func (r *Replica) acceptDelivered(d *done, a Accept) {
	i := slices.Index(d.dest, a.Group)
	if i < 0 || (d.have[i] && a.Ballot.Less(d.bals[i])) || (a.Group == r.group && a.Ballot != r.cballot) {
		return
	}
	d.have[i], d.bals[i], d.lts[i] = true, a.Ballot, a.LTS
	if slices.Contains(d.have, false) {
		return
	}
	ack := AcceptAck{ID: a.Cmd.ID, Group: r.group, Bals: slices.Clone(d.bals), GTS: d.gts}
	for _, b := range d.bals {
		r.env.Send(b.Node, ack)
	}
}

func (r *Replica) handleAcceptAck(from protocols.NodeID, a AcceptAck) {
	if r.status != leader {
		return
	}
	m, ok := r.msgs[a.ID]
	if !ok || m.phase == phCommitted || len(a.Bals) != len(m.dest) {
		return
	}
	own := slices.Index(m.dest, r.group)
	j := slices.Index(m.dest, r.groupOf[from])
	if j < 0 || a.Bals[own] != r.cballot || a.Group != m.dest[j] {
		return
	}
	if m.ackBals != nil && a.Bals[own] == m.ackBals[own] {
		lower, higher := false, false
		for k := range a.Bals {
			lower = lower || a.Bals[k].Less(m.ackBals[k])
			higher = higher || m.ackBals[k].Less(a.Bals[k])
		}
		if lower {
			return
		}
		if higher {
			m.ackBals = nil
		}
	}
	if m.ackBals == nil || a.Bals[own] != m.ackBals[own] {
		m.ackBals, m.ackGTS = slices.Clone(a.Bals), a.GTS
		m.acks = make([]quorum.Tracker, len(m.dest))
		for k, g := range m.dest {
			m.acks[k] = quorum.NewTracker(quorum.Majority(len(r.cfg.Groups[g])))
		}
	}
	if a.GTS != m.ackGTS {
		return
	}
	m.acks[j].Add(from)
	for k := range m.acks {
		if !m.acks[k].Reached() {
			return
		}
	}
	m.phase, m.gts = phCommitted, m.ackGTS
	// No later local timestamp of this group may fall below a committed
	// global one.
	r.clock = max(r.clock, m.gts.Counter)
	r.tryDeliver()
}

func cmpTS(a, b mcast.TS) int {
	if a == b {
		return 0
	}
	if a.Less(b) {
		return -1
	}
	return 1
}

// tryDeliver delivers, at the leader, the committed messages in global
// timestamp order as long as no pending message of this group could still
// be ordered before them (Skeen's rule).
func (r *Replica) tryDeliver() {
	for r.status == leader {
		var next *msg
		for _, m := range r.msgs {
			if m.phase == phCommitted && (next == nil || mcast.Before(m.gts, m.cmd.ID, next.gts, next.cmd.ID)) {
				next = m
			}
		}
		if next == nil {
			return
		}
		blocked, wait := false, true
		failpoint.Inject("deliverWithoutWaiting", func() {
			// Planted bug for the sabotage test: ignore the pending
			// messages that could still get a smaller timestamp.
			wait = false
		})
		for _, p := range r.msgs {
			if !wait || p.phase == phCommitted || p == next {
				continue
			}
			i := slices.Index(p.dest, r.group)
			if p.have[i] && p.bals[i] == r.cballot && mcast.Before(p.lts[i], p.cmd.ID, next.gts, next.cmd.ID) {
				blocked = true
				break
			}
		}
		if blocked {
			return
		}
		r.deliver(Delivered{Cmd: next.cmd, GTS: next.gts, LTS: next.lts[slices.Index(next.dest, r.group)]}, true)
	}
}

// deliver appends d to the delivery sequence and executes it; a leader
// tells its followers.
func (r *Replica) deliver(d Delivered, tell bool) {
	id := d.Cmd.ID
	r.delivered = append(r.delivered, d)
	dn := &done{gts: d.GTS, cmd: d.Cmd, ownLTS: d.LTS}
	if m, ok := r.msgs[id]; ok {
		dn.dest, dn.have, dn.lts, dn.bals = m.dest, m.have, m.lts, m.bals
		delete(r.msgs, id)
	} else {
		dn.dest = r.dests(d.Cmd)
		dn.have, dn.lts, dn.bals = make([]bool, len(dn.dest)), make([]mcast.TS, len(dn.dest)), make([]ballot.Ballot, len(dn.dest))
	}
	r.done[id] = dn
	r.lastGTS, r.lastID = d.GTS, id
	delete(r.mine, id)
	r.clock = max(r.clock, d.GTS.Counter)
	r.env.Persist(deliverRecord(r.count(), d))
	r.replayed = r.count()
	r.env.Execute(d.Cmd)
	if tell {
		out := Deliver{Ballot: r.cballot, Pos: r.count(), GTS: d.GTS, LTS: d.LTS, Cmd: d.Cmd}
		for _, p := range r.members {
			if p != r.self {
				r.env.Send(p, out)
			}
		}
	}
}

func (r *Replica) handleDeliver(from protocols.NodeID, d Deliver) {
	if r.groupOf[from] != r.group || d.Pos == 0 {
		return
	}
	if d.Ballot == r.cballot {
		r.lastHeard = r.ticks
	}
	n := r.count()
	switch {
	case d.Pos <= n:
		return
	case d.Pos > n+1:
		if d.Pos <= n+maxBuffered {
			r.buffer[d.Pos] = d
		}
		return
	}
	r.deliver(Delivered{Cmd: d.Cmd, GTS: d.GTS, LTS: d.LTS}, false)
	for {
		nx, ok := r.buffer[r.count()+1]
		if !ok {
			break
		}
		delete(r.buffer, nx.Pos)
		if !r.finished(nx.Cmd.ID) {
			r.deliver(Delivered{Cmd: nx.Cmd, GTS: nx.GTS, LTS: nx.LTS}, false)
		}
	}
	for p := range r.buffer {
		if p <= r.count() {
			delete(r.buffer, p)
		}
	}
}

func (r *Replica) handleHeartbeat(from protocols.NodeID, h Heartbeat) {
	if r.groupOf[from] != r.group || h.Ballot.Node != from {
		return
	}
	switch {
	case h.Ballot.Less(r.cballot):
		return
	case r.cballot.Less(h.Ballot) || r.status == recovering && r.aballot != h.Ballot && !r.syncing:
		// This process missed a leader change: ask for the leader's state.
		if r.ticks-r.lastReq >= 2 {
			r.lastReq = r.ticks
			r.env.Send(from, SyncReq{Ballot: h.Ballot, From: r.count()})
		}
		return
	}
	r.lastHeard = r.ticks
	if h.Delivered > r.count() && r.ticks-r.lastReq >= 2 {
		r.lastReq = r.ticks
		r.env.Send(from, CatchUpReq{From: r.count() + 1})
	}
}

func (r *Replica) handleCatchUpReq(from protocols.NodeID, c CatchUpReq) {
	if r.status != leader || r.groupOf[from] != r.group || c.From == 0 {
		return
	}
	// Deliveries up to base were dropped at a checkpoint: every member
	// announced that it holds them, so no member asks for them.
	for p := max(c.From, r.base+1); p <= r.count() && p < c.From+maxCatchUp; p++ {
		d := r.at(p)
		r.env.Send(from, Deliver{Ballot: r.cballot, Pos: p, GTS: d.GTS, LTS: d.LTS, Cmd: d.Cmd})
	}
}

// records returns the undelivered messages this process accepted, or, for
// a leader, also those it proposed in its ballot, as records.
func (r *Replica) records(leaderView bool) []Record {
	var out []Record
	for _, id := range r.sortedIDs() {
		m := r.msgs[id]
		i := slices.Index(m.dest, r.group)
		ok := m.phase >= phAccepted || leaderView && m.have[i] && m.bals[i] == r.cballot
		if !ok {
			continue
		}
		rec := Record{Cmd: m.cmd, LTS: slices.Clone(m.lts), Bals: slices.Clone(m.bals), GTS: m.gts}
		for k := range m.have {
			if !m.have[k] {
				rec.Bals[k], rec.LTS[k] = ballot.Ballot{}, mcast.TS{}
			}
		}
		out = append(out, rec)
	}
	return out
}

// campaign starts a leader change to a ballot owned by this process.
func (r *Replica) campaign() {
	b := ballot.Ballot{Round: r.cballot.Round + 1, Node: r.self}
	r.cballot, r.status, r.syncing = b, recovering, false
	r.env.Persist(ballotRecord(b))
	r.candSince, r.lastHeard = r.ticks, r.ticks
	r.nlFrom = r.count()
	r.nlAcks = map[protocols.NodeID]NewLeaderAck{r.self: {Ballot: b, ABallot: r.aballot, Clock: r.clock, Count: r.nlFrom, Records: r.records(false)}}
	for _, p := range r.members {
		if p != r.self {
			r.env.Send(p, NewLeader{Ballot: b, From: r.nlFrom})
		}
	}
	r.maybeMerge()
}

func (r *Replica) handleNewLeader(from protocols.NodeID, n NewLeader) {
	if r.groupOf[from] != r.group || n.Ballot.Node != from || n.Ballot.Less(r.cballot) {
		return
	}
	if n.Ballot == r.cballot && r.status != recovering {
		return
	}
	if r.cballot != n.Ballot {
		r.cballot, r.status, r.syncing, r.nlAcks = n.Ballot, recovering, false, nil
		r.env.Persist(ballotRecord(n.Ballot))
	}
	r.lastHeard = r.ticks
	if n.From < r.base {
		// The candidate lacks deliveries this process dropped at a
		// checkpoint; every member announced them, so this does not
		// happen. Without them the ack would be incomplete: keep silent.
		return
	}
	ack := NewLeaderAck{Ballot: n.Ballot, ABallot: r.aballot, Clock: r.clock, Count: r.count(), Records: r.records(false)}
	if n.From < r.count() {
		ack.Delivered = slices.Clone(r.since(n.From))
	}
	r.env.Send(from, ack)
}

func (r *Replica) handleNewLeaderAck(from protocols.NodeID, a NewLeaderAck) {
	if r.status != recovering || r.syncing || r.nlAcks == nil || a.Ballot != r.cballot || r.groupOf[from] != r.group {
		return
	}
	r.nlAcks[from] = a

	r.maybeMerge()
}

// maybeMerge completes phase one of a leader change once a majority
// answered: it adopts the longest delivery sequence reported, merges the
// accepted records of the replies with the highest aballot (per message and
// destination group the entry of the highest ballot, so a message accepted
// by any majority is kept), installs the result and sends it to the group.
func (r *Replica) maybeMerge() {
	if len(r.nlAcks) < r.majority() {
		return
	}
	b := r.cballot
	var longest []Delivered
	maxA := ballot.Ballot{}
	clock := r.clock
	syncFrom := r.nlFrom
	for _, p := range slices.Sorted(maps.Keys(r.nlAcks)) {
		a := r.nlAcks[p]
		syncFrom = min(syncFrom, a.Count)
		if len(a.Delivered) > len(longest) {
			longest = a.Delivered
		}
		maxA = ballot.Max(maxA, a.ABallot)
		clock = max(clock, a.Clock)
	}
	for i, d := range longest {
		if r.nlFrom+uint64(i) >= r.count() {
			if !r.finished(d.Cmd.ID) {
				r.deliver(d, false)
			}
		}
	}
	merged := map[protocols.CommandID]*Record{}
	var order []protocols.CommandID
	for _, p := range slices.Sorted(maps.Keys(r.nlAcks)) {
		a := r.nlAcks[p]
		if a.ABallot != maxA {
			continue
		}
		for _, rec := range a.Records {
			if r.finished(rec.Cmd.ID) {
				continue
			}
			cur, ok := merged[rec.Cmd.ID]
			if !ok || len(cur.Bals) != len(rec.Bals) {
				if !ok {
					order = append(order, rec.Cmd.ID)
				}
				c := rec
				c.LTS, c.Bals = slices.Clone(rec.LTS), slices.Clone(rec.Bals)
				merged[rec.Cmd.ID] = &c
				continue
			}
			for k := range rec.Bals {
				if cur.Bals[k].Less(rec.Bals[k]) {
					cur.Bals[k], cur.LTS[k] = rec.Bals[k], rec.LTS[k]
				}
			}
		}
	}
	recs := make([]Record, 0, len(order))
	for _, id := range order {
		rec := merged[id]
		for _, t := range rec.LTS {
			rec.GTS = slices.MaxFunc([]mcast.TS{rec.GTS, t}, cmpTS)
		}
		clock = max(clock, rec.GTS.Counter)
		recs = append(recs, *rec)
	}
	slices.SortFunc(recs, func(x, y Record) int {
		return cmp.Or(cmp.Compare(x.Cmd.ID.Client, y.Cmd.ID.Client), cmp.Compare(x.Cmd.ID.Seq, y.Cmd.ID.Seq))
	})
	r.nlAcks = nil
	r.syncing = true
	r.applySync(b, clock, 0, nil, recs)
	r.syncAcks = quorum.NewTracker(r.majority())
	r.syncAcks.Add(r.self)
	// The deliveries some acknowledger lacks travel with the state, so that
	// a majority holds every delivery before this process leads.
	syncFrom = max(min(syncFrom, r.count()), r.base)
	s := NewLeaderSync{Ballot: b, Clock: clock, From: syncFrom, Delivered: slices.Clone(r.since(syncFrom)), Records: recs}
	for _, p := range r.members {
		if p != r.self {
			r.env.Send(p, s)
		}
	}
	if r.syncAcks.Reached() {
		r.becomeLeader()
	}
}

// applySync installs the state of ballot b's leader: own-group ACCEPTs of
// older ballots are forgotten and the records adopted. It persists before
// the caller acknowledges.
func (r *Replica) applySync(b ballot.Ballot, clock uint64, from uint64, dl []Delivered, recs []Record) {
	for i, d := range dl {
		if from+uint64(i) == r.count() {
			if !r.finished(d.Cmd.ID) {
				r.deliver(d, false)
			}
		}
	}
	r.cballot, r.aballot = b, b
	r.clock = max(r.clock, clock)
	r.env.Persist(syncRecord(b, r.clock))
	r.forgetOwn()

	for _, rec := range recs {
		if r.finished(rec.Cmd.ID) {
			continue
		}
		if !slices.Contains(r.dests(rec.Cmd), r.group) {
			continue // not this group's: a buggy peer's record
		}
		m := r.get(rec.Cmd)
		if len(rec.Bals) != len(m.dest) || len(rec.LTS) != len(m.dest) {
			continue
		}
		changed := r.adopt(m, rec)
		if changed {
			r.env.Persist(acceptRecord(m))
		}
	}
}

// forgetOwn drops the own-group ACCEPTs of undelivered messages.
func (r *Replica) forgetOwn() {
	for _, m := range r.msgs {
		i := slices.Index(m.dest, r.group)
		m.have[i], m.bals[i], m.lts[i] = false, ballot.Ballot{}, mcast.TS{}
		m.phase, m.gts, m.ackBals, m.acks = phStart, mcast.TS{}, nil, nil
	}
}

// adopt merges rec into m (per group, the entry of the higher ballot) and
// reports whether m changed.
func (r *Replica) adopt(m *msg, rec Record) bool {
	changed := false
	for k := range rec.Bals {
		if rec.Bals[k].IsZero() {
			continue
		}
		if !m.have[k] || m.bals[k].Less(rec.Bals[k]) {
			m.have[k], m.bals[k], m.lts[k] = true, rec.Bals[k], rec.LTS[k]
			changed = true
		}
	}
	if !slices.Contains(m.have, false) {
		m.phase = phAccepted
		m.gts = slices.MaxFunc(m.lts, cmpTS)
		r.clock = max(r.clock, m.gts.Counter)
	}
	return changed
}

func (r *Replica) handleNewLeaderSync(from protocols.NodeID, s NewLeaderSync) {
	if r.groupOf[from] != r.group || s.Ballot.Node != from || s.Ballot.Less(r.cballot) || from == r.self {
		return
	}
	if !(s.Ballot == r.aballot && r.status == follower) {
		r.status, r.syncing, r.nlAcks = follower, false, nil
		r.applySync(s.Ballot, s.Clock, s.From, s.Delivered, s.Records)
	}
	r.lastHeard = r.ticks
	r.env.Send(from, NewLeaderSyncAck{Ballot: s.Ballot})
}

func (r *Replica) handleNewLeaderSyncAck(from protocols.NodeID, a NewLeaderSyncAck) {
	if r.status != recovering || !r.syncing || a.Ballot != r.cballot || r.groupOf[from] != r.group {
		return
	}
	r.syncAcks.Add(from)
	if r.syncAcks.Reached() {
		r.becomeLeader()
	}
}

func (r *Replica) handleSyncReq(from protocols.NodeID, s SyncReq) {
	if r.status != leader || s.Ballot != r.cballot || r.groupOf[from] != r.group {
		return
	}
	f := max(min(s.From, r.count()), r.base)
	r.env.Send(from, NewLeaderSync{Ballot: r.cballot, Clock: r.clock, From: f, Delivered: slices.Clone(r.since(f)), Records: r.records(true)})
}

// becomeLeader ends a leader change: every undelivered message known here is
// (re)proposed — recovered ones with their recovered local timestamp — and
// the other destination groups are asked to re-send their ACCEPTs.
func (r *Replica) becomeLeader() {
	r.status, r.syncing = leader, false
	r.heartbeat()
	for _, id := range r.sortedIDs() {
		m := r.msgs[id]
		i := slices.Index(m.dest, r.group)
		if m.have[i] {
			m.have[i] = false // so that the re-accept at the new ballot is persisted
			m.phase, m.ackBals, m.acks = phStart, nil, nil
			r.sendAccept(m, Accept{Group: r.group, Ballot: r.cballot, LTS: m.lts[i], Cmd: m.cmd})
		} else {
			r.propose(m.cmd)
		}
		if m, ok := r.msgs[id]; ok {
			r.reaccept(m)
		}
	}
	r.tryDeliver()
}

// reaccept asks the other destination groups of m to (re)send their ACCEPT.
func (r *Replica) reaccept(m *msg) {
	for _, g := range m.dest {
		if g == r.group {
			continue
		}
		for _, p := range r.cfg.Groups[g] {
			r.env.Send(p, Multicast{Cmd: m.cmd})
		}
	}
}

func (r *Replica) heartbeat() {
	h := Heartbeat{Ballot: r.cballot, Delivered: r.count()}
	for _, p := range r.members {
		if p != r.self {
			r.env.Send(p, h)
		}
	}
}

// Tick implements protocols.Protocol.
func (r *Replica) Tick() {
	r.replay()
	r.ticks++
	half := max(1, r.suspect/2)
	switch {
	case r.mustCampaign:
		r.mustCampaign = false
		r.campaign()
	case r.status == leader:
		r.heartbeat()
		if r.ticks%half == 0 {
			for _, id := range r.sortedIDs() {
				m := r.msgs[id]
				i := slices.Index(m.dest, r.group)
				if m.phase != phCommitted && m.have[i] && m.bals[i] == r.cballot && r.ticks-m.sentAt >= half {
					r.sendAccept(m, Accept{Group: r.group, Ballot: r.cballot, LTS: m.lts[i], Cmd: m.cmd})
					if m, ok := r.msgs[id]; ok {
						r.reaccept(m)
					}
				}
			}
		}
	case r.status == recovering && r.cballot.Node == r.self:
		if r.ticks-r.candSince > r.suspect {
			r.campaign()
		}
	default:
		rank := (slices.Index(r.members, r.self) - slices.Index(r.members, r.cballot.Node) - 1 + len(r.members)) % len(r.members)
		if r.ticks-r.lastHeard > r.suspect+rank*half {
			r.campaign()
		}
	}
	// Re-multicast this replica's own commands that are not delivered yet.
	if r.ticks%r.suspect == 0 {
		ids := slices.Collect(maps.Keys(r.mine))
		slices.SortFunc(ids, func(a, b protocols.CommandID) int {
			return cmp.Or(cmp.Compare(a.Client, b.Client), cmp.Compare(a.Seq, b.Seq))
		})
		for _, id := range ids {
			mn := r.mine[id]
			if r.ticks-mn.sentAt < r.suspect {
				continue
			}
			mn.sentAt = r.ticks
			for _, g := range r.dests(mn.cmd) {
				if g == r.group {
					if r.status == leader {
						r.propose(mn.cmd)
					} else if r.status == follower {
						r.env.Send(r.cballot.Node, Multicast{Cmd: mn.cmd})
					}
					continue
				}
				for _, p := range r.cfg.Groups[g] {
					r.env.Send(p, Multicast{Cmd: mn.cmd})
				}
			}
		}
	}
	r.announce()
}
