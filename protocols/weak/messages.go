package weak

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// Stamp orders updates for last-writer-wins: Lamport time, then origin.
type Stamp struct {
	Time uint64
	Node protocols.NodeID
}

// After reports whether s is arbitrated after t.
func (s Stamp) After(t Stamp) bool {
	if s.Time != t.Time {
		return s.Time > t.Time
	}
	return s.Node > t.Node
}

// Update is one update, as broadcast, sent by anti-entropy and persisted:
// the Seq-th update of Origin, stamped Stamp.
type Update struct {
	Origin protocols.NodeID
	Seq    uint64
	Stamp  Stamp
	Cmd    protocols.Command
}

// Digest tells a peer, per origin (in the order of Config.Peers), how many
// of that origin's updates the sender has delivered.
type Digest struct {
	Have []uint64
}

const (
	tagUpdate byte = 1
	tagDigest byte = 2
)

// Codec encodes the messages of the weak strategy.
type Codec struct{}

// Marshal implements protocols.Codec.
func (Codec) Marshal(b []byte, m protocols.Message) ([]byte, error) {
	switch m := m.(type) {
	case Update:
		return appendUpdate(append(b, tagUpdate), m), nil
	case Digest:
		b = append(b, tagDigest)
		b = wire.AppendUvarint(b, uint64(len(m.Have)))
		for _, h := range m.Have {
			b = wire.AppendUvarint(b, h)
		}
		return b, nil
	}
	return nil, fmt.Errorf("weak: cannot marshal %T", m)
}

func appendUpdate(b []byte, u Update) []byte {
	b = wire.AppendUvarint(b, uint64(u.Origin))
	b = wire.AppendUvarint(b, u.Seq)
	b = wire.AppendUvarint(b, u.Stamp.Time)
	b = wire.AppendUvarint(b, uint64(u.Stamp.Node))
	return wire.AppendCommand(b, u.Cmd)
}

func readUpdate(r *wire.Reader) Update {
	var u Update
	u.Origin = r.NodeID()
	u.Seq = r.Uvarint()
	u.Stamp.Time = r.Uvarint()
	u.Stamp.Node = r.NodeID()
	u.Cmd = r.Command()
	return u
}

// Unmarshal implements protocols.Codec.
func (Codec) Unmarshal(b []byte) (protocols.Message, error) {
	r := wire.NewReader(b)
	var m protocols.Message
	switch tag := r.Byte(); tag {
	case tagUpdate:
		m = readUpdate(r)
	case tagDigest:
		n := r.Count(1)
		have := make([]uint64, n)
		for i := range have {
			have[i] = r.Uvarint()
		}
		m = Digest{Have: have}
	default:
		if r.Err() == nil {
			return nil, fmt.Errorf("weak: unknown message tag %d", tag)
		}
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("weak: %w", err)
	}
	return m, nil
}

// encodeRecord is the durable record of a delivered update.
func encodeRecord(u Update) []byte { return appendUpdate(nil, u) }

// decodeRecord reads a record written by encodeRecord.
func decodeRecord(b []byte) (Update, error) {
	r := wire.NewReader(b)
	u := readUpdate(r)
	if err := r.Done(); err != nil {
		return Update{}, fmt.Errorf("weak: record: %w", err)
	}
	return u, nil
}
