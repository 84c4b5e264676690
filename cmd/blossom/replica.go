package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/runner"
)

func init() { root.AddCommand(newReplicaCmd()) }

func newReplicaCmd() *cobra.Command {
	var (
		cfg      runner.Config
		id       uint32
		peers    string
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "replica",
		Short: "Run one replica of a replicated key-value store over any protocol (write-ahead log, TCP)",
		Long: `replica runs one replica of a replicated key-value store: the protocol chosen
by --protocol, driven by the same replica core as the simulator, with a
write-ahead log and snapshots in --data-dir and TCP links to the peers. Clients
use its HTTP API on --client-addr:

  PUT /kv/KEY?client=C&seq=S&acked=A   (body: the value)
  GET /kv/KEY?client=C&seq=S&acked=A   (a linearizable read)
  GET /status

A call without client/seq gets a session of its own. A retry of the same
client/seq, at any replica, executes at most once. A 504 means the outcome is
unknown. With --groups G (wbcast, skeen) the replicas form G groups of 2f+1,
and a key belongs to one group; replica ids are 1..G*(2f+1).`,
		Example: `  blossom replica --id 1 --peers 1=127.0.0.1:7501,2=127.0.0.1:7502,3=127.0.0.1:7503 \
      --client-addr 127.0.0.1:7601 --protocol paxos --data-dir /tmp/r1
  curl -X PUT --data v1 'http://127.0.0.1:7601/kv/a'; curl 'http://127.0.0.1:7601/kv/a'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(protocols.Names(), cfg.Protocol) {
				return fmt.Errorf("unknown protocol %q (valid: %s)", cfg.Protocol, strings.Join(protocols.Names(), ", "))
			}
			pm, err := parseReplicaPeers(peers)
			if err != nil {
				return err
			}
			cfg.ID = protocols.NodeID(id)
			if _, ok := pm[cfg.ID]; !ok {
				return fmt.Errorf("--id %d is not among --peers", id)
			}
			if cfg.Groups == 0 && (cfg.F < 1 || cfg.F > (len(pm)-1)/2) && len(pm) > 1 {
				return fmt.Errorf("--f %d with %d replicas (need 1 <= f <= %d)", cfg.F, len(pm), (len(pm)-1)/2)
			}
			cfg.Peers = pm
			log, err := dsoLogger(logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = log
			ctx, cancel := dsoSignalContext(cmd)
			defer cancel()
			r, err := runner.Start(cfg)
			if err != nil {
				return err
			}
			<-ctx.Done()
			log.Info("stopping")
			return r.Close()
		},
	}
	f := cmd.Flags()
	f.Uint32Var(&id, "id", 1, "this replica's id (a key of --peers)")
	f.StringVar(&peers, "peers", "1=127.0.0.1:7501", "every replica's id=host:port for replica-to-replica traffic, comma-separated")
	f.StringVar(&cfg.ClientAddr, "client-addr", "127.0.0.1:7601", "listen address of the HTTP client API")
	f.StringVar(&cfg.Protocol, "protocol", "paxos", "replication protocol: "+strings.Join(protocols.Names(), ", "))
	f.IntVar(&cfg.F, "f", 1, "failures tolerated (per group with --groups)")
	f.IntVar(&cfg.Groups, "groups", 0, "multicast groups of 2f+1 replicas (wbcast, skeen); 0 replicates fully")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory of the write-ahead log and snapshots (required)")
	f.DurationVar(&cfg.Tick, "tick", 10*time.Millisecond, "protocol tick interval")
	f.IntVar(&cfg.SuspectTicks, "suspect-ticks", 0, "ticks of silence before a peer is suspected (0: the protocol's default)")
	f.IntVar(&cfg.CompactEvery, "compact-every", 10000, "checkpoint after every N log records (negative: never)")
	f.StringVar(&cfg.Cluster, "cluster", "blossom", "cluster name; peers with another name are refused")
	f.DurationVar(&cfg.RequestTimeout, "request-timeout", 5*time.Second, "how long a client call waits before 504 (outcome unknown)")
	f.IntVar(&cfg.MaxWaiting, "max-waiting", 10000, "client calls waiting at once before 503")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

// parseReplicaPeers reads "1=h:p,2=h:p" into a map.
func parseReplicaPeers(s string) (map[protocols.NodeID]string, error) {
	_, ids, err := parsePeers(s)
	if err != nil {
		return nil, err
	}
	out := map[protocols.NodeID]string{}
	for k, ep := range ids {
		n, err := strconv.ParseUint(k, 10, 32)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("peer id %q must be a positive integer", k)
		}
		out[protocols.NodeID(n)] = ep
	}
	return out, nil
}
