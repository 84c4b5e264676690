package replica

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// The operations of parkMachine, in a command's first payload byte.
const (
	opAdd     = 'a' // add payload[1] to the sum; answer the new sum at once
	opPark    = 'p' // answer nothing now: wait for a release
	opRelease = 'r' // answer every parked command, then this one, the sum
)

// parkMachine is a counter with a barrier: a parked command is answered by
// a later release, like a barrier's await.
// Its answers alias its buffer, which it scribbles over after each Apply:
// the core must copy what it keeps.
type parkMachine struct {
	sum    uint64
	parked []protocols.CommandID
	buf    [8]byte
}

func (m *parkMachine) Apply(c protocols.Command, a Answers) {
	if c.Payload[0] == opAdd {
		m.sum += uint64(c.Payload[1])
	}
	binary.LittleEndian.PutUint64(m.buf[:], m.sum)
	switch c.Payload[0] {
	case opAdd:
		a.Answer(c.ID, m.buf[:])
	case opPark:
		m.parked = append(m.parked, c.ID)
	case opRelease:
		for _, id := range m.parked {
			a.Answer(id, m.buf[:])
		}
		m.parked = nil
		a.Answer(c.ID, m.buf[:])
	}
	m.buf = [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
}

func (m *parkMachine) Snapshot() ([]byte, error) {
	b := binary.AppendUvarint(nil, m.sum)
	b = binary.AppendUvarint(b, uint64(len(m.parked)))
	for _, id := range m.parked {
		b = wire.AppendCommandID(b, id)
	}
	return b, nil
}

func (m *parkMachine) Restore(b []byte) error {
	r := wire.NewReader(b)
	m.sum = r.Uvarint()
	m.parked = nil
	for range r.Count(2) {
		m.parked = append(m.parked, r.CommandID())
	}
	return r.Done()
}

// newParkCore is a core of logProto over a parkMachine.
func newParkCore(t *testing.T, snap *Snapshot, every, maxSessions int, hold bool) *Core {
	t.Helper()
	c, err := New(Config{
		Spec: logSpec, Protocol: protocols.Config{Self: 1, Peers: []protocols.NodeID{1, 2}},
		StateMachine: &parkMachine{}, Rand: rand.New(rand.NewPCG(1, 2)), Snapshot: snap,
		CompactEvery: every, MaxSessionsPerKey: maxSessions, HoldReplies: hold,
	})
	require.NoError(t, err)
	return c
}

func op(client, seq, acked uint64, key string, o, arg byte) protocols.Command {
	return protocols.Command{
		ID: protocols.CommandID{Client: client, Seq: seq}, Acked: acked,
		Keys: []string{key}, Payload: []byte{o, arg},
	}
}

// reply is an OutReply as a test compares it: the id, the result as a
// number (-1 for none) and the Duplicate mark.
type reply struct {
	id   protocols.CommandID
	res  int64
	dup  bool
	exec bool // an OutExec rather than a reply
}

func id(client, seq uint64) protocols.CommandID {
	return protocols.CommandID{Client: client, Seq: seq}
}

// outs returns the outputs of c's Ready other than sends, and advances.
func outs(t *testing.T, c *Core) []reply {
	t.Helper()
	var got []reply
	for _, o := range c.Ready().Outputs {
		switch o.Kind {
		case OutExec:
			got = append(got, reply{id: o.Cmd.ID, exec: true})
		case OutReply:
			r := reply{id: o.Cmd.ID, res: -1, dup: o.Duplicate}
			if o.Result != nil {
				require.Len(t, o.Result, 8)
				r.res = int64(binary.LittleEndian.Uint64(o.Result))
			}
			got = append(got, r)
		}
	}
	c.Advance()
	return got
}

func execd(client, seq uint64) reply { return reply{id: id(client, seq), exec: true} }
func answer(client, seq uint64, res int64) reply {
	return reply{id: id(client, seq), res: res}
}

// TestRetryGetsItsResult checks the answer to a retry of an executed
// command, found by the sessions (a second Execute) or reported by the
// protocol (AlreadyExecuted): its kept result while the client has not
// acknowledged it, a Duplicate reply without result once it has.
func TestRetryGetsItsResult(t *testing.T) {
	for _, tc := range []struct {
		name    string
		history []protocols.Command // executed in order before the retry
		retry   protocols.Command
		want    reply
	}{
		{
			name:    "kept",
			history: []protocols.Command{op(1, 1, 1, "a", opAdd, 5), op(2, 1, 1, "a", opAdd, 3)},
			retry:   op(1, 1, 1, "a", opAdd, 5),
			want:    answer(1, 1, 5),
		},
		{
			name: "kept while a later seq is not acknowledged",
			history: []protocols.Command{
				op(1, 1, 1, "a", opAdd, 5), op(1, 2, 1, "a", opAdd, 3), op(1, 3, 1, "a", opAdd, 1),
			},
			retry: op(1, 1, 1, "a", opAdd, 5),
			want:  answer(1, 1, 5),
		},
		{
			name:    "empty acknowledgement keeps everything",
			history: []protocols.Command{op(1, 1, 0, "a", opAdd, 7), op(1, 2, 0, "a", opAdd, 1)},
			retry:   op(1, 2, 0, "a", opAdd, 1),
			want:    answer(1, 2, 8),
		},
		{
			name:    "acknowledged by a later call",
			history: []protocols.Command{op(1, 1, 1, "a", opAdd, 5), op(1, 2, 2, "a", opAdd, 3)},
			retry:   op(1, 1, 1, "a", opAdd, 5),
			want:    reply{id: id(1, 1), res: -1, dup: true},
		},
		{
			name:    "the acknowledging call keeps its own result",
			history: []protocols.Command{op(1, 1, 1, "a", opAdd, 5), op(1, 2, 2, "a", opAdd, 3)},
			retry:   op(1, 2, 2, "a", opAdd, 3),
			want:    answer(1, 2, 8),
		},
		{
			name: "later results stay with their seqs when the watermark rises",
			history: []protocols.Command{
				op(1, 1, 1, "a", opAdd, 5), op(1, 2, 1, "a", opAdd, 3), op(1, 3, 2, "a", opAdd, 1),
			},
			retry: op(1, 2, 2, "a", opAdd, 3),
			want:  answer(1, 2, 8),
		},
		{
			name:    "below its own watermark: never kept",
			history: []protocols.Command{op(1, 4, 5, "a", opAdd, 2)},
			retry:   op(1, 4, 5, "a", opAdd, 2),
			want:    reply{id: id(1, 4), res: -1, dup: true},
		},
		{
			name: "kept on the first key only",
			history: []protocols.Command{{
				ID: id(1, 1), Acked: 1, Keys: []string{"a", "b"}, Payload: []byte{opAdd, 4},
			}},
			retry: protocols.Command{ID: id(1, 1), Acked: 1, Keys: []string{"a", "b"}, Payload: []byte{opAdd, 4}},
			want:  answer(1, 1, 4),
		},
	} {
		for _, via := range []string{"Execute", "AlreadyExecuted", "Execute held", "AlreadyExecuted held"} {
			t.Run(tc.name+"/"+via, func(t *testing.T) {
				held := strings.HasSuffix(via, " held")
				c := newParkCore(t, nil, 0, 0, held)
				for _, h := range tc.history {
					c.Step(2, cmdMsg{h})
				}
				c.Advance()
				executed := int64(len(tc.history))
				var want []reply
				if held {
					// A record not yet durable: the retry's reply
					// waits behind the answer of another client.
					c.Submit(op(9, 1, 0, "z", opAdd, 1))
					c.Advance()
					executed++
					want = append(want, answer(9, 1, int64(c.StateMachine().(*parkMachine).sum)))
				}
				sum := c.StateMachine().(*parkMachine).sum
				if strings.HasPrefix(via, "Execute") {
					c.Step(2, cmdMsg{tc.retry})
				} else {
					c.AlreadyExecuted(tc.retry)
				}
				if held {
					require.Empty(t, outs(t, c), "a reply left before its records were durable")
					c.Synced(c.LastIndex())
				}
				want = append(want, tc.want)
				require.Equal(t, want, outs(t, c))
				require.Equal(t, sum, c.StateMachine().(*parkMachine).sum, "the retry executed again")
				require.Equal(t, int64(1), c.Stats().Duplicates)
				require.Equal(t, executed, c.Stats().Executed)
			})
		}
	}
}

// TestMultiKeyResultOnFirstKey checks that a command's result is kept in
// the session of its first key only.
func TestMultiKeyResultOnFirstKey(t *testing.T) {
	c := newParkCore(t, nil, 0, 0, false)
	c.Step(2, cmdMsg{protocols.Command{ID: id(1, 1), Acked: 1, Keys: []string{"a", "b"}, Payload: []byte{opAdd, 4}}})
	require.Equal(t, [][]byte{binary.LittleEndian.AppendUint64(nil, 4)}, c.sess.keys["a"].clients[1].res)
	require.Equal(t, [][]byte{nil}, c.sess.keys["b"].clients[1].res)
	require.Equal(t, []uint64{1}, c.sess.keys["b"].clients[1].seqs)
}

// TestRetryReplyWaitsForDurability checks that the answer to a retry is
// held, like any answer, until the records persisted before it are
// durable, and that it carries a copy of the kept result.
func TestRetryReplyWaitsForDurability(t *testing.T) {
	c := newParkCore(t, nil, 0, 0, true)
	c.Submit(op(1, 1, 1, "a", opAdd, 6))
	c.Advance()
	c.Synced(1)
	require.Equal(t, []reply{answer(1, 1, 6)}, outs(t, c))

	c.Submit(op(1, 1, 1, "a", opAdd, 6)) // logProto persists the retry: record 2
	require.Empty(t, outs(t, c), "the retry's answer waits for record 2")
	c.Synced(2)
	rd := c.Ready()
	require.Equal(t, []OutputKind{OutSend, OutReply}, kinds(rd.Outputs))
	require.Equal(t, uint64(6), binary.LittleEndian.Uint64(rd.Outputs[1].Result))
	require.False(t, rd.Outputs[1].Duplicate)
	rd.Outputs[1].Result[0] = 99 // the driver's copy, not the session's
	c.Advance()
	c.AlreadyExecuted(op(1, 1, 1, "a", opAdd, 6)) // all durable: replied at once
	rd = c.Ready()
	require.Equal(t, []OutputKind{OutReply}, kinds(rd.Outputs))
	rd.Outputs[0].Result[0] = 99
	c.Advance()
	c.AlreadyExecuted(op(1, 1, 1, "a", opAdd, 6))
	require.Equal(t, []reply{answer(1, 1, 6)}, outs(t, c))
}

// TestParkedCommandAnsweredLater checks a command the state machine answers
// in a later Apply: a retry while it is parked gets no output, the release
// answers it and keeps its result, and a retry after that gets the result.
func TestParkedCommandAnsweredLater(t *testing.T) {
	c := newParkCore(t, nil, 0, 0, false)
	park := op(1, 1, 1, "a", opPark, 0)
	c.Step(2, cmdMsg{park})
	require.Equal(t, []reply{execd(1, 1)}, outs(t, c))
	require.Equal(t, map[protocols.CommandID]string{id(1, 1): "a"}, c.sess.pending)

	c.Step(2, cmdMsg{park})
	c.AlreadyExecuted(park)
	require.Empty(t, outs(t, c), "a retry of a parked command is answered by its release")
	require.Equal(t, int64(2), c.Stats().Duplicates)

	c.Step(2, cmdMsg{op(2, 1, 1, "b", opAdd, 5)})
	require.Equal(t, []reply{execd(2, 1), answer(2, 1, 5)}, outs(t, c))
	c.Step(2, cmdMsg{op(3, 1, 1, "c", opRelease, 0)})
	require.Equal(t, []reply{execd(3, 1), answer(1, 1, 5), answer(3, 1, 5)}, outs(t, c))
	require.Empty(t, c.sess.pending)

	c.Step(2, cmdMsg{op(2, 2, 2, "b", opAdd, 1)}) // the sum moves on
	outs(t, c)
	c.Step(2, cmdMsg{park})
	require.Equal(t, []reply{answer(1, 1, 5)}, outs(t, c))
	c.AlreadyExecuted(park)
	require.Equal(t, []reply{answer(1, 1, 5)}, outs(t, c))
	require.Equal(t, int64(4), c.Stats().Executed)
}

// TestParkedCommandAcknowledgedBeforeRelease checks that an answer that
// comes after the client acknowledged a later call is replied but not kept,
// and that the pending entry goes with it.
func TestParkedCommandAcknowledgedBeforeRelease(t *testing.T) {
	c := newParkCore(t, nil, 0, 0, false)
	c.Step(2, cmdMsg{op(1, 1, 1, "a", opPark, 0)})
	c.Step(2, cmdMsg{op(1, 2, 2, "a", opAdd, 3)}) // the client gave up on seq 1
	outs(t, c)
	c.Step(2, cmdMsg{op(3, 1, 1, "c", opRelease, 0)})
	require.Equal(t, []reply{execd(3, 1), answer(1, 1, 3), answer(3, 1, 3)}, outs(t, c))
	require.Empty(t, c.sess.pending)
	require.Equal(t, []uint64{2}, c.sess.keys["a"].clients[1].seqs)
	c.Step(2, cmdMsg{op(1, 1, 1, "a", opPark, 0)})
	require.Equal(t, []reply{{id: id(1, 1), res: -1, dup: true}}, outs(t, c))
}

// TestResultsSurviveCheckpoint checks that kept results and pending answers
// are part of the checkpointed state: a core restarted from a snapshot, or
// one that installed the state, answers retries alike.
func TestResultsSurviveCheckpoint(t *testing.T) {
	c := newParkCore(t, nil, 1, 0, true)
	var snap *Snapshot
	for _, cmd := range []protocols.Command{op(1, 1, 1, "a", opPark, 0), op(2, 1, 1, "b", opAdd, 5)} {
		c.Submit(cmd)
		rd := c.Ready()
		require.NotNil(t, rd.Snapshot)
		s := *rd.Snapshot
		s.State = slices.Clone(s.State)
		snap = &s
		c.Advance()
		c.Synced(c.LastIndex())
		c.Advance()
	}
	b, err := snap.MarshalBinary()
	require.NoError(t, err)

	for _, how := range []string{"restart", "install"} {
		t.Run(how, func(t *testing.T) {
			var c2 *Core
			if how == "restart" {
				var s Snapshot
				require.NoError(t, s.UnmarshalBinary(b))
				c2 = newParkCore(t, &s, 0, 0, false)
			} else {
				c2 = newParkCore(t, nil, 0, 0, false)
				require.NoError(t, c2.InstallState(slices.Clone(snap.State)))
			}
			require.Equal(t, uint64(5), c2.StateMachine().(*parkMachine).sum)
			c2.Step(2, cmdMsg{op(2, 1, 1, "b", opAdd, 5)})
			require.Equal(t, []reply{answer(2, 1, 5)}, outs(t, c2))
			c2.Step(2, cmdMsg{op(1, 1, 1, "a", opPark, 0)})
			require.Empty(t, outs(t, c2), "the parked command is still pending")
			c2.Step(2, cmdMsg{op(3, 1, 1, "c", opRelease, 0)})
			require.Equal(t, []reply{execd(3, 1), answer(1, 1, 5), answer(3, 1, 5)}, outs(t, c2))
			c2.AlreadyExecuted(op(1, 1, 1, "a", opPark, 0))
			require.Equal(t, []reply{answer(1, 1, 5)}, outs(t, c2))
		})
	}
}

// feed executes a random history on c: several clients and keys, some
// multi-key commands, parks and releases, advancing watermarks and retries.
func feed(c *Core, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 3))
	seq := map[uint64]uint64{}
	acked := map[uint64]uint64{}
	for range 300 {
		cl := 1 + r.Uint64N(6)
		if seq[cl] > 0 && r.IntN(5) == 0 { // a retry of an earlier call
			q := 1 + r.Uint64N(seq[cl])
			c.Step(2, cmdMsg{op(cl, q, acked[cl], fmt.Sprint("k", q%4), opAdd, 1)})
			continue
		}
		seq[cl]++
		if r.IntN(3) == 0 {
			acked[cl] = seq[cl] - r.Uint64N(2)
		}
		o := []byte{opAdd, opAdd, opAdd, opPark, opRelease}[r.IntN(5)]
		cmd := op(cl, seq[cl], acked[cl], fmt.Sprint("k", seq[cl]%4), o, byte(r.IntN(9)))
		if r.IntN(4) == 0 {
			cmd.Keys = append(cmd.Keys, fmt.Sprint("k", 1+seq[cl]%4))
		}
		c.Step(2, cmdMsg{cmd})
		c.Advance()
	}
}

// TestStateIsDeterministic checks that two cores fed the same commands
// encode byte-identical states, results and pending answers included, and
// that decoding and encoding again gives the same bytes.
func TestStateIsDeterministic(t *testing.T) {
	severalPending := 0
	for seed := uint64(1); seed <= 20; seed++ {
		a, b := newParkCore(t, nil, 0, 0, false), newParkCore(t, nil, 0, 0, false)
		feed(a, seed)
		feed(b, seed)
		sa, err := a.state()
		require.NoError(t, err)
		sb, err := b.state()
		require.NoError(t, err)
		require.Equal(t, sa, sb, "seed %d", seed)

		kept := 0
		for _, ks := range a.sess.keys {
			for _, se := range ks.clients {
				require.Len(t, se.res, len(se.seqs))
				for _, res := range se.res {
					if res != nil {
						kept++
					}
				}
			}
		}
		require.Positive(t, kept, "seed %d: some results are kept", seed)
		s, err := readSessions(wire.NewReader(sa), 0)
		require.NoError(t, err)
		require.Equal(t, a.sess.pending, s.pending)
		require.Equal(t, a.sess.appendTo(nil), s.appendTo(nil))
		if len(a.sess.pending) >= 2 {
			severalPending++
		}
	}
	require.Positive(t, severalPending, "some histories end with several parked commands")
}

// TestEvictionForgetsResults checks that a session evicted beyond
// MaxSessionsPerKey goes with its results: a retry of its client's command
// executes again (the documented limit), while kept sessions still answer.
func TestEvictionForgetsResults(t *testing.T) {
	c := newParkCore(t, nil, 0, 2, false)
	c.Step(2, cmdMsg{op(1, 1, 1, "k", opAdd, 1)})
	c.Step(2, cmdMsg{op(2, 1, 1, "k", opAdd, 2)})
	c.Step(2, cmdMsg{op(1, 2, 1, "k", opAdd, 4)}) // client 1 used last
	c.Step(2, cmdMsg{op(3, 1, 1, "k", opAdd, 8)}) // evicts client 2
	c.Advance()
	require.Len(t, c.sess.keys["k"].clients, 2)
	require.Nil(t, c.sess.keys["k"].clients[2])

	c.Step(2, cmdMsg{op(1, 1, 1, "k", opAdd, 1)})
	require.Equal(t, []reply{answer(1, 1, 1)}, outs(t, c))
	c.Step(2, cmdMsg{op(2, 1, 1, "k", opAdd, 2)})
	require.Equal(t, []reply{execd(2, 1), answer(2, 1, 17)}, outs(t, c), "an evicted session is forgotten")
}

// TestReadSessionsRejects checks that malformed sessions are errors
// wrapping ErrState: truncations, a bad result flag, unsorted seqs.
func TestReadSessionsRejects(t *testing.T) {
	c := newParkCore(t, nil, 0, 0, false)
	c.Step(2, cmdMsg{op(1, 1, 0, "a", opAdd, 3)})
	c.Step(2, cmdMsg{op(1, 2, 0, "a", opPark, 0)})
	b := c.sess.appendTo(nil)
	_, err := readSessions(wire.NewReader(b), 0)
	require.NoError(t, err)
	for i := range len(b) {
		_, err := readSessions(wire.NewReader(b[:i]), 0)
		require.ErrorIs(t, err, ErrState, "truncated at %d", i)
	}

	enc := func(seqs []uint64, flag byte) []byte {
		b := binary.AppendUvarint(nil, 1) // one key
		b = wire.AppendString(b, "a")
		b = binary.AppendUvarint(b, 1) // clock
		b = binary.AppendUvarint(b, 1) // one client
		b = binary.AppendUvarint(b, 1) // id
		b = binary.AppendUvarint(b, 2) // floor
		b = binary.AppendUvarint(b, 1) // used
		b = binary.AppendUvarint(b, uint64(len(seqs)))
		for _, q := range seqs {
			b = binary.AppendUvarint(b, q)
			b = append(b, flag)
			if flag == 1 {
				b = wire.AppendBytes(b, []byte{7})
			}
		}
		return binary.AppendUvarint(b, 0) // no pending
	}
	s, err := readSessions(wire.NewReader(enc([]uint64{2, 5}, 1)), 0)
	require.NoError(t, err)
	require.Equal(t, [][]byte{{7}, {7}}, s.keys["a"].clients[1].res)
	for name, bad := range map[string][]byte{
		"flag":        enc([]uint64{2, 5}, 2),
		"unsorted":    enc([]uint64{5, 3}, 0),
		"repeated":    enc([]uint64{3, 3}, 0),
		"below floor": enc([]uint64{1}, 0),
	} {
		_, err := readSessions(wire.NewReader(bad), 0)
		require.ErrorIs(t, err, ErrState, name)
	}
}

// TestWantReply checks Config.WantReply: the answer of a command the
// driver does not wait for is not released, whether the state machine
// answers it at once or in a later Apply, or a retry finds it executed;
// the sessions keep its result all the same, for a retry the driver waits
// for; a wanted answer is released as without WantReply.
func TestWantReply(t *testing.T) {
	want := map[protocols.CommandID]bool{}
	c, err := New(Config{
		Spec: logSpec, Protocol: protocols.Config{Self: 1, Peers: []protocols.NodeID{1, 2}},
		StateMachine: &parkMachine{}, Rand: rand.New(rand.NewPCG(1, 2)),
		WantReply: func(id protocols.CommandID) bool { return want[id] },
	})
	require.NoError(t, err)
	exec := func(cmd protocols.Command) []reply {
		c.Step(2, cmdMsg{cmd})
		return outs(t, c)
	}
	executed := func(client, seq uint64) reply { return reply{id: id(client, seq), exec: true} }

	require.Equal(t, []reply{executed(1, 1)}, exec(op(1, 1, 1, "a", opAdd, 5)), "not waited for")
	want[id(2, 1)] = true
	require.Equal(t, []reply{executed(2, 1), answer(2, 1, 12)}, exec(op(2, 1, 1, "a", opAdd, 7)))
	require.Equal(t, []reply{executed(1, 2)}, exec(op(1, 2, 1, "a", opPark, 0)))
	want[id(3, 1)] = true
	require.Equal(t, []reply{executed(3, 1), answer(3, 1, 12)}, exec(op(3, 1, 1, "a", opRelease, 0)),
		"the parked command released is not waited for")

	// Retries the driver waits for: answered from the sessions.
	want[id(1, 1)], want[id(1, 2)] = true, true
	c.AlreadyExecuted(op(1, 1, 1, "a", opAdd, 5))
	require.Equal(t, []reply{answer(1, 1, 5)}, outs(t, c))
	c.AlreadyExecuted(op(1, 2, 1, "a", opPark, 0))
	require.Equal(t, []reply{answer(1, 2, 12)}, outs(t, c))

	// Client 1 acknowledges seqs 1 and 2: a retry of seq 1 is a Duplicate,
	// released only if waited for.
	require.Equal(t, []reply{executed(1, 3)}, exec(op(1, 3, 3, "a", opAdd, 1)))
	want[id(1, 1)] = false
	c.AlreadyExecuted(op(1, 1, 1, "a", opAdd, 5))
	require.Empty(t, outs(t, c))
	want[id(1, 1)] = true
	c.AlreadyExecuted(op(1, 1, 1, "a", opAdd, 5))
	require.Equal(t, []reply{{id: id(1, 1), res: -1, dup: true}}, outs(t, c))
}
