package main

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/replicated"
	"github.com/blossom-dso/blossom/dso/ring"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/replica"
	"github.com/blossom-dso/blossom/runner"
)

// replicationFlags are the flags of persistent objects, shared by server
// and cluster.
type replicationFlags struct {
	protocol     string
	rf           int
	dataDir      string
	peerOffset   int
	compactEvery int
	noSync       bool
	tick         time.Duration
}

func (f *replicationFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.protocol, "protocol", "paxos", "replication protocol of persistent objects: "+strings.Join(protocols.Names(), ", "))
	fs.IntVar(&f.rf, "rf", 0, "replication factor of persistent objects, 1..nodes (0: ephemeral objects only)")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory of the replicas' logs and snapshots (needed with --rf)")
	fs.IntVar(&f.peerOffset, "peer-port-offset", 1000, "replicas talk to each other on each node's client port plus this")
	fs.IntVar(&f.compactEvery, "compact-every", 10000, "snapshot each replica after this many log records (negative: never)")
	fs.BoolVar(&f.noSync, "no-sync", false, "do not fsync the replicas' logs (benchmarks only: acknowledged calls may be lost)")
	fs.DurationVar(&f.tick, "tick", 10*time.Millisecond, "protocol tick (failure detection and retransmission)")
}

// validate checks the flags that do not depend on the cluster.
func (f *replicationFlags) validate() error {
	if _, err := protocols.Lookup(f.protocol); err != nil {
		return fmt.Errorf("--protocol %q is not one of %s", f.protocol, strings.Join(protocols.Names(), ", "))
	}
	if f.rf < 0 {
		return fmt.Errorf("--rf %d: the replication factor is 0 (no persistent objects) or 1..nodes", f.rf)
	}
	if f.rf > 0 && f.dataDir == "" {
		return fmt.Errorf("--rf %d needs --data-dir, where the replicas keep their logs", f.rf)
	}
	return nil
}

// peerAddr is the replica-to-replica address of a node's client endpoint.
func (f *replicationFlags) peerAddr(endpoint string) (string, error) {
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p+f.peerOffset <= 0 || p+f.peerOffset > 65535 {
		return "", fmt.Errorf("endpoint %s: port plus --peer-port-offset %d is not a port", endpoint, f.peerOffset)
	}
	return net.JoinHostPort(host, strconv.Itoa(p+f.peerOffset)), nil
}

// start starts this node's replicas of persistent objects: members are
// the client endpoints of every node (this one, self, included; empty for
// a one-node cluster), and dataDir this node's own directory. Nodes are
// numbered 1..n in the sorted order of their endpoints, the ring's order.
func (f *replicationFlags) start(members []string, self, dataDir string, reg *dso.Registry, log *slog.Logger) (*runner.Host, *server.Replication, error) {
	if len(members) == 0 {
		members = []string{self}
	}
	nodes := slices.Sorted(slices.Values(members))
	nodes = slices.Compact(nodes)
	if f.rf > len(nodes) {
		return nil, nil, fmt.Errorf("--rf %d is larger than the cluster (%d nodes): valid values are 1..%d", f.rf, len(nodes), len(nodes))
	}
	rg, err := ring.New(nodes, 0)
	if err != nil {
		return nil, nil, err
	}
	peers := map[protocols.NodeID]string{}
	var me protocols.NodeID
	for i, ep := range nodes {
		a, err := f.peerAddr(ep)
		if err != nil {
			return nil, nil, err
		}
		peers[protocols.NodeID(i+1)] = a
		if ep == self {
			me = protocols.NodeID(i + 1)
		}
	}
	if me == 0 {
		return nil, nil, fmt.Errorf("this node's endpoint %s is not among the members %v", self, nodes)
	}
	disjoint := runner.Multicast(f.protocol)
	groupOf := func(ref dso.Ref) protocols.GroupID {
		g, _ := rg.Group(ref.Type, ref.Key, f.rf, disjoint)
		return protocols.GroupID(g)
	}
	cfg := runner.HostConfig{
		ID: me, Peers: peers, Protocol: f.protocol, RF: f.rf, DataDir: dataDir,
		CompactEvery: f.compactEvery, NoSync: f.noSync, Tick: f.tick, Logger: log,
		// A command the replicas do not apply within this is answered
		// with a timeout, and its client tries the next replica; a call
		// that parks (a barrier's await) then waits for its client.
		RequestTimeout: 3 * time.Second,
		NewStateMachine: func(g protocols.GroupID) replica.StateMachine {
			o := replicated.Options{}
			if disjoint {
				o.Owns = func(ref dso.Ref) bool { return groupOf(ref) == g }
			}
			return replicated.New(reg, o)
		},
	}
	if disjoint {
		cfg.GroupOf = func(key string) protocols.GroupID {
			ref, err := replicated.ParseKey(key)
			if err != nil {
				return 0
			}
			return groupOf(ref)
		}
	}
	h, err := runner.StartHost(cfg)
	if err != nil {
		return nil, nil, err
	}
	log.Info("persistent objects on", "protocol", f.protocol, "rf", f.rf, "node", me, "groups", h.Local(),
		"data_dir", dataDir, "peer_addr", peers[me], "fsync", !f.noSync)
	return h, &server.Replication{Replicas: h, RF: f.rf, Protocol: f.protocol, Disjoint: disjoint}, nil
}

// nodeDataDir is the data dir of one node of `blossom cluster`.
func nodeDataDir(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("node%d", i)) }
