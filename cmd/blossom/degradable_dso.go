package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/degradable/remote"
	"github.com/blossom-dso/blossom/degradable/workload"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/server"
)

// dsoBench is `degradable-bench --target dso`: the per-level workloads on
// a three-node DSO cluster in this process, its servers and replicas
// talking over loopback TCP (as `blossom cluster --rf 3` runs them).
type dsoBench struct {
	protocol string
	clients  int           // client goroutines
	conns    int           // client connections they share
	nobjects int           // objects per type (the contention)
	duration time.Duration // per run
	users    int           // Retwis: initial users
	flush    time.Duration // the weak segments' flush period
	pull     time.Duration // the weak Retwis segments' background pull period
	timeline int           // Retwis: the posts a timeline keeps
	warmup   time.Duration // Retwis: unmeasured run before each measured one
	seed     uint64

	cl    *dsotest.Cluster
	dir   string
	dials []*client.Client
	run   atomic.Int64 // numbers the runs, for fresh object names
}

// dsoTypes are the object types of the DSO table.
var dsoTypes = []string{"counter", "set", "map", "queue"}

// start starts the cluster and dials the client connections.
func (b *dsoBench) start(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "blossom-degradable-bench-")
	if err != nil {
		return err
	}
	rep := replicationFlags{protocol: b.protocol, rf: 3, dataDir: dir, peerOffset: 1000, compactEvery: 10000, noSync: true, tick: 10 * time.Millisecond, segmentBytes: 8 << 20, levels: true}
	if err := rep.validate(); err != nil {
		return err
	}
	log := slog.New(slog.DiscardHandler)
	b.cl, err = dsotest.StartCluster(3, dsotest.Options{Logger: log, Replicate: func(i int, eps []string, reg *dso.Registry) (*server.Replication, io.Closer, error) {
		h, r, err := rep.start(eps, eps[i], nodeDataDir(dir, i+1), reg, nil, log)
		return r, h, err
	}})
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	b.dir = dir
	for range b.conns {
		c, err := client.Dial(ctx, b.cl.Endpoints...)
		if err != nil {
			b.close()
			return err
		}
		b.dials = append(b.dials, c)
	}
	return nil
}

// close closes the connections and stops the cluster.
func (b *dsoBench) close() {
	for _, c := range b.dials {
		c.Close()
	}
	if b.cl != nil {
		b.cl.Close()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// caller returns client goroutine i's caller at level l.
func (b *dsoBench) caller(i int, l degradable.Level) *client.Persistent {
	return b.dials[i%len(b.dials)].Persistent().At(l)
}

// errNotOffered marks a (type, level) the weak level does not offer.
var errNotOffered = errors.New("not offered at this level")

// objects runs type typ's mix at level l for the run's duration:
// counter 90% add 1 / 10% read (at the weak level through a per-client
// segment, remote.Counter); set 50% contains / 25% add / 25% remove (at
// the weak level through a per-client segment, remote.Set, an
// observed-remove set); map 50% get / 50% merge(k, 1, sum) (the updates
// the weak level offers, at every level); queue (a List) 50% add / 50%
// removeAt(0) (at the weak level through a per-client segment,
// remote.Queue: per-writer queues, at-least-once dequeues).
func (b *dsoBench) objects(ctx context.Context, typ string, l degradable.Level) (workload.Result, error) {
	name := func(k int) string { return fmt.Sprintf("bench-%s-%v-%d", typ, l, k) }
	switch typ {
	case "counter":
		if l == degradable.Weak {
			segs := make([]*remote.Counter, b.clients)
			for i := range segs {
				s, err := remote.NewCounter(b.caller(i, l), name(i%b.nobjects), remote.FlushEvery(b.flush))
				if err != nil {
					return workload.Result{}, err
				}
				segs[i] = s
			}
			res, err := b.timed(ctx, func(i int) func(*rand.Rand) error {
				s := segs[i]
				return func(r *rand.Rand) error {
					if r.IntN(10) == 0 {
						_, err := s.Value(ctx)
						return err
					}
					return s.Add(1)
				}
			})
			for _, s := range segs {
				if cerr := s.Close(ctx); err == nil {
					err = cerr
				}
			}
			return res, err
		}
		return b.timed(ctx, func(i int) func(*rand.Rand) error {
			h := dso.NewCounter(b.caller(i, l), name(i%b.nobjects))
			return func(r *rand.Rand) error {
				var err error
				if r.IntN(10) == 0 {
					_, err = h.Tally(ctx)
				} else {
					_, err = h.Increment(ctx, 1)
				}
				return err
			}
		})
	case "set":
		if l == degradable.Weak {
			return flushed(ctx, b, func(i int, f *remote.Flusher) (*remote.Set, error) {
				return remote.NewSet(b.caller(i, l), name(i%b.nobjects), f)
			}, func(_ int, s *remote.Set) func(*rand.Rand) error {
				return func(r *rand.Rand) error {
					switch e := int64(r.IntN(1024)); r.IntN(4) {
					case 0, 1:
						_, err := s.Contains(ctx, e)
						return err
					case 2:
						return s.Add(e)
					default:
						return s.Remove(e)
					}
				}
			})
		}
		return b.timed(ctx, func(i int) func(*rand.Rand) error {
			h := dso.NewSet(b.caller(i, l), name(i%b.nobjects))
			return func(r *rand.Rand) error {
				var err error
				switch e := int64(r.IntN(1024)); r.IntN(4) {
				case 0, 1:
					_, err = h.Contains(ctx, e)
				case 2:
					_, err = h.Add(ctx, e)
				default:
					_, err = h.Remove(ctx, e)
				}
				return err
			}
		})
	case "map":
		return b.timed(ctx, func(i int) func(*rand.Rand) error {
			h := dso.NewMap(b.caller(i, l), name(i%b.nobjects))
			return func(r *rand.Rand) error {
				var err error
				if k := fmt.Sprint(r.IntN(1024)); r.IntN(2) == 0 {
					_, err = h.Get(ctx, k)
				} else {
					_, err = h.Merge(ctx, k, int64(1), "sum")
				}
				return err
			}
		})
	case "queue":
		if l == degradable.Weak {
			return flushed(ctx, b, func(i int, f *remote.Flusher) (*remote.Queue, error) {
				return remote.NewQueue(b.caller(i, l), name(i%b.nobjects), f)
			}, func(i int, s *remote.Queue) func(*rand.Rand) error {
				return func(r *rand.Rand) error {
					if r.IntN(2) == 0 {
						return s.Enqueue(int64(i))
					}
					_, _, err := s.Dequeue(ctx)
					return err
				}
			})
		}
		return b.timed(ctx, func(i int) func(*rand.Rand) error {
			h := dso.NewHandle(b.caller(i, l), dso.TypeList, name(i%b.nobjects))
			return func(r *rand.Rand) error {
				if r.IntN(2) == 0 {
					_, err := h.Call(ctx, "add", int64(i))
					return err
				}
				_, err := h.Call(ctx, "removeAt", int64(0))
				if errors.Is(err, dso.ErrFailed) {
					err = nil // empty: a dequeue that found nothing
				}
				return err
			}
		})
	}
	return workload.Result{}, fmt.Errorf("degradable-bench: unknown DSO object type %q (want one of %v)", typ, dsoTypes)
}

// flushed runs b.timed with a weak segment per client goroutine, made by
// newSeg with the goroutine's own Flusher (flushing every b.flush), and
// closes the flushers after the run.
func flushed[S any](ctx context.Context, b *dsoBench, newSeg func(i int, f *remote.Flusher) (S, error), body func(i int, s S) func(*rand.Rand) error) (workload.Result, error) {
	fs := make([]*remote.Flusher, b.clients)
	segs := make([]S, b.clients)
	for i := range segs {
		var err error
		if fs[i], err = remote.NewFlusher(b.flush); err == nil {
			segs[i], err = newSeg(i, fs[i])
		}
		if err != nil {
			for _, f := range fs[:i+1] {
				if f != nil {
					_ = f.Close(ctx)
				}
			}
			return workload.Result{}, err
		}
	}
	res, err := b.timed(ctx, func(i int) func(*rand.Rand) error { return body(i, segs[i]) })
	for _, f := range fs {
		if ferr := f.Close(ctx); err == nil {
			err = ferr
		}
	}
	return res, err
}

// timed runs every client goroutine's body in a loop for the duration and
// measures the operations (every one's latency, for p50 and p99).
func (b *dsoBench) timed(ctx context.Context, body func(i int) func(*rand.Rand) error) (workload.Result, error) {
	return b.timedFor(ctx, b.duration, body)
}

// timedFor is timed for duration d.
func (b *dsoBench) timedFor(ctx context.Context, d time.Duration, body func(i int) func(*rand.Rand) error) (workload.Result, error) {
	bodies := make([]func(*rand.Rand) error, b.clients)
	for i := range bodies {
		bodies[i] = body(i)
	}
	samples := make([][]time.Duration, b.clients)
	errs := make([]error, b.clients)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range b.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(b.seed, uint64(i)))
			for ctx.Err() == nil {
				t := time.Now()
				if t.After(end) {
					return
				}
				if err := bodies[i](r); err != nil {
					errs[i] = err
					return
				}
				samples[i] = append(samples[i], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return workload.Result{}, err
	}
	all := slices.Concat(samples...)
	slices.Sort(all)
	res := workload.Result{Ops: len(all), Elapsed: elapsed, OpsPerSec: float64(len(all)) / elapsed.Seconds()}
	if len(all) > 0 {
		res.P50, res.P99 = all[len(all)/2], all[min(len(all)-1, len(all)*99/100)]
	}
	return res, nil
}

// retwis runs a Retwis mix on the DSO at level l, on fresh objects: a
// power-law follower graph of b.users users (Zipf popularity), then the
// 5/15/30/50 mix of add user (the users counter and the set of users),
// follow (an add to the followee's followers set), tweet (the posts
// counter, then the tweet's id posted to the author's timeline and to
// those of up to 8 of its followers) and timeline read (the newest
// b.timeline posts of the reader's timeline), for b.warmup unmeasured, then
// for b.duration measured. Followers sets are
// grow-only and there is no unfollow; timelines are remote.Timeline maps
// trimmed to their newest posts: the updates the weak level offers. Each
// connection is one writer with one Clock for post ids. At the weak level
// the goroutines of a connection share its segments (its local replica):
// per-connection counter segments, set segments flushed by a Flusher and
// set and timeline segments flushed and pulled in the background by a
// Syncer, a read pulling only a segment's first time; at the other
// levels every operation makes its calls synchronously. After the run the
// counters must count every add and tweet and every timeline must read
// the newest of the posts sent to it (checked, once the weak replicas
// have converged).
func (b *dsoBench) retwis(ctx context.Context, l degradable.Level) (workload.Result, retwisWork, error) {
	p := fmt.Sprintf("rt%d-%v/", b.run.Add(1), l)
	setup := b.caller(0, l)
	users := dso.NewCounter(setup, p+"users")
	posts := p + "posts"
	r := rand.New(rand.NewPCG(b.seed, 1<<62))
	pop := rand.NewZipf(r, 1.2, 1, uint64(b.users-1))
	if _, err := users.Increment(ctx, int64(b.users)); err != nil {
		return workload.Result{}, retwisWork{}, err
	}
	for u := range b.users {
		for range 1 + int(pop.Uint64())%4 {
			if v := int(pop.Uint64()); v != u {
				if _, err := dso.NewSet(setup, fmt.Sprint(p, "followers/", v)).Add(ctx, int64(u)); err != nil {
					return workload.Result{}, retwisWork{}, err
				}
			}
		}
	}
	conns := make([]*rtConn, len(b.dials))
	for k := range conns {
		c, err := newRTConn(b.dials[k].Persistent().At(l), k, b.timeline, b.flush, b.pull)
		if err != nil {
			return workload.Result{}, retwisWork{}, err
		}
		conns[k] = c
	}
	var adds, tweets, measured, fanout, reads, readLen atomic.Int64
	sent := &postLog{m: map[string][]int64{}}
	var next atomic.Int64
	next.Store(int64(b.users))
	body := func(i int) func(*rand.Rand) error {
		c := conns[i%len(conns)]
		nu, np := c.counter(p+"users"), c.counter(posts)
		var zipf *rand.Zipf
		return func(r *rand.Rand) error {
			if zipf == nil {
				zipf = rand.NewZipf(r, 1.2, 1, uint64(b.users-1))
			}
			u := int(zipf.Uint64())
			switch x := r.IntN(100); {
			case x < 5:
				id := next.Add(1)
				if err := nu.add(1); err != nil {
					return err
				}
				adds.Add(1)
				return c.set(p + "users").add(id)
			case x < 20:
				v := int(zipf.Uint64())
				return c.set(fmt.Sprint(p, "followers/", v)).add(int64(u))
			case x < 50:
				if err := np.add(1); err != nil {
					return err
				}
				tweets.Add(1)
				measured.Add(1)
				id := c.clock.Next()
				fs, err := c.set(fmt.Sprint(p, "followers/", u)).members()
				if err != nil {
					return err
				}
				targets := []int64{int64(u)}
				for _, f := range fs[:min(len(fs), 8)] {
					if fi, ok := f.(int64); ok {
						targets = append(targets, fi)
					}
				}
				for _, t := range targets {
					key := fmt.Sprint(p, "timeline/", t)
					if err := c.timelineOf(key).Post(ctx, id); err != nil {
						return err
					}
					sent.post(key, id, b.timeline)
				}
				fanout.Add(int64(len(targets)))
				return nil
			default:
				ids, err := c.timelineOf(fmt.Sprint(p, "timeline/", u)).Latest(ctx)
				if err != nil {
					return err
				}
				c.clock.Observe(ids)
				reads.Add(1)
				readLen.Add(int64(len(ids)))
				return nil
			}
		}
	}
	var res workload.Result
	var err error
	if b.warmup > 0 {
		_, err = b.timedFor(ctx, b.warmup, body)
		measured.Store(0)
		fanout.Store(0)
		reads.Store(0)
		readLen.Store(0)
	}
	if err == nil {
		res, err = b.timed(ctx, body)
	}
	for _, c := range conns {
		if cerr := c.close(ctx); err == nil {
			err = cerr
		}
	}
	work := retwisWork{tweets: measured.Load(), posts: fanout.Load(), reads: reads.Load(), readPosts: readLen.Load()}
	if err != nil {
		return res, work, err
	}
	// Every update counts: poll the owner until the weak replicas have
	// spread every flush.
	want := map[string]int64{p + "users": int64(b.users) + adds.Load(), posts: tweets.Load()}
	deadline := time.Now().Add(30 * time.Second)
	for _, k := range []string{p + "users", posts} {
		for {
			v, err := dso.NewCounter(setup, k).Tally(ctx)
			if err != nil {
				return res, work, err
			}
			if v == want[k] {
				break
			}
			if time.Now().After(deadline) {
				return res, work, fmt.Errorf("degradable-bench: retwis on the DSO at %v lost an update: %s counts %d, want %d", l, k, v, want[k])
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Every post counts: each timeline reads the newest of the posts sent
	// to it.
	for key, want := range sent.newest(b.timeline) {
		tl, err := remote.NewTimeline(setup, key, 0, b.timeline)
		if err != nil {
			return res, work, err
		}
		for {
			got, err := tl.Latest(ctx)
			if err != nil {
				return res, work, err
			}
			if slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				return res, work, fmt.Errorf("degradable-bench: retwis on the DSO at %v lost a post: %s reads %v, want %v", l, key, got, want)
			}
			time.Sleep(10 * time.Millisecond)
			if err := tl.Pull(ctx); err != nil {
				return res, work, err
			}
		}
	}
	return res, work, nil
}

// postLog is the posts a Retwis run sent to each timeline, the newest
// few (at least a timeline's capacity) of each.
type postLog struct {
	mu sync.Mutex
	m  map[string][]int64
}

// post logs id as sent to the timeline key of capacity k.
func (l *postLog) post(key string, id int64, k int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := append(l.m[key], id)
	if len(ids) > 4*k {
		slices.SortFunc(ids, func(a, b int64) int { return cmp.Compare(b, a) })
		ids = slices.Compact(ids) // a user who follows itself gets a post twice
		ids = slices.Delete(ids, min(k, len(ids)), len(ids))
	}
	l.m[key] = ids
}

// newest returns the newest k posts of each timeline, newest first.
func (l *postLog) newest(k int) map[string][]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]int64, len(l.m))
	for key, ids := range l.m {
		ids = slices.Clone(ids)
		slices.SortFunc(ids, func(a, b int64) int { return cmp.Compare(b, a) })
		ids = slices.Compact(ids)
		out[key] = ids[:min(k, len(ids))]
	}
	return out
}

// retwisWork is what a Retwis run did, to compare the levels' work: the
// tweets and the posts their fan-out made, the timeline reads and the
// posts they returned.
type retwisWork struct {
	tweets, posts, reads, readPosts int64
}

// rtConn is one connection's side of a Retwis run: its writer number and
// Clock, and its objects. At the weak level it is the connection's local
// replica (segments shared by the connection's goroutines, kept up to
// date by its Syncer); at the others it holds no state but the
// timelines' slots.
type rtConn struct {
	p           *client.Persistent
	writer, cap int
	ctx         context.Context
	clock       *remote.Clock
	flusher     *remote.Flusher
	syncer      *remote.Syncer
	flush       time.Duration

	mu        sync.Mutex
	sets      map[string]*remote.Set
	timelines map[string]*remote.Timeline
	counters  map[string]counter
}

// counter is a Retwis counter: a weak segment or a linearizable or
// sequential object.
type counter interface {
	add(int64) error
	close() error
}

// newRTConn returns connection writer's side of a run whose callers are p.
func newRTConn(p *client.Persistent, writer, timeline int, flush, pull time.Duration) (*rtConn, error) {
	clock, err := remote.NewClock(writer)
	if err != nil {
		return nil, err
	}
	c := &rtConn{p: p, writer: writer, cap: timeline, ctx: context.Background(), clock: clock, flush: flush,
		sets: map[string]*remote.Set{}, timelines: map[string]*remote.Timeline{}, counters: map[string]counter{}}
	if p.Level() == degradable.Weak {
		if c.flusher, err = remote.NewFlusher(flush); err != nil {
			return nil, err
		}
		if c.syncer, err = remote.NewSyncer(flush, pull); err != nil {
			c.flusher.Close(c.ctx)
			return nil, err
		}
	}
	return c, nil
}

// counter returns the connection's counter key.
func (c *rtConn) counter(key string) counter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if x := c.counters[key]; x != nil {
		return x
	}
	var x counter = rpcCounter{dso.NewCounter(c.p, key), c.ctx}
	if c.syncer != nil {
		s, err := remote.NewCounter(c.p, key, remote.FlushEvery(c.flush))
		if err != nil {
			panic(err) // the caller is at the weak level
		}
		x = segCounter{s, c.ctx}
	}
	c.counters[key] = x
	return x
}

// set returns the connection's set key.
func (c *rtConn) set(key string) setOps {
	if c.syncer == nil {
		return rpcSet{dso.NewSet(c.p, key), c.ctx}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sets[key]
	if s == nil {
		var err error
		if s, err = remote.NewSet(c.p, key, c.flusher, remote.PullEvery(math.MaxInt)); err != nil {
			panic(err) // the caller is at the weak level
		}
		if err := c.syncer.Watch(s); err != nil {
			panic(err) // not closed while the run goes on
		}
		c.sets[key] = s
	}
	return segSet{s, c.ctx}
}

// timelineOf returns the connection's segment of the timeline key.
func (c *rtConn) timelineOf(key string) *remote.Timeline {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.timelines[key]
	if t == nil {
		var err error
		if t, err = remote.NewTimeline(c.p, key, c.writer, c.cap); err != nil {
			panic(err) // the writer and capacity were checked
		}
		if c.syncer != nil {
			if err := c.syncer.Watch(t); err != nil {
				panic(err) // not closed while the run goes on
			}
		}
		c.timelines[key] = t
	}
	return t
}

// close flushes and stops the connection's segments.
func (c *rtConn) close(ctx context.Context) error {
	var errs []error
	if c.syncer != nil {
		errs = append(errs, c.syncer.Close(ctx), c.flusher.Close(ctx))
	}
	for _, x := range c.counters {
		errs = append(errs, x.close())
	}
	return errors.Join(errs...)
}

// setOps are the set operations of Retwis.
type setOps interface {
	add(e int64) error
	members() ([]any, error)
}

// rpcSet calls the set for every operation.
type rpcSet struct {
	h   dso.Set
	ctx context.Context
}

func (s rpcSet) add(e int64) error {
	_, err := s.h.Add(s.ctx, e)
	return err
}
func (s rpcSet) members() ([]any, error) { return s.h.Members(s.ctx) }

// segSet works on a weak set's segment.
type segSet struct {
	s   *remote.Set
	ctx context.Context
}

func (s segSet) add(e int64) error       { return s.s.Add(e) }
func (s segSet) members() ([]any, error) { return s.s.Members(s.ctx) }

// rpcCounter adds through one call per addition.
type rpcCounter struct {
	h   dso.Counter
	ctx context.Context
}

func (c rpcCounter) add(d int64) error {
	_, err := c.h.Increment(c.ctx, d)
	return err
}
func (rpcCounter) close() error { return nil }

// segCounter adds through a weak segment.
type segCounter struct {
	s   *remote.Counter
	ctx context.Context
}

func (c segCounter) add(d int64) error { return c.s.Add(d) }
func (c segCounter) close() error      { return c.s.Close(c.ctx) }

// dsoLevels is levels for the DSO table: a (type, level) that is not
// offered gets a zero row instead of an error.
func dsoLevels(repeat int, run func(degradable.Level) (workload.Result, error)) ([]workload.Result, error) {
	return levels(repeat, func(l degradable.Level) (workload.Result, error) {
		res, err := run(l)
		if errors.Is(err, errNotOffered) {
			return workload.Result{}, nil
		}
		return res, err
	})
}
