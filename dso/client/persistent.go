package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/ring"
	"github.com/blossom-dso/blossom/dso/wire"
)

// ErrNoReplication is returned by calls on persistent objects when the
// cluster's servers were started without replication (no --rf).
var ErrNoReplication = errors.New("dso/client: the cluster holds no persistent objects (start its servers with --protocol and --rf)")

// Topology is a cluster's layout as its servers describe it.
type Topology struct {
	// Members are the nodes' endpoints, sorted (the ring's nodes).
	Members []string
	// RF is the replication factor of persistent objects; 0 means the
	// cluster keeps only ephemeral objects.
	RF int
	// Protocol names the replication protocol ("" without replication).
	Protocol string
	// Disjoint is true when the replica groups are disjoint multicast
	// groups (wbcast, skeen), which alone allow multi-object calls.
	Disjoint bool
}

// session numbers the commands of one Client on persistent objects: a
// retry keeps its number, and the acknowledgement watermark tells the
// servers which answers the client holds.
//
// A replay session (Client.ReplaySession) numbers its k-th call k<<8 and
// a reissue of it k<<8+1, k<<8+2, ..., and acknowledges nothing.
type session struct {
	id     uint64
	mu     sync.Mutex
	next   uint64          // the next sequence number (replay: call number)
	low    uint64          // every seq below low is done
	open   map[uint64]bool // seqs handed out and not done
	replay bool
	// seen holds, per replica group, the greatest log position the
	// session was answered at the sequential level (wire.Reply.Position),
	// sent with its next calls there (wire.Command.Seen).
	seen map[int]uint64
}

// replayShift makes room for the reissues of a replay session's call.
const replayShift = 8

func newSession() *session {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err) // crypto/rand does not fail on supported systems
		}
		if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
			return &session{id: id, next: 1, low: 1, open: map[uint64]bool{}}
		}
	}
}

// begin hands out the next command of the session.
func (s *session) begin() wire.Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq := s.next
	s.next++
	if s.replay {
		return wire.Command{Session: s.id, Seq: seq << replayShift, Acked: 1}
	}
	s.open[seq] = true
	return wire.Command{Session: s.id, Seq: seq, Acked: s.low}
}

// reissue returns the command that runs cmd again after its number was
// withdrawn: the session's next command, or in a replay session the next
// sub-number of cmd's call.
func (s *session) reissue(cmd wire.Command) wire.Command {
	if s.replay && (cmd.Seq+1)&(1<<replayShift-1) != 0 {
		cmd.Seq++
		return cmd
	}
	return s.begin()
}

// seenAt returns the position the session has seen in group g at the
// sequential level.
func (s *session) seenAt(g int) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[g]
}

// observe raises the position the session has seen in group g to pos.
func (s *session) observe(g int, pos uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pos > s.seen[g] {
		if s.seen == nil {
			s.seen = map[int]uint64{}
		}
		s.seen[g] = pos
	}
}

// acked returns the current watermark, for a retry.
func (s *session) acked() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.replay {
		return 1
	}
	return s.low
}

// end marks seq done: answered, or given up (a given-up command that is
// still in flight is then skipped by the servers, so its outcome stays
// what the caller was told: unknown).
func (s *session) end(seq uint64) {
	if s.replay {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.open, seq)
	for s.low < s.next && !s.open[s.low] {
		s.low++
	}
}

// Topology returns the cluster's layout, asked of its nodes the first
// time it is needed (a node that does not answer is skipped).
func (c *Client) Topology(ctx context.Context) (Topology, error) {
	c.topoMu.Lock()
	defer c.topoMu.Unlock()
	if c.topoSet {
		return c.topo, nil
	}
	var last error
	for _, m := range c.ring.Nodes() {
		v, err := c.node(m).request(ctx, 0, bounded|failFast, func(b []byte, id uint64) ([]byte, error) {
			return wire.AppendSimple(b, wire.OpTopology, id), nil
		})
		if err != nil {
			last = err
			if errors.Is(err, dso.ErrMalformed) { // a server without replication support
				break
			}
			continue
		}
		m, _ := v.(map[string]any)
		rf, _ := dso.AsInt(m["rf"])
		c.topo = Topology{Members: c.ring.Nodes(), RF: int(rf)}
		c.topo.Protocol, _ = m["protocol"].(string)
		c.topo.Disjoint, _ = m["disjoint"].(bool)
		c.topoSet = true
		return c.topo, nil
	}
	return Topology{}, fmt.Errorf("dso/client: no node described the cluster's layout: %w", last)
}

// Persistent returns the Caller of persistent objects: objects replicated
// on RF nodes by the cluster's protocol, which survive the crash of any
// minority of their replicas and the restart of every node. They are
// distinct from the ephemeral objects of the same type and key. Typed
// handles work on it as on the Client:
//
//	hits := dso.NewAtomicLong(c.Persistent(), "hits")
//
// Each call is a command of the Client's session, numbered once: it goes
// to the object's owner, and if that node is down, frozen or cannot reach
// its peers, to the next replica of the object's group, with the same
// number, until the context ends; the servers execute it at most once and
// a retry gets the first execution's result. A node that comes back is
// used again by the next call.
func (c *Client) Persistent() *Persistent { return &Persistent{c: c, s: c.session} }

// ReplaySession returns a Caller of persistent objects whose calls form
// the session id (not 0) and are numbered by their order: the k-th call
// is command k of the session (with a sub-number for the rare reissue of
// a call that a lost connection withdrew), and no call acknowledges
// another, so the replicas keep every answer of the session (until they
// evict it, as they evict any session of a key beyond 1,024 clients).
// A second ReplaySession with the same id that makes the same calls in
// the same order therefore gets the first one's answers without applying
// them again: a retried cloud thread whose attempts each use a
// ReplaySession of the invocation's id applies each of its calls once
// (executor.PersistentDSO).
//
// The calls must be made one at a time (a call made while another is in
// flight fails with dso.ErrBadArgs), and each attempt must make the same
// calls in the same order, which holds when what it does depends only on
// its arguments and the answers. A call that differs from the first
// attempt's call of the same number is not detected: it gets the first
// call's answer.
func (c *Client) ReplaySession(id uint64) *Persistent {
	if id == 0 {
		id = 1
	}
	return &Persistent{c: c, s: &session{id: id, next: 1, low: 1, open: map[uint64]bool{}, replay: true}}
}

// Persistent calls persistent objects; see Client.Persistent. It is safe
// for concurrent use, except one of ReplaySession.
type Persistent struct {
	c     *Client
	s     *session
	busy  atomic.Bool // a call of a replay session is in flight
	level uint8       // the degradation level of the objects called (0: linearizable)
}

// At returns a Caller of the persistent objects of degradation level
// level, in the same session: the sequential level (updates ordered by
// Paxos; a read is served by the replica it reaches as soon as that
// replica has executed the group's log as far as the session has seen it,
// a position the session keeps per replica group from the answers, so
// that it reads its own writes and its reads never go back) or the weak one
// (every replica answers alone and merges the others' updates; only the
// methods whose updates commute). An object keeps the level it was first
// called at: a call at another level fails with dso.ErrBadArgs naming its
// level, and a method a level does not offer fails with dso.ErrBadArgs
// naming the level. The servers must run the levels (blossom server
// --levels, the default with --rf). Multi acts on linearizable objects
// only, Delete on linearizable and sequential ones. An invalid level makes
// every call fail.
func (p *Persistent) At(level degradable.Level) *Persistent {
	return &Persistent{c: p.c, s: p.s, level: uint8(level)}
}

// Level returns the degradation level of the objects p calls.
func (p *Persistent) Level() degradable.Level {
	if p.level == 0 {
		return degradable.Linearizable
	}
	return degradable.Level(p.level)
}

var _ dso.Caller = (*Persistent)(nil)

// Call invokes method on the persistent object ref, creating it with ctor
// if absent. At the weak level, a Set's remove and a List's removeAt(0)
// first read what the caller's replica holds (see prepareWeak).
func (p *Persistent) Call(ctx context.Context, ref dso.Ref, method string, args, ctor []any) (any, error) {
	if p.level != 0 && !degradable.Level(p.level).Valid() {
		return nil, fmt.Errorf("%w: invalid level %d", dso.ErrBadArgs, p.level)
	}
	if degradable.Level(p.level) == degradable.Weak {
		var err error
		if args, err = p.prepareWeak(ctx, ref, method, args); err != nil {
			return nil, err
		}
	}
	return p.do(ctx, ref, func(b []byte, id, timeout uint64, cmd wire.Command) ([]byte, error) {
		return wire.AppendCallPLevel(b, id, timeout, cmd, p.level, ref.Type, ref.Key, method, args, ctor)
	})
}

// Delete removes the persistent object ref, of p's level, from its
// replicas; it reports whether it existed. Calls parked on it fail with
// dso.ErrClosed. The name stays bound to its level. An object of another
// level fails with dso.ErrBadArgs naming its level; at the weak level
// every Delete fails with dso.ErrBadArgs (an update concurrent with it
// would survive at some replicas and not at others).
func (p *Persistent) Delete(ctx context.Context, ref dso.Ref) (bool, error) {
	if p.level != 0 && !degradable.Level(p.level).Valid() {
		return false, fmt.Errorf("%w: invalid level %d", dso.ErrBadArgs, p.level)
	}
	v, err := p.do(ctx, ref, func(b []byte, id, _ uint64, cmd wire.Command) ([]byte, error) {
		return wire.AppendDeletePLevel(b, id, cmd, p.level, ref.Type, ref.Key)
	})
	ok, _ := v.(bool)
	return ok, err
}

// Multi applies calls on several persistent objects as one command: every
// group holding one of the objects applies its calls at the same point of
// its order, so no other call sees some of them done and others not. It
// needs a multicast protocol (wbcast or skeen); other protocols refuse it.
// A call that fails does not undo the others, and a call may not park.
// The result holds, per call in order, its result value; the results of
// calls on objects of groups other than the first object's are nil (their
// effects took place, but only the first group answers).
func (p *Persistent) Multi(ctx context.Context, calls []dso.Call) ([]any, error) {
	if len(calls) == 0 {
		return nil, fmt.Errorf("%w: a multi-object call needs at least one call", dso.ErrBadArgs)
	}
	parts := make([]wire.Part, len(calls))
	for i, cl := range calls {
		parts[i] = wire.Part{Type: cl.Ref.Type, Key: cl.Ref.Key, Method: cl.Method, Args: cl.Args, Ctor: cl.Ctor}
	}
	v, err := p.do(ctx, calls[0].Ref, func(b []byte, id, timeout uint64, cmd wire.Command) ([]byte, error) {
		return wire.AppendMulti(b, id, timeout, cmd, parts)
	})
	if err != nil {
		return nil, err
	}
	l, _ := v.([]any)
	return l, nil
}

// do sends one session command about ref to the replicas of ref's group
// in turn, until one answers or ctx ends.
func (p *Persistent) do(ctx context.Context, ref dso.Ref, enc func(b []byte, id, timeout uint64, cmd wire.Command) ([]byte, error)) (any, error) {
	c := p.c
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	topo, err := c.Topology(ctx)
	if err != nil {
		return nil, err
	}
	if topo.RF == 0 {
		return nil, ErrNoReplication
	}
	g, members := c.ring.Group(ref.Type, ref.Key, topo.RF, topo.Disjoint)
	members = c.preferLive(members)
	seq := p.level == uint8(degradable.Sequential)
	s := p.s
	if s.replay {
		if !p.busy.CompareAndSwap(false, true) {
			return nil, fmt.Errorf("%w: a replay session makes one call at a time", dso.ErrBadArgs)
		}
		defer p.busy.Store(false)
	}
	cmd := s.begin()
	defer func() { s.end(cmd.Seq) }()
	h := ring.HashRef(ref.Type, ref.Key)
	var last error
	reissued := 0
	deadline := time.Now().Add(c.opts.RetryFor)
	if dl, ok := ctx.Deadline(); ok {
		deadline = dl
	}
	for attempt := 0; ; attempt++ {
		n := c.node(members[attempt%len(members)])
		timeout := uint64(0)
		if dl, ok := ctx.Deadline(); ok {
			timeout = uint64(max(math.Ceil(float64(time.Until(dl))/float64(time.Millisecond)), 1))
		}
		if attempt > 0 {
			cmd.Acked = s.acked()
		}
		if seq {
			cmd.Seen = s.seenAt(g)
		}
		r := n.requestResult(ctx, int(h>>32), failFast, func(b []byte, id uint64) ([]byte, error) {
			return enc(b, id, timeout, cmd)
		})
		v, err := r.v, r.err
		if seq && err == nil {
			s.observe(g, r.pos)
		}
		if attempt > 0 && reissued < len(members) && ctx.Err() == nil && withdrawn(err) {
			// A replica this call left (frozen, or its connection broke)
			// found the connection closed and withdrew the call, parked
			// meanwhile through another replica: it had no effect. Run
			// it again, at the same replica, as a new command.
			s.end(cmd.Seq)
			cmd = s.reissue(cmd)
			reissued++
			attempt--
			continue
		}
		if err == nil || !failover(err) || ctx.Err() != nil {
			return v, err
		}
		n.suspect(err)
		last = err
		if attempt%len(members) == len(members)-1 {
			// Every replica failed this round: wait before the next.
			if time.Now().Add(c.opts.MinBackoff * 10).After(deadline) {
				return nil, fmt.Errorf("%w: no replica of %s answered (%v)", ErrUnavailable, ref, last)
			}
			t := time.NewTimer(c.opts.MinBackoff * 10)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("%w: %w (last: %v)", dso.ErrCanceled, ctx.Err(), last)
			case <-t.C:
			}
		}
	}
}

// suspectFor is how long a replica that failed a call (down, frozen, or
// without its peers) comes after the other replicas of its groups.
const suspectFor = time.Second

// suspect notes that n failed a persistent call; errors other than an
// unreachable or frozen node (wrong node, a timeout of the replicas) do
// not make it suspect.
func (n *node) suspect(err error) {
	if errors.Is(err, ErrUnavailable) {
		n.suspectUntil.Store(time.Now().Add(suspectFor).UnixNano())
	}
}

// preferLive returns members with the nodes suspected of being down or
// frozen moved to the end, keeping the group's order otherwise: the owner
// first while it answers, and again once its suspicion expires.
func (c *Client) preferLive(members []string) []string {
	now := time.Now().UnixNano()
	var live, suspected []string
	for _, m := range members {
		if c.node(m).suspectUntil.Load() > now {
			suspected = append(suspected, m)
		} else {
			live = append(live, m)
		}
	}
	if len(suspected) == 0 {
		return members
	}
	return append(live, suspected...)
}

// failover reports whether a failed attempt should move on to the next
// replica: the node is unreachable or frozen, it is not a replica of the
// object, or it could not get its peers to agree in time.
func failover(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, dso.ErrWrongNode) || errors.Is(err, dso.ErrTimeout)
}

// withdrawn reports whether err is the answer of a parked call withdrawn
// by a server whose connection to the client closed (code canceled): a
// call whose client still waits gets it only from a replica it left.
func withdrawn(err error) bool {
	var re *dso.RemoteError
	return errors.As(err, &re) && re.Code == wire.CodeCanceled
}

// Object describes one object of the cluster, for ListAll.
type Object struct {
	Ref dso.Ref
	// Persistent objects are replicated on Replicas; an ephemeral object
	// lives on its one owner, Replicas[0].
	Persistent bool
	// Level is a persistent object's degradation level (0 for an
	// ephemeral object).
	Level    degradable.Level
	Replicas []string
}

// ListAll lists the cluster's objects, ephemeral and persistent (of every
// degradation level), whose type starts with prefix, sorted by type, key,
// kind (ephemeral first) and level.
// If some nodes do not answer, it returns what the others listed and a
// *ListError naming them (a persistent object is still listed if one of
// its replicas answered).
func (c *Client) ListAll(ctx context.Context, prefix string) ([]Object, error) {
	out, err := c.list(ctx, prefix)
	for i := range out {
		o := &out[i]
		if !o.Persistent {
			o.Replicas = []string{c.ring.Owner(o.Ref.Type, o.Ref.Key)}
			continue
		}
		topo, terr := c.Topology(ctx)
		if terr != nil {
			return out, terr
		}
		_, o.Replicas = c.ring.Group(o.Ref.Type, o.Ref.Key, topo.RF, topo.Disjoint)
	}
	return out, err
}

// list asks every node for its objects whose type starts with prefix and
// returns them once each (without Replicas), sorted by type, key and kind
// (ephemeral first), and a *ListError naming the nodes that did not answer.
func (c *Client) list(ctx context.Context, prefix string) ([]Object, error) {
	type id struct {
		ref        dso.Ref
		persistent bool
		level      degradable.Level
	}
	seen := map[id]bool{}
	var out []Object
	lerr := &ListError{}
	for _, m := range c.ring.Nodes() {
		v, err := c.node(m).request(ctx, 0, bounded|failFast, func(b []byte, id uint64) ([]byte, error) {
			return wire.AppendSimple(b, wire.OpList, id, prefix), nil
		})
		if err != nil {
			lerr.Failed = append(lerr.Failed, m)
			lerr.Errs = append(lerr.Errs, err)
			continue
		}
		l, _ := v.([]any)
		for _, e := range l {
			p, _ := e.([]any)
			if len(p) < 2 {
				continue
			}
			t, _ := p[0].(string)
			k, _ := p[1].(string)
			o := Object{Ref: dso.Ref{Type: t, Key: k}, Persistent: len(p) >= 3}
			if o.Persistent {
				o.Level = degradable.Linearizable
				if len(p) >= 4 {
					name, _ := p[3].(string)
					if o.Level, err = degradable.ParseLevel(name); err != nil {
						continue // a level this client does not know
					}
				}
			}
			if !seen[id{o.Ref, o.Persistent, o.Level}] {
				seen[id{o.Ref, o.Persistent, o.Level}] = true
				out = append(out, o)
			}
		}
	}
	slices.SortFunc(out, func(a, b Object) int {
		if c := strings.Compare(a.Ref.String(), b.Ref.String()); c != 0 {
			return c
		}
		if a.Persistent == b.Persistent {
			return int(a.Level) - int(b.Level)
		}
		if a.Persistent {
			return 1
		}
		return -1
	})
	if len(lerr.Failed) > 0 {
		return out, lerr
	}
	return out, nil
}
