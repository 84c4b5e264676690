package dsotest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/replica"
	"github.com/blossom-dso/blossom/runner"
	"github.com/blossom-dso/blossom/transport"

	// The protocols a Replicated cluster may run, registered.
	_ "github.com/blossom-dso/blossom/protocols/atlas"
	_ "github.com/blossom-dso/blossom/protocols/epaxos"
	_ "github.com/blossom-dso/blossom/protocols/mencius"
	_ "github.com/blossom-dso/blossom/protocols/paxos"
	_ "github.com/blossom-dso/blossom/protocols/sequential"
	_ "github.com/blossom-dso/blossom/protocols/skeen"
	_ "github.com/blossom-dso/blossom/protocols/weak"
	_ "github.com/blossom-dso/blossom/protocols/whitebox-multicast"
)

// Replicated starts the replicas of persistent objects of an in-process
// cluster (its Replicate method is an Options.Replicate hook), wired as
// `blossom server --rf` wires them (cmd/blossom/replication.go): node ids
// 1..n in the sorted order of the endpoints (the ring's order), one
// runner.Host per node with a replicated.Table per local group (in
// multicast mode owning only its group's objects, and GroupOf mapping an
// object key to its group), but with the replicas talking over the
// in-memory Net instead of TCP. Each node keeps its logs and snapshots in
// Dir/node<id>, so Stop and Restart crash and recover one node's replicas
// while its server goes on. It is safe for concurrent use.
type Replicated struct {
	// Protocol is a registered protocol name; RF the replication factor.
	Protocol string
	RF       int
	// Dir holds the nodes' data directories.
	Dir string
	// Net carries the replicas' messages; see NewNetwork.
	Net *transport.Network
	// Tick is the protocols' tick (default 5ms); RequestTimeout bounds a
	// command until the local replica applies it (default 1s; the real
	// server uses 3s).
	Tick           time.Duration
	RequestTimeout time.Duration
	// Levels also runs the sequential and weak levels of persistent
	// objects (server.EnableLevels); Net must then encode with
	// runner.HostCodec(Protocol, server.DegradableLevels) (NewLevelNetwork).
	Levels bool
	// Logger receives the hosts' logs; nil discards them.
	Logger *slog.Logger
	// Observe, if set, is called after every command a node's server ran
	// on its replicas (ReplicatedNode.Do), with the answer or error; for
	// tests that count commands (the withdrawals of parked calls, ...).
	// It must be safe for concurrent use.
	Observe func(node protocols.NodeID, g protocols.GroupID, cmd protocols.Command, res []byte, err error)

	mu    sync.Mutex
	eps   []string // sorted: node id i+1 is eps[i]
	nodes map[string]*ReplicatedNode
}

// ReplicatedOptions returns an Options.Replicate hook that starts, for
// every node, replicas of persistent objects on the in-memory network net
// with the protocol and replication factor rf, keeping their data under
// dir (see Replicated).
func ReplicatedOptions(protocol string, rf int, dir string, net *transport.Network) func(i int, eps []string, reg *dso.Registry) (*server.Replication, io.Closer, error) {
	r := &Replicated{Protocol: protocol, RF: rf, Dir: dir, Net: net}
	return r.Replicate
}

// NewNetwork returns an in-memory network whose messages between nodes
// round-trip through the protocol's codec under the group tag, as they do
// on TCP.
func NewNetwork(protocol string) (*transport.Network, error) {
	spec, err := protocols.Lookup(protocol)
	if err != nil {
		return nil, err
	}
	return transport.NewNetworkWithOptions(transport.NetworkOptions{Codec: transport.TagCodec{Inner: spec.Codec}}), nil
}

// NewLevelNetwork is NewNetwork for a Replicated cluster with Levels: the
// messages of every level instance round-trip through its own codec.
func NewLevelNetwork(protocol string) (*transport.Network, error) {
	codec, err := runner.HostCodec(protocol, server.DegradableLevels)
	if err != nil {
		return nil, err
	}
	return transport.NewNetworkWithOptions(transport.NetworkOptions{Codec: codec}), nil
}

// Replicate is the Options.Replicate hook: it starts the replicas of node
// i (eps[i]) and returns its server's Replication and the node (whose
// Close stops them).
func (r *Replicated) Replicate(i int, eps []string, reg *dso.Registry) (*server.Replication, io.Closer, error) {
	self := eps[i]
	cfg, disjoint, err := server.HostConfig(eps, self, r.Protocol, r.RF, reg, func(ep string) (string, error) { return ep, nil })
	if err != nil {
		return nil, nil, fmt.Errorf("dsotest: %w", err)
	}
	nodes := slices.Compact(slices.Sorted(slices.Values(eps)))
	me := cfg.ID
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tick, timeout := r.Tick, r.RequestTimeout
	if tick <= 0 {
		tick = 5 * time.Millisecond
	}
	if timeout <= 0 {
		timeout = time.Second
	}
	if r.Levels {
		server.EnableLevels(&cfg, reg)
	}
	cfg.DataDir = filepath.Join(r.Dir, fmt.Sprintf("node%d", me))
	cfg.Network, cfg.Tick, cfg.RequestTimeout, cfg.Seed, cfg.Logger = r.Net, tick, timeout, uint64(me), log
	h, err := runner.StartHost(cfg)
	if err != nil {
		return nil, nil, err
	}
	n := &ReplicatedNode{ID: me, Endpoint: self, cfg: cfg, host: h, local: h.Local(), observe: r.Observe}
	r.mu.Lock()
	if r.nodes == nil {
		r.nodes = map[string]*ReplicatedNode{}
	}
	r.eps = nodes
	r.nodes[self] = n
	r.mu.Unlock()
	return &server.Replication{Replicas: n, RF: r.RF, Protocol: r.Protocol, Disjoint: disjoint}, n, nil
}

// Node returns the node whose endpoint is ep (nil if Replicate did not
// start it).
func (r *Replicated) Node(ep string) *ReplicatedNode {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.nodes[ep]
}

// Endpoints returns the endpoints of the nodes started, sorted: node id
// i+1 is the i-th.
func (r *Replicated) Endpoints() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.eps)
}

// ReplicatedNode is one node's replicas of persistent objects: the
// server.Replicas of its server. Stop and Restart swap its runner.Host.
type ReplicatedNode struct {
	// ID is the node's id on the network; Endpoint its server's.
	ID       protocols.NodeID
	Endpoint string

	cfg      runner.HostConfig
	local    []protocols.GroupID
	observe  func(protocols.NodeID, protocols.GroupID, protocols.Command, []byte, error)
	inflight atomic.Int64
	mu       sync.Mutex
	host     *runner.Host // nil while stopped
}

var _ server.Replicas = (*ReplicatedNode)(nil)

// Host returns the running host, nil while the node is stopped.
func (n *ReplicatedNode) Host() *runner.Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.host
}

// Do implements server.Replicas. While the node is stopped it answers
// runner.ErrTimeout at once, as a node whose replicas cannot reach their
// peers does after RequestTimeout, so that clients try the next replica.
func (n *ReplicatedNode) Do(ctx context.Context, g protocols.GroupID, cmd protocols.Command) (res []byte, err error) {
	return n.DoLevel(ctx, g, 0, cmd)
}

// DoLevel implements server.LevelReplicas as Do does.
func (n *ReplicatedNode) DoLevel(ctx context.Context, g protocols.GroupID, k int, cmd protocols.Command) ([]byte, error) {
	res, _, err := n.DoLevelAt(ctx, g, k, cmd)
	return res, err
}

// DoLevelAt implements server.LevelReplicas as Do does.
func (n *ReplicatedNode) DoLevelAt(ctx context.Context, g protocols.GroupID, k int, cmd protocols.Command) (res []byte, pos uint64, err error) {
	n.inflight.Add(1)
	defer n.inflight.Add(-1)
	if n.observe != nil {
		defer func() { n.observe(n.ID, g, cmd, res, err) }()
	}
	h := n.Host()
	if h == nil {
		return nil, 0, fmt.Errorf("%w (dsotest: node %d is stopped)", runner.ErrTimeout, n.ID)
	}
	return h.DoLevelAt(ctx, g, k, cmd)
}

// Levels implements server.LevelReplicas: the levels of the node's
// configuration.
func (n *ReplicatedNode) Levels() []string { return slices.Clone(n.cfg.Levels) }

// LevelStatus returns the status of the node's level instances
// (runner.Host.LevelStatus); it fails with runner.ErrClosed while the node
// is stopped.
func (n *ReplicatedNode) LevelStatus(ctx context.Context) ([]runner.Status, error) {
	h := n.Host()
	if h == nil {
		return nil, runner.ErrClosed
	}
	return h.LevelStatus(ctx)
}

// InFlight returns the number of calls of Do that have not returned: the
// commands the node's server is waiting on (a call parked on an object,
// a withdrawal, ...). Once the clients are done, it falls to the number
// of calls they left parked on purpose when the server is done with the
// others.
func (n *ReplicatedNode) InFlight() int { return int(n.inflight.Load()) }

// Local implements server.Replicas.
func (n *ReplicatedNode) Local() []protocols.GroupID { return slices.Clone(n.local) }

// Inspect implements server.Replicas; it fails with runner.ErrClosed
// while the node is stopped.
func (n *ReplicatedNode) Inspect(ctx context.Context, g protocols.GroupID, fn func(replica.StateMachine)) error {
	h := n.Host()
	if h == nil {
		return runner.ErrClosed
	}
	return h.Inspect(ctx, g, fn)
}

// InspectLevel implements server.LevelReplicas; it fails with
// runner.ErrClosed while the node is stopped.
func (n *ReplicatedNode) InspectLevel(ctx context.Context, g protocols.GroupID, k int, fn func(replica.StateMachine)) error {
	h := n.Host()
	if h == nil {
		return runner.ErrClosed
	}
	return h.InspectLevel(ctx, g, k, fn)
}

// Stop closes the node's host, as a crash of its replicas: it leaves the
// network, and calls waiting on it time out. It is a no-op if stopped.
func (n *ReplicatedNode) Stop() error {
	n.mu.Lock()
	h := n.host
	n.host = nil
	n.mu.Unlock()
	if h == nil {
		return nil
	}
	return h.Close()
}

// Restart starts the node's host again from its data directory (it stops
// it first if it is running).
func (n *ReplicatedNode) Restart() error {
	if err := n.Stop(); err != nil {
		return err
	}
	h, err := runner.StartHost(n.cfg)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.host = h
	n.mu.Unlock()
	return nil
}

// Close stops the node's host (io.Closer, for Options.Replicate).
func (n *ReplicatedNode) Close() error { return n.Stop() }
