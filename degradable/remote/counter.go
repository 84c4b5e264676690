package remote

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	// singleReader: a queue segment is its queue's one reader.
	singleReader bool
	// wrap, if set, wraps the caller of the segment's calls (tests: a
	// connection cut after the replica applied a flush).
	wrap func(dso.Caller) dso.Caller
}

// bug is a planted bug for the sabotage test of the segment's checks.
type bug uint8

// The planted bugs.
const (
	// bugForgetOwn: reads leave out the client's unsent updates.
	bugForgetOwn bug = iota + 1
	// bugRemoveStays: a set segment's Remove leaves the element in the
	// view until the next pull.
	bugRemoveStays
	// bugDequeueTwice: a queue segment's Dequeue leaves the item in the
	// view.
	bugDequeueTwice
	// bugLoseMerged: a timeline's flush leaves the posts it sent out of
	// its copy.
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
	case cfg.singleReader && kind != "queue":
		return cfg, fmt.Errorf("remote: SingleReader is an option of queue segments, not of a %s segment", kind)
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

	id string // the segment's id in its flushes

	flushMu sync.Mutex // serializes flushes and pulls
	mu      sync.Mutex // guards the fields below
	pending int64      // additions not yet sent
	sending int64      // additions of the flush in flight, or of the failed one
	seq     int64      // the number of the last flush sent
	retry   bool       // flush seq failed: send it again
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
	var caller dso.Caller = p
	if cfg.wrap != nil {
		caller = cfg.wrap(p)
	}
	c := &Counter{h: dso.NewCounter(caller, key), cfg: cfg, id: newSegmentID(), stop: make(chan struct{}), done: make(chan struct{})}
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

// flush sends the failed flush again, or else the pending additions as
// the next flush (with pull, also when there are none, to read the
// replica's value).
func (c *Counter) flush(ctx context.Context, pull bool) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	for {
		again, err := c.flushOnce(ctx, pull)
		if err != nil || !again {
			return err
		}
	}
}

// flushOnce sends one flush; again reports that it sent a failed flush
// again and additions wait for the next.
func (c *Counter) flushOnce(ctx context.Context, pull bool) (again bool, err error) {
	c.mu.Lock()
	retried := c.retry
	if !c.retry {
		if c.pending == 0 && !pull {
			c.mu.Unlock()
			return false, nil
		}
		c.sending, c.pending = c.pending, 0
		if c.sending != 0 {
			c.seq++
		}
	}
	d, seq := c.sending, c.seq
	c.mu.Unlock()
	var v int64
	if d != 0 {
		var r any
		if r, err = c.h.Call(ctx, "flush", c.id, seq, d); err == nil {
			var ok bool
			if v, ok = r.(int64); !ok {
				err = fmt.Errorf("%w: flush answered %T, not an integer", dso.ErrInternal, r)
			}
		}
	} else {
		v, err = c.h.Tally(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.retry = d != 0 // the same flush again: it may have been applied
		return false, fmt.Errorf("remote: flush of %s: %w", c.h.Ref(), err)
	}
	c.sending, c.retry = 0, false
	c.merged = v
	if pull {
		c.reads = 0
	}
	return retried && c.pending != 0, nil
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

// newSegmentID returns a random segment id: 16 hex digits.
func newSegmentID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand does not fail on supported systems
	return hex.EncodeToString(b[:])
}
