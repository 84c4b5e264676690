package runner_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/runner"
	"github.com/blossom-dso/blossom/runner/kvclient"
)

// BenchmarkReplicaKV measures the replicated KV on loopback: replicas
// in this process over real TCP with fsync'd logs, 64 kvclient sessions
// over HTTP doing puts of 100 bytes on 1000 keys. It reports ops/s and the
// p50 and p99 latency of a put.
func BenchmarkReplicaKV(b *testing.B) {
	for _, tc := range []struct {
		protocol string
		n        int
	}{{"paxos", 3}, {"paxos", 5}, {"fpaxos", 3}, {"epaxos", 3}, {"epaxos", 5}, {"atlas", 3}, {"atlas", 5}} {
		b.Run(fmt.Sprintf("%s/n=%d", tc.protocol, tc.n), func(b *testing.B) {
			c := startBenchCluster(b, tc.protocol, tc.n)
			const sessions = 64
			value := make([]byte, 100)
			var mu sync.Mutex
			var lats []time.Duration
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			per := (b.N + sessions - 1) / sessions
			for s := range sessions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := kvclient.New(c.clients, kvclient.Options{})
					var mine []time.Duration
					for i := range per {
						t0 := time.Now()
						cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
						err := cl.Put(cctx, fmt.Sprint("k", (s*per+i)%1000), value)
						cancel()
						if err == nil {
							mine = append(mine, time.Since(t0))
						}
					}
					mu.Lock()
					lats = append(lats, mine...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			slices.Sort(lats)
			if len(lats) == 0 {
				b.Fatal("no put succeeded")
			}
			b.ReportMetric(float64(len(lats))/el.Seconds(), "ops/s")
			b.ReportMetric(float64(lats[len(lats)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
		})
	}
}

type benchCluster struct {
	reps    []*runner.Replica
	clients map[protocols.NodeID]string
}

func startBenchCluster(b *testing.B, protocol string, n int) *benchCluster {
	b.Helper()
	addrs := freeAddrs(b, 2*n)
	peers := map[protocols.NodeID]string{}
	for i := range n {
		peers[protocols.NodeID(i+1)] = addrs[i]
	}
	dir := b.TempDir()
	c := &benchCluster{clients: map[protocols.NodeID]string{}}
	for i := range n {
		id := protocols.NodeID(i + 1)
		r, err := runner.Start(runner.Config{
			ID: id, Peers: peers, Protocol: protocol, F: 1, DataDir: filepath.Join(dir, fmt.Sprint(id)),
			ClientAddr: addrs[n+i], Seed: uint64(i + 1), Logger: quietLogger(),
		})
		if err != nil {
			b.Fatal(err)
		}
		c.reps = append(c.reps, r)
		c.clients[id] = r.ClientAddr()
	}
	b.Cleanup(func() {
		for _, r := range c.reps {
			r.Close()
		}
	})
	return c
}

// TestRestartAfterMillion writes 1,000,000 puts into a 3-replica paxos
// cluster, then restarts replica 2 and logs its data-dir size and recovery
// time, with and without compaction. It is a measurement, not a check of
// speed: it runs only with BLOSSOM_MILLION=1 (it takes minutes).
func TestRestartAfterMillion(t *testing.T) {
	if os.Getenv("BLOSSOM_MILLION") != "1" {
		t.Skip("set BLOSSOM_MILLION=1 to run")
	}
	for _, compact := range []int{10000, -1} {
		t.Run(fmt.Sprint("compact=", compact), func(t *testing.T) {
			const n, total, sessions = 3, 1_000_000, 256
			addrs := freeAddrs(t, n)
			peers := map[protocols.NodeID]string{}
			for i := range n {
				peers[protocols.NodeID(i+1)] = addrs[i]
			}
			dir := t.TempDir()
			cfg := func(i int) runner.Config {
				id := protocols.NodeID(i + 1)
				return runner.Config{ID: id, Peers: peers, Protocol: "paxos", F: 1, CompactEvery: compact,
					DataDir: filepath.Join(dir, fmt.Sprint(id)), Seed: uint64(i + 1), Logger: quietLogger(), RequestTimeout: 10 * time.Second}
			}
			reps := make([]*runner.Replica, n)
			for i := range n {
				r, err := runner.Start(cfg(i))
				require.NoError(t, err)
				reps[i] = r
			}
			defer func() {
				for _, r := range reps {
					r.Close()
				}
			}()
			t0 := time.Now()
			var wg sync.WaitGroup
			var failed sync.Map
			for s := range sessions {
				wg.Add(1)
				go func() {
					defer wg.Done()
					acked := uint64(0)
					for i := range total / sessions {
						seq := uint64(i + 1)
						cmd := runner.Command(protocols.CommandID{Client: uint64(s + 1), Seq: seq}, acked, runner.OpPut, fmt.Sprint("k", (s*7919+i)%10000), []byte("0123456789abcdef"))
						if _, err := reps[s%n].Do(context.Background(), cmd); err != nil {
							failed.Store(s, err)
							return
						}
						acked = seq + 1
					}
				}()
			}
			wg.Wait()
			failed.Range(func(k, v any) bool { t.Errorf("session %v: %v", k, v); return false })
			t.Logf("1,000,000 puts in %v (%.0f/s)", time.Since(t0).Round(time.Millisecond), total/time.Since(t0).Seconds())
			require.NoError(t, reps[1].Close())
			reps[1] = nil
			size := dirSize(t, filepath.Join(dir, "2"))
			t1 := time.Now()
			r, err := runner.Start(cfg(1))
			require.NoError(t, err)
			took := time.Since(t1)
			reps[1] = r
			st, err := r.Status(context.Background())
			require.NoError(t, err)
			// Caught up: the replica holds every key the workload wrote.
			for st.Keys == nil || *st.Keys < 10000 {
				time.Sleep(10 * time.Millisecond)
				st, err = r.Status(context.Background())
				require.NoError(t, err)
				require.Less(t, time.Since(t1), 5*time.Minute, "replica 2 did not catch up")
			}
			t.Logf("compact-every %d: data dir %.1f MiB; recovered in %v (snapshot index %d, last index %d); all 10000 keys after %v",
				compact, float64(size)/(1<<20), took.Round(time.Millisecond), st.SnapshotIndex, st.LastIndex, time.Since(t1).Round(time.Millisecond))
		})
	}
}

func dirSize(t *testing.T, dir string) int64 {
	var n int64
	require.NoError(t, filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return err
	}))
	return n
}
