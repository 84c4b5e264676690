// Package barrier holds the cyclic barriers that Figure 6c of the CRUCIAL
// deliverable (D4.3) compares, each as a Party: one participant with its
// own connection, crossing the barrier again and again. The barriers are
// the DSO's CyclicBarrier (DSO), a barrier on Redis's BLPOP as the
// deliverable built it (Redis) and ZooKeeper's double-barrier recipe
// (ZooKeeper). Cross measures the crossing time as the deliverable defines
// it: the time to cross many barriers back to back, divided by their number;
// Check checks the barrier's one safety property over repeated rounds: no
// party leaves a round before every party has arrived at it. The servers
// the barriers run on are started by StartRedis, StartZooKeeper and
// StartBlossom, as child processes on loopback.
package barrier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Party is one participant of a cyclic barrier, holding its own connection.
// A Party is used by one goroutine at a time.
type Party interface {
	// Await returns once every party of the barrier has arrived at the
	// current round (counting its own calls of Await), or with an error
	// (ctx's among them).
	Await(ctx context.Context) error
	// Close releases the party's connection.
	Close() error
}

// Join returns party i (from 0) of a barrier of a fixed number of parties.
type Join func(ctx context.Context, i int) (Party, error)

// joinAll joins parties parties, at most 100 at a time, and returns them;
// on an error it closes those it joined.
func joinAll(ctx context.Context, parties int, join Join) ([]Party, error) {
	ps := make([]Party, parties)
	errs := make([]error, parties)
	sem := make(chan struct{}, 100)
	var wg sync.WaitGroup
	for i := range ps {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ps[i], errs[i] = join(ctx, i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		closeAll(ps)
		return nil, err
	}
	return ps, nil
}

func closeAll(ps []Party) {
	for _, p := range ps {
		if p != nil {
			p.Close()
		}
	}
}

// Result is what Cross measured.
type Result struct {
	// Crossing is the mean time to cross one barrier: from the moment the
	// first party left the warm-up barrier to the moment the last left the
	// last barrier, divided by the number of timed barriers.
	Crossing time.Duration
	// Join is the time taken to join every party (connections, sessions).
	Join time.Duration
}

// Cross joins parties parties and has each, in its own goroutine, cross one
// warm-up barrier and then rounds barriers back to back, and returns the
// mean crossing time. The warm-up barrier, crossed once every party has
// joined, starts the clock together for all.
func Cross(ctx context.Context, parties, rounds int, join Join) (Result, error) {
	if parties < 1 || rounds < 1 {
		return Result{}, fmt.Errorf("barrier: Cross: %d parties, %d rounds: want at least 1 each", parties, rounds)
	}
	t0 := time.Now()
	ps, err := joinAll(ctx, parties, join)
	if err != nil {
		return Result{}, err
	}
	defer closeAll(ps)
	res := Result{Join: time.Since(t0)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		start    atomic.Int64 // UnixNano of the first leave of the warm-up barrier
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r <= rounds; r++ {
				if err := p.Await(ctx); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("barrier: party %d, round %d: %w", i, r, err); cancel() })
					return
				}
				if r == 0 {
					start.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	if firstErr != nil {
		return res, firstErr
	}
	res.Crossing = end.Sub(time.Unix(0, start.Load())) / time.Duration(rounds)
	return res, nil
}

// CheckOptions are the options of Check.
type CheckOptions struct {
	// Straggler makes party 0 arrive at each round only after some other
	// party has left it. A correct barrier never lets that happen, so with
	// a correct barrier the check hangs until ctx ends; it exists to show
	// that Check catches a barrier releasing too early (one that counts
	// fewer parties than take part) in every run, whatever the timing.
	Straggler bool
	// Late, if positive, makes one party per round (party r mod parties in
	// round r) arrive last: only once every other party has counted itself
	// in, and Late after that. A barrier that releases before its last
	// party arrives has then had Late to do so, and is caught unless its
	// release takes longer; a correct barrier only crosses more slowly.
	Late time.Duration
}

// ErrEarlyLeave is wrapped by Check's error when a party left a round
// before every party had arrived at it.
var ErrEarlyLeave = errors.New("a party left a barrier before every party arrived")

// Check joins parties parties and has each, in its own goroutine, cross
// rounds barriers, and checks that no party returns from a round's Await
// before every party has started that round's Await: each party counts
// itself in the round's arrivals before calling Await and, once it
// returns, requires the count to be complete. It returns the first
// violation (wrapping ErrEarlyLeave) or error; ctx bounds a barrier that
// never releases.
func Check(ctx context.Context, parties, rounds int, join Join, o CheckOptions) error {
	if parties < 2 || rounds < 1 {
		return fmt.Errorf("barrier: Check: %d parties, %d rounds: want at least 2 and 1", parties, rounds)
	}
	ps, err := joinAll(ctx, parties, join)
	if err != nil {
		return err
	}
	defer closeAll(ps)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	arrived := make([]atomic.Int64, rounds)
	left := make([]chan struct{}, rounds) // closed when a party other than 0 leaves round r
	leftOnce := make([]sync.Once, rounds)
	for r := range left {
		left[r] = make(chan struct{})
	}
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				if o.Straggler && i == 0 {
					select {
					case <-left[r]:
					case <-ctx.Done():
						fail(fmt.Errorf("barrier: party 0 straggling at round %d: %w", r, ctx.Err()))
						return
					}
				}
				if o.Late > 0 && i == r%parties {
					for arrived[r].Load() < int64(parties-1) {
						select {
						case <-ctx.Done():
							fail(fmt.Errorf("barrier: party %d arriving late at round %d: %w", i, r, ctx.Err()))
							return
						case <-time.After(time.Millisecond):
						}
					}
					select {
					case <-ctx.Done():
					case <-time.After(o.Late):
					}
				}
				arrived[r].Add(1)
				if err := p.Await(ctx); err != nil {
					fail(fmt.Errorf("barrier: party %d, round %d: %w", i, r, err))
					return
				}
				if n := arrived[r].Load(); n != int64(parties) {
					fail(fmt.Errorf("barrier: party %d left round %d with %d of %d parties arrived: %w", i, r, n, parties, ErrEarlyLeave))
					return
				}
				if i != 0 {
					leftOnce[r].Do(func() { close(left[r]) })
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}
