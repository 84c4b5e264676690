package simnet

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/blossom-dso/blossom/protocols"
)

// Multicast runs (Config.Groups > 0).
//
// Group g (0-based) holds the nodes g*(2F+1)+1 .. (g+1)*(2F+1). A key is
// named "g<group>/<name>"; GroupOf maps it back to its group. Each command
// is addressed to Dest groups (1..Groups drawn per command when Dest is 0)
// and carries one key of each, all with the same name: with probability
// Config.Conflict a shared name k0..k<Keys-1> (a "row" across the shards),
// else the client's private name. A command to
// one group is a get (with probability Config.Reads) or a put of its key; a
// command to several groups is a put of the same value to all its keys, a
// write across shards that must be atomic (lincheck.MultiKVModel). The
// client submits to the closest replica of its destination groups, and after
// each timeout to the next closest.
//
// After the last client finishes, the run drains for three client timeouts
// so that followers catch up, and then checks, over every incarnation of
// every replica:
//   - integrity: a replica delivers (executes) only commands that a client
//     multicast to its group, and each at most once per incarnation;
//   - agreement: every command delivered anywhere is delivered by the last
//     incarnation of every replica of each of its destination groups that
//     was not crash-stopped;
//   - per-group order: the delivery sequences of the replicas of one group
//     are consistent (the union of their "delivered right after" edges is
//     acyclic);
//   - acyclic order: the union of the delivery orders of all replicas has
//     no cycle.

// mcast is the state of a multicast run.
type mcast struct {
	s       *sim
	groups  int
	per     int     // replicas per group
	closest [][]int // per node: node indexes by closeness, itself first
	drainAt int64   // when draining ends; 0 before the clients finish
}

// GroupOf maps a multicast run's key "g<group>/<name>" to its group; other
// keys map to group 0.
func GroupOf(key string) protocols.GroupID {
	rest, ok := strings.CutPrefix(key, "g")
	if !ok {
		return 0
	}
	num, _, ok := strings.Cut(rest, "/")
	if !ok {
		return 0
	}
	g, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0
	}
	return protocols.GroupID(g)
}

func newMcast(s *sim) *mcast {
	m := &mcast{s: s, groups: s.cfg.Groups, per: 2*s.cfg.F + 1}
	for i := range s.n {
		var order []int
		for _, id := range s.closest(i) {
			order = append(order, int(id)-1)
		}
		m.closest = append(m.closest, order)
	}
	return m
}

func (m *mcast) groupOfNode(idx int) int { return idx / m.per }

// draining reports whether a multicast run keeps going after its clients
// finished, so that every replica catches up before the checks.
func (s *sim) draining() bool {
	if s.mc == nil {
		// Config.Drain: a quiescent period for the checks of weaker
		// contracts (convergence).
		if s.cfg.Drain == 0 {
			return false
		}
		if s.drainAt == 0 {
			s.drainAt = s.now + s.cfg.Drain
		}
		return s.now < s.drainAt
	}
	if s.mc.drainAt == 0 {
		s.mc.drainAt = s.now + 3*s.cfg.ClientTimeout
	}
	return s.now < s.mc.drainAt
}

// issue starts client ci's next operation of a multicast run.
func (m *mcast) issue(ci int) {
	s, rc, r := m.s, m.s.cfg, m.s.workRand
	cl := &s.clients[ci]
	k := rc.Dest
	if k == 0 {
		k = 1 + r.IntN(m.groups)
	}
	dest := r.Perm(m.groups)[:k]
	slices.Sort(dest)
	// A conflicting command touches shared row i: key k<i> of each of its
	// groups; the others the client's private key of each group. Rows keep
	// the linearizability check partitioned.
	name := cl.private
	if r.Float64()*100 < rc.Conflict {
		name = "k" + strconv.Itoa(r.IntN(rc.Keys))
	}
	keys := make([]string, k)
	for i, g := range dest {
		keys[i] = fmt.Sprintf("g%d/%s", g, name)
	}
	put := k > 1 || r.Float64()*100 >= rc.Reads
	payload, value := s.kvPayload(rc.Size, put)
	// The closest replica of a destination group, skipping one per timeout.
	var cands []int
	for _, j := range m.closest[cl.home] {
		if slices.Contains(dest, m.groupOfNode(j)) {
			cands = append(cands, j)
		}
	}
	cl.node = cands[cl.skip%len(cands)]
	cl.seq++
	cmd := protocols.Command{ID: protocols.CommandID{Client: uint64(ci + 1), Seq: cl.seq}, Acked: cl.answered + 1, Keys: keys, Payload: payload}
	cl.waiting = true
	cl.op = len(s.history)
	cl.ops = append(cl.ops, int32(cl.op))
	s.history = append(s.history, Op{
		Client: ci, Node: protocols.NodeID(cl.node + 1), Site: rc.sites[cl.home],
		Key: keys[0], Put: put, Value: value, Call: s.now, Return: -1, keys: keys, leaderAt: -1,
	})
	d := s.links.clientDelay(s.netRand, cl.home, cl.node)
	s.q.push(event{at: s.now + d, kind: evSubmit, node: uint32(cl.node), peer: uint32(ci), a: s.cmds.put(cmd)})
	cl.deadline = s.now + rc.ClientTimeout
	if !cl.timer {
		cl.timer = true
		s.q.push(event{at: cl.deadline, kind: evTimeout, peer: uint32(ci)})
	}
}

// executed records the first delivery of a workload command at a replica
// that believes it leads its group.
func (m *mcast) executed(nd *node, id protocols.CommandID) {
	s := m.s
	if !s.isWorkload(id) {
		return
	}
	op := &s.history[s.clients[id.Client-1].ops[id.Seq-1]]
	if op.leaderAt >= 0 {
		return
	}
	if lr, ok := nd.core.Protocol().(protocols.LeaderReporter); ok && lr.Leader() == nd.id {
		op.leaderAt = s.now
	}
}

// result fills the multicast fields of r: the checks and the leader
// delivery latency.
func (m *mcast) result(r *Result) {
	s := m.s
	r.Groups = m.groups
	var sum int64
	for _, op := range s.history {
		if op.leaderAt >= 0 {
			sum += op.leaderAt - op.Call
			r.LeaderDeliveries++
		}
	}
	if r.LeaderDeliveries > 0 {
		r.LeaderDeliveryLatency = float64(sum) / float64(r.LeaderDeliveries) / 1000
	}
	r.MulticastViolations = m.check(20)
}

// check runs the four multicast checks and returns at most limit
// violations.
func (m *mcast) check(limit int) []string {
	s := m.s
	var out []string
	add := func(format string, args ...any) {
		if len(out) < limit {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	dests := func(id protocols.CommandID) []int {
		var gs []int
		for _, k := range s.keysOf(id) {
			if g := int(GroupOf(k)); !slices.Contains(gs, g) {
				gs = append(gs, g)
			}
		}
		return gs
	}
	// Integrity.
	delivered := map[protocols.CommandID]bool{}
	var order []protocols.CommandID // first-delivery order, for determinism
	for _, nd := range s.nodes {
		for inc, execs := range nd.execs {
			seen := map[protocols.CommandID]bool{}
			for _, e := range execs {
				if !s.isWorkload(e.id) {
					add("integrity: node %d incarnation %d delivered %v, which no client multicast", nd.id, inc, e.id)
					continue
				}
				if seen[e.id] {
					add("integrity: node %d incarnation %d delivered %v twice", nd.id, inc, e.id)
				}
				seen[e.id] = true
				if !slices.Contains(dests(e.id), m.groupOfNode(nd.idx)) {
					add("integrity: node %d (group %d) delivered %v, addressed to groups %v", nd.id, m.groupOfNode(nd.idx), e.id, dests(e.id))
				}
				if !delivered[e.id] {
					delivered[e.id] = true
					order = append(order, e.id)
				}
			}
		}
	}
	// Agreement.
	last := make([]map[protocols.CommandID]bool, s.n)
	for i, nd := range s.nodes {
		last[i] = map[protocols.CommandID]bool{}
		for _, e := range nd.execs[len(nd.execs)-1] {
			last[i][e.id] = true
		}
	}
	for _, id := range order {
		if !s.isWorkload(id) {
			continue
		}
		for _, g := range dests(id) {
			for j := g * m.per; j < (g+1)*m.per; j++ {
				if !s.nodes[j].stopped && !last[j][id] {
					add("agreement: %v (groups %v) was delivered but not by node %d of group %d", id, dests(id), j+1, g)
				}
			}
		}
	}
	// Per-group order, then acyclic order over all replicas.
	for g := range m.groups {
		if cyc := m.cycle(g*m.per, (g+1)*m.per); cyc != "" {
			add("per-group order: replicas of group %d delivered %s", g, cyc)
		}
	}
	if cyc := m.cycle(0, s.n); cyc != "" {
		add("acyclic order: the delivery orders contain the cycle %s", cyc)
	}
	return out
}

// cycle builds the union of the "delivered right after" edges of nodes
// [lo, hi) and describes one cycle, or returns "".
func (m *mcast) cycle(lo, hi int) string {
	s := m.s
	idx := map[protocols.CommandID]int32{}
	var ids []protocols.CommandID
	var g graph
	g.grow(0)
	var wheres []string
	vertex := func(id protocols.CommandID) int32 {
		v, ok := idx[id]
		if !ok {
			v = int32(len(ids))
			idx[id] = v
			ids = append(ids, id)
			g.addVertex()
		}
		return v
	}
	for _, nd := range s.nodes[lo:hi] {
		for inc, execs := range nd.execs {
			where := int32(len(wheres))
			wheres = append(wheres, fmt.Sprintf("node %d incarnation %d", nd.id, inc))
			prev := int32(-1)
			for _, e := range execs {
				v := vertex(e.id)
				if prev >= 0 && prev != v {
					g.addEdge(prev, v, where)
				}
				prev = v
			}
		}
	}
	cyc := findCycle(&g, map[int32]bool{}, make([]int32, len(ids)))
	if cyc == nil {
		return ""
	}
	var b strings.Builder
	for i, x := range cyc {
		y := cyc[(i+1)%len(cyc)]
		fmt.Fprintf(&b, "%v before %v at %s; ", ids[x], ids[y], wheres[g.where[g.edge(x, y)]])
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// MulticastError returns nil unless a multicast check failed, and then an
// error naming the seed and the first violations.
func (r *Result) MulticastError() error {
	if len(r.MulticastViolations) == 0 {
		return nil
	}
	return fmt.Errorf("simnet: seed %d: multicast check: %d violations: %s", r.Seed, len(r.MulticastViolations),
		strings.Join(r.MulticastViolations[:min(3, len(r.MulticastViolations))], "; "))
}
