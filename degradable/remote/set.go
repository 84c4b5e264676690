package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
)

// A Set segment is one client's segment of a weak (grow-only) Set on the
// DSO: Add applies at once to the segment, and a Flusher sends the
// segment's new elements to the set's replica in the background; reads
// serve the union of the replica's members as last pulled and the
// client's elements not yet acknowledged, pulling (after a flush) on a
// segment's first read and every PullEvery reads. Its guarantee is the
// counter's (package doc) with union as the merge: while the client's
// calls reach the same replica, every read is the union of a set of
// issued adds that holds every add of the client before it and every add
// an earlier read held. Elements are int64 or string. A flush that fails
// keeps its elements for the next (adds are idempotent, so a resent
// element counts once). A flush sends the new elements in one call
// (Set.addAll).
type Set struct {
	h   dso.Set
	cfg config
	f   *Flusher

	flushMu sync.Mutex // serializes flushes and pulls
	mu      sync.Mutex // guards the fields below
	pending []any
	own     map[any]bool // pending and sending elements
	sending []any
	merged  map[any]bool // the replica's members at the last pull
	reads   int
	dirty   bool // listed in f's dirty segments
}

// NewSet returns a segment of the weak Set key of the DSO that p calls
// (p must call the weak level), flushed by f.
func NewSet(p *client.Persistent, key string, f *Flusher, opts ...Option) (*Set, error) {
	cfg, err := newConfig("set", p, opts)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, errors.New("remote: a set segment needs a Flusher")
	}
	return &Set{h: dso.NewSet(p, key), cfg: cfg, f: f, own: map[any]bool{}, merged: map[any]bool{}, reads: cfg.pullEvery - 1}, nil
}

// Add adds e (an int64 or a string) to the segment, at once.
func (s *Set) Add(e any) error {
	switch e.(type) {
	case int64, string:
	default:
		return fmt.Errorf("%w: a set segment holds int64 and string elements, not %T", dso.ErrBadArgs, e)
	}
	s.mu.Lock()
	if s.own[e] || s.merged[e] {
		s.mu.Unlock()
		return nil
	}
	s.own[e] = true
	s.pending = append(s.pending, e)
	mark := !s.dirty
	s.dirty = true
	s.mu.Unlock()
	if !mark {
		return nil
	}
	if err := s.f.mark(s); err != nil {
		s.mu.Lock()
		if n := len(s.pending); n > 0 && s.pending[n-1] == e { // not taken by a pull meanwhile
			s.pending = s.pending[:n-1]
			delete(s.own, e)
		}
		s.dirty = false
		s.mu.Unlock()
		return err
	}
	return nil
}

// Contains reports whether the segment sees e.
func (s *Set) Contains(ctx context.Context, e any) (bool, error) {
	if err := s.read(ctx); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.merged[e] || (s.own[e] && s.cfg.bug != bugForgetOwn), nil
}

// Members returns the elements the segment sees, in no order.
func (s *Set) Members(ctx context.Context) ([]any, error) {
	if err := s.read(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]any, 0, len(s.merged)+len(s.own))
	for e := range s.merged {
		out = append(out, e)
	}
	if s.cfg.bug != bugForgetOwn { // planted: the unsent elements are left out
		for e := range s.own {
			if !s.merged[e] {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// read pulls when a pull is due.
func (s *Set) read(ctx context.Context) error {
	s.mu.Lock()
	s.reads++
	due := s.reads >= s.cfg.pullEvery
	s.mu.Unlock()
	if due {
		return s.flush(ctx, true)
	}
	return nil
}

// Flush sends the segment's new elements and returns once the replica
// acknowledged them.
func (s *Set) Flush(ctx context.Context) error { return s.flush(ctx, false) }

// flush sends the pending elements, then with pull reads the members.
func (s *Set) flush(ctx context.Context, pull bool) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	s.sending, s.pending = s.pending, nil
	s.dirty = false
	es := s.sending
	s.mu.Unlock()
	if len(es) > 0 {
		if _, err := s.h.AddAll(ctx, es); err != nil {
			s.mu.Lock()
			s.pending = append(s.pending, es...)
			s.sending = nil
			mark := !s.dirty
			s.dirty = true
			s.mu.Unlock()
			if mark {
				_ = s.f.mark(s) // closed: the elements stay pending, and the error says so
			}
			return fmt.Errorf("remote: flush of %s: %w", s.h.Ref(), err)
		}
	}
	var members []any
	if pull {
		var err error
		if members, err = s.h.Members(ctx); err != nil {
			return fmt.Errorf("remote: pull of %s: %w", s.h.Ref(), err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range es {
		s.merged[e] = true
		delete(s.own, e)
	}
	s.sending = nil
	if pull {
		for _, e := range members {
			switch e.(type) {
			case int64, string:
				s.merged[e] = true
			}
		}
		s.reads = 0
	}
	return nil
}

// Flusher flushes the segments that have new elements, every period, in
// one goroutine: give each client one Flusher for all its set segments.
type Flusher struct {
	mu     sync.Mutex
	dirty  []*Set
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// NewFlusher starts a Flusher that flushes every period (> 0).
func NewFlusher(period time.Duration) (*Flusher, error) {
	if period <= 0 {
		return nil, fmt.Errorf("remote: flush period %v, want more than 0", period)
	}
	f := &Flusher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), 10*period+time.Second)
				_ = f.flush(ctx) // a failed flush keeps its elements for the next
				cancel()
			}
		}
	}()
	return f, nil
}

// mark lists s among the segments to flush.
func (f *Flusher) mark(s *Set) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	f.dirty = append(f.dirty, s)
	return nil
}

// flush flushes the listed segments.
func (f *Flusher) flush(ctx context.Context) error {
	f.mu.Lock()
	dirty := f.dirty
	f.dirty = nil
	f.mu.Unlock()
	var errs []error
	for _, s := range dirty {
		errs = append(errs, s.flush(ctx, false))
	}
	return errors.Join(errs...)
}

// Close stops the background flushes and flushes what is left; later
// Adds on its segments fail with ErrClosed.
func (f *Flusher) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	close(f.stop)
	<-f.done
	return f.flush(ctx)
}
