package replica

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// logProto is a one-replica toy protocol: Submit persists the command, sends
// it to peer 2 and executes it; Step executes a command it is sent. Its
// checkpoint is the number of records it persisted; a restart executes its
// recovered records again.
type logProto struct {
	env       protocols.Env
	persisted uint64
}

type cmdMsg struct{ c protocols.Command }

func newLogProto(cfg protocols.Config) (protocols.Protocol, error) {
	p := &logProto{env: cfg.Env}
	if cfg.Checkpoint != nil {
		p.persisted = binary.LittleEndian.Uint64(cfg.Checkpoint)
	}
	for _, rec := range cfg.Recovered {
		r := wire.NewReader(rec)
		c := r.Command()
		if err := r.Done(); err != nil {
			return nil, err
		}
		p.persisted++
		p.env.Execute(c)
	}
	return p, nil
}

func (p *logProto) Submit(c protocols.Command) {
	p.env.Persist(wire.AppendCommand(nil, c))
	p.persisted++
	p.env.Send(2, cmdMsg{c})
	p.env.Execute(c)
}

func (p *logProto) Step(_ protocols.NodeID, m protocols.Message) { p.env.Execute(m.(cmdMsg).c) }
func (p *logProto) Tick()                                        {}

func (p *logProto) Checkpoint() []byte { return binary.LittleEndian.AppendUint64(nil, p.persisted) }

var logSpec = protocols.Spec{Name: "log", New: newLogProto}

// sumMachine adds each command's payload byte to the sum of its key and
// answers the new sum.
type sumMachine struct {
	sums map[string]uint64
	buf  [8]byte
}

func newSum() *sumMachine { return &sumMachine{sums: map[string]uint64{}} }

func (m *sumMachine) Apply(c protocols.Command, a Answers) {
	k := ""
	if len(c.Keys) > 0 {
		k = c.Keys[0]
	}
	if len(c.Payload) > 0 {
		m.sums[k] += uint64(c.Payload[0])
	}
	binary.LittleEndian.PutUint64(m.buf[:], m.sums[k])
	a.Answer(c.ID, m.buf[:])
}

func (m *sumMachine) Snapshot() ([]byte, error) {
	keys := make([]string, 0, len(m.sums))
	for k := range m.sums {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b []byte
	for _, k := range keys {
		b = wire.AppendString(b, k)
		b = binary.AppendUvarint(b, m.sums[k])
	}
	return b, nil
}

func (m *sumMachine) Restore(b []byte) error {
	r := wire.NewReader(b)
	m.sums = map[string]uint64{}
	for r.Len() > 0 && r.Err() == nil {
		k := r.String()
		m.sums[k] = r.Uvarint()
	}
	return r.Err()
}

func newCore(t *testing.T, snap *Snapshot, recs [][]byte, every int, hold bool) (*Core, *sumMachine) {
	t.Helper()
	sm := newSum()
	c, err := New(Config{
		Spec: logSpec, Protocol: protocols.Config{Self: 1, Peers: []protocols.NodeID{1, 2}},
		StateMachine: sm, Rand: rand.New(rand.NewPCG(1, 2)), Snapshot: snap, Records: recs,
		CompactEvery: every, HoldReplies: hold,
	})
	require.NoError(t, err)
	return c, sm
}

func cmd(client, seq uint64, key string, add byte) protocols.Command {
	return protocols.Command{ID: protocols.CommandID{Client: client, Seq: seq}, Keys: []string{key}, Payload: []byte{add}}
}

// TestSendsAndRepliesWaitForDurability checks the persistence rule: an
// output made after a record was persisted leaves only once Synced covers
// that record, and outputs leave in the order they were made.
func TestSendsAndRepliesWaitForDurability(t *testing.T) {
	c, _ := newCore(t, nil, nil, 0, true)
	c.Submit(cmd(1, 1, "a", 1))
	rd := c.Ready()
	require.Len(t, rd.Records, 1)
	require.Equal(t, uint64(1), rd.FirstIndex)
	// Only the execution is reported; the send and the reply wait.
	require.Len(t, rd.Outputs, 1)
	require.Equal(t, OutExec, rd.Outputs[0].Kind)
	c.Advance()

	c.Submit(cmd(1, 2, "a", 2)) // a second record, not yet durable either
	c.Advance()
	c.Synced(1)
	rd = c.Ready()
	require.Equal(t, []OutputKind{OutSend, OutReply}, kinds(rd.Outputs), "only the outputs of record 1 leave")
	require.Equal(t, uint64(1), rd.Outputs[1].Cmd.ID.Seq)
	require.Equal(t, uint64(1), binary.LittleEndian.Uint64(rd.Outputs[1].Result))
	c.Advance()
	c.Synced(2)
	rd = c.Ready()
	require.Equal(t, []OutputKind{OutSend, OutReply}, kinds(rd.Outputs))
	require.Equal(t, uint64(3), binary.LittleEndian.Uint64(rd.Outputs[1].Result), "a held result is a copy, not the state machine's buffer")
	c.Advance()

	// With everything durable, a Step's execution answers at once.
	c.Step(2, cmdMsg{cmd(2, 1, "b", 5)})
	require.Equal(t, []OutputKind{OutExec, OutReply}, kinds(c.Ready().Outputs))
}

// TestRepliesWithoutHold checks that HoldReplies=false answers at once.
func TestRepliesWithoutHold(t *testing.T) {
	c, _ := newCore(t, nil, nil, 0, false)
	c.Submit(cmd(1, 1, "a", 1))
	require.Equal(t, []OutputKind{OutExec, OutReply}, kinds(c.Ready().Outputs))
}

func kinds(outs []Output) []OutputKind {
	var k []OutputKind
	for _, o := range outs {
		k = append(k, o.Kind)
	}
	return k
}

// TestSessionsDiscardDuplicates checks exactly-once: a command id executes
// once, a command below the client's acknowledgement watermark does not
// execute, and other clients and keys are independent.
func TestSessionsDiscardDuplicates(t *testing.T) {
	c, sm := newCore(t, nil, nil, 0, false)
	c.Step(2, cmdMsg{cmd(1, 1, "a", 1)})
	c.Step(2, cmdMsg{cmd(1, 1, "a", 1)}) // duplicate
	c.Step(2, cmdMsg{cmd(2, 1, "a", 1)}) // another client
	c.Step(2, cmdMsg{cmd(1, 1, "b", 1)}) // another key: same id, but its own session
	require.Equal(t, uint64(2), sm.sums["a"])
	require.Equal(t, int64(1), c.Stats().Duplicates)

	acked := cmd(1, 3, "a", 1)
	acked.Acked = 3 // the client was answered for 1 and 2
	c.Step(2, cmdMsg{acked})
	c.Step(2, cmdMsg{cmd(1, 2, "a", 100)}) // a late copy of seq 2: below the watermark
	require.Equal(t, uint64(3), sm.sums["a"])
	se := c.sess.keys["a"].clients[1]
	require.Equal(t, uint64(3), se.floor)
	require.Equal(t, []uint64{3}, se.seqs, "seqs below the watermark are forgotten")
}

// TestSessionEviction checks the per-key bound and that the least recently
// used session goes first.
func TestSessionEviction(t *testing.T) {
	s := newSessions(2)
	admitted := func(c protocols.Command) bool {
		se, ok := s.admit(c)
		require.Equal(t, ok, se != nil, "a session exactly when admitted")
		if ok {
			require.Same(t, s.keys[c.Keys[0]].clients[c.ID.Client], se, "admit returns the session on the first key")
		}
		return ok
	}
	require.True(t, admitted(cmd(1, 1, "k", 0)))
	require.True(t, admitted(cmd(2, 1, "k", 0)))
	require.True(t, admitted(cmd(1, 2, "k", 0))) // client 1 used last
	require.True(t, admitted(cmd(3, 1, "k", 0))) // evicts client 2
	require.Len(t, s.keys["k"].clients, 2)
	require.NotNil(t, s.keys["k"].clients[1])
	require.Nil(t, s.keys["k"].clients[2])
	require.False(t, admitted(cmd(1, 2, "k", 0)))

	// A session found last (a retry of client 3's command, which does not
	// make it recent) and then evicted is not found again.
	require.True(t, admitted(cmd(1, 3, "k", 0)))
	require.False(t, admitted(cmd(3, 1, "k", 0)))
	require.True(t, admitted(cmd(4, 1, "k", 0))) // evicts client 3
	require.Nil(t, s.keys["k"].clients[3])
	require.True(t, admitted(cmd(3, 1, "k", 0)), "client 3's session is gone")
}

// TestCheckpointRestoresState drives a core through random commands,
// syncs and crashes, with a checkpoint after every 3 records, and checks
// that each restart from the last durable checkpoint and the durable
// records after it gives the state of a core that never compacted,
// restarted from every durable record.
func TestCheckpointRestoresState(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 9))
			var (
				snap    *Snapshot
				log     [][]byte // after snap
				all     [][]byte // every record, never compacted
				durable uint64
				pending []Snapshot
			)
			c, sm := newCore(t, nil, nil, 3, true)
			base := func() uint64 {
				if snap == nil {
					return 0
				}
				return snap.Index
			}
			drain := func() {
				rd := c.Ready()
				log = append(log, rd.Records...)
				all = append(all, rd.Records...)
				if rd.Snapshot != nil {
					pending = append(pending, *rd.Snapshot)
				}
				c.Advance()
			}
			install := func() {
				for len(pending) > 0 && pending[0].Index <= durable {
					p := pending[0]
					pending = pending[1:]
					log = log[p.Index-base():]
					snap = &p
				}
			}
			seq := map[uint64]uint64{}
			for step := 0; step < 200; step++ {
				switch x := r.IntN(10); {
				case x < 6:
					cl := 1 + r.Uint64N(3)
					seq[cl]++
					c.Submit(cmd(cl, seq[cl], fmt.Sprint("k", r.IntN(3)), byte(1+r.IntN(9))))
					drain()
				case x < 9:
					durable = c.LastIndex()
					c.Synced(durable)
					drain()
					install()
				default:
					// Crash: the unsynced tail is lost.
					keep := int(durable - base())
					log, all = log[:keep], all[:int(durable)]
					pending = nil
					var sm2 *sumMachine
					c, sm2 = newCore(t, snap, slices.Clone(log), 3, true)
					drain()
					_, ref := newCore(t, nil, slices.Clone(all), 0, true)
					require.Equal(t, ref.sums, sm2.sums, "seed %d step %d: checkpoint %v + %d records", seed, step, snap != nil, len(log))
					sm = sm2
				}
			}
			require.NotNil(t, sm)
		})
	}
}

// TestSnapshotEncoding round-trips a snapshot and rejects truncations.
func TestSnapshotEncoding(t *testing.T) {
	c, _ := newCore(t, nil, nil, 0, false)
	c.Step(2, cmdMsg{cmd(1, 1, "a", 1)})
	st, err := c.state()
	require.NoError(t, err)
	s := Snapshot{Index: 7, Checkpoint: binary.LittleEndian.AppendUint64(nil, 7), State: st}
	b, err := s.MarshalBinary()
	require.NoError(t, err)
	var got Snapshot
	require.NoError(t, got.UnmarshalBinary(b))
	require.Equal(t, s, got)
	for i := range len(b) {
		require.Error(t, new(Snapshot).UnmarshalBinary(b[:i]), "truncated at %d", i)
	}
	c2, sm := newCore(t, &got, nil, 0, false)
	require.Equal(t, uint64(1), sm.sums["a"])
	require.Equal(t, uint64(7), c2.LastIndex())
}

// FuzzRestore feeds arbitrary bytes to snapshot decoding and restore: an
// error or a core, never a panic.
func FuzzRestore(f *testing.F) {
	c, _ := newCore(&testing.T{}, nil, nil, 0, false)
	c.Step(2, cmdMsg{cmd(1, 1, "a", 1)})
	st, _ := c.state()
	good, _ := (&Snapshot{Index: 3, Checkpoint: []byte{0, 0, 0, 0, 0, 0, 0, 0}, State: st}).MarshalBinary()
	f.Add(good)
	f.Add([]byte{})
	// Kept results and a pending answer.
	pc := newParkCore(&testing.T{}, nil, 0, 0, false)
	pc.Step(2, cmdMsg{op(1, 1, 1, "a", opAdd, 3)})
	pc.Step(2, cmdMsg{op(1, 2, 1, "a", opPark, 0)})
	pc.Step(2, cmdMsg{protocols.Command{ID: protocols.CommandID{Client: 2, Seq: 1}, Keys: []string{"b", "a"}, Payload: []byte{opAdd, 1}}})
	st, _ = pc.state()
	good, _ = (&Snapshot{Index: 3, Checkpoint: []byte{0, 0, 0, 0, 0, 0, 0, 0}, State: st}).MarshalBinary()
	f.Add(good)
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Snapshot
		if s.UnmarshalBinary(b) != nil {
			return
		}
		r := wire.NewReader(s.State)
		_, _ = readSessions(r, 0)
	})
}

// TestCheckpointsWaitForHalfTheStateInRecords checks the size rule of
// CompactEvery: with a state much larger than the records, a checkpoint
// waits until the records since the last one hold half its bytes.
func TestCheckpointsWaitForHalfTheStateInRecords(t *testing.T) {
	defer func(l int) { largeState = l }(largeState)
	largeState = 4000
	c, _ := newCore(t, nil, nil, 2, false)
	// A large state: 500 keys.
	seq := uint64(0)
	for i := range 500 {
		seq++
		c.Submit(cmd(1, seq, fmt.Sprintf("key-%04d", i), 1))
		c.Advance()
	}
	// Count from the next checkpoint on.
	for before := c.Stats().Checkpoints; c.Stats().Checkpoints == before; {
		seq++
		c.Submit(cmd(1, seq, "k", 1))
		c.Advance()
	}
	first := c.Stats().Checkpoints
	stateLen := c.stateLen
	require.Greater(t, stateLen, largeState, "the state holds 500 keys")
	// Small records on one key: no checkpoint until their bytes reach
	// half the state.
	var bytes int
	for c.Stats().Checkpoints == first {
		seq++
		c.Submit(cmd(1, seq, "k", 1))
		bytes += len(c.Ready().Records[0])
		c.Advance()
		require.Less(t, bytes, stateLen, "no checkpoint after %d record bytes (state %d)", bytes, stateLen)
	}
	require.GreaterOrEqual(t, bytes, stateLen/2, "a checkpoint came after %d record bytes, state %d", bytes, stateLen)

	// Below the large-state size, CompactEvery alone decides.
	largeState = 1 << 30
	next := c.Stats().Checkpoints
	for range 2 {
		seq++
		c.Submit(cmd(1, seq, "k", 1))
		c.Advance()
	}
	require.Equal(t, next+1, c.Stats().Checkpoints, "a small state is checkpointed every CompactEvery records")
}

// TestHeldResultsUnderSteadyLoad keeps something held at every step (each
// sync lags the records by a few inputs), so that the held list is compacted
// rather than emptied, and checks that every reply carries its own result,
// in order, and that the held list stays bounded.
func TestHeldResultsUnderSteadyLoad(t *testing.T) {
	c, _ := newCore(t, nil, nil, 0, true)
	const n, lag = 5000, 3
	want := map[uint64]uint64{} // seq -> the sum it must be answered
	sum := uint64(0)
	var got []uint64
	maxHeld := 0
	for seq := uint64(1); seq <= n+lag; seq++ {
		if seq <= n {
			add := byte(seq%7 + 1)
			sum += uint64(add)
			want[seq] = sum
			c.Submit(cmd(1, seq, "k", add))
		}
		if seq > lag {
			c.Synced(seq - lag)
		}
		if seq == n+lag {
			c.Synced(n)
		}
		for _, o := range c.Ready().Outputs {
			if o.Kind == OutReply {
				require.Equal(t, want[o.Cmd.ID.Seq], binary.LittleEndian.Uint64(o.Result), "seq %d", o.Cmd.ID.Seq)
				got = append(got, o.Cmd.ID.Seq)
			}
		}
		c.Advance()
		maxHeld = max(maxHeld, len(c.held))
	}
	require.Len(t, got, n)
	require.True(t, slices.IsSorted(got))
	require.Less(t, maxHeld, 1024, "the held list grows without bound")
}

// TestReleasedResultsSurviveNewHolds releases held answers and, before the
// driver reads them, holds new ones (the held list empties now and then,
// so its storage is reused): every reply must still carry its own result.
func TestReleasedResultsSurviveNewHolds(t *testing.T) {
	c, _ := newCore(t, nil, nil, 0, true)
	sum := uint64(0)
	want := map[uint64]uint64{}
	replies := 0
	for seq := uint64(1); seq <= 400; seq++ {
		c.Synced(seq - 1 - seq%3) // releases earlier answers, sometimes all
		add := byte(seq%5 + 1)
		sum += uint64(add)
		want[seq] = sum
		c.Submit(cmd(1, seq, "k", add)) // held: its record is not durable
		for _, o := range c.Ready().Outputs {
			if o.Kind == OutReply {
				require.Equal(t, want[o.Cmd.ID.Seq], binary.LittleEndian.Uint64(o.Result), "seq %d", o.Cmd.ID.Seq)
				replies++
			}
		}
		c.Advance()
	}
	require.Greater(t, replies, 300)
}

// lazyRec is a protocols.Record that counts its encodings and the calls
// of its Size.
type lazyRec struct {
	c              protocols.Command
	encoded, sized *int
}

func (r *lazyRec) Size() int {
	*r.sized++
	return wire.CommandLen(r.c)
}
func (r *lazyRec) AppendTo(b []byte) []byte {
	*r.encoded++
	return wire.AppendCommand(b, r.c)
}

// lazyProto persists each submitted command twice, once encoded
// (Persist) and once as a lazy record (protocols.PersistRecord), and
// executes it.
type lazyProto struct {
	env            protocols.Env
	rec            lazyRec
	encoded, sized int
}

func (p *lazyProto) Submit(c protocols.Command) {
	p.env.Persist(wire.AppendCommand(nil, c))
	p.rec = lazyRec{c: c, encoded: &p.encoded, sized: &p.sized}
	protocols.PersistRecord(p.env, &p.rec)
	p.env.Execute(c)
}
func (p *lazyProto) Step(protocols.NodeID, protocols.Message) {}
func (p *lazyProto) Tick()                                    {}

// TestDiscardRecords checks Config.DiscardRecords: the records are nil and
// lazy records are never encoded, while log indexes and the record bytes
// counted for checkpoints (CompactEvery set) are those of a core that keeps
// its records; that a core that keeps them gets each lazy record's
// encoding; and that a core that discards them and takes no checkpoints
// never asks a lazy record its size.
func TestDiscardRecords(t *testing.T) {
	run := func(discard bool, every int) (*Core, *lazyProto, [][]byte) {
		var p *lazyProto
		spec := protocols.Spec{Name: "lazy", New: func(cfg protocols.Config) (protocols.Protocol, error) {
			p = &lazyProto{env: cfg.Env}
			return p, nil
		}}
		c, err := New(Config{
			Spec: spec, Protocol: protocols.Config{Self: 1, Peers: []protocols.NodeID{1}},
			StateMachine: newSum(), Rand: rand.New(rand.NewPCG(1, 2)), DiscardRecords: discard,
			CompactEvery: every,
		})
		require.NoError(t, err)
		var recs [][]byte
		for seq := uint64(1); seq <= 5; seq++ {
			c.Submit(cmd(1, seq, "k", byte(seq)))
			rd := c.Ready()
			require.Equal(t, 2*seq-1, rd.FirstIndex)
			for _, r := range rd.Records {
				recs = append(recs, slices.Clone(r))
			}
			c.Advance()
		}
		return c, p, recs
	}
	kept, keptProto, keptRecs := run(false, 100)
	gone, goneProto, goneRecs := run(true, 100)
	require.Len(t, keptRecs, 10)
	for i, r := range keptRecs {
		want := wire.AppendCommand(nil, cmd(1, uint64(i/2+1), "k", byte(i/2+1)))
		require.Equal(t, want, r, "record %d", i)
	}
	require.Equal(t, 5, keptProto.encoded)
	require.Len(t, goneRecs, 10)
	for i, r := range goneRecs {
		require.Nil(t, r, "record %d", i)
	}
	require.Zero(t, goneProto.encoded, "a discarded lazy record is not encoded")
	require.Equal(t, kept.LastIndex(), gone.LastIndex())
	require.Positive(t, kept.sinceB)
	require.Equal(t, kept.sinceB, gone.sinceB, "the bytes counted for checkpoints")
	require.Equal(t, kept.Stats(), gone.Stats())
	require.Equal(t, 5, goneProto.sized, "a discarded record is sized when checkpoints count bytes")

	bare, bareProto, bareRecs := run(true, 0)
	require.Len(t, bareRecs, 10)
	require.Equal(t, kept.LastIndex(), bare.LastIndex())
	require.Equal(t, kept.Stats(), bare.Stats())
	require.Zero(t, bareProto.sized, "no checkpoint reads the byte count: a discarded record is not sized")
	require.Zero(t, bareProto.encoded)
}

// TestSessionResultsModel keeps the results of one client's pipelined
// commands on one key, answered out of order, with the acknowledgement
// watermark rising irregularly, and checks every kept result against a
// model after each step (the results share the session's buffer, reused
// and compacted), and that the buffer stays within twice the most bytes
// kept at once (plus a result), however many results went through it.
func TestSessionResultsModel(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		r := rand.New(rand.NewPCG(seed, 5))
		s := newSessions(0)
		model := map[uint64][]byte{} // kept results by seq
		var unanswered []uint64
		acked := uint64(0)
		peak := 0
		for seq := uint64(1); seq <= 3000; seq++ {
			if r.IntN(3) == 0 {
				acked = max(acked, seq-min(seq-1, uint64(r.IntN(4))))
			}
			c := protocols.Command{ID: protocols.CommandID{Client: 1, Seq: seq}, Keys: []string{"k"}, Acked: acked}
			_, ok := s.admit(c)
			require.True(t, ok)
			for q := range model {
				if q < acked {
					delete(model, q)
				}
			}
			unanswered = slices.DeleteFunc(append(unanswered, seq), func(q uint64) bool { return q < acked })
			for len(unanswered) > 0 && r.IntN(2) == 0 {
				i := r.IntN(len(unanswered))
				q := unanswered[i]
				unanswered = slices.Delete(unanswered, i, i+1)
				res := make([]byte, r.IntN(40))
				for j := range res {
					res[j] = byte(r.Uint32())
				}
				s.keep("k", protocols.CommandID{Client: 1, Seq: q}, res)
				model[q] = res
			}
			live := 0
			for q, want := range model {
				got, kept, _ := s.retry(protocols.Command{ID: protocols.CommandID{Client: 1, Seq: q}, Keys: []string{"k"}})
				require.True(t, kept, "seed %d seq %d: result of %d kept", seed, seq, q)
				require.Equal(t, want, got, "seed %d seq %d: result of %d", seed, seq, q)
				live += len(want)
			}
			peak = max(peak, live)
			se := s.keys["k"].clients[1]
			require.LessOrEqual(t, cap(se.buf), max(2*(peak+40), 16), "seed %d seq %d: buffer of %d for at most %d kept bytes", seed, seq, cap(se.buf), peak)
		}
	}
}
