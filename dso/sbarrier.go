package dso

import (
	"context"
	"fmt"
	"sync"
)

// TypeScalableCyclicBarrier names the scalable barrier in commands; it has
// no server-side type of its own.
const TypeScalableCyclicBarrier = "ScalableCyclicBarrier"

// ScalableCyclicBarrier is a dissemination barrier (Hensgen, Finkel and
// Manber) built on the client from semaphores spread over the ring: in
// round r, participant i signals participant (i + 2^r) mod n and waits for
// the signal of (i - 2^r) mod n. Each participant sends and receives
// ⌈log2 n⌉ signals, so no single object sees all n arrivals, unlike a
// CyclicBarrier. Counting semaphores carry the signals, so a participant
// that races ahead into the next generation cannot confuse a slower one.
//
// Each of the n participants must use its own ScalableCyclicBarrier value
// (it holds the participant's index, taken from a shared counter on its
// first Await). A value is safe for use by one goroutine at a time.
type ScalableCyclicBarrier struct {
	c       Caller
	key     string
	parties int

	mu  sync.Mutex
	id  int64 // -1 until assigned
	gen int64
}

// NewScalableCyclicBarrier returns one participant's handle on the
// scalable barrier key for the given number of parties.
func NewScalableCyclicBarrier(c Caller, key string, parties int) *ScalableCyclicBarrier {
	return &ScalableCyclicBarrier{c: c, key: key, parties: parties, id: -1}
}

func (b *ScalableCyclicBarrier) sem(i int64, round int) Semaphore {
	return NewSemaphore(b.c, fmt.Sprintf("%s/sb/%d/%d", b.key, i, round), 0)
}

// Await waits until all parties have arrived and returns the number of
// the generation crossed by this participant.
func (b *ScalableCyclicBarrier) Await(ctx context.Context) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.parties < 1 {
		return 0, fmt.Errorf("%w: ScalableCyclicBarrier needs at least 1 party", ErrBadArgs)
	}
	if b.id < 0 {
		n, err := NewAtomicLong(b.c, b.key+"/sb/ids").GetAndAdd(ctx, 1)
		if err != nil {
			return 0, err
		}
		b.id = n % int64(b.parties)
	}
	p := int64(b.parties)
	for r, d := 0, int64(1); d < p; r, d = r+1, d*2 {
		if err := b.sem((b.id+d)%p, r).Release(ctx, 1); err != nil {
			return 0, err
		}
		if err := b.sem(b.id, r).Acquire(ctx, 1); err != nil {
			return 0, err
		}
	}
	g := b.gen
	b.gen++
	return g, nil
}
