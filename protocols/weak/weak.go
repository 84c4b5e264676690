package weak

import (
	"fmt"

	"github.com/pingcap/failpoint"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/wire"
)

func init() {
	protocols.RegisterContract("weak", protocols.Weak, func(cfg protocols.Config) (protocols.Protocol, error) {
		return New(cfg)
	}, Codec{})
	protocols.RegisterContract("weak-merge", protocols.Merge, func(cfg protocols.Config) (protocols.Protocol, error) {
		return NewMerge(cfg)
	}, Codec{})
}

const (
	// aeTicks is the period of anti-entropy, in ticks.
	aeTicks = 3
	// aeBatch bounds the updates of one origin sent in answer to a Digest.
	aeBatch = 64
	// maxAhead bounds how far beyond the delivered prefix of an origin an
	// update is buffered; later ones are dropped (anti-entropy resends).
	maxAhead = 1024
	// maxClockAhead bounds how far beyond the receiver's Lamport time a
	// received stamp may be: honest clocks differ by at most the number of
	// updates.
	maxClockAhead = 1 << 40
)

// Replica is one replica of the weak strategy.
type Replica struct {
	cfg      protocols.Config
	env      protocols.Env
	readOnly func(protocols.Command) bool
	self     int // index of Self in Peers
	clock    uint64
	ticks    int
	// log[i] are the updates of origin Peers[i] delivered here and not
	// compacted, in sequence order (log[i][s-1-base[i]] has Seq s).
	log [][]Update
	// base[i] is the number of updates of origin Peers[i] compacted away
	// (merge mode): every peer has delivered them.
	base []uint64
	// peerHave[p][i] is the greatest number of origin Peers[i]'s updates
	// peer Peers[p] said (in a Digest) it delivered (merge mode).
	peerHave [][]uint64
	// ahead[i] buffers updates of origin Peers[i] beyond the delivered
	// prefix, by sequence number.
	ahead []map[uint64]Update
	// winner is, per key, the stamp of the last update executed on it.
	winner map[string]Stamp
	// own holds the ids of the commands submitted here and made updates,
	// so that a retry is not broadcast twice.
	own map[protocols.CommandID]bool
	// merge: every delivered update executes (protocol "weak-merge"),
	// not only those that win their key's arbitration.
	merge bool
}

// New builds a replica of the last-writer-wins strategy (protocol "weak")
// from cfg and replays cfg.Recovered.
func New(cfg protocols.Config) (*Replica, error) { return build(cfg, false) }

// NewMerge builds a replica of the merge strategy (protocol "weak-merge",
// contract protocols.Merge): as New, but every delivered update executes,
// once, in its origin's order, whatever its stamp; for state machines
// whose updates commute. It compacts its log (see MergeReplica).
func NewMerge(cfg protocols.Config) (*MergeReplica, error) {
	r, err := build(cfg, true)
	if err != nil {
		return nil, err
	}
	return &MergeReplica{r}, nil
}

// MergeReplica is a replica of the merge strategy. It forgets the updates
// every peer has delivered (stable: each peer's Digests say so) and
// implements protocols.Compactor: its checkpoint holds the number of
// updates delivered per origin, the Lamport clock and the updates not yet
// stable (which peers may still ask for); with the state machine's
// snapshot it replaces every record before it.
type MergeReplica struct{ *Replica }

// Checkpoint implements protocols.Compactor.
func (m *MergeReplica) Checkpoint() []byte {
	r := m.Replica
	b := wire.AppendUvarint(nil, r.clock)
	b = wire.AppendUvarint(b, uint64(len(r.log)))
	for i, l := range r.log {
		b = wire.AppendUvarint(b, r.delivered(i))
		b = wire.AppendUvarint(b, uint64(len(l)))
		for _, u := range l {
			b = appendUpdate(b, u)
		}
	}
	return b
}

// restore takes over a checkpoint written by Checkpoint: the delivered
// counts, the clock and the updates not stable then (not executed again:
// the state machine's snapshot reflects them).
func (r *Replica) restore(ck []byte) error {
	rd := wire.NewReader(ck)
	clock := rd.Uvarint()
	if n := rd.Count(1); rd.Err() == nil && n != len(r.log) {
		return fmt.Errorf("weak: checkpoint of %d origins, %d peers", n, len(r.log))
	}
	for i := range r.log {
		delivered := rd.Uvarint()
		n := rd.Count(4)
		if rd.Err() != nil {
			break
		}
		if uint64(n) > delivered {
			return fmt.Errorf("weak: checkpoint keeps %d updates of node %d, more than its %d", n, r.cfg.Peers[i], delivered)
		}
		r.base[i] = delivered - uint64(n)
		for k := range n {
			u := readUpdate(rd)
			if rd.Err() != nil {
				break
			}
			if u.Origin != r.cfg.Peers[i] || u.Stamp.Node != u.Origin || u.Seq != r.base[i]+uint64(k)+1 {
				return fmt.Errorf("weak: checkpoint: update %d of node %d out of sequence", u.Seq, u.Origin)
			}
			r.log[i] = append(r.log[i], u)
			r.clock = max(r.clock, u.Stamp.Time)
			if u.Origin == r.cfg.Self {
				r.own[u.Cmd.ID] = true
			}
		}
	}
	if err := rd.Done(); err != nil {
		return fmt.Errorf("weak: checkpoint: %w", err)
	}
	r.clock = max(r.clock, clock)
	return nil
}

// delivered returns the number of origin Peers[i]'s updates delivered here.
func (r *Replica) delivered(i int) uint64 { return r.base[i] + uint64(len(r.log[i])) }

// compact forgets, per origin, the updates that this replica and every
// peer have delivered (merge mode).
func (r *Replica) compact() {
	for i := range r.log {
		stable := r.delivered(i)
		for p := range r.peerHave {
			if p != r.self {
				stable = min(stable, r.peerHave[p][i])
			}
		}
		if stable > r.base[i] {
			r.log[i] = append([]Update(nil), r.log[i][stable-r.base[i]:]...)
			r.base[i] = stable
		}
	}
}

func build(cfg protocols.Config, merge bool) (*Replica, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ReadOnly == nil {
		// Without it a read would be broadcast as an update and win its
		// key's arbitration, so that an older write would be skipped at
		// some replicas and not at others.
		return nil, fmt.Errorf("%w: weak: Config.ReadOnly is needed to tell reads from blind writes", protocols.ErrConfig)
	}
	if cfg.Checkpoint != nil && !merge {
		return nil, fmt.Errorf("%w: weak: no checkpoints", protocols.ErrConfig)
	}
	n := len(cfg.Peers)
	r := &Replica{
		cfg: cfg, env: cfg.Env, readOnly: cfg.ReadOnly, self: cfg.Index(cfg.Self),
		log: make([][]Update, n), base: make([]uint64, n), ahead: make([]map[uint64]Update, n),
		winner: map[string]Stamp{}, own: map[protocols.CommandID]bool{}, merge: merge,
	}
	for i := range r.ahead {
		r.ahead[i] = map[uint64]Update{}
	}
	if merge {
		r.peerHave = make([][]uint64, n)
		for p := range r.peerHave {
			r.peerHave[p] = make([]uint64, n)
		}
	}
	if cfg.Checkpoint != nil {
		if err := r.restore(cfg.Checkpoint); err != nil {
			return nil, err
		}
	}
	for j, rec := range cfg.Recovered {
		u, err := decodeRecord(rec)
		if err != nil {
			return nil, fmt.Errorf("weak: record %d: %w", j, err)
		}
		i := cfg.Index(u.Origin)
		if i < 0 || u.Seq != r.delivered(i)+1 || u.Stamp.Node != u.Origin {
			return nil, fmt.Errorf("weak: record %d: update %d of node %d out of sequence", j, u.Seq, u.Origin)
		}
		r.apply(i, u)
	}
	return r, nil
}

// Submit executes a read at once and makes any other command an update.
func (r *Replica) Submit(c protocols.Command) {
	if r.readOnly != nil && r.readOnly(c) {
		// A read acknowledges nothing either (as apply's updates): the
		// client's earlier updates may not have reached this replica yet
		// (submitted at another, or delivered later), and a watermark
		// raised here would make the replica core skip them as executed
		// when they arrive — a lost update at this replica only.
		c.Acked = 0
		r.env.Execute(c)
		return
	}
	if r.own[c.ID] {
		protocols.AlreadyExecuted(r.env, c)
		return
	}
	r.clock++
	u := Update{Origin: r.cfg.Self, Seq: r.delivered(r.self) + 1, Stamp: Stamp{Time: r.clock, Node: r.cfg.Self}, Cmd: c}
	r.env.Persist(encodeRecord(u))
	r.apply(r.self, u)
	for _, p := range r.cfg.Peers {
		if p != r.cfg.Self {
			r.env.Send(p, u)
		}
	}
}

// apply delivers u, the next update of origin Peers[i]: it is logged and
// executed if it wins on its key. Recovery calls it for every record.
func (r *Replica) apply(i int, u Update) {
	r.clock = max(r.clock, u.Stamp.Time)
	r.log[i] = append(r.log[i], u)
	if u.Origin == r.cfg.Self {
		r.own[u.Cmd.ID] = true
	}
	if r.merge {
		skip := false
		failpoint.Inject("weakMergeSkipRemote", func() {
			// Planted bug: the merge leaves out the updates of the last
			// peer (an update that does not count everywhere).
			skip = u.Origin != r.cfg.Self && u.Origin == r.cfg.Peers[len(r.cfg.Peers)-1]
		})
		if !skip {
			c := u.Cmd
			c.Acked = 0
			r.env.Execute(c)
		}
		return
	}
	key := ""
	if len(u.Cmd.Keys) > 0 {
		key = u.Cmd.Keys[0]
	}
	wins := u.Stamp.After(r.winner[key])
	failpoint.Inject("weakApplyStale", func() {
		// Planted bug: a remote update overwrites the key even when it is
		// arbitrated before the update executed there (a merge that loses
		// the newer update).
		wins = true
	})
	if !wins {
		return
	}
	r.winner[key] = u.Stamp
	c := u.Cmd
	c.Acked = 0
	r.env.Execute(c)
}

// Step handles an Update or a Digest from a peer.
func (r *Replica) Step(from protocols.NodeID, m protocols.Message) {
	fi := r.cfg.Index(from)
	if fi < 0 {
		return
	}
	switch m := m.(type) {
	case Update:
		r.receive(m)
	case Digest:
		r.answer(from, m)
		if r.merge && len(m.Have) == len(r.log) {
			for i, h := range m.Have {
				r.peerHave[fi][i] = max(r.peerHave[fi][i], h)
			}
			r.compact()
		}
	}
}

// receive delivers u and the buffered updates it unblocks, or buffers it.
func (r *Replica) receive(u Update) {
	i := r.cfg.Index(u.Origin)
	if i < 0 || u.Stamp.Node != u.Origin || u.Seq == 0 || u.Stamp.Time > r.clock+maxClockAhead {
		return
	}
	have := r.delivered(i)
	switch {
	case u.Seq <= have || u.Seq > have+maxAhead:
		return
	case u.Seq > have+1:
		r.ahead[i][u.Seq] = u
		return
	}
	for {
		r.env.Persist(encodeRecord(u))
		r.apply(i, u)
		next, ok := r.ahead[i][u.Seq+1]
		if !ok {
			return
		}
		delete(r.ahead[i], u.Seq+1)
		u = next
	}
}

// answer sends a peer the updates its Digest says it lacks.
func (r *Replica) answer(to protocols.NodeID, d Digest) {
	if len(d.Have) != len(r.log) {
		return
	}
	for i, have := range d.Have {
		mine := r.delivered(i)
		if have >= mine || have < r.base[i] {
			// Nothing to send, or the peer lacks updates this replica
			// compacted (every peer had said it delivered them).
			continue
		}
		for s := have + 1; s <= mine && s <= have+aeBatch; s++ {
			r.env.Send(to, r.log[i][s-1-r.base[i]])
		}
	}
}

// Tick sends a Digest to every peer every aeTicks ticks.
func (r *Replica) Tick() {
	r.ticks++
	if r.ticks%aeTicks != 0 {
		return
	}
	have := make([]uint64, len(r.log))
	for i := range r.log {
		have[i] = r.delivered(i)
	}
	for _, p := range r.cfg.Peers {
		if p != r.cfg.Self {
			r.env.Send(p, Digest{Have: have})
		}
	}
}
