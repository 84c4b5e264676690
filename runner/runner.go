package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pingcap/failpoint"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/replica"
	"github.com/blossom-dso/blossom/storage/wal"
	"github.com/blossom-dso/blossom/transport"
)

// Config configures a replica process.
type Config struct {
	// ID is this replica; it must be a key of Peers.
	ID protocols.NodeID
	// Peers maps every replica (this one included) to its replica-to-replica
	// address.
	Peers map[protocols.NodeID]string
	// Protocol is a registered protocol name.
	Protocol string
	// F is the number of failures tolerated (per group with Groups, among
	// Members with Members).
	F int
	// Groups is the number of multicast groups of 2F+1 replicas each
	// (wbcast, skeen); 0 means full replication.
	Groups int
	// DataDir holds the write-ahead log and snapshots. Required.
	DataDir string
	// Tick is the protocol's tick interval (default 10ms).
	Tick time.Duration
	// SuspectTicks is passed to the protocol (default 10).
	SuspectTicks int
	// CompactEvery takes a checkpoint after every CompactEvery records
	// (default 10000; negative never).
	CompactEvery int
	// Cluster names the deployment; peers of another cluster are refused.
	Cluster string
	// ClientAddr is the HTTP client API's listen address; "" serves none.
	ClientAddr string
	// RequestTimeout bounds how long a client call waits (default 5s).
	RequestTimeout time.Duration
	// MaxWaiting bounds the client calls waiting at once (default 10000).
	MaxWaiting int
	// Seed seeds the protocol's random source (default: random).
	Seed uint64
	// NoSync skips fsync (benchmarks of the protocol alone; not durable).
	NoSync bool
	// SegmentBytes is the size at which the log starts a new segment file
	// (default 8 MiB). A snapshot frees only whole segments, so smaller
	// segments free disk sooner.
	SegmentBytes int64
	// Network, if set, carries the replica-to-replica messages instead of
	// TCP: an in-memory network for tests, which can partition and heal
	// links (Peers' addresses are then only names).
	Network *transport.Network
	// StateMachine is the replicated application; nil means a new KV (the
	// key-value store of `blossom replica`). The HTTP client API serves
	// /kv only over a KV; /status is served whatever the state machine.
	StateMachine replica.StateMachine
	// Members, if not nil, are the replicas of this replica's group when
	// the protocol runs over a subset of Peers: the protocol's peers are
	// Members (sorted), F counts failures among them, and the transport
	// links only them. Members must hold ID and only keys of Peers; it
	// excludes Groups. Nil means every replica of Peers.
	Members []protocols.NodeID
	// ReadOnly, if set, is passed to the protocol (protocols.Config):
	// it tells the commands that only read the state machine, which the
	// non-linearizable strategies (sequential, weak, weak-merge) serve
	// locally; weak and weak-merge require it.
	ReadOnly func(protocols.Command) bool
	// Logger receives the replica's logs (default slog.Default()).
	Logger *slog.Logger
	// Snapshots, if not nil, keeps the replica's snapshots instead of
	// snapshot files in DataDir (wal.Options.Snapshots; a pmem heap, with
	// pmem/snapstore); the log's records stay in DataDir.
	Snapshots wal.SnapshotStore
}

// input is one event for the core goroutine.
type input struct {
	kind    inputKind
	from    protocols.NodeID
	msg     protocols.Message
	cmd     protocols.Command
	call    *call
	status  chan Status
	inspect *inspection
}

type inputKind uint8

const (
	inStep inputKind = iota + 1
	inSubmit
	inForget
	inStatus
	inInspect
)

// inspection is a function to run on the core goroutine for Inspect.
type inspection struct {
	fn func(replica.StateMachine)
	// state is inspectWaiting until the core takes the inspection
	// (inspectTaken) or its caller gives up on it (inspectAbandoned),
	// whichever comes first: an abandoned function never runs.
	state atomic.Int32
	done  chan struct{} // closed once fn returned
}

const (
	inspectWaiting int32 = iota
	inspectTaken
	inspectAbandoned
)

// call is a client call waiting for its command's answer.
type call struct {
	done     chan answer   // buffered 1: the core never blocks on it
	executed chan struct{} // closed when this replica applies the command
}

// answer is a command's result, or the news that it executed before, and
// the protocol's log position when it was released (protocols.Position).
type answer struct {
	res []byte
	pos uint64
	dup bool
}

// Status describes a replica, for GET /status and tests.
type Status struct {
	ID       protocols.NodeID `json:"id"`
	Protocol string           `json:"protocol"`
	// Group is the replica's group: its replica group under a Host, its
	// multicast group with Config.Groups, else 0.
	Group         protocols.GroupID `json:"group"`
	LastIndex     uint64            `json:"last_index"`
	DurableIndex  uint64            `json:"durable_index"`
	SnapshotIndex uint64            `json:"snapshot_index"`
	Leader        protocols.NodeID  `json:"leader,omitempty"`
	Executed      int64             `json:"executed"`
	Duplicates    int64             `json:"duplicates"`
	Waiting       int               `json:"waiting"`
	// Keys is the number of keys of a state machine that counts them
	// (one with a Len() int method, as KV); nil, and omitted in JSON,
	// for any other.
	Keys *int `json:"keys,omitempty"`
	// Compacts says the protocol implements protocols.Compactor.
	Compacts bool `json:"compacts"`
	// LocalReads and LoggedReads count, for a protocol that serves reads
	// locally (protocols.ReadCounter: the sequential level), the reads
	// this incarnation served from its local state and those it sent
	// through the log; 0 for any other.
	LocalReads  int64 `json:"local_reads,omitempty"`
	LoggedReads int64 `json:"logged_reads,omitempty"`
	// Level is, for a level instance of a Host (Host.LevelStatus), its
	// level k >= 1 (HostConfig.Levels[k-1]); 0 otherwise.
	Level int `json:"level,omitempty"`
}

// Replica is a running replica: one goroutine owns the replica core and
// its state machine; a syncer goroutine makes the log durable (group
// commit) and writes snapshots; the transport and the HTTP server feed the
// core through a bounded inbox.
type Replica struct {
	cfg   Config
	log   *slog.Logger
	wal   *wal.Log
	tr    transport.Transport
	sm    replica.StateMachine
	core  *replica.Core
	inbox chan input

	// syncer
	syncMu    sync.Mutex
	syncWant  uint64 // highest index written and not yet asked to sync
	snapsWant []replica.Snapshot
	syncKick  chan struct{}
	synced    chan uint64 // indexes made durable, for the core goroutine
	syncErr   atomic.Pointer[error]

	// core goroutine state
	waiting  map[protocols.CommandID][]*call
	group    protocols.GroupID  // this replica's multicast group (Groups > 0)
	pending  []replica.Snapshot // taken, waiting for their records
	snapshot atomic.Uint64      // index of the last snapshot saved

	// ackBeforeWrite sabotage: the late writes, in order
	late     chan lateWrite
	lateOnce sync.Once

	httpSrv *http.Server
	httpLn  net.Listener
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closed  atomic.Bool
	stopped chan struct{} // closed when the core goroutine ends
}

// hosting is how a Host runs a replica: over the host's shared transport
// and, in multicast mode, with the whole group layout.
type hosting struct {
	// tr sends this instance's messages over the host's transport; the
	// replica does not own it.
	tr transport.Transport
	// group is the replica's group.
	group protocols.GroupID
	// groups and groupOf are the multicast layout and key mapping; nil
	// in ring mode.
	groups  map[protocols.GroupID][]protocols.NodeID
	groupOf func(key string) protocols.GroupID
}

// sizer is a state machine that counts its keys (Status.Keys).
type sizer interface{ Len() int }

// ErrClosed is returned by calls on a closed replica.
var ErrClosed = errors.New("runner: replica closed")

// Start opens the data dir, recovers the core from the last snapshot and
// the records after it, connects to the peers and serves the client API.
func Start(cfg Config) (*Replica, error) {
	return start(cfg, nil)
}

// start is Start, or with h a replica of a Host: then the replica sends
// over h.tr (which it does not own) and is fed by the host's dispatcher.
func start(cfg Config, h *hosting) (*Replica, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	spec, err := protocols.Lookup(cfg.Protocol)
	if err != nil {
		return nil, err
	}
	r := &Replica{
		cfg: cfg, log: cfg.Logger.With("replica", cfg.ID), sm: cfg.StateMachine,
		inbox: make(chan input, 8192), syncKick: make(chan struct{}, 1), synced: make(chan uint64, 1),
		waiting: map[protocols.CommandID][]*call{}, stopped: make(chan struct{}),
	}
	if r.sm == nil {
		r.sm = NewKV()
	}
	switch {
	case h != nil:
		r.group = h.group
	case cfg.Groups > 0:
		r.group = protocols.GroupID((int(cfg.ID) - 1) / (2*cfg.F + 1))
	}
	t0 := time.Now()
	l, rec, err := wal.Open(wal.Options{Dir: cfg.DataDir, NoSync: cfg.NoSync, SegmentBytes: cfg.SegmentBytes, Logger: r.log, Snapshots: cfg.Snapshots})
	if err != nil {
		return nil, err
	}
	r.wal = l
	var snap *replica.Snapshot
	if rec.Snapshot != nil {
		snap = new(replica.Snapshot)
		if err := snap.UnmarshalBinary(rec.Snapshot); err != nil {
			l.Close()
			return nil, fmt.Errorf("runner: snapshot in %s: %w", cfg.DataDir, err)
		}
		if snap.Index != rec.SnapshotIndex {
			l.Close()
			return nil, fmt.Errorf("runner: snapshot in %s says index %d, its file %d", cfg.DataDir, snap.Index, rec.SnapshotIndex)
		}
		r.snapshot.Store(snap.Index)
	}
	pc, err := cfg.protocolConfig(h)
	if err != nil {
		l.Close()
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	core, err := replica.New(replica.Config{
		Spec: spec, Protocol: pc, StateMachine: r.sm, Rand: rand.New(rand.NewPCG(seed, uint64(cfg.ID))),
		Snapshot: snap, Records: rec.Records, CompactEvery: max(cfg.CompactEvery, 0), HoldReplies: true,
	})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("runner: recover %s: %w", cfg.DataDir, err)
	}
	r.core = core
	attrs := []any{"protocol", cfg.Protocol, "snapshot_index", r.snapshot.Load(), "records", len(rec.Records)}
	if sz, ok := r.sm.(sizer); ok {
		attrs = append(attrs, "keys", sz.Len())
	}
	r.log.Info("recovered", append(attrs, "took", time.Since(t0).Round(time.Microsecond))...)

	switch {
	case h != nil:
		r.tr = h.tr
	case cfg.Network != nil:
		r.tr = cfg.Network.Join(cfg.ID, r.deliver)
	default:
		tr, err := transport.NewTCP(transport.Config{
			Cluster: cfg.Cluster, Self: cfg.ID, Listen: cfg.Peers[cfg.ID], Peers: cfg.linkedPeers(),
			Codec: spec.Codec, Handler: r.deliver, Logger: r.log,
		})
		if err != nil {
			l.Close()
			return nil, err
		}
		r.tr = tr
	}
	if cfg.ClientAddr != "" {
		if err := r.serveHTTP(); err != nil {
			r.tr.Close()
			l.Close()
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(2)
	go r.run(ctx)
	go r.syncer(ctx)
	return r, nil
}

func (c *Config) defaults() error {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Tick <= 0 {
		c.Tick = 10 * time.Millisecond
	}
	if c.CompactEvery == 0 {
		c.CompactEvery = 10000
	}
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 8 << 20
	}
	if c.Cluster == "" {
		c.Cluster = "blossom"
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.MaxWaiting <= 0 {
		c.MaxWaiting = 10000
	}
	switch {
	case c.DataDir == "":
		return errors.New("runner: a data dir is required")
	case c.Peers[c.ID] == "":
		return fmt.Errorf("runner: replica %d has no address among the peers", c.ID)
	case c.Groups < 0:
		return errors.New("runner: negative group count")
	case c.Members != nil && c.Groups > 0:
		return errors.New("runner: Members and Groups exclude each other")
	case c.Members != nil && !slices.Contains(c.Members, c.ID):
		return fmt.Errorf("runner: replica %d is not among its members %v", c.ID, c.Members)
	}
	for i, m := range c.Members {
		if c.Peers[m] == "" {
			return fmt.Errorf("runner: member %d has no address among the peers", m)
		}
		if slices.Contains(c.Members[:i], m) {
			return fmt.Errorf("runner: member %d listed twice", m)
		}
	}
	if c.Groups > 0 && len(c.Peers) != c.Groups*(2*c.F+1) {
		return fmt.Errorf("runner: %d groups of 2f+1=%d replicas need %d peers, got %d", c.Groups, 2*c.F+1, c.Groups*(2*c.F+1), len(c.Peers))
	}
	return nil
}

// protocolConfig builds the protocol's Config from the deployment (and
// the host's multicast layout, if h has one).
func (c *Config) protocolConfig(h *hosting) (protocols.Config, error) {
	var ids []protocols.NodeID
	if c.Members != nil {
		ids = slices.Sorted(slices.Values(c.Members))
	} else {
		ids = slices.Sorted(maps.Keys(c.Peers))
	}
	pc := protocols.Config{Self: c.ID, Peers: ids, F: c.F, SuspectTicks: c.SuspectTicks, ReadOnly: c.ReadOnly}
	switch {
	case h != nil && h.groups != nil:
		pc.Groups, pc.GroupOf = h.groups, h.groupOf
	case c.Groups > 0:
		groups := c.Groups
		pc.Groups = mcast.Groups(groups, 2*c.F+1)
		pc.GroupOf = func(key string) protocols.GroupID { return GroupOf(key, groups) }
	}
	return pc, nil
}

// linkedPeers are the peers the replica's own transport links: Members'
// addresses if set, else every peer's.
func (c *Config) linkedPeers() map[protocols.NodeID]string {
	if c.Members == nil {
		return c.Peers
	}
	out := make(map[protocols.NodeID]string, len(c.Members))
	for _, m := range c.Members {
		out[m] = c.Peers[m]
	}
	return out
}

// inGroup reports whether this replica orders key's commands.
func (r *Replica) inGroup(key string) bool {
	if r.cfg.Groups == 0 {
		return true
	}
	return GroupOf(key, r.cfg.Groups) == r.group
}

// deliver is the transport's handler: it enqueues a step, dropping it when
// the inbox is full (the protocol retransmits).
func (r *Replica) deliver(from protocols.NodeID, m protocols.Message) {
	select {
	case r.inbox <- input{kind: inStep, from: from, msg: m}:
	default:
	}
}

// maxBatch bounds the inputs the core goroutine takes before it carries
// out their effects.
const maxBatch = 256

// run is the core goroutine.
func (r *Replica) run(ctx context.Context) {
	defer r.wg.Done()
	defer close(r.stopped)
	tick := time.NewTicker(r.cfg.Tick)
	defer tick.Stop()
	r.process()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.core.Tick()
		case idx := <-r.synced:
			r.core.Synced(idx)
			r.savePending(idx)
		case in := <-r.inbox:
			r.handle(in)
			// Take what else is waiting, so that one log write and one
			// round of sends serve many inputs.
			for range maxBatch {
				select {
				case in := <-r.inbox:
					r.handle(in)
					continue
				default:
				}
				break
			}
		}
		r.process()
	}
}

func (r *Replica) handle(in input) {
	switch in.kind {
	case inStep:
		r.core.Step(in.from, in.msg)
	case inSubmit:
		if w, ok := r.waiting[in.cmd.ID]; ok {
			r.waiting[in.cmd.ID] = append(w, in.call)
			return
		}
		if len(r.waiting) >= r.cfg.MaxWaiting {
			close(in.call.done)
			return
		}
		r.waiting[in.cmd.ID] = []*call{in.call}
		r.core.Submit(in.cmd)
	case inForget:
		w := slices.DeleteFunc(r.waiting[in.cmd.ID], func(c *call) bool { return c == in.call })
		if len(w) == 0 {
			delete(r.waiting, in.cmd.ID)
		} else {
			r.waiting[in.cmd.ID] = w
		}
	case inStatus:
		in.status <- r.status()
	case inInspect:
		if in.inspect.state.CompareAndSwap(inspectWaiting, inspectTaken) {
			defer close(in.inspect.done)
			in.inspect.fn(r.sm)
		}
	}
}

// process carries out the core's Ready.
func (r *Replica) process() {
	rd := r.core.Ready()
	if rd.Empty() {
		return
	}
	var early uint64 // ackBeforeWrite: the records count as durable at once
	if len(rd.Records) > 0 {
		last := rd.FirstIndex + uint64(len(rd.Records)) - 1
		ackEarly := false
		failpoint.Inject("ackBeforeWrite", func() { ackEarly = true })
		if ackEarly {
			r.writeLater(slices.Clone(rd.Records), last)
			early = last
		} else if _, err := r.wal.Write(rd.Records...); err != nil {
			r.fail(err)
		} else {
			r.wantSync(last)
		}
	}
	for i := range rd.Outputs {
		o := &rd.Outputs[i]
		switch o.Kind {
		case replica.OutSend:
			r.tr.Send(o.To, o.Msg)
		case replica.OutExec:
			// The command is ordered and applied; an answer that is still
			// to come waits on the state machine (a parked call), not on
			// the replicas, so RequestTimeout no longer bounds it.
			for _, c := range r.waiting[o.Cmd.ID] {
				select {
				case <-c.executed:
				default:
					close(c.executed)
				}
			}
		case replica.OutReply:
			if w, ok := r.waiting[o.Cmd.ID]; ok {
				delete(r.waiting, o.Cmd.ID)
				a := answer{res: slices.Clone(o.Result), pos: protocols.Position(r.core.Protocol()), dup: o.Duplicate}
				if a.res == nil {
					a.res = []byte{}
				}
				for _, c := range w {
					c.done <- a
				}
			}
		}
	}
	if rd.Snapshot != nil {
		s := *rd.Snapshot
		s.Checkpoint, s.State = slices.Clone(s.Checkpoint), slices.Clone(s.State)
		r.pending = append(r.pending, s)
	}
	r.core.Advance()
	if early > 0 {
		// Only after Advance: the outputs Synced releases join the next
		// Ready, which Advance would otherwise drop with this one.
		r.core.Synced(early)
		r.process()
	}
	r.savePending(r.core.DurableIndex())
}

// lateWrite is a batch of records the ackBeforeWrite sabotage writes late.
type lateWrite struct {
	recs [][]byte
	last uint64
	due  time.Time
}

// writeLater is the ackBeforeWrite sabotage: the records count as durable
// at once (the caller tells the core) and reach the log 200ms later, in
// order.
func (r *Replica) writeLater(recs [][]byte, last uint64) {
	r.lateOnce.Do(func() {
		r.late = make(chan lateWrite, 1<<16)
		go func() {
			for w := range r.late {
				time.Sleep(time.Until(w.due))
				if _, err := r.wal.Write(w.recs...); err != nil {
					r.fail(err)
					return
				}
				r.wantSync(w.last)
			}
		}()
	})
	r.late <- lateWrite{recs: recs, last: last, due: time.Now().Add(200 * time.Millisecond)}
}

// savePending hands the syncer the newest pending snapshot whose records
// are durable.
func (r *Replica) savePending(durable uint64) {
	k := -1
	for i := range r.pending {
		if r.pending[i].Index <= durable {
			k = i
		}
	}
	if k < 0 {
		return
	}
	s := r.pending[k]
	r.pending = slices.Delete(r.pending, 0, k+1)
	r.syncMu.Lock()
	r.snapsWant = append(r.snapsWant, s)
	r.syncMu.Unlock()
	r.kick()
}

func (r *Replica) wantSync(last uint64) {
	r.syncMu.Lock()
	r.syncWant = max(r.syncWant, last)
	r.syncMu.Unlock()
	r.kick()
}

func (r *Replica) kick() {
	select {
	case r.syncKick <- struct{}{}:
	default:
	}
}

// syncer makes the log durable: each round syncs everything written so
// far (records written during an fsync share the next one) and then writes
// the snapshots whose records are durable.
func (r *Replica) syncer(ctx context.Context) {
	defer r.wg.Done()
	var done uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.syncKick:
		}
		r.syncMu.Lock()
		want, snaps := r.syncWant, r.snapsWant
		r.snapsWant = nil
		r.syncMu.Unlock()
		if want > done {
			if err := r.wal.Sync(); err != nil {
				r.fail(err)
				return
			}
			done = want
			// Coalesce: keep only the newest index for the core.
			select {
			case old := <-r.synced:
				done = max(done, old)
			default:
			}
			r.synced <- done
		}
		for _, s := range snaps {
			b, _ := s.MarshalBinary()
			if err := r.wal.SaveSnapshot(s.Index, b); err != nil {
				r.log.Error("snapshot not saved", "index", s.Index, "err", err)
				continue
			}
			r.snapshot.Store(s.Index)
			r.log.Debug("snapshot saved", "index", s.Index, "bytes", len(b))
		}
	}
}

// fail stops the replica after a storage error: it must not go on acting
// on records it could not make durable.
func (r *Replica) fail(err error) {
	if r.syncErr.CompareAndSwap(nil, &err) {
		r.log.Error("storage failed; the replica stops", "err", err)
		go r.Close()
	}
}

func (r *Replica) status() Status {
	st := r.core.Stats()
	s := Status{
		ID: r.cfg.ID, Protocol: r.cfg.Protocol, Group: r.group, LastIndex: r.core.LastIndex(), DurableIndex: r.core.DurableIndex(),
		SnapshotIndex: r.snapshot.Load(), Executed: st.Executed, Duplicates: st.Duplicates, Waiting: len(r.waiting),
	}
	if sz, ok := r.sm.(sizer); ok {
		n := sz.Len()
		s.Keys = &n
	}
	if lr, ok := r.core.Protocol().(protocols.LeaderReporter); ok {
		s.Leader = lr.Leader()
	}
	_, s.Compacts = r.core.Protocol().(protocols.Compactor)
	if rc, ok := r.core.Protocol().(protocols.ReadCounter); ok {
		s.LocalReads, s.LoggedReads = rc.ReadCounts()
	}
	return s
}

// Status returns the replica's status, read on the core goroutine.
func (r *Replica) Status(ctx context.Context) (Status, error) {
	ch := make(chan Status, 1)
	if err := r.enqueue(ctx, input{kind: inStatus, status: ch}); err != nil {
		return Status{}, err
	}
	select {
	case s := <-ch:
		return s, nil
	case <-ctx.Done():
		return Status{}, ctx.Err()
	case <-r.stopped:
		return Status{}, ErrClosed
	}
}

// Inspect runs fn with the replica's state machine on the core goroutine,
// between two inputs, and returns once fn returned. fn must only read the
// state machine, must not keep it, and should be quick: the replica does
// nothing else meanwhile. If ctx ends or the replica closes before the core
// takes fn, fn never runs and Inspect returns ctx's error or ErrClosed; once
// taken, fn runs to its end and Inspect returns nil.
func (r *Replica) Inspect(ctx context.Context, fn func(replica.StateMachine)) error {
	in := &inspection{fn: fn, done: make(chan struct{})}
	if err := r.enqueue(ctx, input{kind: inInspect, inspect: in}); err != nil {
		return err
	}
	var err error
	select {
	case <-in.done:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-r.stopped:
		err = ErrClosed
	}
	if in.state.CompareAndSwap(inspectWaiting, inspectAbandoned) {
		return err
	}
	<-in.done // taken: it runs to its end
	return nil
}

func (r *Replica) enqueue(ctx context.Context, in input) error {
	if r.closed.Load() {
		return ErrClosed
	}
	select {
	case r.inbox <- in:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Errors of Do.
var (
	// ErrTimeout: the call's outcome is unknown; retry it with the same id.
	ErrTimeout = errors.New("runner: no answer in time (outcome unknown)")
	// ErrBusy: too many calls are waiting; the command was not submitted.
	ErrBusy = errors.New("runner: too many waiting calls")
	// ErrDuplicate: the command executed before (a retry of an answered
	// or timed-out call); it took effect once, and its result is no longer kept (the client acknowledged a later call).
	ErrDuplicate = errors.New("runner: executed before; its result is not kept")
)

// Do submits cmd at this replica and waits for its answer until ctx ends;
// RequestTimeout bounds the wait until this replica applies the command
// (after that, an answer that is still to come waits on the state
// machine, like a barrier's await, for as long as ctx allows). A second Do of the same command id
// while the first waits joins it. A retry of a command that executed
// before gets the first execution's result, or ErrDuplicate once that
// result is no longer kept (its client acknowledged a later command).
func (r *Replica) Do(ctx context.Context, cmd protocols.Command) ([]byte, error) {
	res, _, err := r.DoAt(ctx, cmd)
	return res, err
}

// DoAt is Do that also returns the protocol's log position when the answer
// left (protocols.Positioner; 0 for a protocol without positions): at
// least the position whose state the answer reflects. A client of the
// sequential level passes the greatest it got back as Command.Seen.
func (r *Replica) DoAt(ctx context.Context, cmd protocols.Command) ([]byte, uint64, error) {
	limit := time.NewTimer(r.cfg.RequestTimeout)
	defer limit.Stop()
	c := &call{done: make(chan answer, 1), executed: make(chan struct{})}
	ectx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
	err := r.enqueue(ectx, input{kind: inSubmit, cmd: cmd, call: c})
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, 0, ErrTimeout
		}
		return nil, 0, err
	}
	executed := c.executed
	for {
		select {
		case a, ok := <-c.done:
			switch {
			case !ok:
				return nil, 0, ErrBusy
			case a.dup:
				return nil, 0, ErrDuplicate
			}
			return a.res, a.pos, nil
		case <-executed:
			limit.Stop()
			executed = nil
			continue
		case <-limit.C:
		case <-ctx.Done():
		case <-r.stopped:
			// The replica closed with the call executed, or not yet:
			// nobody will answer it here. Its outcome is unknown, as
			// after a timeout, and a retry elsewhere is safe.
			select {
			case a, ok := <-c.done:
				if ok && !a.dup {
					return a.res, a.pos, nil
				}
			default:
			}
			return nil, 0, fmt.Errorf("%w: the replica closed before it answered", ErrTimeout)
		}
		fctx, fcancel := context.WithTimeout(context.Background(), time.Second)
		_ = r.enqueue(fctx, input{kind: inForget, cmd: cmd, call: c})
		fcancel()
		return nil, 0, ErrTimeout
	}
}

// Close stops the replica: the client API, the core, the syncer, the
// transport and the log. Calls still waiting fail at once with ErrTimeout
// (their outcome is unknown).
func (r *Replica) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	if r.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = r.httpSrv.Shutdown(ctx)
		cancel()
	}
	r.cancel()
	r.wg.Wait()
	err := r.tr.Close()
	if e := r.wal.Close(); err == nil {
		err = e
	}
	return err
}
