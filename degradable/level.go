package degradable

import (
	"errors"
	"fmt"
	"strings"
)

// Level is a degradation level: the consistency criterion an object keeps,
// chosen once, when the object is created. A higher Level needs less
// synchronisation than a lower one. The package doc states each level's
// guarantee as a condition on histories.
type Level uint8

// The levels, strongest first.
const (
	// Linearizable objects are one copy: every operation takes effect
	// atomically at some instant between its invocation and its response.
	Linearizable Level = iota + 1
	// Sequential objects order every update through one sequencer and serve
	// reads from a replica that may lag: sequential consistency with
	// monotonic reads and read-your-writes.
	Sequential
	// Weak objects apply updates at the local replica at once and merge the
	// per-writer states of the others from time to time: strong eventual
	// consistency with read-your-writes and monotonic reads.
	Weak
)

// Levels returns every level, strongest first.
func Levels() []Level { return []Level{Linearizable, Sequential, Weak} }

// String returns the level's name as ParseLevel accepts it: "linearizable",
// "sequential" or "weak"; an invalid level is "level(N)".
func (l Level) String() string {
	switch l {
	case Linearizable:
		return "linearizable"
	case Sequential:
		return "sequential"
	case Weak:
		return "weak"
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// Valid reports whether l is one of Linearizable, Sequential and Weak.
func (l Level) Valid() bool { return l >= Linearizable && l <= Weak }

// ParseLevel returns the level named s (case-insensitive), or an error that
// lists the valid names.
func ParseLevel(s string) (Level, error) {
	for _, l := range Levels() {
		if strings.EqualFold(s, l.String()) {
			return l, nil
		}
	}
	return 0, fmt.Errorf("degradable: unknown level %q (want linearizable, sequential or weak)", s)
}

// ErrIncrementOnly is returned, wrapped, by Counter.Add on a counter created
// with IncrementOnly when the delta is not 1. The call has no effect.
var ErrIncrementOnly = errors.New("degradable: increment-only counter: Add accepts only a delta of 1")

// MaxReplicas is the largest number of replicas an object may have (a weak
// replica keeps a cursor per other replica).
const MaxReplicas = 1 << 10

// DefaultPullEvery is the pull period of a replica when PullEvery is not
// given.
const DefaultPullEvery = 16

// Handle is what every object handle has, whatever its type and level. A
// handle is one client's session at one replica of an object: the
// guarantees that speak of a client's program order (read-your-writes,
// monotonic reads) are about the sequence of calls on one handle. A handle
// must not be used by two goroutines at once; give each goroutine its own.
type Handle interface {
	// Level returns the level the object was created with.
	Level() Level
	// Replica returns the index of this handle's replica, in [0, replicas).
	Replica() int
	// Sync exchanges updates with the other replicas: it publishes the
	// updates made at this replica and applies every update published
	// elsewhere. At the linearizable and sequential levels an update is
	// published before it returns, so after Sync the replica reflects every
	// update that returned, anywhere, before Sync was called (at the
	// linearizable level, with one copy, Sync does nothing). At the weak
	// level a replica publishes its own updates when it pulls, so after
	// quiescence every replica calls Sync once to publish, and a second
	// Sync then brings a replica to the merge of every update.
	Sync()
}

// Option configures an object at creation.
type Option func(*config)

// config is what the options set.
type config struct {
	pullEvery     int
	incrementOnly bool
	bug           bug // a planted bug, for the sabotage tests only
}

// bug names a bug that the sabotage tests plant to prove that the checkers
// catch it. The zero value plants nothing; nothing outside this package's
// tests can set another.
type bug uint8

const (
	// bugLostUpdate: a linearizable counter's Add reads the value, yields,
	// then stores the sum: concurrent adds are lost.
	bugLostUpdate bug = iota + 1
	// bugStaleRead: a sequential replica serves a read without applying the
	// client's own last update first.
	bugStaleRead
	// bugLosingMerge: a weak replica's merge leaves out the last replica's
	// updates.
	bugLosingMerge
)

// withBug plants b; for the sabotage tests.
func withBug(b bug) Option { return func(c *config) { c.bug = b } }

// PullEvery sets how many operations a replica of a sequential or weak
// object may serve between two pulls, in which it applies the updates
// published by the other replicas (and, at the weak level, publishes its
// own, if it has not yet); k >= 1, and the default is DefaultPullEvery. A
// replica always reflects its own client's updates in that client's reads,
// and pulls on Sync. With k = 1 every operation pulls. It has no effect at
// the linearizable level.
func PullEvery(k int) Option { return func(c *config) { c.pullEvery = k } }

// IncrementOnly restricts a counter to increments by one: Add(1) is the
// only update, and any other delta returns an error wrapping
// ErrIncrementOnly without effect. At the linearizable level the counter
// then becomes one slot per replica summed by a read (a collect of unit
// increments is linearizable) instead of one word that every add contends
// for; at every level its value never decreases. It is refused by the
// constructors of the other types.
func IncrementOnly() Option { return func(c *config) { c.incrementOnly = true } }

// newConfig validates the arguments common to every constructor.
func newConfig(kind string, level Level, replicas int, opts []Option) (config, error) {
	c := config{pullEvery: DefaultPullEvery}
	for _, o := range opts {
		if o == nil {
			return c, fmt.Errorf("degradable: New%s: nil Option", kind)
		}
		o(&c)
	}
	switch {
	case !level.Valid():
		return c, fmt.Errorf("degradable: New%s: invalid level %v (want Linearizable, Sequential or Weak)", kind, level)
	case replicas < 1 || replicas > MaxReplicas:
		return c, fmt.Errorf("degradable: New%s: %d replicas, want 1 to %d", kind, replicas, MaxReplicas)
	case c.pullEvery < 1:
		return c, fmt.Errorf("degradable: New%s: PullEvery(%d), want at least 1", kind, c.pullEvery)
	case c.incrementOnly && kind != "Counter":
		return c, fmt.Errorf("degradable: New%s: IncrementOnly applies to counters only", kind)
	}
	return c, nil
}

// base is embedded by every handle.
type base struct {
	level   Level
	replica int
}

// Level returns the level the object was created with.
func (b base) Level() Level { return b.level }

// Replica returns the index of this handle's replica.
func (b base) Replica() int { return b.replica }
