package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/server"
)

func init() { root.AddCommand(newClusterCmd()) }

func newClusterCmd() *cobra.Command {
	var nodes, basePort, maxFrame, maxConns, maxObjects int
	var host, logLevel, storage string
	var tlsCert, tlsKey, tlsClientCA, tokensFile, adminAddr string
	var withPprof bool
	var gcHeadroom float64
	var rep replicationFlags
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run N DSO servers in one process, for development",
		Long: `Run a DSO cluster of --nodes servers in this process, listening on
consecutive ports from --base-port. It prints the endpoints (also as a
BLOSSOM_ENDPOINTS line) and stops cleanly on SIGINT or SIGTERM.

With --rf R the nodes also hold persistent objects, replicated on R nodes by
--protocol (see blossom server); node i keeps its replicas' logs in
--data-dir/node<i>, so a cluster restarted with the same flags answers with
its persistent objects.

With --storage pmem:DIR every node keeps its objects in the pmem heap
DIR/node<i>.heap (see blossom server --storage), so a restarted cluster with
the same --nodes, --host and --base-port answers with its objects. (Unlike
blossom server, the replicas of persistent objects keep their snapshots in
files under --data-dir here, not in the heaps.)

With --admin-addr the process serves one admin endpoint for all its nodes:
Prometheus metrics at /metrics, each node's series labelled node="HOST:PORT"
(see blossom server --admin-addr), and with --pprof net/http/pprof under
/debug/pprof/ (the nodes share one process, hence one profile).`,
		Example: `  blossom cluster --nodes 3 &
  blossom counter -n c increment -i 5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 {
				return &exitError{2, fmt.Errorf("--nodes must be at least 1")}
			}
			log, err := dsoLogger(logLevel)
			if err != nil {
				return &exitError{2, err}
			}
			stopGC, err := tuneGC(gcHeadroom)
			if err != nil {
				return &exitError{2, err}
			}
			defer stopGC()
			pmemDir, err := server.ParseStorage(storage)
			if err != nil {
				return &exitError{2, err}
			}
			if pmemDir != "" {
				if err := os.MkdirAll(pmemDir, 0o755); err != nil {
					return &exitError{1, err}
				}
			}
			o := dsotest.Options{Host: host, BasePort: basePort, MaxFrame: maxFrame, Logger: log, PmemDir: pmemDir,
				MaxConns: maxConns, MaxObjects: maxObjects}
			if tlsCert != "" || tlsKey != "" || tlsClientCA != "" {
				if o.TLS, err = dsotest.ServerTLS(tlsCert, tlsKey, tlsClientCA); err != nil {
					return &exitError{2, err}
				}
			}
			if tokensFile != "" {
				fh, err := os.Open(tokensFile)
				if err != nil {
					return &exitError{2, err}
				}
				o.Tokens, err = server.ParseTokens(fh)
				fh.Close()
				if err != nil {
					return &exitError{2, fmt.Errorf("%s: %w", tokensFile, err)}
				}
			}
			if withPprof && adminAddr == "" {
				return &exitError{2, fmt.Errorf("--pprof needs --admin-addr")}
			}
			if err := rep.validate(); err != nil {
				return &exitError{2, err}
			}
			if rep.rf > nodes {
				return &exitError{2, fmt.Errorf("--rf %d is larger than the cluster (%d nodes): valid values are 1..%d", rep.rf, nodes, nodes)}
			}
			if rep.rf > 0 {
				o.Replicate = func(i int, eps []string, reg *dso.Registry) (*server.Replication, io.Closer, error) {
					members := eps
					if len(eps) == 1 {
						members = nil
					}
					h, r, err := rep.start(members, eps[i], nodeDataDir(rep.dataDir, i+1), reg, nil, log.With("node", eps[i]))
					return r, h, err
				}
			}
			cl, err := dsotest.StartCluster(nodes, o)
			if err != nil {
				return &exitError{1, err}
			}
			if adminAddr != "" {
				stopAdmin, err := startAdmin(log, adminAddr, withPprof, func(reg prometheus.Registerer) error {
					for i, s := range cl.Servers {
						node := prometheus.Labels{"node": cl.Endpoints[i]}
						if err := prometheus.WrapRegistererWith(node, reg).Register(s); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					cl.Close()
					return &exitError{1, err}
				}
				defer stopAdmin()
			}
			ctx, stop := dsoSignalContext(cmd)
			defer stop()
			out := cmd.OutOrStdout()
			if o.TLS == nil {
				log.Warn("development cluster listening without TLS", "host", host)
			}
			if len(o.Tokens) == 0 {
				log.Warn("development cluster without authentication: any client that reaches it can read, change, list and delete every object", "host", host)
			}
			for i, ep := range cl.Endpoints {
				fmt.Fprintf(out, "node %d: %s\n", i+1, ep)
			}
			fmt.Fprintf(out, "BLOSSOM_ENDPOINTS=%s\n", strings.Join(cl.Endpoints, ","))
			<-ctx.Done()
			fmt.Fprintln(out, "stopping")
			return cl.Close()
		},
	}
	f := cmd.Flags()
	f.IntVar(&nodes, "nodes", 3, "number of servers")
	f.IntVar(&basePort, "base-port", 7400, "port of the first server; the others follow (0: free ports)")
	f.StringVar(&host, "host", "127.0.0.1", "address to listen on")
	f.IntVar(&maxFrame, "max-frame", 16<<20, "largest request accepted, in bytes")
	f.StringVar(&tlsCert, "tls-cert", "", "PEM certificate of every node (see blossom server)")
	f.StringVar(&tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&tlsClientCA, "tls-client-ca", "", "PEM CA certificate that client certificates must be signed by (mutual TLS)")
	f.StringVar(&tokensFile, "tokens", "", "file of TOKEN RIGHTS lines (read, write, admin) for every node")
	f.IntVar(&maxConns, "max-conns", server.DefaultMaxConns, "most client connections open at once, per node")
	f.IntVar(&maxObjects, "max-objects", 0, "most objects per node (0: no limit)")
	f.StringVar(&adminAddr, "admin-addr", "", "serve Prometheus metrics of every node at http://ADDR/metrics, labelled by node (off by default)")
	f.BoolVar(&withPprof, "pprof", false, "also serve net/http/pprof under /debug/pprof/ on --admin-addr")
	f.Float64Var(&gcHeadroom, "gc-headroom", defaultGCHeadroom, "garbage-collector headroom as a fraction of the live heap, at least 4 MiB (0: Go's default, twice the live heap; GOGC in the environment wins)")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	f.StringVar(&storage, "storage", "memory", "where objects live: memory, or pmem:DIR (one pmem heap file per node in DIR)")
	rep.add(f)
	return cmd
}
