package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blossom-dso/blossom/protocols"
)

// Defaults for the zero values of Config's fields.
const (
	DefaultMaxFrame         = 16 << 20
	DefaultQueueLen         = 4096
	DefaultHeartbeat        = time.Second
	DefaultIdleTimeout      = 5 * time.Second
	DefaultHandshakeTimeout = 5 * time.Second

	// maxHandshakes bounds the incoming connections in their handshake at
	// any time; more are refused at once.
	maxHandshakes = 64
	// Reconnect backoff: doubling from minBackoff to maxBackoff, jittered.
	minBackoff = 20 * time.Millisecond
	maxBackoff = 2 * time.Second
	// logEvery is how often one repeated problem is logged.
	logEvery = 30 * time.Second
	// bufSize is the size of each connection's read and write buffers.
	bufSize = 64 << 10
)

// Config configures a TCP transport.
type Config struct {
	// Cluster names the deployment; a peer with another name is refused.
	// At most 255 bytes.
	Cluster string
	// Self is this node's id (not 0).
	Self protocols.NodeID
	// Listen is the address to accept peers on, e.g. "127.0.0.1:7500";
	// ":0" picks a free port (see Addr). Ignored if Listener is set.
	Listen string
	// Listener, if non-nil, is used instead of listening on Listen. The
	// transport takes it over and closes it on Close. Tests use it to know
	// every address before any transport starts.
	Listener net.Listener
	// Peers holds every peer's address. Self may be included and is
	// ignored. The map is copied.
	Peers map[protocols.NodeID]string
	// Codec encodes and decodes the protocol's messages.
	Codec protocols.Codec
	// Handler receives every decoded message.
	Handler Handler
	// MaxFrame bounds the encoded size of one message (default 16 MiB).
	// A received frame above it closes the connection; a larger message
	// given to Send is dropped.
	MaxFrame int
	// QueueLen is the length of each peer's outbound queue and of the
	// queue of messages to Self (default 4096 messages).
	QueueLen int
	// TLS, if set, is used for both dialing and accepting; mutual TLS is
	// up to this config. Nil means plain TCP.
	TLS *tls.Config
	// Logger receives the transport's logs; nil discards them.
	Logger *slog.Logger
	// Heartbeat is how long a connection may be idle before a keepalive
	// frame is written (default 1s).
	Heartbeat time.Duration
	// IdleTimeout is how long a connection may go without receiving
	// anything (frames or keepalives), or block a write, before it is
	// declared dead and closed (default 5s). It must exceed Heartbeat.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds dialing and the handshake (default 5s).
	HandshakeTimeout time.Duration
}

func (c *Config) validate() error {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.MaxFrame, DefaultMaxFrame)
	def(&c.QueueLen, DefaultQueueLen)
	defDur(&c.Heartbeat, DefaultHeartbeat)
	defDur(&c.IdleTimeout, DefaultIdleTimeout)
	defDur(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Self == 0:
		return errors.New("transport: Self must not be 0")
	case len(c.Cluster) > maxClusterLen:
		return fmt.Errorf("transport: cluster name longer than %d bytes", maxClusterLen)
	case c.Codec == nil:
		return errors.New("transport: nil Codec")
	case c.Handler == nil:
		return errors.New("transport: nil Handler")
	case c.MaxFrame < 0 || uint64(c.MaxFrame) > 1<<32-1:
		return fmt.Errorf("transport: MaxFrame %d out of range", c.MaxFrame)
	case c.QueueLen < 0:
		return fmt.Errorf("transport: negative QueueLen %d", c.QueueLen)
	case c.Heartbeat < 0 || c.HandshakeTimeout < 0:
		return errors.New("transport: negative timeout")
	case c.IdleTimeout <= c.Heartbeat:
		return fmt.Errorf("transport: IdleTimeout %v must exceed Heartbeat %v", c.IdleTimeout, c.Heartbeat)
	case c.Listener == nil && c.Listen == "":
		return errors.New("transport: no Listen address")
	}
	for id, addr := range c.Peers {
		if id == 0 {
			return errors.New("transport: peer id 0 is reserved")
		}
		if addr == "" && id != c.Self {
			return fmt.Errorf("transport: empty address for peer %d", id)
		}
	}
	return nil
}

// TCP is a Transport over TCP (optionally TLS) connections, one per pair of
// nodes. See the package documentation for the protocol and the contract.
type TCP struct {
	cfg   Config
	log   *slog.Logger
	ln    net.Listener
	peers map[protocols.NodeID]*peer // fixed after NewTCP
	selfQ *queue[protocols.Message]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	st     counters
	limit  *limiter
	hsSem  chan struct{}

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // every open connection, for Close
	closed bool

	closeOnce sync.Once
	closeErr  error
}

var _ Transport = (*TCP)(nil)

// peer is the state kept for one remote node.
type peer struct {
	t      *TCP
	id     protocols.NodeID
	addr   string
	dialer bool // this node dials the peer (its id is lower)
	q      *queue[[]byte]

	// incoming carries the newest accepted connection to the serving
	// goroutine (acceptor side only; nil for the dialer side).
	incoming  chan net.Conn
	attachMu  sync.Mutex
	connected atomic.Bool
	everConn  atomic.Bool
	lastErr   string // dialer goroutine only: the last dial problem logged
}

// NewTCP listens on cfg.Listen (or takes over cfg.Listener), starts dialing
// the peers with a higher id than cfg.Self and accepting the others.
func NewTCP(cfg Config) (*TCP, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		lc := net.ListenConfig{KeepAliveConfig: keepAlive(cfg)}
		if ln, err = lc.Listen(context.Background(), "tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("transport: listen: %w", err)
		}
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	peers := make(map[protocols.NodeID]string, len(cfg.Peers))
	for id, addr := range cfg.Peers {
		if id != cfg.Self {
			peers[id] = addr
		}
	}
	cfg.Peers = peers
	ctx, cancel := context.WithCancel(context.Background())
	t := &TCP{
		cfg:    cfg,
		log:    cfg.Logger.With("node", uint32(cfg.Self)),
		ln:     ln,
		peers:  make(map[protocols.NodeID]*peer, len(peers)),
		selfQ:  newQueue[protocols.Message](cfg.QueueLen),
		ctx:    ctx,
		cancel: cancel,
		limit:  newLimiter(logEvery),
		hsSem:  make(chan struct{}, maxHandshakes),
		conns:  map[net.Conn]struct{}{},
	}
	for id, addr := range peers {
		p := &peer{t: t, id: id, addr: addr, dialer: cfg.Self < id, q: newQueue[[]byte](cfg.QueueLen)}
		if !p.dialer {
			p.incoming = make(chan net.Conn, 1)
		}
		t.peers[id] = p
	}
	t.wg.Add(2 + len(t.peers))
	go t.acceptLoop()
	go t.selfLoop()
	for _, p := range t.peers {
		go p.run()
	}
	return t, nil
}

func keepAlive(cfg Config) net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: true, Idle: cfg.IdleTimeout, Interval: cfg.Heartbeat, Count: 3}
}

// Addr is the address the transport accepts peers on.
func (t *TCP) Addr() net.Addr { return t.ln.Addr() }

// Stats returns the transport's counters.
func (t *TCP) Stats() Stats { return t.st.snapshot() }

// Connected reports whether a connection to peer id is currently up (its
// handshake done). It is a snapshot: the connection may fail right after.
func (t *TCP) Connected(id protocols.NodeID) bool {
	p := t.peers[id]
	return p != nil && p.connected.Load()
}

// Send encodes m and queues it for peer to; it never blocks on the network.
// Because m is encoded before Send returns, the caller may reuse m's memory
// afterwards. A message to Self is queued, unencoded, for the Handler. When
// the queue is full its oldest message is dropped. Messages to an unknown
// peer, messages that fail to encode, are empty once encoded or are larger
// than MaxFrame, and messages after Close are dropped. Every drop is
// counted in Stats.Dropped.
func (t *TCP) Send(to protocols.NodeID, m protocols.Message) {
	if t.ctx.Err() != nil {
		t.st.dropped.Add(1)
		return
	}
	if to == t.cfg.Self {
		if t.selfQ.push(m) {
			t.st.dropped.Add(1)
		}
		return
	}
	p := t.peers[to]
	if p == nil {
		t.st.dropped.Add(1)
		if t.limit.allow(fmt.Sprint("unknown:", to)) {
			t.log.Warn(fmt.Sprintf("dropping message to unknown peer %d", to))
		}
		return
	}
	f, err := t.cfg.Codec.Marshal(make([]byte, 4, 64), m)
	if err == nil && (len(f) == 4 || len(f)-4 > t.cfg.MaxFrame) {
		err = fmt.Errorf("encoded size %d bytes is not within 1..MaxFrame %d", len(f)-4, t.cfg.MaxFrame)
	}
	if err != nil {
		t.st.dropped.Add(1)
		if t.limit.allow(fmt.Sprintf("encode:%T", m)) {
			t.log.Error(fmt.Sprintf("dropping %T to peer %d: %v", m, to, err))
		}
		return
	}
	binary.BigEndian.PutUint32(f, uint32(len(f)-4))
	if p.q.push(f) {
		t.st.dropped.Add(1)
	}
}

// Close stops accepting and dialing, closes every connection and waits for
// every goroutine of the transport to end. Handler calls in progress finish
// first. Close is idempotent.
func (t *TCP) Close() error {
	t.closeOnce.Do(func() {
		t.cancel()
		if err := t.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.closeErr = err
		}
		t.mu.Lock()
		t.closed = true
		for c := range t.conns {
			c.Close()
		}
		t.mu.Unlock()
		t.wg.Wait()
	})
	return t.closeErr
}

// track registers c so that Close closes it; it reports false (and the
// caller must close c) once Close has begun.
func (t *TCP) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

// drop closes c and forgets it.
func (t *TCP) drop(c net.Conn) {
	c.Close()
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// tune sets TCP_NODELAY and keepalives on c's TCP connection.
func (t *TCP) tune(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAliveConfig(keepAlive(t.cfg))
	}
}

// sleep waits for d or until Close; it reports false on Close.
func (t *TCP) sleep(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-t.ctx.Done():
		return false
	}
}

func (t *TCP) selfLoop() {
	defer t.wg.Done()
	var batch []protocols.Message
	for {
		select {
		case <-t.selfQ.notify:
		case <-t.ctx.Done():
			return
		}
		batch = t.selfQ.drain(batch[:0])
		for _, m := range batch {
			if t.ctx.Err() != nil {
				return
			}
			t.st.sent.Add(1)
			t.st.received.Add(1)
			t.cfg.Handler(t.cfg.Self, m)
		}
		clear(batch)
	}
}

func (t *TCP) acceptLoop() {
	defer t.wg.Done()
	var bo backoff
	bo.min, bo.max = 5*time.Millisecond, time.Second
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// E.g. too many open files: wait rather than spin.
			if t.limit.allow("accept") {
				t.log.Error("accept failed", "err", err)
			}
			if !t.sleep(bo.next()) {
				return
			}
			continue
		}
		bo.reset()
		if !t.track(c) {
			c.Close()
			return
		}
		select {
		case t.hsSem <- struct{}{}:
		default:
			t.st.refused.Add(1)
			if t.limit.allow("busy") {
				t.log.Warn(fmt.Sprintf("refused connection from %s: more than %d handshakes in progress", c.RemoteAddr(), maxHandshakes))
			}
			t.drop(c)
			continue
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer func() { <-t.hsSem }()
			t.handshakeIn(c)
		}()
	}
}

// check returns why hello h must be refused, or "" to accept it.
func (t *TCP) check(h hello) string {
	self := t.cfg.Self
	switch {
	case h.cluster != t.cfg.Cluster:
		return fmt.Sprintf("cluster name %q != %q expected by node %d", h.cluster, t.cfg.Cluster, self)
	case h.to != self:
		return fmt.Sprintf("dialer expected node %d but this is node %d", h.to, self)
	case h.from == self:
		return fmt.Sprintf("node id %d is the acceptor's own id", h.from)
	case t.peers[h.from] == nil:
		return fmt.Sprintf("node %d is not a configured peer of node %d", h.from, self)
	case h.from > self:
		return fmt.Sprintf("node %d must not dial node %d: the lower id dials", h.from, self)
	}
	return ""
}

// handshakeIn runs the acceptor's half of the handshake on c and hands c to
// its peer, or refuses it.
func (t *TCP) handshakeIn(c net.Conn) {
	t.tune(c)
	_ = c.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.HandshakeContext(t.ctx); err != nil {
			t.refuse(c, "", fmt.Sprintf("TLS handshake: %v", err), "tls")
			return
		}
	}
	h, err := readHello(c)
	if err != nil {
		var ve versionError
		var ne net.Error
		switch {
		case errors.As(err, &ve):
			_, _ = c.Write(appendReply(nil, ve.Error()))
			t.refuse(c, "", err.Error(), "version")
		case errors.Is(err, errBadMagic):
			t.refuse(c, "", err.Error(), "magic")
		case errors.As(err, &ne) && ne.Timeout():
			t.refuse(c, "", "no handshake within "+t.cfg.HandshakeTimeout.String(), "timeout")
		default: // e.g. closed early: the dialer shut down, a port probe
			t.refuse(c, "", fmt.Sprintf("incomplete handshake: %v", err), "io")
		}
		return
	}
	if reason := t.check(h); reason != "" {
		_, _ = c.Write(appendReply(nil, reason))
		t.refuse(c, fmt.Sprintf(" peer %d", h.from), reason, reason)
		return
	}
	if _, err := c.Write(appendReply(nil, "")); err != nil {
		t.refuse(c, fmt.Sprintf(" peer %d", h.from), fmt.Sprintf("writing handshake reply: %v", err), "reply")
		return
	}
	_ = c.SetDeadline(time.Time{})
	t.st.accepted.Add(1)
	t.peers[h.from].attach(c)
}

// refuse counts, logs (rate-limited per key) and closes a refused incoming
// connection.
func (t *TCP) refuse(c net.Conn, who, reason, key string) {
	t.st.refused.Add(1)
	if t.ctx.Err() == nil && t.limit.allow("refuse:"+who+key) {
		t.log.Warn(fmt.Sprintf("refused%s from %s: %s", who, c.RemoteAddr(), reason),
			"remote", c.RemoteAddr().String(), "reason", reason)
	}
	t.drop(c)
}

// attach hands an accepted connection to the goroutine serving p,
// replacing a connection not yet picked up.
func (p *peer) attach(c net.Conn) {
	p.attachMu.Lock()
	defer p.attachMu.Unlock()
	select {
	case old := <-p.incoming:
		p.t.drop(old)
	default:
	}
	p.incoming <- c
}

// run serves p until Close: it dials (lower id) or waits for the peer's
// connection (higher id), and serves one connection at a time.
func (p *peer) run() {
	t := p.t
	defer t.wg.Done()
	if !p.dialer {
		for {
			var c net.Conn
			select {
			case c = <-p.incoming:
			case <-t.ctx.Done():
				return
			}
			for c != nil {
				c = p.serve(c)
			}
		}
	}
	bo := backoff{min: minBackoff, max: maxBackoff}
	for t.ctx.Err() == nil {
		c, err := t.dial(p)
		if err != nil {
			if t.ctx.Err() != nil {
				return
			}
			p.dialFailed(err)
			if !t.sleep(bo.next()) {
				return
			}
			continue
		}
		bo.reset()
		p.lastErr = ""
		p.serve(c)
		if !t.sleep(bo.next()) {
			return
		}
	}
}

// dialFailed logs a failed dial when its reason changes, and otherwise at
// most every logEvery.
func (p *peer) dialFailed(err error) {
	t := p.t
	var msg string
	var re refusedError
	if errors.As(err, &re) {
		t.st.rejected.Add(1)
		msg = fmt.Sprintf("node %d at %s refused the connection: %s", p.id, p.addr, re.reason)
	} else {
		msg = fmt.Sprintf("cannot connect to node %d at %s: %v", p.id, p.addr, err)
	}
	if msg != p.lastErr || t.limit.allow(fmt.Sprint("dial:", p.id)) {
		p.lastErr = msg
		t.limit.allow(fmt.Sprint("dial:", p.id)) // restart the period
		if re.reason != "" {
			t.log.Error(msg, "peer", uint32(p.id), "reason", re.reason)
		} else {
			t.log.Warn(msg, "peer", uint32(p.id))
		}
	}
}

// dial connects to p and runs the dialer's half of the handshake.
func (t *TCP) dial(p *peer) (net.Conn, error) {
	d := &net.Dialer{Timeout: t.cfg.HandshakeTimeout, KeepAliveConfig: keepAlive(t.cfg)}
	var c net.Conn
	var err error
	if t.cfg.TLS != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: t.cfg.TLS}).DialContext(t.ctx, "tcp", p.addr)
	} else {
		c, err = d.DialContext(t.ctx, "tcp", p.addr)
	}
	if err != nil {
		return nil, err
	}
	if !t.track(c) {
		c.Close()
		return nil, net.ErrClosed
	}
	t.tune(c)
	_ = c.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	if _, err := c.Write(appendHello(nil, hello{cluster: t.cfg.Cluster, from: t.cfg.Self, to: p.id})); err != nil {
		t.drop(c)
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if err := readReply(c); err != nil {
		t.drop(c)
		var re refusedError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, fmt.Errorf("handshake: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	t.st.dialed.Add(1)
	return c, nil
}

// errReplaced ends a connection superseded by a newer one from the same
// peer.
var errReplaced = errors.New("replaced by a newer connection")

// serve runs c until it fails, Close, or (acceptor side) a newer connection
// from the same peer arrives, which serve returns.
func (p *peer) serve(c net.Conn) (next net.Conn) {
	t := p.t
	if p.everConn.Swap(true) {
		t.st.reconnects.Add(1)
	}
	p.connected.Store(true)
	t.log.Info(fmt.Sprintf("connected to node %d (%s)", p.id, c.RemoteAddr()), "peer", uint32(p.id))

	readDone := make(chan struct{})
	var readErr error
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer close(readDone)
		readErr = t.readLoop(p.id, c)
	}()
	next, err := p.writeLoop(c, readDone)
	t.drop(c)
	<-readDone
	p.connected.Store(false)
	if err == nil {
		err = readErr
	}
	if t.ctx.Err() == nil {
		t.log.Info(fmt.Sprintf("connection to node %d closed: %v", p.id, err), "peer", uint32(p.id))
	}
	return next
}

// writeLoop drains p's queue into c through a buffer, flushing whenever the
// queue is empty, and writes a keepalive when the connection was idle for a
// Heartbeat.
func (p *peer) writeLoop(c net.Conn, readDone <-chan struct{}) (net.Conn, error) {
	t := p.t
	bw := bufio.NewWriterSize(c, bufSize)
	hb := time.NewTicker(t.cfg.Heartbeat)
	defer hb.Stop()
	var batch [][]byte
	var pending uint64 // written to bw, not yet flushed
	wrote := false     // anything written since the last tick
	// fail counts the messages lost with the connection.
	fail := func(unsent int) { t.st.dropped.Add(pending + uint64(unsent)) }
	for {
		batch = p.q.drain(batch[:0])
		if len(batch) > 0 {
			_ = c.SetWriteDeadline(time.Now().Add(t.cfg.IdleTimeout))
			for i, f := range batch {
				if _, err := bw.Write(f); err != nil {
					fail(len(batch) - i)
					clear(batch)
					return nil, err
				}
				pending++
			}
			clear(batch)
			wrote = true
			continue // flush only once the queue is empty
		}
		if bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				fail(0)
				return nil, err
			}
			t.st.sent.Add(pending)
			pending = 0
		}
		select {
		case <-p.q.notify:
		case <-hb.C:
			if !wrote {
				_ = c.SetWriteDeadline(time.Now().Add(t.cfg.IdleTimeout))
				var zero [4]byte
				if _, err := c.Write(zero[:]); err != nil {
					return nil, err
				}
			}
			wrote = false
		case <-readDone:
			return nil, nil
		case next := <-p.incoming: // nil channel on the dialer side
			return next, errReplaced
		case <-t.ctx.Done():
			return nil, t.ctx.Err()
		}
	}
}

// readLoop decodes frames from c and hands them to the Handler until c
// fails or its framing breaks.
func (t *TCP) readLoop(from protocols.NodeID, c net.Conn) error {
	br := bufio.NewReaderSize(c, bufSize)
	for {
		_ = c.SetReadDeadline(time.Now().Add(t.cfg.IdleTimeout))
		body, err := readFrame(br, t.cfg.MaxFrame)
		if err != nil {
			var fe frameTooLargeError
			if errors.As(err, &fe) {
				t.st.frameErrors.Add(1)
				if t.limit.allow(fmt.Sprint("frame:", from)) {
					t.log.Error(fmt.Sprintf("closing connection from node %d (%s): %v", from, c.RemoteAddr(), err), "peer", uint32(from))
				}
			}
			return err
		}
		if body == nil {
			continue // keepalive
		}
		m, err := t.cfg.Codec.Unmarshal(body)
		if err != nil {
			t.st.decodeErrors.Add(1)
			if t.limit.allow(fmt.Sprint("decode:", from)) {
				t.log.Warn(fmt.Sprintf("dropping undecodable message of %d bytes from node %d: %v", len(body), from, err), "peer", uint32(from))
			}
			continue
		}
		t.st.received.Add(1)
		t.cfg.Handler(from, m)
	}
}
