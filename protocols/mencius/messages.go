package mencius

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// Accept proposes Cmds (an empty batch is a no-op) for Slot at Ballot: the
// owner's own proposal at round 1, or a revoker's at a higher round.
type Accept struct {
	Ballot ballot.Ballot
	Slot   uint64
	Cmds   []protocols.Command
}

// AcceptOK tells every replica that the sender durably accepted Slot at
// Ballot. It piggybacks the sender's latest skip: the sender's own slots in
// [SkipFrom, SkipTo) are no-ops (an empty range carries nothing).
type AcceptOK struct {
	Ballot   ballot.Ballot
	Slot     uint64
	SkipFrom uint64
	SkipTo   uint64
}

// Skip tells every replica that the sender's own slots in [From, To) are
// no-ops. With an empty range it is a heartbeat.
type Skip struct {
	From, To uint64
}

// Prepare is a revoker's phase 1 for the slots of Owner in [From, To]: the
// receiver promises not to accept ballots below Ballot there and reports
// its votes.
type Prepare struct {
	Ballot   ballot.Ballot
	Owner    protocols.NodeID
	From, To uint64
}

// Promise answers a Prepare: the sender promised Ballot for the slots of
// Owner in [From, To] and voted as Accepted there.
type Promise struct {
	Ballot   ballot.Ballot
	Owner    protocols.NodeID
	From, To uint64
	Accepted []Accepted
}

// Accepted is one slot's vote (in a Promise) or chosen value (in a CatchUp,
// whose Ballot is zero).
type Accepted struct {
	Slot   uint64
	Ballot ballot.Ballot
	Cmds   []protocols.Command
}

// Nack tells a proposer that Slot is promised to a ballot above its own.
type Nack struct {
	Slot     uint64
	Promised ballot.Ballot
}

// CatchUpReq asks a peer for the chosen slots in [From, To]; the owner of
// an unused slot in that range skips it.
type CatchUpReq struct {
	From, To uint64
}

// CatchUp carries chosen values to a replica that asked for them.
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

const (
	tagAccept byte = iota + 1
	tagAcceptOK
	tagSkip
	tagPrepare
	tagPromise
	tagNack
	tagCatchUpReq
	tagCatchUp
	tagSnapshot
)

// Codec encodes the Mencius messages: one tag byte, then the fields as
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
	case Accept:
		b = wire.AppendBallot(append(b, tagAccept), m.Ballot)
		b = wire.AppendUvarint(b, m.Slot)
		return wire.AppendCommands(b, m.Cmds), nil
	case AcceptOK:
		b = wire.AppendBallot(append(b, tagAcceptOK), m.Ballot)
		b = wire.AppendUvarint(b, m.Slot)
		b = wire.AppendUvarint(b, m.SkipFrom)
		return wire.AppendUvarint(b, m.SkipTo), nil
	case Skip:
		b = wire.AppendUvarint(append(b, tagSkip), m.From)
		return wire.AppendUvarint(b, m.To), nil
	case Prepare:
		b = wire.AppendBallot(append(b, tagPrepare), m.Ballot)
		b = wire.AppendUvarint(b, uint64(m.Owner))
		b = wire.AppendUvarint(b, m.From)
		return wire.AppendUvarint(b, m.To), nil
	case Promise:
		b = wire.AppendBallot(append(b, tagPromise), m.Ballot)
		b = wire.AppendUvarint(b, uint64(m.Owner))
		b = wire.AppendUvarint(b, m.From)
		b = wire.AppendUvarint(b, m.To)
		return appendEntries(b, m.Accepted), nil
	case Nack:
		b = wire.AppendUvarint(append(b, tagNack), m.Slot)
		return wire.AppendBallot(b, m.Promised), nil
	case CatchUpReq:
		b = wire.AppendUvarint(append(b, tagCatchUpReq), m.From)
		return wire.AppendUvarint(b, m.To), nil
	case CatchUp:
		return appendEntries(append(b, tagCatchUp), m.Chosen), nil
	case Snapshot:
		b = wire.AppendBytes(append(b, tagSnapshot), m.Checkpoint)
		return wire.AppendBytes(b, m.State), nil
	}
	return b, fmt.Errorf("mencius: cannot encode message of type %T", m)
}

// Unmarshal implements protocols.Codec.
func (Codec) Unmarshal(b []byte) (protocols.Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("mencius: %w: empty message", wire.ErrMalformed)
	}
	r := wire.NewReader(b[1:])
	var m protocols.Message
	switch b[0] {
	case tagAccept:
		m = Accept{Ballot: r.Ballot(), Slot: r.Uvarint(), Cmds: r.Commands()}
	case tagAcceptOK:
		m = AcceptOK{Ballot: r.Ballot(), Slot: r.Uvarint(), SkipFrom: r.Uvarint(), SkipTo: r.Uvarint()}
	case tagSkip:
		m = Skip{From: r.Uvarint(), To: r.Uvarint()}
	case tagPrepare:
		m = Prepare{Ballot: r.Ballot(), Owner: r.NodeID(), From: r.Uvarint(), To: r.Uvarint()}
	case tagPromise:
		m = Promise{Ballot: r.Ballot(), Owner: r.NodeID(), From: r.Uvarint(), To: r.Uvarint(), Accepted: readEntries(r)}
	case tagNack:
		m = Nack{Slot: r.Uvarint(), Promised: r.Ballot()}
	case tagCatchUpReq:
		m = CatchUpReq{From: r.Uvarint(), To: r.Uvarint()}
	case tagCatchUp:
		m = CatchUp{Chosen: readEntries(r)}
	case tagSnapshot:
		m = Snapshot{Checkpoint: cloneBytes(r.Bytes()), State: cloneBytes(r.Bytes())}
	default:
		return nil, fmt.Errorf("mencius: %w: unknown tag %d", wire.ErrMalformed, b[0])
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("mencius: decode tag %d: %w", b[0], err)
	}
	return m, nil
}

// cloneBytes copies b out of the decoded buffer (nil if empty).
func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
