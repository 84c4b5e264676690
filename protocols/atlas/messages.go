package atlas

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/depgraph"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// Dot names a command instance: its initial coordinator and that
// coordinator's counter (depgraph.Dot).
type Dot = depgraph.Dot

// MCollect is sent by the initial coordinator of Dot to every replica: Cmd is
// the payload, Past the conflicting commands the coordinator knows, Quorum
// the fast quorum. Members of Quorum answer with MCollectAck; the others only
// keep the payload.
type MCollect struct {
	Dot    Dot
	Cmd    protocols.Command
	Past   []Dot
	Quorum []protocols.NodeID
}

// MCollectAck is a fast-quorum member's report: the commands conflicting
// with Dot that it knows (Past included).
type MCollectAck struct {
	Dot  Dot
	Deps []Dot
}

// MConsensus is the Flexible-Paxos phase 2a of Ballot for Dot: accept
// (Cmd or, with Nop, a no-op; Deps).
type MConsensus struct {
	Dot    Dot
	Ballot ballot.Ballot
	Nop    bool
	Cmd    protocols.Command
	Deps   []Dot
}

// MConsensusAck says the sender durably accepted Ballot's proposal for Dot.
type MConsensusAck struct {
	Dot    Dot
	Ballot ballot.Ballot
}

// MCommit says Dot is committed with (Cmd or a no-op, Deps).
type MCommit struct {
	Dot  Dot
	Nop  bool
	Cmd  protocols.Command
	Deps []Dot
}

// MRec asks every replica to join recovery Ballot for Dot. HasCmd says
// whether the recoverer holds the payload Cmd.
type MRec struct {
	Dot    Dot
	Ballot ballot.Ballot
	HasCmd bool
	Cmd    protocols.Command
}

// MRecAck is a replica's answer to MRec: what it durably holds for Dot.
// HasCmd/Cmd is the payload it knows; Collected says Deps are dependencies
// it computed itself (at MCollect or MRec); Quorum is the fast quorum it saw
// in MCollect (empty if none); ABal is the ballot of the proposal it accepted
// (zero if none), whose value is (Nop or Cmd, Deps); Amnesiac is reserved
// (always false; see the package doc) and, if set by the initial
// coordinator, makes the recoverer treat it as absent.
type MRecAck struct {
	Dot       Dot
	Ballot    ballot.Ballot
	HasCmd    bool
	Cmd       protocols.Command
	Collected bool
	Deps      []Dot
	Quorum    []protocols.NodeID
	ABal      ballot.Ballot
	Nop       bool
	Amnesiac  bool
}

// MExecuted carries the sender's executed frontier for garbage collection:
// Prefix[i] is the largest s such that every dot (Peers[i], 1..s) has been
// executed (or passed as a no-op) by the sender.
type MExecuted struct {
	Prefix []uint64
}

const (
	tagCollect byte = iota + 1
	tagCollectAck
	tagConsensus
	tagConsensusAck
	tagCommit
	tagRec
	tagRecAck
	tagExecuted
)

// dotMinSize is the smallest encoding of a Dot, so that a forged count
// cannot make a decoder allocate more than the frame allows.
const dotMinSize = 2

// Codec encodes the Atlas messages: one tag byte, then the fields as
// varints and length-prefixed strings (package wire).
type Codec struct{}

func appendDot(b []byte, d Dot) []byte {
	b = wire.AppendUvarint(b, uint64(d.Node))
	return wire.AppendUvarint(b, d.Seq)
}

func readDot(r *wire.Reader) Dot {
	return Dot{Node: r.NodeID(), Seq: r.Uvarint()}
}

func appendDots(b []byte, ds []Dot) []byte {
	b = wire.AppendUvarint(b, uint64(len(ds)))
	for _, d := range ds {
		b = appendDot(b, d)
	}
	return b
}

func readDots(r *wire.Reader) []Dot {
	n := r.Count(dotMinSize)
	if n == 0 {
		return nil
	}
	ds := make([]Dot, n)
	for i := range ds {
		ds[i] = readDot(r)
	}
	return ds
}

func appendNodes(b []byte, ns []protocols.NodeID) []byte {
	b = wire.AppendUvarint(b, uint64(len(ns)))
	for _, n := range ns {
		b = wire.AppendUvarint(b, uint64(n))
	}
	return b
}

func readNodes(r *wire.Reader) []protocols.NodeID {
	n := r.Count(1)
	if n == 0 {
		return nil
	}
	ns := make([]protocols.NodeID, n)
	for i := range ns {
		ns[i] = r.NodeID()
	}
	return ns
}

func appendU64s(b []byte, vs []uint64) []byte {
	b = wire.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = wire.AppendUvarint(b, v)
	}
	return b
}

func readU64s(r *wire.Reader) []uint64 {
	n := r.Count(1)
	if n == 0 {
		return nil
	}
	vs := make([]uint64, n)
	for i := range vs {
		vs[i] = r.Uvarint()
	}
	return vs
}

// Marshal implements protocols.Codec.
func (Codec) Marshal(b []byte, m protocols.Message) ([]byte, error) {
	switch m := m.(type) {
	case MCollect:
		b = appendDot(append(b, tagCollect), m.Dot)
		b = wire.AppendCommand(b, m.Cmd)
		b = appendDots(b, m.Past)
		return appendNodes(b, m.Quorum), nil
	case MCollectAck:
		b = appendDot(append(b, tagCollectAck), m.Dot)
		return appendDots(b, m.Deps), nil
	case MConsensus:
		b = appendDot(append(b, tagConsensus), m.Dot)
		b = wire.AppendBallot(b, m.Ballot)
		b = wire.AppendBool(b, m.Nop)
		b = wire.AppendCommand(b, m.Cmd)
		return appendDots(b, m.Deps), nil
	case MConsensusAck:
		b = appendDot(append(b, tagConsensusAck), m.Dot)
		return wire.AppendBallot(b, m.Ballot), nil
	case MCommit:
		b = appendDot(append(b, tagCommit), m.Dot)
		b = wire.AppendBool(b, m.Nop)
		b = wire.AppendCommand(b, m.Cmd)
		return appendDots(b, m.Deps), nil
	case MRec:
		b = appendDot(append(b, tagRec), m.Dot)
		b = wire.AppendBallot(b, m.Ballot)
		b = wire.AppendBool(b, m.HasCmd)
		return wire.AppendCommand(b, m.Cmd), nil
	case MRecAck:
		b = appendDot(append(b, tagRecAck), m.Dot)
		b = wire.AppendBallot(b, m.Ballot)
		b = wire.AppendBool(b, m.HasCmd)
		b = wire.AppendCommand(b, m.Cmd)
		b = wire.AppendBool(b, m.Collected)
		b = appendDots(b, m.Deps)
		b = appendNodes(b, m.Quorum)
		b = wire.AppendBallot(b, m.ABal)
		b = wire.AppendBool(b, m.Nop)
		return wire.AppendBool(b, m.Amnesiac), nil
	case MExecuted:
		return appendU64s(append(b, tagExecuted), m.Prefix), nil
	}
	return b, fmt.Errorf("atlas: cannot encode message of type %T", m)
}

// Unmarshal implements protocols.Codec.
func (Codec) Unmarshal(b []byte) (protocols.Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("atlas: %w: empty message", wire.ErrMalformed)
	}
	r := wire.NewReader(b[1:])
	var m protocols.Message
	switch b[0] {
	case tagCollect:
		m = MCollect{Dot: readDot(r), Cmd: r.Command(), Past: readDots(r), Quorum: readNodes(r)}
	case tagCollectAck:
		m = MCollectAck{Dot: readDot(r), Deps: readDots(r)}
	case tagConsensus:
		m = MConsensus{Dot: readDot(r), Ballot: r.Ballot(), Nop: r.Bool(), Cmd: r.Command(), Deps: readDots(r)}
	case tagConsensusAck:
		m = MConsensusAck{Dot: readDot(r), Ballot: r.Ballot()}
	case tagCommit:
		m = MCommit{Dot: readDot(r), Nop: r.Bool(), Cmd: r.Command(), Deps: readDots(r)}
	case tagRec:
		m = MRec{Dot: readDot(r), Ballot: r.Ballot(), HasCmd: r.Bool(), Cmd: r.Command()}
	case tagRecAck:
		m = MRecAck{Dot: readDot(r), Ballot: r.Ballot(), HasCmd: r.Bool(), Cmd: r.Command(),
			Collected: r.Bool(), Deps: readDots(r), Quorum: readNodes(r), ABal: r.Ballot(),
			Nop: r.Bool(), Amnesiac: r.Bool()}
	case tagExecuted:
		m = MExecuted{Prefix: readU64s(r)}
	default:
		return nil, fmt.Errorf("atlas: %w: unknown tag %d", wire.ErrMalformed, b[0])
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("atlas: decode tag %d: %w", b[0], err)
	}
	return m, nil
}
