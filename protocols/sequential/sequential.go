// Package sequential is the replication strategy of the sequential level of
// degradable objects (protocol "sequential", contract
// protocols.Sequential): updates are totally ordered by Multi-Paxos
// (package paxos, whose messages, records and checkpoints it uses
// unchanged) and reads are served from the local replica, which may lag
// behind the newest update.
//
// # Reads
//
// A replica's position (Position, protocols.Positioner) is the number of
// log slots it has executed: the same position means the same state at
// every replica. The runtime reports it with every answer, and the client
// passes the greatest position it was answered back with its next
// commands (protocols.Command.Seen). A read-only command
// (protocols.Config.ReadOnly) is executed locally, at once, when this
// replica's position is at least the command's Seen: the local state then
// reflects every update the client wrote or saw, wherever it saw it
// (read-your-writes, monotonic reads). Any other read, and every update,
// goes through the Paxos log.
//
// Hence every history whose clients carry their positions is sequentially
// consistent: the order of the Paxos log, with each local read placed
// right after the position its replica had executed, is one total order
// of the updates that explains every read in each client's program order
// (simtest.CheckSequential checks exactly that). A command issued after
// an answer at position p is ordered after p: a local read because it
// needs a replica at p or beyond, a logged command because the slots up
// to p were chosen before it was proposed, and a leader proposes new
// commands after every chosen slot it knows of (its phase 1 learned them
// all). A runtime may report a position above the one an answer
// reflects (it reads it after the whole input); that only sends more
// reads through the log. A client that does not carry its position (Seen
// 0) gets a local read at any replica, possibly behind what it saw
// elsewhere.
//
// The positions are Paxos slots, so a replica group's position is a
// property of its log alone: it survives restarts (a restarted replica
// replays its checkpoint and records) and state transfer, and a client
// keeps one per replica group and level.
package sequential

import (
	"fmt"

	"github.com/pingcap/failpoint"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/paxos"
)

func init() {
	protocols.RegisterContract("sequential", protocols.Sequential, func(cfg protocols.Config) (protocols.Protocol, error) {
		return New(cfg)
	}, paxos.Codec{})
}

// Replica is one replica of the sequential strategy.
type Replica struct {
	inner    *paxos.Replica
	env      protocols.Env
	readOnly func(protocols.Command) bool
	// local and logged count the reads served here and those sent through
	// the log (ReadCounts).
	local, logged int64
}

// New builds a replica from cfg: Multi-Paxos with majority quorums for the
// updates, restarted from cfg.Checkpoint and cfg.Recovered. cfg.ReadOnly
// nil makes every command an update (the strategy is then Multi-Paxos).
func New(cfg protocols.Config) (*Replica, error) {
	if cfg.Env == nil {
		return nil, fmt.Errorf("%w: nil Env", protocols.ErrConfig)
	}
	r := &Replica{env: cfg.Env, readOnly: cfg.ReadOnly}
	p, err := paxos.New(cfg, false)
	if err != nil {
		return nil, err
	}
	r.inner = p
	return r, nil
}

// Submit serves a read locally if this replica has executed the log as
// far as the client has seen it (c.Seen) and hands every other command to
// Paxos.
func (r *Replica) Submit(c protocols.Command) {
	read := r.readOnly != nil && r.readOnly(c)
	local := read && r.inner.Executed() >= c.Seen
	failpoint.Inject("sequentialReadAnywhere", func() {
		// Planted bug: every read is served locally, also at a replica
		// behind the position the client saw (its own write, or a read
		// at another replica).
		local = read
	})
	if local {
		r.local++
		r.env.Execute(c)
		return
	}
	if read {
		r.logged++
	}
	c.Seen = 0
	r.inner.Submit(c)
}

// Position implements protocols.Positioner: the number of log slots this
// replica executed.
func (r *Replica) Position() uint64 { return r.inner.Executed() }

// ReadCounts implements protocols.ReadCounter: the reads this replica
// served locally and those it sent through the log.
func (r *Replica) ReadCounts() (local, logged int64) { return r.local, r.logged }

// Step hands a peer's message to Paxos.
func (r *Replica) Step(from protocols.NodeID, m protocols.Message) { r.inner.Step(from, m) }

// Tick advances Paxos's clock.
func (r *Replica) Tick() { r.inner.Tick() }

// Checkpoint implements protocols.Compactor: Paxos's checkpoint.
func (r *Replica) Checkpoint() []byte { return r.inner.Checkpoint() }

// Leader implements protocols.LeaderReporter: the Paxos leader.
func (r *Replica) Leader() protocols.NodeID { return r.inner.Leader() }
