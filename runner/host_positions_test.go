package runner_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	_ "github.com/blossom-dso/blossom/protocols/sequential"
	"github.com/blossom-dso/blossom/replica"
	"github.com/blossom-dso/blossom/runner"
	"github.com/blossom-dso/blossom/transport"
)

// counters is a state machine of counters by key: a command whose payload
// starts with 'G' reads its key's count, any other adds one to it; the
// answer is the count, 8 bytes little-endian.
type counters struct{ n map[string]uint64 }

func (c *counters) Apply(cmd protocols.Command, a replica.Answers) {
	k := cmd.Keys[0]
	if !isGet(cmd) {
		c.n[k]++
	}
	a.Answer(cmd.ID, binary.LittleEndian.AppendUint64(nil, c.n[k]))
}

func (c *counters) Snapshot() ([]byte, error) { return nil, errors.New("counters: no snapshots") }
func (c *counters) Restore([]byte) error      { return errors.New("counters: no snapshots") }

func isGet(c protocols.Command) bool { return len(c.Payload) > 0 && c.Payload[0] == 'G' }

// startSequentialHosts starts three hosts running paxos and the
// sequential level (a counters state machine) over an in-memory network
// that encodes every message; they close when tb ends.
func startSequentialHosts(tb testing.TB) (map[protocols.NodeID]*runner.Host, *transport.Network) {
	tb.Helper()
	levels := []string{"sequential"}
	codec, err := runner.HostCodec("paxos", levels)
	require.NoError(tb, err)
	mem := transport.NewNetworkWithOptions(transport.NetworkOptions{Codec: codec})
	tb.Cleanup(func() { mem.Close() })
	peers := map[protocols.NodeID]string{1: "n1", 2: "n2", 3: "n3"}
	dir := tb.TempDir()
	hosts := map[protocols.NodeID]*runner.Host{}
	for id := range peers {
		h, err := runner.StartHost(runner.HostConfig{
			ID: id, Peers: peers, Protocol: "paxos", RF: 3, DataDir: filepath.Join(dir, fmt.Sprint(id)),
			NewStateMachine: newRecording, Network: mem, Levels: levels,
			NewLevelStateMachine: func(protocols.GroupID, int) replica.StateMachine { return &counters{n: map[string]uint64{}} },
			ReadOnly:             isGet,
			Tick:                 5 * time.Millisecond, RequestTimeout: 2 * time.Second, Seed: uint64(id), Logger: quietLogger(),
		})
		require.NoError(tb, err)
		hosts[id] = h
		tb.Cleanup(func() { h.Close() })
	}
	return hosts, mem
}

// BenchmarkSequentialRead measures a read at the sequential level at node
// 1 of three, served locally (Seen 0) and sent through the log (Seen
// beyond any position), interleaved in one process: the ratio of the two
// is what local reads buy.
func BenchmarkSequentialRead(b *testing.B) {
	hosts, _ := startSequentialHosts(b)
	ctx := context.Background()
	var seq uint64
	do := func(cmd protocols.Command) {
		seq++
		cmd.ID = protocols.CommandID{Client: 9, Seq: seq}
		for {
			_, _, err := hosts[1].DoLevelAt(ctx, 0, 1, cmd)
			if errors.Is(err, runner.ErrTimeout) {
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			return
		}
	}
	do(protocols.Command{Keys: []string{"x"}, Payload: []byte("P")})
	for _, c := range []struct {
		name string
		seen uint64
	}{{"local", 0}, {"logged", 1 << 62}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				do(protocols.Command{Keys: []string{"x"}, Payload: []byte("G"), Seen: c.seen})
			}
		})
	}
}

// TestHostSequentialPositions checks the sequential level's reads on real
// replicas: DoLevelAt reports the log position of each answer; a replica
// cut off from the others serves a read locally (at once, from its lagging
// state) when the client's Seen is at most its position, and sends it
// through the log when the client has seen more, so that the read returns
// the client's newer write once the replica is reachable again and never
// the stale count; LevelStatus counts both kinds of read. With the reads
// served whatever Seen says (the sabotage sequentialReadAnywhere), the
// last read returns the stale count.
func TestHostSequentialPositions(t *testing.T) {
	hosts, mem := startSequentialHosts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seq := uint64(0)
	// try runs one command of client 7 at node at, retrying a timeout with
	// the same id, and returns the count and the position answered.
	try := func(at protocols.NodeID, id uint64, get bool, seen uint64) (uint64, uint64, error) {
		cmd := protocols.Command{ID: protocols.CommandID{Client: 7, Seq: id}, Keys: []string{"x"}, Payload: []byte("P"), Seen: seen}
		if get {
			cmd.Payload = []byte("G")
		}
		for {
			res, pos, err := hosts[at].DoLevelAt(ctx, 0, 1, cmd)
			if errors.Is(err, runner.ErrTimeout) && ctx.Err() == nil {
				continue
			}
			if err != nil {
				return 0, 0, fmt.Errorf("command %d at node %d: %w", id, at, err)
			}
			return binary.LittleEndian.Uint64(res), pos, nil
		}
	}
	do := func(at protocols.NodeID, get bool, seen uint64) (uint64, uint64) {
		seq++
		v, pos, err := try(at, seq, get, seen)
		require.NoError(t, err)
		return v, pos
	}
	reads := func(id protocols.NodeID) (local, logged int64) {
		sts, err := hosts[id].LevelStatus(ctx)
		require.NoError(t, err)
		require.Len(t, sts, 1)
		require.Equal(t, 1, sts[0].Level)
		return sts[0].LocalReads, sts[0].LoggedReads
	}

	v, p1 := do(1, false, 0)
	require.Equal(t, uint64(1), v)
	require.Positive(t, p1)
	// Node 3 answers a client that saw p1 with the write in it.
	v, _ = do(3, true, p1)
	require.Equal(t, uint64(1), v)

	mem.Isolate(3)
	v, p2 := do(1, false, p1)
	require.Equal(t, uint64(2), v)
	require.Greater(t, p2, p1)
	// Cut off, node 3 still serves a client that saw no more than p1,
	// locally, from its state at p1 or later.
	l0, _ := reads(3)
	v, p := do(3, true, p1)
	require.Equal(t, uint64(1), v, "node 3 could not have seen the second write")
	require.GreaterOrEqual(t, p, p1)
	l1, g1 := reads(3)
	require.Equal(t, l0+1, l1, "the read at node 3 was not served locally")

	// A client that saw p2 must not get node 3's stale count: its read
	// goes through the log and completes once node 3 is back.
	type answer struct {
		v, pos uint64
		err    error
	}
	got := make(chan answer, 1)
	seq++
	go func(id uint64) {
		v, p, err := try(3, id, true, p2)
		got <- answer{v, p, err}
	}(seq)
	var a answer
	for done := false; !done; {
		select {
		case a = <-got: // a stale local read answers at once
			done = true
		case <-time.After(10 * time.Millisecond):
			if _, g := reads(3); g > g1 {
				mem.HealAll() // sent through the log: let it complete
				a, done = <-got, true
			}
		}
	}
	require.NoError(t, a.err)
	require.Equal(t, uint64(2), a.v, "node 3 served a client that saw position %d a state before its own write", p2)
	require.GreaterOrEqual(t, a.pos, p2)
	_, g2 := reads(3)
	require.Equal(t, g1+1, g2)
}
