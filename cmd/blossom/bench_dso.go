package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/internal/cputime"
)

func init() { root.AddCommand(newBenchDSOCmd()) }

// TypeBenchMultiplier is the object of the throughput benchmark, served by
// `blossom server --bench-types`: an int64 (initially 1) that mul(f, n)
// multiplies by f modulo benchModulus, n times, and returns (see mulMod).
const TypeBenchMultiplier = "BenchMultiplier"

const benchModulus = 1000003

type benchMultiplier struct{ v int64 }

func (m *benchMultiplier) Invoke(inv *dso.Invocation) (any, error) {
	if inv.Method != "mul" {
		return nil, fmt.Errorf("%w: BenchMultiplier has only mul", dso.ErrUnknownMethod)
	}
	if !inv.Arity(2, 2) {
		return nil, inv.Err()
	}
	f, n := inv.Int(0), inv.Int(1)
	if inv.Err() != nil {
		return nil, inv.Err()
	}
	m.v = mulMod(m.v, f, n)
	return m.v, nil
}

// mulMod returns v multiplied by f modulo benchModulus, n times, as the
// Lua script computes it: one modular multiplication per step, each
// result reduced with a floored modulo (in [0, benchModulus), whatever the
// signs), and v unchanged if n ≤ 0. The results equal the script's
// wherever its doubles are exact (|v·f| < 2^53); beyond, they are the
// exact ones, and no product overflows.
//
// Each step is Shoup's multiplication by a fixed factor: with
// fq = ⌊f·2^64 / M⌋ precomputed, q = ⌊v·fq / 2^64⌋ is the quotient of v·f
// by M or one less, so v·f − q·M (in wrapping uint64 arithmetic) is the
// residue or the residue plus M (the latter only for a residue of 0 when
// M is prime, as it is). The steps keep that redundant form (valid input
// for the next one) and the last is reduced once: the dependency chain of
// a step is two multiplications and a subtraction instead of a
// multiplication, a division by a constant (itself a multiplication,
// shifts and sign fixes) and a multiplication: 2.8 ns instead of 4.4 ns a
// step on the benchmark machine.
func mulMod(v, f, n int64) int64 {
	if n <= 0 {
		return v
	}
	const m = benchModulus
	floor := func(x int64) uint64 { return uint64((x%m + m) % m) }
	u, fu := floor(v), floor(f)
	fq, _ := bits.Div64(fu, 0, m) // fu < m: no overflow
	for i := int64(0); i < n; i++ {
		q, _ := bits.Mul64(u, fq)
		u = u*fu - q*m // in [0, 2m)
	}
	if u >= m {
		u -= m
	}
	return int64(u)
}

// MarshalState implements dso.Persister, so that replicas of persistent
// BenchMultipliers can snapshot them.
func (m *benchMultiplier) MarshalState() ([]byte, error) {
	return binary.AppendVarint(nil, m.v), nil
}

// UnmarshalState implements dso.Persister.
func (m *benchMultiplier) UnmarshalState(b []byte) error {
	v, n := binary.Varint(b)
	if n <= 0 || n != len(b) {
		return fmt.Errorf("BenchMultiplier: bad state of %d bytes", len(b))
	}
	m.v = v
	return nil
}

// registerBenchTypes adds the benchmark's object types to a registry.
func registerBenchTypes(r *dso.Registry) error {
	return r.Register(TypeBenchMultiplier, func([]any) (dso.Object, error) { return &benchMultiplier{v: 1}, nil })
}

// benchLua is the Redis twin of BenchMultiplier.mul.
const benchLua = `local v = tonumber(redis.call('GET', KEYS[1]) or '1')
local f = tonumber(ARGV[1])
for i = 1, tonumber(ARGV[2]) do v = (v * f) % 1000003 end
redis.call('SET', KEYS[1], v)
return v`

type benchDSOFlags struct {
	redisServer                 string
	ops                         int
	clients, objects            int
	duration                    time.Duration
	barrierClients, barrierRuns int
	memObjects                  int
	complexN                    int
	rounds                      int
	quick                       bool
	memoryOnly                  bool
	csvFile                     string

	// Persistent objects on a cluster of child processes.
	nodes          int
	protocol       string
	rf             int
	rfSweep        bool
	dir            string
	peerOffset     int
	restartObjects int
	restartWorkers int
	adminBase      int
	serverFlags    string
}

// csvConflict reports --csv with a mode that writes no CSV (only the
// one-node measurement does).
func (fl *benchDSOFlags) csvConflict() error {
	if fl.csvFile != "" && (fl.restartObjects > 0 || fl.rf > 0 || fl.rfSweep) {
		return errors.New("--csv: only the one-node measurement writes CSV (not with --rf, --rf-sweep or --restart-objects)")
	}
	return nil
}

// clusterSpec is the cluster of the flags with protocol and rf, in dir.
func (fl *benchDSOFlags) clusterSpec(protocol string, rf int, dir string) clusterSpec {
	return clusterSpec{nodes: fl.nodes, protocol: protocol, rf: rf, dir: dir, offset: fl.peerOffset,
		adminBase: fl.adminBase, extra: strings.Fields(fl.serverFlags)}
}

func newBenchDSOCmd() *cobra.Command {
	var fl benchDSOFlags
	cmd := &cobra.Command{
		Use:   "bench-dso",
		Short: "Benchmark a one-node DSO server against Redis on loopback",
		Long: `Start a one-node Blossom server (a child process) and redis-server beside it,
both on loopback, and measure from one run: 1 KB PUT and GET latency for one
sequential client (deliverable Table 2; Blossom and Redis calls alternate,
and the medians of --rounds runs are reported, with the median of the runs'
Blossom/Redis ratios: one run's p50 depends on where the scheduler places
the threads of the client and the servers, and varies by half or more on a
small machine); throughput of concurrent clients over
many objects for a simple operation (one multiplication) and a complex one
(10,000 multiplications; a Lua script in Redis) (deliverable Figure 3); the
mean time for 1,000 clients to cross one barrier; and the server's resident
memory with 1,000,000 AtomicLong objects. redis-server must be installed
(Debian: apt-get install redis-server); without it the Redis columns are
skipped.

With --rf R it measures persistent objects instead: it starts a cluster of
--nodes (3) blossom server child processes with --protocol and --rf R, their
logs in --dir (a temporary directory by default) with fsync on, and runs the
PUT/GET latencies and the throughput of simple and complex operations on
persistent objects (the 1 KB value in a persistent AtomicReference, the
multiplier a persistent object type), beside Redis as above (no persistence)
and, for R = 2, Redis with a replica and WAIT 1 0 after each write. With
--rf-sweep it does so for rf 1, 2 and 3 in one run (rf 2 always with paxos:
the one protocol that accepts a pair of replicas, with f = 0) and prints the
rf 2 / rf 1 ratios (goal: p50 at most 2x).

With --restart-objects N it measures recovery instead: it creates N
persistent AtomicLongs through the client (--restart-workers concurrent
calls), kills one node with SIGKILL, starts it again with the same flags and
prints the time from the process's start to its listening and to the first
persistent call it answers (a read of one of the N objects, checked).`,
		Example: `  blossom bench-dso
  blossom bench-dso --quick
  blossom bench-dso --rf 3 --protocol atlas
  blossom bench-dso --rf-sweep --quick
  blossom bench-dso --restart-objects 1000000 --rf 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fl.quick {
				ch := cmd.Flags().Changed
				if !ch("ops") {
					fl.ops = 2000
				}
				if !ch("duration") {
					fl.duration = time.Second
				}
				if !ch("barrier-runs") {
					fl.barrierRuns = 3
				}
				if !ch("memory-objects") {
					fl.memObjects = 100000
				}
				if !ch("rounds") {
					fl.rounds = 1
				}
			}
			if fl.rounds < 1 {
				return &exitError{2, fmt.Errorf("--rounds %d: want at least 1", fl.rounds)}
			}
			ctx, stop := dsoSignalContext(cmd)
			defer stop()
			switch {
			case fl.csvConflict() != nil:
				return &exitError{2, fl.csvConflict()}
			case fl.restartObjects > 0:
				return benchRestart(ctx, cmd.OutOrStdout(), fl)
			case fl.rf > 0 || fl.rfSweep:
				return benchPersistent(ctx, cmd.OutOrStdout(), fl)
			}
			return runBenchDSO(ctx, cmd.OutOrStdout(), fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.redisServer, "redis-server", "redis-server", "redis-server binary")
	f.IntVar(&fl.ops, "ops", 20000, "operations per latency measurement")
	f.IntVar(&fl.clients, "clients", 200, "concurrent clients of the throughput measurement")
	f.IntVar(&fl.objects, "objects", 800, "objects of the throughput measurement")
	f.DurationVar(&fl.duration, "duration", 5*time.Second, "length of each throughput measurement")
	f.IntVar(&fl.complexN, "complex", 10000, "multiplications of the complex operation")
	f.IntVar(&fl.rounds, "rounds", 3, "runs of each latency and throughput measurement (Blossom and Redis alternating); the median is reported")
	f.IntVar(&fl.barrierClients, "barrier-clients", 1000, "clients crossing the barrier")
	f.IntVar(&fl.barrierRuns, "barrier-runs", 10, "barriers crossed back to back")
	f.IntVar(&fl.memObjects, "memory-objects", 1000000, "AtomicLong objects of the memory measurement")
	f.BoolVar(&fl.memoryOnly, "memory-only", false, "run only the memory measurement")
	f.StringVar(&fl.csvFile, "csv", "", "also write the one-node results as tidy CSV (measurement,system,metric,value) to this file")
	f.BoolVar(&fl.quick, "quick", false, "short run (fewer operations, 1s throughput runs, 100,000 objects)")
	f.IntVar(&fl.rf, "rf", 0, "measure persistent objects of this replication factor on a cluster of --nodes child processes (0: one ephemeral node)")
	f.BoolVar(&fl.rfSweep, "rf-sweep", false, "measure persistent objects with rf 1, 2 and 3 in one run")
	f.StringVar(&fl.protocol, "protocol", "paxos", "replication protocol of the persistent objects")
	f.IntVar(&fl.nodes, "nodes", 3, "nodes of the cluster of persistent objects")
	f.StringVar(&fl.dir, "dir", "", "directory of the nodes' data dirs (default: a new temporary directory, removed at the end)")
	f.IntVar(&fl.peerOffset, "peer-port-offset", 1000, "the nodes' replicas talk on their client port plus this")
	f.IntVar(&fl.restartObjects, "restart-objects", 0, "measure the restart of a node holding this many persistent AtomicLongs (rf: --rf, default 3)")
	f.IntVar(&fl.restartWorkers, "restart-workers", 256, "concurrent calls creating the objects of --restart-objects")
	f.IntVar(&fl.adminBase, "admin-base-port", 0, "serve node i's metrics and pprof on 127.0.0.1:PORT+i (blossom server --admin-addr --pprof; 0: off)")
	f.StringVar(&fl.serverFlags, "server-flags", "", "more flags for every blossom server node, space-separated (e.g. --compact-every=100000)")
	return cmd
}

// benchProc is a child process serving on a loopback port.
type benchProc struct {
	cmd  *exec.Cmd
	addr string
	args []string // the command line, for a restart
	// done is closed when the process has exited (set by watch); exit is
	// then what Wait returned.
	done chan struct{}
	exit error
}

// watch waits for the process in the background, after drain (reading
// the rest of its output; nil if none) returns.
func (p *benchProc) watch(drain func()) {
	p.done = make(chan struct{})
	go func() {
		if drain != nil {
			drain()
		}
		p.exit = p.cmd.Wait()
		close(p.done)
	}()
}

// exited describes how the process ended, or returns "" while it runs.
func (p *benchProc) exited() string {
	if p == nil || p.done == nil {
		return ""
	}
	select {
	case <-p.done:
		if p.exit == nil {
			return "exited with status 0"
		}
		return p.exit.Error()
	default:
		return ""
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *benchProc) kill() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Kill()
	p.wait()
}

func (p *benchProc) wait() {
	if p.done != nil {
		<-p.done
	} else {
		p.cmd.Wait()
	}
}

func (p *benchProc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// rssMiB reads the resident set size of a process from /proc.
func rssMiB(pid int) (float64, error) { return procStatusMiB(pid, "VmRSS") }

// procStatusMiB reads a field in kB (VmRSS, RssFile, ...) of a process's
// /proc status, in MiB.
func procStatusMiB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func startBlossomChild() (*benchProc, error) {
	return startBlossomProc([]string{"server", "--listen", "127.0.0.1:0", "--log-level", "error", "--bench-types"})
}

// startBlossomProc starts this binary with args (a blossom server command
// line) and waits for its "listening on" line.
func startBlossomProc(args []string) (*benchProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &benchProc{cmd: cmd, args: args}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("blossom server child: %w", err)
	}
	p.addr = strings.TrimSpace(strings.TrimPrefix(line, "blossom server listening on "))
	p.watch(func() { io.Copy(io.Discard, out) })
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startRedis(bin string, extra ...string) (*benchProc, error) {
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--maxclients", "10000", "--loglevel", "warning")
	cmd.Args = append(cmd.Args, extra...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &benchProc{cmd: cmd, addr: fmt.Sprintf("127.0.0.1:%d", port)}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r := dialRedis(p.addr)
		err := r.Ping(context.Background()).Err()
		r.Close()
		if err == nil {
			return p, nil
		}
	}
	p.stop()
	return nil, fmt.Errorf("redis-server on %s did not answer", p.addr)
}

// dialRedis returns a go-redis client of one connection to addr, speaking
// RESP2 and sending no CLIENT SETINFO, so that each benchmark worker drives
// one connection with one request at a time.
func dialRedis(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            addr,
		Protocol:        2,
		DisableIdentity: true,
		PoolSize:        1,
		DialTimeout:     2 * time.Second,
	})
}

// latencies runs op n times after a warm-up and returns the p50 and p99.
// pcts are the median and 99th percentile of some latencies.
type pcts struct{ p50, p99 time.Duration }

// latencies runs each of ops (nil ones skipped) n times after a warm-up,
// one call of each in turn, so that a change of the machine's load
// affects them alike, and returns the percentiles of each.
func latencies(n int, ops ...func(i int) error) ([]pcts, error) {
	for i := 0; i < min(n/10, 1000); i++ {
		for _, op := range ops {
			if op != nil {
				if err := op(i); err != nil {
					return nil, err
				}
			}
		}
	}
	ds := make([][]time.Duration, len(ops))
	for k := range ds {
		ds[k] = make([]time.Duration, n)
	}
	for i := 0; i < n; i++ {
		for k, op := range ops {
			if op == nil {
				continue
			}
			t := time.Now()
			if err := op(i); err != nil {
				return nil, err
			}
			ds[k][i] = time.Since(t)
		}
	}
	out := make([]pcts, len(ops))
	for k, d := range ds {
		slices.Sort(d)
		out[k] = pcts{d[n/2], d[n*99/100]}
	}
	return out, nil
}

// median returns the median of xs (the mean of the middle two if their
// number is even).
func median(xs []float64) float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

// medianPcts takes, for each op of several runs of latencies, the median
// over the runs of its p50 and of its p99.
func medianPcts(runs [][]pcts) []pcts {
	out := make([]pcts, len(runs[0]))
	for k := range out {
		var p50, p99 []float64
		for _, r := range runs {
			p50, p99 = append(p50, float64(r[k].p50)), append(p99, float64(r[k].p99))
		}
		out[k] = pcts{time.Duration(median(p50)), time.Duration(median(p99))}
	}
	return out
}

// p50Ratios gives, for each run of latencies of two ops, the first op's
// p50 over the second's.
func p50Ratios(runs [][]pcts) []float64 {
	rs := make([]float64, len(runs))
	for i, r := range runs {
		rs[i] = float64(r[0].p50) / float64(r[1].p50)
	}
	return rs
}

// joinRatios formats ratios as "0.93× 1.02× ...".
func joinRatios(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%.2f×", r)
	}
	return strings.Join(s, " ")
}

// latency is latencies of one op.
func latency(n int, op func(i int) error) (p50, p99 time.Duration, err error) {
	ps, err := latencies(n, op)
	if err != nil {
		return 0, 0, err
	}
	return ps[0].p50, ps[0].p99, nil
}

// cpuPerOp collects, over throughput runs, the CPU time per operation of
// a server process and of this process (the benchmark's clients, whose
// other work is idle meanwhile), from /proc and getrusage.
type cpuPerOp struct{ server, client []float64 }

// start notes the CPU times before a run of p; the function it returns
// notes them after the run's ops operations.
func (c *cpuPerOp) start(p *benchProc) func(ops float64) {
	s0, serr := procCPU(p.cmd.Process.Pid)
	c0 := cputime.Process()
	return func(ops float64) {
		s1, err := procCPU(p.cmd.Process.Pid)
		if serr != nil || err != nil || ops <= 0 {
			return
		}
		c.server = append(c.server, float64(s1-s0)/1e3/ops)
		c.client = append(c.client, float64(cputime.Process()-c0)/1e3/ops)
	}
}

// String gives the medians in µs.
func (c cpuPerOp) String() string {
	if len(c.server) == 0 {
		return "-"
	}
	sv, cl := median(c.server), median(c.client)
	return fmt.Sprintf("server %.1f µs + client %.1f µs = %.1f µs", sv, cl, sv+cl)
}

// procCPU returns the user and system CPU time of process pid.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return statCPU(string(b))
}

// statCPU returns the user and system CPU time in a line of /proc/PID/stat
// (fields 14 and 15, in clock ticks of 10 ms, the USER_HZ of Linux).
func statCPU(stat string) (time.Duration, error) {
	// The fields after the command name, which is in parentheses and may
	// hold spaces and parentheses: the state is field 3.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("not a /proc/PID/stat line: %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("not a /proc/PID/stat line: %q", stat)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// throughput runs op from each of the workers in a closed loop for d and
// returns operations per second.
func throughput(ctx context.Context, workers int, d time.Duration, op func(w int, rng *rand.Rand) error) (float64, error) {
	var count atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for !stop.Load() && ctx.Err() == nil {
				if err := op(w, rng); err != nil {
					errc <- err
					stop.Store(true)
					return
				}
				count.Add(1)
			}
		}(w)
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return 0, err
	}
	return float64(count.Load()) / elapsed.Seconds(), nil
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/1e3) }

// benchCSV collects bench-dso's results as tidy rows (measurement, system,
// metric, value) for --csv; a nil *benchCSV discards them.
type benchCSV struct{ rows [][]string }

// add records one value.
func (b *benchCSV) add(measurement, system, metric string, v float64) {
	if b != nil {
		b.rows = append(b.rows, []string{measurement, system, metric, strconv.FormatFloat(v, 'g', 8, 64)})
	}
}

// addLatency records the percentiles of a latency measurement in µs.
func (b *benchCSV) addLatency(measurement, system string, p pcts) {
	b.add(measurement, system, "p50_us", float64(p.p50)/1e3)
	b.add(measurement, system, "p99_us", float64(p.p99)/1e3)
}

// benchCSVHeader is the header of bench-dso's --csv file.
var benchCSVHeader = []string{"measurement", "system", "metric", "value"}

// write writes the header and rows to path (through a temporary file, so
// that a reader never sees half a file).
func (b *benchCSV) write(path string) error {
	var sb strings.Builder
	w := csv.NewWriter(&sb)
	w.Write(benchCSVHeader)
	w.WriteAll(b.rows)
	if err := w.Error(); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(sb.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func runBenchDSO(ctx context.Context, out io.Writer, fl benchDSOFlags) error {
	var rec *benchCSV
	if fl.csvFile != "" {
		rec = &benchCSV{}
	}
	if err := runBenchDSOTo(ctx, out, fl, rec); err != nil {
		return err
	}
	if rec != nil {
		if err := rec.write(fl.csvFile); err != nil {
			return &exitError{1, fmt.Errorf("--csv: %w", err)}
		}
	}
	return nil
}

func runBenchDSOTo(ctx context.Context, out io.Writer, fl benchDSOFlags, rec *benchCSV) error {
	bl, err := startBlossomChild()
	if err != nil {
		return &exitError{1, fmt.Errorf("start blossom server: %w", err)}
	}
	defer bl.stop()
	rd, rerr := startRedis(fl.redisServer)
	if rerr != nil {
		fmt.Fprintf(out, "redis: not available (%v); Redis columns skipped\n", rerr)
	} else {
		defer rd.stop()
	}
	fmt.Fprintf(out, "blossom server pid %d on %s", bl.cmd.Process.Pid, bl.addr)
	if rd != nil {
		fmt.Fprintf(out, "; redis-server pid %d on %s", rd.cmd.Process.Pid, rd.addr)
	}
	fmt.Fprintln(out)
	if fl.memoryOnly {
		return benchMemory(ctx, out, bl, rd, fl, rec)
	}

	dial := func() (*client.Client, error) {
		return client.DialOptions(ctx, client.Options{Endpoints: []string{bl.addr}, ConnsPerNode: 1, NoDiscovery: true})
	}
	c, err := dial()
	if err != nil {
		return &exitError{1, err}
	}
	defer c.Close()

	// 1. Latency of 1 KB PUT and GET, one sequential client.
	val := make([]byte, 1024)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	fmt.Fprintf(out, "\n1 KB PUT/GET latency, 1 sequential client, %d operations each, median of %d runs", fl.ops, fl.rounds)
	if rd != nil {
		fmt.Fprintf(out, " (Blossom and Redis operations alternate, so both see the same machine)")
	}
	fmt.Fprintf(out, "\n  %-22s %12s %12s\n", "", "p50", "p99")
	keys := make([]string, 100)
	refs := make([]dso.AtomicReference, len(keys))
	for i := range keys {
		keys[i] = fmt.Sprint("kv", i)
		refs[i] = dso.NewAtomicReference(c, keys[i])
	}
	put := func(i int) error { return refs[i%100].Set(ctx, val) }
	get := func(i int) error { _, err := refs[i%100].Get(ctx); return err }
	var rput, rget func(i int) error
	if rd != nil {
		r := dialRedis(rd.addr)
		defer r.Close()
		rput = func(i int) error { return r.Set(ctx, keys[i%100], val, 0).Err() }
		rget = func(i int) error { return r.Get(ctx, keys[i%100]).Err() }
	}
	var putRuns, getRuns [][]pcts
	for range fl.rounds {
		p, err := latencies(fl.ops, put, rput)
		if err != nil {
			return &exitError{1, err}
		}
		g, err := latencies(fl.ops, get, rget)
		if err != nil {
			return &exitError{1, err}
		}
		putRuns, getRuns = append(putRuns, p), append(getRuns, g)
	}
	puts, gets := medianPcts(putRuns), medianPcts(getRuns)
	fmt.Fprintf(out, "  %-22s %12s %12s\n", "Blossom PUT", us(puts[0].p50), us(puts[0].p99))
	fmt.Fprintf(out, "  %-22s %12s %12s\n", "Blossom GET", us(gets[0].p50), us(gets[0].p99))
	rec.addLatency("put", "blossom", puts[0])
	rec.addLatency("get", "blossom", gets[0])
	if rd != nil {
		fmt.Fprintf(out, "  %-22s %12s %12s\n", "Redis SET", us(puts[1].p50), us(puts[1].p99))
		fmt.Fprintf(out, "  %-22s %12s %12s\n", "Redis GET", us(gets[1].p50), us(gets[1].p99))
		rec.addLatency("put", "redis", puts[1])
		rec.addLatency("get", "redis", gets[1])
		putRatio, getRatio := p50Ratios(putRuns), p50Ratios(getRuns)
		if fl.rounds > 1 {
			fmt.Fprintf(out, "  Blossom p50 / Redis p50 of each run: PUT %s; GET %s\n", joinRatios(putRatio), joinRatios(getRatio))
		}
		fmt.Fprintf(out, "  Blossom p50 / Redis p50, median of the runs: PUT %.2f×, GET %.2f× (goal ≤ 1.0×)\n",
			median(putRatio), median(getRatio))
	}

	// 2. Throughput: simple and complex operations.
	fmt.Fprintf(out, "\nthroughput, %d clients over %d objects, %v per run, median of %d runs alternating Blossom and Redis (ops/s)\n",
		fl.clients, fl.objects, fl.duration, fl.rounds)
	fmt.Fprintf(out, "  %-34s %12s %12s %8s\n", "", "Blossom", "Redis", "ratio")
	bcs := make([]*client.Client, fl.clients)
	for i := range bcs {
		if bcs[i], err = dial(); err != nil {
			return &exitError{1, err}
		}
		defer bcs[i].Close()
	}
	var rcs []*redis.Client
	var sha string
	if rd != nil {
		rcs = make([]*redis.Client, fl.clients)
		for i := range rcs {
			rcs[i] = dialRedis(rd.addr)
			defer rcs[i].Close()
		}
		if sha, err = rcs[0].ScriptLoad(ctx, benchLua).Result(); err != nil {
			return &exitError{1, err}
		}
	}
	objKeys := make([]string, fl.objects)
	for i := range objKeys {
		objKeys[i] = fmt.Sprint("obj", i)
	}
	goals := map[string]string{"simple": "≥ 1.3", "complex": "≥ 6"}
	var cpuLines []string
	for _, op := range []struct {
		name string
		n    int
	}{{"simple", 1}, {"complex", fl.complexN}} {
		n := int64(op.n)
		var bts, rts []float64
		var bcpu, rcpu cpuPerOp
		for range fl.rounds {
			done := bcpu.start(bl)
			bt, err := throughput(ctx, fl.clients, fl.duration, func(w int, rng *rand.Rand) error {
				_, err := dso.NewHandle(bcs[w], TypeBenchMultiplier, objKeys[rng.IntN(fl.objects)]).Call(ctx, "mul", int64(3), n)
				return err
			})
			if err != nil {
				return &exitError{1, err}
			}
			done(bt * fl.duration.Seconds())
			bts = append(bts, bt)
			if rd == nil {
				continue
			}
			done = rcpu.start(rd)
			rt, err := throughput(ctx, fl.clients, fl.duration, func(w int, rng *rand.Rand) error {
				return rcs[w].EvalSha(ctx, sha, []string{objKeys[rng.IntN(fl.objects)]}, "3", strconv.Itoa(op.n)).Err()
			})
			if err != nil {
				return &exitError{1, err}
			}
			done(rt * fl.duration.Seconds())
			rts = append(rts, rt)
		}
		line := fmt.Sprintf("  CPU per %s operation, median of the runs: Blossom %s", op.name, bcpu)
		if rd != nil {
			line += fmt.Sprintf("; Redis %s", rcpu)
		}
		cpuLines = append(cpuLines, line)
		label := fmt.Sprintf("%s (%d multiplication", op.name, op.n)
		if op.n > 1 {
			label += "s"
		}
		label += ")"
		bt := median(bts)
		rec.add("throughput_"+op.name, "blossom", "ops_per_s", bt)
		if rd == nil {
			fmt.Fprintf(out, "  %-34s %12.0f %12s\n", label, bt, "-")
			continue
		}
		rt := median(rts)
		rec.add("throughput_"+op.name, "redis", "ops_per_s", rt)
		fmt.Fprintf(out, "  %-34s %12.0f %12.0f %7.2f× (goal %s)\n", label, bt, rt, bt/rt, goals[op.name])
	}
	for _, l := range cpuLines {
		fmt.Fprintln(out, l)
	}
	for _, bc := range bcs {
		bc.Close()
	}

	// 3. Barrier crossing.
	if err := benchBarrier(ctx, out, dial, fl, rec); err != nil {
		return &exitError{1, err}
	}

	// 4. Memory with many AtomicLong objects.
	return benchMemory(ctx, out, bl, rd, fl, rec)
}

// benchMemory creates fl.memObjects AtomicLong objects on the Blossom
// server and the same keys (AtomicLong/mN = N) on Redis, and reports the
// resident memory of both processes.
func benchMemory(ctx context.Context, out io.Writer, bl, rd *benchProc, fl benchDSOFlags, rec *benchCSV) error {
	fill := func(op func(i int64) error) (time.Duration, error) {
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		errc := make(chan error, 64)
		for w := 0; w < 64; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(fl.memObjects) || ctx.Err() != nil {
						return
					}
					if err := op(i); err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		if err := <-errc; err != nil {
			return 0, err
		}
		return time.Since(start), ctx.Err()
	}
	before, _ := rssMiB(bl.cmd.Process.Pid)
	mc, err := client.DialOptions(ctx, client.Options{Endpoints: []string{bl.addr}, ConnsPerNode: 4, NoDiscovery: true})
	if err != nil {
		return &exitError{1, err}
	}
	defer mc.Close()
	took, err := fill(func(i int64) error { return dso.NewAtomicLong(mc, "m"+strconv.FormatInt(i, 10)).Set(ctx, i) })
	if err != nil {
		return &exitError{1, err}
	}
	time.Sleep(500 * time.Millisecond)
	after, err := rssMiB(bl.cmd.Process.Pid)
	if err != nil {
		return &exitError{1, err}
	}
	bfile, berr := procStatusMiB(bl.cmd.Process.Pid, "RssFile")
	fmt.Fprintf(out, "\nmemory: %d AtomicLong objects created in %v; server RSS %.0f MiB (%.0f MiB before)\n",
		fl.memObjects, took.Round(time.Millisecond), after, before)
	rec.add("memory", "blossom", "rss_mib", after)
	if rd == nil {
		return nil
	}
	rbefore, _ := rssMiB(rd.cmd.Process.Pid)
	rcs := make([]*redis.Client, 64)
	for i := range rcs {
		rcs[i] = dialRedis(rd.addr)
		defer rcs[i].Close()
	}
	var slot atomic.Int64
	took, err = fill(func(i int64) error {
		r := rcs[slot.Add(1)%int64(len(rcs))]
		return r.Set(ctx, "AtomicLong/m"+strconv.FormatInt(i, 10), i, 0).Err()
	})
	if err != nil {
		return &exitError{1, err}
	}
	time.Sleep(500 * time.Millisecond)
	rafter, err := rssMiB(rd.cmd.Process.Pid)
	if err != nil {
		return &exitError{1, err}
	}
	fmt.Fprintf(out, "memory: the same %d keys (AtomicLong/mN) set in Redis in %v; redis-server RSS %.0f MiB (%.0f MiB before); Blossom / Redis %.2f×\n",
		fl.memObjects, took.Round(time.Millisecond), rafter, rbefore, after/rafter)
	rec.add("memory", "redis", "rss_mib", rafter)
	// Pages of mapped files (the executable above all) count in RSS but
	// are the page cache's: how many of the blossom binary's are mapped
	// depends on how the file got into the cache, not on the objects.
	rfile, rerr := procStatusMiB(rd.cmd.Process.Pid, "RssFile")
	if berr == nil && rerr == nil {
		fmt.Fprintf(out, "memory: of which mapped files (executable, libraries): Blossom %.0f MiB, Redis %.0f MiB; the rest: Blossom %.0f MiB, Redis %.0f MiB, %.2f×\n",
			bfile, rfile, after-bfile, rafter-rfile, (after-bfile)/(rafter-rfile))
		rec.add("memory", "blossom", "rss_file_mib", bfile)
		rec.add("memory", "redis", "rss_file_mib", rfile)
	}
	return nil
}

func benchBarrier(ctx context.Context, out io.Writer, dial func() (*client.Client, error), fl benchDSOFlags, rec *benchCSV) error {
	n := fl.barrierClients
	cs := make([]*client.Client, n)
	for i := range cs {
		c, err := dial()
		if err != nil {
			return err
		}
		defer c.Close()
		cs[i] = c
	}
	key := fmt.Sprint("barrier-", time.Now().UnixNano())
	var wg sync.WaitGroup
	errc := make(chan error, n)
	// One warm-up crossing opens every connection, then the timed ones.
	runs := fl.barrierRuns + 1
	var start time.Time
	ready := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			b := dso.NewCyclicBarrier(cs[i], key, n)
			for r := 0; r < runs; r++ {
				if _, err := b.Await(ctx); err != nil {
					errc <- err
					return
				}
				if r == 0 && i == 0 {
					start = time.Now()
					close(ready)
				}
			}
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	fmt.Fprintf(out, "\nbarrier: %d clients crossed %d barriers back to back; mean crossing time %.2f ms\n",
		n, fl.barrierRuns, float64(elapsed)/float64(fl.barrierRuns)/1e6)
	rec.add("barrier", "blossom", "crossing_ms", float64(elapsed)/float64(fl.barrierRuns)/1e6)
	return nil
}

// benchCluster is a cluster of blossom server child processes holding
// persistent objects, one process per node.
type benchCluster struct {
	nodes    []*benchProc
	eps      []string
	dataDirs []string
	protocol string
	rf       int
}

// exits names the nodes that have exited, and how.
func (bc *benchCluster) exits() string {
	var l []string
	for i, n := range bc.nodes {
		if e := n.exited(); e != "" {
			l = append(l, fmt.Sprintf("node %d (%s) %s", i+1, n.addr, e))
		}
	}
	return strings.Join(l, "; ")
}

// explain adds to err the nodes that have exited, if any.
func (bc *benchCluster) explain(err error) error {
	if e := bc.exits(); e != "" && err != nil {
		return fmt.Errorf("%w [%s]", err, e)
	}
	return err
}

func (bc *benchCluster) stop() {
	for _, n := range bc.nodes {
		n.stop()
	}
}

// loopbackPorts picks n distinct loopback ports p that are free, each with
// p+offset free as well (a node's replica-to-replica port).
func loopbackPorts(n, offset int) ([]int, error) {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("no %d loopback ports p with p+%d free", n, offset)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		if p+offset <= 0 || p+offset > 65535 {
			l.Close()
			continue
		}
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+offset))
		if err != nil {
			l.Close()
			continue
		}
		held = append(held, l, l2)
		ports = append(ports, p)
	}
	return ports, nil
}

// clusterSpec describes a cluster of blossom server child processes.
type clusterSpec struct {
	nodes    int
	protocol string
	rf       int
	dir      string // node i keeps its replicas in dir/node<i>
	offset   int    // --peer-port-offset
	// adminBase, if not 0, gives node i an admin endpoint with pprof on
	// 127.0.0.1:adminBase+i.
	adminBase int
	extra     []string // more flags of every node
}

// startBenchCluster starts the blossom servers of spec on loopback with
// fsync on, and waits until a persistent call on an object of every node
// succeeds.
func startBenchCluster(ctx context.Context, spec clusterSpec) (*benchCluster, error) {
	nodes, rf := spec.nodes, spec.rf
	if rf < 1 || rf > nodes {
		return nil, fmt.Errorf("--rf %d: valid values with %d nodes are 1..%d", rf, nodes, nodes)
	}
	ports, err := loopbackPorts(nodes, spec.offset)
	if err != nil {
		return nil, err
	}
	bc := &benchCluster{protocol: spec.protocol, rf: rf}
	for _, p := range ports {
		bc.eps = append(bc.eps, fmt.Sprintf("127.0.0.1:%d", p))
	}
	peers := strings.Join(bc.eps, ",")
	for i, ep := range bc.eps {
		dd := filepath.Join(spec.dir, fmt.Sprintf("node%d", i+1))
		bc.dataDirs = append(bc.dataDirs, dd)
		args := []string{"server", "--id", strconv.Itoa(i + 1), "--listen", ep, "--peers", peers,
			"--protocol", spec.protocol, "--rf", strconv.Itoa(rf), "--data-dir", dd, "--peer-port-offset", strconv.Itoa(spec.offset),
			"--log-level", "error", "--bench-types"}
		if spec.adminBase > 0 {
			args = append(args, "--admin-addr", fmt.Sprintf("127.0.0.1:%d", spec.adminBase+i+1), "--pprof")
		}
		p, err := startBlossomProc(append(args, spec.extra...))
		if err != nil {
			bc.stop()
			return nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		bc.nodes = append(bc.nodes, p)
	}
	if err := bc.waitReady(ctx, time.Minute); err != nil {
		bc.stop()
		return nil, err
	}
	return bc, nil
}

// waitReady waits until a persistent read of an object owned by each node
// succeeds.
func (bc *benchCluster) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c, err := client.DialOptions(ctx, client.Options{Endpoints: bc.eps, ConnsPerNode: 1})
	if err != nil {
		return err
	}
	defer c.Close()
	owned := map[string]bool{}
	for i := 0; len(owned) < len(bc.eps) && i < 10000; i++ {
		ref := dso.Ref{Type: dso.TypeAtomicLong, Key: fmt.Sprint("ready", i)}
		if o := c.Owner(ref); !owned[o] {
			owned[o] = true
			for {
				actx, acancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := dso.NewAtomicLong(c.Persistent(), ref.Key).Get(actx)
				acancel()
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return fmt.Errorf("cluster %s not ready after %v: %w", strings.Join(bc.eps, ","), limit, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	return nil
}

// benchRow is one system's line of the persistent-objects tables.
type benchRow struct {
	label                      string
	put50, put99, get50, get99 time.Duration
	simple, complex            float64
	err                        error // not measured
}

// benchTempDir makes a new directory under parent (the system's temporary
// directory if empty) for one run's data dirs.
func benchTempDir(parent string) (string, error) {
	if parent != "" {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return "", err
		}
	}
	return os.MkdirTemp(parent, "blossom-bench-")
}

// benchPersistent measures persistent objects on a cluster of child
// processes for each replication factor asked, then Redis, and prints the
// tables.
func benchPersistent(ctx context.Context, out io.Writer, fl benchDSOFlags) error {
	rfs := []int{fl.rf}
	if fl.rfSweep {
		rfs = []int{1, 2, 3}
	}
	for _, rf := range rfs {
		if rf > fl.nodes {
			return &exitError{2, fmt.Errorf("rf %d is larger than the cluster (--nodes %d)", rf, fl.nodes)}
		}
	}
	val := benchValue()
	var rows []benchRow
	for _, rf := range rfs {
		proto := fl.protocol
		if fl.rfSweep && rf == 2 {
			proto = "paxos" // the one protocol that runs on a pair of replicas
		}
		row, err := benchPersistentRF(ctx, out, fl, proto, rf, val)
		if err != nil {
			err = fmt.Errorf("rf %d (%s): %w", rf, proto, err)
			if !fl.rfSweep || ctx.Err() != nil {
				return &exitError{1, err}
			}
			// The sweep goes on without this factor.
			fmt.Fprintf(out, "%s: not measured: %v\n", row.label, err)
			row.err = err
		}
		rows = append(rows, row)
	}
	var redisRows []benchRow
	rd, err := startRedis(fl.redisServer)
	if err != nil {
		fmt.Fprintf(out, "redis: not available (%v); Redis rows skipped\n", err)
	} else {
		row, err := benchRedisRow(ctx, fl, rd.addr, false, val)
		rd.stop()
		if err != nil {
			return &exitError{1, fmt.Errorf("redis: %w", err)}
		}
		row.label = "Redis (no persistence)"
		redisRows = append(redisRows, row)
		if row, err := benchRedisAOF(ctx, fl, val); err != nil {
			fmt.Fprintf(out, "redis with appendfsync always: %v\n", err)
		} else {
			redisRows = append(redisRows, row)
		}
		if slices.Contains(rfs, 2) {
			row, err := benchRedisReplicated(ctx, fl, val)
			if err != nil {
				return &exitError{1, fmt.Errorf("redis with a replica: %w", err)}
			}
			redisRows = append(redisRows, row)
		}
	}

	fmt.Fprintf(out, "\npersistent objects: %d-node Blossom cluster (one child process per node, fsync on); 1 KB PUT (AtomicReference.set) and GET, 1 sequential client, %d operations each\n",
		fl.nodes, fl.ops)
	fmt.Fprintf(out, "  %-34s %12s %12s %12s %12s\n", "", "PUT p50", "PUT p99", "GET p50", "GET p99")
	for _, r := range append(slices.Clone(rows), redisRows...) {
		if r.err != nil {
			fmt.Fprintf(out, "  %-34s %12s %12s %12s %12s\n", r.label, "-", "-", "-", "-")
			continue
		}
		fmt.Fprintf(out, "  %-34s %12s %12s %12s %12s\n", r.label, us(r.put50), us(r.put99), us(r.get50), us(r.get99))
	}
	var rf1, rf2 *benchRow
	for i, rf := range rfs {
		if rows[i].err != nil {
			continue
		}
		switch rf {
		case 1:
			rf1 = &rows[i]
		case 2:
			rf2 = &rows[i]
		}
	}
	if rf1 != nil && rf2 != nil {
		fmt.Fprintf(out, "  rf 2 p50 / rf 1 p50: PUT %.2f×, GET %.2f× (goal ≤ 2)\n",
			ratio(rf2.put50, rf1.put50), ratio(rf2.get50, rf1.get50))
	}
	if len(redisRows) > 0 {
		for _, r := range rows {
			if r.err != nil {
				continue
			}
			for _, rr := range redisRows {
				fmt.Fprintf(out, "  %s p50 / %s p50: PUT %.2f×, GET %.2f×\n", r.label, rr.label, ratio(r.put50, rr.put50), ratio(r.get50, rr.get50))
			}
		}
	}

	fmt.Fprintf(out, "\npersistent objects: throughput, %d clients over %d objects, %v per run (ops/s)\n", fl.clients, fl.objects, fl.duration)
	fmt.Fprintf(out, "  %-34s %16s %16s\n", "", "simple (1)", fmt.Sprintf("complex (%d)", fl.complexN))
	for _, r := range append(slices.Clone(rows), redisRows...) {
		if r.err != nil {
			fmt.Fprintf(out, "  %-34s %16s %16s   (%v)\n", r.label, "-", "-", r.err)
			continue
		}
		fmt.Fprintf(out, "  %-34s %16.0f %16.0f\n", r.label, r.simple, r.complex)
	}
	if rf1 != nil && rf2 != nil {
		fmt.Fprintf(out, "  rf 2 / rf 1: simple %.2f×, complex %.2f×\n", rf2.simple/rf1.simple, rf2.complex/rf1.complex)
	}
	for _, r := range rows {
		if r.err != nil {
			continue
		}
		for _, rr := range redisRows {
			fmt.Fprintf(out, "  %s / %s: simple %.2f×, complex %.2f×\n", r.label, rr.label, r.simple/rr.simple, r.complex/rr.complex)
		}
	}
	return nil
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// benchValue is the 1 KB value of the PUT/GET measurements.
func benchValue() []byte {
	val := make([]byte, 1024)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	return val
}

// benchPersistentRF starts a cluster with rf and protocol, measures PUT/GET
// latency and throughput on persistent objects, and stops it.
func benchPersistentRF(ctx context.Context, out io.Writer, fl benchDSOFlags, proto string, rf int, val []byte) (row benchRow, err error) {
	row = benchRow{label: fmt.Sprintf("Blossom rf %d (%s)", rf, proto)}
	dir, err := benchTempDir(fl.dir)
	if err != nil {
		return row, err
	}
	defer os.RemoveAll(dir)
	began := time.Now()
	bc, err := startBenchCluster(ctx, fl.clusterSpec(proto, rf, dir))
	if err != nil {
		return row, err
	}
	defer bc.stop()
	defer func() { err = bc.explain(err) }() // before stop: which nodes died
	dial := func() (*client.Client, error) {
		return client.DialOptions(ctx, client.Options{Endpoints: bc.eps, ConnsPerNode: 1})
	}
	c, err := dial()
	if err != nil {
		return row, err
	}
	defer c.Close()
	p := c.Persistent()
	ref := func(i int) dso.AtomicReference { return dso.NewAtomicReference(p, fmt.Sprint("kv", i%100)) }
	if row.put50, row.put99, err = latency(fl.ops, func(i int) error { return ref(i).Set(ctx, val) }); err != nil {
		return row, fmt.Errorf("PUT: %w", err)
	}
	if row.get50, row.get99, err = latency(fl.ops, func(i int) error {
		v, err := ref(i).Get(ctx)
		if err == nil && len(asBytes(v)) != len(val) {
			err = fmt.Errorf("GET kv%d: %d bytes, want %d", i%100, len(asBytes(v)), len(val))
		}
		return err
	}); err != nil {
		return row, fmt.Errorf("GET: %w", err)
	}
	bcs := make([]*client.Client, fl.clients)
	for i := range bcs {
		if bcs[i], err = dial(); err != nil {
			return row, err
		}
		defer bcs[i].Close()
	}
	objKeys := make([]string, fl.objects)
	for i := range objKeys {
		objKeys[i] = fmt.Sprint("obj", i)
	}
	for _, op := range []struct {
		n   int64
		res *float64
	}{{1, &row.simple}, {int64(fl.complexN), &row.complex}} {
		if *op.res, err = throughput(ctx, fl.clients, fl.duration, func(w int, rng *rand.Rand) error {
			_, err := dso.NewHandle(bcs[w].Persistent(), TypeBenchMultiplier, objKeys[rng.IntN(fl.objects)]).Call(ctx, "mul", int64(3), op.n)
			return err
		}); err != nil {
			return row, fmt.Errorf("throughput (%d multiplications): %w", op.n, err)
		}
	}
	fmt.Fprintf(out, "%s: %s, measured in %v\n", row.label, strings.Join(bc.eps, ","), time.Since(began).Round(time.Second))
	return row, nil
}

// asBytes returns v as bytes if it is a []byte or string.
func asBytes(v any) []byte {
	switch b := v.(type) {
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	return nil
}

// benchRedisRow measures 1 KB SET/GET latency and the simple and complex
// throughput on the redis-server at addr; with wait, every write is
// followed by WAIT 1 0 in the same pipeline (one round trip; the write's
// reply comes once a replica has it).
func benchRedisRow(ctx context.Context, fl benchDSOFlags, addr string, wait bool, val []byte) (benchRow, error) {
	var row benchRow
	r := dialRedis(addr)
	defer r.Close()
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprint("kv", i)
	}
	write := func(c *redis.Client, f func(redis.Pipeliner)) error {
		if !wait {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error { f(p); return nil })
			return err
		}
		var w *redis.Cmd
		_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			f(p)
			w = p.Do(ctx, "wait", 1, 0)
			return nil
		})
		if err != nil {
			return err
		}
		if n, err := w.Int64(); err != nil || n < 1 {
			return fmt.Errorf("WAIT 1 0: %d replicas (%v)", n, err)
		}
		return nil
	}
	var err error
	if row.put50, row.put99, err = latency(fl.ops, func(i int) error {
		return write(r, func(p redis.Pipeliner) { p.Set(ctx, keys[i%100], val, 0) })
	}); err != nil {
		return row, err
	}
	if row.get50, row.get99, err = latency(fl.ops, func(i int) error { return r.Get(ctx, keys[i%100]).Err() }); err != nil {
		return row, err
	}
	rcs := make([]*redis.Client, fl.clients)
	for i := range rcs {
		rcs[i] = dialRedis(addr)
		defer rcs[i].Close()
	}
	sha, err := rcs[0].ScriptLoad(ctx, benchLua).Result()
	if err != nil {
		return row, err
	}
	objKeys := make([]string, fl.objects)
	for i := range objKeys {
		objKeys[i] = fmt.Sprint("obj", i)
	}
	for _, op := range []struct {
		n   int
		res *float64
	}{{1, &row.simple}, {fl.complexN, &row.complex}} {
		n := strconv.Itoa(op.n)
		if *op.res, err = throughput(ctx, fl.clients, fl.duration, func(w int, rng *rand.Rand) error {
			return write(rcs[w], func(p redis.Pipeliner) { p.EvalSha(ctx, sha, []string{objKeys[rng.IntN(fl.objects)]}, "3", n) })
		}); err != nil {
			return row, err
		}
	}
	return row, nil
}

// benchRedisAOF starts a redis-server that appends every write to its AOF
// and fsyncs it before replying (appendfsync always), as Blossom's replicas
// do, and measures it.
func benchRedisAOF(ctx context.Context, fl benchDSOFlags, val []byte) (benchRow, error) {
	dir, err := benchTempDir(fl.dir)
	if err != nil {
		return benchRow{}, err
	}
	defer os.RemoveAll(dir)
	rd, err := startRedis(fl.redisServer, "--appendonly", "yes", "--appendfsync", "always", "--dir", dir)
	if err != nil {
		return benchRow{}, err
	}
	defer rd.stop()
	row, err := benchRedisRow(ctx, fl, rd.addr, false, val)
	row.label = "Redis AOF, appendfsync always"
	return row, err
}

// benchRedisReplicated starts a redis-server and a replica of it and
// measures the master with WAIT 1 0 after every write.
func benchRedisReplicated(ctx context.Context, fl benchDSOFlags, val []byte) (benchRow, error) {
	row := benchRow{label: "Redis + replica, WAIT 1 0"}
	m, err := startRedis(fl.redisServer)
	if err != nil {
		return row, err
	}
	defer m.stop()
	host, port, _ := net.SplitHostPort(m.addr)
	rp, err := startRedis(fl.redisServer, "--replicaof", host, port)
	if err != nil {
		return row, err
	}
	defer rp.stop()
	mc := dialRedis(m.addr)
	defer mc.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, err := mc.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online") {
			break
		}
		if time.Now().After(deadline) {
			return row, fmt.Errorf("the replica on %s did not come online: %q %v", rp.addr, info, err)
		}
	}
	r, err := benchRedisRow(ctx, fl, m.addr, true, val)
	r.label = row.label
	return r, err
}

// dirSize is the size in bytes of the files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// benchRestart creates fl.restartObjects persistent AtomicLongs on a
// cluster, kills one node with SIGKILL, starts it again, and reports the
// time from its start to its listening and to its first answered
// persistent call.
func benchRestart(ctx context.Context, out io.Writer, fl benchDSOFlags) error {
	rf := fl.rf
	if rf == 0 {
		rf = min(3, fl.nodes)
	}
	dir, err := benchTempDir(fl.dir)
	if err != nil {
		return &exitError{1, err}
	}
	defer os.RemoveAll(dir)
	bc, err := startBenchCluster(ctx, fl.clusterSpec(fl.protocol, rf, dir))
	if err != nil {
		return &exitError{1, err}
	}
	defer bc.stop()
	fmt.Fprintf(out, "%d-node cluster (%s, rf %d, fsync on) on %s\n", fl.nodes, fl.protocol, rf, strings.Join(bc.eps, ","))
	// A call waits out stalls of the replicas (a snapshot of a large
	// table) for up to two minutes.
	c, err := client.DialOptions(ctx, client.Options{Endpoints: bc.eps, ConnsPerNode: 4, RetryFor: 2 * time.Minute})
	if err != nil {
		return &exitError{1, err}
	}
	defer c.Close()
	p := c.Persistent()
	n := int64(fl.restartObjects)
	start := time.Now()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, fl.restartWorkers)
	for w := 0; w < max(fl.restartWorkers, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := dso.NewAtomicLong(p, "r"+strconv.FormatInt(i, 10)).Set(ctx, i); err != nil {
					errc <- fmt.Errorf("create r%d: %w", i, err)
					next.Store(n)
					return
				}
				if d := done.Add(1); d%(max(n/10, 1)) == 0 {
					el := time.Since(start)
					fmt.Fprintf(out, "  %d objects created, %v, %.0f/s\n", d, el.Round(time.Second), float64(d)/el.Seconds())
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return &exitError{1, bc.explain(err)}
	}
	if ctx.Err() != nil {
		return &exitError{1, ctx.Err()}
	}
	took := time.Since(start)
	fmt.Fprintf(out, "created %d persistent AtomicLongs in %v (%.0f/s, %d concurrent calls)\n",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), fl.restartWorkers)

	victim := bc.nodes[0]
	key, want := "", int64(-1)
	for i := int64(0); i < n; i++ {
		k := "r" + strconv.FormatInt(i, 10)
		if c.Owner(dso.Ref{Type: dso.TypeAtomicLong, Key: k}) == victim.addr {
			key, want = k, i
			break
		}
	}
	if key == "" {
		return &exitError{1, fmt.Errorf("no object of the %d is owned by node 1 (%s)", n, victim.addr)}
	}
	rss, _ := rssMiB(victim.cmd.Process.Pid)
	victim.kill()
	fmt.Fprintf(out, "node 1 (%s): RSS %.0f MiB before kill -9; data dir %.1f MiB\n", victim.addr, rss, float64(dirSize(bc.dataDirs[0]))/(1<<20))

	res, err := restartNode(ctx, victim, key, want, 10*time.Minute)
	if err != nil {
		return &exitError{1, err}
	}
	rss, _ = rssMiB(victim.cmd.Process.Pid)
	fmt.Fprintf(out, "restart of node 1 holding %d persistent AtomicLongs (rf %d, %s): listening after %v, first persistent call answered (get %s = %d) after %v; RSS %.0f MiB\n",
		n, rf, fl.protocol, res.listening.Round(time.Millisecond), key, want, res.answered.Round(time.Millisecond), rss)
	return nil
}

type restartTimes struct{ listening, answered time.Duration }

// restartNode starts p again with its command line and polls it alone
// (a client of this one endpoint) with a persistent get of key until the
// answer is want.
func restartNode(ctx context.Context, p *benchProc, key string, want int64, limit time.Duration) (restartTimes, error) {
	var res restartTimes
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	cmd := exec.Command(self, p.args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	cmd.Stderr = os.Stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	p.cmd = cmd
	listening := make(chan time.Duration, 1)
	p.watch(func() {
		br := bufio.NewReader(stdout)
		if _, err := br.ReadString('\n'); err == nil {
			listening <- time.Since(t0)
		}
		close(listening)
		io.Copy(io.Discard, br)
	})
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var rc *client.Client
	defer func() {
		if rc != nil {
			rc.Close()
		}
	}()
	var last error
	for {
		if ctx.Err() != nil {
			return res, fmt.Errorf("node %s did not answer within %v: %v", p.addr, limit, last)
		}
		if e := p.exited(); e != "" {
			return res, fmt.Errorf("restarted node %s %s (last call: %v)", p.addr, e, last)
		}
		if rc == nil {
			rc, last = client.DialOptions(ctx, client.Options{Endpoints: []string{p.addr}, NoDiscovery: true, ConnsPerNode: 1,
				DialTimeout: time.Second, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
			if last != nil {
				rc = nil
				time.Sleep(5 * time.Millisecond)
				continue
			}
		}
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := dso.NewAtomicLong(rc.Persistent(), key).Get(actx)
		acancel()
		if err == nil {
			res.answered = time.Since(t0)
			if v != want {
				return res, fmt.Errorf("restarted node: get %s = %d, want %d", key, v, want)
			}
			break
		}
		last = err
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case res.listening = <-listening:
	case <-time.After(time.Second):
	}
	return res, nil
}
