package runner_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	_ "github.com/blossom-dso/blossom/protocols/sequential"
	_ "github.com/blossom-dso/blossom/protocols/weak"
	"github.com/blossom-dso/blossom/replica"
	"github.com/blossom-dso/blossom/runner"
	"github.com/blossom-dso/blossom/transport"
)

// TestHostLevels runs three hosts with two level instances per group
// beside paxos (sequential and weak-merge), over an in-memory network that
// encodes every message with HostCodec: a command submitted at a level
// reaches that level's state machine at every node and no other level's;
// a level the host does not run is refused by name; and with the two other
// nodes stopped, the weak-merge level still answers at once (it waits for
// no peer) while its updates reach the others after they restart.
func TestHostLevels(t *testing.T) {
	levels := []string{"sequential", "weak-merge"}
	codec, err := runner.HostCodec("paxos", levels)
	require.NoError(t, err)
	mem := transport.NewNetworkWithOptions(transport.NetworkOptions{Codec: codec})
	defer mem.Close()
	peers := map[protocols.NodeID]string{1: "n1", 2: "n2", 3: "n3"}
	dir := t.TempDir()
	cfgs := map[protocols.NodeID]runner.HostConfig{}
	hosts := map[protocols.NodeID]*runner.Host{}
	for id := range peers {
		cfgs[id] = runner.HostConfig{
			ID: id, Peers: peers, Protocol: "paxos", RF: 3, DataDir: filepath.Join(dir, fmt.Sprint(id)),
			NewStateMachine: newRecording, Network: mem, Levels: levels,
			NewLevelStateMachine: func(g protocols.GroupID, _ int) replica.StateMachine { return newRecording(g) },
			ReadOnly:             func(c protocols.Command) bool { return len(c.Keys) > 0 && strings.HasPrefix(c.Keys[0], "r/") },
			Tick:                 5 * time.Millisecond, RequestTimeout: 2 * time.Second, Seed: uint64(id), Logger: quietLogger(),
		}
		h, err := runner.StartHost(cfgs[id])
		require.NoError(t, err)
		hosts[id] = h
	}
	defer func() {
		for _, h := range hosts {
			if h != nil {
				h.Close()
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	do := func(at protocols.NodeID, k int, cmd protocols.Command) {
		for {
			_, err := hosts[at].DoLevel(ctx, 0, k, cmd)
			if errors.Is(err, runner.ErrTimeout) && ctx.Err() == nil {
				continue
			}
			require.NoError(t, err, "level %d at node %d", k, at)
			return
		}
	}
	// levelSeqs reads the recorded sequences of level k at node id.
	levelSeqs := func(id protocols.NodeID, k int) map[string][]string {
		var out map[string][]string
		require.NoError(t, hosts[id].InspectLevel(ctx, 0, k, func(sm replica.StateMachine) {
			out = map[string][]string{}
			for key, v := range sm.(*recording).Seq {
				out[key] = slices.Clone(v)
			}
		}))
		return out
	}
	waitAll := func(k int, key string, n int) {
		for {
			ok := true
			for id := range hosts {
				if len(levelSeqs(id, k)[key]) != n {
					ok = false
				}
			}
			if ok {
				return
			}
			require.NoError(t, ctx.Err(), "level %d key %s never reached %d commands everywhere", k, key, n)
			time.Sleep(10 * time.Millisecond)
		}
	}
	for k := range 3 {
		for i := range 3 {
			do(protocols.NodeID(i+1), k, protocols.Command{ID: protocols.CommandID{Client: uint64(10*k + i + 1), Seq: 1}, Keys: []string{fmt.Sprint("L", k)}})
		}
		waitAll(k, fmt.Sprint("L", k), 3)
	}
	for id := range hosts {
		for k := range 3 {
			got := levelSeqs(id, k)
			require.Len(t, got, 1, "node %d level %d holds another level's commands: %v", id, k, got)
		}
	}
	_, err = hosts[1].DoLevel(ctx, 0, 3, protocols.Command{ID: protocols.CommandID{Client: 99, Seq: 1}, Keys: []string{"x"}})
	require.ErrorContains(t, err, "no level 3")
	require.Equal(t, levels, hosts[1].Levels())

	// The weak-merge level answers alone.
	for _, id := range []protocols.NodeID{2, 3} {
		require.NoError(t, hosts[id].Close())
		hosts[id] = nil
	}
	alone, stop := context.WithTimeout(ctx, 30*time.Second)
	_, err = hosts[1].DoLevel(alone, 0, 2, protocols.Command{ID: protocols.CommandID{Client: 50, Seq: 1}, Keys: []string{"L2"}})
	stop()
	require.NoError(t, err, "the weak-merge level waited for a peer")
	for _, id := range []protocols.NodeID{2, 3} {
		h, err := runner.StartHost(cfgs[id])
		require.NoError(t, err)
		hosts[id] = h
	}
	waitAll(2, "L2", 4)
	for id := range hosts {
		require.Zero(t, hosts[id].Misrouted(), "node %d", id)
	}
}
