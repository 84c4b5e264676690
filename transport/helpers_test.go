package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/paxos"
)

// paxosCodec is a real protocol's codec; the tests send paxos.CatchUpReq
// (a small message whose From field tags it) and paxos.Forward (sized by
// its payload).
func paxosCodec(t testing.TB) protocols.Codec {
	t.Helper()
	spec, err := protocols.Lookup("paxos")
	require.NoError(t, err)
	return spec.Codec
}

// tag builds a message that identifies its sender and a sequence number.
func tag(from protocols.NodeID, seq int) paxos.CatchUpReq {
	return paxos.CatchUpReq{From: uint64(from)<<32 | uint64(seq)}
}

// testCtx bounds one test's waits.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or ctx ends, then fails with msg.
func eventually(ctx context.Context, t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting: "+format, args...)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// noLeaks records the goroutine count now and, when the test ends (after
// cleanups registered later, such as Close), checks it went back down,
// retrying a bounded number of times.
func noLeaks(t *testing.T) {
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		var n int
		for range 500 {
			if n = runtime.NumGoroutine(); n <= base {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("goroutines leaked: %d > %d at start\n%s", n, base, buf)
	})
}

// received is one message handed to a Handler.
type received struct {
	from protocols.NodeID
	m    protocols.Message
}

// recorder is a Handler that keeps every message.
type recorder struct {
	mu   sync.Mutex
	msgs []received
}

func (r *recorder) handle(from protocols.NodeID, m protocols.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, received{from, m})
	r.mu.Unlock()
}

func (r *recorder) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.msgs...)
}

func (r *recorder) has(from protocols.NodeID, m protocols.Message) bool {
	for _, x := range r.all() {
		if x.from == from && x.m == m {
			return true
		}
	}
	return false
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// logBuf captures a JSON slog output; safe for concurrent use.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// messages returns the msg of every record that contains substr.
func (b *logBuf) messages(substr string) []string {
	b.mu.Lock()
	text := b.buf.String()
	b.mu.Unlock()
	var out []string
	for line := range strings.Lines(text) {
		var rec struct{ Msg string }
		if json.Unmarshal([]byte(line), &rec) == nil && strings.Contains(rec.Msg, substr) {
			out = append(out, rec.Msg)
		}
	}
	return out
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func listen(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return &countingListener{Listener: ln}
}

// node is one TCP transport under test with its handler and logs.
type node struct {
	*TCP
	id   protocols.NodeID
	rec  *recorder
	logs *logBuf
	ln   *countingListener
}

// start runs a transport with cfg completed by the test defaults (cluster
// "test", the paxos codec, a recorder, a log buffer) and closes it at the
// end of the test.
func start(t *testing.T, cfg Config) *node {
	t.Helper()
	n := &node{id: cfg.Self, rec: &recorder{}, logs: &logBuf{}}
	if cfg.Cluster == "" {
		cfg.Cluster = "test"
	}
	if cfg.Codec == nil {
		cfg.Codec = paxosCodec(t)
	}
	cfg.Handler = n.rec.handle
	cfg.Logger = n.logs.logger()
	if ln, ok := cfg.Listener.(*countingListener); ok {
		n.ln = ln
	}
	tr, err := NewTCP(cfg)
	require.NoError(t, err)
	n.TCP = tr
	t.Cleanup(func() {
		require.NoError(t, tr.Close())
		if t.Failed() {
			t.Logf("logs of node %d:\n%s", n.id, n.logs)
		}
	})
	return n
}

// cluster starts nodes 1..n on loopback listeners, all knowing each other.
func cluster(t *testing.T, n int, tweak func(*Config)) []*node {
	t.Helper()
	lns := map[protocols.NodeID]*countingListener{}
	peers := map[protocols.NodeID]string{}
	for i := 1; i <= n; i++ {
		id := protocols.NodeID(i)
		lns[id] = listen(t)
		peers[id] = lns[id].Addr().String()
	}
	var nodes []*node
	for i := 1; i <= n; i++ {
		id := protocols.NodeID(i)
		cfg := Config{Self: id, Listener: lns[id], Peers: peers}
		if tweak != nil {
			tweak(&cfg)
		}
		nodes = append(nodes, start(t, cfg))
	}
	return nodes
}

// sendUntil retransmits m from a to b, as a protocol would, until b's
// handler got it.
func sendUntil(ctx context.Context, t *testing.T, a Transport, from protocols.NodeID, b *recorder, to protocols.NodeID, m protocols.Message) {
	t.Helper()
	for i := 0; !b.has(from, m); i++ {
		if i%4 == 0 {
			a.Send(to, m)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("message %v from %d never reached %d", m, from, to)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// returnsWithin runs f and fails if it has not returned when ctx ends.
func returnsWithin(ctx context.Context, t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("%s blocked", what)
	}
}

func addr(n *node) string { return n.Addr().String() }
