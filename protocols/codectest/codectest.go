// Package codectest holds the checks every protocol codec must pass,
// written once: a round trip of sample messages with every truncation and a
// trailing byte rejected, and the FuzzDecode target whose seeds are the
// encoded samples (checked in through internal/fuzzseed).
package codectest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
)

// Encode marshals each sample with c.
func Encode(t testing.TB, c protocols.Codec, samples []protocols.Message) [][]byte {
	t.Helper()
	out := make([][]byte, 0, len(samples))
	for _, m := range samples {
		b, err := c.Marshal(nil, m)
		require.NoError(t, err, "%T", m)
		out = append(out, b)
	}
	return out
}

// RoundTrip checks that every sample decodes to itself, that each strict
// prefix of its encoding (truncated input) is rejected, and that a trailing
// byte is rejected too.
func RoundTrip(t *testing.T, c protocols.Codec, samples []protocols.Message) {
	t.Helper()
	for i, b := range Encode(t, c, samples) {
		m := samples[i]
		got, err := c.Unmarshal(b)
		require.NoError(t, err, "%T", m)
		require.Equal(t, m, got)
		for n := 0; n < len(b); n++ {
			_, err := c.Unmarshal(b[:n])
			require.Error(t, err, "%T truncated to %d bytes", m, n)
		}
		_, err = c.Unmarshal(append(b, 0))
		require.Error(t, err, "%T with a trailing byte", m)
	}
}

// FuzzDecode is the body of a protocol's FuzzDecode target: Unmarshal never
// panics, and whatever it accepts re-encodes to bytes that decode to the
// same message. The encoded samples seed the corpus and must be checked in
// under testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F, c protocols.Codec, samples []protocols.Message) {
	seeds := Encode(f, c, samples)
	for _, b := range seeds {
		f.Add(b)
	}
	fuzzseed.Check(f, "FuzzDecode", seeds)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := c.Unmarshal(b)
		if err != nil {
			return
		}
		b2, err := c.Marshal(nil, m)
		require.NoError(t, err)
		m2, err := c.Unmarshal(b2)
		require.NoError(t, err)
		require.Equal(t, m, m2)
	})
}
