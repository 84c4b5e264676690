// Package server is the DSO server: it accepts client connections speaking
// the protocol of package wire, holds the objects it owns on the cluster's
// consistent-hash ring, and runs their methods.
//
// Calls on one object run one at a time under that object's own lock, in
// the order the server read them; calls on different objects share no lock
// (the object table is sharded), so they run in parallel on as many cores
// as there are connections (disjoint-access parallelism). A connection's
// requests are read and executed in order by one goroutine, and its
// replies are batched: the server flushes when no further request is
// buffered. On Linux a plain TCP connection is read and written straight
// on its socket (package sockio): one read system call per call where the
// net package pays two. A call that must wait (barrier, semaphore,
// future, ...) parks on its object without holding a goroutine, and is
// answered when another call releases it, or withdrawn when the client
// cancels it, its deadline passes, or its connection closes.
//
// When a burst of at least 256 connections ends (three quarters of the
// most that were open have closed), the server returns the memory they
// used to the operating system at once, as Redis's allocator does, rather
// than keeping it until the runtime next collects.
package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/ring"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/internal/sockio"
	"github.com/blossom-dso/blossom/pmem"
)

// Config configures a server. The zero value serves the object library
// as a single node with default limits.
type Config struct {
	// Registry holds the object types; nil means dso.NewRegistry().
	Registry *dso.Registry
	// MaxFrame is the largest request body accepted, in bytes; a larger
	// call is refused with a too-large error. 0 means wire.DefaultMaxFrame.
	MaxFrame int
	// Members are the endpoints (host:port) of every node of the cluster,
	// this one included, as clients dial them. Empty means a one-node
	// cluster that owns every object.
	Members []string
	// Self is this node's endpoint as it appears in Members.
	Self string
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
	// PmemPath, if not empty, keeps the object table in the pmem heap file
	// at that path (created if missing, with PmemSize bytes; 0 means
	// DefaultPmemSize): New rebuilds the objects saved there, and every
	// successful call that may change an object saves the object's state in
	// one atomic block before the reply is sent. Only types implementing
	// dso.Persister can then be created; a call that would create another
	// (a barrier, say) fails. Empty means objects live in memory only.
	PmemPath string
	// PmemSize is the size of a pmem heap created at PmemPath; 0 means
	// DefaultPmemSize.
	PmemSize int64
	// PmemHeap, if not nil, is an open heap (OpenPmemHeap) to keep the
	// object table in, as PmemPath does, when the caller shares the heap
	// (with the snapshots of the persistent objects' replicas, say); the
	// server does not close it, and PmemPath is ignored.
	PmemHeap *pmem.Heap
	// MaxConns bounds the open client connections; a connection beyond it
	// is answered with one error frame (code limit, id 0) and closed.
	// 0 means DefaultMaxConns.
	MaxConns int
	// MaxBuffered bounds, for the whole server, the bytes held for request
	// bodies larger than a connection's read buffer while they arrive; a
	// connection whose frame would exceed it is closed. 0 means
	// DefaultMaxBuffered.
	MaxBuffered int64
	// FrameTimeout closes a connection that stalls in the middle of a frame
	// (or a TLS handshake) for longer than this; a connection idle between
	// frames is kept. 0 means DefaultFrameTimeout.
	FrameTimeout time.Duration
	// TLS, if not nil, makes every client connection TLS (set ClientAuth
	// and ClientCAs for mutual TLS). Nil means plain TCP.
	TLS *tls.Config
	// Tokens, if not empty, turns authentication on: a connection may do
	// nothing but PING until it sends HELLO with one of these tokens, and
	// then what the token's rights allow. Empty means every connection has
	// RightAdmin.
	Tokens map[string]Rights
	// MaxObjects bounds the objects this node holds; a call that would
	// create one more fails with code limit. 0 means no limit.
	MaxObjects int
	// MaxKey bounds the length in bytes of the key of an object created by
	// a call; 0 means DefaultMaxKey.
	MaxKey int
	// Replication, if not nil, makes the server hold persistent objects
	// beside its ephemeral ones (see Replication). Nil: ephemeral only.
	Replication *Replication
}

// Defaults of the server's limits.
const (
	DefaultMaxConns     = 10000
	DefaultMaxBuffered  = 256 << 20
	DefaultFrameTimeout = 10 * time.Second
	DefaultMaxKey       = 4096
)

func (c *Config) validate() error {
	if c.MaxFrame < 0 {
		return fmt.Errorf("server: MaxFrame %d is negative", c.MaxFrame)
	}
	if c.MaxConns < 0 || c.MaxBuffered < 0 || c.FrameTimeout < 0 || c.MaxObjects < 0 || c.MaxKey < 0 {
		return fmt.Errorf("server: negative limit (MaxConns %d, MaxBuffered %d, FrameTimeout %v, MaxObjects %d, MaxKey %d)",
			c.MaxConns, c.MaxBuffered, c.FrameTimeout, c.MaxObjects, c.MaxKey)
	}
	for _, r := range c.Tokens {
		if r < RightRead || r > RightAdmin {
			return fmt.Errorf("server: a token has rights %v", r)
		}
	}
	if len(c.Members) > 0 {
		found := false
		for _, m := range c.Members {
			found = found || m == c.Self
		}
		if !found {
			return fmt.Errorf("server: Self %q is not one of Members %v", c.Self, c.Members)
		}
	}
	return nil
}

const nShards = 256

// Server is a DSO node.
type Server struct {
	cfg    Config
	reg    *dso.Registry
	ring   *ring.Ring
	log    *slog.Logger
	tables sync.Map     // type name -> *typeTable
	store  *pmemStore   // nil: objects live in memory only
	rep    *replication // nil: no persistent objects

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	closed    bool
	wg        sync.WaitGroup

	tokens      map[[32]byte]Rights // SHA-256 of each token; nil: no authentication
	epoch       uint64              // random high 32 bits of this process's incarnations
	incSeq      atomic.Uint32       // low 32 bits of the last incarnation given
	nobj        atomic.Int64        // objects held
	buffered    atomic.Int64        // bytes reserved by connections for large bodies
	refusing    atomic.Int32        // goroutines answering refused connections
	draining    atomic.Bool         // Close has begun: connections stop reading and say goodbye
	peakConns   int                 // most connections open since the last release (guarded by mu)
	lastRelease atomic.Int64        // Unix nanoseconds of the last releaseMemory
	releases    atomic.Int64        // memory releases started
	warns       warnLimiter
	metrics     *metrics
}

// typeTable holds the objects of one type, sharded by key so that
// creating and finding objects contends little; keying by the object's key
// alone keeps the table small (a million AtomicLongs fit in about 100 MB).
type typeTable struct {
	shards [nShards]shard
	stats  *callStats
	// scalars, if not nil, holds objects of the type ready for calls: the
	// type is a dso.Scalar kept in the shards' scalar tables (on a server
	// without storage), and each call runs on one of these loaded with
	// the object's state.
	scalars *sync.Pool
}

// shard holds the objects of a shard of a type: in m, or in sc if the
// type's objects are scalars.
type shard struct {
	mu sync.RWMutex
	m  entryTable
	sc scalarTable
}

// entry is one object, its key and the lock that orders its calls (48
// bytes).
type entry struct {
	mu  sync.Mutex
	obj dso.Object
	inc uint64 // incarnation (never 0); 0 once the object is deleted
	key string
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, reg: cfg.Registry, log: cfg.Logger,
		listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}, metrics: newMetrics()}
	if s.reg == nil {
		s.reg = dso.NewRegistry()
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.cfg.MaxFrame == 0 {
		s.cfg.MaxFrame = wire.DefaultMaxFrame
	}
	if s.cfg.MaxConns == 0 {
		s.cfg.MaxConns = DefaultMaxConns
	}
	if s.cfg.MaxBuffered == 0 {
		s.cfg.MaxBuffered = DefaultMaxBuffered
	}
	if s.cfg.FrameTimeout == 0 {
		s.cfg.FrameTimeout = DefaultFrameTimeout
	}
	if s.cfg.MaxKey == 0 {
		s.cfg.MaxKey = DefaultMaxKey
	}
	var rb [4]byte
	for s.epoch == 0 {
		rand.Read(rb[:])
		s.epoch = uint64(binary.BigEndian.Uint32(rb[:])) << 32
	}
	if len(cfg.Tokens) > 0 {
		s.tokens = map[[32]byte]Rights{}
		for tok, r := range cfg.Tokens {
			s.tokens[hashToken(tok)] = r
		}
	}
	if len(cfg.Members) > 0 {
		r, err := ring.New(cfg.Members, 0)
		if err != nil {
			return nil, err
		}
		s.ring = r
	}
	if cfg.Replication != nil {
		if cfg.Replication.Replicas == nil {
			return nil, errors.New("server: Replication without Replicas")
		}
		n := 1
		if s.ring != nil {
			n = len(s.ring.Nodes())
		}
		if cfg.Replication.RF < 1 || cfg.Replication.RF > n {
			return nil, fmt.Errorf("server: replication factor %d for a cluster of %d nodes (valid: 1..%d)", cfg.Replication.RF, n, n)
		}
		s.rep = newReplication(cfg.Replication)
	}
	if cfg.PmemHeap != nil || cfg.PmemPath != "" {
		h, own := cfg.PmemHeap, false
		if h == nil {
			var err error
			if h, err = OpenPmemHeap(cfg.PmemPath, cfg.PmemSize); err != nil {
				return nil, err
			}
			own = true
		}
		st, err := openPmemStore(h, own)
		if err != nil {
			return nil, err
		}
		s.store = st
		if err := s.restore(); err != nil {
			st.close()
			return nil, err
		}
	}
	return s, nil
}

// Registry returns the server's type registry.
func (s *Server) Registry() *dso.Registry { return s.reg }

// Serve accepts connections on l until the server is closed or l is
// closed; it returns nil after Close. An accept error (too many open files,
// say) is logged and retried with back-off: it never ends Serve. A
// connection beyond Config.MaxConns is answered with one error frame and
// closed.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func(orig net.Listener) {
		s.mu.Lock()
		delete(s.listeners, orig)
		s.mu.Unlock()
	}(l)
	if s.cfg.TLS != nil {
		l = tls.NewListener(l, s.cfg.TLS)
	}
	const minDelay = 5 * time.Millisecond
	delay := minDelay
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("server: accept: %w", err)
			}
			s.warns.warn(s.log, "dso: accept failed; retrying with back-off", "err", err, "retry_in", delay)
			time.Sleep(delay)
			delay = min(2*delay, time.Second)
			continue
		}
		delay = minDelay
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		if len(s.conns) >= s.cfg.MaxConns {
			s.mu.Unlock()
			s.refuse(nc)
			continue
		}
		c := newConn(s, nc)
		s.conns[c] = struct{}{}
		s.peakConns = max(s.peakConns, len(s.conns))
		s.wg.Add(2)
		s.mu.Unlock()
		go c.readLoop()
		go c.asyncWriter()
	}
}

// maxRefusing bounds the goroutines that answer refused connections; past
// it a refused connection is closed without a word.
const maxRefusing = 64

// refuse answers a connection beyond the limit with an error frame (id 0,
// code limit) and closes it, without blocking the accept loop.
func (s *Server) refuse(nc net.Conn) {
	s.warns.warn(s.log, "dso: connection limit reached; refusing a connection", "remote", nc.RemoteAddr().String(), "limit", s.cfg.MaxConns)
	if s.refusing.Add(1) > maxRefusing {
		s.refusing.Add(-1)
		nc.Close()
		return
	}
	go func() {
		defer s.refusing.Add(-1)
		nc.SetDeadline(time.Now().Add(time.Second))
		msg := fmt.Sprintf("%v: server at its connection limit (%d); try again later", dso.ErrLimit, s.cfg.MaxConns)
		nc.Write(wire.AppendError(nil, 0, wire.CodeLimit, msg))
		nc.Close()
	}()
}

// warnLimiter lets through at most one warning per second for the whole
// server and counts the others, so that hostile connections cannot flood
// the log.
type warnLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (w *warnLimiter) warn(log *slog.Logger, msg string, args ...any) {
	w.mu.Lock()
	now := time.Now()
	if now.Sub(w.last) < time.Second {
		w.suppressed++
		w.mu.Unlock()
		return
	}
	w.last = now
	n := w.suppressed
	w.suppressed = 0
	w.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed_since_last", n)
	}
	log.Warn(msg, args...)
}

// Close stops the listeners, closes every connection gracefully and waits
// for the connection goroutines to end; then it closes the pmem heap, if
// any (calls made in-process with Invoke must be over by then).
//
// A graceful close (the GOAWAY of HTTP/2): each connection stops reading
// requests between two frames; every call it read has been answered, or
// is answered now (a parked call fails with dso.ErrClosing), but for
// persistent calls in flight (withdrawn as on a closed connection, not
// answered: they carry a session number under which the replicas execute
// a command at most once, so the client may send them again); then the
// connection sends one error frame of id 0 and code wire.CodeClosing,
// meaning that no other call it did not answer was executed, half-closes, and
// reads and discards what the client still sends until the client closes
// (at most goodbyeWait), so that the goodbye is not lost to a reset. A
// client may send its unanswered calls again on a new connection.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.draining.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	// Wake each read loop (between frames, or waiting for the rest of
	// one): it sees draining and says goodbye. Not under mu.
	for _, c := range conns {
		c.nc.SetReadDeadline(aLongTimeAgo)
	}
	s.wg.Wait()
	if s.store != nil {
		return s.store.close()
	}
	return nil
}

// Stats is a snapshot of a server's load.
type Stats struct {
	Conns         int   // open client connections
	BufferedBytes int64 // bytes reserved for large request bodies being received
}

// Stats returns a snapshot of the server's load.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	return Stats{Conns: n, BufferedBytes: s.buffered.Load()}
}

// NumObjects returns how many objects this node holds.
func (s *Server) NumObjects() int {
	n := 0
	s.eachShard(func(_ string, sh *shard) {
		sh.mu.RLock()
		n += sh.m.n + sh.sc.n
		sh.mu.RUnlock()
	})
	return n
}

func (s *Server) eachShard(f func(typ string, sh *shard)) {
	s.tables.Range(func(k, v any) bool {
		t := v.(*typeTable)
		for i := range t.shards {
			f(k.(string), &t.shards[i])
		}
		return true
	})
}

// table returns the table of a type, creating it if create.
func (s *Server) table(typ string, create bool) *typeTable {
	v, ok := s.tables.Load(typ)
	if !ok {
		if !create {
			return nil
		}
		t := &typeTable{stats: s.metrics.newCallStats(typ)}
		if ctor, _, ok := s.reg.Lookup(typ); ok && s.store == nil {
			if o, err := ctor(nil); err == nil {
				if _, ok := o.(dso.Scalar); ok {
					t.scalars = newScalarPool(ctor)
				}
			}
		}
		v, _ = s.tables.LoadOrStore(typ, t)
	}
	return v.(*typeTable)
}

// shard returns the shard of key and the key's hash.
func (t *typeTable) shard(key string) (*shard, uint32) {
	h := hashKey(key)
	return &t.shards[h%nShards], h
}

// hashKey is FNV-1a of a key held as a string or as bytes, inlined to
// avoid allocating a hasher per call.
func hashKey[K string | []byte](k K) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return h
}

// create runs a call on an object that was absent from sh: it makes the
// object, runs the call on it, and keeps it only if the call may have
// changed it (or parked on it); a read or a failed call leaves nothing
// behind. The shard is locked meanwhile, so no other call can create the
// same object. It returns errRetry if the object appeared first.
func (s *Server) create(sh *shard, h uint32, ref dso.Ref, ctor dso.Constructor, method string, args, ctorArgs []any,
	park func() *dso.Waiter, rights Rights, incOut *uint64) (any, *entry, uint64, error) {
	if len(ref.Key) > s.cfg.MaxKey {
		return nil, nil, 0, fmt.Errorf("%w: key of %d bytes; this server creates objects with keys up to %d bytes", dso.ErrLimit, len(ref.Key), s.cfg.MaxKey)
	}
	sh.mu.Lock()
	if sh.m.get(ref.Key, h) != nil {
		sh.mu.Unlock()
		return nil, nil, 0, errRetry
	}
	obj, err := ctor(ctorArgs)
	if err != nil {
		sh.mu.Unlock()
		return nil, nil, 0, fmt.Errorf("create %s: %w", ref, err)
	}
	if rights < RightAdmin {
		if err := allowed(rights, ref, obj, method); err != nil {
			sh.mu.Unlock()
			return nil, nil, 0, err
		}
	}
	e := &entry{obj: obj, inc: s.nextIncarnation(), key: ref.Key}
	e.mu.Lock()
	if incOut != nil {
		*incOut = e.inc
	}
	inv := dso.NewInvocation(ref, method, args, park)
	v, err := s.invoke(e, inv)
	parked := inv.Parked() != nil && err == nil
	if !parked && (err != nil || readOnly(obj, method)) {
		sh.mu.Unlock()
		e.mu.Unlock()
		return v, nil, 0, err
	}
	if s.store != nil {
		if _, ok := obj.(dso.Persister); !ok {
			sh.mu.Unlock()
			e.mu.Unlock()
			return nil, nil, 0, fmt.Errorf("%w: create %s: type %s cannot be kept in pmem storage (this server runs with --storage pmem)", dso.ErrFailed, ref, ref.Type)
		}
	}
	if max := s.cfg.MaxObjects; max > 0 && s.nobj.Load() >= int64(max) {
		sh.mu.Unlock()
		e.mu.Unlock()
		return nil, nil, 0, fmt.Errorf("%w: cannot create %s: this server holds %d objects, its limit", dso.ErrLimit, ref, max)
	}
	sh.m.put(e, h)
	s.nobj.Add(1)
	sh.mu.Unlock()
	if s.store != nil && !parked {
		err = s.persist(e, inv, true)
	}
	inc := e.inc
	e.mu.Unlock()
	if parked {
		return nil, e, inc, nil
	}
	return v, nil, inc, err
}

// nextIncarnation returns a new incarnation number: the process's random
// epoch in the high 32 bits, a counter in the low ones, so that an object
// made again (after a delete, or by a restarted server that lost it) gets
// a number different from the one it had.
func (s *Server) nextIncarnation() uint64 {
	for {
		if n := s.incSeq.Add(1); n != 0 {
			return s.epoch | uint64(n)
		}
	}
}

// errRetry tells call that the object it meant to create appeared.
var errRetry = errors.New("retry")

func (s *Server) delete(ref dso.Ref) bool {
	t := s.table(ref.Type, false)
	if t == nil {
		return false
	}
	sh, h := t.shard(ref.Key)
	sh.mu.Lock()
	if t.scalars != nil {
		i := sh.sc.find(ref.Key, h)
		if i >= 0 {
			sh.sc.remove(i)
			s.nobj.Add(-1)
		}
		sh.mu.Unlock()
		return i >= 0
	}
	e := sh.m.remove(ref.Key, h)
	sh.mu.Unlock()
	if e == nil {
		return false
	}
	s.nobj.Add(-1)
	e.mu.Lock()
	if s.store != nil {
		if err := s.store.remove(ref); err != nil {
			s.log.Error("dso: could not remove a deleted object from pmem", "ref", ref.String(), "err", err)
		}
	}
	e.inc = 0
	if c, ok := e.obj.(dso.Closer); ok {
		c.Close()
	}
	e.mu.Unlock()
	return true
}

func (s *Server) list(prefix string) []any {
	var out []any
	s.eachShard(func(typ string, sh *shard) {
		if !strings.HasPrefix(typ, prefix) {
			return
		}
		sh.mu.RLock()
		sh.m.each(func(e *entry) { out = append(out, []any{typ, e.key}) })
		sh.sc.each(func(key string) { out = append(out, []any{typ, key}) })
		sh.mu.RUnlock()
	})
	return out
}

var _ dso.Caller = (*Server)(nil)

// Call implements dso.Caller in-process, so typed handles can be used on a
// server without a network round trip; see Invoke.
func (s *Server) Call(ctx context.Context, ref dso.Ref, method string, args, ctor []any) (any, error) {
	return s.Invoke(ctx, ref, method, args, ctor)
}

// Invoke runs one call in-process. A call that parks waits until it is
// released or ctx is done; then it is withdrawn and fails with ErrCanceled.
func (s *Server) Invoke(ctx context.Context, ref dso.Ref, method string, args, ctor []any) (any, error) {
	type res struct {
		v   any
		err error
	}
	ch := make(chan res, 1)
	var w *dso.Waiter
	v, e, _, err := s.call(ref, method, args, ctor, func() *dso.Waiter {
		w = dso.NewWaiter(func(v any, err error) { ch <- res{v, err} })
		return w
	}, RightAdmin, nil)
	if err != nil || w == nil {
		return v, err
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		s.withdraw(e, w, fmt.Errorf("%w: %v", dso.ErrCanceled, ctx.Err()))
		r := <-ch
		return r.v, r.err
	}
}

// call runs a method on the object ref, for a connection with the given
// rights. It returns the object's incarnation (0 if a read ran on an absent
// object and created nothing). If the call parks (the park function was
// called), it returns the entry so that the caller can withdraw the waiter
// later.
//
// If incOut is not nil, call stores the incarnation there before the call
// can park, under the object's lock.
//
// It counts the call and its latency in the server's metrics.
func (s *Server) call(ref dso.Ref, method string, args, ctorArgs []any, park func() *dso.Waiter, rights Rights, incOut *uint64) (any, *entry, uint64, error) {
	start := time.Now()
	ctor, name, ok := s.reg.Lookup(ref.Type)
	if !ok {
		s.metrics.errCounter(wire.CodeUnknownType).Inc()
		return nil, nil, 0, fmt.Errorf("%w: %q", dso.ErrUnknownType, ref.Type)
	}
	ref.Type = name
	if s.ring != nil {
		if owner := s.ring.Owner(ref.Type, ref.Key); owner != s.cfg.Self {
			s.metrics.errCounter(wire.CodeWrongNode).Inc()
			return nil, nil, 0, fmt.Errorf("%w: %s lives on %s, not %s", dso.ErrWrongNode, ref, owner, s.cfg.Self)
		}
	}
	t := s.table(name, true)
	sh, h := t.shard(ref.Key)
	var v any
	var e *entry
	var inc uint64
	var err error
	if t.scalars != nil {
		v, inc, err = s.callScalar(t, sh, h, ref, ctor, method, args, ctorArgs, rights, incOut)
	} else {
		v, e, inc, err = s.callOn(sh, h, ref, ctor, method, args, ctorArgs, park, rights, incOut)
	}
	s.observe(t, name, method, start, err)
	return v, e, inc, err
}

// callOn is call on the shard sh of ref.
func (s *Server) callOn(sh *shard, h uint32, ref dso.Ref, ctor dso.Constructor, method string, args, ctorArgs []any,
	park func() *dso.Waiter, rights Rights, incOut *uint64) (any, *entry, uint64, error) {
	for {
		sh.mu.RLock()
		e := sh.m.get(ref.Key, h)
		sh.mu.RUnlock()
		if e == nil {
			v, e, inc, err := s.create(sh, h, ref, ctor, method, args, ctorArgs, park, rights, incOut)
			if err == errRetry {
				continue
			}
			return v, e, inc, err
		}
		e.mu.Lock()
		inc := e.inc
		if inc == 0 { // deleted meanwhile
			e.mu.Unlock()
			continue
		}
		if incOut != nil {
			*incOut = inc
		}
		if rights < RightAdmin {
			if err := allowed(rights, ref, e.obj, method); err != nil {
				e.mu.Unlock()
				return nil, nil, 0, err
			}
		}
		inv := dso.NewInvocation(ref, method, args, park)
		v, err := s.invoke(e, inv)
		if s.store != nil && err == nil && inv.Parked() == nil {
			err = s.persist(e, inv, false)
		}
		e.mu.Unlock()
		if inv.Parked() != nil && err == nil {
			return nil, e, inc, nil
		}
		return v, nil, inc, err
	}
}

// invoke runs one method with e.mu held. A panicking method is reported as
// an internal error and logged; the server and the object's lock survive.
func (s *Server) invoke(e *entry, inv *dso.Invocation) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("dso: method panicked", "ref", inv.Ref.String(), "method", inv.Method, "panic", fmt.Sprint(p))
			v, err = nil, fmt.Errorf("%w: %s.%s panicked: %v", dso.ErrInternal, inv.Ref, inv.Method, p)
			// A call that parked before panicking is answered with the
			// error by the caller of invoke; the object forgets it.
			if w := inv.Parked(); w != nil {
				if wd, ok := e.obj.(dso.Withdrawer); ok {
					wd.Withdraw(w)
				}
			}
		}
	}()
	return e.obj.Invoke(inv)
}

// withdraw cancels a parked call with err unless it was answered already.
func (s *Server) withdraw(e *entry, w *dso.Waiter, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if w.Done() {
		return
	}
	if wd, ok := e.obj.(dso.Withdrawer); ok && e.inc != 0 {
		wd.Withdraw(w)
	}
	w.Reply(nil, err)
}

// aLongTimeAgo is a read deadline that wakes a blocked read at once.
var aLongTimeAgo = time.Unix(1, 0)

// goodbyeWait bounds a graceful close of a connection: writing the last
// answers and the goodbye, then waiting for the client to close.
const goodbyeWait = time.Second

// conn is one client connection.
type conn struct {
	s    *Server
	nc   net.Conn
	src  io.Reader      // what br reads: nc, or sock
	dst  io.Writer      // what replies are written to: nc, or sock
	sock *sockio.Socket // nc's socket read and written directly, if nc is plain TCP
	step frameStep      // what readReady did last, in a read session
	br   *bufio.Reader

	wmu    sync.Mutex // guards out and broken
	out    []byte     // replies not written yet, encoded in place
	broken bool

	amu     sync.Mutex // guards async and done
	async   []byte     // replies of released waiters, written by asyncWriter
	spare   []byte
	done    bool
	kick    chan struct{}
	pmu     sync.Mutex
	parked  map[uint64]*parkedCall
	pcalls  map[uint64]context.CancelCauseFunc // persistent calls in flight; nil once shut down
	wdone   chan struct{}                      // closed when asyncWriter has written all and ended
	logOnce sync.Once
	logged  uint32 // codes of refusals already logged; read loop only

	nread, nwritten atomic.Uint64 // bytes read and written, for the metrics

	rights Rights // what the connection may do; read loop only
	incs   bool   // replies carry incarnations (HELLO flag); set by the read loop before any call

	// Read loop only:
	req      wire.Request   // the request being handled
	names    wire.NameCache // type and method names of recent requests
	pk       *parker        // the parker of the next call (replaced once used)
	parkFn   func() *dso.Waiter
	armed    bool   // a mid-frame read deadline is set
	big      []byte // body buffer of frames larger than br's buffer
	reserved int64  // bytes of s.buffered held by big
}

func newConn(s *Server, nc net.Conn) *conn {
	raw := nc
	if tc, ok := nc.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	rights := RightAdmin
	if s.tokens != nil {
		rights = RightNone
	}
	c := &conn{s: s, nc: nc, src: nc, dst: nc, parked: map[uint64]*parkedCall{}, pcalls: map[uint64]context.CancelCauseFunc{}, kick: make(chan struct{}, 1), wdone: make(chan struct{}), rights: rights}
	if sr := sockio.New(nc); sr != nil {
		c.sock, c.src, c.dst = sr, sr, sr
	}
	c.br = bufio.NewReaderSize(countReader{c}, readBufSize)
	return c
}

// readBufSize is the size of a connection's read buffer: a frame up to
// this size is decoded in place; a larger one is read into a buffer that
// grows as its bytes arrive (from bigStart bytes).
const readBufSize = 8 << 10

// bigStart is the first size of the buffer of a body larger than
// readBufSize.
const bigStart = 32 << 10

// Bounds of a connection's reply buffer: replies are written out once
// writeBatch bytes wait, and a buffer grown above keptOut is dropped
// after it is written (so an idle connection holds little).
const (
	writeBatch = 16 << 10
	keptOut    = 16 << 10
)

// errBudget reports that the server-wide bound on buffered request bytes
// was reached.
var errBudget = errors.New("server-wide limit on buffered request bytes reached")

type parkedCall struct {
	e     *entry
	w     *dso.Waiter
	timer *time.Timer
}

func (c *conn) warn(msg string, args ...any) {
	if c.s.draining.Load() { // the server's own close: nothing to report
		return
	}
	c.logOnce.Do(func() {
		c.s.warns.warn(c.s.log, msg, append([]any{"remote", c.nc.RemoteAddr().String()}, args...)...)
	})
}

// arm sets the read deadline of a connection about to wait in the middle
// of a frame. Waits between frames have no deadline.
func (c *conn) arm() {
	c.armed = true
	c.setReadDeadline(time.Now().Add(c.s.cfg.FrameTimeout))
}

func (c *conn) disarm() {
	if c.armed {
		c.armed = false
		c.setReadDeadline(time.Time{})
	}
}

// setReadDeadline sets the read deadline of the read loop, unless the
// server is closing: Close wakes the read loop with a past deadline, which
// a deadline set by the read loop afterwards must not undo (draining is
// set before Close's deadline, and checked after the loop's).
func (c *conn) setReadDeadline(t time.Time) {
	c.nc.SetReadDeadline(t)
	if c.s.draining.Load() {
		c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// peek returns the next k bytes (k ≤ readBufSize) once they are buffered;
// a wait for them is bounded by the frame deadline.
func (c *conn) peek(k int) ([]byte, error) {
	if c.br.Buffered() < k {
		c.arm()
	}
	return c.br.Peek(k)
}

// readBig reads a body of n > readBufSize bytes. Its buffer grows only as
// bytes arrive (to at most twice what came, or bigStart), each
// growth reserved from the server-wide budget; every wait is bounded by
// the frame deadline.
func (c *conn) readBig(n int) ([]byte, error) {
	buf := c.big[:0]
	for len(buf) < n {
		if c.br.Buffered() == 0 {
			c.arm()
			if _, err := c.br.Peek(1); err != nil {
				return nil, err
			}
		}
		if len(buf) == cap(buf) {
			newCap := min(n, max(2*cap(buf), bigStart))
			grow := int64(newCap - cap(buf))
			if c.s.buffered.Add(grow) > c.s.cfg.MaxBuffered {
				c.s.buffered.Add(-grow)
				return nil, errBudget
			}
			c.reserved += grow
			nb := make([]byte, len(buf), newCap)
			copy(nb, buf)
			buf = nb
			c.big = nb
		}
		m, err := c.br.Read(buf[len(buf):min(cap(buf), n)])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// releaseBig drops a large body buffer above 1 MiB (or any, if all) and
// gives its bytes back to the server-wide budget.
func (c *conn) releaseBig(all bool) {
	if c.big != nil && (all || cap(c.big) > 1<<20) {
		c.big = nil
		c.s.buffered.Add(-c.reserved)
		c.reserved = 0
	}
}

// answerPlain writes one frame on a connection that is being refused and
// half-closes it, then reads what the client still sends until it closes
// (for at most a second) so that closing does not reset the connection
// before the client has read the frame.
func answerPlain(nc net.Conn, frame []byte) {
	nc.SetDeadline(time.Now().Add(time.Second))
	if _, err := nc.Write(frame); err == nil {
		if cw, ok := nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			io.Copy(io.Discard, io.LimitReader(nc, 1<<20))
		}
	}
	nc.Close()
}

// handshake completes a TLS handshake, if any, within the frame deadline.
func (c *conn) handshake() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	tc.SetWriteDeadline(time.Now().Add(c.s.cfg.FrameTimeout))
	c.setReadDeadline(time.Now().Add(c.s.cfg.FrameTimeout))
	if err := tc.Handshake(); err != nil {
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil {
			c.warn("dso: client without TLS; answered that TLS is required and closing connection", "err", err)
			answerPlain(re.Conn, wire.AppendError(nil, 0, wire.CodeDenied, dso.ErrDenied.Error()+": this endpoint requires TLS (connect with TLS: --tls-ca, Options.TLS)"))
			return false
		}
		c.warn("dso: TLS handshake failed; closing connection", "err", err)
		return false
	}
	tc.SetWriteDeadline(time.Time{})
	c.setReadDeadline(time.Time{})
	return true
}

func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer c.shutdown()
	defer c.releaseBig(true)
	if !c.handshake() {
		return
	}
	if c.sock != nil {
		c.readSock()
		return
	}
	for c.readOne() {
	}
}

// readFailed logs a read error that ends a connection between frames,
// unless it is the client's or the server's close.
func (c *conn) readFailed(err error) {
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.warn("dso: read failed; closing connection", "err", err)
	}
}

// readOne reads and handles one frame (or refuses it), waiting for its
// bytes as long as the frame deadline allows. It reports whether the
// connection goes on.
func (c *conn) readOne() bool {
	if c.s.draining.Load() {
		return false
	}
	if c.br.Buffered() == 0 {
		c.disarm()
		if _, err := c.br.Peek(1); err != nil {
			c.readFailed(err)
			return false
		}
	}
	hdr, err := c.peek(4)
	if err != nil {
		c.warn("dso: truncated frame header; closing connection", "err", err)
		return false
	}
	n := int(binary.BigEndian.Uint32(hdr))
	c.br.Discard(4)
	if n > c.s.cfg.MaxFrame {
		return c.refuseTooLarge(n)
	}
	if n == 0 {
		c.warn("dso: empty frame; closing connection")
		return false
	}
	var body []byte
	if n <= readBufSize {
		body, err = c.peek(n)
	} else {
		body, err = c.readBig(n)
	}
	if err != nil {
		c.warn("dso: truncated or stalled frame; closing connection", "err", err, "bytes", n)
		return false
	}
	if n > readBufSize {
		return c.dispatch(body, 0)
	}
	return c.dispatch(body, n)
}

// dispatch decodes a request body and handles it, then flushes the
// replies if no further request is buffered. The body lies in br, which
// then skips inBuf bytes once it is decoded, or (inBuf 0) in c.big. It
// reports whether the connection goes on.
func (c *conn) dispatch(body []byte, inBuf int) bool {
	var err error
	c.req, err = wire.DecodeRequestNames(body, &c.names)
	if err != nil {
		c.warn("dso: malformed frame; closing connection", "err", err)
		if id, ok := wire.PeekID(body); ok {
			c.write(func(b []byte) []byte {
				return wire.AppendError(b, id, wire.CodeMalformed, err.Error())
			}, true)
		}
		return false
	}
	if inBuf > 0 {
		c.br.Discard(inBuf) // the request does not alias body
	} else {
		c.releaseBig(false)
	}
	c.handle(&c.req) // handlers copy what they keep of the request
	c.req = wire.Request{}
	if c.br.Buffered() == 0 {
		c.flush()
	}
	return true
}

// sessionFrames bounds the frames one read session handles: closing a
// socket waits until its read session is waiting or over (package
// internal/poll), so a client that never lets its connection idle cannot
// hold up Close for long.
const sessionFrames = 64

// frameStep is what readReady did.
type frameStep int

const (
	frameDone frameStep = iota // handled a frame
	frameWait                  // needs bytes that have not arrived
	frameSlow                  // the next frame needs readOne
	frameStop                  // the connection is done
)

// readSock is readLoop on a plain TCP connection read by a
// sockio.Socket. It reads and handles frames inside read sessions: in a
// session the readiness of the socket is never reset, so after a read
// that emptied the socket the loop waits for the poller without first
// trying the socket (the read that would find it empty). Frames that do
// not fit the read buffer, oversized and empty ones go through readOne
// between sessions.
func (c *conn) readSock() {
	session := c.readSession
	for {
		err := c.sock.Session(session)
		switch {
		case err != nil && c.armed:
			c.warn("dso: truncated or stalled frame; closing connection", "err", err)
			return
		case err != nil:
			c.readFailed(err)
			return
		case c.step == frameStop:
			return
		case c.step == frameSlow && !c.readOne():
			return
		}
	}
}

// readSession is readSock's session function: it handles the frames whose
// bytes are there, at most sessionFrames of them, leaving in c.step what
// it did last.
func (c *conn) readSession() bool {
	for range sessionFrames {
		switch c.step = c.readReady(); c.step {
		case frameWait:
			return false
		case frameSlow, frameStop:
			return true
		}
	}
	return true
}

// readReady handles the next frame of a read session if its bytes are
// there (arming the frame deadline when a frame is incomplete).
func (c *conn) readReady() frameStep {
	if c.s.draining.Load() {
		return frameStop
	}
	if c.br.Buffered() == 0 {
		c.disarm()
		if _, err := c.br.Peek(1); err != nil {
			if err == sockio.ErrWouldBlock {
				return frameWait
			}
			c.readFailed(err)
			return frameStop
		}
	}
	hdr, err := c.peek(4)
	if err == sockio.ErrWouldBlock {
		return frameWait
	}
	if err != nil {
		c.warn("dso: truncated frame header; closing connection", "err", err)
		return frameStop
	}
	n := int(binary.BigEndian.Uint32(hdr))
	if n == 0 || n > c.s.cfg.MaxFrame || 4+n > readBufSize {
		return frameSlow
	}
	f, err := c.peek(4 + n)
	if err == sockio.ErrWouldBlock {
		return frameWait
	}
	if err != nil {
		c.warn("dso: truncated or stalled frame; closing connection", "err", err, "bytes", n)
		return frameStop
	}
	if !c.dispatch(f[4:], 4+n) {
		return frameStop
	}
	return frameDone
}

// refuseTooLarge answers an oversized call with an error and skips its
// body; it reports whether the connection can go on.
func (c *conn) refuseTooLarge(n int) bool {
	if n > 64*c.s.cfg.MaxFrame || n < 9 {
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(n))
		if f := wire.Foreign(hdr[:]); f != "" {
			c.warn("dso: client does not speak the DSO protocol; closing connection", "looks_like", f)
		} else {
			c.warn("dso: frame far above the size limit; closing connection", "bytes", n, "limit", c.s.cfg.MaxFrame)
		}
		return false
	}
	head, err := c.peek(9)
	if err != nil {
		return false
	}
	id := binary.BigEndian.Uint64(head[1:])
	for left := n; left > 0; {
		if c.br.Buffered() == 0 {
			c.arm()
		}
		d, err := c.br.Discard(min(left, readBufSize))
		left -= d
		if err != nil {
			return false
		}
	}
	c.s.warns.warn(c.s.log, "dso: refused an oversized request", "remote", c.nc.RemoteAddr().String(), "bytes", n, "limit", c.s.cfg.MaxFrame)
	msg := fmt.Sprintf("%v: request of %d bytes, limit %d", dso.ErrTooLarge, n, c.s.cfg.MaxFrame)
	c.write(func(b []byte) []byte { return wire.AppendError(b, id, wire.CodeTooLarge, msg) }, true)
	return true
}

func (c *conn) handle(q *wire.Request) {
	switch q.Op {
	case wire.OpCall:
		c.handleCall(q)
	case wire.OpCallP, wire.OpDeleteP, wire.OpMulti:
		c.handlePersistent(q)
	case wire.OpCancel:
		c.pmu.Lock()
		pc := c.parked[q.ID]
		c.pmu.Unlock()
		if pc != nil {
			c.s.withdraw(pc.e, pc.w, dso.ErrCanceled)
		}
		c.cancelPersistent(q.ID)
	case wire.OpTopology:
		if !c.need(q, RightRead, "TOPOLOGY") {
			return
		}
		c.replyValue(q.ID, c.s.topology(), nil)
	case wire.OpHello:
		c.hello(q)
	case wire.OpDelete:
		if !c.need(q, RightAdmin, "DELETE") {
			return
		}
		c.replyValue(q.ID, c.s.delete(dso.Ref{Type: q.Type, Key: q.Key}), nil)
	case wire.OpMembers:
		if !c.need(q, RightRead, "MEMBERS") {
			return
		}
		ms := make([]any, len(c.s.cfg.Members))
		for i, m := range c.s.cfg.Members {
			ms[i] = m
		}
		c.replyValue(q.ID, ms, nil)
	case wire.OpList:
		if !c.need(q, RightAdmin, "LIST") {
			return
		}
		c.replyValue(q.ID, append(c.s.list(q.Type), c.s.listPersistent(q.Type)...), nil)
	case wire.OpPing:
		c.replyValue(q.ID, nil, nil)
	}
}

// need answers q with a denied error unless the connection has rights r.
func (c *conn) need(q *wire.Request, r Rights, what string) bool {
	if c.rights >= r {
		return true
	}
	err := fmt.Errorf("%w: %s needs %s rights; this connection has %s", dso.ErrDenied, what, r, c.rights)
	c.logRefusal(q, err)
	c.replyValue(q.ID, nil, err)
	return false
}

// hello authenticates the connection with the token of q. Without
// authentication on the server, any token (or none) gives RightAdmin.
func (c *conn) hello(q *wire.Request) {
	c.incs = q.Flags&wire.HelloIncarnations != 0
	if c.s.tokens == nil {
		c.replyValue(q.ID, c.rights.String(), nil)
		return
	}
	r, ok := c.s.tokens[hashToken(q.Key)]
	if !ok {
		c.rights = RightNone
		err := fmt.Errorf("%w: unknown token", dso.ErrDenied)
		c.logRefusal(q, err)
		c.replyValue(q.ID, nil, err)
		return
	}
	c.rights = r
	c.replyValue(q.ID, r.String(), nil)
}

// maxTimeoutMs is the longest timeout_ms a time.Duration can hold (292
// years); a longer one means no timeout.
const maxTimeoutMs = uint64(math.MaxInt64 / int64(time.Millisecond))

// parker parks one call of a connection; its incarnation is filled in by
// Server.call, under the object's lock, before the call can park.
type parker struct {
	c   *conn
	id  uint64
	inc uint64
	w   *dso.Waiter
}

func (p *parker) park() *dso.Waiter {
	p.w = dso.NewWaiter(p.reply)
	return p.w
}

func (p *parker) reply(v any, err error) { p.c.replyParked(p.id, p.inc, v, err) }

func (c *conn) handleCall(q *wire.Request) {
	id := q.ID
	if c.pk == nil || c.pk.w != nil { // none yet, or the last call parked on it
		c.pk = &parker{c: c}
		c.parkFn = c.pk.park
	}
	pk := c.pk
	pk.id, pk.inc = id, 0
	v, e, inc, err := c.s.call(dso.Ref{Type: q.Type, Key: q.Key}, q.Method, q.Args, q.Ctor, c.parkFn, c.rights, &pk.inc)
	w := pk.w
	if e == nil {
		if err != nil {
			c.logRefusal(q, err)
		}
		if c.incs && err == nil {
			c.write(func(b []byte) []byte { return appendReplyInc(b, id, inc, v) }, false)
			return
		}
		c.replyValue(id, v, err)
		return
	}
	pc := &parkedCall{e: e, w: w}
	c.pmu.Lock()
	if c.parked == nil { // connection already shut down
		c.pmu.Unlock()
		c.s.withdraw(e, w, dso.ErrCanceled)
		return
	}
	c.parked[id] = pc
	if timeout := q.Timeout; timeout > 0 && timeout <= maxTimeoutMs { // longer: as good as none
		pc.timer = time.AfterFunc(time.Duration(timeout)*time.Millisecond, func() {
			c.s.withdraw(e, w, fmt.Errorf("%w after %d ms", dso.ErrTimeout, timeout))
		})
	}
	c.pmu.Unlock()
	if w.Done() { // released before it was registered
		c.unpark(id)
	}
}

// logRefusal logs a call refused for bad input, once per connection and
// kind of error, so that a misbehaving client cannot flood the log.
func (c *conn) logRefusal(q *wire.Request, err error) {
	code := dso.CodeOf(err)
	switch code {
	case wire.CodeUnknownType, wire.CodeUnknownMethod, wire.CodeBadArgs, wire.CodeWrongNode, wire.CodeTooLarge,
		wire.CodeDenied, wire.CodeLimit:
	default:
		return
	}
	if c.logged&(1<<code) != 0 {
		return
	}
	c.logged |= 1 << code
	c.s.warns.warn(c.s.log, "dso: refused a call (further ones of this kind on this connection are not logged)",
		"remote", c.nc.RemoteAddr().String(), "code", code.String(), "type", q.Type, "method", q.Method, "err", err)
}

func (c *conn) unpark(id uint64) {
	c.pmu.Lock()
	if pc := c.parked[id]; pc != nil && pc.w.Done() {
		if pc.timer != nil {
			pc.timer.Stop()
		}
		delete(c.parked, id)
	}
	c.pmu.Unlock()
}

func (c *conn) replyValue(id uint64, v any, err error) {
	c.write(func(b []byte) []byte { return appendReply(b, id, v, err) }, false)
}

// appendReplyInc appends a successful reply carrying an incarnation.
func appendReplyInc(b []byte, id, inc uint64, v any) []byte {
	b2, eerr := wire.AppendOKInc(b, id, inc, v)
	if eerr != nil {
		return wire.AppendError(b, id, wire.CodeInternal, "dso: encode reply: "+eerr.Error())
	}
	return b2
}

func appendReply(b []byte, id uint64, v any, err error) []byte {
	if err != nil {
		return wire.AppendError(b, id, dso.CodeOf(err), err.Error())
	}
	b2, eerr := wire.AppendOK(b, id, v)
	if eerr != nil {
		return wire.AppendError(b, id, wire.CodeInternal, "dso: encode reply: "+eerr.Error())
	}
	return b2
}

// replyParked answers a parked call. It may run under an object's lock, so
// it only queues the reply for the connection's async writer.
func (c *conn) replyParked(id, inc uint64, v any, err error) {
	c.amu.Lock()
	if !c.done {
		if c.incs && err == nil {
			c.async = appendReplyInc(c.async, id, inc, v)
		} else {
			c.async = appendReply(c.async, id, v, err)
		}
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	c.amu.Unlock()
	c.unpark(id)
}

// replyPos answers a call at the sequential level with its log position
// (OpOKPos), through the async writer as replyParked does.
func (c *conn) replyPos(id, pos uint64, v any) {
	c.amu.Lock()
	if !c.done {
		b, err := wire.AppendOKPos(c.async, id, pos, v)
		if err != nil {
			b = wire.AppendError(c.async, id, wire.CodeInternal, "dso: encode reply: "+err.Error())
		}
		c.async = b
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	c.amu.Unlock()
	c.unpark(id)
}

func (c *conn) asyncWriter() {
	defer c.s.wg.Done()
	defer close(c.wdone)
	for range c.kick {
		c.amu.Lock()
		out := c.async
		c.async = c.spare[:0]
		c.amu.Unlock()
		if len(out) > 0 {
			c.wmu.Lock()
			if !c.broken {
				c.out = append(c.out, out...)
				c.flushLocked()
			}
			c.wmu.Unlock()
		}
		c.amu.Lock()
		c.spare = out
		c.amu.Unlock()
	}
}

// write appends one reply frame, encoded by enc in place, and writes the
// replies out if asked or if writeBatch bytes wait.
func (c *conn) write(enc func([]byte) []byte, flush bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.broken {
		return
	}
	c.out = enc(c.out)
	if flush || len(c.out) >= writeBatch {
		c.flushLocked()
	}
}

func (c *conn) flush() {
	c.wmu.Lock()
	c.flushLocked()
	c.wmu.Unlock()
}

// flushLocked writes the waiting replies, with wmu held.
func (c *conn) flushLocked() {
	if c.broken || len(c.out) == 0 {
		return
	}
	if _, err := (countWriter{c}).Write(c.out); err != nil {
		c.broken = true
	}
	if cap(c.out) > keptOut {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
}

// shutdown closes the connection and withdraws its parked calls; if the
// server is closing, gracefully (see Server.Close): the parked calls fail
// with dso.ErrClosing, and the goodbye frame follows every answer.
func (c *conn) shutdown() {
	graceful := c.s.draining.Load()
	if graceful {
		c.nc.SetWriteDeadline(time.Now().Add(goodbyeWait))
	}
	c.flush()
	if !graceful {
		c.nc.Close()
	}
	c.pmu.Lock()
	parked := c.parked
	c.parked = nil
	pcalls := c.pcalls
	c.pcalls = nil
	c.pmu.Unlock()
	why := dso.ErrCanceled
	if graceful {
		why = fmt.Errorf("%w: the call was withdrawn while parked", dso.ErrClosing)
	}
	for _, pc := range parked {
		if pc.timer != nil {
			pc.timer.Stop()
		}
		c.s.withdraw(pc.e, pc.w, why)
	}
	c.amu.Lock()
	c.done = true
	close(c.kick)
	c.amu.Unlock()
	// Persistent calls in flight are left unanswered (answers from now on
	// are dropped): they may have executed, but the client sends them
	// again under the same session number, which the replicas execute at
	// most once.
	for _, cancel := range pcalls {
		cancel(errConnClosed)
	}
	if graceful {
		<-c.wdone // every answer queued before done is written
		c.goodbye()
	}
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.metrics.closedRead += c.nread.Load()
	c.s.metrics.closedWritten += c.nwritten.Load()
	release := c.s.peakConns >= releaseBurst && len(c.s.conns) <= c.s.peakConns/4
	if release {
		c.s.peakConns = len(c.s.conns)
	}
	c.s.mu.Unlock()
	if release {
		c.s.releaseMemory()
	}
}

// goodbye ends a connection of a closing server: it writes the id-0
// CodeClosing frame after every answer, half-closes the connection and
// discards what the client still sends until the client closes (or
// goodbyeWait passes), so that closing with unread bytes does not reset
// the connection before the client has read the goodbye.
func (c *conn) goodbye() {
	defer c.nc.Close()
	c.write(func(b []byte) []byte {
		return wire.AppendError(b, 0, wire.CodeClosing, dso.ErrClosing.Error()+": nothing further read on this connection was executed; send unanswered calls again on a new connection")
	}, true)
	c.wmu.Lock()
	broken := c.broken
	c.wmu.Unlock()
	if broken {
		return
	}
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	raw := c.nc // a TLS connection's reads fail for good after the read loop's deadline: read its socket
	if tc, ok := raw.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	raw.SetReadDeadline(time.Now().Add(goodbyeWait))
	io.Copy(io.Discard, raw)
}

// releaseBurst is the smallest burst of connections whose end returns the
// memory they used to the operating system.
const releaseBurst = 256

// releaseDelay is how long after three quarters of a burst's connections
// closed their memory is released, so that the rest of the burst, closing
// at about the same time, is released with them.
const releaseDelay = 250 * time.Millisecond

// releaseMemory returns the memory of a burst of connections that ended
// (their buffers and goroutine stacks) to the operating system, in the
// background after releaseDelay: the runtime's scavenger only gives back
// what exceeds the heap goal of the last collection, which an idle server
// may not run for minutes. At most one release a second.
func (s *Server) releaseMemory() {
	now := time.Now().UnixNano()
	last := s.lastRelease.Load()
	if now-last < int64(time.Second) || !s.lastRelease.CompareAndSwap(last, now) {
		return
	}
	s.releases.Add(1)
	time.AfterFunc(releaseDelay, debug.FreeOSMemory)
}
