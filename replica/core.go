package replica

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/blossom-dso/blossom/protocols"
)

// StateMachine is the replicated application behind a core. Apply must be
// deterministic: the same state and command give the same answers and the
// same next state at every replica.
type StateMachine interface {
	// Apply executes c and gives answers to a: the answer of c itself,
	// at once or in a later Apply (a call that waits, like a barrier's
	// await, is state of the machine until a later command releases it),
	// and the answers of earlier waiting commands that c releases. Each
	// command is answered at most once. A result may alias a buffer of
	// the state machine: the core copies it before Apply returns.
	Apply(c protocols.Command, a Answers)
	// Snapshot returns the whole state, waiting commands included, as
	// bytes the caller may keep.
	Snapshot() ([]byte, error)
	// Restore replaces the state with one that Snapshot returned.
	Restore(snap []byte) error
}

// Answers receives the answers of StateMachine.Apply.
type Answers interface {
	// Answer gives the result of command id.
	Answer(id protocols.CommandID, result []byte)
}

// OutputKind says what an Output asks of the driver.
type OutputKind uint8

// The output kinds.
const (
	// OutSend: deliver Msg to peer To; it may leave now.
	OutSend OutputKind = iota + 1
	// OutExec: the state machine is applying Cmd. It is reported at
	// once, for metrics and checks; it is not an answer.
	OutExec
	// OutReply: the answer Result of the command Cmd.ID (only the ID is
	// set) may be released to its client now: the records persisted
	// before the answer was made are durable.
	OutReply
)

// Output is one effect of the core, in the order the protocol made it.
type Output struct {
	Kind OutputKind
	// To and Msg are set for OutSend.
	To  protocols.NodeID
	Msg protocols.Message
	// Cmd is set for OutExec and OutReply, Result for OutReply; Result
	// is valid until Advance.
	Cmd    protocols.Command
	Result []byte
	// Duplicate marks an OutReply to a command that executed before and
	// whose result is no longer kept: its client acknowledged a later
	// call (its Seq is below the client's watermark, see the package doc),
	// or its session was evicted. It took effect once; Result is nil. A
	// retry whose result is kept gets an ordinary OutReply with that
	// result instead, and a retry of a command not answered yet gets no
	// output: the state machine's answer, when it comes, is its OutReply.
	Duplicate bool
}

// Snapshot is a checkpoint of a core: it replaces every record up to and
// including log index Index.
type Snapshot struct {
	// Index is the log index of the last record the snapshot covers.
	Index uint64
	// Checkpoint is the protocol's checkpoint record (protocols.Compactor).
	Checkpoint []byte
	// State holds the client sessions and the state machine's snapshot.
	State []byte
}

// Ready is what the driver must do after an input. Its slices are valid
// until Advance.
type Ready struct {
	// Records must be appended to the durable log in order; the first has
	// log index FirstIndex. Once they are durable the driver calls
	// Synced(FirstIndex + len(Records) - 1).
	Records    [][]byte
	FirstIndex uint64
	// Outputs are the effects that may take place now, in order.
	Outputs []Output
	// Snapshot, if not nil, is a checkpoint to write once every record up
	// to Snapshot.Index is durable; then the log up to Index may be dropped.
	Snapshot *Snapshot
}

// Empty reports whether rd asks nothing of the driver.
func (rd Ready) Empty() bool {
	return len(rd.Records) == 0 && len(rd.Outputs) == 0 && rd.Snapshot == nil
}

// Stats counts a core's effects since it was created.
type Stats struct {
	Sent, Persisted, Executed, Duplicates int64
	FastPaths, SlowPaths                  int64
	Checkpoints, Installs                 int64
}

// Config configures a core.
type Config struct {
	// Spec is the protocol to run.
	Spec protocols.Spec
	// Protocol configures the protocol instance. Its Env, Checkpoint and
	// Recovered fields are set by the core.
	Protocol protocols.Config
	// StateMachine receives executed commands. Required.
	StateMachine StateMachine
	// Rand is the protocol's random source. Required.
	Rand *rand.Rand
	// Snapshot is the last durable checkpoint, nil on a fresh start or if
	// none was taken.
	Snapshot *Snapshot
	// Records are the durable records after Snapshot (after index 0 if
	// Snapshot is nil), in order.
	Records [][]byte
	// CompactEvery takes a checkpoint after every CompactEvery records
	// persisted, if the protocol implements protocols.Compactor; 0 never.
	// After a checkpoint whose state is large (1 MiB or more), the next
	// also waits until the records since hold at least half as many bytes
	// as that state, so that a large state (a million objects) is not
	// encoded again every CompactEvery small records: the work of
	// checkpoints stays proportional to the bytes logged, and the log
	// holds at most about half a state more than CompactEvery records.
	CompactEvery int
	// MaxSessionsPerKey bounds the client sessions kept per key; 0 means
	// DefaultMaxSessionsPerKey.
	MaxSessionsPerKey int
	// HoldReplies releases a client's answer only once the records
	// persisted before its execution are durable. Drivers set it; see the
	// package doc.
	HoldReplies bool
	// DiscardRecords is for a driver that never reads the records back (a
	// simulation in which no replica restarts): every record in
	// Ready.Records is nil, and a record the protocol persists through
	// protocols.PersistRecord is counted (its Size) but not encoded. Log
	// indexes, syncs and checkpoints are as without it.
	DiscardRecords bool
	// WantReply, if set, says whether the driver waits for the answer of
	// command id at this replica: an answer is released (OutReply) only
	// if WantReply returns true for its command when the answer is made.
	// The sessions keep every result as without it, so a retry is still
	// answered from them. A driver may set it only if a command it returns
	// false for is not waited for here later (a client that waits for a
	// command from its submission on, at one replica, and never retries
	// it elsewhere). Nil releases every answer.
	WantReply func(id protocols.CommandID) bool
}

// largeState is the size from which a checkpoint's state counts as large:
// the next checkpoint then also waits for half its bytes in records (see
// Config.CompactEvery). A variable for tests.
var largeState = 1 << 20

// DefaultMaxSessionsPerKey is the default of Config.MaxSessionsPerKey.
const DefaultMaxSessionsPerKey = 1024

// held is an output waiting for the log to be durable up to need: a send
// (kind OutSend: to, msg) or an answer (OutReply: id, res, dup), the only
// outputs that wait, kept without the rest of an Output (half its size) as
// every message after a persist waits here.
type held struct {
	need uint64
	msg  protocols.Message
	res  []byte
	id   protocols.CommandID
	to   protocols.NodeID
	kind OutputKind
	dup  bool
}

// output returns the Output h holds.
func (h *held) output() Output {
	if h.kind == OutSend {
		return Output{Kind: OutSend, To: h.to, Msg: h.msg}
	}
	return Output{Kind: h.kind, Cmd: protocols.Command{ID: h.id}, Result: h.res, Duplicate: h.dup}
}

// Core is one replica: a protocol instance, its state machine and client
// sessions. It is not safe for concurrent use.
type Core struct {
	proto   protocols.Protocol
	sm      StateMachine
	rand    *rand.Rand
	sess    *sessions
	every   int
	compact protocols.Compactor
	holdRep bool
	discard bool                              // Config.DiscardRecords
	want    func(id protocols.CommandID) bool // Config.WantReply

	last     uint64 // log index of the last record persisted
	durable  uint64 // log index up to which the log is durable
	sinceCk  int    // records since the last checkpoint
	sinceB   int    // bytes of those records
	stateLen int    // bytes of the last checkpoint's state
	held     []held // outputs waiting for durability, oldest first
	hhead    int
	records  [][]byte
	first    uint64
	outputs  []Output
	snapshot *Snapshot
	lastSnap *Snapshot // the newest checkpoint taken (for state transfer)
	install  bool      // a state was installed: checkpoint after this input
	arena    []byte    // results of this Ready's answers
	// heldArena holds the results of held answers; it is emptied when
	// nothing is held.
	heldArena []byte
	answers   answers
	stats     Stats

	// The command being applied, while Apply runs: its id, its session
	// on its first session key (admit just recorded it there, and nothing
	// evicts a session during Apply) and whether the state machine
	// answered it.
	applying    bool
	cur         protocols.CommandID
	curSess     *session
	curAnswered bool
}

// ErrState is wrapped by errors in a recovered snapshot.
var ErrState = errors.New("replica: bad snapshot state")

// New builds a core, restoring the state machine and sessions from
// cfg.Snapshot and starting the protocol with its checkpoint and
// cfg.Records. The records and snapshot are treated as durable.
func New(cfg Config) (*Core, error) {
	if cfg.StateMachine == nil || cfg.Rand == nil || cfg.Spec.New == nil {
		return nil, fmt.Errorf("replica: config needs a protocol spec, a state machine and a random source")
	}
	c := &Core{
		sm: cfg.StateMachine, rand: cfg.Rand, every: cfg.CompactEvery,
		sess: newSessions(cfg.MaxSessionsPerKey), holdRep: cfg.HoldReplies,
		discard: cfg.DiscardRecords, want: cfg.WantReply,
	}
	c.answers.c = c
	pc := cfg.Protocol
	pc.Env = c
	pc.Checkpoint = nil
	if s := cfg.Snapshot; s != nil {
		if err := c.restore(s.State); err != nil {
			return nil, err
		}
		c.last = s.Index
		pc.Checkpoint = s.Checkpoint
		c.lastSnap = s
		c.stateLen = len(s.State)
	}
	c.last += uint64(len(cfg.Records))
	c.durable = c.last
	pc.Recovered = cfg.Records
	p, err := cfg.Spec.New(pc)
	if err != nil {
		return nil, err
	}
	c.proto = p
	c.compact, _ = p.(protocols.Compactor)
	return c, nil
}

// Protocol returns the protocol instance, for optional interfaces such as
// protocols.LeaderReporter.
func (c *Core) Protocol() protocols.Protocol { return c.proto }

// StateMachine returns the state machine.
func (c *Core) StateMachine() StateMachine { return c.sm }

// Stats returns the core's counters.
func (c *Core) Stats() Stats { return c.stats }

// LastIndex is the log index of the last record persisted.
func (c *Core) LastIndex() uint64 { return c.last }

// DurableIndex is the log index up to which the driver reported durability.
func (c *Core) DurableIndex() uint64 { return c.durable }

// Submit hands the protocol a client's command.
func (c *Core) Submit(cmd protocols.Command) {
	c.proto.Submit(cmd)
	c.endCall()
}

// Step delivers a peer's message.
func (c *Core) Step(from protocols.NodeID, m protocols.Message) {
	c.proto.Step(from, m)
	c.endCall()
}

// Tick advances the protocol's logical clock.
func (c *Core) Tick() {
	c.proto.Tick()
	c.endCall()
}

func (c *Core) endCall() {
	if c.compact != nil && (c.install || c.every > 0 && c.sinceCk >= c.every && (c.stateLen < largeState || c.sinceB >= c.stateLen/2)) {
		c.install = false
		c.checkpoint()
	}
}

// Synced reports that the log is durable up to index: held outputs whose
// records are now durable are released into the next Ready.
func (c *Core) Synced(index uint64) {
	if index <= c.durable {
		return
	}
	c.durable = min(index, c.last)
	for c.hhead < len(c.held) && c.held[c.hhead].need <= c.durable {
		out := c.held[c.hhead].output()
		if out.Result != nil {
			n := len(c.arena)
			c.arena = append(c.arena, out.Result...)
			out.Result = c.arena[n:len(c.arena):len(c.arena)]
		}
		c.outputs = append(c.outputs, out)
		c.held[c.hhead] = held{}
		c.hhead++
	}
	switch {
	case c.hhead == len(c.held):
		c.held, c.hhead = c.held[:0], 0
		c.heldArena = c.heldArena[:0]
	case c.hhead >= 256 && 2*c.hhead >= len(c.held):
		// Something is always held: the released half goes, so that
		// the held list and its arena do not grow for ever.
		n := copy(c.held, c.held[c.hhead:])
		clear(c.held[n:])
		c.held, c.hhead = c.held[:n], 0
		var arena []byte
		for i := range c.held {
			if r := c.held[i].res; r != nil {
				k := len(arena)
				arena = append(arena, r...)
				c.held[i].res = arena[k:len(arena):len(arena)]
			}
		}
		c.heldArena = arena
	}
}

// Ready returns the pending effects; they stay the same until Advance.
func (c *Core) Ready() Ready {
	return Ready{Records: c.records, FirstIndex: c.first, Outputs: c.outputs, Snapshot: c.snapshot}
}

// Advance marks the last Ready as consumed.
func (c *Core) Advance() {
	clear(c.records)
	c.records = c.records[:0]
	for i := range c.outputs {
		c.outputs[i] = Output{}
	}
	c.outputs = c.outputs[:0]
	c.arena = c.arena[:0]
	c.snapshot = nil
}

// Send implements protocols.Env.
func (c *Core) Send(to protocols.NodeID, m protocols.Message) {
	c.stats.Sent++
	c.emit(Output{Kind: OutSend, To: to, Msg: m}, true)
}

// emit releases out now if every record persisted so far is durable (or
// if it need not wait), and holds it back otherwise.
func (c *Core) emit(out Output, wait bool) {
	if wait && c.last > c.durable {
		if out.Result != nil {
			// The held arena is reused once nothing is held, so a
			// released result is copied again into the Ready's arena.
			n := len(c.heldArena)
			c.heldArena = append(c.heldArena, out.Result...)
			out.Result = c.heldArena[n:len(c.heldArena):len(c.heldArena)]
		}
		c.held = append(c.held, held{need: c.last, msg: out.Msg, res: out.Result, id: out.Cmd.ID, to: out.To, kind: out.Kind, dup: out.Duplicate})
		return
	}
	c.outputs = append(c.outputs, out)
}

// Persist implements protocols.Env.
func (c *Core) Persist(rec []byte) {
	n := len(rec)
	if c.discard {
		rec = nil
	}
	c.persisted(rec, n)
}

// PersistRecord implements protocols.RecordPersister: r is encoded unless
// the core discards records. A discarded record's Size is asked only if
// checkpoints are taken every CompactEvery records, the one use of the
// byte count (Config.CompactEvery); otherwise it counts 0 bytes.
func (c *Core) PersistRecord(r protocols.Record) {
	if c.discard {
		n := 0
		if c.every > 0 {
			n = r.Size()
		}
		c.persisted(nil, n)
		return
	}
	n := r.Size()
	c.persisted(r.AppendTo(make([]byte, 0, n)), n)
}

// persisted appends rec, a record of size bytes (nil if discarded), to the
// records of the next Ready.
func (c *Core) persisted(rec []byte, size int) {
	if len(c.records) == 0 {
		c.first = c.last + 1
	}
	c.records = append(c.records, rec)
	c.last++
	c.sinceCk++
	c.sinceB += size
	c.stats.Persisted++
}

// Execute implements protocols.Env: the command is applied unless its
// client session shows it was executed already; then the retry is
// answered from the session (see retried).
func (c *Core) Execute(cmd protocols.Command) {
	se, ok := c.sess.admit(cmd)
	if !ok {
		c.retried(cmd)
		return
	}
	c.stats.Executed++
	c.outputs = append(c.outputs, Output{Kind: OutExec, Cmd: cmd})
	c.applying, c.cur, c.curSess, c.curAnswered = true, cmd.ID, se, false
	c.sm.Apply(cmd, &c.answers)
	if !c.curAnswered {
		// Answered by a later Apply: its result goes to its session then.
		c.sess.pending[cmd.ID] = sessionKeys(cmd)[0]
	}
	c.applying, c.curSess = false, nil
}

// AlreadyExecuted implements protocols.RetryAnswerer: the retry c is
// answered from the sessions (see retried), which are left untouched, as
// is the state machine.
func (c *Core) AlreadyExecuted(cmd protocols.Command) {
	c.retried(cmd)
}

// retried answers a retry of cmd, a command executed before, once the
// records persisted so far are durable: with its kept result; with nothing
// if it awaits its answer (the state machine's answer will be its reply);
// or, if its result is no longer kept, with a Duplicate reply.
func (c *Core) retried(cmd protocols.Command) {
	c.stats.Duplicates++
	res, kept, pending := c.sess.retry(cmd)
	switch {
	case kept:
		c.reply(cmd.ID, res)
	case pending:
	case c.want == nil || c.want(cmd.ID):
		c.emit(Output{Kind: OutReply, Cmd: protocols.Command{ID: cmd.ID}, Duplicate: true}, c.holdRep)
	}
}

// reply copies result into the arena, which lives until Advance, and
// releases the answer like a send, if the driver wants it
// (Config.WantReply).
func (c *Core) reply(id protocols.CommandID, result []byte) {
	if c.want != nil && !c.want(id) {
		return
	}
	n := len(c.arena)
	c.arena = append(c.arena, result...)
	res := c.arena[n:len(c.arena):len(c.arena)]
	c.emit(Output{Kind: OutReply, Cmd: protocols.Command{ID: id}, Result: res}, c.holdRep)
}

// answers is the core's Answers: each answer is kept in its command's
// session and replied.
type answers struct{ c *Core }

// Answer implements Answers: the answer of the command being applied, or
// of a pending one, is kept in its session (a copy); an answer of any
// other id is only replied.
func (a *answers) Answer(id protocols.CommandID, result []byte) {
	c := a.c
	if c.applying && id == c.cur && !c.curAnswered {
		c.curAnswered = true
		c.curSess.keep(id.Seq, result)
	} else if k, ok := c.sess.pending[id]; ok {
		delete(c.sess.pending, id)
		c.sess.keep(k, id, result)
	}
	c.reply(id, result)
}

// Rand implements protocols.Env.
func (c *Core) Rand() *rand.Rand { return c.rand }

// ReportPath implements protocols.PathReporter.
func (c *Core) ReportPath(fast bool) {
	if fast {
		c.stats.FastPaths++
	} else {
		c.stats.SlowPaths++
	}
}

// LastCheckpoint implements protocols.StateTransfer.
func (c *Core) LastCheckpoint() (checkpoint, state []byte, ok bool) {
	if c.lastSnap == nil {
		return nil, nil, false
	}
	return c.lastSnap.Checkpoint, c.lastSnap.State, true
}

// InstallState implements protocols.StateTransfer: the state machine and
// sessions are replaced, and a checkpoint is taken after the current input.
func (c *Core) InstallState(state []byte) error {
	if c.compact == nil {
		return fmt.Errorf("replica: %T cannot take the checkpoint an installed state needs", c.proto)
	}
	if err := c.restore(state); err != nil {
		return err
	}
	c.stats.Installs++
	c.install = true
	return nil
}

// checkpoint takes a snapshot of the protocol, the sessions and the state
// machine at the current log index.
func (c *Core) checkpoint() {
	st, err := c.state()
	if err != nil {
		// A state machine that cannot snapshot keeps its log.
		c.sinceCk, c.sinceB = 0, 0
		return
	}
	c.snapshot = &Snapshot{Index: c.last, Checkpoint: c.compact.Checkpoint(), State: st}
	c.lastSnap = c.snapshot
	c.sinceCk, c.sinceB, c.stateLen = 0, 0, len(st)
	c.stats.Checkpoints++
}
