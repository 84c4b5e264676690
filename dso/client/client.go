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

	// For tests (export_test.go): if probeTick is not nil, the watchdog
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
	sock := sockio.New(nc)
	rw := io.ReadWriter(nc)
	if sock != nil {
		rw = sock
	}
	br := bufio.NewReaderSize(rw, 64<<10)
	if o.Token != "" || o.Incarnations {
		flags := uint64(0)
		if o.Incarnations {
			flags |= wire.HelloIncarnations
		}
		if err := hello(nc, br, o.Token, flags, o.DialTimeout, o.MaxFrame); err != nil {
			nc.Close()
			return nil, err
		}
	}
	cn := &conn{nc: nc, br: br, w: rw, sock: sock, pending: map[uint64]chan result{}, maxFrame: o.MaxFrame, stop: make(chan struct{}), readHook: o.readHook}
	go cn.readLoop()
	go cn.watchdog(o, n.addr)
	return cn, nil
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
	ch := chanPool.Get().(chan result)
	id, err := cn.send(enc, ch)
	if err != nil {
		chanPool.Put(ch)
		if errors.Is(err, errGoodbye) && time.Now().Before(retryUntil) {
			goto again // the server never read it
		}
		return result{err: err}
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

	// Read loop only.
	slow    bool   // the next frame is for wire.ReadFrame (readSock)
	stopErr error  // the error that ended a read session and the connection
	buf     []byte // readFrame's buffer

	wmu      sync.Mutex
	out      []byte // frames waiting to be written
	spare    []byte
	flushing bool // a caller is writing out

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan result
	err     error // set once the connection is dead

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

func (c *conn) send(enc func([]byte, uint64) ([]byte, error), ch chan result) (uint64, error) {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()

	c.wmu.Lock()
	n := len(c.out)
	var err error
	c.out, err = enc(c.out, id)
	if err != nil {
		c.out = c.out[:n]
		c.wmu.Unlock()
		c.forget(id)
		return 0, fmt.Errorf("%w: %v", dso.ErrBadArgs, err)
	}
	c.flushLocked()
	return id, nil
}

// flushLocked writes the pending output, with wmu held, and unlocks wmu.
// Writers combine: while one caller is writing, others only append to out,
// and the writing caller sends what they appended before it returns, so a
// burst of concurrent calls costs a few system calls, not one each.
func (c *conn) flushLocked() {
	if c.flushing {
		c.wmu.Unlock()
		return
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
			c.fail(fmt.Errorf("%w: write: %v", ErrUnavailable, err))
			return
		}
	}
	c.flushing = false
	c.wmu.Unlock()
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
	if c.sock != nil {
		c.readSock()
		return
	}
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

// readSock is readLoop on a plain TCP connection read by a
// sockio.Socket: it handles the replies inside read sessions, in which,
// after a read that emptied the socket, the loop waits for the poller
// without first trying the socket (the read that would find it empty).
// Replies that do not fit the read buffer, and frames that are oversized
// or empty, are read by wire.ReadFrame between sessions.
func (c *conn) readSock() {
	session := c.readSession
	for {
		c.slow = false
		if err := c.sock.Session(session); err != nil {
			c.fail(c.handle(nil, err))
			return
		}
		if c.stopErr != nil {
			c.fail(c.stopErr)
			return
		}
		if !c.slow {
			continue
		}
		if err := c.readFrame(); err != nil {
			c.fail(err)
			return
		}
	}
}

// readSession is readSock's session function: it handles the replies
// whose bytes are there, at most sessionFrames of them. It leaves in
// c.stopErr the error that ends the connection, and sets c.slow if the
// next frame is for wire.ReadFrame. It must not fail the connection
// itself: closing it waits for the session to end.
func (c *conn) readSession() bool {
	br := c.br
	for range sessionFrames {
		hdr, err := br.Peek(4)
		if err == sockio.ErrWouldBlock {
			return false
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
			return false
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
		if br.Buffered() == 0 {
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
