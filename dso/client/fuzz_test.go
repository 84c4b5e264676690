package client_test

import (
	"context"
	"encoding/binary"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/internal/fuzzseed"
)

// replyStreamSeeds are the seeds of FuzzReplyStream: well-formed replies,
// several frames at once, the goodbye, and broken frames.
func replyStreamSeeds() [][]byte {
	ok := func(v any) []byte {
		b, err := wire.AppendOK(nil, 1, v)
		if err != nil {
			panic(err)
		}
		return b
	}
	cat := func(fs ...[]byte) []byte {
		var out []byte
		for _, f := range fs {
			out = append(out, f...)
		}
		return out
	}
	return [][]byte{
		ok(int64(42)),
		ok([]byte("a value")),
		wire.AppendError(nil, 1, wire.CodeUnknownMethod, "no such method"),
		cat(ok(int64(1)), ok(int64(2)), wire.AppendError(nil, 0, wire.CodeClosing, "closing")),
		wire.AppendError(nil, 0, wire.CodeClosing, "closing"),
		ok(int64(42))[:7],
		{0, 0, 0, 0},
		binary.BigEndian.AppendUint32(nil, 100<<20),
		binary.BigEndian.AppendUint32(nil, 1<<31),
		append(binary.BigEndian.AppendUint32(nil, 70<<10), make([]byte, 100)...),
		[]byte("HTTP/1.1 400 Bad Request\r\n\r\n"),
	}
}

// TestReplyStreamSeeds keeps testdata/fuzz/FuzzReplyStream in step with
// replyStreamSeeds.
func TestReplyStreamSeeds(t *testing.T) { fuzzseed.Check(t, "FuzzReplyStream", replyStreamSeeds()) }

// FuzzReplyStream answers a client's call with arbitrary bytes (the first
// frame's id, if there is room for one, made the call's) and then closes
// the connection. The client must not panic or hang: the call returns,
// and returns a value only if the first frame is a well-formed reply
// carrying that value.
func FuzzReplyStream(f *testing.F) {
	for _, s := range replyStreamSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		addr := dsoEndpoint(t, func(nc net.Conn, q wire.Request) bool {
			d := append([]byte(nil), data...)
			if len(d) >= 13 {
				binary.BigEndian.PutUint64(d[5:], q.ID)
			}
			nc.Write(d)
			return false
		})
		c, err := client.DialOptions(context.Background(), client.Options{Endpoints: []string{addr},
			NoDiscovery: true, ConnsPerNode: 1, RetryFor: 50 * time.Millisecond, MinBackoff: time.Millisecond})
		require.NoError(t, err)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		v, err := c.Call(ctx, dso.Ref{Type: dso.TypeAtomicLong, Key: "x"}, "get", nil, nil)
		require.NotErrorIs(t, err, dso.ErrCanceled, "the call hung")
		if err != nil {
			return
		}
		require.GreaterOrEqual(t, len(data), 4, "a value from no frame")
		n := int(binary.BigEndian.Uint32(data))
		require.LessOrEqual(t, 4+n, len(data), "a value from a truncated frame")
		r, derr := wire.DecodeReply(data[4 : 4+n])
		require.NoError(t, derr, "a value from a malformed frame")
		require.True(t, r.OK, "a value from an error reply")
		require.True(t, reflect.DeepEqual(r.Value, v), "got %#v, the frame holds %#v", v, r.Value)
	})
}
