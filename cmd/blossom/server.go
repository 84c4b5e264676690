package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/blossom-dso/blossom/internal/gctune"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/pmem"
	"github.com/blossom-dso/blossom/pmem/snapstore"
)

func init() { root.AddCommand(newServerCmd()) }

// dsoLogger returns a text logger on stderr at the given level name.
func dsoLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad --log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// dsoSignalContext derives from the command's context a context that is
// also canceled by SIGINT or SIGTERM.
func dsoSignalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	parent := cmd.Context()
	if parent == nil {
		parent = context.Background()
	}
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// parsePeers reads "1=h1:7400,2=h2:7400" or "h1:7400,h2:7400" into an
// ordered list of endpoints and a map from id to endpoint.
func parsePeers(s string) ([]string, map[string]string, error) {
	var eps []string
	ids := map[string]string{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		id, ep, ok := strings.Cut(p, "=")
		if !ok {
			ep, id = p, fmt.Sprint(len(eps)+1)
		}
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return nil, nil, fmt.Errorf("peer %q: %w", p, err)
		}
		if _, dup := ids[id]; dup {
			return nil, nil, fmt.Errorf("peer id %s given twice", id)
		}
		ids[id] = ep
		eps = append(eps, ep)
	}
	return eps, ids, nil
}

// defaultGCHeadroom is the default of --gc-headroom.
const defaultGCHeadroom = 0.125

// tuneGC sizes the garbage collector's headroom to frac of the live heap
// (see internal/gctune) until the returned function is called.
func tuneGC(frac float64) (func(), error) {
	if frac < 0 || frac > 10 {
		return nil, fmt.Errorf("--gc-headroom %g: want a fraction of the live heap between 0 and 10 (0: Go's default)", frac)
	}
	return gctune.Start(frac, 250*time.Millisecond), nil
}

// startAdmin serves the admin endpoint on addr: Prometheus metrics at
// /metrics (the Go runtime's and the process's, and those of every
// collector register adds) and, with withPprof, net/http/pprof under /debug/pprof/.
// It logs that the endpoint is on, and returns a function that stops it.
func startAdmin(log *slog.Logger, addr string, withPprof bool, register func(prometheus.Registerer) error) (func(), error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := register(reg); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--admin-addr: %w", err)
	}
	hs := &http.Server{Handler: server.AdminHandler(reg, withPprof), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin endpoint stopped", "err", err)
		}
	}()
	log.Info("admin endpoint on: Prometheus metrics at http://"+l.Addr().String()+"/metrics (no TLS, no authentication)",
		"pprof", withPprof)
	if withPprof {
		log.Warn("pprof on at http://" + l.Addr().String() + "/debug/pprof/: anyone who reaches it can profile this process")
	}
	return func() { hs.Close() }, nil
}

// logSecurity says at start, loudly, which protections are off.
func logSecurity(log *slog.Logger, addr net.Addr, cfg server.Config) {
	exposed := true
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		exposed = false
	}
	if cfg.TLS == nil {
		log.Warn("listening without TLS on "+addr.String()+": traffic is in clear text", "exposed_beyond_loopback", exposed)
	} else if cfg.TLS.ClientCAs == nil {
		log.Info("TLS on; client certificates not required (no --tls-client-ca)")
	} else {
		log.Info("mutual TLS on: clients must present a certificate")
	}
	if len(cfg.Tokens) == 0 {
		log.Warn("no authentication: any client that reaches "+addr.String()+" can read, change, list and delete every object (see --tokens)",
			"exposed_beyond_loopback", exposed)
	} else {
		log.Info("token authentication on", "tokens", len(cfg.Tokens))
	}
}

func newServerCmd() *cobra.Command {
	var listen, peers, id, advertise, logLevel, storage string
	var tlsCert, tlsKey, tlsClientCA, tokensFile string
	var maxFrame, maxConns, maxObjects, maxKey int
	var maxBuffered, storageSize int64
	var frameTimeout time.Duration
	var benchTypes, withPprof bool
	var gcHeadroom float64
	var adminAddr string
	var rep replicationFlags
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run one DSO server node",
		Long: `Run one node of a DSO cluster. Objects live in one copy, on the node that
owns them on the consistent-hash ring of --peers. Without --peers the node is
a cluster of one and owns every object.

With --rf R (1..nodes) the node also holds persistent objects: each is
replicated on R nodes (its owner on the ring and the next R-1) by the
--protocol, whose replicas keep their logs and snapshots in --data-dir and
talk to each other on each node's port plus --peer-port-offset. A persistent
object survives kill -9 and restart of any of its replicas, and keeps
answering while a majority of them is up (clients move to the next replica
of a dead or frozen one). Clients choose per object: blossom counter
--persistent, client.Persistent() in Go. Ephemeral objects (the default)
live in the memory of their owner only.

By default (--storage memory) ephemeral objects live in memory. With --storage pmem:PATH
the node keeps its object table in the pmem heap file PATH (created with
--storage-size bytes if missing): every call that may change an object saves
the object's state in one failure-atomic block before replying, and a
restarted node (even after kill -9) answers with its objects. Only value
objects persist (atomics, Counter, Map, Set, List, TreeMap); creating a
barrier, semaphore or other synchronization object then fails. With --rf as
well, the replicas of persistent objects keep their snapshots in the same
heap instead of files (their write-ahead logs stay in --data-dir): a
restarted node recovers them from its heap's snapshots plus the logs.

Security is off by default and the node listens on loopback only. With
--tls-cert and --tls-key clients must speak TLS (and with --tls-client-ca
present a certificate signed by that CA); with --tokens each connection must
authenticate with a token whose rights are read (read-only methods), write
(every call but reset and clear) or admin (also delete, list, reset,
clear). blossom certs makes a test CA and certificates.

With --admin-addr the node serves Prometheus metrics at /metrics on that
address (plain HTTP, no authentication: keep it on loopback or a private
network): calls by type and method, call latency by type, call errors by
code, open connections, parked calls, objects by type, bytes read and
written, and the Go runtime's and process's metrics. --pprof adds
net/http/pprof under /debug/pprof/ on the same listener. Both are off by
default.`,
		Example: `  blossom server
  blossom server --storage pmem:/var/lib/blossom/node.heap
  blossom certs --dir certs --hosts h1,h2,h3
  blossom server --listen :7400 --tls-cert certs/server.pem --tls-key certs/server-key.pem \
      --tls-client-ca certs/ca.pem --tokens tokens.txt
  blossom server --admin-addr 127.0.0.1:7480 --pprof
  blossom server --id 1 --listen :7400 --peers 1=h1:7400,2=h2:7400,3=h3:7400
  blossom server --id 1 --listen 127.0.0.1:7401 --peers 127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403 \
      --protocol atlas --rf 3 --data-dir /var/lib/blossom/n1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := dsoLogger(logLevel)
			if err != nil {
				return &exitError{2, err}
			}
			stopGC, err := tuneGC(gcHeadroom)
			if err != nil {
				return &exitError{2, err}
			}
			defer stopGC()
			pmemPath, err := server.ParseStorage(storage)
			if err != nil {
				return &exitError{2, err}
			}
			var heap *pmem.Heap
			if pmemPath != "" {
				// One heap for the ephemeral objects and the snapshots of
				// the persistent objects' replicas; closed after both.
				if heap, err = server.OpenPmemHeap(pmemPath, storageSize); err != nil {
					return &exitError{2, err}
				}
				defer heap.Close()
			}
			cfg := server.Config{MaxFrame: maxFrame, Logger: log, Registry: dso.NewRegistry(),
				PmemHeap: heap,
				MaxConns: maxConns, MaxBuffered: maxBuffered, FrameTimeout: frameTimeout,
				MaxObjects: maxObjects, MaxKey: maxKey}
			if tlsCert != "" || tlsKey != "" || tlsClientCA != "" {
				if tlsCert == "" || tlsKey == "" {
					return &exitError{2, fmt.Errorf("TLS needs both --tls-cert and --tls-key")}
				}
				if cfg.TLS, err = dsotest.ServerTLS(tlsCert, tlsKey, tlsClientCA); err != nil {
					return &exitError{2, err}
				}
			}
			if tokensFile != "" {
				fh, err := os.Open(tokensFile)
				if err != nil {
					return &exitError{2, err}
				}
				cfg.Tokens, err = server.ParseTokens(fh)
				fh.Close()
				if err != nil {
					return &exitError{2, fmt.Errorf("%s: %w", tokensFile, err)}
				}
				if len(cfg.Tokens) == 0 {
					return &exitError{2, fmt.Errorf("%s: no tokens", tokensFile)}
				}
			}
			if benchTypes {
				if err := registerBenchTypes(cfg.Registry); err != nil {
					return &exitError{2, err}
				}
			}
			if peers != "" {
				eps, ids, err := parsePeers(peers)
				if err != nil {
					return &exitError{2, err}
				}
				cfg.Members = eps
				switch {
				case advertise != "":
					cfg.Self = advertise
				case id != "":
					if cfg.Self = ids[id]; cfg.Self == "" {
						return &exitError{2, fmt.Errorf("--id %s is not in --peers", id)}
					}
				default:
					return &exitError{2, fmt.Errorf("--peers needs --id or --advertise to know which peer this is")}
				}
			}
			if err := rep.validate(); err != nil {
				return &exitError{2, err}
			}
			if rep.rf > 0 {
				self := cfg.Self
				if self == "" {
					self = listen
				}
				var snaps *snapstore.Store
				if heap != nil {
					if snaps, err = snapstore.Open(heap); err != nil {
						return &exitError{2, err}
					}
				}
				h, r, err := rep.start(cfg.Members, self, rep.dataDir, cfg.Registry, snaps, log)
				if err != nil {
					return &exitError{2, err}
				}
				defer h.Close()
				cfg.Replication = r
			}
			s, err := server.New(cfg)
			if err != nil {
				return &exitError{2, err}
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{1, err}
			}
			if withPprof && adminAddr == "" {
				return &exitError{2, fmt.Errorf("--pprof needs --admin-addr")}
			}
			if adminAddr != "" {
				stopAdmin, err := startAdmin(log, adminAddr, withPprof, func(reg prometheus.Registerer) error { return reg.Register(s) })
				if err != nil {
					l.Close()
					return &exitError{1, err}
				}
				defer stopAdmin()
			}
			ctx, stop := dsoSignalContext(cmd)
			defer stop()
			errc := make(chan error, 1)
			go func() { errc <- s.Serve(l) }()
			log.Info("dso server listening", "addr", l.Addr().String(), "self", cfg.Self, "members", len(cfg.Members),
				"max_conns", cfg.MaxConns, "max_objects", maxObjects)
			logSecurity(log, l.Addr(), cfg)
			fmt.Fprintf(cmd.OutOrStdout(), "blossom server listening on %s\n", l.Addr())
			select {
			case <-ctx.Done():
				log.Info("dso server stopping")
				s.Close()
				return nil
			case err := <-errc:
				s.Close()
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:7400", "address to listen on (loopback by default; e.g. :7400 for every interface)")
	f.StringVar(&tlsCert, "tls-cert", "", "PEM certificate of this server: clients must then use TLS")
	f.StringVar(&tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&tlsClientCA, "tls-client-ca", "", "PEM CA certificate: clients must present a certificate it signed (mutual TLS)")
	f.StringVar(&tokensFile, "tokens", "", "file of TOKEN RIGHTS lines (rights: read, write, admin); clients must then send a token")
	f.IntVar(&maxObjects, "max-objects", 0, "most objects this node holds; calls that would create more fail (0: no limit)")
	f.IntVar(&maxKey, "max-key", server.DefaultMaxKey, "longest object name (key), in bytes, a call may create")
	f.StringVar(&peers, "peers", "", "cluster members: id=host:port,... (or host:port,...), this node included")
	f.StringVar(&id, "id", "", "this node's id in --peers")
	f.StringVar(&advertise, "advertise", "", "this node's endpoint as listed in --peers (instead of --id)")
	f.IntVar(&maxFrame, "max-frame", 16<<20, "largest request accepted, in bytes")
	f.IntVar(&maxConns, "max-conns", server.DefaultMaxConns, "most client connections open at once; more are refused with an error frame")
	f.Int64Var(&maxBuffered, "max-buffered", server.DefaultMaxBuffered, "most bytes of large requests held while they arrive, over all connections")
	f.DurationVar(&frameTimeout, "frame-timeout", server.DefaultFrameTimeout, "close a connection that stalls this long in the middle of a request")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringVar(&storage, "storage", "memory", "where objects live: memory, or pmem:PATH (a pmem heap file that survives restarts)")
	f.Int64Var(&storageSize, "storage-size", server.DefaultPmemSize, "size in bytes of a pmem heap created by --storage pmem:PATH (it holds the ephemeral objects and, with --rf, room for two copies of each replica group's snapshot)")
	f.StringVar(&adminAddr, "admin-addr", "", "serve Prometheus metrics at http://ADDR/metrics (off by default; e.g. 127.0.0.1:7480)")
	f.BoolVar(&withPprof, "pprof", false, "also serve net/http/pprof under /debug/pprof/ on --admin-addr")
	f.Float64Var(&gcHeadroom, "gc-headroom", defaultGCHeadroom, "garbage-collector headroom as a fraction of the live heap, at least 4 MiB (0: Go's default, twice the live heap; GOGC in the environment wins)")
	rep.add(f)
	f.BoolVar(&benchTypes, "bench-types", false, "also serve the object types of bench-dso")
	f.MarkHidden("bench-types")
	return cmd
}
