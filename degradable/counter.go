package degradable

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// Counter is a shared int64 counter, starting at 0, with the same signature
// at every level.
type Counter interface {
	Handle
	// Add adds delta (wrapping around on overflow). On a counter created
	// with IncrementOnly, a delta other than 1 returns an error wrapping
	// ErrIncrementOnly and has no effect; otherwise Add returns nil.
	Add(delta int64) error
	// Value returns the counter's value as this replica sees it.
	Value() int64
}

// NewCounter creates a counter with the given level and number of replicas
// and returns one handle per replica, handle i on replica i. It fails on an
// invalid level, a number of replicas outside [1, MaxReplicas] or an
// invalid option.
//
// At the linearizable level the counter is one atomic word (or, with
// IncrementOnly, one padded slot per replica, summed by Value). At the
// sequential level its adds are ordered by a sequencer that numbers them
// and keeps their running sum, so that a replica catches up with the log in
// one step. At the weak level it is a PN-counter with one padded slot per
// replica, holding the net sum of that replica's adds as of its last pull
// (a G-counter with IncrementOnly).
func NewCounter(level Level, replicas int, opts ...Option) ([]Counter, error) {
	cfg, err := newConfig("Counter", level, replicas, opts)
	if err != nil {
		return nil, err
	}
	hs := make([]Counter, replicas)
	switch {
	case level == Linearizable && cfg.incrementOnly:
		slots := make([]slot, replicas)
		for i := range hs {
			hs[i] = &collectCounter{base: base{level, i}, slots: slots}
		}
	case level == Linearizable:
		v := new(slot)
		for i := range hs {
			hs[i] = &atomicCounter{base: base{level, i}, v: &v.v, cfg: cfg}
		}
	case level == Sequential:
		sh := &seqShared{cfg: cfg}
		for i := range hs {
			hs[i] = &seqCounter{base: base{level, i}, sh: sh}
		}
	default:
		sh := &pnShared{slots: make([]slot, replicas), cfg: cfg}
		for i := range hs {
			hs[i] = &pnCounter{base: base{level, i}, sh: sh}
		}
	}
	return hs, nil
}

// checkDelta enforces IncrementOnly.
func checkDelta(cfg config, delta int64) error {
	if cfg.incrementOnly && delta != 1 {
		return fmt.Errorf("%w (got Add(%d))", ErrIncrementOnly, delta)
	}
	return nil
}

// slot is an int64 alone on a pair of cache lines (128 bytes, what the
// adjacent-line prefetchers of common targets fetch together), so that
// writers of neighbouring slots do not contend.
type slot struct {
	v atomic.Int64
	_ [120]byte
}

// pad keeps the client-written fields of one handle off the cache lines of
// the handles allocated next to it.
type pad [128]byte

// atomicCounter is the linearizable counter: one atomic word.
type atomicCounter struct {
	base
	v   *atomic.Int64
	cfg config
}

// Add adds delta atomically.
func (c *atomicCounter) Add(delta int64) error {
	if c.cfg.bug == bugLostUpdate {
		v := c.v.Load() // planted: a read-modify-write that is not atomic
		runtime.Gosched()
		c.v.Store(v + delta)
		return nil
	}
	c.v.Add(delta)
	return nil
}

// Value returns the value.
func (c *atomicCounter) Value() int64 { return c.v.Load() }

// Sync does nothing: there is one copy.
func (c *atomicCounter) Sync() {}

// collectCounter is the linearizable increment-only counter: each replica
// increments its own slot and a read sums the slots. A read returns a value
// between the number of increments done when it starts and when it ends,
// and reads that follow each other return non-decreasing values; as every
// increment adds exactly 1, some instant within the read had exactly that
// count, which makes the counter linearizable.
type collectCounter struct {
	base
	slots []slot
}

// Add increments this replica's slot; any delta but 1 is refused.
func (c *collectCounter) Add(delta int64) error {
	if delta != 1 {
		return fmt.Errorf("%w (got Add(%d))", ErrIncrementOnly, delta)
	}
	c.slots[c.replica].v.Add(1)
	return nil
}

// Value sums the slots.
func (c *collectCounter) Value() int64 {
	var sum int64
	for i := range c.slots {
		sum += c.slots[i].v.Load()
	}
	return sum
}

// Sync does nothing: every read sums the current slots.
func (c *collectCounter) Sync() {}

// seqShared is the sequencer of a sequential counter. Its log is reduced
// to what a replica can need from it: each add is numbered and the sum of
// the adds up to it recorded, so that applying a run of the log is taking
// the sum at its end; the sequencer keeps the latest number and sum, and
// each client keeps those of its own last add.
type seqShared struct {
	mu    sync.Mutex // the sequencer
	n     uint64     // adds ordered so far
	total int64      // the sum of those adds
	cfg   config
}

// seqCounter is one replica of a sequential counter, with its client.
type seqCounter struct {
	base
	sh    *seqShared
	at    uint64 // the replica has applied the first at adds...
	v     int64  // ...whose sum is v
	ownAt uint64 // the client's last add is add number ownAt...
	ownV  int64  // ...and the sum up to it is ownV
	ops   int    // operations since the last pull
	_     pad
}

// Add orders the add after every add before it.
func (c *seqCounter) Add(delta int64) error {
	if err := checkDelta(c.sh.cfg, delta); err != nil {
		return err
	}
	c.sh.mu.Lock()
	c.sh.n++
	c.sh.total += delta
	c.ownAt, c.ownV = c.sh.n, c.sh.total
	c.sh.mu.Unlock()
	c.ops++
	return nil
}

// Value serves the replica's state after applying the log up to the
// client's own last add, and up to its end when a pull is due.
func (c *seqCounter) Value() int64 {
	if c.ops++; c.ops >= c.sh.cfg.pullEvery {
		c.pull()
	}
	if c.ownAt > c.at && c.sh.cfg.bug != bugStaleRead { // the planted bug skips this
		c.at, c.v = c.ownAt, c.ownV
	}
	return c.v
}

// pull applies the whole log.
func (c *seqCounter) pull() {
	c.ops = 0
	c.sh.mu.Lock()
	c.at, c.v = c.sh.n, c.sh.total
	c.sh.mu.Unlock()
}

// Sync applies the whole log at this replica.
func (c *seqCounter) Sync() { c.pull() }

// pnShared is the per-writer state of a weak counter: slot i holds the net
// sum of replica i's adds as last published (its P minus its N, published
// as one word, so that a reader always sees a prefix of that writer's adds).
type pnShared struct {
	slots []slot
	cfg   config
}

// pnCounter is one replica of the weak counter: the net sum of its own
// adds, applied here at once and published to its slot every PullEvery
// adds and when it pulls, and the sum of the other slots as of its last
// pull.
//
// Adds and reads keep separate cadences: an add only touches the
// replica's own fields and publishes its slot (one store to its own cache
// line) every PullEvery adds; a read merges the other slots (one load of
// each other writer's line) every PullEvery reads. An add thus never reads
// the lines other writers keep writing, which is what makes the weak
// counter cheaper than one contended word.
type pnCounter struct {
	base
	sh     *pnShared
	own    int64 // the net sum of this replica's adds
	others int64 // the other slots' sum at the last pull
	adds   int   // adds since the last publication
	reads  int   // reads since the last pull
	_      pad
}

// Add adds delta here at once and publishes the replica's sum every
// PullEvery adds.
func (c *pnCounter) Add(delta int64) error {
	if err := checkDelta(c.sh.cfg, delta); err != nil {
		return err
	}
	c.own += delta
	if c.adds++; c.adds >= c.sh.cfg.pullEvery {
		c.adds = 0
		c.sh.slots[c.replica].v.Store(c.own)
	}
	return nil
}

// Value returns this replica's own sum plus the others' as last pulled,
// pulling first every PullEvery reads.
func (c *pnCounter) Value() int64 {
	if c.reads++; c.reads >= c.sh.cfg.pullEvery {
		c.pull()
	}
	return c.own + c.others
}

// pull publishes this replica's sum and merges the other replicas' slots:
// each slot only ever holds a longer prefix of its writer's adds, so the
// merge reflects a growing set.
func (c *pnCounter) pull() {
	c.adds, c.reads = 0, 0
	c.sh.slots[c.replica].v.Store(c.own)
	var sum int64
	last := len(c.sh.slots) - 1
	for i := range c.sh.slots {
		if i == c.replica || (c.sh.cfg.bug == bugLosingMerge && i == last) {
			continue // the planted bug loses the last replica's adds
		}
		sum += c.sh.slots[i].v.Load()
	}
	c.others = sum
}

// Sync publishes this replica's sum and pulls every other replica's slot.
func (c *pnCounter) Sync() { c.pull() }
