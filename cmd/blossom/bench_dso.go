package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
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
)

func init() { root.AddCommand(newBenchDSOCmd()) }

// TypeBenchMultiplier is the object of the throughput benchmark, served by
// `blossom server --bench-types`: an int64 (initially 1) that mul(f, n)
// multiplies by f modulo benchModulus, n times, and returns.
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
	v := m.v
	for i := int64(0); i < n; i++ {
		v = v * f % benchModulus
	}
	m.v = v
	return v, nil
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
	quick                       bool
	memoryOnly                  bool
}

func newBenchDSOCmd() *cobra.Command {
	var fl benchDSOFlags
	cmd := &cobra.Command{
		Use:   "bench-dso",
		Short: "Benchmark a one-node DSO server against Redis on loopback",
		Long: `Start a one-node Blossom server (a child process) and redis-server beside it,
both on loopback, and measure from one run: 1 KB PUT and GET latency for one
sequential client (deliverable Table 2); throughput of concurrent clients over
many objects for a simple operation (one multiplication) and a complex one
(10,000 multiplications; a Lua script in Redis) (deliverable Figure 3); the
mean time for 1,000 clients to cross one barrier; and the server's resident
memory with 1,000,000 AtomicLong objects. redis-server must be installed
(Debian: apt-get install redis-server); without it the Redis columns are
skipped.`,
		Example: `  blossom bench-dso
  blossom bench-dso --quick`,
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
			}
			ctx, stop := dsoSignalContext(cmd)
			defer stop()
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
	f.IntVar(&fl.barrierClients, "barrier-clients", 1000, "clients crossing the barrier")
	f.IntVar(&fl.barrierRuns, "barrier-runs", 10, "barriers crossed back to back")
	f.IntVar(&fl.memObjects, "memory-objects", 1000000, "AtomicLong objects of the memory measurement")
	f.BoolVar(&fl.memoryOnly, "memory-only", false, "run only the memory measurement")
	f.BoolVar(&fl.quick, "quick", false, "short run (fewer operations, 1s throughput runs, 100,000 objects)")
	return cmd
}

// benchProc is a child process serving on a loopback port.
type benchProc struct {
	cmd  *exec.Cmd
	addr string
}

func (p *benchProc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// rssMiB reads the resident set size of a process from /proc.
func rssMiB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func startBlossomChild() (*benchProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "server", "--listen", "127.0.0.1:0", "--log-level", "error", "--bench-types")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &benchProc{cmd: cmd}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("blossom server child: %w", err)
	}
	p.addr = strings.TrimSpace(strings.TrimPrefix(line, "blossom server listening on "))
	go io.Copy(io.Discard, out)
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

func startRedis(bin string) (*benchProc, error) {
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
func latencies(n int, op func(i int) error) (p50, p99 time.Duration, err error) {
	for i := 0; i < min(n/10, 1000); i++ {
		if err := op(i); err != nil {
			return 0, 0, err
		}
	}
	ds := make([]time.Duration, n)
	for i := range ds {
		t := time.Now()
		if err := op(i); err != nil {
			return 0, 0, err
		}
		ds[i] = time.Since(t)
	}
	slices.Sort(ds)
	return ds[n/2], ds[n*99/100], nil
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

func runBenchDSO(ctx context.Context, out io.Writer, fl benchDSOFlags) error {
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
		return benchMemory(ctx, out, bl, rd, fl)
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
	fmt.Fprintf(out, "\n1 KB PUT/GET latency, 1 sequential client, %d operations each\n", fl.ops)
	fmt.Fprintf(out, "  %-22s %12s %12s\n", "", "p50", "p99")
	ref := func(i int) dso.AtomicReference { return dso.NewAtomicReference(c, fmt.Sprint("kv", i%100)) }
	bp50, bp99, err := latencies(fl.ops, func(i int) error { return ref(i).Set(ctx, val) })
	if err != nil {
		return &exitError{1, err}
	}
	fmt.Fprintf(out, "  %-22s %12s %12s\n", "Blossom PUT", us(bp50), us(bp99))
	bg50, bg99, err := latencies(fl.ops, func(i int) error { _, err := ref(i).Get(ctx); return err })
	if err != nil {
		return &exitError{1, err}
	}
	fmt.Fprintf(out, "  %-22s %12s %12s\n", "Blossom GET", us(bg50), us(bg99))
	if rd != nil {
		r := dialRedis(rd.addr)
		keys := make([]string, 100)
		for i := range keys {
			keys[i] = fmt.Sprint("kv", i)
		}
		rp50, rp99, err := latencies(fl.ops, func(i int) error { return r.Set(ctx, keys[i%100], val, 0).Err() })
		if err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintf(out, "  %-22s %12s %12s\n", "Redis SET", us(rp50), us(rp99))
		rg50, rg99, err := latencies(fl.ops, func(i int) error { return r.Get(ctx, keys[i%100]).Err() })
		if err != nil {
			return &exitError{1, err}
		}
		r.Close()
		fmt.Fprintf(out, "  %-22s %12s %12s\n", "Redis GET", us(rg50), us(rg99))
		fmt.Fprintf(out, "  Blossom p50 / Redis p50: PUT %.2f×, GET %.2f× (goal ≤ 1.25×)\n",
			float64(bp50)/float64(rp50), float64(bg50)/float64(rg50))
	}

	// 2. Throughput: simple and complex operations.
	fmt.Fprintf(out, "\nthroughput, %d clients over %d objects, %v per run (ops/s)\n", fl.clients, fl.objects, fl.duration)
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
	goals := map[string]string{"simple": "≥ 0.7", "complex": "≥ 2"}
	for _, op := range []struct {
		name string
		n    int
	}{{"simple", 1}, {"complex", fl.complexN}} {
		n := int64(op.n)
		bt, err := throughput(ctx, fl.clients, fl.duration, func(w int, rng *rand.Rand) error {
			_, err := dso.NewHandle(bcs[w], TypeBenchMultiplier, objKeys[rng.IntN(fl.objects)]).Call(ctx, "mul", int64(3), n)
			return err
		})
		if err != nil {
			return &exitError{1, err}
		}
		label := fmt.Sprintf("%s (%d multiplication", op.name, op.n)
		if op.n > 1 {
			label += "s"
		}
		label += ")"
		if rd == nil {
			fmt.Fprintf(out, "  %-34s %12.0f %12s\n", label, bt, "-")
			continue
		}
		rt, err := throughput(ctx, fl.clients, fl.duration, func(w int, rng *rand.Rand) error {
			return rcs[w].EvalSha(ctx, sha, []string{objKeys[rng.IntN(fl.objects)]}, "3", strconv.Itoa(op.n)).Err()
		})
		if err != nil {
			return &exitError{1, err}
		}
		fmt.Fprintf(out, "  %-34s %12.0f %12.0f %7.2f× (goal %s)\n", label, bt, rt, bt/rt, goals[op.name])
	}
	for _, bc := range bcs {
		bc.Close()
	}

	// 3. Barrier crossing.
	if err := benchBarrier(ctx, out, dial, fl); err != nil {
		return &exitError{1, err}
	}

	// 4. Memory with many AtomicLong objects.
	return benchMemory(ctx, out, bl, rd, fl)
}

// benchMemory creates fl.memObjects AtomicLong objects on the Blossom
// server and the same keys (AtomicLong/mN = N) on Redis, and reports the
// resident memory of both processes.
func benchMemory(ctx context.Context, out io.Writer, bl, rd *benchProc, fl benchDSOFlags) error {
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
	fmt.Fprintf(out, "\nmemory: %d AtomicLong objects created in %v; server RSS %.0f MiB (%.0f MiB before; goal < 256 MiB)\n",
		fl.memObjects, took.Round(time.Millisecond), after, before)
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
	return nil
}

func benchBarrier(ctx context.Context, out io.Writer, dial func() (*client.Client, error), fl benchDSOFlags) error {
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
	return nil
}
