package runner_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/pmem"
	"github.com/blossom-dso/blossom/pmem/snapstore"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/runner"
	"github.com/blossom-dso/blossom/transport"
)

// TestSnapshotsInPmemHeap: a replica given Config.Snapshots (a pmem heap
// through pmem/snapstore) writes its snapshots there and none in its data
// dir, and a replica restarted on the same dir and heap recovers from that
// snapshot plus the log.
func TestSnapshotsInPmemHeap(t *testing.T) {
	h, err := pmem.NewVolatile(8<<20, nil)
	require.NoError(t, err)
	st, err := snapstore.Open(h)
	require.NoError(t, err)
	dir := t.TempDir()
	start := func() *runner.Replica {
		r, err := runner.Start(runner.Config{ID: 1, Peers: map[protocols.NodeID]string{1: "n1"}, Protocol: "paxos",
			DataDir: dir, CompactEvery: 5, SegmentBytes: 256, NoSync: true, Network: transport.NewNetwork(),
			Logger: quietLogger(), Snapshots: st.Named("group-0")})
		require.NoError(t, err)
		return r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := start()
	for i := range 40 {
		_, err := r.Do(ctx, protocols.Command{ID: protocols.CommandID{Client: 9, Seq: uint64(i + 1)},
			Keys: []string{fmt.Sprint("k", i%4)}, Payload: append([]byte{runner.OpPut}, fmt.Sprint(i)...)})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		s, err := r.Status(ctx)
		return err == nil && s.SnapshotIndex > 0
	}, 20*time.Second, 10*time.Millisecond, "a snapshot is saved")
	require.NoError(t, r.Close())
	files, err := filepath.Glob(filepath.Join(dir, "*.snap"))
	require.NoError(t, err)
	require.Empty(t, files, "no snapshot file in the data dir")
	idx, _, err := st.Named("group-0").Load()
	require.NoError(t, err)
	require.Positive(t, idx)

	r = start()
	defer r.Close()
	s, err := r.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, idx, s.SnapshotIndex, "recovered from the heap's snapshot")
	for k := range 4 {
		v, err := r.Do(ctx, protocols.Command{ID: protocols.CommandID{Client: 10, Seq: uint64(k + 1)},
			Keys: []string{fmt.Sprint("k", k)}, Payload: []byte{runner.OpGet}})
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(36+k), string(v))
	}
}
