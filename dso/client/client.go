// Package client is the Go client of the DSO: it dials one or more
// endpoints of a cluster, learns the cluster's members, and routes every
// call to the node that owns its object on the consistent-hash ring.
//
// A Client is safe for concurrent use and pipelines: each node has a few
// connections, each carrying many calls in flight matched by request id.
// Calls on one object from one Client travel on one connection, so they
// reach the server in the order they were issued. A lost connection fails
// its calls in flight with ErrUnavailable (their outcome is unknown) and
// is re-dialled with exponential back-off by the next call. A server that
// closes gracefully says so on the connection (wire.CodeClosing, id 0)
// after answering every call it read: the calls still unanswered then were
// never executed (or, persistent ones, are executed at most once under
// their session number), and are sent again on a new connection, within
// RetryFor and the context's deadline. A context's
// deadline is sent with each call, and cancelling the context withdraws
// the call from the server.
//
//	c, err := client.Dial(ctx, "localhost:7400")
//	hits := dso.NewAtomicLong(c, "hits")
//	n, err := hits.AddAndGet(ctx, 1)
package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/ring"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/internal/sockio"
)

// ErrUnavailable is returned when a node cannot be reached or the
// connection broke while a call was in flight (the call may or may not
// have taken effect).
var ErrUnavailable = errors.New("dso/client: node unavailable")

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("dso/client: client closed")

// Options configures a Client.
type Options struct {
	// Endpoints are host:port addresses of some nodes of the cluster.
	Endpoints []string
	// ConnsPerNode is the number of connections per node (default 4);
	// objects are spread over them by hash.
	ConnsPerNode int
	// DialTimeout bounds one connection attempt, TLS handshake and HELLO
	// included (default 2s).
	DialTimeout time.Duration
	// RequestTimeout bounds the requests that never wait on an object
	// (MEMBERS, LIST, PING, DELETE) when the context has no earlier
	// deadline (default 5s). A node that does not answer one in time is
	// taken for frozen: its connection is closed, and DialOptions moves on
	// to the next endpoint.
	RequestTimeout time.Duration
	// ProbeInterval is how often a connection with calls in flight checks
	// that its node still answers (default 2s): after an interval without
	// a reply it sends a PING, and if no reply of any kind comes in the
	// next interval either, the connection fails its calls with
	// ErrUnavailable. Calls that park (a barrier's await, ...) may thus
	// wait as long as they like on a node that is alive, and none waits for
	// ever on a frozen one.
	ProbeInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts (defaults 10ms and 1s).
	MinBackoff, MaxBackoff time.Duration
	// RetryFor bounds how long a call keeps trying to reach a node that is
	// down (default 5s; the context's deadline, if earlier, wins).
	RetryFor time.Duration
	// MaxFrame is the largest reply accepted (default 256 MiB).
	MaxFrame int
	// NoDiscovery keeps the ring on Endpoints instead of asking the
	// servers for the cluster's members.
	NoDiscovery bool
	// Logger receives the client's logs; nil means slog.Default().
	Logger *slog.Logger
	// TLS, if not nil, makes every connection TLS with this configuration
	// (RootCAs to trust the servers' CA, Certificates for mutual TLS).
	// Its ServerName, if empty, is taken from each endpoint's host.
	TLS *tls.Config
	// Token, if not empty, is sent in a HELLO on every new connection
	// before any call; a refused token fails the connection with an error
	// wrapping dso.ErrDenied.
	Token string
	// Incarnations asks the servers (in the HELLO of every connection) to
	// send with each successful call the incarnation of the object called;
	// CallIncarnation needs it.
	Incarnations bool

	// For tests (export_test.go): idleCheck, if not 0, replaces the
	// package's idleCheck (negative: never check).
	idleCheck time.Duration
	// If probeTick is not nil, the watchdog
	// checks at each of its ticks instead of every ProbeInterval, and
	// reports each check's outcome ("quiet", "probe" or "fail") to
	// probeEvents if that is not nil.
	probeTick   <-chan time.Time
	probeEvents chan<- string
	// readHook, if not nil, is called by each connection's read loop with
	// the outcome of every frame read before it acts on it.
	readHook func(err error)
}

func (o *Options) fill() error {
	if len(o.Endpoints) == 0 {
		return fmt.Errorf("dso/client: no endpoints")
	}
	if o.ConnsPerNode <= 0 {
		o.ConnsPerNode = 4
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 2 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = 2 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 10 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(time.Second, o.MinBackoff)
	}
	if o.RetryFor <= 0 {
		o.RetryFor = 5 * time.Second
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = 256 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Client is a connection to a DSO cluster.
type Client struct {
	opts    Options
	ring    *ring.Ring
	nodes   map[string]*node
	only    *node // the node of a one-node ring, else nil
	session *session

	topoMu  sync.Mutex
	topo    Topology
	topoSet bool // topo was fetched

	mu      sync.Mutex
	created map[dso.Ref]struct{}
	closed  bool
}

// Dial connects to the cluster reachable at endpoints.
func Dial(ctx context.Context, endpoints ...string) (*Client, error) {
	return DialOptions(ctx, Options{Endpoints: endpoints})
}

// DialOptions connects with explicit options. It reaches at least one
// endpoint, asks it for the cluster's members, and builds the ring.
func DialOptions(ctx context.Context, opts Options) (*Client, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	c := &Client{opts: opts, nodes: map[string]*node{}, created: map[dso.Ref]struct{}{}, session: newSession()}
	members := opts.Endpoints
	var firstErr error
	reached := false
	for _, ep := range opts.Endpoints {
		n := c.node(ep)
		v, err := n.request(ctx, 0, bounded|failFast, func(b []byte, id uint64) ([]byte, error) {
			return wire.AppendSimple(b, wire.OpMembers, id), nil
		})
		if err != nil {
			firstErr = cmpErr(firstErr, err)
			continue
		}
		reached = true
		if l, ok := v.([]any); ok && len(l) > 0 && !opts.NoDiscovery {
			members = members[:0:0]
			for _, m := range l {
				if s, ok := m.(string); ok {
					members = append(members, s)
				}
			}
		}
		break
	}
	if !reached {
		c.Close()
		if len(opts.Endpoints) > 1 {
			return nil, fmt.Errorf("%w (no endpoint of %s answered)", firstErr, strings.Join(opts.Endpoints, ", "))
		}
		return nil, firstErr
	}
	r, err := ring.New(members, 0)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.ring = r
	if ms := r.Nodes(); len(ms) == 1 {
		c.only = c.node(ms[0])
	}
	return c, nil
}

// route returns the node that owns ref and the connection slot of ref on
// it. A one-node cluster skips the ring, and a node of one connection the
// hash.
func (c *Client) route(ref dso.Ref) (*node, int) {
	n := c.only
	if n == nil {
		n = c.node(c.ring.Owner(ref.Type, ref.Key))
	}
	if len(n.conns) == 1 {
		return n, 0
	}
	return n, int(ring.HashRef(ref.Type, ref.Key) >> 32)
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// Members returns the nodes of the ring, sorted.
func (c *Client) Members() []string { return c.ring.Nodes() }

// Owner returns the endpoint of the node that holds ref.
func (c *Client) Owner(ref dso.Ref) string { return c.ring.Owner(ref.Type, ref.Key) }

func (c *Client) node(addr string) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[addr]
	if n == nil {
		n = &node{c: c, addr: addr, conns: make([]*connSlot, c.opts.ConnsPerNode)}
		for i := range n.conns {
			n.conns[i] = &connSlot{}
		}
		c.nodes[addr] = n
	}
	return n
}

// Call invokes method on the object ref, creating it with ctor if absent.
func (c *Client) Call(ctx context.Context, ref dso.Ref, method string, args, ctor []any) (any, error) {
	v, _, err := c.call(ctx, ref, method, args, ctor)
	return v, err
}

// ErrNoIncarnations is returned by CallIncarnation on a Client dialled
// without Options.Incarnations.
var ErrNoIncarnations = errors.New("dso/client: dialled without Options.Incarnations")

// CallIncarnation is Call that also returns the incarnation of the object:
// a number that stays the same as long as the object lives on its node,
// and changes when the object is made again (deleted and recreated, or
// lost by a node restarted without durable storage and then recreated by
// a call). A read of an object that does not exist returns 0 (it created
// nothing). Objects kept in pmem storage keep their incarnation across
// restarts. It needs a Client dialled with Options.Incarnations.
func (c *Client) CallIncarnation(ctx context.Context, ref dso.Ref, method string, args, ctor []any) (any, uint64, error) {
	if !c.opts.Incarnations {
		return nil, 0, ErrNoIncarnations
	}
	return c.call(ctx, ref, method, args, ctor)
}

func (c *Client) call(ctx context.Context, ref dso.Ref, method string, args, ctor []any) (any, uint64, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, 0, ErrClosed
	}
	if _, ok := c.created[ref]; !ok {
		c.created[ref] = struct{}{}
	}
	c.mu.Unlock()
	n, slot := c.route(ref)
	timeout := uint64(0)
	if dl, ok := ctx.Deadline(); ok {
		ms := math.Ceil(float64(time.Until(dl)) / float64(time.Millisecond))
		timeout = uint64(max(ms, 1))
	}
	v, inc, err := n.requestInc(ctx, slot, 0, func(b []byte, id uint64) ([]byte, error) {
		return wire.AppendCall(b, id, timeout, ref.Type, ref.Key, method, args, ctor)
	})
	return v, inc, err
}

// Delete removes the object ref from its node; it reports whether it
// existed. Calls parked on it fail with dso.ErrClosed.
func (c *Client) Delete(ctx context.Context, ref dso.Ref) (bool, error) {
	c.mu.Lock()
	delete(c.created, ref)
	c.mu.Unlock()
	n := c.node(c.ring.Owner(ref.Type, ref.Key))
	v, err := n.request(ctx, 0, bounded, func(b []byte, id uint64) ([]byte, error) {
		return wire.AppendSimple(b, wire.OpDelete, id, ref.Type, ref.Key), nil
	})
	b, _ := v.(bool)
	return b, err
}

// Created lists the objects this client has called, sorted.
func (c *Client) Created() []dso.Ref {
	c.mu.Lock()
	out := make([]dso.Ref, 0, len(c.created))
	for r := range c.created {
		out = append(out, r)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// Clear deletes every object this client has called.
func (c *Client) Clear(ctx context.Context) error {
	var errs []error
	for _, r := range c.Created() {
		if _, err := c.Delete(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// List returns the objects held by the cluster whose type starts with
// prefix, sorted. If some nodes do not answer, it returns the objects of
// those that did and an error naming each node that did not (a *ListError).
func (c *Client) List(ctx context.Context, prefix string) ([]dso.Ref, error) {
	objs, err := c.list(ctx, prefix)
	var out []dso.Ref
	for _, o := range objs {
		if !o.Persistent {
			out = append(out, o.Ref)
		}
	}
	return out, err
}

// ListError reports the nodes that did not answer a List.
type ListError struct {
	Failed []string // endpoints of the nodes that did not answer
	Errs   []error  // why, in the same order
}

// Error names every node that did not answer, and why.
func (e *ListError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, n := range e.Failed {
		parts[i] = fmt.Sprintf("node %s: %v", n, e.Errs[i])
	}
	return "objects of " + strings.Join(e.Failed, ", ") + " not listed: " + strings.Join(parts, "; ")
}

// Unwrap returns the errors of the nodes.
func (e *ListError) Unwrap() []error { return e.Errs }

// Ping checks that every node answers.
func (c *Client) Ping(ctx context.Context) error {
	for _, m := range c.ring.Nodes() {
		if _, err := c.node(m).request(ctx, 0, bounded, func(b []byte, id uint64) ([]byte, error) {
			return wire.AppendSimple(b, wire.OpPing, id), nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// Close closes every connection; calls in flight fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	nodes := make([]*node, 0, len(c.nodes))
	for _, n := range c.nodes {
		nodes = append(nodes, n)
	}
	c.mu.Unlock()
	for _, n := range nodes {
		for _, s := range n.conns {
			s.mu.Lock()
			s.closed = true
			cn := s.cn
			s.mu.Unlock()
			if cn != nil {
				cn.fail(ErrClosed)
			}
		}
	}
	return nil
}

// node is one server, reached through ConnsPerNode connection slots.
type node struct {
	c     *Client
	addr  string
	conns []*connSlot
	// suspectUntil (Unix ns): until then persistent calls try the other
	// replicas of a group first (see Client.preferLive).
	suspectUntil atomic.Int64
}

// connSlot holds one connection and its reconnection state.
type connSlot struct {
	mu       sync.Mutex
	cn       *conn
	closed   bool
	failures int
	nextTry  time.Time
}

// get returns a live connection of slot i, dialling with back-off.
func (n *node) get(ctx context.Context, i int, failFast bool) (*conn, error) {
	s := n.conns[i%len(n.conns)]
	deadline := time.Now().Add(n.c.opts.RetryFor)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if s.cn != nil && !s.cn.dead() {
			cn := s.cn
			s.mu.Unlock()
			return cn, nil
		}
		wait := time.Until(s.nextTry)
		if wait <= 0 {
			cn, err := n.dial(ctx)
			if err == nil {
				s.cn, s.failures = cn, 0
				s.mu.Unlock()
				return cn, nil
			}
			var re *dso.RemoteError
			if errors.As(err, &re) && re.Code != wire.CodeClosing { // the node answered: its verdict stands
				s.mu.Unlock()
				return nil, fmt.Errorf("%s: %w", n.addr, err)
			}
			if failFast {
				s.mu.Unlock()
				return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, n.addr, describeDialErr(err))
			}
			s.failures++
			b := n.c.opts.MinBackoff << min(s.failures-1, 20)
			s.nextTry = time.Now().Add(min(b, n.c.opts.MaxBackoff))
			wait = time.Until(s.nextTry)
			if s.failures == 1 {
				n.c.opts.Logger.Warn("dso/client: node unreachable; retrying with back-off", "node", n.addr, "err", err)
			}
			if time.Now().Add(wait).After(deadline) {
				s.mu.Unlock()
				return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, n.addr, err)
			}
		}
		s.mu.Unlock()
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("%w: %s: still backing off", ErrUnavailable, n.addr)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (n *node) dial(ctx context.Context) (*conn, error) {
	o := &n.c.opts
	d := &net.Dialer{Timeout: o.DialTimeout}
	var nc net.Conn
	var err error
	if o.TLS != nil {
		cfg := o.TLS
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(n.addr)
		}
		nc, err = (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", n.addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", n.addr)
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
	}
	if err != nil {
		return nil, err
	}
	cn := newConn(nc, o)
	if o.Token != "" || o.Incarnations {
		flags := uint64(0)
		if o.Incarnations {
			flags |= wire.HelloIncarnations
		}
		if err := hello(nc, cn.br, o.Token, flags, o.DialTimeout, o.MaxFrame); err != nil {
			nc.Close()
			return nil, err
		}
	}
	if cn.sock != nil {
		go cn.roleLoop()
	} else {
		go cn.readLoop()
	}
	go cn.watchdog(o, n.addr)
	return cn, nil
}

// newConn makes the conn of the connection nc, read and written through a
// sockio.Socket if nc allows one; its reader and watchdog are not started.
func newConn(nc net.Conn, o *Options) *conn {
	sock := sockio.New(nc)
	rw := io.ReadWriter(nc)
	if sock != nil {
		rw = sock
	}
	cn := &conn{nc: nc, br: bufio.NewReaderSize(rw, 64<<10), w: rw, sock: sock, pending: map[uint64]chan result{},
		maxFrame: o.MaxFrame, stop: make(chan struct{}), readHook: o.readHook,
		idleWait: o.idleCheck, idleSince: time.Now(), wake: make(chan struct{}, 1)}
	if cn.idleWait == 0 {
		cn.idleWait = idleCheck
	}
	return cn
}

// describeDialErr rewords the dial errors whose cause is known.
func describeDialErr(err error) error {
	var re tls.RecordHeaderError
	if errors.As(err, &re) {
		return fmt.Errorf("%w (TLS handshake answered by something else: %v)", errNotDSO, err)
	}
	return err
}

// errNotDSO is the error for an endpoint that answers in another protocol.
var errNotDSO = wire.ErrForeign

// errClosedSilently is the error of a connection that the endpoint closed
// before its first answer.
var errClosedSilently = errors.New("the endpoint closed the connection without answering (does it want TLS, a client certificate, or is it not a DSO server?)")

// hello authenticates a new connection with token, once per connection.
func hello(nc net.Conn, br *bufio.Reader, token string, flags uint64, timeout time.Duration, maxFrame int) error {
	nc.SetDeadline(time.Now().Add(timeout))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(wire.AppendHello(nil, 0, flags, token)); err != nil {
		return err
	}
	body, err := wire.ReadFrame(br, nil, maxFrame)
	if errors.Is(err, io.EOF) {
		return errClosedSilently
	}
	if err != nil {
		return err
	}
	r, err := wire.DecodeReply(body)
	if err != nil {
		return fmt.Errorf("%w: %v", errNotDSO, err)
	}
	if !r.OK {
		return &dso.RemoteError{Code: r.Code, Msg: r.Msg}
	}
	return nil
}

type result struct {
	v   any
	inc uint64 // Reply.Incarnation
	pos uint64 // Reply.Position
	err error
}

var chanPool = sync.Pool{New: func() any { return make(chan result, 1) }}

// Modes of a request.
const (
	bounded  = 1 << iota // never parks: bounded by RequestTimeout
	failFast             // a failed dial is not retried
)

// request sends one frame built by enc on slot i and waits for its reply.
func (n *node) request(ctx context.Context, slot int, mode int, enc func([]byte, uint64) ([]byte, error)) (any, error) {
	v, _, err := n.requestInc(ctx, slot, mode, enc)
	return v, err
}

// requestInc is request that also returns the reply's incarnation.
func (n *node) requestInc(ctx context.Context, slot int, mode int, enc func([]byte, uint64) ([]byte, error)) (any, uint64, error) {
	r := n.requestResult(ctx, slot, mode, enc)
	return r.v, r.inc, r.err
}

// requestResult is request that returns the whole result: value,
// incarnation, position and error.
func (n *node) requestResult(ctx context.Context, slot int, mode int, enc func([]byte, uint64) ([]byte, error)) result {
	if err := ctx.Err(); err != nil {
		return result{err: fmt.Errorf("%w: %w", dso.ErrCanceled, err)}
	}
	var timeout <-chan time.Time
	if mode&bounded != 0 {
		rt := n.c.opts.RequestTimeout
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > rt {
			t := time.NewTimer(rt)
			defer t.Stop()
			timeout = t.C
		}
	}
	retryUntil := time.Now().Add(n.c.opts.RetryFor)
again:
	cn, err := n.get(ctx, slot, mode&failFast != 0)
	if err != nil {
		return result{err: err}
	}
	own := cn.sock != nil && mode&bounded == 0 // the call may read its own reply
	if own && !cn.checkIdle() {
		goto again // the server closed the connection while it was idle
	}
	ch := chanPool.Get().(chan result)
	id, err := cn.reserve(ch)
	written := false
	if err == nil && own {
		if gen, ok := cn.takeRole(); ok {
			r, end := cn.callOwn(ctx, enc, ch, id, gen)
			switch end {
			case ownReplied:
				chanPool.Put(ch)
				if errors.Is(r.err, errGoodbye) && time.Now().Before(retryUntil) {
					goto again // the server said it did not execute it
				}
				return r
			case ownCanceled, ownUnsent:
				if end == ownCanceled {
					cn.sendCancel(id)
				}
				return result{err: fmt.Errorf("%w: %w", dso.ErrCanceled, ctx.Err())}
			}
			written = true // ownQueued: the read loop reads the reply
		}
	}
	if err == nil && !written {
		err = cn.writeCall(enc, id)
	}
	if err != nil {
		chanPool.Put(ch)
		if errors.Is(err, errGoodbye) && time.Now().Before(retryUntil) {
			goto again // the server never read it
		}
		return result{err: err}
	}
	if !written {
		cn.ensureReader() // this call is pending
	}
	select {
	case r := <-ch:
		chanPool.Put(ch)
		if errors.Is(r.err, errGoodbye) && time.Now().Before(retryUntil) {
			goto again // the server said it did not execute it
		}
		return r
	case <-ctx.Done():
		if cn.forget(id) {
			cn.sendCancel(id)
		}
		return result{err: fmt.Errorf("%w: %w", dso.ErrCanceled, ctx.Err())}
	case <-timeout:
		err := fmt.Errorf("%w: %s did not answer within %v", ErrUnavailable, n.addr, n.c.opts.RequestTimeout)
		cn.fail(err)
		return result{err: err}
	}
}

// conn is one pipelined connection.
type conn struct {
	nc       net.Conn
	br       *bufio.Reader
	maxFrame int

	w    io.Writer      // what calls are written to: nc, or sock
	sock *sockio.Socket // nc's socket read and written directly, if nc is plain TCP

	// The reader's state: the read loop's, or (with sock) the reader
	// role's holder's (see readRole).
	mode      readMode
	own       chan result                          // modeOwn: the holder's own call's
	ownEnc    func([]byte, uint64) ([]byte, error) // modeOwn: the call to write first (see callOwn)
	ownID     uint64
	ownErr    error         // why writeOwn could not encode the call
	ownQueued bool          // writeOwn left the call in the output
	slow      bool          // the next frame is for wire.ReadFrame
	done      bool          // the mode's end came
	stopErr   error         // the error that ended a read session and the connection
	buf       []byte        // readFrame's buffer
	idleWait  time.Duration // how long the connection may idle before checkIdle reads it

	wmu      sync.Mutex
	out      []byte // frames waiting to be written
	spare    []byte
	flushing bool // a caller is writing out

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan result
	err     error // set once the connection is dead
	// The reader role (with sock; see readRole).
	reading     bool          // a goroutine holds the role
	readerGen   uint64        // counts the role's holders, so that a late interrupt spares the next one
	interrupted bool          // the holder's read deadline is set to interrupt it
	idleSince   time.Time     // when the role was last left with no call pending
	wake        chan struct{} // hands the role to the read loop

	reads atomic.Uint64 // frames read, for the watchdog
	stop  chan struct{} // closed when the connection dies

	readHook func(error) // Options.readHook
}

// errGoodbye marks the failure of a connection whose server closed it
// gracefully (wire.CodeClosing, id 0): the calls it had not answered were
// not executed, and may be sent again.
var errGoodbye = errors.New("the server closed the connection gracefully (calls it had not answered were not executed)")

// watchdog checks, every interval, that a node with calls in flight still
// answers: after an interval without a frame it sends a PING (answered by
// a live server at once, whatever its calls are waiting for), and after a
// second one it fails the connection. Each check is a full interval after
// the previous one ends (a timer, not a ticker: a ticker whose goroutine
// ran late fires twice back to back, and the second check would fail a
// PING sent a moment before).
func (c *conn) watchdog(o *Options, addr string) {
	interval := o.ProbeInterval
	tick := o.probeTick
	var t *time.Timer
	if tick == nil {
		t = time.NewTimer(interval)
		defer t.Stop()
		tick = t.C
	}
	last, probing := c.reads.Load(), false
	for {
		select {
		case <-c.stop:
			return
		case <-tick:
		}
		c.mu.Lock()
		busy := len(c.pending) > 0
		c.mu.Unlock()
		cur := c.reads.Load()
		var event string
		switch {
		case !busy || cur != last:
			last, probing = cur, false
			event = "quiet"
		case !probing:
			probing = true
			c.wmu.Lock()
			c.out = wire.AppendSimple(c.out, wire.OpPing, 0)
			c.flushLocked()
			event = "probe"
		default:
			c.fail(fmt.Errorf("%w: %s: no answer for %v, not even to a ping", ErrUnavailable, addr, 2*interval))
			event = "fail"
		}
		if o.probeEvents != nil {
			o.probeEvents <- event
		}
		if event == "fail" {
			return
		}
		if t != nil {
			t.Reset(interval)
		}
	}
}

func (c *conn) dead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err != nil
}

// reserve gives a call its id and registers ch to receive its reply; the
// call is then written by writeCall (or by callOwn).
func (c *conn) reserve(ch chan result) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	c.nextID++
	c.pending[c.nextID] = ch
	return c.nextID, nil
}

// writeCall writes the call id, encoded by enc; an encoding error forgets
// the call and is returned (as dso.ErrBadArgs), a write error goes to
// writeFailed.
func (c *conn) writeCall(enc func([]byte, uint64) ([]byte, error), id uint64) error {
	if err := c.appendCall(enc, id); err != nil {
		return err
	}
	c.flushLocked()
	return nil
}

// appendCall appends the call id, encoded by enc, to the output; it
// returns with wmu held, unless the encoding fails (then the call is
// forgotten and the error returned as dso.ErrBadArgs).
func (c *conn) appendCall(enc func([]byte, uint64) ([]byte, error), id uint64) error {
	c.wmu.Lock()
	n := len(c.out)
	var err error
	c.out, err = enc(c.out, id)
	if err != nil {
		c.out = c.out[:n]
		c.wmu.Unlock()
		c.forget(id)
		return fmt.Errorf("%w: %v", dso.ErrBadArgs, err)
	}
	return nil
}

// flushLocked writes the pending output, with wmu held, and unlocks wmu.
func (c *conn) flushLocked() {
	if err := c.flushOut(); err != nil {
		c.writeFailed(err)
	}
}

// writeFailed acts on a write error. The connection is broken, but why is
// for its reader to tell from what the server sent before it went: a
// goodbye (the calls it had not answered were not executed, and are sent
// again) or nothing (the calls fail). A write racing a graceful close
// fails once the server has closed, before the goodbye is read. So while
// calls are pending a reader reads (the read loop, or with a
// sockio.Socket the reader role's holder: the read loop if nobody held
// it), and the watchdog bounds its wait; with none, the connection fails
// at once.
func (c *conn) writeFailed(err error) {
	c.mu.Lock()
	pending := len(c.pending)
	c.mu.Unlock()
	if pending == 0 {
		c.fail(err)
		return
	}
	c.ensureReader()
}

// ensureReader makes sure that somebody reads the connection, for a
// caller whose call is pending: with a sockio.Socket, it hands the reader
// role to the read loop if nobody holds it (the read loop of a connection
// without one always reads).
func (c *conn) ensureReader() {
	if c.sock == nil {
		return
	}
	if _, ok := c.takeRole(); ok {
		c.leaveRole() // to the read loop: a call is pending
	}
}

// flushOut writes the pending output, with wmu held, unlocks wmu and
// returns the write's error, if any (ErrUnavailable). Writers combine:
// while one caller is writing, others only append to out, and the writing
// caller sends what they appended before it returns, so a burst of
// concurrent calls costs a few system calls, not one each.
func (c *conn) flushOut() error {
	if c.flushing {
		c.wmu.Unlock()
		return nil
	}
	c.flushing = true
	for len(c.out) > 0 {
		buf := c.out
		c.out = c.spare[:0]
		c.wmu.Unlock()
		_, err := c.w.Write(buf)
		c.wmu.Lock()
		c.spare = nil // it is c.out's array now
		if cap(buf) <= 1<<20 {
			c.spare = buf[:0]
		}
		if err != nil {
			c.out = c.out[:0]
			c.flushing = false
			c.wmu.Unlock()
			return fmt.Errorf("%w: write: %v", ErrUnavailable, err)
		}
	}
	c.flushing = false
	c.wmu.Unlock()
	return nil
}

// forget drops a pending call; it reports whether it was still pending.
func (c *conn) forget(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	delete(c.pending, id)
	return ok
}

func (c *conn) sendCancel(id uint64) {
	c.wmu.Lock()
	c.out = wire.AppendSimple(c.out, wire.OpCancel, id)
	c.flushLocked()
}

// fail marks the connection dead and fails every pending call with err.
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	pending := c.pending
	c.pending = nil
	close(c.stop)
	c.mu.Unlock()
	c.nc.Close()
	for _, ch := range pending {
		ch <- result{err: err}
	}
}

// readLoop reads the connection's replies and hands each to its caller,
// until the connection fails.
func (c *conn) readLoop() {
	for {
		if err := c.readFrame(); err != nil {
			c.fail(err)
			return
		}
		if c.br.Buffered() == 0 {
			// The next read goes to the socket and, most often, finds
			// nothing yet: let the caller just made ready run first
			// instead of after that system call.
			runtime.Gosched()
		}
	}
}

// sessionFrames bounds the replies one read session handles: closing the
// connection waits until its read session is waiting or over (package
// sockio), so a session must not last.
const sessionFrames = 64

// idleCheck is how long a connection read by a sockio.Socket may idle
// before a call reads what its server sent meanwhile (see checkIdle).
const idleCheck = time.Millisecond

// readMode is what the reader of a connection read by a sockio.Socket
// reads for, and until when.
type readMode int

const (
	modeLoop  readMode = iota // the read loop: until no call is pending
	modeOwn                   // a caller: until its own reply (in c.own)
	modeDrain                 // a caller about to write: what is there
)

// On a connection read by a sockio.Socket, one goroutine at a time holds
// the reader role and reads the socket, handing each reply to its caller.
// A caller that finds the role free takes it and makes its call itself
// (callOwn): it writes the call inside its read session and reads until
// its reply comes, so no goroutine hands it its reply (that hand-off, and
// the thread wake-up it brings, cost a sequential caller more than the
// round trip's system calls), and the session waits for the reply without
// first trying the socket. A caller that finds the role taken writes its
// call and waits for the holder to hand it its reply. A holder whose
// reply came hands the role to the read loop if other calls are pending
// (the loop then reads until none is), and leaves it otherwise: while no
// call is pending, nobody reads. Before writing a call on a connection
// idle for more than idleCheck, the caller reads what the server sent
// meanwhile (checkIdle): a goodbye, or the connection's end, sends the
// call on a new connection instead. (Closer than that to a close, a call
// written on the closing connection is told so by the goodbye, or fails
// as unavailable if the server closed without one.) The watchdog probes
// the node while calls are pending, whoever reads.

// takeRole takes the reader role if no goroutine holds it and the
// connection is alive, and returns the holder's number.
func (c *conn) takeRole() (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reading || c.err != nil {
		return 0, false
	}
	c.reading = true
	return c.readerGen, true
}

// leaveRole gives the reader role up: to the read loop if calls are
// pending, to nobody otherwise. (The read loop leaves it with leaveLoop.)
func (c *conn) leaveRole() {
	c.mu.Lock()
	if c.interrupted {
		c.interrupted = false
		c.nc.SetReadDeadline(time.Time{})
	}
	if len(c.pending) > 0 && c.err == nil {
		c.readerGen++
		c.mu.Unlock()
		select {
		case c.wake <- struct{}{}:
		default:
		}
		return
	}
	c.releaseLocked()
	c.mu.Unlock()
}

// releaseLocked gives the reader role up to nobody, with mu held.
func (c *conn) releaseLocked() {
	c.readerGen++
	c.reading = false
	c.idleSince = time.Now()
}

// interrupt wakes the reader role's holder number gen, if it still holds
// it, from its wait for the socket: its caller's context is done.
func (c *conn) interrupt(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reading && c.readerGen == gen && c.err == nil {
		c.interrupted = true
		c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

// aLongTimeAgo is a read deadline that wakes a waiting read at once.
var aLongTimeAgo = time.Unix(1, 0)

// ownEnd is how callOwn ended.
type ownEnd int

const (
	ownReplied  ownEnd = iota // the call's result came
	ownQueued                 // the call waits in the output, the role went on: wait for the reply
	ownCanceled               // ctx ended after the call was written; it is forgotten
	ownUnsent                 // ctx ended before the call was written; it is forgotten
)

// callOwn makes the call id, encoded by enc, whose reply is for ch, as
// the reader role's holder number gen. It writes the call inside its
// first read session, whose first wait then need not be preceded by a
// read (the reply cannot come before the call went; anything that came
// before is read with it), reads until the reply arrives in ch, and
// leaves the role. A call that the socket does not take at once (its
// buffer is full) is left in the output and the role handed on (a holder
// must never wait to write: the server may be waiting for it to read),
// and then written as other calls are: ownQueued. If ctx ends first, it
// forgets the call and leaves the role.
func (c *conn) callOwn(ctx context.Context, enc func([]byte, uint64) ([]byte, error), ch chan result, id, gen uint64) (result, ownEnd) {
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { c.interrupt(gen) })
		defer stop()
	}
	c.mode, c.own, c.ownEnc, c.ownID = modeOwn, ch, enc, id
	interrupted := c.readRole()
	sent := c.ownEnc == nil
	c.own, c.ownEnc = nil, nil
	err, queued := c.ownErr, c.ownQueued
	c.ownErr, c.ownQueued = nil, false
	switch {
	case err != nil: // not written, and forgotten
		c.leaveRole()
		return result{err: err}, ownReplied
	case queued:
		c.leaveRole() // to the read loop: the call is pending
		c.wmu.Lock()
		c.flushLocked()
		return result{}, ownQueued
	}
	if interrupted && len(ch) == 0 && c.forget(id) {
		c.leaveRole()
		if !sent {
			return result{}, ownUnsent
		}
		return result{}, ownCanceled
	}
	c.leaveRole()
	return <-ch, ownReplied
}

// writeOwn writes the role holder's call (c.ownEnc, c.ownID) in its first
// read session without waiting. It reports whether the session should
// wait for the reply before it reads; it leaves in c.ownErr the encoding's
// error (the call is not written), or sets c.ownQueued if the socket did
// not take all of it. After a write error the session reads at once: what
// the server sent before it closed tells the call's fate (see
// writeFailed), and a readiness event that came before the session began
// is not waited for.
func (c *conn) writeOwn() (wait bool) {
	enc := c.ownEnc
	c.ownEnc = nil
	if err := c.appendCall(enc, c.ownID); err != nil {
		c.ownErr = err
		return false
	}
	if c.flushing { // the writing caller sends it
		c.wmu.Unlock()
		return true
	}
	n, err := c.sock.TryWrite(c.out)
	if err != nil && err != sockio.ErrWouldBlock {
		n = len(c.out) // the stream is broken: the reader tells why
	}
	c.out = c.out[:copy(c.out, c.out[n:])]
	c.wmu.Unlock()
	if err == sockio.ErrWouldBlock {
		c.ownQueued = true
	}
	return err == nil
}

// checkIdle reads, before a call is written on a connection idle for
// more than its idleWait, what the server sent meanwhile (late replies, a
// goodbye, the connection's end); it reports whether the connection is
// still alive.
func (c *conn) checkIdle() bool {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return false
	}
	if c.reading || c.idleWait < 0 || time.Since(c.idleSince) < c.idleWait {
		c.mu.Unlock()
		return true
	}
	c.reading = true
	c.mu.Unlock()
	c.mode = modeDrain
	c.readRole()
	c.leaveRole()
	return !c.dead()
}

// roleLoop is the read loop of a connection read by a sockio.Socket: it
// reads while it holds the reader role, handed to it by a caller that
// leaves it with calls pending.
func (c *conn) roleLoop() {
	for {
		select {
		case <-c.wake:
		case <-c.stop:
			return
		}
		c.mode = modeLoop
		c.readRole()
		if c.dead() {
			return
		}
	}
}

// readRole reads the connection as the reader role's holder, in c.mode,
// until the mode's end (see frameDone; modeDrain: until nothing is left
// to read) or the connection fails. It handles the replies inside read
// sessions, in which, after a read that emptied the socket, it waits for
// the poller without first trying the socket (the read that would find it
// empty). Replies that do not fit the read buffer, and frames that are
// oversized or empty, are read by wire.ReadFrame between sessions. In
// modeOwn it reports whether it stopped because its wait was interrupted
// (see interrupt).
func (c *conn) readRole() (interrupted bool) {
	session := c.readSession
	for {
		c.slow, c.done = false, false
		if err := c.sock.Session(session); err != nil {
			if c.isInterrupted(err) {
				return true
			}
			c.fail(c.handle(nil, err))
			return false
		}
		if c.stopErr != nil {
			c.fail(c.stopErr)
			return false
		}
		if c.done && c.mode == modeLoop {
			if c.leaveLoop() {
				return false // the role is another's now: touch nothing
			}
			continue // a call came meanwhile
		}
		if c.done || c.ownErr != nil || c.ownQueued {
			return false
		}
		if !c.slow {
			continue
		}
		if c.mode == modeDrain {
			return false // a large frame is for a reader that may wait
		}
		if err := c.readFrame(); err != nil {
			c.fail(err) // an interrupted frame, too: the stream is cut
			return false
		}
		if c.frameDone() && (c.mode != modeLoop || c.leaveLoop()) {
			return false
		}
	}
}

// isInterrupted reports whether err ended a wait that interrupt cut.
func (c *conn) isInterrupted(err error) bool {
	if c.mode != modeOwn || !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.interrupted
}

// frameDone reports, after a frame, whether the holder's mode has come to
// its end: in modeOwn its own reply came; in modeLoop no call is pending
// (the loop then leaves the role with leaveLoop, once its read session is
// over: the next holder's session must not begin before).
func (c *conn) frameDone() bool {
	switch c.mode {
	case modeOwn:
		return len(c.own) > 0
	case modeLoop:
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.pending) == 0
	}
	return false
}

// leaveLoop leaves the reader role, held by the read loop, if no call is
// pending, and reports whether it did (false: a call came since
// frameDone, and the loop reads on).
func (c *conn) leaveLoop() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) > 0 {
		return false
	}
	c.releaseLocked()
	return true
}

// readSession is readRole's session function: it handles the replies
// whose bytes are there, at most sessionFrames of them, and ends the
// session when the holder's mode comes to its end (c.done). It leaves in
// c.stopErr the error that ends the connection, and sets c.slow if the
// next frame is for wire.ReadFrame. It must not fail the connection
// itself: closing it waits for the session to end.
func (c *conn) readSession() bool {
	br := c.br
	if c.ownEnc != nil { // the session's first entry: write the call
		wait := c.writeOwn()
		if c.ownErr != nil || c.ownQueued {
			return true
		}
		if wait && br.Buffered() == 0 {
			return false
		}
	}
	for range sessionFrames {
		hdr, err := br.Peek(4)
		if err == sockio.ErrWouldBlock {
			c.done = c.mode == modeDrain
			return c.done
		}
		if err != nil {
			if err == io.EOF && len(hdr) > 0 {
				err = io.ErrUnexpectedEOF
			}
			c.stopErr = c.handle(nil, err)
			return true
		}
		n := int(binary.BigEndian.Uint32(hdr))
		if n == 0 || n > c.maxFrame || 4+n > br.Size() {
			c.slow = true
			return true
		}
		f, err := br.Peek(4 + n)
		if err == sockio.ErrWouldBlock {
			c.done = c.mode == modeDrain // the rest of the frame waits for the next reader
			return c.done
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			err = c.handle(f[4:], nil)
			br.Discard(4 + n)
		} else {
			err = c.handle(nil, err)
		}
		if err != nil {
			c.stopErr = err
			return true
		}
		if c.frameDone() {
			c.done = true
			return true
		}
		if c.mode == modeLoop && br.Buffered() == 0 {
			runtime.Gosched() // as in readLoop
		}
	}
	return true
}

// readFrame reads one frame with wire.ReadFrame, waiting for its bytes,
// and handles it; it returns the error that ends the connection, if any.
func (c *conn) readFrame() error {
	body, err := wire.ReadFrame(c.br, c.buf, c.maxFrame)
	if err == nil {
		c.buf = body
	}
	return c.handle(body, err)
}

// handle acts on the outcome of reading one frame: it hands a reply to
// its caller. It returns the error that ends the connection, if any (the
// caller fails the connection with it).
func (c *conn) handle(body []byte, err error) error {
	if c.readHook != nil {
		c.readHook(err)
	}
	if err != nil {
		switch {
		case errors.Is(err, wire.ErrForeign):
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		case errors.Is(err, io.EOF) && c.reads.Load() == 0:
			return fmt.Errorf("%w: %w", ErrUnavailable, errClosedSilently)
		default:
			return fmt.Errorf("%w: read: %v", ErrUnavailable, err)
		}
	}
	c.reads.Add(1)
	r, err := wire.DecodeReply(body)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if r.ID == 0 && !r.OK { // about the connection, not a call: the server refused it, or is closing
		err := error(&dso.RemoteError{Code: r.Code, Msg: r.Msg})
		if r.Code == wire.CodeClosing {
			err = fmt.Errorf("%w: %w", errGoodbye, err)
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	c.mu.Lock()
	ch := c.pending[r.ID]
	delete(c.pending, r.ID)
	c.mu.Unlock()
	if ch == nil {
		return nil // canceled call
	}
	if r.OK {
		ch <- result{v: r.Value, inc: r.Incarnation, pos: r.Position}
	} else {
		ch <- result{err: &dso.RemoteError{Code: r.Code, Msg: r.Msg}}
	}
	return nil
}
