package clustertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/internal/loopback"
)

// Bounds of the harness's waits: each fails the test with a message when
// it runs out, so that nothing hangs.
const (
	readyTimeout = 30 * time.Second // a started server accepts connections
	exitTimeout  = 10 * time.Second // a killed process is reaped
)

// binDir holds the binary built by this test run; TestMain removes it.
var binDir string

var (
	buildMu  sync.Mutex
	buildBin string
	buildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "blossom-dso-clustertest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("clustertest: no go.mod above the working directory")
		}
		dir = up
	}
}

// blossomBinary returns the path of the blossom binary: $BLOSSOM_BIN, or
// one built once per test run (a failed build fails every test).
func blossomBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BLOSSOM_BIN"); p != "" {
		return p
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildBin == "" && buildErr == nil {
		out := filepath.Join(binDir, "blossom")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/blossom")
		cmd.Dir = moduleRoot(t)
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("clustertest: go build ./cmd/blossom: %v\n%s", err, buf.String())
		} else {
			buildBin = out
			t.Logf("built the blossom binary in %v", time.Since(t0).Round(time.Millisecond))
		}
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// testSeed returns the seed of a randomized test: $BLOSSOM_CLUSTERTEST_SEED
// or the clock. It logs the seed, and logs it again if the test fails.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BLOSSOM_CLUSTERTEST_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("BLOSSOM_CLUSTERTEST_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d", seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s failed with seed %d (rerun: BLOSSOM_CLUSTERTEST_SEED=%d go test -run '%s' ./dso/clustertest/)",
				t.Name(), seed, seed, "^"+strings.ReplaceAll(t.Name(), "/", "$/^")+"$")
		}
	})
	return seed
}

// clusterSpec describes a cluster of `blossom server` processes.
type clusterSpec struct {
	protocol string
	n, rf    int
	admin    bool // serve each node's metrics (--admin-addr), for cluster.metric
	// compactEvery, if not 0, is the nodes' --compact-every: a small value
	// makes restarted replicas recover from snapshots of the object table.
	compactEvery int
	// pmem keeps each node's objects and snapshots in the pmem heap
	// n<id>.heap beside its data dir (--storage pmem:PATH).
	pmem bool
}

func (s clusterSpec) String() string { return fmt.Sprintf("%s-n%d-rf%d", s.protocol, s.n, s.rf) }

// proc is one server process slot: its flags and data dir stay the same
// across restarts.
type proc struct {
	idx     int // 0-based; the node's --id is idx+1
	addr    string
	args    []string
	logPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has been reaped
	running  bool          // started and not known to have exited
	stopped  bool          // SIGSTOPped and not yet continued
	expected bool          // the next exit is one the harness caused
	starts   int
}

// cluster is a set of `blossom server` processes on loopback.
type cluster struct {
	t     testing.TB
	spec  clusterSpec
	dir   string // holds the nodes' data dirs n<id>, heaps and logs
	bin   string
	addrs []string // client endpoints, by node index
	admin []string // metrics endpoints (--admin-addr), if spec.admin
	procs []*proc
	http  *http.Client

	mu         sync.Mutex
	unexpected []string // processes that exited on their own
}

// clusterAddrs returns n client endpoints and one peer-port offset such
// that every endpoint's port plus the offset was free a moment ago too.
func clusterAddrs(t testing.TB, n int) ([]string, int) {
	t.Helper()
	for try := 0; try < 50; try++ {
		as := loopback.FreeAddrs(t, 2*n)
		ports := make([]int, len(as))
		for i, a := range as {
			_, p, err := net.SplitHostPort(a)
			if err != nil {
				t.Fatal(err)
			}
			if ports[i], err = strconv.Atoi(p); err != nil {
				t.Fatal(err)
			}
		}
		off := ports[n] - ports[0]
		ok := off != 0
		for i := range n {
			ok = ok && ports[n+i]-ports[i] == off
		}
		if ok {
			return as[:n], off
		}
	}
	t.Fatalf("clustertest: no %d free port pairs at one offset", n)
	return nil, 0
}

// startCluster starts every node of s and waits until each accepts
// connections. Every process is killed at the end of the test, and on
// failure the tail of each one's log is printed.
func startCluster(t testing.TB, s clusterSpec) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{t: t, spec: s, dir: dir, bin: blossomBinary(t), http: &http.Client{Timeout: 5 * time.Second}}
	var off int
	c.addrs, off = clusterAddrs(t, s.n)
	if s.admin {
		c.admin = loopback.FreeAddrs(t, s.n)
	}
	peers := strings.Join(c.addrs, ",")
	for i, a := range c.addrs {
		args := []string{"server",
			"--id", strconv.Itoa(i + 1), "--listen", a, "--peers", peers,
			"--protocol", s.protocol, "--rf", strconv.Itoa(s.rf),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			"--peer-port-offset", strconv.Itoa(off),
		}
		if s.admin {
			args = append(args, "--admin-addr", c.admin[i])
		}
		if s.compactEvery != 0 {
			args = append(args, "--compact-every", strconv.Itoa(s.compactEvery))
		}
		if s.pmem {
			args = append(args, "--storage", "pmem:"+c.heapPath(i), "--storage-size", strconv.Itoa(32<<20),
				"--wal-segment-bytes", "4096") // compaction frees segments early
		}
		c.procs = append(c.procs, &proc{idx: i, addr: a, args: args, logPath: filepath.Join(dir, fmt.Sprintf("n%d.log", i+1))})
	}
	// Registered after t.TempDir, so it runs before the dir is removed.
	t.Cleanup(func() {
		c.killAll()
		if t.Failed() {
			c.dumpLogs(60)
		}
	})
	for i := range c.procs {
		c.start(i)
	}
	for i := range c.procs {
		c.waitReady(i)
	}
	return c
}

// heapPath is node i's pmem heap file (with spec.pmem).
func (c *cluster) heapPath(i int) string { return filepath.Join(c.dir, fmt.Sprintf("n%d.heap", i+1)) }

// start launches node i's process (again) with its flags; its output is
// appended to its log file.
func (c *cluster) start(i int) {
	c.t.Helper()
	p := c.procs[i]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		c.t.Fatalf("node %d is already running", i+1)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	p.starts++
	fmt.Fprintf(f, "=== clustertest: start #%d of node %d at %s\n", p.starts, i+1, time.Now().Format(time.StampMicro))
	cmd := exec.Command(c.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		c.t.Fatalf("start node %d: %v", i+1, err)
	}
	p.cmd, p.done, p.running, p.stopped, p.expected = cmd, make(chan struct{}), true, false, false
	done, starts := p.done, p.starts
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.running = false
		expected := p.expected
		p.mu.Unlock()
		if !expected {
			c.mu.Lock()
			c.unexpected = append(c.unexpected, fmt.Sprintf("node %d (start #%d) exited on its own: %v", i+1, starts, err))
			c.mu.Unlock()
		}
		close(done)
	}()
}

// waitReady waits until node i accepts connections on its client port
// (the server listens once its replicas have recovered), failing the test
// if it exits or does not within readyTimeout.
func (c *cluster) waitReady(i int) {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	p := c.procs[i]
	for {
		if nc, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
			nc.Close()
			return
		}
		p.mu.Lock()
		done := p.done
		p.mu.Unlock()
		select {
		case <-done:
			c.t.Fatalf("node %d exited before accepting connections", i+1)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d did not accept connections within %v", i+1, readyTimeout)
		}
	}
}

// signal sends sig to node i's process.
func (c *cluster) signal(i int, sig syscall.Signal) {
	c.t.Helper()
	p := c.procs[i]
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		c.t.Fatalf("signal %v: node %d is not running", sig, i+1)
	}
	switch sig {
	case syscall.SIGKILL:
		p.expected = true
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		c.t.Fatalf("signal %v to node %d: %v", sig, i+1, err)
	}
}

// kill9 sends SIGKILL to node i and waits until it is reaped.
func (c *cluster) kill9(i int) {
	c.t.Helper()
	c.signal(i, syscall.SIGKILL)
	p := c.procs[i]
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	select {
	case <-done:
	case <-time.After(exitTimeout):
		c.t.Fatalf("node %d not reaped %v after SIGKILL", i+1, exitTimeout)
	}
}

// restart starts node i again with the same flags and data dir and waits
// until it accepts connections.
func (c *cluster) restart(i int) {
	c.t.Helper()
	c.start(i)
	c.waitReady(i)
}

// healAll continues every stopped node and restarts every dead one, then
// waits until all accept connections.
func (c *cluster) healAll() {
	c.t.Helper()
	for i, p := range c.procs {
		p.mu.Lock()
		running, stopped := p.running, p.stopped
		p.mu.Unlock()
		switch {
		case !running:
			c.start(i)
		case stopped:
			c.signal(i, syscall.SIGCONT)
		}
	}
	for i := range c.procs {
		c.waitReady(i)
	}
}

// unexpectedExits lists the processes that exited without the harness
// killing them.
func (c *cluster) unexpectedExits() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.unexpected)
}

// killAll SIGKILLs every process still running (a stopped one too) and
// reaps it.
func (c *cluster) killAll() {
	for i, p := range c.procs {
		p.mu.Lock()
		if p.running {
			p.expected = true
			_ = p.cmd.Process.Kill()
		}
		done := p.done
		p.mu.Unlock()
		if done != nil {
			select {
			case <-done:
			case <-time.After(exitTimeout):
				c.t.Errorf("node %d not reaped after SIGKILL", i+1)
			}
		}
	}
}

// recoveries counts, over every restart of every node (not the first
// starts), the replicas that recovered and those of them that recovered
// from a snapshot, read from the nodes' logs.
func (c *cluster) recoveries() (replicas, fromSnapshot int) {
	for _, p := range c.procs {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			continue
		}
		restart := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "=== clustertest: start #") {
				restart = !strings.HasPrefix(line, "=== clustertest: start #1 ")
				continue
			}
			if !restart || !strings.Contains(line, "msg=recovered ") {
				continue
			}
			replicas++
			if !strings.Contains(line, " snapshot_index=0 ") {
				fromSnapshot++
			}
		}
	}
	return replicas, fromSnapshot
}

// dumpLogs logs the last n lines of every node's log.
func (c *cluster) dumpLogs(n int) {
	for i, p := range c.procs {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			c.t.Logf("node %d: no log: %v", i+1, err)
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		c.t.Logf("---- tail of node %d's log (%s) ----\n%s", i+1, p.logPath, strings.Join(lines, "\n"))
	}
}

// metric returns the value of the sample series (a metric name with its
// labels, as in the exposition format: name{label="value"}) on node i's
// metrics endpoint; a series not exposed is 0.
func (c *cluster) metric(i int, series string) float64 {
	c.t.Helper()
	v, err := c.tryMetric(i, series)
	if err != nil {
		c.t.Fatal(err)
	}
	return v
}

// tryMetric is metric that returns an error instead of failing the test.
func (c *cluster) tryMetric(i int, series string) (float64, error) {
	if c.admin == nil {
		return 0, errors.New("metric: the cluster was started without admin endpoints")
	}
	resp, err := c.http.Get("http://" + c.admin[i] + "/metrics")
	if err != nil {
		return 0, fmt.Errorf("metrics of node %d: %w", i+1, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics of node %d: %s %v", i+1, resp.Status, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("metrics of node %d: %q: %w", i+1, line, err)
			}
			return f, nil
		}
	}
	return 0, nil
}

// leader returns the index of the node that a running, unfrozen node
// reports as the leader of replica group 0 (blossom_dso_replica_leader),
// if one does: node ids are the places of the endpoints in sorted order.
func (c *cluster) leader() (int, bool) {
	if c.admin == nil {
		return 0, false
	}
	sorted := slices.Sorted(slices.Values(c.addrs))
	for i, p := range c.procs {
		p.mu.Lock()
		up := p.running && !p.stopped
		p.mu.Unlock()
		if !up {
			continue
		}
		id, err := c.tryMetric(i, `blossom_dso_replica_leader{group="0"}`)
		if err != nil || id < 1 || int(id) > len(sorted) {
			continue
		}
		return slices.Index(c.addrs, sorted[int(id)-1]), true
	}
	return 0, false
}

// dial returns a new client of the cluster (a session of its own), closed
// at the end of the test. Its connections give up a frozen node after
// about a second, so that its persistent calls move on to the next
// replica soon.
func (c *cluster) dial(ctx context.Context) *client.Client {
	c.t.Helper()
	cl, err := client.DialOptions(ctx, client.Options{
		Endpoints: c.addrs, ConnsPerNode: 1, DialTimeout: time.Second, RequestTimeout: 2 * time.Second,
		ProbeInterval: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		c.t.Fatalf("dial %v: %v", c.addrs, err)
	}
	c.t.Cleanup(func() { cl.Close() })
	if _, err := cl.Topology(ctx); err != nil {
		c.t.Fatalf("topology of %v: %v", c.addrs, err)
	}
	return cl
}
