package transport

import (
	"bytes"
	"encoding/binary"
	"io"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHelloRoundTrip(t *testing.T) {
	h := hello{cluster: "prod-eu", from: 3, to: 7}
	b := appendHello(nil, h)
	require.Equal(t, rawHello("prod-eu", 3, 7), b, "matches the documented layout")
	got, err := readHello(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, h, got)
	for i := range len(b) {
		_, err := readHello(bytes.NewReader(b[:i]))
		require.Error(t, err, "truncated at %d", i)
	}
}

func TestReplyRoundTrip(t *testing.T) {
	require.NoError(t, readReply(bytes.NewReader(appendReply(nil, ""))))
	long := string(bytes.Repeat([]byte("x"), 300))
	err := readReply(bytes.NewReader(appendReply(nil, long)))
	var re refusedError
	require.ErrorAs(t, err, &re)
	require.Equal(t, long[:maxReasonLen], re.reason)
	require.ErrorIs(t, readReply(bytes.NewReader([]byte("HTTP/1.1 400"))), errBadMagic)
}

func TestReadFrame(t *testing.T) {
	var stream []byte
	stream = append(stream, rawFrame([]byte("abc"))...)
	stream = append(stream, rawFrame(nil)...) // keepalive
	big := bytes.Repeat([]byte{7}, 3*readChunk+5)
	stream = append(stream, rawFrame(big)...)
	r := bytes.NewReader(stream)
	b, err := readFrame(r, 1<<20)
	require.NoError(t, err)
	require.Equal(t, []byte("abc"), b)
	b, err = readFrame(r, 1<<20)
	require.NoError(t, err)
	require.Nil(t, b)
	b, err = readFrame(r, 1<<20)
	require.NoError(t, err)
	require.Equal(t, big, b)
	_, err = readFrame(r, 1<<20)
	require.ErrorIs(t, err, io.EOF)

	_, err = readFrame(bytes.NewReader(rawFrame(make([]byte, 11))), 10)
	require.ErrorAs(t, err, new(frameTooLargeError))
}

// A header that promises a large body costs memory only for the bytes that
// really arrive.
func TestReadFrameDoesNotTrustTheLength(t *testing.T) {
	const maxFrame = 256 << 20
	lie := binary.BigEndian.AppendUint32(nil, maxFrame)
	lie = append(lie, make([]byte, 100)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readFrame(bytes.NewReader(lie), maxFrame)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4*readChunk))
}
