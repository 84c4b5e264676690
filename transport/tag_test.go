package transport

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/codectest"
	"github.com/blossom-dso/blossom/protocols/paxos"
)

// TestTagCodecRoundTrip checks the documented layout (uvarint tag, then the
// inner encoding), round trips with every truncation and a trailing byte
// rejected, and the refusals of a bad tag.
func TestTagCodecRoundTrip(t *testing.T) {
	inner := paxosCodec(t)
	c := TagCodec{Inner: inner}
	codectest.RoundTrip(t, c, []protocols.Message{
		Tagged{Tag: 0, Msg: tag(1, 1)},
		Tagged{Tag: 300, Msg: paxos.Forward{Cmds: []protocols.Command{{ID: protocols.CommandID{Client: 1, Seq: 2}, Keys: []string{"k"}, Payload: []byte("v")}}}},
		Tagged{Tag: math.MaxUint32, Msg: tag(2, 7)},
	})

	b, err := c.Marshal(nil, Tagged{Tag: 300, Msg: tag(1, 1)})
	require.NoError(t, err)
	body, err := inner.Marshal(nil, tag(1, 1))
	require.NoError(t, err)
	require.Equal(t, append([]byte{0xac, 0x02}, body...), b, "uvarint 300, then the inner encoding")

	_, err = c.Marshal(nil, tag(1, 1))
	require.ErrorIs(t, err, ErrBadTag, "an untagged message")
	for name, head := range map[string][]byte{
		"33-bit tag":   {0x80, 0x80, 0x80, 0x80, 0x10},
		"non-shortest": {0x80, 0x00},
	} {
		_, err := c.Unmarshal(append(head, body...))
		require.ErrorIs(t, err, ErrBadTag, name)
	}
	_, err = c.Unmarshal(nil)
	require.ErrorIs(t, err, ErrBadTag, "no tag")
	_, err = c.Unmarshal([]byte{0x80, 0x80})
	require.ErrorIs(t, err, ErrBadTag, "a cut varint")
}

// TestTaggedOverTCP sends tagged messages of two instances over one TCP
// connection: the receiver gets each with its tag.
func TestTaggedOverTCP(t *testing.T) {
	noLeaks(t)
	ctx := testCtx(t)
	nodes := cluster(t, 2, func(c *Config) { c.Codec = TagCodec{Inner: paxosCodec(t)} })
	for _, tg := range []uint32{0, 7} {
		sendUntil(ctx, t, nodes[0], 1, nodes[1].rec, 2, Tagged{Tag: tg, Msg: tag(1, int(tg))})
		sendUntil(ctx, t, nodes[1], 2, nodes[0].rec, 1, Tagged{Tag: tg, Msg: tag(2, int(tg))})
	}
	require.Zero(t, nodes[0].Stats().DecodeErrors)
	require.Zero(t, nodes[1].Stats().DecodeErrors)
	before := nodes[0].Stats().Dropped
	nodes[0].Send(2, tag(1, 99)) // not a Tagged: dropped at the sender
	require.Equal(t, before+1, nodes[0].Stats().Dropped)
}
