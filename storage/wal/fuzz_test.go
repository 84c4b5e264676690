package wal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/stretchr/testify/require"
)

// fuzzSeeds are segment files: valid, torn, zero-filled and damaged.
func fuzzSeeds() [][]byte {
	valid := segmentHeader(1)
	for i := 1; i <= 4; i++ {
		valid = appendRecord(valid, rec(i))
	}
	zeroTail := append(append([]byte{}, valid...), make([]byte, 16)...)
	badMiddle := append([]byte{}, valid...)
	badMiddle[segHeaderSize+recHeaderSize+2] ^= 1
	hugeLen := append(segmentHeader(1), 0xff, 0xff, 0xff, 0x03, 0, 0, 0, 0)
	return [][]byte{
		nil,
		segmentHeader(1)[:9],
		segmentHeader(1),
		valid,
		valid[:len(valid)-5],
		zeroTail,
		badMiddle,
		hugeLen,
		appendRecord(segmentHeader(1), nil),
	}
}

// TestFuzzSeeds keeps testdata/fuzz/FuzzOpen in step with fuzzSeeds.
func TestFuzzSeeds(t *testing.T) {
	fuzzseed.Check(t, "FuzzOpen", fuzzSeeds())
}

// FuzzOpen feeds arbitrary bytes as the only segment file. Open must not
// panic: it either fails with ErrCorrupt or recovers records that, after a
// further Append, read back the same way.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, segmentName(1))
		require.NoError(t, os.WriteFile(path, data, 0o644))
		lg, _ := testLogger()
		l, r, err := Open(Options{Dir: dir, NoSync: true, Logger: lg})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open failed with a non-corruption error: %v", err)
			}
			return
		}
		got := append([][]byte{}, r.Records...)
		require.Equal(t, uint64(len(got)), l.LastIndex())
		last, err := l.Append([]byte("next"))
		require.NoError(t, err)
		require.Equal(t, uint64(len(got)+1), last)
		require.NoError(t, l.Close())

		l, r, err = Open(Options{Dir: dir, NoSync: true, Logger: lg})
		require.NoError(t, err)
		require.Equal(t, append(got, []byte("next")), r.Records)
		require.NoError(t, l.Close())
	})
}
