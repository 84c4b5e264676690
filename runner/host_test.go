package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/paxos"
	"github.com/blossom-dso/blossom/replica"
	"github.com/blossom-dso/blossom/runner"
	"github.com/blossom-dso/blossom/transport"
)

// recording is a state machine that records, per key, the ids of the
// commands applied on it, in order, and answers "key#position" (the
// command's position on its first key).
type recording struct {
	Seq map[string][]string
}

func newRecording(protocols.GroupID) replica.StateMachine {
	return &recording{Seq: map[string][]string{}}
}

func (r *recording) Apply(c protocols.Command, a replica.Answers) {
	for _, k := range c.Keys {
		r.Seq[k] = append(r.Seq[k], c.ID.String())
	}
	if len(c.Keys) == 0 {
		a.Answer(c.ID, nil)
		return
	}
	a.Answer(c.ID, fmt.Appendf(nil, "%s#%d", c.Keys[0], len(r.Seq[c.Keys[0]])))
}

func (r *recording) Snapshot() ([]byte, error) { return json.Marshal(r.Seq) }

func (r *recording) Restore(b []byte) error {
	m := map[string][]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	r.Seq = m
	return nil
}

// seqs reads a copy of the recorded sequences of h's replica of group g.
func seqs(ctx context.Context, h *runner.Host, g protocols.GroupID) (map[string][]string, error) {
	var out map[string][]string
	err := h.Inspect(ctx, g, func(sm replica.StateMachine) {
		out = map[string][]string{}
		for k, v := range sm.(*recording).Seq {
			out[k] = slices.Clone(v)
		}
	})
	return out, err
}

// hostCluster is n hosts on one in-memory network whose messages are
// encoded with the protocol's codec under the group tag, as on TCP.
type hostCluster struct {
	t     *testing.T
	mem   *transport.Network
	cfgs  map[protocols.NodeID]runner.HostConfig
	hosts map[protocols.NodeID]*runner.Host
	// applied counts, per key, the distinct commands answered so far.
	mu      sync.Mutex
	applied map[string]int
	client  uint64
}

func startHosts(t *testing.T, protocol string, n, rf int, groupOf func(string) protocols.GroupID) *hostCluster {
	t.Helper()
	spec, err := protocols.Lookup(protocol)
	require.NoError(t, err)
	c := &hostCluster{
		t: t, mem: transport.NewNetworkWithOptions(transport.NetworkOptions{Codec: transport.TagCodec{Inner: spec.Codec}}),
		cfgs: map[protocols.NodeID]runner.HostConfig{}, hosts: map[protocols.NodeID]*runner.Host{}, applied: map[string]int{},
	}
	peers := map[protocols.NodeID]string{}
	for i := 1; i <= n; i++ {
		peers[protocols.NodeID(i)] = fmt.Sprint("node", i)
	}
	dir := t.TempDir()
	for id := range peers {
		c.cfgs[id] = runner.HostConfig{
			ID: id, Peers: peers, Protocol: protocol, RF: rf, DataDir: filepath.Join(dir, fmt.Sprint(id)),
			NewStateMachine: newRecording, GroupOf: groupOf, Network: c.mem,
			Tick: 5 * time.Millisecond, CompactEvery: 5, RequestTimeout: 2 * time.Second,
			Seed: uint64(id), Logger: quietLogger(),
		}
		c.start(id)
	}
	t.Cleanup(func() {
		for _, h := range c.hosts {
			if h != nil {
				h.Close()
			}
		}
		c.mem.Close()
	})
	return c
}

func (c *hostCluster) start(id protocols.NodeID) {
	h, err := runner.StartHost(c.cfgs[id])
	require.NoError(c.t, err)
	c.hosts[id] = h
}

func (c *hostCluster) stop(id protocols.NodeID) {
	require.NoError(c.t, c.hosts[id].Close())
	c.hosts[id] = nil
}

// submit runs, at node at, count commands on group g, alternating between
// the keys "g<g>/a" and "g<g>/b" (plus extra keys), retrying a timed-out
// call with the same id; it returns the answers.
func (c *hostCluster) submit(ctx context.Context, at protocols.NodeID, g protocols.GroupID, count int, extra ...string) []string {
	c.mu.Lock()
	c.client++
	client := c.client
	c.mu.Unlock()
	var out []string
	for i := range count {
		key := fmt.Sprintf("g%d/%c", g, 'a'+i%2)
		cmd := protocols.Command{ID: protocols.CommandID{Client: client, Seq: uint64(i + 1)}, Acked: uint64(i + 1),
			Keys: append([]string{key}, extra...), Payload: []byte("x")}
		for {
			res, err := c.hosts[at].Do(ctx, g, cmd)
			if errors.Is(err, runner.ErrTimeout) && ctx.Err() == nil {
				continue // outcome unknown: retry the same command
			}
			if errors.Is(err, runner.ErrDuplicate) {
				break // a retry: the command took effect once, its answer is lost
			}
			require.NoError(c.t, err, "command %v of group %d at node %d", cmd.ID, g, at)
			out = append(out, string(res))
			break
		}
		c.mu.Lock()
		for _, k := range cmd.Keys {
			c.applied[k]++
		}
		c.mu.Unlock()
	}
	return out
}

// load submits count commands on every group in gs from every live member
// (except skip) at once, and checks the answers: on each key, the
// positions answered are distinct and within what was applied.
func (c *hostCluster) load(ctx context.Context, layout []runner.Group, gs []protocols.GroupID, count int, skip protocols.NodeID) {
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		ans []string
	)
	for _, g := range layout {
		if !slices.Contains(gs, g.ID) {
			continue
		}
		for _, m := range g.Members {
			if c.hosts[m] == nil || m == skip {
				continue
			}
			wg.Go(func() {
				a := c.submit(ctx, m, g.ID, count)
				mu.Lock()
				ans = append(ans, a...)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	require.NotEmpty(c.t, ans)
	seen := map[string]bool{}
	for _, a := range ans {
		require.False(c.t, seen[a], "answer %q given twice", a)
		seen[a] = true
		key, pos, ok := strings.Cut(a, "#")
		require.True(c.t, ok, "answer %q", a)
		n, err := strconv.Atoi(pos)
		require.NoError(c.t, err)
		c.mu.Lock()
		total := c.applied[key]
		c.mu.Unlock()
		require.True(c.t, n >= 1 && n <= total, "answer %q: position beyond the %d commands on %s", a, total, key)
	}
}

// converged waits until every live member of every group (except skip)
// applied, on each key, the same sequence of all the commands answered.
func (c *hostCluster) converged(ctx context.Context, layout []runner.Group, skip protocols.NodeID) {
	c.t.Helper()
	for _, g := range layout {
		var last string
		for {
			ok, why := true, ""
			var ref map[string][]string
			for _, m := range g.Members {
				if c.hosts[m] == nil || m == skip {
					continue
				}
				s, err := seqs(ctx, c.hosts[m], g.ID)
				require.NoError(c.t, err)
				prefix := fmt.Sprintf("g%d/", g.ID)
				for k := range s {
					require.True(c.t, strings.HasPrefix(k, prefix), "node %d applied key %s in group %d", m, k, g.ID)
				}
				c.mu.Lock()
				for k, n := range c.applied {
					if strings.HasPrefix(k, prefix) && len(s[k]) != n {
						ok, why = false, fmt.Sprintf("node %d applied %d of the %d commands on %s", m, len(s[k]), n, k)
					}
				}
				c.mu.Unlock()
				if ref == nil {
					ref = s
				} else if ok {
					require.Equal(c.t, ref, s, "group %d: node %d applied another order", g.ID, m)
				}
			}
			if ok {
				require.NotEmpty(c.t, ref, "group %d applied nothing", g.ID)
				break
			}
			last = why
			select {
			case <-ctx.Done():
				c.t.Fatalf("group %d did not converge: %s", g.ID, last)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// TestHostGroups runs 5 hosts with rf=3 over the in-memory network: the
// ring layout, commands through every group from every member, one order
// per key at every member of a group; a host closed and restarted from
// its data dir recovers and its groups keep serving meanwhile; an isolated
// host's groups serve through their two other members.
func TestHostGroups(t *testing.T) {
	for _, protocol := range []string{"paxos", "epaxos", "atlas"} {
		t.Run(protocol, func(t *testing.T) {
			c := startHosts(t, protocol, 5, 3, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()

			layout := c.hosts[1].Groups()
			require.Equal(t, []runner.Group{
				{ID: 0, Members: []protocols.NodeID{1, 2, 3}},
				{ID: 1, Members: []protocols.NodeID{2, 3, 4}},
				{ID: 2, Members: []protocols.NodeID{3, 4, 5}},
				{ID: 3, Members: []protocols.NodeID{4, 5, 1}},
				{ID: 4, Members: []protocols.NodeID{5, 1, 2}},
			}, layout)
			require.False(t, c.hosts[1].Multicast())
			for id, h := range c.hosts {
				var want []protocols.GroupID
				for _, g := range layout {
					if slices.Contains(g.Members, id) {
						want = append(want, g.ID)
					}
				}
				require.Len(t, want, 3, "node %d", id)
				require.Equal(t, want, h.Local(), "node %d", id)
				st, err := h.Status(ctx)
				require.NoError(t, err)
				require.Len(t, st, 3)
				for i, s := range st {
					require.Equal(t, want[i], s.Group)
					require.Equal(t, id, s.ID)
					require.Nil(t, s.Keys, "a recording state machine has no key count")
				}
			}
			all := []protocols.GroupID{0, 1, 2, 3, 4}

			c.load(ctx, layout, all, 3, 0)
			c.converged(ctx, layout, 0)

			_, err := c.hosts[1].Do(ctx, 1, protocols.Command{ID: protocols.CommandID{Client: 999, Seq: 1}, Keys: []string{"g1/a"}})
			require.ErrorIs(t, err, runner.ErrNotMember)
			require.EqualError(t, err, "runner: this node is not a member of the group: node 1 is not in group 1 (members [2 3 4])")
			_, err = c.hosts[1].Do(ctx, 9, protocols.Command{ID: protocols.CommandID{Client: 999, Seq: 1}})
			require.EqualError(t, err, "runner: this node is not a member of the group: there is no group 9 (groups 0 to 4)")
			require.ErrorIs(t, c.hosts[1].Inspect(ctx, 2, func(replica.StateMachine) { t.Error("ran on a non-member") }), runner.ErrNotMember)

			// Node 1 down: its groups 0, 3, 4 serve through the two others.
			c.stop(1)
			c.load(ctx, layout, []protocols.GroupID{0, 3, 4}, 2, 0)
			c.converged(ctx, layout, 1)

			// Restarted from its data dir, it serves its groups and
			// catches up (a command on each key it missed forces it to
			// learn the earlier ones).
			c.start(1)
			require.Equal(t, []protocols.GroupID{0, 3, 4}, c.hosts[1].Local())
			st, err := c.hosts[1].Status(ctx)
			require.NoError(t, err)
			for _, s := range st {
				require.NotZero(t, s.LastIndex, "group %d recovered nothing from its data dir", s.Group)
			}
			for _, g := range c.hosts[1].Local() {
				c.submit(ctx, 1, g, 2)
			}
			c.converged(ctx, layout, 0)

			// Node 2 isolated: its groups 0, 1, 4 serve through the others.
			c.mem.Isolate(2)
			c.load(ctx, layout, []protocols.GroupID{0, 1, 4}, 2, 2)
			c.converged(ctx, layout, 2)
			s, err := seqs(ctx, c.hosts[2], 0)
			require.NoError(t, err)
			c.mu.Lock()
			require.Less(t, len(s["g0/a"]), c.applied["g0/a"], "the isolated node applied commands it could not hear of")
			c.mu.Unlock()
			c.mem.HealAll()
			for _, g := range c.hosts[2].Local() {
				c.submit(ctx, 2, g, 2)
			}
			c.converged(ctx, layout, 0)
			for id, h := range c.hosts {
				require.Zero(t, h.Misrouted(), "node %d", id)
			}
		})
	}
}

// TestHostMulticast runs wbcast on 6 hosts with rf=3: two disjoint groups
// under one protocol instance; a command with keys in both groups is
// applied by all six nodes, a single-group command by its group only.
func TestHostMulticast(t *testing.T) {
	groupOf := func(key string) protocols.GroupID {
		if strings.HasPrefix(key, "g1/") {
			return 1
		}
		return 0
	}
	c := startHosts(t, "wbcast", 6, 3, groupOf)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	layout := c.hosts[1].Groups()
	require.Equal(t, []runner.Group{
		{ID: 0, Members: []protocols.NodeID{1, 2, 3}},
		{ID: 1, Members: []protocols.NodeID{4, 5, 6}},
	}, layout)
	require.True(t, c.hosts[1].Multicast())
	require.Equal(t, []protocols.GroupID{0}, c.hosts[3].Local())
	require.Equal(t, []protocols.GroupID{1}, c.hosts[4].Local())

	do := func(at protocols.NodeID, g protocols.GroupID, keys ...string) string {
		cmd := protocols.Command{ID: protocols.CommandID{Client: uint64(at), Seq: 1}, Keys: keys, Payload: []byte("x")}
		for {
			res, err := c.hosts[at].Do(ctx, g, cmd)
			if errors.Is(err, runner.ErrTimeout) && ctx.Err() == nil {
				continue
			}
			require.NoError(t, err, "at node %d: %v", at, keys)
			return string(res)
		}
	}
	// One after the other: A and B go to both groups, C to group 1 only,
	// D to group 0 only. B follows A on both of their keys.
	require.Equal(t, "g0/a#1", do(1, 0, "g0/a", "g1/x")) // A, at group 0
	require.Equal(t, "g1/x#2", do(5, 1, "g1/x", "g0/a")) // B, at group 1
	require.Equal(t, "g1/y#1", do(4, 1, "g1/y"))         // C
	require.Equal(t, "g0/z#1", do(2, 0, "g0/z"))         // D
	want := map[protocols.GroupID]map[string][]string{
		0: {"g0/a": {"1.1", "5.1"}, "g1/x": {"1.1", "5.1"}, "g0/z": {"2.1"}},
		1: {"g0/a": {"1.1", "5.1"}, "g1/x": {"1.1", "5.1"}, "g1/y": {"4.1"}},
	}
	for id := protocols.NodeID(1); id <= 6; id++ {
		g := protocols.GroupID((id - 1) / 3)
		for {
			s, err := seqs(ctx, c.hosts[id], g)
			require.NoError(t, err)
			if len(s) >= len(want[g]) {
				require.Equal(t, want[g], s, "node %d of group %d", id, g)
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("node %d applied %v", id, s)
			case <-time.After(10 * time.Millisecond):
			}
		}
	}

	_, err := c.hosts[1].Do(ctx, 1, protocols.Command{ID: protocols.CommandID{Client: 999, Seq: 1}, Keys: []string{"g1/a"}})
	require.EqualError(t, err, "runner: this node is not a member of the group: node 1 is not in group 1 (members [4 5 6])")
	_, err = c.hosts[1].Do(ctx, 0, protocols.Command{ID: protocols.CommandID{Client: 999, Seq: 1}, Keys: []string{"g1/a"}})
	require.ErrorIs(t, err, runner.ErrWrongGroup)
	require.EqualError(t, err, `runner: the command's keys are not in the group: keys ["g1/a"] map to none of group 0`)
}

// TestLayoutErrors checks the layouts and the exact errors of bad ones,
// from Layout and from StartHost (which also asks the protocol).
func TestLayoutErrors(t *testing.T) {
	five := []protocols.NodeID{5, 4, 3, 2, 1}
	l, err := runner.Layout(five, 5, false)
	require.NoError(t, err)
	require.Equal(t, []runner.Group{{ID: 0, Members: []protocols.NodeID{1, 2, 3, 4, 5}}}, l)
	l, err = runner.Layout([]protocols.NodeID{30, 10, 20}, 2, false)
	require.NoError(t, err)
	require.Equal(t, []runner.Group{
		{ID: 0, Members: []protocols.NodeID{10, 20}}, {ID: 1, Members: []protocols.NodeID{20, 30}}, {ID: 2, Members: []protocols.NodeID{30, 10}},
	}, l)
	l, err = runner.Layout([]protocols.NodeID{1, 2, 3, 4}, 2, true)
	require.NoError(t, err)
	require.Equal(t, []runner.Group{{ID: 0, Members: []protocols.NodeID{1, 2}}, {ID: 1, Members: []protocols.NodeID{3, 4}}}, l)

	for _, tc := range []struct {
		nodes     []protocols.NodeID
		rf        int
		multicast bool
		err       string
	}{
		{nil, 1, false, "runner: a layout needs at least one node"},
		{[]protocols.NodeID{0, 1}, 1, false, "runner: node id 0 is reserved"},
		{[]protocols.NodeID{1, 2, 2}, 1, false, "runner: node 2 listed twice"},
		{five, 0, false, "runner: rf=0 must be at least 1 (valid with 5 nodes: 1 to 5)"},
		{five, 6, false, "runner: rf=6 exceeds the 5 nodes (valid: 1 to 5)"},
		{five, 3, true, "runner: multicast needs the 5 nodes to be a multiple of rf=3 (valid: 1, 5)"},
		{[]protocols.NodeID{1, 2, 3, 4, 5, 6}, 4, true, "runner: multicast needs the 6 nodes to be a multiple of rf=4 (valid: 1, 2, 3, 6)"},
		{[]protocols.NodeID{1}, 2, false, "runner: rf=2 exceeds the 1 nodes (valid: 1)"},
	} {
		_, err := runner.Layout(tc.nodes, tc.rf, tc.multicast)
		require.EqualError(t, err, tc.err, "%v rf=%d multicast=%v", tc.nodes, tc.rf, tc.multicast)
	}

	peers := func(n int) map[protocols.NodeID]string {
		m := map[protocols.NodeID]string{}
		for i := 1; i <= n; i++ {
			m[protocols.NodeID(i)] = fmt.Sprint("node", i)
		}
		return m
	}
	mem := transport.NewNetwork()
	defer mem.Close()
	for _, tc := range []struct {
		protocol string
		n, rf    int
		err      string
	}{
		{"fpaxos", 5, 2, "runner: fpaxos cannot run groups of rf=2 (f=0): protocols: invalid config: f=0 with n=2 (need 1 <= f <= (n-1)/2) (valid rf with 5 nodes: 1, 3, 4, 5)"},
		{"atlas", 5, 2, "runner: atlas cannot run groups of rf=2 (f=0): protocols: invalid config: f=0 with n=2 (need 1 <= f <= (n-1)/2) (valid rf with 5 nodes: 1, 3, 4, 5)"},
		{"wbcast", 6, 1, "runner: wbcast cannot run groups of rf=1 (f=0): protocols: invalid config: f=0 with n=6 (need 1 <= f <= (n-1)/2) (valid rf with 6 nodes: 3, 6)"},
		{"wbcast", 5, 3, "runner: multicast needs the 5 nodes to be a multiple of rf=3 (valid: 1, 5)"},
		{"epaxos", 3, 4, "runner: rf=4 exceeds the 3 nodes (valid: 1 to 3)"},
		{"nosuch", 3, 3, fmt.Sprintf(`protocols: unknown protocol "nosuch" (registered: %v)`, protocols.Names())},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		_, err := runner.StartHost(runner.HostConfig{ID: 1, Peers: peers(tc.n), Protocol: tc.protocol, RF: tc.rf, DataDir: dir, Network: mem, Logger: quietLogger()})
		require.EqualError(t, err, tc.err, "%s n=%d rf=%d", tc.protocol, tc.n, tc.rf)
		_, statErr := os.Stat(dir)
		require.True(t, os.IsNotExist(statErr), "a refused host created its data dir")
	}
}

// TestHostDropsMisrouted sends a host messages no honest peer sends: a
// group it does not run, an unknown group, a sender outside the group. Each
// is dropped and counted; the host keeps serving. Once closed it refuses
// calls.
func TestHostDropsMisrouted(t *testing.T) {
	c := startHosts(t, "paxos", 5, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rogue := c.mem.Join(99, func(protocols.NodeID, protocols.Message) {})
	defer rogue.Close()
	m := paxos.CatchUpReq{From: 1}
	rogue.Send(1, transport.Tagged{Tag: 1, Msg: m}) // group 1 = {2,3,4}: not hosted at 1
	rogue.Send(1, transport.Tagged{Tag: 7, Msg: m}) // no group 7
	rogue.Send(1, transport.Tagged{Tag: 0, Msg: m}) // group 0 = {1,2,3}: 99 is not a member
	for c.hosts[1].Misrouted() < 3 {
		select {
		case <-ctx.Done():
			t.Fatalf("misrouted: %d", c.hosts[1].Misrouted())
		case <-time.After(5 * time.Millisecond):
		}
	}
	require.Equal(t, uint64(3), c.hosts[1].Misrouted())
	require.Equal(t, []string{"g0/a#1"}, c.submit(ctx, 1, 0, 1))

	// A closed host refuses calls.
	h := c.hosts[1]
	c.stop(1)
	_, err := h.Do(ctx, 0, protocols.Command{ID: protocols.CommandID{Client: 999, Seq: 1}})
	require.ErrorIs(t, err, runner.ErrClosed)
	require.ErrorIs(t, h.Inspect(ctx, 0, func(replica.StateMachine) { t.Error("ran on a closed host") }), runner.ErrClosed)
	_, err = h.Status(ctx)
	require.ErrorIs(t, err, runner.ErrClosed)
	require.NoError(t, h.Close(), "a second Close")
}

// TestHostTCP runs 4 hosts with rf=3 over TCP (4 groups, each host in 3)
// with the default KV: a put and a get through every group, answered at
// another member; the status counts the keys.
func TestHostTCP(t *testing.T) {
	addrs := freeAddrs(t, 4)
	peers := map[protocols.NodeID]string{}
	for i, a := range addrs {
		peers[protocols.NodeID(i+1)] = a
	}
	dir := t.TempDir()
	hosts := map[protocols.NodeID]*runner.Host{}
	for id := range peers {
		h, err := runner.StartHost(runner.HostConfig{
			ID: id, Peers: peers, Protocol: "paxos", RF: 3, DataDir: filepath.Join(dir, fmt.Sprint(id)),
			Tick: 5 * time.Millisecond, RequestTimeout: 2 * time.Second, Seed: uint64(id), Logger: quietLogger(),
		})
		require.NoError(t, err)
		defer h.Close()
		hosts[id] = h
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	do := func(at protocols.NodeID, g protocols.GroupID, cmd protocols.Command) []byte {
		for {
			res, err := hosts[at].Do(ctx, g, cmd)
			if errors.Is(err, runner.ErrTimeout) && ctx.Err() == nil {
				continue
			}
			require.NoError(t, err, "group %d at node %d", g, at)
			return res
		}
	}
	for _, g := range hosts[1].Groups() {
		key := fmt.Sprint("key", g.ID)
		do(g.Members[0], g.ID, runner.Command(protocols.CommandID{Client: uint64(g.ID) + 1, Seq: 1}, 0, runner.OpPut, key, []byte(key)))
		got := do(g.Members[2], g.ID, runner.Command(protocols.CommandID{Client: uint64(g.ID) + 100, Seq: 1}, 0, runner.OpGet, key, nil))
		require.Equal(t, key, string(got), "group %d", g.ID)
	}
	for id, h := range hosts {
		st, err := h.Status(ctx)
		require.NoError(t, err)
		require.Len(t, st, 3, "node %d", id)
		for _, s := range st {
			require.NotNil(t, s.Keys)
			require.LessOrEqual(t, *s.Keys, 1, "node %d group %d", id, s.Group)
		}
		require.Zero(t, h.Misrouted())
	}
}

// TestReplicaMembers runs standalone replicas 2, 4 and 5 of a five-node
// deployment as one group (Members), with a recording state machine: a
// command is applied at all three members; the HTTP API serves /status
// (without a key count) and no /kv; Members are validated.
func TestReplicaMembers(t *testing.T) {
	mem := transport.NewNetwork()
	defer mem.Close()
	peers := map[protocols.NodeID]string{1: "n1", 2: "n2", 3: "n3", 4: "n4", 5: "n5"}
	members := []protocols.NodeID{5, 2, 4}
	dir := t.TempDir()
	reps := map[protocols.NodeID]*runner.Replica{}
	addrs := freeAddrs(t, 1)
	for _, id := range members {
		cfg := runner.Config{
			ID: id, Peers: peers, Members: members, Protocol: "paxos", F: 1, DataDir: filepath.Join(dir, fmt.Sprint(id)),
			Tick: 5 * time.Millisecond, RequestTimeout: 2 * time.Second, Network: mem, Logger: quietLogger(),
			StateMachine: newRecording(0),
		}
		if id == 2 {
			cfg.ClientAddr = addrs[0]
		}
		r, err := runner.Start(cfg)
		require.NoError(t, err)
		defer r.Close()
		reps[id] = r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := reps[4].Do(ctx, protocols.Command{ID: protocols.CommandID{Client: 1, Seq: 1}, Keys: []string{"k"}})
	require.NoError(t, err)
	require.Equal(t, "k#1", string(res))
	for _, id := range members {
		for {
			var got []string
			require.NoError(t, reps[id].Inspect(ctx, func(sm replica.StateMachine) { got = slices.Clone(sm.(*recording).Seq["k"]) }))
			if len(got) > 0 {
				require.Equal(t, []string{"1.1"}, got, "replica %d", id)
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("replica %d applied nothing", id)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	st, err := reps[2].Status(ctx)
	require.NoError(t, err)
	require.Nil(t, st.Keys)
	resp, err := http.Get("http://" + reps[2].ClientAddr() + "/status")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotContains(t, string(body), `"keys"`)
	require.Contains(t, string(body), `"id":2`)
	resp, err = http.Get("http://" + reps[2].ClientAddr() + "/kv/k")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "no KV, no /kv")

	for _, tc := range []struct {
		members []protocols.NodeID
		err     string
	}{
		{[]protocols.NodeID{2, 4}, "runner: replica 1 is not among its members [2 4]"},
		{[]protocols.NodeID{1, 6}, "runner: member 6 has no address among the peers"},
		{[]protocols.NodeID{1, 3, 1}, "runner: member 1 listed twice"},
	} {
		_, err := runner.Start(runner.Config{ID: 1, Peers: peers, Members: tc.members, Protocol: "paxos", F: 1, DataDir: t.TempDir(), Network: mem})
		require.EqualError(t, err, tc.err)
	}
	_, err = runner.Start(runner.Config{ID: 1, Peers: peers, Members: []protocols.NodeID{1}, Groups: 1, Protocol: "wbcast", DataDir: t.TempDir(), Network: mem})
	require.EqualError(t, err, "runner: Members and Groups exclude each other")
}
