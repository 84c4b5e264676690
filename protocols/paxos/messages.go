package paxos

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// Prepare is phase 1a: a candidate asks for promises not to accept ballots
// below Ballot, and for every value accepted at slots From and above.
type Prepare struct {
	Ballot ballot.Ballot
	From   uint64
}

// Promise is phase 1b: the sender promised Ballot and reports what it has
// accepted at slots From and above.
type Promise struct {
	Ballot   ballot.Ballot
	From     uint64
	Accepted []Accepted
}

// Accepted is one accepted log entry reported in a Promise.
type Accepted struct {
	Slot   uint64
	Ballot ballot.Ballot
	Cmds   []protocols.Command
}

// Nack tells a proposer that its ballot is below the sender's promise.
type Nack struct {
	Promised ballot.Ballot
}

// Accept is phase 2a: the leader of Ballot proposes Cmds (an empty batch is a
// no-op) for Slot. Commit piggybacks the leader's commit index.
type Accept struct {
	Ballot ballot.Ballot
	Slot   uint64
	Cmds   []protocols.Command
	Commit uint64
}

// AcceptOK is phase 2b: the sender durably accepted Slot at Ballot.
type AcceptOK struct {
	Ballot ballot.Ballot
	Slot   uint64
}

// Commit is the leader's commit notification and heartbeat: every slot up to
// Commit is chosen, and a slot the receiver accepted at Ballot holds the
// chosen value.
type Commit struct {
	Ballot ballot.Ballot
	Commit uint64
}

// CatchUpReq asks the leader for the chosen values of slots From and above.
type CatchUpReq struct {
	From uint64
}

// CatchUp carries chosen values to a lagging replica.
type CatchUp struct {
	Chosen []Accepted
}

// Snapshot brings a replica that asked for compacted slots (a CatchUpReq
// or a Prepare at or below the sender's compaction point) up to date by
// state transfer: Checkpoint is the sender's newest checkpoint record (see
// the package doc) and State the runtime's state machine and sessions at
// the same point (protocols.StateTransfer). The receiver takes from the
// record only its executed prefix, none of the sender's promises or votes.
type Snapshot struct {
	Checkpoint []byte
	State      []byte
}

// Forward carries client commands from the replica that received them to
// the leader.
type Forward struct {
	Cmds []protocols.Command
}

const (
	tagPrepare byte = iota + 1
	tagPromise
	tagNack
	tagAccept
	tagAcceptOK
	tagCommit
	tagCatchUpReq
	tagCatchUp
	tagForward
	tagSnapshot
)

// Codec encodes the Paxos messages: one tag byte, then the fields as
// varints and length-prefixed strings (package wire).
type Codec struct{}

func appendEntries(b []byte, es []Accepted) []byte {
	b = wire.AppendUvarint(b, uint64(len(es)))
	for _, e := range es {
		b = wire.AppendUvarint(b, e.Slot)
		b = wire.AppendBallot(b, e.Ballot)
		b = wire.AppendCommands(b, e.Cmds)
	}
	return b
}

func readEntries(r *wire.Reader) []Accepted {
	n := r.Count(4)
	if n == 0 {
		return nil
	}
	es := make([]Accepted, n)
	for i := range es {
		es[i] = Accepted{Slot: r.Uvarint(), Ballot: r.Ballot(), Cmds: r.Commands()}
	}
	return es
}

// Marshal implements protocols.Codec.
func (Codec) Marshal(b []byte, m protocols.Message) ([]byte, error) {
	switch m := m.(type) {
	case Prepare:
		b = append(b, tagPrepare)
		b = wire.AppendBallot(b, m.Ballot)
		return wire.AppendUvarint(b, m.From), nil
	case Promise:
		b = append(b, tagPromise)
		b = wire.AppendBallot(b, m.Ballot)
		b = wire.AppendUvarint(b, m.From)
		return appendEntries(b, m.Accepted), nil
	case Nack:
		return wire.AppendBallot(append(b, tagNack), m.Promised), nil
	case Accept:
		b = append(b, tagAccept)
		b = wire.AppendBallot(b, m.Ballot)
		b = wire.AppendUvarint(b, m.Slot)
		b = wire.AppendCommands(b, m.Cmds)
		return wire.AppendUvarint(b, m.Commit), nil
	case AcceptOK:
		b = append(b, tagAcceptOK)
		b = wire.AppendBallot(b, m.Ballot)
		return wire.AppendUvarint(b, m.Slot), nil
	case Commit:
		b = append(b, tagCommit)
		b = wire.AppendBallot(b, m.Ballot)
		return wire.AppendUvarint(b, m.Commit), nil
	case CatchUpReq:
		return wire.AppendUvarint(append(b, tagCatchUpReq), m.From), nil
	case CatchUp:
		return appendEntries(append(b, tagCatchUp), m.Chosen), nil
	case Forward:
		return wire.AppendCommands(append(b, tagForward), m.Cmds), nil
	case Snapshot:
		b = wire.AppendBytes(append(b, tagSnapshot), m.Checkpoint)
		return wire.AppendBytes(b, m.State), nil
	}
	return b, fmt.Errorf("paxos: cannot encode message of type %T", m)
}

// Unmarshal implements protocols.Codec.
func (Codec) Unmarshal(b []byte) (protocols.Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("paxos: %w: empty message", wire.ErrMalformed)
	}
	r := wire.NewReader(b[1:])
	var m protocols.Message
	switch b[0] {
	case tagPrepare:
		m = Prepare{Ballot: r.Ballot(), From: r.Uvarint()}
	case tagPromise:
		m = Promise{Ballot: r.Ballot(), From: r.Uvarint(), Accepted: readEntries(r)}
	case tagNack:
		m = Nack{Promised: r.Ballot()}
	case tagAccept:
		m = Accept{Ballot: r.Ballot(), Slot: r.Uvarint(), Cmds: r.Commands(), Commit: r.Uvarint()}
	case tagAcceptOK:
		m = AcceptOK{Ballot: r.Ballot(), Slot: r.Uvarint()}
	case tagCommit:
		m = Commit{Ballot: r.Ballot(), Commit: r.Uvarint()}
	case tagCatchUpReq:
		m = CatchUpReq{From: r.Uvarint()}
	case tagCatchUp:
		m = CatchUp{Chosen: readEntries(r)}
	case tagForward:
		m = Forward{Cmds: r.Commands()}
	case tagSnapshot:
		// The byte strings are copied: the receiver keeps them beyond the
		// frame they arrived in.
		m = Snapshot{Checkpoint: cloneBytes(r.Bytes()), State: cloneBytes(r.Bytes())}
	default:
		return nil, fmt.Errorf("paxos: %w: unknown tag %d", wire.ErrMalformed, b[0])
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("paxos: decode tag %d: %w", b[0], err)
	}
	return m, nil
}

// cloneBytes copies b; an empty b is nil.
func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
