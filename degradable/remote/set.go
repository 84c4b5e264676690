package remote

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
)

// A Set segment is one client's segment of a weak Set on the DSO, an
// observed-remove set (the weak table's Set, dso/replicated): Add and
// Remove apply at once to the segment's view, and a Flusher sends them to
// the set's replica in the background, as one batch per flush; reads
// serve the view: the set as the replica answered the last pull (its
// elements and the tags of their adds), with the client's updates since
// applied. A segment pulls (after a flush) on its first read and every
// PullEvery reads. Elements are int64 or string.
//
// Every add of a batch carries the batch's tag (the segment's id and the
// batch's number), and a remove carries the tags of the adds of its
// element that the view holds: the adds the client observed, its own
// included. So a remove removes those adds only, at every replica and in
// any order, and an add it did not observe (another client's concurrent
// add) survives it. A Remove of an element whose add is still in the
// unsent batch takes that add out of the batch instead.
//
// # Guarantee
//
// While the client's calls reach the same replica, every read returns the
// observed-remove merge of a set of issued updates: the updates the
// replica had applied at the last pull (which hold every earlier pull's,
// so reads are monotonic) and the client's own updates since, which makes
// reads read-your-writes; an element is in the merge if it has an add in
// the set that no remove in the set names. Once every segment has flushed
// and the updates have spread, every replica holds the merge of every
// update (convergence). A batch whose flush fails is sent again as it was,
// before any later update: adds and removes naming tags are idempotent,
// so a batch counts once however often it is sent.
type Set struct {
	h   dso.Set
	cfg config
	f   *Flusher
	id  string // the segment's id in its tags

	flushMu sync.Mutex              // serializes flushes and pulls
	mu      sync.Mutex              // guards the fields below
	view    map[any]map[string]bool // element -> tags of its adds
	log     []setOp                 // the updates of the next batch, in order
	sending []setOp                 // the batch in flight, or the failed one
	seq     int64                   // the number of the last batch sent
	b       batches
	reads   int
}

// setOp is an update of a batch: an add of e, or a remove of the tags of
// e.
type setOp struct {
	e    any
	tags []string // a remove's
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
	return &Set{h: dso.NewSet(p, key), cfg: cfg, f: f, id: newSegmentID(), view: map[any]map[string]bool{}, reads: cfg.pullEvery - 1}, nil
}

// batchTag is the tag (as the weak table reports it) of the adds of batch
// n.
func (s *Set) batchTag(n int64) string { return "u:" + s.id + "." + strconv.FormatInt(n, 16) }

// checkElem refuses an element other than an int64 or a string.
func checkElem(e any) error {
	switch e.(type) {
	case int64, string:
		return nil
	}
	return fmt.Errorf("%w: a set segment holds int64 and string elements, not %T", dso.ErrBadArgs, e)
}

// Add adds e (an int64 or a string) to the segment, at once.
func (s *Set) Add(e any) error {
	if err := checkElem(e); err != nil {
		return err
	}
	s.mu.Lock()
	tag := s.batchTag(s.seq + 1)
	if s.view[e][tag] {
		s.mu.Unlock()
		return nil
	}
	return s.update(setOp{e: e}, func() {
		if s.view[e] == nil {
			s.view[e] = map[string]bool{}
		}
		s.view[e][tag] = true
	})
}

// Remove removes e from the segment, at once: the adds of e the segment
// sees.
func (s *Set) Remove(e any) error {
	if err := checkElem(e); err != nil {
		return err
	}
	s.mu.Lock()
	tags := s.view[e]
	if len(tags) == 0 {
		s.mu.Unlock()
		return nil
	}
	own := s.batchTag(s.seq + 1)
	var names []string
	for _, t := range slices.Sorted(maps.Keys(tags)) {
		if t != own {
			names = append(names, t)
		}
	}
	if s.cfg.bug == bugRemoveStays {
		tags = nil // planted: the view keeps e
	}
	apply := func() {
		if tags != nil {
			delete(s.view, e)
		}
	}
	if tags[own] { // the add is in the unsent batch: take it out
		s.log = slices.DeleteFunc(s.log, func(op setOp) bool { return op.e == e && op.tags == nil })
	}
	if len(names) == 0 {
		apply()
		s.mu.Unlock()
		return nil
	}
	return s.update(setOp{e: e, tags: names}, apply)
}

// update appends op to the next batch and applies it to the view, with
// s.mu held (update unlocks it).
func (s *Set) update(op setOp, apply func()) error {
	if err := s.b.markLocked(s.f, s); err != nil {
		s.mu.Unlock()
		return err
	}
	s.log = append(s.log, op)
	apply()
	s.mu.Unlock()
	return nil
}

// Contains reports whether the segment sees e.
func (s *Set) Contains(ctx context.Context, e any) (bool, error) {
	if err := s.read(ctx); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.visible(e), nil
}

// visible reports whether the view holds e (with s.mu held).
func (s *Set) visible(e any) bool {
	tags := s.view[e]
	if s.cfg.bug == bugForgetOwn { // planted: the unsent adds are left out
		n := len(tags)
		if tags[s.batchTag(s.seq+1)] {
			n--
		}
		if s.b.retry && tags[s.batchTag(s.seq)] {
			n--
		}
		return n > 0
	}
	return len(tags) > 0
}

// Members returns the elements the segment sees, in no order.
func (s *Set) Members(ctx context.Context) ([]any, error) {
	if err := s.read(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]any, 0, len(s.view))
	for e := range s.view {
		if s.visible(e) {
			out = append(out, e)
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

// Flush sends the segment's updates and returns once the replica
// acknowledged them.
func (s *Set) Flush(ctx context.Context) error { return s.flush(ctx, false) }

// flush sends the failed batch again, then the next batch, then with pull
// reads the set.
func (s *Set) flush(ctx context.Context, pull bool) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	var batch []setOp
	var seq int64
	err := s.b.sendAll(ctx, &s.mu, s.f, s, s.h.Ref().String(), func() bool {
		if len(s.log) == 0 {
			return false
		}
		s.sending, s.log = s.log, nil
		s.seq++
		return true
	}, func(ctx context.Context) error {
		s.mu.Lock()
		batch, seq = s.sending, s.seq
		s.mu.Unlock()
		return s.send(ctx, batch, seq)
	}, func() { s.sending = nil })
	if err != nil {
		return err
	}
	if !pull {
		return nil
	}
	all, err := s.h.Call(ctx, "observeAll")
	if err != nil {
		return fmt.Errorf("remote: pull of %s: %w", s.h.Ref(), err)
	}
	view := map[any]map[string]bool{}
	pairs, _ := all.([]any)
	for _, x := range pairs {
		p, ok := x.([]any)
		if !ok || len(p) != 2 || checkElem(p[0]) != nil {
			continue
		}
		tags, _ := p[1].([]any)
		m := map[string]bool{}
		for _, t := range tags {
			if ts, ok := t.(string); ok {
				m[ts] = true
			}
		}
		view[p[0]] = m
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	own := s.batchTag(s.seq + 1)
	for _, op := range s.log { // the updates made since the batches left
		switch {
		case op.tags == nil:
			if view[op.e] == nil {
				view[op.e] = map[string]bool{}
			}
			view[op.e][own] = true
		default:
			for _, t := range op.tags {
				delete(view[op.e], t)
			}
			if len(view[op.e]) == 0 {
				delete(view, op.e)
			}
		}
	}
	s.view, s.reads = view, 0
	return nil
}

// send sends batch number seq in one call: addAll with the batch's tag
// and its removes, or removeAll.
func (s *Set) send(ctx context.Context, batch []setOp, seq int64) error {
	adds, removes := []any{}, []any{}
	for _, op := range batch {
		if op.tags == nil {
			adds = append(adds, op.e)
			continue
		}
		tags := make([]any, len(op.tags))
		for i, t := range op.tags {
			tags[i] = t
		}
		removes = append(removes, []any{op.e, tags})
	}
	var err error
	switch {
	case len(adds) > 0:
		_, err = s.h.Call(ctx, "addAll", adds, s.id+"."+strconv.FormatInt(seq, 16), removes)
	case len(removes) > 0:
		_, err = s.h.Call(ctx, "removeAll", removes)
	}
	return err
}

// Flusher flushes the segments that have new updates, every period, in
// one goroutine: give each client one Flusher for all its set and queue
// segments.
type Flusher struct {
	mu     sync.Mutex
	dirty  []flushable
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// flushable is a segment a Flusher flushes.
type flushable interface {
	flush(ctx context.Context, pull bool) error
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
				_ = f.flush(ctx) // a failed flush keeps its updates for the next
				cancel()
			}
		}
	}()
	return f, nil
}

// mark lists s among the segments to flush.
func (f *Flusher) mark(s flushable) error {
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
// updates on its segments fail with ErrClosed.
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
