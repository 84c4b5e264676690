package transport

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blossom-dso/blossom/protocols"
)

// Handler receives a decoded message from peer from. It may be called
// concurrently from several goroutines and must not block for long.
type Handler func(from protocols.NodeID, m protocols.Message)

// Transport sends protocol messages to peers.
type Transport interface {
	// Send hands m to the transport for delivery to peer to and returns
	// without waiting for the network. A message to the transport's own
	// node is handed to the Handler asynchronously (never from inside
	// Send). A full queue, an unknown peer or a message that cannot be
	// encoded drops a message and counts it. Delivery is not guaranteed.
	Send(to protocols.NodeID, m protocols.Message)
	// Close stops the transport and every goroutine it started. Messages
	// still queued are discarded. Send after Close drops the message.
	Close() error
}

// Stats are a transport's cumulative counters.
type Stats struct {
	// Sent counts messages written to a peer connection and flushed, plus
	// messages handed to the Handler of the sending node itself.
	Sent uint64
	// Received counts messages handed to the Handler (from peers and from
	// the node itself).
	Received uint64
	// Dropped counts messages given to Send that will not be delivered by
	// this node: the oldest message of a full queue (also while the peer
	// is disconnected), a message to an unknown peer, a message that the
	// codec cannot encode or that is empty or larger than MaxFrame, a
	// message sent after Close, messages lost with a connection that
	// failed before they were flushed, and (in-memory network) messages
	// across a partition.
	Dropped uint64
	// DecodeErrors counts received frames the codec could not decode; the
	// message is dropped and the connection kept.
	DecodeErrors uint64
	// FrameErrors counts connections closed because of a broken frame
	// (longer than MaxFrame).
	FrameErrors uint64
	// Refused counts incoming connections this node refused: a failed or
	// mismatched handshake, or too many handshakes at once.
	Refused uint64
	// Rejected counts outgoing connections whose handshake the peer
	// refused.
	Rejected uint64
	// Accepted counts incoming connections whose handshake succeeded.
	Accepted uint64
	// Dialed counts outgoing connections whose handshake succeeded.
	Dialed uint64
	// Reconnects counts connections established with a peer that had been
	// connected before (on either side); Accepted+Dialed-Reconnects is the
	// number of peers ever connected.
	Reconnects uint64
}

// counters is the atomic form of Stats.
type counters struct {
	sent, received, dropped, decodeErrors, frameErrors atomic.Uint64
	refused, rejected, accepted, dialed, reconnects    atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Sent:         c.sent.Load(),
		Received:     c.received.Load(),
		Dropped:      c.dropped.Load(),
		DecodeErrors: c.decodeErrors.Load(),
		FrameErrors:  c.frameErrors.Load(),
		Refused:      c.refused.Load(),
		Rejected:     c.rejected.Load(),
		Accepted:     c.accepted.Load(),
		Dialed:       c.dialed.Load(),
		Reconnects:   c.reconnects.Load(),
	}
}

// queue is a bounded FIFO that never blocks its producers: pushing onto a
// full queue discards the oldest element. notify is signalled (without
// blocking) after every push.
type queue[T any] struct {
	mu     sync.Mutex
	buf    []T
	head   int
	n      int
	notify chan struct{}
}

func newQueue[T any](capacity int) *queue[T] {
	return &queue[T]{buf: make([]T, capacity), notify: make(chan struct{}, 1)}
}

// push appends v and reports whether the oldest element was discarded to
// make room.
func (q *queue[T]) push(v T) (dropped bool) {
	q.mu.Lock()
	if q.n == len(q.buf) {
		var zero T
		q.buf[q.head] = zero
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		dropped = true
	}
	q.buf[(q.head+q.n)%len(q.buf)] = v
	q.n++
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
	return dropped
}

// drain appends every queued element to dst, oldest first, and empties the
// queue.
func (q *queue[T]) drain(dst []T) []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero T
	for q.n > 0 {
		dst = append(dst, q.buf[q.head])
		q.buf[q.head] = zero
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	q.head = 0
	return dst
}

// limiter rate-limits log lines per key: allow reports true for the first
// use of a key and then at most once per every.
type limiter struct {
	mu    sync.Mutex
	every time.Duration
	last  map[string]time.Time
}

func newLimiter(every time.Duration) *limiter {
	return &limiter{every: every, last: map[string]time.Time{}}
}

func (l *limiter) allow(key string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		return false
	}
	if len(l.last) >= 1024 { // keys come from the network: stay bounded
		clear(l.last)
	}
	l.last[key] = now
	return true
}

// backoff yields jittered, doubling reconnect delays between min and max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) reset() { b.cur = 0 }

// next returns a delay in [d/2, d) for the current step d and doubles d.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	}
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	return d/2 + rand.N(d/2+1)
}
