package runner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/replica"
	"github.com/blossom-dso/blossom/storage/wal"
	"github.com/blossom-dso/blossom/transport"
)

// HostConfig configures a Host: one node's share of a cluster of n nodes
// whose state is split over replica groups of RF nodes each.
type HostConfig struct {
	// ID is this node; it must be a key of Peers.
	ID protocols.NodeID
	// Peers maps every node of the cluster (this one included) to its
	// replica-to-replica address; with Network the addresses are only
	// names, but must not be empty.
	Peers map[protocols.NodeID]string
	// Protocol is a registered protocol name. Multicast protocols (see
	// Multicast) run one instance over all nodes; the others one
	// instance per replica group.
	Protocol string
	// RF is the replication factor: the nodes of each group (see Layout).
	// Each group tolerates F = (RF-1)/2 failures.
	RF int
	// DataDir holds one directory per local group, group-<id>, with that
	// group's write-ahead log and snapshots (in multicast mode only the
	// node's own group's). Required.
	DataDir string
	// NewStateMachine returns the state machine of group g at this node,
	// called once per local group (in multicast mode once, for the node's
	// own group, whose one instance applies every command multicast to
	// it); nil means a new KV for every group.
	NewStateMachine func(g protocols.GroupID) replica.StateMachine
	// GroupOf maps a key to its group; only multicast protocols use it,
	// to find a command's destination groups. Nil means GroupOf(key, the
	// number of groups), the FNV-1a mapping of `blossom replica`.
	GroupOf func(key string) protocols.GroupID
	// Network, if set, carries the replica-to-replica messages instead of
	// TCP (in-memory, for tests).
	Network *transport.Network
	// Cluster names the deployment; peers of another cluster are refused
	// (default "blossom").
	Cluster string
	// Tick, SuspectTicks, CompactEvery, RequestTimeout, MaxWaiting,
	// NoSync and SegmentBytes configure every local replica as the fields
	// of Config do, with the same defaults.
	Tick           time.Duration
	SuspectTicks   int
	CompactEvery   int
	RequestTimeout time.Duration
	MaxWaiting     int
	NoSync         bool
	SegmentBytes   int64
	// Seed seeds the protocols' random sources, distinctly per group
	// (default: random).
	Seed uint64
	// Levels, if not empty, runs beside each local group's Protocol
	// instance (level 0) one more instance per entry: level k (from 1)
	// runs the registered protocol Levels[k-1] (any order contract) over
	// the group's members, with its own state machine
	// (NewLevelStateMachine), write-ahead log (directory
	// group-<id>-level<k>) and tag (k<<24 | id), all over the one
	// transport, whose codec is then HostCodec's. The degradable levels of
	// the DSO's persistent objects run this way (sequential, weak-merge).
	// In multicast mode the level instances run per disjoint group.
	Levels []string
	// NewLevelStateMachine returns the state machine of level k >= 1 of
	// group g at this node; required with Levels.
	NewLevelStateMachine func(g protocols.GroupID, level int) replica.StateMachine
	// ReadOnly, if set, tells every instance's protocol which commands
	// only read (Config.ReadOnly); the weak strategies require it.
	ReadOnly func(protocols.Command) bool
	// Logger receives the host's logs (default slog.Default()).
	Logger *slog.Logger
	// Snapshots, if not nil, returns where local group g keeps its
	// snapshots (Config.Snapshots), called once per local group; nil
	// means snapshot files in each group's directory.
	Snapshots func(g protocols.GroupID) wal.SnapshotStore
}

// Group is one replica group of a layout.
type Group struct {
	// ID names the group.
	ID protocols.GroupID
	// Members are the group's nodes, in layout order (the first is the
	// lowest id unless the group wraps around the ring).
	Members []protocols.NodeID
}

// multicastProtocols are the registered protocols that order commands by
// atomic multicast over groups: one instance spans all nodes. The protocol
// registry does not record this; keep the list in step with it.
var multicastProtocols = map[string]bool{"wbcast": true, "skeen": true}

// Multicast reports whether protocol is an atomic multicast protocol
// (wbcast, skeen), which a Host runs as one instance over all nodes with
// disjoint groups, rather than one instance per group.
func Multicast(protocol string) bool { return multicastProtocols[protocol] }

// Layout places n = len(nodes) nodes into replica groups of rf nodes each.
// The nodes are taken in ascending order.
//
// Ring mode (multicast false): if rf == n, one group 0 of all nodes;
// otherwise n groups, group i holding nodes[i], nodes[i+1], ...,
// nodes[i+rf-1] (indices mod n), so that every node is in rf groups.
//
// Multicast mode: n must be a multiple of rf; n/rf disjoint groups of
// consecutive nodes, group g holding nodes[g*rf] .. nodes[g*rf+rf-1] (the
// layout of mcast.Groups).
//
// It fails, naming the valid values, for no nodes, a node id 0 or listed
// twice, rf < 1, rf > n, or in multicast mode n not a multiple of rf.
func Layout(nodes []protocols.NodeID, rf int, multicast bool) ([]Group, error) {
	ns := slices.Sorted(slices.Values(nodes))
	n := len(ns)
	switch {
	case n == 0:
		return nil, errors.New("runner: a layout needs at least one node")
	case ns[0] == 0:
		return nil, errors.New("runner: node id 0 is reserved")
	}
	for i := 1; i < n; i++ {
		if ns[i] == ns[i-1] {
			return nil, fmt.Errorf("runner: node %d listed twice", ns[i])
		}
	}
	switch {
	case rf < 1:
		return nil, fmt.Errorf("runner: rf=%d must be at least 1 (valid with %d nodes: %s)", rf, n, validRF(n, multicast))
	case rf > n:
		return nil, fmt.Errorf("runner: rf=%d exceeds the %d nodes (valid: %s)", rf, n, validRF(n, multicast))
	case multicast && n%rf != 0:
		return nil, fmt.Errorf("runner: multicast needs the %d nodes to be a multiple of rf=%d (valid: %s)", n, rf, validRF(n, multicast))
	}
	var out []Group
	switch {
	case multicast:
		for g := range n / rf {
			out = append(out, Group{ID: protocols.GroupID(g), Members: slices.Clone(ns[g*rf : g*rf+rf])})
		}
	case rf == n:
		out = []Group{{ID: 0, Members: ns}}
	default:
		for i := range n {
			g := Group{ID: protocols.GroupID(i)}
			for j := range rf {
				g.Members = append(g.Members, ns[(i+j)%n])
			}
			out = append(out, g)
		}
	}
	return out, nil
}

// validRF names the replication factors Layout accepts for n nodes.
func validRF(n int, multicast bool) string {
	if !multicast {
		if n == 1 {
			return "1"
		}
		return "1 to " + strconv.Itoa(n)
	}
	var ds []string
	for d := 1; d <= n; d++ {
		if n%d == 0 {
			ds = append(ds, strconv.Itoa(d))
		}
	}
	return strings.Join(ds, ", ")
}

// Errors of Host.
var (
	// ErrNotMember: this node is not a member of the group (or the group
	// does not exist); submit at one of its members.
	ErrNotMember = errors.New("runner: this node is not a member of the group")
	// ErrWrongGroup: in multicast mode, the command's keys do not map to
	// the group it was submitted to, so the group would never execute
	// (nor answer) it.
	ErrWrongGroup = errors.New("runner: the command's keys are not in the group")
)

// slot is where the dispatcher finds a local group's replica.
type slot struct {
	rep     atomic.Pointer[Replica] // nil until started
	members map[protocols.NodeID]bool
}

// Host is one node's share of a replicated cluster: a Replica (core
// goroutine, write-ahead log, syncer) for each local group, all sending
// over one transport whose messages carry their group as a
// transport.Tagged tag (TagCodec on the wire). A message whose tag names a
// group the host does not run, or whose sender is not in that group, is
// dropped and counted (Misrouted). In multicast mode the host runs a single
// instance over all nodes, tagged 0.
type Host struct {
	cfg       HostConfig
	log       *slog.Logger
	layout    []Group
	multicast bool
	local     []protocols.GroupID
	groupOf   func(key string) protocols.GroupID       // multicast mode
	groups    map[protocols.GroupID][]protocols.NodeID // multicast mode: the layout
	reps      map[protocols.GroupID]*Replica           // by local group
	lreps     map[levelKey]*Replica                    // the level instances, by local group and level
	slots     map[uint32]*slot                         // by tag; fixed after StartHost
	tr        transport.Transport
	misrouted atomic.Uint64
	closed    atomic.Bool
}

// StartHost lays out the groups, checks that the protocol runs groups of
// RF nodes, connects the transport and starts (recovering from DataDir)
// the replica of every group this node is a member of.
func StartHost(cfg HostConfig) (*Host, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Cluster == "" {
		cfg.Cluster = "blossom"
	}
	switch {
	case cfg.DataDir == "":
		return nil, errors.New("runner: a data dir is required")
	case cfg.Peers[cfg.ID] == "":
		return nil, fmt.Errorf("runner: node %d has no address among the peers", cfg.ID)
	}
	for id, a := range cfg.Peers {
		if a == "" {
			return nil, fmt.Errorf("runner: node %d has an empty address", id)
		}
	}
	spec, err := protocols.Lookup(cfg.Protocol)
	if err != nil {
		return nil, err
	}
	h := &Host{
		cfg: cfg, log: cfg.Logger.With("node", cfg.ID), multicast: Multicast(cfg.Protocol),
		reps: map[protocols.GroupID]*Replica{}, lreps: map[levelKey]*Replica{}, slots: map[uint32]*slot{},
	}
	nodes := slices.Sorted(maps.Keys(cfg.Peers))
	if h.layout, err = Layout(nodes, cfg.RF, h.multicast); err != nil {
		return nil, err
	}
	if h.multicast {
		h.groupOf = cfg.GroupOf
		if h.groupOf == nil {
			groups := len(h.layout)
			h.groupOf = func(key string) protocols.GroupID { return GroupOf(key, groups) }
		}
		h.groups = make(map[protocols.GroupID][]protocols.NodeID, len(h.layout))
		for _, l := range h.layout {
			h.groups[l.ID] = l.Members
		}
	}
	f := (cfg.RF - 1) / 2
	if err := h.probe(spec, h.layout, f); err != nil {
		var valid []string
		for rf := 1; rf <= len(nodes); rf++ {
			if l, err := Layout(nodes, rf, h.multicast); err == nil && h.probe(spec, l, (rf-1)/2) == nil {
				valid = append(valid, strconv.Itoa(rf))
			}
		}
		return nil, fmt.Errorf("runner: %s cannot run groups of rf=%d (f=%d): %w (valid rf with %d nodes: %s)",
			cfg.Protocol, cfg.RF, f, err, len(nodes), strings.Join(valid, ", "))
	}
	if err := h.probeLevels(); err != nil {
		return nil, err
	}
	for _, g := range h.layout {
		if !slices.Contains(g.Members, cfg.ID) {
			continue
		}
		h.local = append(h.local, g.ID)
		for k := range cfg.Levels {
			ls := &slot{members: map[protocols.NodeID]bool{}}
			for _, m := range g.Members {
				ls.members[m] = true
			}
			h.slots[levelTag(g.ID, k+1)] = ls
		}
		s := &slot{members: map[protocols.NodeID]bool{}}
		for _, m := range g.Members {
			s.members[m] = true
		}
		if h.multicast {
			s.members = nil // every node is a peer of the one instance
			h.slots[0] = s
		} else {
			h.slots[uint32(g.ID)] = s
		}
	}

	if cfg.Network != nil {
		h.tr = cfg.Network.Join(cfg.ID, h.dispatch)
	} else {
		codec, err := HostCodec(cfg.Protocol, cfg.Levels)
		if err != nil {
			return nil, err
		}
		tr, err := transport.NewTCP(transport.Config{
			Cluster: cfg.Cluster, Self: cfg.ID, Listen: cfg.Peers[cfg.ID], Peers: cfg.Peers,
			Codec: codec, Handler: h.dispatch, Logger: h.log,
		})
		if err != nil {
			return nil, err
		}
		h.tr = tr
	}
	for _, g := range h.local {
		if err := h.startGroup(g); err != nil {
			h.Close()
			return nil, err
		}
		for k := range cfg.Levels {
			if err := h.startLevel(g, k+1); err != nil {
				h.Close()
				return nil, err
			}
		}
	}
	h.log.Info("host started", "protocol", cfg.Protocol, "rf", cfg.RF, "groups", len(h.layout), "local", h.local, "multicast", h.multicast)
	return h, nil
}

// startGroup starts the replica of local group g.
func (h *Host) startGroup(g protocols.GroupID) error {
	cfg := h.cfg
	rc := h.replicaConfig(g, cfg.Protocol, fmt.Sprintf("group-%d", g))
	rc.Logger = h.log.With("group", g)
	if cfg.Seed != 0 {
		rc.Seed = cfg.Seed + uint64(g)*0x9e3779b97f4a7c15
	}
	if cfg.NewStateMachine != nil {
		rc.StateMachine = cfg.NewStateMachine(g)
	}
	if cfg.Snapshots != nil {
		rc.Snapshots = cfg.Snapshots(g)
	}
	hs := &hosting{group: g}
	tag := uint32(g)
	if h.multicast {
		tag = 0
		hs.groups, hs.groupOf = h.groups, h.groupOf
	} else {
		rc.Members = h.members(g)
	}
	hs.tr = tagSender{tr: h.tr, tag: tag}
	r, err := start(rc, hs)
	if err != nil {
		return fmt.Errorf("runner: group %d: %w", g, err)
	}
	h.reps[g] = r
	h.slots[tag].rep.Store(r)
	return nil
}

// replicaConfig is the Config of a local instance of group g running
// protocol, its data in the directory dir under DataDir.
func (h *Host) replicaConfig(g protocols.GroupID, protocol, dir string) Config {
	cfg := h.cfg
	return Config{
		ID: cfg.ID, Peers: cfg.Peers, Protocol: protocol, F: (cfg.RF - 1) / 2,
		DataDir: filepath.Join(cfg.DataDir, dir), Tick: cfg.Tick,
		SuspectTicks: cfg.SuspectTicks, CompactEvery: cfg.CompactEvery, Cluster: cfg.Cluster,
		RequestTimeout: cfg.RequestTimeout, MaxWaiting: cfg.MaxWaiting, NoSync: cfg.NoSync,
		SegmentBytes: cfg.SegmentBytes, ReadOnly: cfg.ReadOnly,
	}
}

// levelKey names a level instance of a local group.
type levelKey struct {
	g     protocols.GroupID
	level int
}

// levelShift places the level of an instance above its group in its tag.
const levelShift = 24

// levelTag is the transport tag of level k of group g (k = 0: the group's
// Protocol instance, tagged g in ring mode).
func levelTag(g protocols.GroupID, k int) uint32 { return uint32(k)<<levelShift | uint32(g) }

// probeLevels checks Levels: known protocols, at most 255 levels, groups
// numbered below 1<<24, a state machine for each, and that each protocol
// runs groups of RF nodes.
func (h *Host) probeLevels() error {
	cfg := h.cfg
	if len(cfg.Levels) == 0 {
		return nil
	}
	switch {
	case len(cfg.Levels) > 255:
		return fmt.Errorf("runner: %d levels, at most 255", len(cfg.Levels))
	case len(h.layout) >= 1<<levelShift:
		return fmt.Errorf("runner: %d groups: levels need fewer than %d", len(h.layout), 1<<levelShift)
	case cfg.NewLevelStateMachine == nil:
		return errors.New("runner: Levels need NewLevelStateMachine")
	}
	for k, p := range cfg.Levels {
		spec, err := protocols.Lookup(p)
		if err != nil {
			return fmt.Errorf("runner: level %d: %w", k+1, err)
		}
		if Multicast(p) {
			return fmt.Errorf("runner: level %d: %s is a multicast protocol; a level runs one instance per group", k+1, p)
		}
		g := h.layout[0]
		pc := protocols.Config{Self: g.Members[0], Peers: slices.Sorted(slices.Values(g.Members)), F: (cfg.RF - 1) / 2,
			Env: nopEnv{}, SuspectTicks: cfg.SuspectTicks, ReadOnly: func(protocols.Command) bool { return false }}
		if _, err := spec.New(pc); err != nil {
			return fmt.Errorf("runner: level %d: %s cannot run groups of rf=%d: %w", k+1, p, cfg.RF, err)
		}
	}
	return nil
}

// startLevel starts level k's instance of local group g.
func (h *Host) startLevel(g protocols.GroupID, k int) error {
	cfg := h.cfg
	p := cfg.Levels[k-1]
	rc := h.replicaConfig(g, p, fmt.Sprintf("group-%d-level%d", g, k))
	rc.Logger = h.log.With("group", g, "level", k, "protocol", p)
	if cfg.Seed != 0 {
		rc.Seed = cfg.Seed + uint64(g)*0x9e3779b97f4a7c15 + uint64(k)*0xbf58476d1ce4e5b9
	}
	rc.StateMachine = cfg.NewLevelStateMachine(g, k)
	rc.Members = h.members(g)
	tag := levelTag(g, k)
	r, err := start(rc, &hosting{group: g, tr: tagSender{tr: h.tr, tag: tag}})
	if err != nil {
		return fmt.Errorf("runner: group %d level %d (%s): %w", g, k, p, err)
	}
	h.lreps[levelKey{g, k}] = r
	h.slots[tag].rep.Store(r)
	return nil
}

// HostCodec returns the codec of a Host's transport: transport.TagCodec
// over protocol's codec, or, with levels, over the codec of the instance
// each tag names (level k's protocol for the tags k<<24 | g).
func HostCodec(protocol string, levels []string) (protocols.Codec, error) {
	spec, err := protocols.Lookup(protocol)
	if err != nil {
		return nil, err
	}
	if len(levels) == 0 {
		return transport.TagCodec{Inner: spec.Codec}, nil
	}
	lc := levelCodec{transport.TagCodec{Inner: spec.Codec}}
	for _, p := range levels {
		ls, err := protocols.Lookup(p)
		if err != nil {
			return nil, err
		}
		lc = append(lc, transport.TagCodec{Inner: ls.Codec})
	}
	return lc, nil
}

// levelCodec is the codec of a host with levels: element k encodes the
// messages of the level-k instances.
type levelCodec []transport.TagCodec

// Marshal implements protocols.Codec.
func (c levelCodec) Marshal(buf []byte, m protocols.Message) ([]byte, error) {
	t, ok := m.(transport.Tagged)
	if !ok {
		return buf, fmt.Errorf("%w: %T is not a transport.Tagged", transport.ErrBadTag, m)
	}
	k := int(t.Tag >> levelShift)
	if k >= len(c) {
		return buf, fmt.Errorf("%w: tag %#x names level %d of %d", transport.ErrBadTag, t.Tag, k, len(c)-1)
	}
	return c[k].Marshal(buf, m)
}

// Unmarshal implements protocols.Codec.
func (c levelCodec) Unmarshal(b []byte) (protocols.Message, error) {
	tag, n := binary.Uvarint(b)
	if n <= 0 {
		return c[0].Unmarshal(b) // TagCodec's error
	}
	k := tag >> levelShift
	if k >= uint64(len(c)) {
		return nil, fmt.Errorf("%w: tag %#x names level %d of %d", transport.ErrBadTag, tag, k, len(c)-1)
	}
	return c[k].Unmarshal(b)
}

// members returns group g's members (nil if there is no group g).
func (h *Host) members(g protocols.GroupID) []protocols.NodeID {
	for _, l := range h.layout {
		if l.ID == g {
			return l.Members
		}
	}
	return nil
}

// probe builds a throwaway protocol instance of layout's first group, to
// tell whether the protocol accepts groups of that size and f.
func (h *Host) probe(spec protocols.Spec, layout []Group, f int) error {
	pc := protocols.Config{Self: layout[0].Members[0], Peers: layout[0].Members, F: f, Env: nopEnv{}, SuspectTicks: h.cfg.SuspectTicks}
	if h.multicast {
		pc.Peers = nil
		pc.Groups = map[protocols.GroupID][]protocols.NodeID{}
		for _, g := range layout {
			pc.Peers = append(pc.Peers, g.Members...)
			pc.Groups[g.ID] = g.Members
		}
		pc.GroupOf = func(string) protocols.GroupID { return 0 }
	}
	pc.Peers = slices.Sorted(slices.Values(pc.Peers))
	_, err := spec.New(pc) // the protocol's own check (paxos accepts a pair with f = 0)
	return err
}

// nopEnv is the Env of a probe: it does nothing.
type nopEnv struct{}

func (nopEnv) Send(protocols.NodeID, protocols.Message) {}
func (nopEnv) Execute(protocols.Command)                {}
func (nopEnv) Persist([]byte)                           {}
func (nopEnv) Rand() *rand.Rand                         { return rand.New(rand.NewPCG(1, 1)) }

// tagSender is a local replica's view of the host's transport: it tags
// every message with the replica's instance; Close leaves the shared
// transport open.
type tagSender struct {
	tr  transport.Transport
	tag uint32
}

// Send implements transport.Transport.
func (s tagSender) Send(to protocols.NodeID, m protocols.Message) {
	s.tr.Send(to, transport.Tagged{Tag: s.tag, Msg: m})
}

// Close implements transport.Transport; the host closes the transport.
func (tagSender) Close() error { return nil }

// dispatch is the transport's handler: it hands a tagged message to the
// local replica of its group.
func (h *Host) dispatch(from protocols.NodeID, m protocols.Message) {
	t, ok := m.(transport.Tagged)
	if !ok {
		h.misrouted.Add(1)
		return
	}
	s := h.slots[t.Tag]
	if s == nil || (s.members != nil && !s.members[from]) {
		h.misrouted.Add(1)
		return
	}
	if r := s.rep.Load(); r != nil {
		r.deliver(from, t.Msg)
	}
}

// Misrouted counts the messages received for a group this host does not
// run, from a node outside that group, or untagged.
func (h *Host) Misrouted() uint64 { return h.misrouted.Load() }

// Groups returns the whole layout (a copy).
func (h *Host) Groups() []Group {
	out := make([]Group, len(h.layout))
	for i, g := range h.layout {
		out[i] = Group{ID: g.ID, Members: slices.Clone(g.Members)}
	}
	return out
}

// Local returns the groups this node is a member of, in ascending order.
func (h *Host) Local() []protocols.GroupID { return slices.Clone(h.local) }

// Multicast reports whether the host runs one multicast instance over all
// nodes rather than one instance per group.
func (h *Host) Multicast() bool { return h.multicast }

// replica returns the local replica that orders group g's commands.
func (h *Host) replica(g protocols.GroupID) (*Replica, error) {
	ms := h.members(g)
	if ms == nil {
		return nil, fmt.Errorf("%w: there is no group %d (groups 0 to %d)", ErrNotMember, g, len(h.layout)-1)
	}
	r := h.reps[g]
	if r == nil {
		return nil, fmt.Errorf("%w: node %d is not in group %d (members %v)", ErrNotMember, h.cfg.ID, g, ms)
	}
	return r, nil
}

// Do submits cmd at this node's replica of group g and waits for its
// answer as Replica.Do does (RequestTimeout, ErrTimeout, ErrBusy,
// ErrDuplicate). It returns ErrNotMember if this node is not in g, and in
// multicast mode ErrWrongGroup if cmd has keys and none maps to g (the
// protocol sends cmd to its keys' groups, which must include g for this
// node to answer it).
func (h *Host) Do(ctx context.Context, g protocols.GroupID, cmd protocols.Command) ([]byte, error) {
	r, err := h.replica(g)
	if err != nil {
		return nil, err
	}
	if h.multicast && len(cmd.Keys) > 0 {
		pc := protocols.Config{Groups: h.groups, GroupOf: h.groupOf}
		if !slices.Contains(mcast.Destinations(&pc, g, cmd), g) {
			return nil, fmt.Errorf("%w: keys %q map to none of group %d", ErrWrongGroup, cmd.Keys, g)
		}
	}
	return r.Do(ctx, cmd)
}

// DoLevel is Do at level k of group g: k = 0 is Do, k >= 1 submits cmd
// at this node's instance of HostConfig.Levels[k-1]. It returns
// ErrNotMember if this node is not in g, and an error naming the levels
// for a level the host does not run.
func (h *Host) DoLevel(ctx context.Context, g protocols.GroupID, k int, cmd protocols.Command) ([]byte, error) {
	res, _, err := h.DoLevelAt(ctx, g, k, cmd)
	return res, err
}

// DoLevelAt is DoLevel that also returns the log position of the answer
// (Replica.DoAt): 0 but at a level whose protocol reports positions (the
// sequential level).
func (h *Host) DoLevelAt(ctx context.Context, g protocols.GroupID, k int, cmd protocols.Command) ([]byte, uint64, error) {
	if k == 0 {
		res, err := h.Do(ctx, g, cmd)
		return res, 0, err
	}
	r, err := h.levelReplica(g, k)
	if err != nil {
		return nil, 0, err
	}
	return r.DoAt(ctx, cmd)
}

// InspectLevel is Inspect at level k of group g (k = 0 is Inspect).
func (h *Host) InspectLevel(ctx context.Context, g protocols.GroupID, k int, fn func(replica.StateMachine)) error {
	if k == 0 {
		return h.Inspect(ctx, g, fn)
	}
	r, err := h.levelReplica(g, k)
	if err != nil {
		return err
	}
	return r.Inspect(ctx, fn)
}

// Levels returns the protocols of levels 1, 2, ... (HostConfig.Levels).
func (h *Host) Levels() []string { return slices.Clone(h.cfg.Levels) }

// levelReplica returns this node's instance of level k >= 1 of group g.
func (h *Host) levelReplica(g protocols.GroupID, k int) (*Replica, error) {
	if k < 1 || k > len(h.cfg.Levels) {
		return nil, fmt.Errorf("runner: no level %d: this host runs levels 0 (%s) to %d %v", k, h.cfg.Protocol, len(h.cfg.Levels), h.cfg.Levels)
	}
	if _, err := h.replica(g); err != nil {
		return nil, err
	}
	return h.lreps[levelKey{g, k}], nil
}

// Status returns the status of every local replica, in the order of Local.
func (h *Host) Status(ctx context.Context) ([]Status, error) {
	out := make([]Status, 0, len(h.local))
	for _, g := range h.local {
		s, err := h.reps[g].Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("runner: group %d: %w", g, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// LevelStatus returns the status of every level instance of every local
// group (HostConfig.Levels), by group in the order of Local, then by level;
// each has its Level set. It is empty without levels.
func (h *Host) LevelStatus(ctx context.Context) ([]Status, error) {
	var out []Status
	for _, g := range h.local {
		for k := 1; k <= len(h.cfg.Levels); k++ {
			r := h.lreps[levelKey{g, k}]
			if r == nil {
				continue
			}
			s, err := r.Status(ctx)
			if err != nil {
				return nil, fmt.Errorf("runner: group %d level %d: %w", g, k, err)
			}
			s.Level = k
			out = append(out, s)
		}
	}
	return out, nil
}

// Inspect runs fn with the state machine of this node's replica of group
// g on that replica's core goroutine, as Replica.Inspect does: fn must only
// read, must not keep the state machine, and should be quick. It returns
// ErrNotMember if this node is not in g.
func (h *Host) Inspect(ctx context.Context, g protocols.GroupID, fn func(replica.StateMachine)) error {
	r, err := h.replica(g)
	if err != nil {
		return err
	}
	return r.Inspect(ctx, fn)
}

// Close stops the transport and every local replica; calls still waiting
// time out. It is idempotent.
func (h *Host) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	var errs []error
	if h.tr != nil {
		errs = append(errs, h.tr.Close())
	}
	for _, g := range h.local {
		if r := h.reps[g]; r != nil {
			errs = append(errs, r.Close())
		}
		for k := range h.cfg.Levels {
			if r := h.lreps[levelKey{g, k + 1}]; r != nil {
				errs = append(errs, r.Close())
			}
		}
	}
	return errors.Join(errs...)
}
