package runner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/loopback"
	"github.com/blossom-dso/blossom/protocols"
	_ "github.com/blossom-dso/blossom/protocols/atlas"
	_ "github.com/blossom-dso/blossom/protocols/epaxos"
	_ "github.com/blossom-dso/blossom/protocols/mencius"
	_ "github.com/blossom-dso/blossom/protocols/paxos"
	_ "github.com/blossom-dso/blossom/protocols/skeen"
	_ "github.com/blossom-dso/blossom/protocols/whitebox-multicast"
	"github.com/blossom-dso/blossom/runner"
	"github.com/blossom-dso/blossom/runner/kvclient"
	"github.com/blossom-dso/blossom/transport"
)

// freeAddrs returns n loopback addresses that were free a moment ago and
// that no outgoing connection can take before a replica binds them.
func freeAddrs(t testing.TB, n int) []string { return loopback.FreeAddrs(t, n) }

type cluster struct {
	t       *testing.T
	cfgs    []runner.Config
	reps    []*runner.Replica
	clients map[protocols.NodeID]string
}

func startCluster(t *testing.T, protocol string, n, f, groups, compact int) *cluster {
	t.Helper()
	peers := map[protocols.NodeID]string{}
	addrs := freeAddrs(t, 2*n)
	c := &cluster{t: t, clients: map[protocols.NodeID]string{}}
	for i := range n {
		peers[protocols.NodeID(i+1)] = addrs[i]
	}
	dir := t.TempDir()
	for i := range n {
		id := protocols.NodeID(i + 1)
		cfg := runner.Config{
			ID: id, Peers: peers, Protocol: protocol, F: f, Groups: groups,
			DataDir: filepath.Join(dir, fmt.Sprint(id)), Tick: 5 * time.Millisecond, CompactEvery: compact,
			ClientAddr: addrs[n+i], Seed: uint64(i + 1), RequestTimeout: 2 * time.Second,
		}
		c.cfgs = append(c.cfgs, cfg)
		c.clients[id] = addrs[n+i]
	}
	c.reps = make([]*runner.Replica, n)
	for i := range n {
		c.start(i)
	}
	t.Cleanup(func() {
		for _, r := range c.reps {
			if r != nil {
				r.Close()
			}
		}
	})
	return c
}

func (c *cluster) start(i int) {
	r, err := runner.Start(c.cfgs[i])
	require.NoError(c.t, err)
	c.reps[i] = r
}

func (c *cluster) stop(i int) {
	require.NoError(c.t, c.reps[i].Close())
	c.reps[i] = nil
}

// TestReplicatedKV runs puts and gets through every protocol on three (or,
// for multicast, six) replicas over TCP with a write-ahead log, restarts a
// replica from its data dir (from a snapshot: a checkpoint every 5
// records), and reads every value back through it.
func TestReplicatedKV(t *testing.T) {
	for _, tc := range []struct {
		protocol     string
		n, f, groups int
	}{
		{"paxos", 3, 1, 0}, {"fpaxos", 3, 1, 0}, {"epaxos", 3, 1, 0}, {"atlas", 3, 1, 0}, {"mencius", 3, 1, 0},
		{"wbcast", 6, 1, 2}, {"skeen", 6, 1, 2},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			c := startCluster(t, tc.protocol, tc.n, tc.f, tc.groups, 5)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cl := kvclient.New(c.clients, kvclient.Options{Groups: tc.groups, F: tc.f})
			for i := range 20 {
				require.NoError(t, cl.Put(ctx, fmt.Sprint("k", i%7), []byte(fmt.Sprint("v", i))))
			}
			c.stop(0)
			for i := 20; i < 30; i++ {
				require.NoError(t, cl.Put(ctx, fmt.Sprint("k", i%7), []byte(fmt.Sprint("v", i))))
			}
			c.start(0)
			only := kvclient.New(map[protocols.NodeID]string{1: c.clients[1]}, kvclient.Options{})
			for k := range 7 {
				key := fmt.Sprint("k", k)
				if tc.groups > 0 && runner.GroupOf(key, tc.groups) != 0 {
					continue // replica 1 orders only group 0's keys
				}
				want := -1
				for i := range 30 {
					if i%7 == k {
						want = i
					}
				}
				v, err := only.Get(ctx, key)
				require.NoError(t, err)
				require.Equal(t, fmt.Sprint("v", want), string(v), "key %s read at the restarted replica", key)
			}
			st, err := c.reps[0].Status(ctx)
			require.NoError(t, err)
			if st.Compacts {
				require.NotZero(t, st.SnapshotIndex, "the restarted replica took checkpoints")
			} else {
				t.Logf("%s does not compact its log yet", tc.protocol)
			}
		})
	}
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestRetryAppliesOnce sends the same put (same client and seq) twice, to
// two replicas, with different values: the first applies, the retry gets
// the kept answer of the first and changes nothing. Once the client has
// acknowledged a later call, a retry is answered as a duplicate (its result
// is no longer kept), and a retried read is refused with 409.
func TestRetryAppliesOnce(t *testing.T) {
	c := startCluster(t, "paxos", 3, 1, 0, 5)
	put := func(id protocols.NodeID, seq, acked int, v string) *http.Response {
		req, err := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/kv/x?client=7&seq=%d&acked=%d", c.clients[id], seq, acked), strings.NewReader(v))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	r1 := put(1, 1, 1, "first")
	require.Equal(t, http.StatusOK, r1.StatusCode)
	require.Empty(t, r1.Header.Get("Blossom-Duplicate"))
	r2 := put(2, 1, 1, "second")
	require.Equal(t, http.StatusOK, r2.StatusCode)
	require.Empty(t, r2.Header.Get("Blossom-Duplicate"), "a retry whose result is kept is answered like the first")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := kvclient.New(c.clients, kvclient.Options{}).Get(ctx, "x")
	require.NoError(t, err)
	require.Equal(t, "first", string(v), "the retry applied again")

	// Seq 2 acknowledges seq 1: its result goes, and a late retry of it is
	// a duplicate that changes nothing. (The retry goes to the replica that
	// answered seq 2: another might not have applied it yet, and would
	// still answer with the kept result.)
	require.Equal(t, http.StatusOK, put(3, 2, 2, "third").StatusCode)
	r4 := put(3, 1, 2, "late")
	require.Equal(t, http.StatusOK, r4.StatusCode)
	require.Equal(t, "true", r4.Header.Get("Blossom-Duplicate"))
	v, err = kvclient.New(c.clients, kvclient.Options{}).Get(ctx, "x")
	require.NoError(t, err)
	require.Equal(t, "third", string(v), "the late retry applied again")

	get := func(seq, acked int) int {
		resp, err := http.Get(fmt.Sprintf("http://%s/kv/x?client=8&seq=%d&acked=%d", c.clients[3], seq, acked))
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, get(1, 1))
	require.Equal(t, http.StatusOK, get(1, 1), "a retried read whose result is kept")
	require.Equal(t, http.StatusOK, get(2, 2))
	require.Equal(t, http.StatusConflict, get(1, 2), "a retried read after its acknowledgement")
}

// TestPartitionedLeader runs three paxos replicas over the in-memory
// network, isolates the leader, keeps writing through the majority, heals,
// and reads every value back at the old leader: it rejoins and catches up.
func TestPartitionedLeader(t *testing.T) {
	mem := transport.NewNetworkWithOptions(transport.NetworkOptions{})
	defer mem.Close()
	addrs := freeAddrs(t, 3)
	peers := map[protocols.NodeID]string{1: "r1", 2: "r2", 3: "r3"}
	clients := map[protocols.NodeID]string{}
	reps := map[protocols.NodeID]*runner.Replica{}
	dir := t.TempDir()
	for i, id := range []protocols.NodeID{1, 2, 3} {
		r, err := runner.Start(runner.Config{
			ID: id, Peers: peers, Protocol: "paxos", F: 1, DataDir: filepath.Join(dir, fmt.Sprint(id)),
			Tick: 5 * time.Millisecond, CompactEvery: 5, ClientAddr: addrs[i], Seed: uint64(id),
			RequestTimeout: 2 * time.Second, Network: mem, Logger: quietLogger(),
		})
		require.NoError(t, err)
		defer r.Close()
		reps[id], clients[id] = r, r.ClientAddr()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := kvclient.New(clients, kvclient.Options{})
	require.NoError(t, cl.Put(ctx, "k", []byte("v0")))
	st, err := reps[1].Status(ctx)
	require.NoError(t, err)
	leader := st.Leader
	require.NotZero(t, leader)
	mem.Isolate(leader)
	majority := map[protocols.NodeID]string{}
	for id, a := range clients {
		if id != leader {
			majority[id] = a
		}
	}
	mc := kvclient.New(majority, kvclient.Options{})
	for i := range 40 {
		require.NoError(t, mc.Put(ctx, fmt.Sprint("k", i%5), []byte(fmt.Sprint("v", i))), "put %d without the old leader", i)
	}
	mem.HealAll()
	old := kvclient.New(map[protocols.NodeID]string{leader: clients[leader]}, kvclient.Options{})
	for k := range 5 {
		v, err := old.Get(ctx, fmt.Sprint("k", k))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint("v", 35+k), string(v), "key k%d read at the healed old leader %d", k, leader)
	}
}

// TestPaxosPair runs Multi-Paxos on two replicas with f = 0 (replication
// factor 2): both must accept, so every answered put is on both, and
// fpaxos, whose phase-2 quorum would be one replica, refuses the pair.
func TestPaxosPair(t *testing.T) {
	c := startCluster(t, "paxos", 2, 0, 0, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := kvclient.New(c.clients, kvclient.Options{})
	for i := range 20 {
		require.NoError(t, cl.Put(ctx, fmt.Sprint("k", i%3), []byte(fmt.Sprint(i))))
	}
	v, err := cl.Get(ctx, "k1")
	require.NoError(t, err)
	require.Equal(t, "19", string(v))

	_, err = runner.Start(runner.Config{ID: 1, Peers: map[protocols.NodeID]string{1: "127.0.0.1:1", 2: "127.0.0.1:2"},
		Protocol: "fpaxos", F: 0, DataDir: t.TempDir(), Logger: quietLogger()})
	require.ErrorContains(t, err, "f=0 with n=2")
}
