// Package sequential is the replication strategy of the sequential level of
// degradable objects (protocol "sequential", contract
// protocols.Sequential): updates are totally ordered by Multi-Paxos
// (package paxos, whose messages, records and checkpoints it uses
// unchanged) and reads are served from the local replica, which may lag
// behind the newest update.
//
// # Reads
//
// A read-only command (protocols.Config.ReadOnly) is executed locally, at
// once, when the same client's previous command (sequence number one
// less) was submitted to this replica and executed here in this
// incarnation: the client has then stayed at this replica, so the local
// state already reflects everything the client observed or wrote
// (read-your-writes), and it only grows (monotonic reads). Any other
// command — every update, and the first read of a client that arrives
// here from another replica, after a restart, or out of sequence — goes
// through the Paxos log. Such a read is ordered after every update that
// was chosen before it was proposed, which covers whatever the client
// observed elsewhere, so the local reads that follow cannot go back.
//
// Hence every history is sequentially consistent: the order of the Paxos
// log, with each client's local reads placed right after the log position
// its replica had executed, is one total order of the updates that
// explains every read in each client's program order
// (simtest.CheckSequential checks exactly that).
//
// The wrapper keeps, per client, the last sequence number submitted here
// and the last one executed here, in memory only: after a restart every
// client's first command goes through the log again.
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
	// submitted and executed hold, per client, the sequence number of the
	// client's last command submitted to this replica and of the last one
	// of those executed here.
	submitted map[uint64]uint64
	executed  map[uint64]uint64
}

// New builds a replica from cfg: Multi-Paxos with majority quorums for the
// updates, restarted from cfg.Checkpoint and cfg.Recovered. cfg.ReadOnly
// nil makes every command an update (the strategy is then Multi-Paxos).
func New(cfg protocols.Config) (*Replica, error) {
	if cfg.Env == nil {
		return nil, fmt.Errorf("%w: nil Env", protocols.ErrConfig)
	}
	r := &Replica{env: cfg.Env, readOnly: cfg.ReadOnly, submitted: map[uint64]uint64{}, executed: map[uint64]uint64{}}
	inner := cfg
	inner.Env = &env{Env: cfg.Env, r: r}
	p, err := paxos.New(inner, false)
	if err != nil {
		return nil, err
	}
	r.inner = p
	return r, nil
}

// Submit serves a read of a client that stayed at this replica locally and
// hands every other command to Paxos.
func (r *Replica) Submit(c protocols.Command) {
	local := r.readOnly != nil && r.readOnly(c) && c.ID.Seq > 0 && r.executed[c.ID.Client] == c.ID.Seq-1 && r.submitted[c.ID.Client] == c.ID.Seq-1
	failpoint.Inject("sequentialReadAnywhere", func() {
		// Planted bug: every read is served locally, also that of a
		// client that comes from another replica, whose state may lag
		// behind what the client saw or wrote there.
		local = r.readOnly != nil && r.readOnly(c)
	})
	r.submitted[c.ID.Client] = c.ID.Seq
	if local {
		r.executed[c.ID.Client] = c.ID.Seq
		r.env.Execute(c)
		return
	}
	r.inner.Submit(c)
}

// Step hands a peer's message to Paxos.
func (r *Replica) Step(from protocols.NodeID, m protocols.Message) { r.inner.Step(from, m) }

// Tick advances Paxos's clock.
func (r *Replica) Tick() { r.inner.Tick() }

// Checkpoint implements protocols.Compactor: Paxos's checkpoint.
func (r *Replica) Checkpoint() []byte { return r.inner.Checkpoint() }

// Leader implements protocols.LeaderReporter: the Paxos leader.
func (r *Replica) Leader() protocols.NodeID { return r.inner.Leader() }

// env is the Env Paxos sees: it notes which of this replica's clients'
// commands executed here and forwards everything, optional interfaces
// included, to the runtime's Env.
type env struct {
	protocols.Env
	r *Replica
}

func (e *env) Execute(c protocols.Command) {
	if e.r.submitted[c.ID.Client] == c.ID.Seq {
		e.r.executed[c.ID.Client] = c.ID.Seq
	}
	e.Env.Execute(c)
}

// ReportPath implements protocols.PathReporter.
func (e *env) ReportPath(fast bool) { protocols.ReportPath(e.Env, fast) }

// AlreadyExecuted implements protocols.RetryAnswerer.
func (e *env) AlreadyExecuted(c protocols.Command) { protocols.AlreadyExecuted(e.Env, c) }

// LastCheckpoint implements protocols.StateTransfer when the runtime's Env
// does; otherwise it reports no checkpoint.
func (e *env) LastCheckpoint() (checkpoint, state []byte, ok bool) {
	if st, can := e.Env.(protocols.StateTransfer); can {
		return st.LastCheckpoint()
	}
	return nil, nil, false
}

// InstallState implements protocols.StateTransfer when the runtime's Env
// does. The installed state may be ahead of what this replica's clients
// saw, never behind, so the local-read bookkeeping stays valid.
func (e *env) InstallState(state []byte) error {
	if st, can := e.Env.(protocols.StateTransfer); can {
		return st.InstallState(state)
	}
	return fmt.Errorf("sequential: the runtime does not transfer state")
}
