package workload

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/blossom-dso/blossom/degradable"
)

// RetwisConfig configures a Retwis run.
type RetwisConfig struct {
	// Level is the level of every object.
	Level degradable.Level
	// Users is the number of users at the start; Clients the number of
	// client goroutines (each with its own replica of every object); Ops
	// the number of operations, split over the clients.
	Users, Clients, Ops int
	// TimelineCap is the length a timeline is trimmed to (default 50).
	TimelineCap int
	// Seed seeds the follower graph and every client's choices.
	Seed uint64
}

// The operation mix of Retwis, in percent, as the degradable objects'
// prototype used: add a user, follow (or unfollow, if already followed), post
// a tweet, read a timeline with its owner's profile.
const (
	mixAdd    = 5
	mixFollow = 15
	mixTweet  = 30
	mixRead   = 50
)

// RetwisResult is a Retwis run's measurements and what it did.
type RetwisResult struct {
	Result
	// Adds, Follows, Unfollows, Tweets, Reads count the operations by kind.
	Adds, Follows, Unfollows, Tweets, Reads int64
	// UsersCounted and PostsCounted are the user and post counters read at
	// client 0 after every client synced: Users+Adds and Tweets unless an
	// update was lost.
	UsersCounted, PostsCounted int64
}

// user is one user's objects, created on first use.
type user struct {
	once      sync.Once
	followers []degradable.Set[int]
	following []degradable.Set[int]
	timeline  []degradable.Queue[uint64]
	profile   []degradable.Register[string]
}

// retwis is the shared state of a run.
type retwis struct {
	cfg    RetwisConfig
	users  []user
	known  atomic.Int64 // user ids below it exist
	nusers []degradable.Counter
	posts  []degradable.Counter
	err    atomic.Pointer[error]
}

// get returns user u's objects, creating them on first use.
func (w *retwis) get(u int) *user {
	x := &w.users[u]
	x.once.Do(func() {
		n, l := w.cfg.Clients, w.cfg.Level
		var errs [4]error
		x.followers, errs[0] = degradable.NewSet[int](l, n)
		x.following, errs[1] = degradable.NewSet[int](l, n)
		x.timeline, errs[2] = degradable.NewQueue[uint64](l, n)
		x.profile, errs[3] = degradable.NewRegister[string](l, n)
		for _, err := range errs {
			if err != nil {
				w.err.CompareAndSwap(nil, &err)
			}
		}
	})
	return x
}

// Retwis runs the Retwis workload: a follower graph whose in-degrees
// follow a power law (each initial user follows 1 + Zipf users, chosen by a
// Zipf popularity over user ids), then the 5/15/30/50 mix of add user,
// follow/unfollow, tweet (fan-out on write: the tweet id is enqueued on the
// author's and every follower's timeline, trimmed to TimelineCap) and
// timeline read (the timeline's elements and the owner's profile). Every
// object has the configured level. After the run every client syncs and
// the counters are read.
func Retwis(cfg RetwisConfig) (RetwisResult, error) {
	if cfg.Users < 2 || cfg.Clients < 1 || cfg.Ops < cfg.Clients || cfg.Clients > degradable.MaxReplicas {
		return RetwisResult{}, fmt.Errorf("workload: retwis with %d users, %d clients, %d operations: need 2 users, 1 to %d clients, at least one operation each", cfg.Users, cfg.Clients, cfg.Ops, degradable.MaxReplicas)
	}
	if cfg.TimelineCap == 0 {
		cfg.TimelineCap = 50
	}
	w := &retwis{cfg: cfg, users: make([]user, cfg.Users+cfg.Ops/5+cfg.Clients)}
	var err error
	if w.nusers, err = degradable.NewCounter(cfg.Level, cfg.Clients); err != nil {
		return RetwisResult{}, err
	}
	if w.posts, err = degradable.NewCounter(cfg.Level, cfg.Clients); err != nil {
		return RetwisResult{}, err
	}
	// The initial graph, built by client 0's handles, then published.
	r := rand.New(rand.NewPCG(cfg.Seed, 1<<62))
	pop := rand.NewZipf(r, 1.2, 1, uint64(cfg.Users-1))
	for u := range cfg.Users {
		x := w.get(u)
		x.profile[0].Write(fmt.Sprintf("user %d", u))
		if err := w.nusers[0].Add(1); err != nil {
			return RetwisResult{}, err
		}
		for range 1 + int(pop.Uint64())%16 {
			if v := int(pop.Uint64()); v != u {
				x.following[0].Add(v)
				w.get(v).followers[0].Add(u)
			}
		}
	}
	w.known.Store(int64(cfg.Users))
	for u := range cfg.Users {
		x := w.get(u)
		x.followers[0].Sync()
		x.following[0].Sync()
		x.profile[0].Sync()
	}
	w.nusers[0].Sync()
	if e := w.err.Load(); e != nil {
		return RetwisResult{}, *e
	}

	var adds, follows, unfollows, tweets, reads atomic.Int64
	nextNew := atomic.Int64{}
	nextNew.Store(int64(cfg.Users))
	res := run(cfg.Clients, cfg.Ops, cfg.Seed, func(i int) func(r *rand.Rand) {
		var zipf *rand.Zipf
		var tweetSeq uint64
		return func(r *rand.Rand) {
			if zipf == nil {
				zipf = rand.NewZipf(r, 1.2, 1, uint64(cfg.Users-1))
			}
			known := int(w.known.Load())
			u := r.IntN(known)
			p := r.IntN(100)
			id := 0
			if p < mixAdd {
				if id = int(nextNew.Add(1) - 1); id >= len(w.users) {
					p = 100 // no room left: a read instead
				}
			}
			switch {
			case p < mixAdd:
				x := w.get(id)
				x.profile[i].Write(fmt.Sprintf("user %d", id))
				if err := w.nusers[i].Add(1); err != nil {
					panic(err)
				}
				for w.known.Load() <= int64(id) && !w.known.CompareAndSwap(int64(id), int64(id)+1) {
					runtime.Gosched() // ids are published in order: wait for the earlier ones
				}
				adds.Add(1)
			case p < mixAdd+mixFollow:
				v := int(zipf.Uint64()) % known
				if v == u {
					v = (v + 1) % known
				}
				x, y := w.get(u), w.get(v)
				if x.following[i].Contains(v) {
					x.following[i].Remove(v)
					y.followers[i].Remove(u)
					unfollows.Add(1)
				} else {
					x.following[i].Add(v)
					y.followers[i].Add(u)
					follows.Add(1)
				}
			case p < mixAdd+mixFollow+mixTweet:
				tweetSeq++
				id := uint64(i)<<40 | tweetSeq
				if err := w.posts[i].Add(1); err != nil {
					panic(err)
				}
				x := w.get(u)
				w.post(i, u, id)
				for _, f := range x.followers[i].Elements() {
					w.post(i, f, id)
				}
				tweets.Add(1)
			default:
				x := w.get(u)
				_ = x.timeline[i].Elements()
				_ = x.profile[i].Read()
				reads.Add(1)
			}
		}
	})
	if e := w.err.Load(); e != nil {
		return RetwisResult{}, *e
	}
	for i := range cfg.Clients {
		w.nusers[i].Sync()
		w.posts[i].Sync()
	}
	w.nusers[0].Sync()
	w.posts[0].Sync()
	return RetwisResult{
		Result: res, Adds: adds.Load(), Follows: follows.Load(), Unfollows: unfollows.Load(),
		Tweets: tweets.Load(), Reads: reads.Load(),
		UsersCounted: w.nusers[0].Value(), PostsCounted: w.posts[0].Value(),
	}, nil
}

// post enqueues tweet id on user u's timeline through client i's replica
// and trims the timeline to its cap.
func (w *retwis) post(i, u int, id uint64) {
	q := w.get(u).timeline[i]
	q.Enqueue(id)
	if q.Len() > w.cfg.TimelineCap {
		_, _ = q.Dequeue()
	}
}
