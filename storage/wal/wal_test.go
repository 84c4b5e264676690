package wal

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpenMissingAndEmptyDir(t *testing.T) {
	for _, dir := range []string{
		filepath.Join(t.TempDir(), "a", "b"), // missing
		t.TempDir(),                          // empty
	} {
		l, r, lb := openT(t, dir, 0)
		require.Nil(t, r.Snapshot)
		require.Zero(t, r.SnapshotIndex)
		require.Empty(t, r.Records)
		require.Zero(t, l.LastIndex())
		require.Zero(t, lb.warnings())
		last, err := l.Append(rec(1))
		require.NoError(t, err)
		require.Equal(t, uint64(1), last)
		require.NoError(t, l.Close())
		require.Equal(t, []string{segmentName(1)}, fileNames(t, dir))
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	_, _, err := Open(Options{})
	require.Error(t, err)
	_, _, err = Open(Options{Dir: t.TempDir(), SegmentBytes: -1})
	require.Error(t, err)
}

func TestRoundTripAcrossReopens(t *testing.T) {
	dir := t.TempDir()
	const segBytes = 200
	l, _, _ := openT(t, dir, segBytes)
	var want [][]byte
	n := 0
	// Batches of varying size, some spanning segment boundaries.
	for _, batch := range []int{1, 3, 7, 1, 12, 2} {
		rs := recs(n+1, n+batch)
		last, err := l.Write(rs...)
		require.NoError(t, err)
		n += batch
		require.Equal(t, uint64(n), last)
		want = append(want, rs...)
	}
	require.NoError(t, l.Sync())
	last, err := l.Append() // empty batch
	require.NoError(t, err)
	require.Equal(t, uint64(n), last)
	st := l.Stats()
	require.Equal(t, uint64(n), st.Records)
	require.Greater(t, st.Segments, uint64(2))
	require.NoError(t, l.Close())

	segs := segmentPaths(t, dir)
	require.Len(t, segs, int(st.Segments))
	for _, p := range segs {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		// A segment exceeds SegmentBytes by at most one record.
		require.Less(t, fi.Size(), int64(segBytes)+frameSize(64))
	}

	for round := 0; round < 3; round++ {
		l, r, lb := openT(t, dir, segBytes)
		require.Zero(t, lb.warnings())
		require.Equal(t, want, r.Records)
		require.Equal(t, uint64(n), l.LastIndex())
		// Index continuity: the next record follows on.
		rs := recs(n+1, n+5)
		last, err := l.Append(rs...)
		require.NoError(t, err)
		n += 5
		require.Equal(t, uint64(n), last)
		want = append(want, rs...)
		require.NoError(t, l.Close())
	}

	// Segment names are the index of their first record.
	segs = segmentPaths(t, dir)
	next := uint64(1)
	for _, p := range segs {
		first, ok := parseSegmentName(filepath.Base(p))
		require.True(t, ok)
		require.Equal(t, next, first)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		res, err := scanRecords(p, b, false)
		require.NoError(t, err)
		next += uint64(len(res.recs))
	}
	require.Equal(t, uint64(n+1), next)
}

func TestEmptyRecords(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openT(t, dir, 0)
	_, err := l.Append([]byte{}, nil, []byte("x"), nil)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	l, r, _ := openT(t, dir, 0)
	require.Len(t, r.Records, 4)
	require.Equal(t, []byte("x"), r.Records[2])
	require.Empty(t, r.Records[3])
	require.NoError(t, l.Close())
}

func TestRecordTooLarge(t *testing.T) {
	l, _, _ := openT(t, t.TempDir(), 0)
	defer l.Close()
	_, err := l.Write(rec(1), make([]byte, MaxRecordBytes+1))
	require.ErrorIs(t, err, ErrRecordTooLarge)
	require.Zero(t, l.LastIndex(), "nothing of the batch is written")
	last, err := l.Append(rec(1))
	require.NoError(t, err)
	require.Equal(t, uint64(1), last)
}

func TestClosedLog(t *testing.T) {
	l, _, _ := openT(t, t.TempDir(), 0)
	_, err := l.Write(rec(1))
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.ErrorIs(t, l.Close(), ErrClosed)
	_, err = l.Write(rec(2))
	require.ErrorIs(t, err, ErrClosed)
	_, err = l.Append(rec(2))
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, l.Sync(), ErrClosed)
	require.ErrorIs(t, l.SaveSnapshot(1, nil), ErrClosed)
	require.Equal(t, uint64(1), l.LastIndex())
	require.Equal(t, uint64(1), l.Stats().Records)
}

// TestConcurrentAppenders checks that records from many goroutines get
// distinct consecutive indexes and all come back in index order.
func TestConcurrentAppenders(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openT(t, dir, 512)
	const workers, per = 8, 40
	got := make([]map[uint64][]byte, workers)
	var wg sync.WaitGroup
	for w := range workers {
		got[w] = map[uint64][]byte{}
		wg.Go(func() {
			for i := range per {
				r := rec(w*1000 + i)
				var idx uint64
				var err error
				if i%2 == 0 {
					idx, err = l.Append(r)
				} else {
					idx, err = l.Write(r)
					if err == nil {
						err = l.Sync()
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
				got[w][idx] = r
			}
		})
	}
	wg.Wait()
	require.Equal(t, uint64(workers*per), l.LastIndex())
	require.NoError(t, l.Close())

	_, r, _ := openT(t, dir, 512)
	require.Len(t, r.Records, workers*per)
	for w := range workers {
		for idx, want := range got[w] {
			require.Equal(t, want, r.Records[idx-1], "index %d", idx)
		}
	}
}
