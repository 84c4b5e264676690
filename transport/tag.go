package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/blossom-dso/blossom/protocols"
)

// Tagged is a message of one of several protocol instances that share a
// transport: Tag names the instance at the receiver (a replica group, for
// package runner) and Msg is that instance's message. Send a Tagged over a
// transport whose Codec is a TagCodec; the Handler receives Tagged values.
type Tagged struct {
	Tag uint32
	Msg protocols.Message
}

// TagCodec encodes Tagged messages for a transport shared by several
// instances of one protocol: the tag as an unsigned varint (at most 32 bits,
// in its shortest encoding), then Inner's encoding of Msg. Inner decodes
// every instance's messages; the receiver dispatches on the tag.
type TagCodec struct {
	// Inner is the protocol's codec.
	Inner protocols.Codec
}

var _ protocols.Codec = TagCodec{}

// ErrBadTag is wrapped by TagCodec's errors about the tag itself: a message
// that is not a Tagged, or a frame whose tag is missing, longer than 32
// bits or not in its shortest encoding.
var ErrBadTag = errors.New("transport: bad instance tag")

// Marshal implements protocols.Codec: it accepts only Tagged messages.
func (c TagCodec) Marshal(buf []byte, m protocols.Message) ([]byte, error) {
	t, ok := m.(Tagged)
	if !ok {
		return buf, fmt.Errorf("%w: %T is not a transport.Tagged", ErrBadTag, m)
	}
	return c.Inner.Marshal(binary.AppendUvarint(buf, uint64(t.Tag)), t.Msg)
}

// Unmarshal implements protocols.Codec: it reads the tag and hands the rest
// of b to Inner. It returns a Tagged.
func (c TagCodec) Unmarshal(b []byte) (protocols.Message, error) {
	tag, n := binary.Uvarint(b)
	switch {
	case n <= 0:
		return nil, fmt.Errorf("%w: no varint tag in %d bytes", ErrBadTag, len(b))
	case tag > math.MaxUint32:
		return nil, fmt.Errorf("%w: tag %d exceeds 32 bits", ErrBadTag, tag)
	case n != uvarintLen(tag):
		return nil, fmt.Errorf("%w: tag %d in %d bytes is not in its shortest encoding", ErrBadTag, tag, n)
	}
	m, err := c.Inner.Unmarshal(b[n:])
	if err != nil {
		return nil, fmt.Errorf("transport: instance %d: %w", tag, err)
	}
	return Tagged{Tag: uint32(tag), Msg: m}, nil
}

// uvarintLen is the length of v's shortest unsigned varint encoding.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
