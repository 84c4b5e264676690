package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/grpclog"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
)

func init() { root.AddCommand(newBenchEtcdCmd()) }

type benchEtcdFlags struct {
	etcd       string
	protocols  []string
	rf         int
	nodes      int
	clients    []int
	keys       int
	duration   time.Duration
	dir        string
	peerOffset int
	quick      bool
}

func newBenchEtcdCmd() *cobra.Command {
	var fl benchEtcdFlags
	cmd := &cobra.Command{
		Use:   "bench-etcd",
		Short: "Benchmark persistent DSO objects against etcd on loopback",
		Long: `Start a 3-node etcd cluster (child processes of the etcd binary, Debian's
etcd-server package: make etcd installs it) and, one after the other, a
3-node Blossom cluster of child processes with persistent objects of each
--protocols at --rf 3, all on loopback with their data dirs in --dir (one
disk) and fsync on. Drive each with the same load generator: 1 KB puts and
gets of --keys keys chosen at random, by each number of --clients closed-loop
clients (each its own client: a clientv3.Client of every etcd endpoint, or a
dso client.Client whose calls go to the object's replicas) for --duration,
and print per system, operation and number of clients the throughput and the
p50 and p99 latency. Reads are linearizable in both systems (etcd's default
Get; a persistent object's get is a command of its group). The keys are
written once before the first measurement.

Without an etcd binary the etcd rows are skipped with an error naming the
package to install; the Blossom rows are still measured.`,
		Example: `  make etcd
  blossom bench-etcd
  blossom bench-etcd --quick --protocols paxos`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fl.quick && !cmd.Flags().Changed("duration") {
				fl.duration = time.Second
			}
			if len(fl.clients) == 0 || slices.Min(fl.clients) < 1 {
				return &exitError{2, fmt.Errorf("--clients: give one or more counts of at least 1")}
			}
			if fl.keys < 1 {
				return &exitError{2, fmt.Errorf("--keys must be at least 1")}
			}
			ctx, stop := dsoSignalContext(cmd)
			defer stop()
			return runBenchEtcd(ctx, cmd.OutOrStdout(), fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.etcd, "etcd", "etcd", "etcd server binary (Debian: apt-get install etcd-server, or make etcd)")
	f.StringSliceVar(&fl.protocols, "protocols", []string{"paxos", "atlas"}, "replication protocols of the Blossom clusters")
	f.IntVar(&fl.rf, "rf", 3, "replication factor of the Blossom clusters' persistent objects")
	f.IntVar(&fl.nodes, "nodes", 3, "nodes of each cluster")
	f.IntSliceVar(&fl.clients, "clients", []int{1, 200}, "numbers of concurrent clients, one measurement each")
	f.IntVar(&fl.keys, "keys", 1000, "keys (objects) the clients put and get")
	f.DurationVar(&fl.duration, "duration", 5*time.Second, "length of each measurement")
	f.StringVar(&fl.dir, "dir", "", "directory of the data dirs (default: a new temporary directory, removed at the end)")
	f.IntVar(&fl.peerOffset, "peer-port-offset", 1000, "peer port of each node: its client port plus this")
	f.BoolVar(&fl.quick, "quick", false, "short run (1s per measurement)")
	return cmd
}

// kvStore is one system under the load generator: worker w uses its own
// client.
type kvStore interface {
	put(ctx context.Context, w int, key string, val []byte) error
	get(ctx context.Context, w int, key string) error
	close()
}

// loadResult is one measurement of the load generator.
type loadResult struct {
	ops      int
	opsPerS  float64
	p50, p99 time.Duration
}

// runLoad runs op from workers closed-loop clients for d and returns the
// throughput and latency percentiles of the operations that completed.
// The first error ends the run.
func runLoad(parent context.Context, workers int, d time.Duration, op func(ctx context.Context, w int, rng *rand.Rand) error) (loadResult, error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	lats := make([][]time.Duration, workers)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				t := time.Now()
				if !t.Before(end) {
					return
				}
				if err := op(ctx, w, rng); err != nil {
					if ctx.Err() == nil {
						errc <- err
						cancel()
					}
					return
				}
				lats[w] = append(lats[w], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return loadResult{}, err
	}
	if err := parent.Err(); err != nil {
		return loadResult{}, err
	}
	all := slices.Concat(lats...)
	if len(all) == 0 {
		return loadResult{}, fmt.Errorf("no operation completed in %v", d)
	}
	slices.Sort(all)
	return loadResult{ops: len(all), opsPerS: float64(len(all)) / elapsed.Seconds(),
		p50: all[len(all)/2], p99: all[len(all)*99/100]}, nil
}

// benchKeys names the keys of the load.
func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprint("key", i)
	}
	return keys
}

// fillStore puts every key once, from up to 64 workers.
func fillStore(ctx context.Context, s kvStore, workers int, keys []string, val []byte) error {
	ws := min(workers, 64)
	var wg sync.WaitGroup
	errc := make(chan error, ws)
	for w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(keys); i += ws {
				if err := s.put(ctx, w, keys[i], val); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// kvResult is one line of the bench-etcd table.
type kvResult struct {
	system  string
	op      string
	clients int
	res     loadResult
}

// measureStore fills s and runs puts and gets for each number of clients.
func measureStore(ctx context.Context, out io.Writer, system string, s kvStore, fl benchEtcdFlags, val []byte) ([]kvResult, error) {
	keys := benchKeys(fl.keys)
	if err := fillStore(ctx, s, slices.Max(fl.clients), keys, val); err != nil {
		return nil, fmt.Errorf("%s: writing the keys: %w", system, err)
	}
	var rs []kvResult
	for _, n := range fl.clients {
		for _, op := range []string{"put", "get"} {
			r, err := runLoad(ctx, n, fl.duration, func(ctx context.Context, w int, rng *rand.Rand) error {
				k := keys[rng.IntN(len(keys))]
				if op == "put" {
					return s.put(ctx, w, k, val)
				}
				return s.get(ctx, w, k)
			})
			if err != nil {
				return rs, fmt.Errorf("%s: %s, %d clients: %w", system, op, n, err)
			}
			rs = append(rs, kvResult{system, op, n, r})
			fmt.Fprintf(out, "  %-24s %-4s %7d %11.0f %11s %11s\n", system, op, n, r.opsPerS, us(r.p50), us(r.p99))
		}
	}
	return rs, nil
}

func runBenchEtcd(ctx context.Context, out io.Writer, fl benchEtcdFlags) error {
	// gRPC logs each refused reconnection of a client whose cluster is
	// being stopped; errors that matter come back from the calls.
	grpclog.SetLoggerV2(grpclog.NewLoggerV2(io.Discard, io.Discard, os.Stderr))
	dir, err := benchTempDir(fl.dir)
	if err != nil {
		return &exitError{1, err}
	}
	defer os.RemoveAll(dir)
	val := benchValue()
	fmt.Fprintf(out, "1 KB puts and gets on %d-node clusters (loopback, fsync on, linearizable reads), %d keys, %v per measurement\n",
		fl.nodes, fl.keys, fl.duration)
	fmt.Fprintf(out, "  %-24s %-4s %7s %11s %11s %11s\n", "system", "op", "clients", "ops/s", "p50", "p99")
	var all []kvResult
	etcdErr := func() error {
		ec, version, err := startEtcdCluster(ctx, fl.etcd, fl.nodes, filepath.Join(dir, "etcd"), fl.peerOffset)
		if err != nil {
			return err
		}
		defer ec.stop()
		s, err := newEtcdStore(ctx, ec.eps, slices.Max(fl.clients))
		if err != nil {
			return err
		}
		defer s.close()
		rs, err := measureStore(ctx, out, "etcd "+version, s, fl, val)
		all = append(all, rs...)
		return err
	}()
	if etcdErr != nil {
		if ctx.Err() != nil {
			return &exitError{1, etcdErr}
		}
		fmt.Fprintf(out, "  etcd: not measured: %v\n", etcdErr)
	}
	for _, proto := range fl.protocols {
		err := func() error {
			bc, err := startBenchCluster(ctx, clusterSpec{nodes: fl.nodes, protocol: proto, rf: fl.rf,
				dir: filepath.Join(dir, "blossom-"+proto), offset: fl.peerOffset})
			if err != nil {
				return err
			}
			defer bc.stop()
			s, err := newBlossomStore(ctx, bc.eps, slices.Max(fl.clients))
			if err != nil {
				return err
			}
			defer s.close()
			rs, err := measureStore(ctx, out, fmt.Sprintf("Blossom rf %d (%s)", fl.rf, proto), s, fl, val)
			all = append(all, rs...)
			return err
		}()
		if err != nil {
			return &exitError{1, fmt.Errorf("blossom (%s): %w", proto, err)}
		}
	}
	printEtcdRatios(out, all)
	if etcdErr != nil {
		return &exitError{1, fmt.Errorf("etcd not measured: %w", etcdErr)}
	}
	return nil
}

// printEtcdRatios prints each Blossom system's throughput and p50 against
// etcd's for the same operation and clients.
func printEtcdRatios(out io.Writer, all []kvResult) {
	base := map[string]kvResult{}
	for _, r := range all {
		if strings.HasPrefix(r.system, "etcd") {
			base[fmt.Sprint(r.op, r.clients)] = r
		}
	}
	if len(base) == 0 {
		return
	}
	fmt.Fprintln(out, "  Blossom / etcd:")
	for _, r := range all {
		e, ok := base[fmt.Sprint(r.op, r.clients)]
		if !ok || strings.HasPrefix(r.system, "etcd") {
			continue
		}
		fmt.Fprintf(out, "    %-24s %-4s %3d clients: throughput %.2f×, p50 %.2f×, p99 %.2f×\n",
			r.system, r.op, r.clients, r.res.opsPerS/e.res.opsPerS, ratio(r.res.p50, e.res.p50), ratio(r.res.p99, e.res.p99))
	}
}

// etcdCluster is a cluster of etcd child processes.
type etcdCluster struct {
	procs []*benchProc
	eps   []string
}

func (ec *etcdCluster) stop() {
	for _, p := range ec.procs {
		p.stop()
	}
}

// etcdArgs is the command line of member i (0-based) of an etcd cluster
// whose members listen for clients on ports and for peers on ports+offset.
func etcdArgs(i int, ports []int, offset int, dataDir string) []string {
	var initial []string
	for j, p := range ports {
		initial = append(initial, fmt.Sprintf("e%d=http://127.0.0.1:%d", j+1, p+offset))
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[i])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[i]+offset)
	return []string{"--name", fmt.Sprintf("e%d", i+1), "--data-dir", dataDir,
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
		"--initial-cluster-token", "blossom-bench", "--logger", "zap", "--log-level", "error"}
}

// startEtcdCluster starts n etcd members on loopback, member i keeping its
// data in dir/e<i>, and waits until a put succeeds. It returns the
// server's version.
func startEtcdCluster(ctx context.Context, bin string, n int, dir string, offset int) (*etcdCluster, string, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, "", fmt.Errorf("%w: install Debian's etcd-server package (make etcd, or apt-get install -y etcd-server) or give --etcd", err)
	}
	version := "?"
	if b, err := exec.Command(path, "--version").Output(); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "etcd Version: "); ok {
				version = strings.TrimSpace(v)
			}
		}
	}
	if !etcdVersionOK(version) {
		return nil, "", fmt.Errorf("%s --version: %q is not a 3.x server (the v3 API the client speaks)", path, version)
	}
	ports, err := loopbackPorts(n, offset)
	if err != nil {
		return nil, "", err
	}
	ec := &etcdCluster{}
	for i := range n {
		args := etcdArgs(i, ports, offset, filepath.Join(dir, fmt.Sprintf("e%d", i+1)))
		cmd := exec.Command(path, args...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			ec.stop()
			return nil, "", err
		}
		ep := fmt.Sprintf("127.0.0.1:%d", ports[i])
		ec.procs = append(ec.procs, &benchProc{cmd: cmd, addr: ep, args: args})
		ec.eps = append(ec.eps, ep)
	}
	c, err := newEtcdClient(ec.eps)
	if err != nil {
		ec.stop()
		return nil, "", err
	}
	defer c.Close()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.Put(pctx, "blossom-bench-ready", "1")
		cancel()
		if err == nil {
			return ec, version, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			ec.stop()
			return nil, "", fmt.Errorf("etcd cluster %s not ready: %w", strings.Join(ec.eps, ","), err)
		}
	}
}

func newEtcdClient(eps []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
}

// etcdStore gives each worker its own clientv3.Client of every endpoint.
type etcdStore struct{ cs []*clientv3.Client }

func newEtcdStore(ctx context.Context, eps []string, workers int) (*etcdStore, error) {
	s := &etcdStore{}
	for range workers {
		c, err := newEtcdClient(eps)
		if err != nil {
			s.close()
			return nil, err
		}
		s.cs = append(s.cs, c)
	}
	return s, ctx.Err()
}

func (s *etcdStore) put(ctx context.Context, w int, key string, val []byte) error {
	_, err := s.cs[w].Put(ctx, key, string(val))
	return err
}

func (s *etcdStore) get(ctx context.Context, w int, key string) error {
	r, err := s.cs[w].Get(ctx, key)
	if err == nil && (len(r.Kvs) != 1 || len(r.Kvs[0].Value) != 1024) {
		err = fmt.Errorf("etcd get %s: %d values", key, len(r.Kvs))
	}
	return err
}

func (s *etcdStore) close() {
	for _, c := range s.cs {
		c.Close()
	}
}

// blossomStore gives each worker its own client, calling persistent
// AtomicReferences.
type blossomStore struct{ cs []*client.Client }

func newBlossomStore(ctx context.Context, eps []string, workers int) (*blossomStore, error) {
	s := &blossomStore{}
	for range workers {
		c, err := client.DialOptions(ctx, client.Options{Endpoints: eps, ConnsPerNode: 1})
		if err != nil {
			s.close()
			return nil, err
		}
		s.cs = append(s.cs, c)
	}
	return s, nil
}

func (s *blossomStore) put(ctx context.Context, w int, key string, val []byte) error {
	return dso.NewAtomicReference(s.cs[w].Persistent(), key).Set(ctx, val)
}

func (s *blossomStore) get(ctx context.Context, w int, key string) error {
	v, err := dso.NewAtomicReference(s.cs[w].Persistent(), key).Get(ctx)
	if err == nil && len(asBytes(v)) != 1024 {
		err = fmt.Errorf("blossom get %s: %d bytes", key, len(asBytes(v)))
	}
	return err
}

func (s *blossomStore) close() {
	for _, c := range s.cs {
		c.Close()
	}
}

// etcdVersionOK reports whether an etcd --version output names a 3.x
// server (the v3 API the client speaks).
func etcdVersionOK(version string) bool {
	major, _, ok := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	return ok && err == nil && n == 3
}
