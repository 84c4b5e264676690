package clustertest

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/pmem"
	"github.com/blossom-dso/blossom/pmem/snapstore"
)

// TestPmemSnapshotsSurviveKill9 runs three `blossom server --storage
// pmem:PATH --rf 3` nodes (paxos) that snapshot their replicas every 40
// records, increments persistent counters, kills -9 every node at once and
// restarts them. Each node must have kept its group's snapshot in its heap
// (and no snapshot file), must recover from that snapshot plus its log
// (its log line "recovered" names a snapshot index above 0), and the
// counters must hold every acknowledged increment. Then two controls: a
// node whose heap file is replaced by a foreign file refuses to start with
// an error naming the file, and a node whose heap is deleted refuses to
// start because its compacted log lacks the records the snapshot covered.
func TestPmemSnapshotsSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("real-process cluster test; skipped under -short")
	}
	c := startCluster(t, clusterSpec{protocol: "paxos", n: 3, rf: 3, compactEvery: 40, pmem: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	keys := []string{"pm-a", "pm-b", "pm-c"}
	acked := map[string]int64{}
	p := c.dial(ctx).Persistent()
	for i := range 150 {
		k := keys[i%len(keys)]
		v, err := dso.NewAtomicLong(p, k).AddAndGet(ctx, 1)
		if err != nil {
			t.Fatalf("increment %d of %s: %v", i, k, err)
		}
		acked[k]++
		if v != acked[k] {
			t.Fatalf("increment of %s returned %d after %d acknowledged", k, v, acked[k]-1)
		}
	}

	for i := range c.procs {
		c.kill9(i)
	}
	t.Logf("kill -9 of all 3 nodes after %d acknowledged increments", 150)
	for i := range c.procs {
		if snaps, _ := filepath.Glob(filepath.Join(c.dir, "n"+strconv.Itoa(i+1), "*", "*.snap")); len(snaps) > 0 {
			t.Errorf("node %d wrote snapshot files %v; its snapshots belong in its heap", i+1, snaps)
		}
		idx, n := heapSnapshot(t, c.heapPath(i))
		t.Logf("node %d: heap %s holds the snapshot of group-0 at index %d (%d bytes)", i+1, filepath.Base(c.heapPath(i)), idx, n)
		if idx == 0 {
			t.Errorf("node %d: no snapshot of group-0 in its heap", i+1)
		}
	}

	for i := range c.procs {
		c.start(i)
	}
	for i := range c.procs {
		c.waitReady(i)
	}
	for i := range c.procs {
		log := lastStartLog(t, c, i)
		m := regexp.MustCompile(`msg=recovered .*snapshot_index=(\d+) records=(\d+)`).FindStringSubmatch(log)
		if m == nil {
			t.Fatalf("node %d logged no recovery:\n%s", i+1, log)
		}
		if m[1] == "0" {
			t.Errorf("node %d recovered without its snapshot (snapshot_index=0, %s records)", i+1, m[2])
		}
		t.Logf("node %d restarted: recovered from snapshot index %s plus %s log records", i+1, m[1], m[2])
	}
	p = c.dial(ctx).Persistent()
	for _, k := range keys {
		v, err := dso.NewAtomicLong(p, k).Get(ctx)
		if err != nil {
			t.Fatalf("get %s after the restart: %v", k, err)
		}
		if v != acked[k] {
			t.Errorf("%s is %d after the restart, want the %d acknowledged increments", k, v, acked[k])
		}
	}
	t.Logf("after the restart the counters answer %v", acked)

	// Control 1: a foreign file in place of node 1's heap.
	c.kill9(0)
	heap := c.heapPath(0)
	saved, err := os.ReadFile(heap)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(heap, bytes.Repeat([]byte("not a heap "), len(saved)/11), 0o644); err != nil {
		t.Fatal(err)
	}
	if log := startExpectExit(t, c, 0); !strings.Contains(log, heap) {
		t.Errorf("node 1 with a foreign heap file did not name it:\n%s", log)
	} else {
		t.Logf("node 1 with a foreign heap file refused to start: %s", lastLine(log))
	}
	// Control 2: no heap at all; the log was compacted past its start.
	if err := os.Remove(heap); err != nil {
		t.Fatal(err)
	}
	if log := startExpectExit(t, c, 0); !strings.Contains(log, "missing") {
		t.Errorf("node 1 without its heap did not report the records its snapshot covered as missing:\n%s", log)
	} else {
		t.Logf("node 1 without its heap refused to start: %s", lastLine(log))
	}
}

// heapSnapshot opens a heap file (its node is dead) and returns the index
// and size of its group-0 snapshot.
func heapSnapshot(t *testing.T, path string) (uint64, int) {
	t.Helper()
	h, err := pmem.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer h.Close()
	s, err := snapstore.Open(h)
	if err != nil {
		t.Fatal(err)
	}
	idx, data, err := s.Named("group-0").Load()
	if err != nil {
		t.Fatal(err)
	}
	return idx, len(data)
}

// lastStartLog returns node i's log since its last start.
func lastStartLog(t *testing.T, c *cluster, i int) string {
	t.Helper()
	b, err := os.ReadFile(c.procs[i].logPath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if k := strings.LastIndex(s, "=== clustertest: start #"); k >= 0 {
		s = s[k:]
	}
	return s
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// startExpectExit starts node i, which must exit before accepting
// connections, and returns its log since that start.
func startExpectExit(t *testing.T, c *cluster, i int) string {
	t.Helper()
	c.start(i)
	p := c.procs[i]
	p.mu.Lock()
	p.expected = true
	done := p.done
	p.mu.Unlock()
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-done:
			return lastStartLog(t, c, i)
		case <-time.After(50 * time.Millisecond):
		}
		if nc, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
			nc.Close()
			c.kill9(i)
			t.Errorf("node %d started (accepts connections); it should have refused to", i+1)
			return lastStartLog(t, c, i)
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d did not exit within %v", i+1, readyTimeout)
		}
	}
}
