// Package claus is the Santa Claus problem (Trono 1994) of deliverable
// Table 3, in three variants that run one algorithm on three substrates:
//
//   - Goroutines: Santa, the reindeer and the elves are goroutines, and
//     the semaphores and counters are Go channels and sync/atomic.
//   - DSO: the same goroutines, but the semaphores and counters are DSO
//     objects (Semaphore, AtomicLong) on a cluster.
//   - Cloud: every participant is a cloud thread (an executor invocation
//     of "santa.santa", "santa.reindeer" or "santa.elf") sharing the DSO
//     objects.
//
// Santa sleeps until either all Reindeer reindeer are back from vacation
// (he then harnesses them to the sleigh and delivers toys) or Group of the
// Elves elves need help; the reindeer come first. The solution is
// Downey's (The Little Book of Semaphores, 5.5), with counters that are
// atomic objects instead of integers behind a mutex: the last reindeer
// back, or the Group-th elf in line, wakes Santa through santaSem; the
// reindeer wait on reindeerSem to be harnessed, the elves on elfSem to be
// helped, and elfTex lets one group of elves at a time form. Two
// additions close the races of the book's version, where a fast reindeer
// or elf back in line takes a permit meant for one of the previous group:
// the reindeer leave together once all are harnessed (sleighDone), and
// the last elf of a group helped, not Santa, releases elfTex. And the
// last reindeer says why it wakes Santa (sleighReady) before it does,
// so that Santa never takes a group of elves still forming, whose
// Group-th elf has counted itself but not yet woken him, for the reason
// he woke.
//
// The book's problem never ends; a run here does, after Deliveries
// deliveries and Requests requests of every elf. Once fewer than Group
// elves still have requests, they come as one smaller group (elves
// retire, counted in "retired", while their group holds elfTex).
//
// Santa checks the counts every time he wakes: a wake-up that finds
// neither Reindeer reindeer nor Group elves (or all the elves still
// asking, when they are fewer) fails the run, as does a
// count above its bound; each participant reports how often it was
// served. Check verifies the whole run.
//
// The cloud variant's participants block in DSO calls and must all run
// at once, so the executor needs a concurrency of at least
// 1 + Reindeer + Elves; they run with one attempt (a retried participant
// would count itself twice).
package claus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/executor"
)

// Config is one run of the problem.
type Config struct {
	// Run names the run's DSO objects (Run+"/santaSem", ...).
	Run string
	// Reindeer that must all be back to wake Santa (9).
	Reindeer int
	// Elves in all (10), of which Group (3) wake Santa.
	Elves, Group int
	// Deliveries: every reindeer comes back this many times.
	Deliveries int
	// Requests: every elf asks for help this many times;
	// Once fewer than Group elves have requests left, a smaller group
	// of all of them wakes Santa, or the run could not end.
	Requests int
	// Work bounds the random time spent on vacation, making toys,
	// delivering and helping (0: none).
	Work time.Duration
	// Seed of the random durations.
	Seed uint64
}

// Classic returns the problem's parameters (9 reindeer, 10 elves in
// groups of 3) for a run of deliveries deliveries and 3×deliveries
// requests per elf.
func Classic(run string, deliveries int, work time.Duration) Config {
	return Config{Run: run, Reindeer: 9, Elves: 10, Group: 3, Deliveries: deliveries, Requests: 3 * deliveries, Work: work, Seed: 1}
}

// Validate reports a Config that cannot finish.
func (c Config) Validate() error {
	if c.Reindeer < 1 || c.Elves < 1 || c.Group < 1 || c.Group > c.Elves || c.Deliveries < 0 || c.Requests < 0 {
		return fmt.Errorf("claus: bad config %+v", c)
	}
	return nil
}

// Asks is the number of requests of all elves together.
func (c Config) Asks() int { return c.Elves * c.Requests }

// Sem is a counting semaphore.
type Sem interface {
	Acquire(ctx context.Context, n int) error
	Release(ctx context.Context, n int) error
}

// Long is an atomic counter.
type Long interface {
	AddAndGet(ctx context.Context, d int64) (int64, error)
	Get(ctx context.Context) (int64, error)
	Set(ctx context.Context, v int64) error
}

// Objects makes the run's shared objects; one name gives one object.
type Objects interface {
	Semaphore(name string, permits int) Sem
	Long(name string) Long
}

// DSO returns the objects of run in the DSO reached through c.
func DSO(c dso.Caller, run string) Objects { return dsoObjects{c, run} }

type dsoObjects struct {
	c   dso.Caller
	run string
}

func (o dsoObjects) Semaphore(name string, permits int) Sem {
	return dso.NewSemaphore(o.c, o.run+"/"+name, permits)
}

func (o dsoObjects) Long(name string) Long { return dso.NewAtomicLong(o.c, o.run+"/"+name) }

// Local returns in-process objects: channels for the semaphores and
// sync/atomic for the counters.
func Local() Objects {
	return &local{sems: map[string]chan struct{}{}, longs: map[string]*atomicLong{}}
}

type local struct {
	mu    sync.Mutex
	sems  map[string]chan struct{}
	longs map[string]*atomicLong
}

// maxPermits bounds the permits a local semaphore holds.
const maxPermits = 1 << 16

func (l *local) Semaphore(name string, permits int) Sem {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := l.sems[name]
	if ch == nil {
		ch = make(chan struct{}, maxPermits)
		for range permits {
			ch <- struct{}{}
		}
		l.sems[name] = ch
	}
	return chanSem(ch)
}

func (l *local) Long(name string) Long {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.longs[name]
	if a == nil {
		a = new(atomicLong)
		l.longs[name] = a
	}
	return a
}

// chanSem is a semaphore whose permits are the tokens in a channel.
type chanSem chan struct{}

func (s chanSem) Acquire(ctx context.Context, n int) error {
	for range n {
		select {
		case <-s:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s chanSem) Release(ctx context.Context, n int) error {
	for range n {
		select {
		case s <- struct{}{}:
		default:
			return errors.New("claus: semaphore over its capacity")
		}
	}
	return nil
}

type atomicLong struct{ atomic.Int64 }

func (a *atomicLong) AddAndGet(_ context.Context, d int64) (int64, error) { return a.Add(d), nil }
func (a *atomicLong) Get(context.Context) (int64, error)                  { return a.Load(), nil }
func (a *atomicLong) Set(_ context.Context, v int64) error                { a.Store(v); return nil }

// shared is the run's objects, by role.
type shared struct {
	santaSem, reindeerSem, sleighDone, elfSem, elfTex  Sem
	reindeer, harnessed, elves, helped, retired, group Long
	sleighReady                                        Long
}

func open(o Objects) shared {
	return shared{
		santaSem:    o.Semaphore("santaSem", 0),
		reindeerSem: o.Semaphore("reindeerSem", 0),
		elfSem:      o.Semaphore("elfSem", 0),
		elfTex:      o.Semaphore("elfTex", 1),
		sleighDone:  o.Semaphore("sleighDone", 0),
		reindeer:    o.Long("reindeer"),
		harnessed:   o.Long("harnessed"),
		elves:       o.Long("elves"),
		helped:      o.Long("helped"),
		retired:     o.Long("retired"),
		sleighReady: o.Long("sleighReady"),
		group:       o.Long("group"),
	}
}

// work sleeps a random time below c.Work.
func work(ctx context.Context, c Config, rng *rand.Rand) error {
	if c.Work <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(rng.Int64N(int64(c.Work))))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wake is one of Santa's wake-ups: what he did and the count he found.
type Wake struct {
	// Deliver is true for a delivery, false for helping elves.
	Deliver bool
	// Seen is the number of reindeer (delivery) or elves (help) waiting.
	Seen int64
	// Left is the number of elves with requests left (help only).
	Left int64
}

// Report is what Santa reports.
type Report struct {
	Wakes      []Wake
	Deliveries int
	Helps      int
	// Served counts the elves helped, over all helps.
	Served int
}

// Santa sleeps until Reindeer reindeer or Group elves wake him, as often
// as there are deliveries and helps in c.
func Santa(ctx context.Context, o Objects, c Config) (Report, error) {
	s := open(o)
	rng := rand.New(rand.NewPCG(c.Seed, 0))
	var r Report
	for r.Deliveries < c.Deliveries || r.Served < c.Asks() {
		if err := s.santaSem.Acquire(ctx, 1); err != nil {
			return r, err
		}
		// Read why first: once sleighReady is set, the count stays at
		// Reindeer until Santa harnesses them.
		ready, err := s.sleighReady.Get(ctx)
		if err != nil {
			return r, err
		}
		n, err := s.reindeer.Get(ctx)
		if err != nil {
			return r, err
		}
		if n > int64(c.Reindeer) {
			return r, fmt.Errorf("santa: %d reindeer waiting, more than the %d there are", n, c.Reindeer)
		}
		if ready > 0 { // the reindeer come first
			if n != int64(c.Reindeer) {
				return r, fmt.Errorf("santa: called to the sleigh with %d reindeer back", n)
			}
			if _, err := s.sleighReady.AddAndGet(ctx, -1); err != nil {
				return r, err
			}
			r.Wakes = append(r.Wakes, Wake{Deliver: true, Seen: n})
			if err := work(ctx, c, rng); err != nil { // prepare the sleigh and deliver
				return r, err
			}
			if _, err := s.reindeer.AddAndGet(ctx, -n); err != nil {
				return r, err
			}
			if err := s.reindeerSem.Release(ctx, c.Reindeer); err != nil {
				return r, err
			}
			r.Deliveries++
			continue
		}
		e, err := s.elves.Get(ctx)
		if err != nil {
			return r, err
		}
		retired, err := s.retired.Get(ctx)
		if err != nil {
			return r, err
		}
		need := min(int64(c.Group), int64(c.Elves)-retired)
		if e == 0 || e != need {
			return r, fmt.Errorf("santa: woken with %d reindeer and %d elves waiting (%d still asking)", n, e, int64(c.Elves)-retired)
		}
		r.Wakes = append(r.Wakes, Wake{Seen: e, Left: int64(c.Elves) - retired})
		if err := work(ctx, c, rng); err != nil { // help the elves
			return r, err
		}
		// This group holds elfTex until all of it is helped: no elf
		// joins the line meanwhile.
		if err := s.elves.Set(ctx, 0); err != nil {
			return r, err
		}
		if err := s.group.Set(ctx, e); err != nil {
			return r, err
		}
		if err := s.elfSem.Release(ctx, int(e)); err != nil {
			return r, err
		}
		r.Helps++
		r.Served += int(e)
	}
	return r, nil
}

// Reindeer goes on vacation and comes back Deliveries times, and returns
// how often it was harnessed.
func Reindeer(ctx context.Context, o Objects, c Config, id int) (int, error) {
	s := open(o)
	rng := rand.New(rand.NewPCG(c.Seed, uint64(1+id)))
	served := 0
	for range c.Deliveries {
		if err := work(ctx, c, rng); err != nil { // vacation
			return served, err
		}
		n, err := s.reindeer.AddAndGet(ctx, 1)
		if err != nil {
			return served, err
		}
		if n == int64(c.Reindeer) { // the last one back wakes Santa
			// Say why first, so that Santa never takes a group of
			// elves still forming for the reason he woke.
			if _, err := s.sleighReady.AddAndGet(ctx, 1); err != nil {
				return served, err
			}
			if err := s.santaSem.Release(ctx, 1); err != nil {
				return served, err
			}
		}
		if err := s.reindeerSem.Acquire(ctx, 1); err != nil { // get harnessed
			return served, err
		}
		served++
		// Nobody leaves on vacation before all are harnessed: a reindeer
		// back early would take the permit of one still to harness.
		h, err := s.harnessed.AddAndGet(ctx, 1)
		if err != nil {
			return served, err
		}
		if h == int64(c.Reindeer) {
			if err := s.harnessed.Set(ctx, 0); err != nil {
				return served, err
			}
			if err := s.sleighDone.Release(ctx, c.Reindeer); err != nil {
				return served, err
			}
		}
		if err := s.sleighDone.Acquire(ctx, 1); err != nil {
			return served, err
		}
	}
	return served, nil
}

// Elf makes toys and asks for help Requests times, and returns how often
// it was helped.
func Elf(ctx context.Context, o Objects, c Config, id int) (int, error) {
	s := open(o)
	rng := rand.New(rand.NewPCG(c.Seed, uint64(1<<32+id)))
	served := 0
	for range c.Requests {
		if err := work(ctx, c, rng); err != nil { // make toys
			return served, err
		}
		if err := s.elfTex.Acquire(ctx, 1); err != nil {
			return served, err
		}
		n, err := s.elves.AddAndGet(ctx, 1)
		if err != nil {
			return served, err
		}
		retired, err := s.retired.Get(ctx)
		if err != nil {
			return served, err
		}
		if n == min(int64(c.Group), int64(c.Elves)-retired) {
			// The group is complete: wake Santa, and keep elfTex until
			// he has helped it.
			err = s.santaSem.Release(ctx, 1)
		} else {
			err = s.elfTex.Release(ctx, 1)
		}
		if err != nil {
			return served, err
		}
		if err := s.elfSem.Acquire(ctx, 1); err != nil { // get help
			return served, err
		}
		served++
		if served == c.Requests {
			// Retire while the group holds elfTex: the line is empty,
			// and the next elves see the smaller group size.
			if _, err := s.retired.AddAndGet(ctx, 1); err != nil {
				return served, err
			}
		}
		// The last of the group helped lets the next group form, so
		// Santa's permits go to this group only.
		h, err := s.helped.AddAndGet(ctx, 1)
		if err != nil {
			return served, err
		}
		g, err := s.group.Get(ctx)
		if err != nil {
			return served, err
		}
		if h == g {
			if err := s.helped.Set(ctx, 0); err != nil {
				return served, err
			}
			if err := s.elfTex.Release(ctx, 1); err != nil {
				return served, err
			}
		}
	}
	return served, nil
}

// Result is a whole run: Santa's report and how often each reindeer and
// elf was served.
type Result struct {
	Santa    Report
	Reindeer []int
	Elves    []int
}

// Check verifies the invariants of a finished run: Santa woke only to
// find exactly Reindeer reindeer or Group elves waiting, made every
// delivery and help, and every reindeer and elf was served every time.
func Check(c Config, r Result) error {
	served := 0
	for i, w := range r.Santa.Wakes {
		if w.Deliver && w.Seen != int64(c.Reindeer) ||
			!w.Deliver && (w.Seen != min(int64(c.Group), w.Left) || w.Seen < 1) {
			return fmt.Errorf("wake-up %d: %+v", i, w)
		}
		if !w.Deliver {
			served += int(w.Seen)
		}
	}
	if len(r.Santa.Wakes) != r.Santa.Deliveries+r.Santa.Helps || r.Santa.Deliveries != c.Deliveries || served != c.Asks() || r.Santa.Served != served {
		return fmt.Errorf("santa: %d wake-ups, %d deliveries, %d elves helped; want %d and %d", len(r.Santa.Wakes), r.Santa.Deliveries, served, c.Deliveries, c.Asks())
	}
	if len(r.Reindeer) != c.Reindeer || len(r.Elves) != c.Elves {
		return fmt.Errorf("%d reindeer and %d elves reported, want %d and %d", len(r.Reindeer), len(r.Elves), c.Reindeer, c.Elves)
	}
	for i, n := range r.Reindeer {
		if n != c.Deliveries {
			return fmt.Errorf("reindeer %d harnessed %d times, want %d", i, n, c.Deliveries)
		}
	}
	for i, n := range r.Elves {
		if n != c.Requests {
			return fmt.Errorf("elf %d helped %d times, want %d", i, n, c.Requests)
		}
	}
	return nil
}

// RunGoroutines runs every participant as a goroutine on the objects o
// (Local() for the goroutine variant, DSO(...) for the DSO variant).
func RunGoroutines(ctx context.Context, o Objects, c Config) (Result, error) {
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	res := Result{Reindeer: make([]int, c.Reindeer), Elves: make([]int, c.Elves)}
	var wg sync.WaitGroup
	errs := make([]error, 1+c.Reindeer+c.Elves)
	fail := func(i int, err error) {
		if err != nil {
			errs[i] = err
			cancel() // the others would wait forever
		}
	}
	wg.Go(func() {
		var err error
		res.Santa, err = Santa(ctx, o, c)
		fail(0, err)
	})
	for i := range c.Reindeer {
		wg.Go(func() {
			var err error
			res.Reindeer[i], err = Reindeer(ctx, o, c, i)
			fail(1+i, err)
		})
	}
	for i := range c.Elves {
		wg.Go(func() {
			var err error
			res.Elves[i], err = Elf(ctx, o, c, i)
			fail(1+c.Reindeer+i, err)
		})
	}
	wg.Wait()
	return res, firstCause(errs)
}

// firstCause returns the first error that is not a cancellation caused by
// another, or the first error.
func firstCause(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) && !errors.Is(err, executor.ErrCanceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// Member is the argument of a reindeer's or an elf's cloud thread.
type Member struct {
	Config Config
	ID     int
}

var (
	// SantaFn is Santa as a cloud thread.
	SantaFn = executor.Register("santa.santa", func(ctx context.Context, c Config) (Report, error) {
		cl, err := executor.DSO(ctx)
		if err != nil {
			return Report{}, err
		}
		return Santa(ctx, DSO(cl, c.Run), c)
	})
	// ReindeerFn is a reindeer as a cloud thread.
	ReindeerFn = executor.Register("santa.reindeer", func(ctx context.Context, m Member) (int, error) {
		cl, err := executor.DSO(ctx)
		if err != nil {
			return 0, err
		}
		return Reindeer(ctx, DSO(cl, m.Config.Run), m.Config, m.ID)
	})
	// ElfFn is an elf as a cloud thread.
	ElfFn = executor.Register("santa.elf", func(ctx context.Context, m Member) (int, error) {
		cl, err := executor.DSO(ctx)
		if err != nil {
			return 0, err
		}
		return Elf(ctx, DSO(cl, m.Config.Run), m.Config, m.ID)
	})
)

// RunCloud runs every participant as a cloud thread on the executor of
// ctx, sharing the DSO objects of c.Run. If one fails, the others are
// cancelled.
func RunCloud(ctx context.Context, c Config) (Result, error) {
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	once := executor.WithRetry(executor.RetryPolicy{Attempts: 1})
	santa := executor.Go(ctx, SantaFn, c, once)
	rs := make([]*executor.Future[int], c.Reindeer)
	for i := range rs {
		rs[i] = executor.Go(ctx, ReindeerFn, Member{c, i}, once)
	}
	es := make([]*executor.Future[int], c.Elves)
	for i := range es {
		es[i] = executor.Go(ctx, ElfFn, Member{c, i}, once)
	}
	// Cancel everyone as soon as one fails: the others would wait
	// forever in their semaphores.
	all := append(append([]*executor.Future[int]{}, rs...), es...)
	var wg sync.WaitGroup
	watch := func(done <-chan struct{}, err func() error) {
		wg.Go(func() {
			select {
			case <-done:
				if err() != nil {
					cancel()
				}
			case <-ctx.Done():
			}
		})
	}
	watch(santa.Done(), santa.Join)
	for _, f := range all {
		watch(f.Done(), f.Join)
	}
	res := Result{Reindeer: make([]int, c.Reindeer), Elves: make([]int, c.Elves)}
	errs := make([]error, 1+len(all))
	res.Santa, errs[0] = santa.Get()
	for i, f := range rs {
		res.Reindeer[i], errs[1+i] = f.Get()
	}
	for i, f := range es {
		res.Elves[i], errs[1+c.Reindeer+i] = f.Get()
	}
	cancel()
	wg.Wait()
	return res, firstCause(errs)
}
