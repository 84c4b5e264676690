package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Segment is a segment a Syncer keeps up to date: a *Counter, *Set or
// *Timeline.
type Segment interface {
	// flush sends the segment's updates, then with pull reads the
	// replica's state into it.
	flush(ctx context.Context, pull bool) error
	// wasRead reports whether the segment was read since its last pull.
	wasRead() bool
}

func (c *Counter) wasRead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads > 0
}

func (s *Set) wasRead() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads > 0
}

func (t *Timeline) wasRead() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.read
}

// Syncer moves the pulls of segments off their readers' path: in one
// goroutine, every period it flushes every segment it watches, and every
// pullEvery it pulls (after a flush) each segment read since its last
// pull. Readers then serve their segment's copy and pull only on a
// segment's first read (give the Set and Counter segments a PullEvery
// high enough that their own pulls never come due). The guarantees of
// the segments do not depend on when they pull. Give one Syncer to the
// segments of one client (one connection's clients may share segments and
// a Syncer).
type Syncer struct {
	mu     sync.Mutex
	segs   []Segment
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// NewSyncer starts a Syncer that flushes every period and pulls every
// pullEvery (both > 0).
func NewSyncer(period, pullEvery time.Duration) (*Syncer, error) {
	if period <= 0 || pullEvery <= 0 {
		return nil, fmt.Errorf("remote: syncer period %v and pull period %v, want both more than 0", period, pullEvery)
	}
	y := &Syncer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(y.done)
		t := time.NewTicker(period)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-y.stop:
				return
			case now := <-t.C:
				pull := now.Sub(last) >= pullEvery
				if pull {
					last = now
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*period+time.Second)
				_ = y.sync(ctx, pull) // a failed flush keeps its updates for the next
				cancel()
			}
		}
	}()
	return y, nil
}

// Watch adds seg to the segments y keeps up to date.
func (y *Syncer) Watch(seg Segment) error {
	if seg == nil {
		return errors.New("remote: Watch of a nil segment")
	}
	y.mu.Lock()
	defer y.mu.Unlock()
	if y.closed {
		return ErrClosed
	}
	y.segs = append(y.segs, seg)
	return nil
}

// sync flushes every segment, and with pull pulls those read since their
// last pull.
func (y *Syncer) sync(ctx context.Context, pull bool) error {
	y.mu.Lock()
	segs := y.segs
	y.mu.Unlock()
	var errs []error
	for _, s := range segs {
		errs = append(errs, s.flush(ctx, pull && s.wasRead()))
	}
	return errors.Join(errs...)
}

// Close stops the background work and flushes every segment once more;
// it returns that flush's error. The segments stay usable (a later
// update waits for another flush).
func (y *Syncer) Close(ctx context.Context) error {
	y.mu.Lock()
	if y.closed {
		y.mu.Unlock()
		return nil
	}
	y.closed = true
	y.mu.Unlock()
	close(y.stop)
	<-y.done
	return y.sync(ctx, false)
}
