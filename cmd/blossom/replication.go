package main

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/pmem/snapstore"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/runner"
	"github.com/blossom-dso/blossom/storage/wal"
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
	segmentBytes int64
	levels       bool
}

func (f *replicationFlags) add(fs *pflag.FlagSet) {
	fs.StringVar(&f.protocol, "protocol", "paxos", "replication protocol of persistent objects: "+strings.Join(protocols.Names(), ", "))
	fs.IntVar(&f.rf, "rf", 0, "replication factor of persistent objects, 1..nodes (0: ephemeral objects only)")
	fs.StringVar(&f.dataDir, "data-dir", "", "directory of the replicas' logs and snapshots (needed with --rf)")
	fs.IntVar(&f.peerOffset, "peer-port-offset", 1000, "replicas talk to each other on each node's client port plus this")
	fs.IntVar(&f.compactEvery, "compact-every", 10000, "snapshot each replica after this many log records (negative: never)")
	fs.BoolVar(&f.noSync, "no-sync", false, "do not fsync the replicas' logs (benchmarks only: acknowledged calls may be lost)")
	fs.DurationVar(&f.tick, "tick", 10*time.Millisecond, "protocol tick (failure detection and retransmission)")
	fs.Int64Var(&f.segmentBytes, "wal-segment-bytes", 8<<20, "size at which a replica's write-ahead log starts a new segment file; a snapshot frees only whole segments")
	fs.BoolVar(&f.levels, "levels", true, "also run the sequential and weak levels of persistent objects (--level on the object commands): one sequential and one weak-merge instance more per replica group")
}

// validate checks the flags that do not depend on the cluster.
func (f *replicationFlags) validate() error {
	spec, err := protocols.Lookup(f.protocol)
	if err != nil {
		return fmt.Errorf("--protocol %q is not one of %s", f.protocol, strings.Join(protocols.Names(), ", "))
	}
	if spec.Contract != protocols.Linearizable {
		// The persistent objects' calls (increments, parked calls) are not
		// blind writes and need one order; the weaker levels run beside
		// the protocol, per object (--levels, --level).
		return fmt.Errorf("--protocol %q keeps the %s contract; persistent objects need a linearizable protocol (the sequential and weak levels run beside it with --levels, chosen per object with --level)", f.protocol, spec.Contract)
	}
	if f.rf < 0 {
		return fmt.Errorf("--rf %d: the replication factor is 0 (no persistent objects) or 1..nodes", f.rf)
	}
	if f.segmentBytes < 1 {
		return fmt.Errorf("--wal-segment-bytes %d: want a size above 0", f.segmentBytes)
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
// snaps, if not nil, keeps the groups' snapshots in a pmem heap instead of
// files in dataDir.
func (f *replicationFlags) start(members []string, self, dataDir string, reg *dso.Registry, snaps *snapstore.Store, log *slog.Logger) (*runner.Host, *server.Replication, error) {
	if len(members) == 0 {
		members = []string{self}
	}
	cfg, disjoint, err := server.HostConfig(members, self, f.protocol, f.rf, reg, f.peerAddr)
	if err != nil {
		return nil, nil, err
	}
	if f.levels {
		server.EnableLevels(&cfg, reg)
	}
	cfg.DataDir, cfg.CompactEvery, cfg.NoSync, cfg.Tick, cfg.Logger = dataDir, f.compactEvery, f.noSync, f.tick, log
	cfg.SegmentBytes = f.segmentBytes
	if snaps != nil {
		cfg.Snapshots = func(g protocols.GroupID) wal.SnapshotStore { return snaps.Named(fmt.Sprintf("group-%d", g)) }
	}
	// A command the replicas do not apply within this is answered with a
	// timeout, and its client tries the next replica; a call that parks
	// (a barrier's await) then waits for its client.
	cfg.RequestTimeout = 3 * time.Second
	h, err := runner.StartHost(cfg)
	if err != nil {
		return nil, nil, err
	}
	snapsIn := "files in the data dir"
	if snaps != nil {
		snapsIn = "pmem heap"
	}
	log.Info("persistent objects on", "protocol", f.protocol, "rf", f.rf, "levels", cfg.Levels, "node", cfg.ID, "groups", h.Local(),
		"data_dir", dataDir, "snapshots", snapsIn, "peer_addr", cfg.Peers[cfg.ID], "fsync", !f.noSync)
	return h, &server.Replication{Replicas: h, RF: f.rf, Protocol: f.protocol, Disjoint: disjoint}, nil
}

// nodeDataDir is the data dir of one node of `blossom cluster`.
func nodeDataDir(dir string, i int) string { return filepath.Join(dir, fmt.Sprintf("node%d", i)) }
