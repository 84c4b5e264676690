package remote

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
)

// tlRead is one Latest of a timeline client: its result and the client's
// posts before it.
type tlRead struct {
	got, own []int64
}

// checkTimelineReads checks one client's reads of a timeline of capacity
// k against the Timeline's guarantee: each read is the newest posts of a
// set of issued posts, newest first and at most k (valid: issued says
// whether a post was issued before the read returned), that holds every
// post of the client before it (read-your-writes) and every post an
// earlier read held (monotonic reads). A post is held by a read that
// returns it or returns k posts all newer than it. issued(id, i) says
// whether id was posted before read i returned.
func checkTimelineReads(client, k int, issued func(id int64, read int) bool, reads []tlRead) error {
	holds := func(r []int64, id int64) bool {
		return slices.Contains(r, id) || (len(r) == k && r[len(r)-1] > id)
	}
	var prev []int64
	for i, r := range reads {
		if len(r.got) > k || !slices.IsSortedFunc(r.got, func(a, b int64) int { return int(b - a) }) {
			return fmt.Errorf("client %d read %d: %v, not the newest %d posts newest first", client, i, r.got, k)
		}
		for j := 1; j < len(r.got); j++ {
			if r.got[j] == r.got[j-1] {
				return fmt.Errorf("client %d read %d: %v holds %d twice", client, i, r.got, r.got[j])
			}
		}
		for _, id := range r.got {
			if !issued(id, i) {
				return fmt.Errorf("client %d read %d holds %d, not posted before it returned (validity)", client, i, id)
			}
		}
		for _, id := range r.own {
			if !holds(r.got, id) {
				return fmt.Errorf("client %d read %d: %v misses its own post %d (read-your-writes)", client, i, r.got, id)
			}
		}
		for _, id := range prev {
			if !holds(r.got, id) {
				return fmt.Errorf("client %d read %d: %v misses %d, which an earlier read held (monotonic reads)", client, i, r.got, id)
			}
		}
		prev = r.got
	}
	return nil
}

// runTimeline runs four clients, each one writer with its own Clock,
// segment of the weak timeline "tl" (capacity k) and Syncer (flushing
// every period, pulling every 4 periods), posting 120 posts and reading
// the timeline every third post and flushing it itself every fifth; a
// replica other than the map's owner crashes and restarts halfway. plant, if not nil, changes each segment
// (a planted bug). It returns every post issued and the clients' errors
// (a failed check of their reads), or nil.
func runTimeline(t *testing.T, k int, period time.Duration, plant func(*Timeline)) ([]int64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const clients, posts = 4, 120
	var mu sync.Mutex
	issued := map[int64]int{} // post -> its index in all
	var all []int64
	cl, rep := cluster(t)
	err := drive(clients, posts, nonOwner(t, cl, rep, dso.TypeMap, "tl"), func(i int) (func(int) error, func() error) {
		c := dial(ctx, t, cl)
		clock, err := NewClock(i)
		require.NoError(t, err)
		y, err := NewSyncer(period, 4*period)
		require.NoError(t, err)
		seg, err := NewTimeline(c.Persistent().At(degradable.Weak), "tl", i, k)
		require.NoError(t, err)
		if plant != nil {
			plant(seg)
		}
		require.NoError(t, y.Watch(seg))
		var reads []tlRead
		var own []int64
		var before []int // per read: how many posts were issued when it returned
		step := func(j int) error {
			id := clock.Next()
			mu.Lock()
			issued[id] = len(all)
			all = append(all, id)
			mu.Unlock()
			if err := seg.Post(ctx, id); err != nil {
				return err
			}
			own = append(own, id)
			if j%5 == 4 {
				if err := seg.Flush(ctx); err != nil {
					return err
				}
			}
			if j%3 != 0 {
				return nil
			}
			got, err := seg.Latest(ctx)
			if err != nil {
				return err
			}
			clock.Observe(got)
			mu.Lock()
			before = append(before, len(all))
			mu.Unlock()
			reads = append(reads, tlRead{got: got, own: slices.Clone(own)})
			return nil
		}
		done := func() error {
			if err := y.Close(ctx); err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			return checkTimelineReads(i, k, func(id int64, r int) bool {
				x, ok := issued[id]
				return ok && x < before[r]
			}, reads)
		}
		return step, done
	})
	if err != nil {
		return all, err
	}
	// Convergence: once the updates have spread, every replica's map,
	// and so a fresh segment's first read at any replica, is the newest
	// k of every post.
	converge(ctx, t, rep)
	want := newest(k, slices.Clone(all))
	c := dial(ctx, t, cl)
	seg, err := NewTimeline(c.Persistent().At(degradable.Weak), "tl", 0, k)
	require.NoError(t, err)
	got, err := seg.Latest(ctx)
	require.NoError(t, err)
	if !slices.Equal(got, want) {
		return all, fmt.Errorf("after quiescence the timeline reads %v, want the newest %d posts %v (convergence)", got, k, want)
	}
	return all, nil
}

// TestTimelineSegments checks the weak timeline's segments on a
// three-node cluster with a replica crashed and restarted midway: every
// client's reads are valid, read-your-writes and monotonic, and once
// every Syncer has closed, the replicas converge to a map whose newest
// posts are the newest of every post.
func TestTimelineSegments(t *testing.T) {
	all, err := runTimeline(t, 10, time.Millisecond, nil)
	require.NoError(t, err)
	require.Len(t, all, 4*120)
}

// TestSabotageTimelineForgetOwnIsCaught plants segments whose reads leave
// out the writer's unsent posts (and flush only hourly): the
// read-your-writes check must catch it.
func TestSabotageTimelineForgetOwnIsCaught(t *testing.T) {
	_, err := runTimeline(t, 10, time.Hour, func(s *Timeline) { s.bug = bugForgetOwn })
	require.ErrorContains(t, err, "read-your-writes")
	t.Logf("caught: %v", err)
}

// TestSabotageTimelineLoseMergeIsCaught plants segments whose flush
// leaves the posts it sent out of their copy (the Syncer pulling only
// hourly): a read after the client's own flush misses its posts, which
// the checks must catch.
func TestSabotageTimelineLoseMergeIsCaught(t *testing.T) {
	_, err := runTimeline(t, 10, time.Hour, func(s *Timeline) { s.bug = bugLoseMerged })
	require.Error(t, err)
	require.Regexp(t, "monotonic reads|read-your-writes", err.Error())
	t.Logf("caught: %v", err)
}

// TestTimelineLinearizable checks the synchronous segment of the other
// levels: a post is in the next read at once, and the read keeps the
// newest posts only.
func TestTimelineLinearizable(t *testing.T) {
	cl, _ := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := dial(ctx, t, cl)
	a, err := NewTimeline(c.Persistent(), "lin", 1, 3)
	require.NoError(t, err)
	b, err := NewTimeline(c.Persistent(), "lin", 2, 3)
	require.NoError(t, err)
	for _, id := range []int64{5, 1, 9, 7} {
		require.NoError(t, a.Post(ctx, id<<WriterBits|1))
	}
	require.NoError(t, b.Post(ctx, 8<<WriterBits|2))
	got, err := b.Latest(ctx)
	require.NoError(t, err)
	require.Equal(t, []int64{9<<WriterBits | 1, 8<<WriterBits | 2, 7<<WriterBits | 1}, got)
}

// TestTimelineRefusals checks the arguments the timeline and clock refuse.
func TestTimelineRefusals(t *testing.T) {
	_, err := NewClock(MaxWriters)
	require.Error(t, err)
	_, err = NewTimeline(nil, "x", 0, 1)
	require.Error(t, err)
	_, err = NewSyncer(0, time.Second)
	require.Error(t, err)
}
