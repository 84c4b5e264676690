package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/replicated"
	"github.com/blossom-dso/blossom/dso/ring"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/replica"
	"github.com/blossom-dso/blossom/runner"
)

// Replicas runs the commands of persistent objects on this node's replicas
// of their groups. runner.Host implements it.
type Replicas interface {
	// Do submits cmd at this node's replica of group g and waits for its
	// answer until ctx ends (runner.Host.Do: runner.ErrTimeout,
	// ErrBusy, ErrDuplicate, ErrNotMember, ErrClosed).
	Do(ctx context.Context, g protocols.GroupID, cmd protocols.Command) ([]byte, error)
	// Local lists the groups this node belongs to.
	Local() []protocols.GroupID
	// Inspect runs fn on the state machine of this node's replica of
	// group g, on the goroutine that applies its commands.
	Inspect(ctx context.Context, g protocols.GroupID, fn func(replica.StateMachine)) error
}

// LevelReplicas is Replicas that also run the degradable levels of
// persistent objects: runner.Host started with HostConfig.Levels (see
// EnableLevels) implements it.
type LevelReplicas interface {
	Replicas
	// DoLevel is Do at level k of group g (k = 0 is Do; k >= 1 the
	// instance of Levels()[k-1]).
	DoLevel(ctx context.Context, g protocols.GroupID, k int, cmd protocols.Command) ([]byte, error)
	// DoLevelAt is DoLevel that also returns the log position of the
	// answer (runner.Host.DoLevelAt), at least the position whose state
	// it reflects: 0 but at the sequential level.
	DoLevelAt(ctx context.Context, g protocols.GroupID, k int, cmd protocols.Command) ([]byte, uint64, error)
	// Levels names the protocols of levels 1, 2, ...
	Levels() []string
	// InspectLevel is Inspect at level k of group g (k = 0 is Inspect).
	InspectLevel(ctx context.Context, g protocols.GroupID, k int, fn func(replica.StateMachine)) error
}

// DegradableLevels are the protocols of the levels EnableLevels adds
// beside a cluster's protocol: the sequential level (degradable.Sequential,
// host level 1) and the weak one (degradable.Weak, host level 2).
var DegradableLevels = []string{"sequential", "weak-merge"}

// EnableLevels makes cfg, made by HostConfig for the types in reg, also
// run the sequential and weak levels of persistent objects
// (DegradableLevels): one more instance of each per group, whose state
// machine is a replicated.Table of that level, and the tables' read-only
// predicate (replicated.ReadOnlyCommands) for the strategies' local
// reads.
func EnableLevels(cfg *runner.HostConfig, reg *dso.Registry) {
	cfg.Levels = slices.Clone(DegradableLevels)
	cfg.ReadOnly = replicated.ReadOnlyCommands(reg)
	cfg.NewLevelStateMachine = func(_ protocols.GroupID, k int) replica.StateMachine {
		return replicated.New(reg, replicated.Options{Level: degradable.Level(k + 1)})
	}
}

// Replication makes a server hold persistent objects: objects replicated
// on RF nodes by a protocol, whose calls are commands of the replica
// group that the ring gives the object (dso/ring.Ring.Group).
type Replication struct {
	Replicas Replicas
	// RF is the replication factor (1..len(Members)).
	RF int
	// Protocol names the protocol, for clients and logs.
	Protocol string
	// Disjoint says the groups are disjoint multicast groups (wbcast,
	// skeen): multi-object calls are allowed.
	Disjoint bool
	// MaxCalls bounds the persistent calls in flight on one connection
	// (default 4096); beyond it a call is refused with code limit.
	MaxCalls int
}

// replication is a server's state for persistent objects.
type replication struct {
	Replication
	local   map[protocols.GroupID]bool
	session *serverSession
	// declared holds the names this server bound to a level other than
	// linearizable (a declare command answered true): bindings never
	// change, so a later call at that level needs no declare.
	declared sync.Map // dso.Ref -> degradable.Level
}

func newReplication(r *Replication) *replication {
	rep := &replication{Replication: *r, local: map[protocols.GroupID]bool{}, session: newServerSession()}
	if rep.MaxCalls <= 0 {
		rep.MaxCalls = 4096
	}
	for _, g := range r.Replicas.Local() {
		rep.local[g] = true
	}
	return rep
}

// serverSession numbers the commands the server makes itself (withdrawals
// of calls whose client gave up), like a client's session.
type serverSession struct {
	id   uint64
	mu   sync.Mutex
	next uint64
	low  uint64
	open map[uint64]bool
}

func newServerSession() *serverSession {
	var b [8]byte
	var id uint64
	for id == 0 {
		rand.Read(b[:])
		id = binary.LittleEndian.Uint64(b[:])
	}
	return &serverSession{id: id, next: 1, low: 1, open: map[uint64]bool{}}
}

func (s *serverSession) begin() (protocols.CommandID, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := s.next
	s.next++
	s.open[seq] = true
	return protocols.CommandID{Client: s.id, Seq: seq}, s.low
}

func (s *serverSession) end(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, seq)
	for s.low < s.next && !s.open[s.low] {
		s.low++
	}
}

// topology is the answer to OpTopology.
func (s *Server) topology() map[string]any {
	members := make([]any, 0, len(s.cfg.Members))
	if s.ring != nil {
		for _, m := range s.ring.Nodes() {
			members = append(members, m)
		}
	}
	t := map[string]any{"members": members, "rf": int64(0), "protocol": "", "disjoint": false}
	if r := s.rep; r != nil {
		t["rf"], t["protocol"], t["disjoint"] = int64(r.RF), r.Protocol, r.Disjoint
	}
	return t
}

// groupOf returns the replica group of a persistent object and its members.
func (s *Server) groupOf(ref dso.Ref) (protocols.GroupID, []string) {
	if s.ring == nil {
		return 0, []string{s.cfg.Self}
	}
	g, members := s.ring.Group(ref.Type, ref.Key, s.rep.RF, s.rep.Disjoint)
	return protocols.GroupID(g), members
}

// errNoReplication answers persistent calls on a server without --rf.
var errNoReplication = fmt.Errorf("%w: this server holds no persistent objects (start it with --protocol and --rf)", dso.ErrFailed)

// persistentCommand checks a persistent request and builds its command:
// the group, the command and the object the call is about.
func (c *conn) persistentCommand(q *wire.Request) (protocols.GroupID, protocols.Command, error) {
	s := c.s
	if s.rep == nil {
		return 0, protocols.Command{}, errNoReplication
	}
	if q.Level > 1 {
		lr, ok := s.rep.Replicas.(LevelReplicas)
		if !ok || !slices.Equal(lr.Levels(), DegradableLevels) {
			return 0, protocols.Command{}, fmt.Errorf("%w: this cluster does not run the %v level (its servers run persistent objects without levels)", dso.ErrFailed, degradable.Level(q.Level))
		}
	}
	if q.Session == 0 || q.Seq == 0 {
		return 0, protocols.Command{}, fmt.Errorf("%w: a persistent call needs a session and a sequence number above 0", dso.ErrMalformed)
	}
	id := protocols.CommandID{Client: q.Session, Seq: q.Seq}
	var (
		refs    []dso.Ref
		payload []byte
		err     error
	)
	switch q.Op {
	case wire.OpCallP:
		ref, cerr := c.checkPart(q.Type, q.Key, q.Method, q.Ctor)
		if cerr != nil {
			return 0, protocols.Command{}, cerr
		}
		refs = []dso.Ref{ref}
		payload, err = replicated.EncodeCall(ref, q.Method, q.Args, q.Ctor)
	case wire.OpDeleteP:
		if c.rights < RightAdmin {
			return 0, protocols.Command{}, fmt.Errorf("%w: DELETE needs admin rights; this connection has %s", dso.ErrDenied, c.rights)
		}
		ref, cerr := c.checkPart(q.Type, q.Key, "", nil)
		if cerr != nil {
			return 0, protocols.Command{}, cerr
		}
		if q.Level == uint8(degradable.Weak) {
			// Its replicas execute updates in different orders: one that
			// ran before the delete at one replica and after it at
			// another would leave the object at one only.
			return 0, protocols.Command{}, fmt.Errorf("%w: %s: objects of the weak level cannot be deleted (an update concurrent with the delete would survive it at some replicas and not at others)", dso.ErrBadArgs, ref)
		}
		refs = []dso.Ref{ref}
		payload = replicated.EncodeDelete(ref)
	case wire.OpMulti:
		if !s.rep.Disjoint {
			return 0, protocols.Command{}, fmt.Errorf("%w: multi-object calls need a multicast protocol (wbcast or skeen); this cluster runs %s", dso.ErrFailed, s.rep.Protocol)
		}
		if len(q.Parts) == 0 {
			return 0, protocols.Command{}, fmt.Errorf("%w: a multi-object call needs at least one call", dso.ErrBadArgs)
		}
		calls := make([]dso.Call, len(q.Parts))
		for i, p := range q.Parts {
			ref, cerr := c.checkPart(p.Type, p.Key, p.Method, p.Ctor)
			if cerr != nil {
				return 0, protocols.Command{}, cerr
			}
			refs = append(refs, ref)
			calls[i] = dso.Call{Ref: ref, Method: p.Method, Args: p.Args, Ctor: p.Ctor}
		}
		payload, err = replicated.EncodeMulti(calls)
	}
	if err != nil {
		return 0, protocols.Command{}, fmt.Errorf("%w: %v", dso.ErrBadArgs, err)
	}
	g, members := s.groupOf(refs[0])
	if !s.rep.local[g] {
		return 0, protocols.Command{}, fmt.Errorf("%w: persistent %s is replicated on %v, not on %s", dso.ErrWrongNode, refs[0], members, s.cfg.Self)
	}
	keys := make([]string, 0, len(refs))
	for _, r := range refs {
		keys = append(keys, replicated.Key(r))
	}
	return g, protocols.Command{ID: id, Acked: q.Acked, Keys: keys, Payload: payload, Seen: q.Seen}, nil
}

// checkPart resolves the type of one call on a persistent object and
// checks the connection's rights and the key's length.
func (c *conn) checkPart(typ, key, method string, ctorArgs []any) (dso.Ref, error) {
	ctor, name, ok := c.s.reg.Lookup(typ)
	if !ok {
		return dso.Ref{}, fmt.Errorf("%w: %q", dso.ErrUnknownType, typ)
	}
	ref := dso.Ref{Type: name, Key: key}
	if len(key) > c.s.cfg.MaxKey {
		return ref, fmt.Errorf("%w: key of %d bytes; this server takes keys up to %d bytes", dso.ErrLimit, len(key), c.s.cfg.MaxKey)
	}
	if method != "" && c.rights < RightAdmin {
		obj, err := ctor(ctorArgs)
		if err != nil {
			return ref, fmt.Errorf("create %s: %w", ref, err)
		}
		if err := allowed(c.rights, ref, obj, method); err != nil {
			return ref, err
		}
	}
	return ref, nil
}

// handlePersistent runs a persistent request (OpCallP, OpDeleteP,
// OpMulti) through the object's replica group. It does not block the
// read loop: the command waits for its answer on its own goroutine, and
// the reply is queued like a parked call's.
func (c *conn) handlePersistent(req *wire.Request) {
	start := time.Now()
	q := new(wire.Request) // the read loop reuses req; the goroutine keeps q
	*q = *req
	g, cmd, err := c.persistentCommand(q)
	if err != nil {
		c.logRefusal(q, err)
		c.replyValue(q.ID, nil, err)
		return
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := context.CancelFunc(func() {})
	if q.Timeout > 0 && q.Timeout <= maxTimeoutMs {
		ctx, stop = context.WithDeadlineCause(ctx, start.Add(time.Duration(q.Timeout)*time.Millisecond),
			fmt.Errorf("%w after %d ms", dso.ErrTimeout, q.Timeout))
	}
	c.pmu.Lock()
	if c.pcalls == nil || len(c.pcalls) >= c.s.rep.MaxCalls {
		full := c.pcalls != nil
		c.pmu.Unlock()
		stop()
		cancel(nil)
		if full {
			c.replyValue(q.ID, nil, fmt.Errorf("%w: %d persistent calls in flight on this connection", dso.ErrLimit, c.s.rep.MaxCalls))
		}
		return
	}
	c.pcalls[q.ID] = cancel
	c.pmu.Unlock()
	c.s.wg.Add(1)
	go func() {
		defer c.s.wg.Done()
		v, pos, err := c.s.runPersistentAt(ctx, g, q.Level, q.Op == wire.OpCallP, cmd)
		stop()
		cancel(nil)
		c.pmu.Lock()
		if c.pcalls != nil {
			delete(c.pcalls, q.ID)
		}
		c.pmu.Unlock()
		c.s.observePersistent(q, start, err)
		if q.Level == uint8(degradable.Sequential) && err == nil {
			c.replyPos(q.ID, pos, v)
			return
		}
		c.replyParked(q.ID, 0, v, err)
	}()
}

// errConnClosed is the cause of the persistent calls of a closed
// connection.
var errConnClosed = errors.New("connection closed")

// withdrawTimeout bounds the withdrawal of a call whose client gave up.
const withdrawTimeout = 5 * time.Second

// runPersistentAt is runPersistent at degradation level level (a
// wire.Request.Level): an object of the sequential or weak level is first
// bound to its level in the group's linearizable table (once per name and
// server), then called at the group's instance of its level; a delete
// (declare false) binds nothing: it finds the object at its level or
// nothing. It also returns the log position of the answer (0 but at the
// sequential level).
func (s *Server) runPersistentAt(ctx context.Context, g protocols.GroupID, level uint8, declare bool, cmd protocols.Command) (any, uint64, error) {
	if level <= 1 {
		return s.runPersistent(ctx, g, 0, cmd)
	}
	l := degradable.Level(level)
	ref, err := replicated.ParseKey(cmd.Keys[0])
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", dso.ErrInternal, err)
	}
	if have, ok := s.rep.declared.Load(ref); declare && (!ok || have != l) {
		id, acked := s.rep.session.begin()
		v, _, err := s.runPersistent(ctx, g, 0, protocols.Command{ID: id, Acked: acked, Keys: cmd.Keys[:1], Payload: replicated.EncodeDeclare(ref, l)})
		s.rep.session.end(id.Seq)
		if err != nil {
			return nil, 0, err
		}
		if v != true {
			return nil, 0, fmt.Errorf("%w: binding %s to the %v level answered %v", dso.ErrInternal, ref, l, v)
		}
		s.rep.declared.Store(ref, l)
	}
	return s.runPersistent(ctx, g, int(level)-1, cmd)
}

// do submits cmd at level k (0: the group's protocol) of group g; it also
// returns the answer's log position (0 but at the sequential level).
func (r *replication) do(ctx context.Context, g protocols.GroupID, k int, cmd protocols.Command) ([]byte, uint64, error) {
	if k == 0 {
		res, err := r.Replicas.Do(ctx, g, cmd)
		return res, 0, err
	}
	return r.Replicas.(LevelReplicas).DoLevelAt(ctx, g, k, cmd)
}

// runPersistent submits cmd to this node's replica of group g (at level
// k: 0 the group's protocol, else the instance of DegradableLevels[k-1])
// and decodes its answer, returned with its log position. If ctx ends first (deadline, cancel, closed connection), a
// call that may be parked is withdrawn by a command of the server's own
// session, so every replica forgets it alike; if it was released just
// before, its result is fetched and returned instead.
func (s *Server) runPersistent(ctx context.Context, g protocols.GroupID, k int, cmd protocols.Command) (any, uint64, error) {
	res, pos, err := s.rep.do(ctx, g, k, cmd)
	if err == nil {
		v, err := replicated.DecodeResult(res)
		return v, pos, err
	}
	if ctx.Err() == nil {
		return nil, 0, replicationError(err)
	}
	why := context.Cause(ctx)
	closed := errors.Is(why, errConnClosed)
	code := wire.CodeCanceled
	if errors.Is(why, dso.ErrTimeout) {
		code = wire.CodeTimeout
	} else {
		why = fmt.Errorf("%w: %v", dso.ErrCanceled, why)
	}
	wctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	id, acked := s.rep.session.begin()
	defer s.rep.session.end(id.Seq)
	// A client that gave up (deadline, cancel) is told the call had no
	// effect, so the call must never run afterwards; a client whose
	// connection closed may be retrying it through another replica, so
	// only a parked call is withdrawn (it would count a party that left).
	payload := replicated.EncodeWithdraw(cmd.ID, code, why.Error())
	if closed {
		payload = replicated.EncodeWithdrawParked(cmd.ID, code, why.Error())
	}
	wcmd := protocols.Command{ID: id, Acked: acked, Keys: cmd.Keys[:1], Payload: payload}
	wres, _, werr := s.rep.do(wctx, g, k, wcmd)
	if werr == nil {
		if v, _ := replicated.DecodeResult(wres); v == true {
			return nil, 0, why
		}
		// Not parked: it was answered meanwhile, or has not executed yet.
		// A retry gets the kept result of the first.
		if res, pos, err := s.rep.do(wctx, g, k, cmd); err == nil {
			v, err := replicated.DecodeResult(res)
			return v, pos, err
		}
	}
	return nil, 0, why
}

// replicationError turns a runner error into the error a client sees.
func replicationError(err error) error {
	switch {
	case errors.Is(err, runner.ErrTimeout):
		return fmt.Errorf("%w: the replicas did not agree in time (outcome unknown; the client retries with the same session and number)", dso.ErrTimeout)
	case errors.Is(err, runner.ErrBusy):
		return fmt.Errorf("%w: too many calls waiting on this node's replica", dso.ErrLimit)
	case errors.Is(err, runner.ErrDuplicate):
		return fmt.Errorf("%w: this call executed before and its result is no longer kept (the client acknowledged a later call)", dso.ErrFailed)
	case errors.Is(err, runner.ErrNotMember):
		return fmt.Errorf("%w: %v", dso.ErrWrongNode, err)
	}
	return fmt.Errorf("%w: replication: %v", dso.ErrInternal, err)
}

// observePersistent counts a persistent call in the server's metrics.
func (s *Server) observePersistent(q *wire.Request, start time.Time, err error) {
	typ := q.Type
	if q.Op == wire.OpMulti && len(q.Parts) > 0 {
		typ = q.Parts[0].Type
	}
	_, name, ok := s.reg.Lookup(typ)
	if !ok {
		return
	}
	method := q.Method
	switch q.Op {
	case wire.OpMulti:
		method = "(multi)"
	case wire.OpDeleteP:
		method = "(delete)"
	}
	s.observe(s.table(name, true), name, method, start, err)
}

// cancelPersistent cancels the persistent call id of the connection, if
// it is in flight (OpCancel).
func (c *conn) cancelPersistent(id uint64) {
	c.pmu.Lock()
	cancel := c.pcalls[id]
	c.pmu.Unlock()
	if cancel != nil {
		cancel(errors.New("canceled by the client"))
	}
}

// listTimeout bounds the listing of one group's persistent objects.
const listTimeout = 2 * time.Second

// listPersistent lists the persistent objects of this node's replicas
// whose type starts with prefix, as [type, key, "persistent"] entries for
// the linearizable level and [type, key, "persistent", level] for the
// others (an object appears once however many of its replicas this node
// holds).
func (s *Server) listPersistent(prefix string) []any {
	if s.rep == nil {
		return nil
	}
	type id struct {
		ref dso.Ref
		k   int
	}
	seen := map[id]bool{}
	var out []any
	levels := 0
	lr, ok := s.rep.Replicas.(LevelReplicas)
	if ok {
		levels = len(lr.Levels())
	}
	for g := range s.rep.local {
		for k := 0; k <= levels; k++ {
			ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
			list := func(sm replica.StateMachine) {
				t, ok := sm.(*replicated.Table)
				if !ok {
					return
				}
				for _, r := range t.List(prefix) {
					if seen[id{r, k}] {
						continue
					}
					seen[id{r, k}] = true
					e := []any{r.Type, r.Key, "persistent"}
					if k > 0 {
						e = append(e, degradable.Level(k+1).String())
					}
					out = append(out, e)
				}
			}
			var err error
			if k == 0 {
				err = s.rep.Replicas.Inspect(ctx, g, list)
			} else {
				err = lr.InspectLevel(ctx, g, k, list)
			}
			cancel()
			if err != nil {
				s.log.Warn("dso: could not list the persistent objects of a group", "group", g, "level", k, "err", err)
			}
		}
	}
	return out
}

// HostConfig returns the runner.HostConfig of the node self of a cluster
// whose nodes' client endpoints are members (self included; duplicates
// ignored), for persistent objects of the types in reg replicated by
// protocol with replication factor rf: nodes are numbered 1..n in the
// sorted order of their endpoints (the ring's order, so that the runner's
// groups are dso/ring's), each local group's state machine is a
// replicated.Table (owning only its group's objects under a multicast
// protocol, whose GroupOf maps an object key to its group), and peerAddr
// gives each node's replica-to-replica address. The caller fills in the
// data dir, transport and timing fields. It also reports whether the
// groups are disjoint (Replication.Disjoint).
func HostConfig(members []string, self, protocol string, rf int, reg *dso.Registry, peerAddr func(endpoint string) (string, error)) (runner.HostConfig, bool, error) {
	nodes := slices.Compact(slices.Sorted(slices.Values(members)))
	if rf > len(nodes) {
		return runner.HostConfig{}, false, fmt.Errorf("--rf %d is larger than the cluster (%d nodes): valid values are 1..%d", rf, len(nodes), len(nodes))
	}
	rg, err := ring.New(nodes, 0)
	if err != nil {
		return runner.HostConfig{}, false, err
	}
	cfg := runner.HostConfig{Peers: map[protocols.NodeID]string{}, Protocol: protocol, RF: rf}
	for i, ep := range nodes {
		a, err := peerAddr(ep)
		if err != nil {
			return runner.HostConfig{}, false, err
		}
		cfg.Peers[protocols.NodeID(i+1)] = a
		if ep == self {
			cfg.ID = protocols.NodeID(i + 1)
		}
	}
	if cfg.ID == 0 {
		return runner.HostConfig{}, false, fmt.Errorf("this node's endpoint %s is not among the members %v", self, nodes)
	}
	disjoint := runner.Multicast(protocol)
	groupOf := func(ref dso.Ref) protocols.GroupID {
		g, _ := rg.Group(ref.Type, ref.Key, rf, disjoint)
		return protocols.GroupID(g)
	}
	cfg.NewStateMachine = func(g protocols.GroupID) replica.StateMachine {
		o := replicated.Options{}
		if disjoint {
			o.Owns = func(ref dso.Ref) bool { return groupOf(ref) == g }
		}
		return replicated.New(reg, o)
	}
	if disjoint {
		cfg.GroupOf = func(key string) protocols.GroupID {
			ref, err := replicated.ParseKey(key)
			if err != nil {
				return 0
			}
			return groupOf(ref)
		}
	}
	return cfg, disjoint, nil
}
