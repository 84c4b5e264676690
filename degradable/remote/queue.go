package remote

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
)

// ErrSecondReader is returned by Dequeue on a single-reader queue
// (SingleReader) whose reader is another segment.
var ErrSecondReader = errors.New("remote: the single-reader queue has another reader")

// A Queue segment is one client's segment of a weak queue on the DSO (a
// List of the weak table, dso/replicated: per-writer queues ordered by the
// writers' stamps). Enqueue and Dequeue apply at once to the segment's
// view, and a Flusher sends them to the queue's replica in the background,
// as one batch per flush; reads serve the view: the queue as the replica
// answered the last pull, with the client's updates since applied. A
// segment pulls (after a flush) on its first read and every PullEvery
// reads (Dequeue, Len and Elements are reads).
//
// The segment is a writer of its own: its items carry its id, their
// number in its order and a stamp (client.NextStamp, increasing). A
// Dequeue takes the front of the view and sends the removal of that item
// by name, so every replica removes that item and no other, in any order.
//
// # Guarantee
//
// While the client's calls reach the same replica, the view is the queue
// of a set of issued updates, the replica's at the last pull and the
// client's own since (read-your-writes; pulls only add updates: monotonic
// reads): the enqueued items not removed, each writer's in its order. A
// client never dequeues one item twice, and dequeues each writer's items
// in that writer's order. Two segments that dequeue concurrently may take
// the same item (at-least-once); no item is lost: an item is removed only
// by a dequeue that returned it. Once every segment has flushed and the
// updates have spread, every replica holds the same queue (convergence).
//
// # Single reader
//
// With SingleReader, a queue has one reader: the first segment made with
// SingleReader that dequeues claims the queue (a compare-and-set on the
// linearizable AtomicReference named ReaderKey(key)), and a Dequeue of
// any other SingleReader segment of that queue fails with ErrSecondReader
// naming the reader. The queue then delivers every item once (no two
// readers take it). The claim binds the SingleReader segments only: a
// removeAt(0) through another client is not refused.
type Queue struct {
	h      dso.Handle
	p      *client.Persistent
	key    string
	cfg    config
	f      *Flusher
	id     string // the segment's id: its writer name is "u:" + id
	single bool

	flushMu sync.Mutex         // serializes flushes and pulls
	claimMu sync.Mutex         // serializes claims
	claimed bool               // guarded by claimMu
	mu      sync.Mutex         // guards the fields below
	view    []dso.QueueItem    // sorted by dso.CompareQueueItems, as the replicas sort it
	next    int64              // the number of the segment's next item
	enq     []dso.QueueItem    // the items of the next batch
	deq     []dso.QueueItem    // the removals of the next batch
	sending [2][]dso.QueueItem // the batch in flight, or the failed one
	b       batches
	reads   int
}

// SingleReader makes a queue segment the queue's one reader (see Queue).
func SingleReader() Option { return func(c *config) { c.singleReader = true } }

// ReaderKey is the key of the linearizable AtomicReference through which
// a single-reader queue's reader claims the queue key.
func ReaderKey(key string) string { return "remote.queue-reader/" + key }

// NewQueue returns a segment of the weak queue (List) key of the DSO that
// p calls (p must call the weak level), flushed by f.
func NewQueue(p *client.Persistent, key string, f *Flusher, opts ...Option) (*Queue, error) {
	cfg, err := newConfig("queue", p, opts)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, errors.New("remote: a queue segment needs a Flusher")
	}
	return &Queue{h: dso.NewHandle(p, dso.TypeList, key), p: p, key: key, cfg: cfg, f: f, id: newSegmentID(), single: cfg.singleReader, next: 1, reads: cfg.pullEvery - 1}, nil
}

// Enqueue appends e (a wire value) to the segment's own items, at once.
func (q *Queue) Enqueue(e any) error {
	q.mu.Lock()
	it := dso.QueueItem{Writer: "u:" + q.id, N: q.next, Stamp: client.NextStamp(), V: e}
	if err := q.b.markLocked(q.f, q); err != nil {
		q.mu.Unlock()
		return err
	}
	q.next++
	q.enq = append(q.enq, it)
	i, _ := slices.BinarySearchFunc(q.view, it, dso.CompareQueueItems)
	q.view = slices.Insert(q.view, i, it)
	q.mu.Unlock()
	return nil
}

// claim makes q the reader of a single-reader queue, or fails with
// ErrSecondReader.
func (q *Queue) claim(ctx context.Context) error {
	q.claimMu.Lock()
	defer q.claimMu.Unlock()
	if q.claimed {
		return nil
	}
	r := dso.NewAtomicReference(q.p.At(degradable.Linearizable), ReaderKey(q.key))
	ok, err := r.CompareAndSet(ctx, nil, q.id)
	if err != nil {
		return fmt.Errorf("remote: claiming the queue %s: %w", q.key, err)
	}
	if !ok {
		who, err := r.Get(ctx)
		if err != nil {
			return fmt.Errorf("remote: claiming the queue %s: %w", q.key, err)
		}
		if who != q.id {
			return fmt.Errorf("%w: queue %s is read by segment %v, so segment %s may not dequeue from it", ErrSecondReader, q.key, who, q.id)
		}
	}
	q.claimed = true
	return nil
}

// Dequeue removes the front of the segment's view and returns it with
// true, or returns false if the view is empty.
func (q *Queue) Dequeue(ctx context.Context) (any, bool, error) {
	if q.single {
		if err := q.claim(ctx); err != nil {
			return nil, false, err
		}
	}
	if err := q.read(ctx); err != nil {
		return nil, false, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.view) == 0 {
		return nil, false, nil
	}
	it := q.view[0]
	own := slices.IndexFunc(q.enq, func(x dso.QueueItem) bool { return x.Writer == it.Writer && x.N == it.N })
	if own < 0 {
		if err := q.b.markLocked(q.f, q); err != nil {
			return nil, false, err
		}
		q.deq = append(q.deq, it)
	} else {
		q.enq = slices.Delete(q.enq, own, own+1) // unsent: it never leaves
	}
	if q.cfg.bug != bugDequeueTwice { // planted: the item stays in the view
		q.view = q.view[1:]
	}
	return it.V, true, nil
}

// Len returns the number of items the segment sees.
func (q *Queue) Len(ctx context.Context) (int, error) {
	if err := q.read(ctx); err != nil {
		return 0, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.view), nil
}

// Elements returns the items the segment sees, front first.
func (q *Queue) Elements(ctx context.Context) ([]any, error) {
	if err := q.read(ctx); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]any, len(q.view))
	for i, it := range q.view {
		out[i] = it.V
	}
	return out, nil
}

// read pulls when a pull is due.
func (q *Queue) read(ctx context.Context) error {
	q.mu.Lock()
	q.reads++
	due := q.reads >= q.cfg.pullEvery
	q.mu.Unlock()
	if due {
		return q.flush(ctx, true)
	}
	return nil
}

// Flush sends the segment's updates and returns once the replica
// acknowledged them.
func (q *Queue) Flush(ctx context.Context) error { return q.flush(ctx, false) }

// flush sends the failed batch again, then the next batch, then with pull
// reads the queue.
func (q *Queue) flush(ctx context.Context, pull bool) error {
	q.flushMu.Lock()
	defer q.flushMu.Unlock()
	err := q.b.sendAll(ctx, &q.mu, q.f, q, q.h.Ref().String(), func() bool {
		if len(q.enq) == 0 && len(q.deq) == 0 {
			return false
		}
		q.sending = [2][]dso.QueueItem{q.enq, q.deq}
		q.enq, q.deq = nil, nil
		return true
	}, func(ctx context.Context) error {
		q.mu.Lock()
		batch := q.sending
		q.mu.Unlock()
		return q.send(ctx, batch[0], batch[1])
	}, func() { q.sending = [2][]dso.QueueItem{} })
	if err != nil {
		return err
	}
	if !pull {
		return nil
	}
	all, err := q.h.Call(ctx, "observeAll")
	if err != nil {
		return fmt.Errorf("remote: pull of %s: %w", q.h.Ref(), err)
	}
	l, _ := all.([]any)
	view := make([]dso.QueueItem, 0, len(l))
	for _, x := range l {
		if it, ok := dso.QueueItemFrom(x); ok {
			view = append(view, it)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	view = slices.DeleteFunc(view, func(it dso.QueueItem) bool { // removed since the batches left
		return slices.ContainsFunc(q.deq, func(d dso.QueueItem) bool { return d.Writer == it.Writer && d.N == it.N })
	})
	for _, it := range q.enq { // enqueued since
		i, _ := slices.BinarySearchFunc(view, it, dso.CompareQueueItems)
		view = slices.Insert(view, i, it)
	}
	q.view, q.reads = view, 0
	return nil
}

// send sends a batch in one call: addAll with its items and removals, or
// removeAll.
func (q *Queue) send(ctx context.Context, enq, deq []dso.QueueItem) error {
	refs := make([]any, len(deq))
	for i, it := range deq {
		refs[i] = []any{it.Writer, it.N}
	}
	if len(enq) == 0 {
		_, err := q.h.Call(ctx, "removeAll", refs)
		return err
	}
	items := make([]any, len(enq))
	for i, it := range enq {
		items[i] = []any{it.N, it.Stamp, it.V}
	}
	_, err := q.h.Call(ctx, "addAll", items, q.id, refs)
	return err
}
