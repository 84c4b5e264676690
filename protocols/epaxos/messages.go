package epaxos

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/depgraph"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// Dot names a command instance: its initial coordinator and that
// coordinator's sequence number (from 1).
type Dot = depgraph.Dot

// Phase is the phase of a command instance at one replica.
type Phase uint8

// The phases, in the order an instance moves through them.
const (
	Initial Phase = iota
	PreAccepted
	Accepted
	Committed
)

func (p Phase) String() string {
	switch p {
	case Initial:
		return "initial"
	case PreAccepted:
		return "preaccepted"
	case Accepted:
		return "accepted"
	case Committed:
		return "committed"
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// Value is what an instance holds: nothing yet (⊥, the zero Value), a
// client command, or Nop (an aborted instance).
type Value struct {
	Known bool
	Nop   bool
	Cmd   protocols.Command
}

// NopValue is the Nop value.
var NopValue = Value{Known: true, Nop: true}

// CmdValue wraps a client command.
func CmdValue(c protocols.Command) Value { return Value{Known: true, Cmd: c} }

// PreAccept is sent by the initial coordinator with its initial
// dependencies Deps.
type PreAccept struct {
	Dot  Dot
	Cmd  protocols.Command
	Deps []Dot
}

// PreAcceptOK reports the dependencies the sender computed.
type PreAcceptOK struct {
	Dot  Dot
	Deps []Dot
}

// Accept proposes (Val, Deps) at ballot Ballot (the slow path, or the
// outcome of a recovery).
type Accept struct {
	Ballot ballot.Ballot
	Dot    Dot
	Val    Value
	Deps   []Dot
}

// AcceptOK is the durable vote for Accept at Ballot.
type AcceptOK struct {
	Ballot ballot.Ballot
	Dot    Dot
}

// Commit announces the decided (Val, Deps), reached at Ballot.
type Commit struct {
	Ballot ballot.Ballot
	Dot    Dot
	Val    Value
	Deps   []Dot
}

// Recover asks for promises at Ballot and for the receivers' votes.
type Recover struct {
	Ballot ballot.Ballot
	Dot    Dot
}

// RecoverOK is the sender's promise for Ballot and its state: the vote
// ballot Abal (not the promise: that was the original EPaxos bug), phase,
// value, dependencies and the initial coordinator's dependencies.
type RecoverOK struct {
	Ballot   ballot.Ballot
	Dot      Dot
	Abal     ballot.Ballot
	Phase    Phase
	Val      Value
	Deps     []Dot
	InitDeps []Dot
}

// Nack tells a recovering or accepting process that the sender has joined
// the higher ballot Ballot for Dot.
type Nack struct {
	Ballot ballot.Ballot
	Dot    Dot
}

// Validate asks the recovery quorum for the conflicting commands that may
// have been ordered without seeing Dot, were it committed as (Cmd, Deps).
type Validate struct {
	Ballot ballot.Ballot
	Dot    Dot
	Cmd    protocols.Command
	Deps   []Dot
}

// Conflict is one entry of a ValidateOK: a conflicting instance and whether
// the sender has it committed.
type Conflict struct {
	Dot       Dot
	Committed bool
}

// ValidateOK answers Validate with the set I.
type ValidateOK struct {
	Ballot    ballot.Ballot
	Dot       Dot
	Conflicts []Conflict
}

// Waiting announces that a recovery of Dot waits on conflicting commands,
// with K = |Rmax|.
type Waiting struct {
	Dot Dot
	K   uint64
}

// Durable is a replica's note to itself: the commit of Dot it persisted is
// now durable (a self-send leaves only after every earlier record is
// durable), so the command may execute and answer its client.
type Durable struct {
	Dot Dot
}

// Heartbeat tells the peers the last sequence number Seq the sender used as
// an initial coordinator, so that a replica that missed some of its
// instances (every message about them lost, nothing depending on them)
// learns that they exist and recovers or learns them. Executed holds, for
// each replica in Config.Peers order, the sender's executed prefix of that
// replica's instances (depgraph ExecutedPrefix); replicas use it to tell
// which executed instances every replica has executed (see Compaction in
// the package doc). A receiver ignores an Executed of the wrong length.
type Heartbeat struct {
	Seq      uint64
	Executed []uint64
}

const (
	tagPreAccept byte = iota + 1
	tagPreAcceptOK
	tagAccept
	tagAcceptOK
	tagCommit
	tagRecover
	tagRecoverOK
	tagNack
	tagValidate
	tagValidateOK
	tagWaiting
	tagDurable
	tagHeartbeat
)

// Codec encodes the EPaxos* messages: one tag byte, then the fields with the
// primitives of package wire.
type Codec struct{}

func appendDot(b []byte, d Dot) []byte {
	b = wire.AppendUvarint(b, uint64(d.Node))
	return wire.AppendUvarint(b, d.Seq)
}

func readDot(r *wire.Reader) Dot { return Dot{Node: r.NodeID(), Seq: r.Uvarint()} }

// dotLen is the length of d encoded by appendDot.
func dotLen(d Dot) int { return wire.UvarintLen(uint64(d.Node)) + wire.UvarintLen(d.Seq) }

// dotsLen is the length of ds encoded by appendDots.
func dotsLen(ds []Dot) int {
	n := wire.UvarintLen(uint64(len(ds)))
	for _, d := range ds {
		n += dotLen(d)
	}
	return n
}

func appendDots(b []byte, ds []Dot) []byte {
	b = wire.AppendUvarint(b, uint64(len(ds)))
	for _, d := range ds {
		b = appendDot(b, d)
	}
	return b
}

func readDots(r *wire.Reader) []Dot {
	n := r.Count(2)
	if n == 0 {
		return nil
	}
	ds := make([]Dot, n)
	for i := range ds {
		ds[i] = readDot(r)
	}
	return ds
}

// valueLen is the length of v encoded by appendValue.
func valueLen(v Value) int {
	if !v.Known || v.Nop {
		return 1
	}
	return 1 + wire.CommandLen(v.Cmd)
}

func appendValue(b []byte, v Value) []byte {
	switch {
	case !v.Known:
		return append(b, 0)
	case v.Nop:
		return append(b, 2)
	}
	return wire.AppendCommand(append(b, 1), v.Cmd)
}

func readValue(r *wire.Reader, bad *bool) Value {
	switch r.Byte() {
	case 0:
		return Value{}
	case 1:
		return CmdValue(r.Command())
	case 2:
		return NopValue
	}
	*bad = true
	return Value{}
}

func readPhase(r *wire.Reader, bad *bool) Phase {
	p := Phase(r.Byte())
	if p > Committed {
		*bad = true
		return Initial
	}
	return p
}

// Marshal implements protocols.Codec.
func (Codec) Marshal(b []byte, m protocols.Message) ([]byte, error) {
	switch m := m.(type) {
	case PreAccept:
		b = appendDot(append(b, tagPreAccept), m.Dot)
		b = wire.AppendCommand(b, m.Cmd)
		return appendDots(b, m.Deps), nil
	case PreAcceptOK:
		b = appendDot(append(b, tagPreAcceptOK), m.Dot)
		return appendDots(b, m.Deps), nil
	case Accept:
		b = wire.AppendBallot(append(b, tagAccept), m.Ballot)
		b = appendDot(b, m.Dot)
		b = appendValue(b, m.Val)
		return appendDots(b, m.Deps), nil
	case AcceptOK:
		b = wire.AppendBallot(append(b, tagAcceptOK), m.Ballot)
		return appendDot(b, m.Dot), nil
	case Commit:
		b = wire.AppendBallot(append(b, tagCommit), m.Ballot)
		b = appendDot(b, m.Dot)
		b = appendValue(b, m.Val)
		return appendDots(b, m.Deps), nil
	case Recover:
		b = wire.AppendBallot(append(b, tagRecover), m.Ballot)
		return appendDot(b, m.Dot), nil
	case RecoverOK:
		b = wire.AppendBallot(append(b, tagRecoverOK), m.Ballot)
		b = appendDot(b, m.Dot)
		b = wire.AppendBallot(b, m.Abal)
		b = append(b, byte(m.Phase))
		b = appendValue(b, m.Val)
		b = appendDots(b, m.Deps)
		return appendDots(b, m.InitDeps), nil
	case Nack:
		b = wire.AppendBallot(append(b, tagNack), m.Ballot)
		return appendDot(b, m.Dot), nil
	case Validate:
		b = wire.AppendBallot(append(b, tagValidate), m.Ballot)
		b = appendDot(b, m.Dot)
		b = wire.AppendCommand(b, m.Cmd)
		return appendDots(b, m.Deps), nil
	case ValidateOK:
		b = wire.AppendBallot(append(b, tagValidateOK), m.Ballot)
		b = appendDot(b, m.Dot)
		b = wire.AppendUvarint(b, uint64(len(m.Conflicts)))
		for _, c := range m.Conflicts {
			b = appendDot(b, c.Dot)
			b = wire.AppendBool(b, c.Committed)
		}
		return b, nil
	case Waiting:
		b = appendDot(append(b, tagWaiting), m.Dot)
		return wire.AppendUvarint(b, m.K), nil
	case Durable:
		return appendDot(append(b, tagDurable), m.Dot), nil
	case Heartbeat:
		b = wire.AppendUvarint(append(b, tagHeartbeat), m.Seq)
		b = wire.AppendUvarint(b, uint64(len(m.Executed)))
		for _, x := range m.Executed {
			b = wire.AppendUvarint(b, x)
		}
		return b, nil
	}
	return b, fmt.Errorf("epaxos: cannot encode message of type %T", m)
}

// Unmarshal implements protocols.Codec.
func (Codec) Unmarshal(b []byte) (protocols.Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("epaxos: %w: empty message", wire.ErrMalformed)
	}
	r := wire.NewReader(b[1:])
	var m protocols.Message
	bad := false
	switch b[0] {
	case tagPreAccept:
		m = PreAccept{Dot: readDot(r), Cmd: r.Command(), Deps: readDots(r)}
	case tagPreAcceptOK:
		m = PreAcceptOK{Dot: readDot(r), Deps: readDots(r)}
	case tagAccept:
		m = Accept{Ballot: r.Ballot(), Dot: readDot(r), Val: readValue(r, &bad), Deps: readDots(r)}
	case tagAcceptOK:
		m = AcceptOK{Ballot: r.Ballot(), Dot: readDot(r)}
	case tagCommit:
		m = Commit{Ballot: r.Ballot(), Dot: readDot(r), Val: readValue(r, &bad), Deps: readDots(r)}
	case tagRecover:
		m = Recover{Ballot: r.Ballot(), Dot: readDot(r)}
	case tagRecoverOK:
		m = RecoverOK{Ballot: r.Ballot(), Dot: readDot(r), Abal: r.Ballot(), Phase: readPhase(r, &bad),
			Val: readValue(r, &bad), Deps: readDots(r), InitDeps: readDots(r)}
	case tagNack:
		m = Nack{Ballot: r.Ballot(), Dot: readDot(r)}
	case tagValidate:
		m = Validate{Ballot: r.Ballot(), Dot: readDot(r), Cmd: r.Command(), Deps: readDots(r)}
	case tagValidateOK:
		v := ValidateOK{Ballot: r.Ballot(), Dot: readDot(r)}
		if n := r.Count(3); n > 0 {
			v.Conflicts = make([]Conflict, n)
			for i := range v.Conflicts {
				v.Conflicts[i] = Conflict{Dot: readDot(r), Committed: r.Bool()}
			}
		}
		m = v
	case tagWaiting:
		m = Waiting{Dot: readDot(r), K: r.Uvarint()}
	case tagDurable:
		m = Durable{Dot: readDot(r)}
	case tagHeartbeat:
		h := Heartbeat{Seq: r.Uvarint()}
		if n := r.Count(1); n > 0 {
			h.Executed = make([]uint64, n)
			for i := range h.Executed {
				h.Executed[i] = r.Uvarint()
			}
		}
		m = h
	default:
		return nil, fmt.Errorf("epaxos: %w: unknown tag %d", wire.ErrMalformed, b[0])
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("epaxos: decode tag %d: %w", b[0], err)
	}
	if bad {
		return nil, fmt.Errorf("epaxos: decode tag %d: %w: bad value or phase byte", b[0], wire.ErrMalformed)
	}
	return m, nil
}
