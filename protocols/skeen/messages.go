package skeen

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/protocols/paxos"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// Multicast asks the members of a destination group to order Cmd.
type Multicast struct {
	Cmd protocols.Command
}

// Stamp tells the members of another destination group of Cmd that Group
// agreed (through its Paxos log) on the local timestamp LTS for it. A
// receiver whose log already fixed the global timestamp answers a Stamp with
// its own, marked Reply, which is never answered.
type Stamp struct {
	Group protocols.GroupID
	LTS   mcast.TS
	Cmd   protocols.Command
	Reply bool
}

// Pax carries a message of the group's embedded Paxos instance.
type Pax struct {
	Inner protocols.Message
}

const (
	tagMulticast byte = iota + 1
	tagStamp
	tagPax
)

// Codec encodes the Skeen messages; Paxos messages travel inside Pax,
// encoded by paxos.Codec.
type Codec struct{}

// Marshal implements protocols.Codec.
func (Codec) Marshal(b []byte, m protocols.Message) ([]byte, error) {
	switch m := m.(type) {
	case Multicast:
		return wire.AppendCommand(append(b, tagMulticast), m.Cmd), nil
	case Stamp:
		b = wire.AppendUvarint(append(b, tagStamp), uint64(m.Group))
		b = mcast.AppendTS(b, m.LTS)
		b = wire.AppendCommand(b, m.Cmd)
		return wire.AppendBool(b, m.Reply), nil
	case Pax:
		inner, err := paxos.Codec{}.Marshal(nil, m.Inner)
		if err != nil {
			return b, fmt.Errorf("skeen: marshal: %w", err)
		}
		return wire.AppendBytes(append(b, tagPax), inner), nil
	}
	return b, fmt.Errorf("skeen: marshal: unknown message type %T", m)
}

// Unmarshal implements protocols.Codec.
func (Codec) Unmarshal(b []byte) (protocols.Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("skeen: unmarshal: empty message")
	}
	r := wire.NewReader(b[1:])
	var m protocols.Message
	switch b[0] {
	case tagMulticast:
		m = Multicast{Cmd: r.Command()}
	case tagStamp:
		g := protocols.GroupID(r.NodeID())
		m = Stamp{Group: g, LTS: mcast.ReadTS(r), Cmd: r.Command(), Reply: r.Bool()}
	case tagPax:
		raw := r.Bytes()
		if r.Err() == nil {
			inner, err := paxos.Codec{}.Unmarshal(raw)
			if err != nil {
				return nil, fmt.Errorf("skeen: unmarshal: %w", err)
			}
			m = Pax{Inner: inner}
		}
	default:
		return nil, fmt.Errorf("skeen: unmarshal: unknown tag %d", b[0])
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("skeen: unmarshal tag %d: %w", b[0], err)
	}
	return m, nil
}

// step is one entry of a group's Paxos log: From's local timestamp LTS for
// Cmd (From is the own group for a bare proposal; LTS is then ignored).
type step struct {
	From protocols.GroupID
	LTS  mcast.TS
	Cmd  protocols.Command
}

func encodeStep(s step) []byte {
	b := wire.AppendUvarint(nil, uint64(s.From))
	b = mcast.AppendTS(b, s.LTS)
	return wire.AppendCommand(b, s.Cmd)
}

func decodeStep(b []byte) (step, error) {
	r := wire.NewReader(b)
	s := step{From: protocols.GroupID(r.NodeID())}
	s.LTS = mcast.ReadTS(r)
	s.Cmd = r.Command()
	return s, r.Done()
}
