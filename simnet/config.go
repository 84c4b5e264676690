package simnet

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/blossom-dso/blossom/protocols"
)

// ErrConfig is wrapped by every error of Config.Validate: the run was not
// started because its configuration is wrong.
var ErrConfig = errors.New("simnet: invalid config")

// Config describes one simulation run. Zero values of the optional fields
// pick the defaults documented on each field.
type Config struct {
	// Protocol is the registry name of the protocol (protocols.Lookup); the
	// caller imports the protocol package for its registration.
	Protocol string
	// Nodes is the number of replicas, with ids 1..Nodes.
	Nodes int
	// F is the number of failures tolerated; 0 means (Nodes-1)/2.
	F int
	// E is passed to the protocol (protocols.Config.E); 0 is its default.
	E int

	// Clients is the number of closed-loop clients (default 1).
	Clients int
	// Ops is the total number of operations, split across the clients.
	Ops int
	// Keys is the number of shared keys that conflicting operations pick
	// from (default 1).
	Keys int
	// Conflict is the percentage (0..100) of operations that touch a shared
	// key; the others touch a key private to their client.
	Conflict float64
	// Reads is the percentage (0..100) of operations that are gets.
	Reads float64
	// Size is the command payload size in bytes (at least 9 are used).
	Size int

	// Latency is the latency model (ParseLatency syntax); "" means
	// constant:1.
	Latency string
	// Sites places node i at Sites[(i-1) % len(Sites)]. For planet models
	// they are region names (default DefaultSites); for the others they are
	// labels (default n1, n2, ...).
	Sites []string
	// Faults is the fault spec (ParseFaults syntax); "" means none.
	Faults string
	// Crashes are scripted crashes, on top of Faults.
	Crashes []Crash

	// Seed seeds the one random source every other stream derives from.
	Seed uint64
	// CodecCheck round-trips every message through the protocol's Codec.
	CodecCheck bool

	// CompactEvery makes every node take a checkpoint (replica.Config's
	// CompactEvery) after every CompactEvery persisted records, for
	// protocols that implement protocols.Compactor; a restarted node then
	// starts from its last durable checkpoint and the records after it.
	// 0 never compacts.
	CompactEvery int

	// DiskDelay is the time a sync of persisted records takes, in virtual
	// microseconds (default 100).
	DiskDelay int64
	// TickInterval is the virtual time between two ticks of a node, in
	// microseconds. The default is max(1 ms, the greatest one-way delay of
	// the latency model), so that SuspectTicks ticks span SuspectTicks/2
	// greatest round trips (5 with the default SuspectTicks of 10).
	TickInterval int64
	// SuspectTicks is passed to the protocol (default 10).
	SuspectTicks int
	// Leader places the first leader of a leader-based protocol
	// (protocols.Config.InitialLeader): "" leaves it to the election,
	// "best" picks BestLeader's node, a number names the node.
	Leader string
	// ClientTimeout is how long a client waits for a reply before it
	// records the operation's outcome as unknown and moves on to the next
	// replica. The default is 4*SuspectTicks*TickInterval plus 10 greatest
	// round trips.
	ClientTimeout int64
	// FaultWindow is the virtual time, in microseconds, until which faults
	// are active; the window also closes as soon as 60% of the operations
	// have completed, so that some are left for after the heal. The default
	// is 60% of an estimate of the fault-free run
	// time (ops per client times 6 greatest one-way delays plus disk and
	// tick), but at least 30*SuspectTicks ticks.
	FaultWindow int64
	// Groups > 0 makes a multicast run: Groups groups of 2F+1 replicas
	// (group g holds nodes g*(2F+1)+1 .. (g+1)*(2F+1)), F defaulting to 1;
	// Nodes may be 0 (it is then Groups*(2F+1)) or must equal that. Keys are
	// named "g<group>/<name>" and the protocol's Config.GroupOf maps them to
	// their group. See multicast.go for the workload and the checks.
	Groups int
	// Dest is the number of destination groups of each command in a
	// multicast run, 1..Groups; 0 draws 1..Groups per command ("mixed").
	Dest int

	// Drain, if positive, keeps a run that is not a multicast run going
	// for Drain virtual microseconds after its last client finished (the
	// faults have healed by then), so that replicas of a protocol with a
	// weaker contract converge before Result.PerNode's states are read.
	Drain int64
	// RecordExecutions fills NodeStats.Executions with every node's
	// executions, per incarnation, for the checks of weaker contracts.
	RecordExecutions bool

	// MaxTime bounds the virtual time of the run; 0 means a bound far above
	// what a live protocol needs (the window plus 20 times the estimated run
	// time plus 100 client timeouts).
	MaxTime int64

	// Inject, if not nil, forges messages while the fault window is open:
	// every InjectEvery virtual microseconds (default: a tick) a sender
	// and a receiver are drawn among the nodes and the receiver, if up,
	// steps Inject's message as if it came from the sender, amid the real
	// traffic. A nil message injects nothing. Inject draws from r only, a
	// random stream of its own, so that the rest of the run is that of
	// the same seed with other injections. Result.Injected and
	// Result.InjectIgnored count the injected messages and those the
	// receiver ignored (no record, no message, no execution).
	Inject      func(r *rand.Rand, from, to protocols.NodeID) protocols.Message
	InjectEvery int64

	// Scheduler, if not nil, makes an explored run: instead of the
	// time-ordered event heap, Scheduler picks every step from the enabled
	// events (see Scheduler). An explored run needs Faults "none", no
	// Crashes and a constant latency model; its faults and ticks are the
	// scheduler's choices within Budget, clients never time out, and the
	// history's times count client events. Step invariants are checked
	// after every step (Result.StepError).
	Scheduler Scheduler
	// Budget bounds an explored run.
	Budget Budget

	// Workload, if not nil, replaces the key-value workload (Keys,
	// Conflict, Reads and Size are then unused); it cannot be combined
	// with Groups or Scheduler.
	Workload Workload
}

// resolved is a validated Config with defaults filled and strings parsed.
type resolved struct {
	Config
	spec     protocols.Spec
	lat      Latency
	faults   FaultSpec
	links    *links
	sites    []string // per node
	estimate int64    // estimated fault-free run time
}

// Validate checks c and reports the first problem as an error wrapping
// ErrConfig (or ErrLatency / ErrFaults / protocols.ErrUnknownProtocol).
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

func (c Config) resolve() (*resolved, error) {
	r := &resolved{Config: c}
	bad := func(format string, args ...any) (*resolved, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	spec, err := protocols.Lookup(c.Protocol)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	r.spec = spec
	if c.Groups < 0 || c.Groups > 100 {
		return bad("groups=%d: need 0..100", c.Groups)
	}
	if c.Groups > 0 {
		if r.F == 0 {
			r.F = 1
		}
		if r.F < 1 {
			return bad("f=%d: need at least 1", c.F)
		}
		per := 2*r.F + 1
		if c.Nodes == 0 {
			r.Nodes = c.Groups * per
		} else if c.Nodes != c.Groups*per {
			return bad("nodes=%d with %d groups of 2f+1=%d: need %d", c.Nodes, c.Groups, per, c.Groups*per)
		}
		if c.Dest < 0 || c.Dest > c.Groups {
			return bad("dest=%d with %d groups: need 0 (mixed) or 1..%d", c.Dest, c.Groups, c.Groups)
		}
		c.Nodes = r.Nodes
	} else if c.Dest != 0 {
		return bad("dest=%d needs groups", c.Dest)
	}
	if c.Workload != nil && (c.Groups > 0 || c.Scheduler != nil) {
		return bad("a Workload with groups or a scheduler")
	}
	if c.Nodes < 1 {
		return bad("nodes=%d: need at least 1", c.Nodes)
	}
	if c.Nodes > 1000 {
		return bad("nodes=%d: at most 1000", c.Nodes)
	}
	if c.Nodes == 2 {
		return bad("2 nodes: a replicated deployment needs 1 node or at least 3 (f >= 1 needs nodes >= 2f+1)")
	}
	if r.F == 0 {
		r.F = (c.Nodes - 1) / 2
	}
	if c.Groups == 0 && (r.F < 0 || r.F > (c.Nodes-1)/2 || (c.Nodes > 1 && r.F < 1)) {
		return bad("f=%d with %d nodes: need 1 <= f <= %d", c.F, c.Nodes, (c.Nodes-1)/2)
	}
	if c.E < 0 {
		return bad("e=%d is negative", c.E)
	}
	if r.Clients == 0 {
		r.Clients = 1
	}
	if r.Clients < 1 || r.Clients > 1_000_000 {
		return bad("clients=%d: need 1..1000000", c.Clients)
	}
	if c.Ops < 0 {
		return bad("ops=%d is negative", c.Ops)
	}
	if r.Keys == 0 {
		r.Keys = 1
	}
	if r.Keys < 1 {
		return bad("keys=%d: need at least 1", c.Keys)
	}
	if !(c.Conflict >= 0 && c.Conflict <= 100) {
		return bad("conflict=%v: need a percentage in 0..100", c.Conflict)
	}
	if !(c.Reads >= 0 && c.Reads <= 100) {
		return bad("reads=%v: need a percentage in 0..100", c.Reads)
	}
	if c.Size < 0 || c.Size > 1<<20 {
		return bad("size=%d: need 0..1048576 bytes", c.Size)
	}
	if c.CompactEvery < 0 || c.Drain < 0 || c.DiskDelay < 0 || c.TickInterval < 0 || c.ClientTimeout < 0 || c.FaultWindow < 0 || c.MaxTime < 0 || c.SuspectTicks < 0 {
		return bad("negative time setting")
	}
	if r.DiskDelay == 0 {
		r.DiskDelay = 100
	}
	if r.SuspectTicks == 0 {
		r.SuspectTicks = 10
	}
	if r.Latency == "" {
		r.Latency = "constant:1"
	}
	if r.lat, err = ParseLatency(r.Latency); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if r.faults, err = ParseFaults(c.Faults); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	sites := c.Sites
	if len(sites) == 0 {
		if r.lat.Kind == Planet {
			sites = DefaultSites(r.lat.Planet, c.Nodes)
		} else {
			sites = make([]string, c.Nodes)
			for i := range sites {
				sites[i] = fmt.Sprintf("n%d", i+1)
			}
		}
	}
	if len(sites) > c.Nodes {
		return bad("%d sites for %d nodes", len(sites), c.Nodes)
	}
	r.sites = make([]string, c.Nodes)
	for i := range r.sites {
		r.sites[i] = sites[i%len(sites)]
		if r.sites[i] == "" {
			return bad("empty site name")
		}
	}
	if r.links, err = compileLinks(r.lat, r.sites); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	for _, cr := range c.Crashes {
		if cr.Node < 1 || int(cr.Node) > c.Nodes || cr.At < 0 || cr.Kind < CrashStop || cr.Kind > CrashLostTail {
			return bad("bad scripted crash %+v", cr)
		}
	}

	// Timing defaults, all derived from the latency model.
	maxOneWay := r.links.maxOneWay
	if r.TickInterval == 0 {
		r.TickInterval = max(1000, maxOneWay)
	}
	if r.ClientTimeout == 0 {
		r.ClientTimeout = 4*int64(r.SuspectTicks)*r.TickInterval + 20*maxOneWay
	}
	perOp := 6*maxOneWay + 2*slicesMax(r.links.local) + 2*r.DiskDelay + r.TickInterval
	opsPerClient := int64((c.Ops + r.Clients - 1) / r.Clients)
	r.estimate = max(1, opsPerClient) * perOp
	if r.FaultWindow == 0 {
		r.FaultWindow = max(r.estimate*6/10, 30*int64(r.SuspectTicks)*r.TickInterval)
	}
	if r.InjectEvery <= 0 {
		r.InjectEvery = r.TickInterval
	}
	if r.MaxTime == 0 {
		r.MaxTime = r.FaultWindow + 20*r.estimate + 100*r.ClientTimeout
	}
	if _, err := leaderOf(r); err != nil {
		return nil, err
	}
	return r, nil
}

func slicesMax(s []int64) int64 {
	var m int64
	for _, v := range s {
		m = max(m, v)
	}
	return m
}
