package server_test

import (
	"context"
	"runtime"
	"strconv"
	"testing"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/stretchr/testify/require"
)

// TestScalarMemoryPerObject creates 200,000 AtomicLongs (keys m0, m1, ...,
// as bench-dso's memory run names them) and bounds the live heap they add,
// per object, after a collection: a record of about 20 bytes (key, its
// length, incarnation, state) and a 4-byte index slot at least 55% full,
// plus the slack of growth. The table of 16-byte slots with a separate key
// arena that this layout replaced took 36 bytes per object here.
func TestScalarMemoryPerObject(t *testing.T) {
	const n = 200000
	if raceEnabled {
		t.Skip("a memory layout test; -race makes 200,000 calls take a minute")
	}
	s, err := server.New(server.Config{})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	_, err = s.Invoke(ctx, dso.Ref{Type: dso.TypeAtomicLong, Key: "warm"}, "set", []any{int64(1)}, nil)
	require.NoError(t, err)
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := live()
	args := []any{int64(0)}
	for i := range n {
		args[0] = int64(i)
		_, err := s.Invoke(ctx, dso.Ref{Type: dso.TypeAtomicLong, Key: "m" + strconv.Itoa(i)}, "set", args, nil)
		require.NoError(t, err)
	}
	per := float64(live()-before) / n
	t.Logf("live heap per AtomicLong: %.1f bytes", per)
	require.LessOrEqual(t, per, 32.0, "live heap per AtomicLong")
	runtime.KeepAlive(s)
}
