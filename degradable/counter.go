package degradable

import (
	"fmt"
	"runtime"
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
// IncrementOnly, one padded slot per replica, summed by Value); at the
// sequential level its updates go through the sequencer's log; at the weak
// level it is a PN-counter with one padded slot per replica, holding the
// net sum of that replica's adds (a G-counter with IncrementOnly).
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
		states := make([]machine[int64], replicas)
		for i := range states {
			states[i] = new(counterState)
		}
		s := newSequencer(cfg, states)
		for i := range hs {
			hs[i] = &seqCounter{base: base{level, i}, s: s, r: s.replicas[i], st: states[i].(*counterState), cfg: cfg}
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

// slot is an int64 alone on its cache line (64 bytes on the usual targets),
// so that writers of neighbouring slots do not contend.
type slot struct {
	v atomic.Int64
	_ [56]byte
}

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

// counterState is a sequential replica's copy of a counter; an operation is
// a delta.
type counterState struct{ v int64 }

func (s *counterState) apply(delta int64) { s.v += delta }

// seqCounter is the sequential counter.
type seqCounter struct {
	base
	s   *sequencer[int64]
	r   *seqReplica[int64]
	st  *counterState
	cfg config
}

// Add appends the delta to the sequencer's log.
func (c *seqCounter) Add(delta int64) error {
	if err := checkDelta(c.cfg, delta); err != nil {
		return err
	}
	c.s.update(c.r, delta)
	return nil
}

// Value reads the replica's copy, which has applied at least the client's
// own adds.
func (c *seqCounter) Value() int64 {
	c.s.lockRead(c.r)
	v := c.st.v
	c.s.done(c.r)
	return v
}

// Sync applies the whole log at this replica.
func (c *seqCounter) Sync() { c.s.sync(c.r) }

// pnShared is the per-writer state of a weak counter: slot i holds the net
// sum of replica i's adds (its P minus its N, published as one word so
// that a reader always sees a prefix of that writer's adds).
type pnShared struct {
	slots []slot
	cfg   config
}

// pnCounter is one replica of the weak counter: its own slot, and the sum
// of the other slots as of its last pull.
type pnCounter struct {
	base
	sh     *pnShared
	own    int64 // the net sum of this replica's adds, as in its slot
	others int64 // the other slots' sum at the last pull
	ops    int
}

// Add adds delta to this replica's slot at once.
func (c *pnCounter) Add(delta int64) error {
	if err := checkDelta(c.sh.cfg, delta); err != nil {
		return err
	}
	c.own += delta
	c.sh.slots[c.replica].v.Store(c.own)
	c.tick()
	return nil
}

// Value returns this replica's own sum plus the others' as last pulled.
func (c *pnCounter) Value() int64 {
	c.tick()
	return c.own + c.others
}

// tick counts an operation and pulls when a pull is due.
func (c *pnCounter) tick() {
	if c.ops++; c.ops >= c.sh.cfg.pullEvery {
		c.pull()
	}
}

// pull merges the other replicas' slots: each slot only ever holds a longer
// prefix of its writer's adds, so the merge reflects a growing set.
func (c *pnCounter) pull() {
	c.ops = 0
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

// Sync pulls every other replica's slot.
func (c *pnCounter) Sync() { c.pull() }
