package remote

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
)

// MaxWriters bounds the writer numbers of timelines and clocks: a post id
// keeps its writer in its low WriterBits bits.
const (
	WriterBits = 10
	MaxWriters = 1 << WriterBits
)

// Clock hands out post ids: Lamport stamps (time << WriterBits | writer),
// unique per writer and increasing, that order posts newest last. A
// timeline read should Observe the ids it returns, so that a later post
// is newer than every post its writer has seen. It is safe for
// concurrent use.
type Clock struct {
	mu     sync.Mutex
	t      int64
	writer int64
}

// NewClock returns writer's clock (0 <= writer < MaxWriters).
func NewClock(writer int) (*Clock, error) {
	if writer < 0 || writer >= MaxWriters {
		return nil, fmt.Errorf("remote: writer %d, want 0..%d", writer, MaxWriters-1)
	}
	return &Clock{writer: int64(writer)}, nil
}

// Next returns a new id, greater than every id this clock returned or
// observed.
func (c *Clock) Next() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t++
	return c.t<<WriterBits | c.writer
}

// Observe makes later ids greater than ids.
func (c *Clock) Observe(ids []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		c.t = max(c.t, id>>WriterBits)
	}
}

// A Timeline segment is one writer's view of a bounded timeline on the
// DSO: the newest Cap posts of a feed, as Retwis keeps them (a push then a
// trim to Cap). The timeline is a Map whose values are post ids (int64,
// newest greatest, from a Clock): each writer owns Cap keys
// "writer/slot", merges its posts into them with the combiner max, and
// puts a post in the slot holding its smallest id, so the writer's keys
// hold its newest Cap posts and the newest Cap values of the whole map
// are the timeline's newest Cap posts. max commutes, so the map is
// offered at the weak level.
//
// With a caller at the weak level the segment works like a Set segment:
// Post applies at once and Flush (or a Syncer, in the background) sends
// the new posts in one mergeAll; Latest returns the newest Cap of the
// posts last pulled and the writer's unsent ones, pulling (Map.values)
// on the segment's first read and then only when a Syncer or Pull does.
// Guarantee, while the writer's calls reach the same replica: every read
// returns the newest Cap posts of a set V of issued posts to the timeline
// (valid), where V holds every post of the writer before the read
// (read-your-writes) and the V of every earlier read (monotonic reads);
// once every segment has flushed and the updates have spread, a pull
// gives every segment the newest Cap of all the posts (convergence).
//
// At the other levels the segment keeps no copy: Post sends its post at
// once and Latest reads the map on every call, so the calls are the weak
// level's, made synchronously.
type Timeline struct {
	h      dso.Map
	writer int
	cap    int
	weak   bool
	bug    bug
	slots  []int64 // the id in each of the writer's slots (0: empty)

	flushMu sync.Mutex // serializes flushes and pulls
	mu      sync.Mutex // guards the fields below, and slots
	pending map[string]int64
	sending map[string]int64
	merged  []int64 // the newest cap ids pulled or acknowledged, newest first
	pulled  bool    // the segment has pulled once
	read    bool    // read since the last pull
}

// NewTimeline returns writer's segment of the timeline key (a Map) of the
// DSO that p calls, holding the newest capacity posts (capacity >= 1,
// 0 <= writer < MaxWriters). Give each writer its own number and one
// segment per timeline; the segment is safe for concurrent use.
func NewTimeline(p *client.Persistent, key string, writer, capacity int) (*Timeline, error) {
	switch {
	case p == nil:
		return nil, errors.New("remote: a timeline needs a caller")
	case writer < 0 || writer >= MaxWriters:
		return nil, fmt.Errorf("remote: timeline writer %d, want 0..%d", writer, MaxWriters-1)
	case capacity < 1:
		return nil, fmt.Errorf("remote: timeline capacity %d, want at least 1", capacity)
	}
	return &Timeline{
		h: dso.NewMap(p, key), writer: writer, cap: capacity, weak: p.Level() == degradable.Weak,
		slots: make([]int64, capacity), pending: map[string]int64{},
	}, nil
}

// Post adds the post id (> 0) to the timeline: at the weak level to the
// segment, at once, and otherwise by a call that returns once it is
// applied. Posts may come in any order: a post older than the writer's
// newest Cap posts to the timeline is trimmed at once (not sent), and a
// post already there is not sent again.
func (t *Timeline) Post(ctx context.Context, id int64) error {
	if id <= 0 {
		return fmt.Errorf("%w: timeline post id %d, want more than 0", dso.ErrBadArgs, id)
	}
	t.mu.Lock()
	slot := 0
	for i, v := range t.slots {
		if v < t.slots[slot] {
			slot = i
		}
	}
	if id <= t.slots[slot] || slices.Contains(t.slots, id) {
		t.mu.Unlock()
		return nil // trimmed, or there already
	}
	t.slots[slot] = id
	key := fmt.Sprintf("%d/%d", t.writer, slot)
	if t.weak {
		t.pending[key] = id
		t.mu.Unlock()
		return nil
	}
	t.mu.Unlock()
	if _, err := t.h.Merge(ctx, key, id, "max"); err != nil {
		return fmt.Errorf("remote: post to %s: %w", t.h.Ref(), err)
	}
	return nil
}

// Latest returns the newest posts of the timeline, newest first, at most
// its capacity (see the type's doc for what the weak level's copy holds).
func (t *Timeline) Latest(ctx context.Context) ([]int64, error) {
	if !t.weak {
		ids, err := t.entries(ctx)
		if err != nil {
			return nil, err
		}
		return newest(t.cap, ids), nil
	}
	t.mu.Lock()
	t.read = true
	first := !t.pulled
	t.mu.Unlock()
	if first {
		if err := t.flush(ctx, true); err != nil {
			return nil, err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	all := slices.Clone(t.merged)
	if t.bug != bugForgetOwn { // planted: the unsent posts are left out
		for _, m := range []map[string]int64{t.pending, t.sending} {
			for _, id := range m {
				all = append(all, id)
			}
		}
	}
	return newest(t.cap, all), nil
}

// Flush sends the segment's new posts and returns once the replica
// acknowledged them (at the weak level; at the others there is nothing to
// send).
func (t *Timeline) Flush(ctx context.Context) error { return t.flush(ctx, false) }

// Pull flushes the segment, then reads the replica's copy of the timeline
// into it.
func (t *Timeline) Pull(ctx context.Context) error { return t.flush(ctx, true) }

// flush sends the pending posts, then with pull reads the map.
func (t *Timeline) flush(ctx context.Context, pull bool) error {
	if !t.weak {
		return nil
	}
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	t.mu.Lock()
	t.sending, t.pending = t.pending, map[string]int64{}
	send := t.sending
	t.mu.Unlock()
	if len(send) == 0 && !pull {
		return nil
	}
	if len(send) > 0 {
		in := make(map[string]any, len(send))
		for k, id := range send {
			in[k] = id
		}
		if _, err := t.h.MergeAll(ctx, in, "max"); err != nil {
			t.mu.Lock()
			for k, id := range send { // a resent id merges once (max is idempotent)
				t.pending[k] = max(t.pending[k], id)
			}
			t.sending = nil
			t.mu.Unlock()
			return fmt.Errorf("remote: flush of %s: %w", t.h.Ref(), err)
		}
	}
	var ids []int64
	if pull {
		var err error
		if ids, err = t.entries(ctx); err != nil {
			return err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range send {
		ids = append(ids, id)
	}
	t.sending = nil
	if t.bug == bugLoseMerged { // planted: the sent posts leave the copy
		ids = ids[:len(ids)-len(send)]
	}
	t.merged = newest(t.cap, append(ids, t.merged...))
	if pull {
		t.pulled, t.read = true, false
	}
	return nil
}

// entries reads the ids in the timeline's map (its values).
func (t *Timeline) entries(ctx context.Context) ([]int64, error) {
	v, err := t.h.Call(ctx, "values")
	if err != nil {
		return nil, fmt.Errorf("remote: read of %s: %w", t.h.Ref(), err)
	}
	vs, _ := v.([]any)
	ids := make([]int64, 0, len(vs))
	for _, v := range vs {
		if id, ok := v.(int64); ok {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// newest returns the k greatest distinct ids of ids, greatest first; it
// may reorder ids.
func newest(k int, ids []int64) []int64 {
	slices.SortFunc(ids, func(a, b int64) int { return cmp.Compare(b, a) })
	ids = slices.Compact(ids)
	return slices.Clip(ids[:min(k, len(ids))])
}
