// Package remote holds the client side of degradable objects on the DSO:
// per-client segments of weak objects, which apply their client's updates
// locally at once and send them to the object's weak replicas in the
// background, so that an update costs no round trip: a counter's segment
// (Counter) sends the sum of its additions; a grow-only set's (Set) its
// new elements, flushed by one Flusher per client for all its sets; a
// bounded timeline's (Timeline, the newest posts of a feed on a Map of
// max-merged slots, with post ids from a Clock) its new posts. A Syncer
// flushes and pulls a client's segments in the background, so that reads
// are served from the segments' copies (the Retwis of degradable-bench
// --target dso, whose connections each keep one copy for their
// goroutines).
//
// The counter lives on the DSO as a persistent Counter of the weak level
// (client.Persistent.At(degradable.Weak), replicated by the weak-merge
// strategy beside the cluster's protocol): every replica applies every
// sum sent to any replica, once, and the replicas converge.
//
// # Guarantee
//
// Value returns own + merged, where own is the sum of the client's
// additions not yet acknowledged by a replica and merged the counter's
// value at the replica that answered the client's latest flush or pull
// (the sum of every addition that replica had applied, the client's own
// acknowledged ones included). Hence, while the client's calls reach the
// same replica (its owner, while it answers), every read is the sum of a
// set of issued additions (a merge of issued updates) that holds every
// addition of the client before the read (read-your-writes) and every
// addition an earlier read held (monotonic reads: the replica's applied
// set only grows); once every segment has flushed and the updates have
// spread, every replica, and so every pull, returns the sum of every
// addition (convergence). A client that fails over to another replica
// may read a smaller applied set there until the updates spread.
//
// A flush that fails returns its sum to the segment, to be sent again:
// its outcome is unknown (the call may have been applied), so an
// addition whose flush failed may count twice. Flushes fail only when no
// replica of the counter answers before the flush's context ends.
package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
)

// Defaults of the options.
const (
	// DefaultPullEvery is how many reads a segment serves between two
	// pulls of the counter's value from its replica.
	DefaultPullEvery = degradable.DefaultPullEvery
	// DefaultFlushEvery is the period of the background flush.
	DefaultFlushEvery = 5 * time.Millisecond
)

// Option configures a Counter.
type Option func(*config)

type config struct {
	pullEvery  int
	flushEvery time.Duration
	bug        bug
}

// bug is a planted bug for the sabotage test of the segment's checks.
type bug uint8

// bugForgetOwn: Value leaves out the client's unsent additions;
// bugLoseMerged: a timeline's flush leaves the posts it sent out of its
// copy.
const (
	bugForgetOwn bug = iota + 1
	bugLoseMerged
)

// PullEvery sets how many reads a segment serves between two pulls (k >=
// 1; 1 pulls on every read). A pull first flushes the segment.
func PullEvery(k int) Option { return func(c *config) { c.pullEvery = k } }

// FlushEvery sets the period of the background flush (d > 0).
func FlushEvery(d time.Duration) Option { return func(c *config) { c.flushEvery = d } }

// newConfig applies opts and checks them and p, for a segment of kind.
func newConfig(kind string, p *client.Persistent, opts []Option) (config, error) {
	cfg := config{pullEvery: DefaultPullEvery, flushEvery: DefaultFlushEvery}
	for _, o := range opts {
		if o == nil {
			return cfg, errors.New("remote: nil Option")
		}
		o(&cfg)
	}
	switch {
	case p == nil || p.Level() != degradable.Weak:
		return cfg, fmt.Errorf("remote: a %s segment needs the weak level (Persistent.At(degradable.Weak))", kind)
	case cfg.pullEvery < 1:
		return cfg, fmt.Errorf("remote: PullEvery(%d), want at least 1", cfg.pullEvery)
	case cfg.flushEvery <= 0:
		return cfg, fmt.Errorf("remote: FlushEvery(%v), want more than 0", cfg.flushEvery)
	}
	return cfg, nil
}

// ErrClosed is returned by the calls on a closed Counter.
var ErrClosed = errors.New("remote: counter segment closed")

// Counter is one client's segment of a weak counter on the DSO. It is
// safe for concurrent use, but the guarantees speak of one client: give
// each thread its own segment (the deliverable's per-thread segments).
type Counter struct {
	h   dso.Counter
	cfg config

	flushMu sync.Mutex // serializes flushes and pulls
	mu      sync.Mutex // guards the fields below
	pending int64      // additions not yet sent
	sending int64      // additions of the flush in flight
	merged  int64      // the value the replica last answered
	reads   int        // reads since the last pull
	closed  bool

	stop chan struct{}
	done chan struct{}
}

// NewCounter returns a segment of the weak Counter key of the DSO that p
// calls; p must call the weak level (Persistent.At(degradable.Weak)). It
// starts the background flush, which Close stops.
func NewCounter(p *client.Persistent, key string, opts ...Option) (*Counter, error) {
	cfg, err := newConfig("counter", p, opts)
	if err != nil {
		return nil, err
	}
	c := &Counter{h: dso.NewCounter(p, key), cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	go c.background()
	return c, nil
}

// Add adds delta to the segment, at once, with no round trip; the
// background flush sends it.
func (c *Counter) Add(delta int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.pending += delta
	return nil
}

// Value returns the counter's value as the segment sees it (see the
// package doc), pulling the replica's value, after a flush, every
// PullEvery reads.
func (c *Counter) Value(ctx context.Context) (int64, error) {
	c.mu.Lock()
	c.reads++
	due := c.reads >= c.cfg.pullEvery
	c.mu.Unlock()
	if due {
		if err := c.flush(ctx, true); err != nil {
			return 0, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	own := c.pending + c.sending
	if c.cfg.bug == bugForgetOwn {
		own = 0 // planted: the client's unsent additions are left out
	}
	return c.merged + own, nil
}

// Flush sends the segment's additions to the counter's replica and
// returns once one acknowledged them.
func (c *Counter) Flush(ctx context.Context) error { return c.flush(ctx, false) }

// flush sends the pending additions (with pull, also when there are none,
// to read the replica's value).
func (c *Counter) flush(ctx context.Context, pull bool) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	d := c.pending
	if d == 0 && !pull {
		c.mu.Unlock()
		return nil
	}
	c.pending, c.sending = 0, d
	c.mu.Unlock()
	var v int64
	var err error
	if d != 0 {
		v, err = c.h.Increment(ctx, d)
	} else {
		v, err = c.h.Tally(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sending = 0
	if err != nil {
		c.pending += d
		return fmt.Errorf("remote: flush of %s: %w", c.h.Ref(), err)
	}
	c.merged = v
	if pull {
		c.reads = 0
	}
	return nil
}

// background flushes every FlushEvery until Close.
func (c *Counter) background() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*c.cfg.flushEvery+time.Second)
			_ = c.flush(ctx, false) // a failed flush keeps its additions for the next
			cancel()
		}
	}
}

// Close stops the background flush and flushes what is left; later Adds
// fail with ErrClosed. It returns the last flush's error.
func (c *Counter) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	<-c.done
	return c.flush(ctx, false)
}
