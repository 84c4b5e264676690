package protocols

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
)

// NodeID names a replica. IDs are small positive integers; 0 is never a
// valid replica.
type NodeID uint32

// GroupID names a replica group (atomic multicast). Full replication uses one
// group, 0.
type GroupID uint32

// CommandID identifies one client request uniquely: the client's id and the
// client's sequence number for that request. A retried request that must not
// execute twice keeps its CommandID.
type CommandID struct {
	Client uint64
	Seq    uint64
}

// Less orders command ids lexicographically (client, then sequence). It is
// the tie-breaker that protocols use where they need a total order on
// commands.
func (a CommandID) Less(b CommandID) bool {
	if a.Client != b.Client {
		return a.Client < b.Client
	}
	return a.Seq < b.Seq
}

// String formats the id as client.seq.
func (a CommandID) String() string { return fmt.Sprintf("%d.%d", a.Client, a.Seq) }

// Command is one client request as the protocols see it.
type Command struct {
	// ID identifies the request; Execute is called at most once per ID per
	// replica incarnation.
	ID CommandID
	// Keys are the objects the command touches. Two commands conflict when
	// they share a key; for multicast the keys name the destination groups.
	Keys []string
	// Payload is opaque to the protocol; the state machine decodes it.
	Payload []byte
	// Acked is the client's acknowledgement watermark: the client received
	// the answer of every one of its commands with a Seq below Acked, and a
	// copy of such a command that is still in flight can only execute after
	// the original. The runtime's exactly-once layer (package replica) uses
	// it to forget the commands it deduplicates; 0 acknowledges nothing.
	// Protocols carry it unchanged.
	Acked uint64
	// Seen is, for a protocol with the Sequential contract, the log
	// position (Positioner) of the replica group the client has observed:
	// the greatest position answered to it so far, 0 if none. A replica
	// may serve a read-only command locally only once it has executed
	// that far. It matters only to Submit at the replica that receives
	// the command: protocols do not carry it in their messages (their
	// codecs drop it) and other contracts ignore it.
	Seen uint64
}

// Conflicts reports whether a and b share a key.
func (c Command) Conflicts(d Command) bool {
	for _, k := range c.Keys {
		if slices.Contains(d.Keys, k) {
			return true
		}
	}
	return false
}

// Message is a protocol message. Each protocol defines its own concrete
// message types and a Codec for them. A received Message is read-only.
type Message any

// Protocol is a replication protocol instance at one replica. A runtime
// calls its methods from one goroutine at a time.
type Protocol interface {
	// Submit hands the protocol a client's command that arrived at this
	// replica. This replica's Execute of the command answers the client.
	Submit(c Command)
	// Step delivers a message from peer from (which may be this replica
	// itself).
	Step(from NodeID, m Message)
	// Tick advances the protocol's logical clock by one tick. Timeouts,
	// leader election and recovery are counted in ticks.
	Tick()
}

// Env is everything a protocol may do to the world.
type Env interface {
	// Send sends m to peer to (to may be the sender itself). Delivery is
	// not guaranteed: m may be lost, delayed, duplicated or reordered.
	Send(to NodeID, m Message)
	// Execute hands c to the replicated state machine. It is called in the
	// order of the order contract, at most once per command id.
	Execute(c Command)
	// Persist appends rec to this replica's durable log (see the
	// persistence contract in the package doc). The protocol must not
	// modify rec afterwards.
	Persist(rec []byte)
	// Rand is the only source of randomness a protocol may use.
	Rand() *rand.Rand
}

// PathReporter is an optional interface of an Env: protocols with a fast and
// a slow commit path report each commit decision through ReportPath.
type PathReporter interface {
	ReportPath(fast bool)
}

// ReportPath tells env, if it records commit paths, that this replica
// committed a command on the fast (fast=true) or the slow path.
func ReportPath(env Env, fast bool) {
	if r, ok := env.(PathReporter); ok {
		r.ReportPath(fast)
	}
}

// Config configures one protocol instance.
type Config struct {
	// Self is this replica's id; it must appear in Peers.
	Self NodeID
	// Peers lists every replica of the deployment, in the same order at
	// every replica, Self included.
	Peers []NodeID
	// F is the number of crashed replicas the protocol tolerates:
	// 1 <= F <= (len(Peers)-1)/2.
	F int
	// E is the number of crashes under which a leaderless fast path still
	// works (EPaxos); 0 means the protocol's default.
	E int
	// Closest lists Peers ordered by closeness (latency) to Self, Self
	// first; nil means the order of Peers. Protocols that pick nearby
	// quorums (Atlas) read it.
	Closest []NodeID
	// Groups are the replica groups for atomic multicast; nil means one
	// group 0 holding all Peers.
	Groups map[GroupID][]NodeID
	// GroupOf maps a key to its group (multicast only).
	GroupOf func(key string) GroupID
	// InitialLeader, if not 0, is the replica a leader-based protocol
	// (paxos, fpaxos) makes its first leader: on a fresh start (no
	// Checkpoint, no Recovered records) that replica campaigns at its first
	// Tick instead of waiting for an election timeout. It is a placement
	// hint, not a safety property: any replica may still campaign later.
	// 0 leaves the first leader to the election.
	InitialLeader NodeID
	// SuspectTicks is the number of ticks of silence after which a peer
	// (a leader, a coordinator) is suspected to have failed. Runtimes set
	// it so that it spans several round trips; 0 means 10.
	SuspectTicks int
	// Checkpoint is the protocol's last durable checkpoint (see
	// Compactor), nil if none: the state that replaces every record the
	// replica persisted before it.
	Checkpoint []byte
	// Recovered holds, in order, the records this replica persisted before
	// a crash and after its Checkpoint; nil on a fresh start.
	Recovered [][]byte
	// ReadOnly reports whether a command only reads the state machine.
	// Protocols with a contract weaker than Linearizable use it to serve
	// reads locally; nil means every command may write. It must be a pure
	// function of the command.
	ReadOnly func(Command) bool
	// Env is the protocol's only way to act.
	Env Env
}

// ErrConfig is wrapped by every error that Validate returns.
var ErrConfig = errors.New("protocols: invalid config")

// Validate checks the fields every protocol relies on and fills defaults
// (SuspectTicks, Closest). It returns an error wrapping ErrConfig.
func (c *Config) Validate() error { return c.validate(false) }

// ValidatePair is Validate for protocols whose every quorum is a majority
// (Multi-Paxos): it also accepts two replicas with f = 0, where both must
// agree to anything. Such a pair tolerates no failure, but every
// acknowledged command is on both (replication factor 2).
func (c *Config) ValidatePair() error { return c.validate(true) }

func (c *Config) validate(pair bool) error {
	n := len(c.Peers)
	minF := 1
	if pair && n == 2 {
		minF = 0
	}
	switch {
	case n == 0:
		return fmt.Errorf("%w: no peers", ErrConfig)
	case c.Env == nil:
		return fmt.Errorf("%w: nil Env", ErrConfig)
	case !slices.Contains(c.Peers, c.Self):
		return fmt.Errorf("%w: self %d not among peers %v", ErrConfig, c.Self, c.Peers)
	case c.F < 0 || (n > 1 && c.F < minF) || c.F > (n-1)/2:
		return fmt.Errorf("%w: f=%d with n=%d (need 1 <= f <= (n-1)/2)", ErrConfig, c.F, n)
	case c.SuspectTicks < 0:
		return fmt.Errorf("%w: negative SuspectTicks", ErrConfig)
	}
	seen := map[NodeID]bool{}
	for _, p := range c.Peers {
		if p == 0 {
			return fmt.Errorf("%w: node id 0 is reserved", ErrConfig)
		}
		if seen[p] {
			return fmt.Errorf("%w: duplicate peer %d", ErrConfig, p)
		}
		seen[p] = true
	}
	if c.SuspectTicks == 0 {
		c.SuspectTicks = 10
	}
	if c.Closest == nil {
		c.Closest = append([]NodeID{c.Self}, slices.DeleteFunc(slices.Clone(c.Peers), func(p NodeID) bool { return p == c.Self })...)
	} else if len(c.Closest) != n || c.Closest[0] != c.Self {
		return fmt.Errorf("%w: Closest must list all %d peers, self first", ErrConfig, n)
	}
	return nil
}

// Index returns the position of id in Peers, or -1.
func (c *Config) Index(id NodeID) int { return slices.Index(c.Peers, id) }

// Compactor is an optional interface of a Protocol whose durable log can be
// compacted. The runtime calls Checkpoint between two input calls, at the
// same moment it snapshots the state machine, which then reflects exactly
// the commands this replica executed so far.
//
// Checkpoint returns a record that, given to a restarted replica as
// Config.Checkpoint together with the records persisted after the call
// (Config.Recovered) and the state machine restored from that snapshot,
// makes the replica behave as if it had been restarted from every record it
// ever persisted: every promise, vote and decision those records made
// durable is kept. The restarted replica need not execute again a command
// it executed before the checkpoint; if it does, the runtime's exactly-once
// layer discards the second execution. After Checkpoint returns, the
// protocol may forget in-memory state that the checkpoint and the state
// machine cover (executed commands, executed log entries, the executed
// command ids it keeps to avoid executing a command twice). The returned
// record must not be modified afterwards.
type Compactor interface {
	Checkpoint() []byte
}

// StateTransfer is an optional interface of an Env (the replica core
// implements it). It lets a protocol bring a replica that lags behind a
// peer's compaction point up to date by state transfer, since the peer no
// longer has the log entries the lagging replica misses.
type StateTransfer interface {
	// LastCheckpoint returns this replica's newest checkpoint: the record
	// its protocol's Checkpoint returned, and the opaque state of the state
	// machine (and the runtime's client sessions) at the same point. ok is
	// false if no checkpoint was taken.
	LastCheckpoint() (checkpoint, state []byte, ok bool)
	// InstallState replaces the state machine and sessions with state, the
	// state part of a peer's LastCheckpoint. The protocol itself takes over
	// what the peer's checkpoint says was executed, and must execute
	// nothing the installed state already reflects. The runtime makes the
	// installed state durable with a checkpoint of its own, taken right
	// after the current input (the protocol's Checkpoint and the installed
	// state); a crash before that checkpoint is durable loses only the
	// transfer. Malformed state is an error and changes nothing.
	InstallState(state []byte) error
}

// RetryAnswerer is an optional interface of an Env (the replica core
// implements it). A protocol that receives, through Submit, a command it
// knows it executed before (a client's retry, after a lost answer, of a
// command this replica executed) calls AlreadyExecuted so that the client
// is told the command took effect; nothing is executed again. Without it
// such a retry would get no answer at all.
type RetryAnswerer interface {
	AlreadyExecuted(c Command)
}

// AlreadyExecuted tells env, if it answers retries, that this replica
// executed c before.
func AlreadyExecuted(env Env, c Command) {
	if a, ok := env.(RetryAnswerer); ok {
		a.AlreadyExecuted(c)
	}
}

// Record is a durable record not encoded yet: Size is the length of its
// encoding and AppendTo appends the encoding to b. See PersistRecord.
type Record interface {
	Size() int
	AppendTo(b []byte) []byte
}

// RecordPersister is an optional interface of an Env (the replica core
// implements it). PersistRecord(r) has the effect of Persist with r's
// encoding; an Env whose records are never read back (a simulation in
// which no replica restarts) may count r's Size without encoding it. It
// does not keep r, which the caller may reuse once it returns.
type RecordPersister interface {
	PersistRecord(r Record)
}

// PersistRecord persists r through env: through its PersistRecord if it
// has one, and otherwise as Persist(r's encoding). A protocol that persists
// a record on a hot path passes a pointer to a record value it reuses, so
// that the call allocates nothing when the record is not encoded.
func PersistRecord(env Env, r Record) {
	if p, ok := env.(RecordPersister); ok {
		p.PersistRecord(r)
		return
	}
	env.Persist(r.AppendTo(make([]byte, 0, r.Size())))
}

// Positioner is an optional interface of a Protocol with the Sequential
// contract. Position is the log position this replica has executed up to:
// the number of log slots whose commands it executed, the same at every
// replica for the same prefix of the log, growing within an incarnation
// (a state transfer moves it forward). A runtime reports it with every
// answer (read after the input that produced the answer, so it is never
// below the position whose state the answer reflects), and the client
// passes the greatest it was answered back as Command.Seen.
type Positioner interface {
	Position() uint64
}

// Position returns p's Position if p is a Positioner, else 0.
func Position(p Protocol) uint64 {
	if q, ok := p.(Positioner); ok {
		return q.Position()
	}
	return 0
}

// ReadCounter is an optional interface of a Protocol that serves some
// read-only commands locally: ReadCounts returns how many reads this
// replica incarnation served from its local state and how many it sent
// through the log.
type ReadCounter interface {
	ReadCounts() (local, logged int64)
}

// LeaderReporter is an optional interface of a Protocol that has a leader:
// Leader returns the replica this one believes leads, or 0 if it knows
// none. Runtimes use it to report where the leader was.
type LeaderReporter interface {
	Leader() NodeID
}
