package skeen

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/protocols/paxos"
)

func init() {
	protocols.Register("skeen", func(cfg protocols.Config) (protocols.Protocol, error) {
		return New(cfg)
	}, Codec{})
}

// maxGroups bounds the group ids: a log entry's command id packs the group
// whose timestamp it records into the low byte of the client id.
const maxGroups = 256

// entry is an undelivered message at a process, as its group's log has
// decided so far. Slices are indexed like dest.
type entry struct {
	cmd   protocols.Command
	dest  []protocols.GroupID // increasing
	have  []bool
	lts   []mcast.TS
	gts   mcast.TS
	final bool // every destination group's timestamp is in the log
}

// stamped is what a process keeps of a delivered message: its group's
// timestamp, to answer a group that still waits for it.
type stamped struct {
	cmd protocols.Command
	lts mcast.TS
}

// Replica is one process of Skeen's algorithm whose group orders its steps
// through an embedded Multi-Paxos instance (protocols/paxos as a library).
// It is a protocols.Protocol and a protocols.LeaderReporter.
type Replica struct {
	cfg     protocols.Config
	env     protocols.Env
	group   protocols.GroupID
	members []protocols.NodeID
	groupOf map[protocols.NodeID]protocols.GroupID
	pax     *paxos.Replica

	// State machine fed by the group's Paxos log, in log order; rebuilt
	// from the log after a restart.
	clock     uint64
	entries   map[protocols.CommandID]*entry
	delivered map[protocols.CommandID]stamped
	order     []protocols.CommandID // delivered, oldest first
	ticks     int
	retain    int // delivered messages a checkpoint keeps
}

// Options tune a Replica beyond protocols.Config.
type Options struct {
	// Retain is the retention window: the embedded Paxos instance keeps the
	// last Retain executed slots (paxos.Options.Retain) and the process
	// the last Retain delivered messages with their timestamps when it
	// checkpoints. 0 means paxos.DefaultRetain; a negative value keeps
	// none.
	Retain int
}

// paxEnv is the Env of the embedded Paxos instance: its messages travel
// wrapped in Pax, its records are the process's records (Skeen persists
// nothing of its own), and its executions are the steps of Skeen's state
// machine.
type paxEnv struct{ r *Replica }

func (e paxEnv) Send(to protocols.NodeID, m protocols.Message) { e.r.env.Send(to, Pax{Inner: m}) }
func (e paxEnv) Execute(c protocols.Command)                   { e.r.apply(c) }
func (e paxEnv) Persist(rec []byte)                            { e.r.env.Persist(rec) }
func (e paxEnv) Rand() *rand.Rand                              { return e.r.env.Rand() }

// New returns a Skeen-over-Paxos process. cfg.Groups must hold the groups
// (at most 256, ids below 256, each of 2f+1 members) and cfg.GroupOf map
// keys to groups; client ids must stay below 2^56.
func New(cfg protocols.Config) (*Replica, error) {
	return NewWithOptions(cfg, Options{})
}

// NewWithOptions returns a Skeen-over-Paxos process configured by cfg and
// opts (see New). It restarts from cfg.Checkpoint and cfg.Recovered.
func NewWithOptions(cfg protocols.Config, opts Options) (*Replica, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.GroupOf == nil || len(cfg.Groups) == 0 {
		cfg.Groups = map[protocols.GroupID][]protocols.NodeID{0: cfg.Peers}
		cfg.GroupOf = func(string) protocols.GroupID { return 0 }
	}
	r := &Replica{
		cfg: cfg, env: cfg.Env, groupOf: map[protocols.NodeID]protocols.GroupID{},
		entries: map[protocols.CommandID]*entry{}, delivered: map[protocols.CommandID]stamped{},
		retain: paxos.DefaultRetain,
	}
	switch {
	case opts.Retain > paxos.MaxRetain:
		return nil, fmt.Errorf("%w: skeen: retention window %d > %d", protocols.ErrConfig, opts.Retain, paxos.MaxRetain)
	case opts.Retain > 0:
		r.retain = opts.Retain
	case opts.Retain < 0:
		r.retain = 0
	}
	for _, g := range slices.Sorted(maps.Keys(cfg.Groups)) {
		if g >= maxGroups {
			return nil, fmt.Errorf("%w: skeen: group id %d >= %d", protocols.ErrConfig, g, maxGroups)
		}
		for _, p := range cfg.Groups[g] {
			r.groupOf[p] = g
			if p == cfg.Self {
				r.group, r.members = g, cfg.Groups[g]
			}
		}
	}
	if r.members == nil {
		return nil, fmt.Errorf("%w: skeen: node %d in no group", protocols.ErrConfig, cfg.Self)
	}
	var (
		closest []protocols.NodeID
		err     error
	)
	for _, p := range cfg.Closest {
		if slices.Contains(r.members, p) {
			closest = append(closest, p)
		}
	}
	var paxCk []byte
	if cfg.Checkpoint != nil {
		if paxCk, err = r.restore(cfg.Checkpoint); err != nil {
			return nil, err
		}
	}
	pax, err := paxos.NewWithOptions(protocols.Config{
		Self: cfg.Self, Peers: r.members, F: (len(r.members) - 1) / 2, Closest: closest,
		SuspectTicks: cfg.SuspectTicks, Checkpoint: paxCk, Recovered: cfg.Recovered, Env: paxEnv{r},
	}, paxos.Options{Retain: opts.Retain})
	if err != nil {
		return nil, fmt.Errorf("skeen: group %d paxos: %w", r.group, err)
	}
	r.pax = pax
	return r, nil
}

// Leader implements protocols.LeaderReporter: the leader of the group's
// Paxos instance as this process sees it.
func (r *Replica) Leader() protocols.NodeID { return r.pax.Leader() }

func (r *Replica) dests(c protocols.Command) []protocols.GroupID {
	return mcast.Destinations(&r.cfg, r.group, c)
}

// propose submits a step to the group's log. Its command id is the
// message's, with the recorded group packed in, so that Paxos proposes and
// executes each step at most once.
func (r *Replica) propose(s step) {
	r.pax.Submit(protocols.Command{
		ID:      protocols.CommandID{Client: s.Cmd.ID.Client<<8 | uint64(s.From), Seq: s.Cmd.ID.Seq},
		Payload: encodeStep(s),
	})
}

// Submit implements protocols.Protocol: the command goes to every
// destination group at once; this group orders it through its log.
func (r *Replica) Submit(c protocols.Command) {
	if _, ok := r.delivered[c.ID]; ok {
		protocols.AlreadyExecuted(r.env, c)
		return
	}
	for _, g := range r.dests(c) {
		if g == r.group {
			r.propose(step{From: r.group, Cmd: c})
			continue
		}
		for _, p := range r.cfg.Groups[g] {
			r.env.Send(p, Multicast{Cmd: c})
		}
	}
}

// Step implements protocols.Protocol.
func (r *Replica) Step(from protocols.NodeID, m protocols.Message) {
	if _, ok := r.groupOf[from]; !ok {
		return
	}
	switch m := m.(type) {
	case Pax:
		if r.groupOf[from] == r.group {
			r.pax.Step(from, m.Inner)
		}
	case Multicast:
		if _, ok := r.delivered[m.Cmd.ID]; !ok && slices.Contains(r.dests(m.Cmd), r.group) {
			r.propose(step{From: r.group, Cmd: m.Cmd})
		}
	case Stamp:
		r.handleStamp(from, m)
	}
}

func (r *Replica) handleStamp(from protocols.NodeID, s Stamp) {
	d := r.dests(s.Cmd)
	j := slices.Index(d, s.Group)
	if j < 0 || s.Group == r.group || r.groupOf[from] != s.Group || !slices.Contains(d, r.group) {
		return
	}
	// Once our log fixed the global timestamp our leader stops sending
	// ours, so answer a (re-sent) Stamp with it: the sender still waits.
	if st, ok := r.delivered[s.Cmd.ID]; ok {
		if !s.Reply {
			r.env.Send(from, Stamp{Group: r.group, LTS: st.lts, Cmd: st.cmd, Reply: true})
		}
		return
	}
	e, ok := r.entries[s.Cmd.ID]
	if ok && e.final {
		if !s.Reply {
			r.env.Send(from, Stamp{Group: r.group, LTS: e.lts[slices.Index(e.dest, r.group)], Cmd: e.cmd, Reply: true})
		}
		return
	}
	if ok && e.have[j] {
		return
	}
	r.propose(step{From: s.Group, LTS: s.LTS, Cmd: s.Cmd})
}

// apply executes one step of the group's log: the first step of a message
// gives it the group's next local timestamp, a step of another group records
// that group's; with every destination group's timestamp the global one is
// their max and the clock moves past it — all decided by the log, so every
// member computes the same. Then Skeen's delivery rule runs.
func (r *Replica) apply(c protocols.Command) {
	s, err := decodeStep(c.Payload)
	if err != nil {
		return
	}
	if _, ok := r.delivered[s.Cmd.ID]; ok {
		return
	}
	e, ok := r.entries[s.Cmd.ID]
	if !ok {
		d := r.dests(s.Cmd)
		if !slices.Contains(d, r.group) {
			return
		}
		e = &entry{cmd: s.Cmd, dest: d, have: make([]bool, len(d)), lts: make([]mcast.TS, len(d))}
		r.entries[s.Cmd.ID] = e
	}
	own := slices.Index(e.dest, r.group)
	if !e.have[own] {
		r.clock++
		e.have[own], e.lts[own] = true, mcast.TS{Counter: r.clock, Group: r.group}
		if r.pax.Leader() == r.cfg.Self {
			r.sendStamp(e)
		}
	}
	if j := slices.Index(e.dest, s.From); j >= 0 && s.From != r.group && !e.have[j] {
		e.have[j], e.lts[j] = true, s.LTS
	}
	if !e.final && !slices.Contains(e.have, false) {
		e.final = true
		for _, t := range e.lts {
			if e.gts.Less(t) {
				e.gts = t
			}
		}
		r.clock = max(r.clock, e.gts.Counter)
	}
	r.deliver()
}

func (r *Replica) sendStamp(e *entry) {
	own := slices.Index(e.dest, r.group)
	st := Stamp{Group: r.group, LTS: e.lts[own], Cmd: e.cmd}
	for k, g := range e.dest {
		if g == r.group || (e.final && e.have[k]) {
			continue
		}
		for _, p := range r.cfg.Groups[g] {
			r.env.Send(p, st)
		}
	}
}

// deliver delivers final messages in global timestamp order while no
// message still waiting for timestamps has a smaller local one (Skeen's
// rule). The order depends only on the log, so a group's members agree.
func (r *Replica) deliver() {
	for {
		var next *entry
		for _, e := range r.entries {
			if e.final && (next == nil || mcast.Before(e.gts, e.cmd.ID, next.gts, next.cmd.ID)) {
				next = e
			}
		}
		if next == nil {
			return
		}
		for _, e := range r.entries {
			if !e.final {
				own := slices.Index(e.dest, r.group)
				if mcast.Before(e.lts[own], e.cmd.ID, next.gts, next.cmd.ID) {
					return
				}
			}
		}
		delete(r.entries, next.cmd.ID)
		r.delivered[next.cmd.ID] = stamped{cmd: next.cmd, lts: next.lts[slices.Index(next.dest, r.group)]}
		r.order = append(r.order, next.cmd.ID)
		r.env.Execute(next.cmd)
	}
}

// Tick implements protocols.Protocol: the Paxos instance ticks, and the
// leader re-sends the timestamps of messages still waiting for others.
func (r *Replica) Tick() {
	r.pax.Tick()
	r.ticks++
	if r.ticks%max(1, r.cfg.SuspectTicks/2) != 0 || r.pax.Leader() != r.cfg.Self {
		return
	}
	ids := slices.Collect(maps.Keys(r.entries))
	slices.SortFunc(ids, func(a, b protocols.CommandID) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
	for _, id := range ids {
		if e := r.entries[id]; !e.final {
			r.sendStamp(e)
		}
	}
}
