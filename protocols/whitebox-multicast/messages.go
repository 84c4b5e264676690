package wbcast

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// Multicast asks the leader of a destination group to order Cmd (the
// paper's MULTICAST; also the REACCEPT of a leader change and the
// retransmission of a stalled message).
type Multicast struct {
	Cmd protocols.Command
}

// Accept is the proposal of Group's leader at Ballot: Cmd gets the local
// timestamp LTS in Group. It goes to every member of every destination group.
type Accept struct {
	Group  protocols.GroupID
	Ballot ballot.Ballot
	LTS    mcast.TS
	Cmd    protocols.Command
}

// AcceptAck tells the leaders of the destination groups that the sender
// (of group Group) durably accepted ID with the ballots Bals (one per
// destination group, in increasing group order) and the global timestamp
// GTS, the max of the local timestamps.
type AcceptAck struct {
	ID    protocols.CommandID
	Group protocols.GroupID
	Bals  []ballot.Ballot
	GTS   mcast.TS
}

// Deliver tells a follower that Cmd is its group's Pos-th delivery (1-based),
// at global timestamp GTS with the group's local timestamp LTS. Ballot is
// the sender's.
type Deliver struct {
	Ballot ballot.Ballot
	Pos    uint64
	GTS    mcast.TS
	LTS    mcast.TS
	Cmd    protocols.Command
}

// Heartbeat is the leader's periodic liveness signal with its number of
// deliveries, so that a follower that missed some asks for them.
type Heartbeat struct {
	Ballot    ballot.Ballot
	Delivered uint64
}

// CatchUpReq asks the leader for the deliveries from position From on.
type CatchUpReq struct {
	From uint64
}

// NewLeader starts a leader change to Ballot. From is the candidate's number
// of deliveries: replies carry the deliveries after it.
type NewLeader struct {
	Ballot ballot.Ballot
	From   uint64
}

// Record is the state of one undelivered message that a process accepted:
// the command, per destination group (in increasing group order) the local
// timestamp and the ballot it was accepted from, and the global timestamp.
type Record struct {
	Cmd  protocols.Command
	LTS  []mcast.TS
	Bals []ballot.Ballot
	GTS  mcast.TS
}

// Delivered is one delivery of a group's sequence: the command, its global
// timestamp and the group's local timestamp for it.
type Delivered struct {
	Cmd protocols.Command
	GTS mcast.TS
	LTS mcast.TS
}

// NewLeaderAck is a member's state for the candidate of Ballot: the ballot
// whose leader state it last adopted, its clock, its deliveries after the
// candidate's From, and its accepted undelivered messages.
type NewLeaderAck struct {
	Ballot    ballot.Ballot
	ABallot   ballot.Ballot
	Clock     uint64
	Count     uint64 // the sender's number of deliveries
	Delivered []Delivered
	Records   []Record
}

// NewLeaderSync installs the merged state of the new leader of Ballot at a
// member (also sent to a member that fell behind a leader change): the
// leader's deliveries after position From, then its accepted records.
type NewLeaderSync struct {
	Ballot    ballot.Ballot
	Clock     uint64
	From      uint64
	Delivered []Delivered
	Records   []Record
}

// NewLeaderSyncAck confirms that the sender durably adopted Ballot's state.
type NewLeaderSyncAck struct {
	Ballot ballot.Ballot
}

// SyncReq asks the leader of Ballot for its state: the sender missed the
// leader change. From is the sender's number of deliveries.
type SyncReq struct {
	Ballot ballot.Ballot
	From   uint64
}

// Progress announces the sender's durable delivery progress to every other
// replica: Count deliveries, the last of them command ID at global
// timestamp GTS. Only replicas that compact their logs send it (see
// "Compaction" in the package doc); it tells the members of the sender's
// group which deliveries every member holds, and the other groups which
// messages a majority of the sender's group delivered.
type Progress struct {
	Count uint64
	GTS   mcast.TS
	ID    protocols.CommandID
}

const (
	tagMulticast byte = iota + 1
	tagAccept
	tagAcceptAck
	tagDeliver
	tagHeartbeat
	tagCatchUpReq
	tagNewLeader
	tagNewLeaderAck
	tagNewLeaderSync
	tagNewLeaderSyncAck
	tagSyncReq
	tagProgress
)

// Codec encodes the wbcast messages: one tag byte, then the fields as
// varints and length-prefixed strings (package wire).
type Codec struct{}

func appendBallots(b []byte, bs []ballot.Ballot) []byte {
	b = wire.AppendUvarint(b, uint64(len(bs)))
	for _, x := range bs {
		b = wire.AppendBallot(b, x)
	}
	return b
}

func readBallots(r *wire.Reader) []ballot.Ballot {
	n := r.Count(2)
	if n == 0 {
		return nil
	}
	out := make([]ballot.Ballot, n)
	for i := range out {
		out[i] = r.Ballot()
	}
	return out
}

func appendRecords(b []byte, rs []Record) []byte {
	b = wire.AppendUvarint(b, uint64(len(rs)))
	for _, x := range rs {
		b = appendRecord(b, x)
	}
	return b
}

func appendRecord(b []byte, x Record) []byte {
	b = wire.AppendCommand(b, x.Cmd)
	b = wire.AppendUvarint(b, uint64(len(x.LTS)))
	for _, t := range x.LTS {
		b = mcast.AppendTS(b, t)
	}
	b = appendBallots(b, x.Bals)
	return mcast.AppendTS(b, x.GTS)
}

func readRecords(r *wire.Reader) []Record {
	n := r.Count(8)
	if n == 0 {
		return nil
	}
	out := make([]Record, n)
	for i := range out {
		out[i] = readRecord(r)
	}
	return out
}

func readRecord(r *wire.Reader) Record {
	var x Record
	x.Cmd = r.Command()
	if k := r.Count(2); k > 0 {
		x.LTS = make([]mcast.TS, k)
		for j := range x.LTS {
			x.LTS[j] = mcast.ReadTS(r)
		}
	}
	x.Bals = readBallots(r)
	x.GTS = mcast.ReadTS(r)
	return x
}

// Marshal implements protocols.Codec.
func (Codec) Marshal(b []byte, m protocols.Message) ([]byte, error) {
	switch m := m.(type) {
	case Multicast:
		return wire.AppendCommand(append(b, tagMulticast), m.Cmd), nil
	case Accept:
		b = wire.AppendUvarint(append(b, tagAccept), uint64(m.Group))
		b = wire.AppendBallot(b, m.Ballot)
		b = mcast.AppendTS(b, m.LTS)
		return wire.AppendCommand(b, m.Cmd), nil
	case AcceptAck:
		b = wire.AppendCommandID(append(b, tagAcceptAck), m.ID)
		b = wire.AppendUvarint(b, uint64(m.Group))
		b = appendBallots(b, m.Bals)
		return mcast.AppendTS(b, m.GTS), nil
	case Deliver:
		b = wire.AppendBallot(append(b, tagDeliver), m.Ballot)
		b = wire.AppendUvarint(b, m.Pos)
		b = mcast.AppendTS(b, m.GTS)
		b = mcast.AppendTS(b, m.LTS)
		return wire.AppendCommand(b, m.Cmd), nil
	case Heartbeat:
		b = wire.AppendBallot(append(b, tagHeartbeat), m.Ballot)
		return wire.AppendUvarint(b, m.Delivered), nil
	case CatchUpReq:
		return wire.AppendUvarint(append(b, tagCatchUpReq), m.From), nil
	case NewLeader:
		b = wire.AppendBallot(append(b, tagNewLeader), m.Ballot)
		return wire.AppendUvarint(b, m.From), nil
	case NewLeaderAck:
		b = wire.AppendBallot(append(b, tagNewLeaderAck), m.Ballot)
		b = wire.AppendBallot(b, m.ABallot)
		b = wire.AppendUvarint(b, m.Clock)
		b = wire.AppendUvarint(b, m.Count)
		b = appendDelivered(b, m.Delivered)
		return appendRecords(b, m.Records), nil
	case NewLeaderSync:
		b = wire.AppendBallot(append(b, tagNewLeaderSync), m.Ballot)
		b = wire.AppendUvarint(b, m.Clock)
		b = wire.AppendUvarint(b, m.From)
		b = appendDelivered(b, m.Delivered)
		return appendRecords(b, m.Records), nil
	case NewLeaderSyncAck:
		return wire.AppendBallot(append(b, tagNewLeaderSyncAck), m.Ballot), nil
	case SyncReq:
		return wire.AppendUvarint(wire.AppendBallot(append(b, tagSyncReq), m.Ballot), m.From), nil
	case Progress:
		b = wire.AppendUvarint(append(b, tagProgress), m.Count)
		return wire.AppendCommandID(mcast.AppendTS(b, m.GTS), m.ID), nil
	}
	return b, fmt.Errorf("wbcast: marshal: unknown message type %T", m)
}

// Unmarshal implements protocols.Codec.
func (Codec) Unmarshal(b []byte) (protocols.Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("wbcast: unmarshal: empty message")
	}
	r := wire.NewReader(b[1:])
	var m protocols.Message
	switch b[0] {
	case tagMulticast:
		m = Multicast{Cmd: r.Command()}
	case tagAccept:
		g := readGroup(r)
		m = Accept{Group: g, Ballot: r.Ballot(), LTS: mcast.ReadTS(r), Cmd: r.Command()}
	case tagAcceptAck:
		id := r.CommandID()
		g := readGroup(r)
		m = AcceptAck{ID: id, Group: g, Bals: readBallots(r), GTS: mcast.ReadTS(r)}
	case tagDeliver:
		m = Deliver{Ballot: r.Ballot(), Pos: r.Uvarint(), GTS: mcast.ReadTS(r), LTS: mcast.ReadTS(r), Cmd: r.Command()}
	case tagHeartbeat:
		m = Heartbeat{Ballot: r.Ballot(), Delivered: r.Uvarint()}
	case tagCatchUpReq:
		m = CatchUpReq{From: r.Uvarint()}
	case tagNewLeader:
		m = NewLeader{Ballot: r.Ballot(), From: r.Uvarint()}
	case tagNewLeaderAck:
		a := NewLeaderAck{Ballot: r.Ballot(), ABallot: r.Ballot(), Clock: r.Uvarint(), Count: r.Uvarint()}
		a.Delivered = readDelivered(r)
		a.Records = readRecords(r)
		m = a
	case tagNewLeaderSync:
		s := NewLeaderSync{Ballot: r.Ballot(), Clock: r.Uvarint(), From: r.Uvarint()}
		s.Delivered = readDelivered(r)
		s.Records = readRecords(r)
		m = s
	case tagNewLeaderSyncAck:
		m = NewLeaderSyncAck{Ballot: r.Ballot()}
	case tagSyncReq:
		m = SyncReq{Ballot: r.Ballot(), From: r.Uvarint()}
	case tagProgress:
		m = Progress{Count: r.Uvarint(), GTS: mcast.ReadTS(r), ID: r.CommandID()}
	default:
		return nil, fmt.Errorf("wbcast: unmarshal: unknown tag %d", b[0])
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("wbcast: unmarshal tag %d: %w", b[0], err)
	}
	return m, nil
}

func readGroup(r *wire.Reader) protocols.GroupID {
	return protocols.GroupID(r.NodeID())
}

func appendDelivered(b []byte, ds []Delivered) []byte {
	b = wire.AppendUvarint(b, uint64(len(ds)))
	for _, d := range ds {
		b = wire.AppendCommand(b, d.Cmd)
		b = mcast.AppendTS(b, d.GTS)
		b = mcast.AppendTS(b, d.LTS)
	}
	return b
}

func readDelivered(r *wire.Reader) []Delivered {
	n := r.Count(8)
	if n == 0 {
		return nil
	}
	out := make([]Delivered, n)
	for i := range out {
		out[i] = Delivered{Cmd: r.Command(), GTS: mcast.ReadTS(r), LTS: mcast.ReadTS(r)}
	}
	return out
}
