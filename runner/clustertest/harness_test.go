package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/internal/loopback"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/runner"
)

// Bounds of the harness's waits: each fails the test with a message when
// it runs out, so that nothing hangs.
const (
	readyTimeout = 30 * time.Second // a started replica answers /status
	exitTimeout  = 10 * time.Second // a killed process is reaped
)

// binDir holds the binaries built by this test run; TestMain removes it.
var binDir string

// built caches the result of one build per kind ("plain", "failpoint").
var (
	buildMu sync.Mutex
	built   = map[string]buildResult{}
)

type buildResult struct {
	path string
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "blossom-clustertest-bin-")
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

// blossomBinary returns the path of a plain blossom binary: $BLOSSOM_BIN,
// or one built once per test run.
func blossomBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BLOSSOM_BIN"); p != "" {
		return p
	}
	return buildOnce(t, "plain", func(root, out string) *exec.Cmd {
		cmd := exec.Command("go", "build", "-o", out, "./cmd/blossom")
		cmd.Dir = root
		return cmd
	})
}

// buildOnce runs the build that mk describes once per test run and kind,
// and returns the binary's path; a failed build fails every test that
// asks for it.
func buildOnce(t testing.TB, kind string, mk func(root, out string) *exec.Cmd) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if b, ok := built[kind]; ok {
		if b.err != nil {
			t.Fatal(b.err)
		}
		return b.path
	}
	out := filepath.Join(binDir, "blossom-"+kind)
	cmd := mk(moduleRoot(t), out)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	t0 := time.Now()
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("clustertest: %s: %v\n%s", strings.Join(cmd.Args, " "), err, buf.String())
	}
	built[kind] = buildResult{path: out, err: err}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s binary in %v", kind, time.Since(t0).Round(time.Millisecond))
	return out
}

// spec describes a cluster.
type spec struct {
	protocol     string
	n, f, groups int
	compactEvery int
	bin          string   // the blossom binary
	env          []string // extra environment of every replica process
}

// proc is one replica process slot: its flags stay the same across
// restarts.
type proc struct {
	id      protocols.NodeID
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

// cluster is a set of replica processes with a proxy per directed link.
type cluster struct {
	t       testing.TB
	spec    spec
	ids     []protocols.NodeID
	clients map[protocols.NodeID]string // id → HTTP client API address
	peers   map[protocols.NodeID]string // id → replica-to-replica listen address
	proxies map[[2]protocols.NodeID]*proxy
	procs   map[protocols.NodeID]*proc
	http    *http.Client

	mu         sync.Mutex
	unexpected []string // processes that exited on their own
}

// freeAddrs returns n loopback addresses that were free a moment ago and
// that no outgoing connection can take before a replica binds them.
func freeAddrs(t testing.TB, n int) []string { return loopback.FreeAddrs(t, n) }

// startCluster starts every replica of s and waits until each answers
// /status. Every process is killed at the end of the test, and on failure
// the tail of each one's stderr is printed.
func startCluster(t testing.TB, s spec) *cluster {
	t.Helper()
	dir := t.TempDir()
	c := &cluster{
		t: t, spec: s, clients: map[protocols.NodeID]string{}, peers: map[protocols.NodeID]string{},
		proxies: map[[2]protocols.NodeID]*proxy{}, procs: map[protocols.NodeID]*proc{},
		http: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	}
	addrs := freeAddrs(t, 2*s.n)
	for i := range s.n {
		id := protocols.NodeID(i + 1)
		c.ids = append(c.ids, id)
		c.peers[id], c.clients[id] = addrs[i], addrs[s.n+i]
	}
	for _, i := range c.ids {
		for _, j := range c.ids {
			if i != j {
				c.proxies[[2]protocols.NodeID{i, j}] = newProxy(t, c.peers[j])
			}
		}
	}
	for _, i := range c.ids {
		var peers []string
		for _, j := range c.ids {
			addr := c.peers[j]
			if j != i {
				addr = c.proxies[[2]protocols.NodeID{i, j}].addr()
			}
			peers = append(peers, fmt.Sprintf("%d=%s", j, addr))
		}
		args := []string{"replica",
			"--id", fmt.Sprint(i), "--peers", strings.Join(peers, ","),
			"--client-addr", c.clients[i], "--protocol", s.protocol,
			"--f", fmt.Sprint(s.f), "--groups", fmt.Sprint(s.groups),
			"--data-dir", filepath.Join(dir, fmt.Sprintf("r%d", i)),
			"--tick", "10ms", "--compact-every", fmt.Sprint(s.compactEvery),
			"--request-timeout", "2s",
		}
		c.procs[i] = &proc{id: i, args: args, logPath: filepath.Join(dir, fmt.Sprintf("r%d.log", i))}
	}
	// Registered after t.TempDir, so it runs before the dir is removed.
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpStatus()
		}
		c.killAll()
		if t.Failed() {
			c.dumpLogs(40)
		}
	})
	for _, id := range c.ids {
		c.start(id)
	}
	for _, id := range c.ids {
		c.waitReady(id)
	}
	return c
}

// start launches replica id's process (again) with its flags; its stderr
// is appended to its log file.
func (c *cluster) start(id protocols.NodeID) {
	c.t.Helper()
	p := c.procs[id]
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		c.t.Fatalf("replica %d is already running", id)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	p.starts++
	fmt.Fprintf(f, "=== clustertest: start #%d of replica %d at %s\n", p.starts, id, time.Now().Format(time.StampMicro))
	cmd := exec.Command(c.spec.bin, p.args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), c.spec.env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		c.t.Fatalf("start replica %d: %v", id, err)
	}
	p.cmd, p.done, p.running, p.stopped, p.expected = cmd, make(chan struct{}), true, false, false
	done := p.done
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.running = false
		expected := p.expected
		p.mu.Unlock()
		if !expected {
			c.mu.Lock()
			c.unexpected = append(c.unexpected, fmt.Sprintf("replica %d (start #%d) exited on its own: %v", id, p.starts, err))
			c.mu.Unlock()
		}
		close(done)
	}()
}

// waitReady waits until replica id answers /status, failing the test if
// it exits or does not answer within readyTimeout.
func (c *cluster) waitReady(id protocols.NodeID) {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	p := c.procs[id]
	for {
		if _, err := c.status(id); err == nil {
			return
		}
		p.mu.Lock()
		done := p.done
		p.mu.Unlock()
		select {
		case <-done:
			c.t.Fatalf("replica %d exited before answering /status", id)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("replica %d did not answer /status within %v", id, readyTimeout)
		}
	}
}

// status reads replica id's GET /status.
func (c *cluster) status(id protocols.NodeID) (runner.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.clients[id]+"/status", nil)
	if err != nil {
		return runner.Status{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return runner.Status{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return runner.Status{}, fmt.Errorf("status of replica %d: %s", id, resp.Status)
	}
	var st runner.Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}

// signal sends sig to replica id's process.
func (c *cluster) signal(id protocols.NodeID, sig syscall.Signal) {
	c.t.Helper()
	p := c.procs[id]
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		c.t.Fatalf("signal %v: replica %d is not running", sig, id)
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
		c.t.Fatalf("signal %v to replica %d: %v", sig, id, err)
	}
}

// kill9 sends SIGKILL to the given replicas, all before waiting for any,
// and waits until each is reaped.
func (c *cluster) kill9(ids ...protocols.NodeID) {
	c.t.Helper()
	for _, id := range ids {
		c.signal(id, syscall.SIGKILL)
	}
	for _, id := range ids {
		p := c.procs[id]
		p.mu.Lock()
		done := p.done
		p.mu.Unlock()
		select {
		case <-done:
		case <-time.After(exitTimeout):
			c.t.Fatalf("replica %d not reaped %v after SIGKILL", id, exitTimeout)
		}
	}
}

// restart starts replica id again with the same flags and waits until it
// answers.
func (c *cluster) restart(id protocols.NodeID) {
	c.t.Helper()
	c.start(id)
	c.waitReady(id)
}

// running reports whether replica id's process is up and not stopped.
func (c *cluster) running(id protocols.NodeID) bool {
	p := c.procs[id]
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running && !p.stopped
}

// cut cuts (or heals) the links between a and b, both directions.
func (c *cluster) cut(a, b protocols.NodeID, cut bool) {
	c.proxies[[2]protocols.NodeID{a, b}].setCut(cut)
	c.proxies[[2]protocols.NodeID{b, a}].setCut(cut)
}

// healAll heals every link, continues every stopped replica and restarts
// every dead one, then waits until all answer.
func (c *cluster) healAll() {
	c.t.Helper()
	for _, p := range c.proxies {
		p.setCut(false)
	}
	for _, id := range c.ids {
		p := c.procs[id]
		p.mu.Lock()
		running, stopped := p.running, p.stopped
		p.mu.Unlock()
		switch {
		case !running:
			c.start(id)
		case stopped:
			c.signal(id, syscall.SIGCONT)
		}
	}
	for _, id := range c.ids {
		c.waitReady(id)
	}
}

// leader returns the leader most live replicas report in /status, or 0.
func (c *cluster) leader() protocols.NodeID {
	votes := map[protocols.NodeID]int{}
	for _, id := range c.ids {
		if !c.running(id) {
			continue
		}
		if st, err := c.status(id); err == nil && st.Leader != 0 {
			votes[st.Leader]++
		}
	}
	var best protocols.NodeID
	for id, v := range votes {
		if v > votes[best] || (v == votes[best] && id < best) {
			best = id
		}
	}
	return best
}

// group returns the replicas that order key (all of them without groups).
func (c *cluster) group(key string) []protocols.NodeID {
	if c.spec.groups == 0 {
		return c.ids
	}
	return mcast.Groups(c.spec.groups, 2*c.spec.f+1)[runner.GroupOf(key, c.spec.groups)]
}

// unexpectedExits lists the processes that exited without the harness
// killing them.
func (c *cluster) unexpectedExits() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.unexpected)
}

// killAll SIGKILLs every process still running (continuing none: SIGKILL
// ends a stopped process too) and reaps it.
func (c *cluster) killAll() {
	for _, id := range c.ids {
		p := c.procs[id]
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
				c.t.Errorf("replica %d not reaped after SIGKILL", id)
			}
		}
	}
}

// dumpStatus logs every running replica's /status.
func (c *cluster) dumpStatus() {
	for _, id := range c.ids {
		if !c.running(id) {
			c.t.Logf("replica %d: not running (or stopped)", id)
			continue
		}
		st, err := c.status(id)
		if err != nil {
			c.t.Logf("replica %d: /status: %v", id, err)
			continue
		}
		c.t.Logf("replica %d: %+v", id, st)
	}
}

// dumpLogs logs the last n lines of every replica's stderr.
func (c *cluster) dumpLogs(n int) {
	for _, id := range c.ids {
		b, err := os.ReadFile(c.procs[id].logPath)
		if err != nil {
			c.t.Logf("replica %d: no log: %v", id, err)
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		c.t.Logf("---- tail of replica %d's stderr (%s) ----\n%s", id, c.procs[id].logPath, strings.Join(lines, "\n"))
	}
}
