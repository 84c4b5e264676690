package wal

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// memStore is a SnapshotStore in memory; saveErr and loadErr make its
// calls fail.
type memStore struct {
	index   uint64
	data    []byte
	saves   int
	saveErr error
	loadErr error
}

func (s *memStore) Load() (uint64, []byte, error) {
	if s.loadErr != nil {
		return 0, nil, s.loadErr
	}
	return s.index, slices.Clone(s.data), nil
}

func (s *memStore) Save(index uint64, data []byte) error {
	if s.saveErr != nil {
		return s.saveErr
	}
	s.index, s.data = index, slices.Clone(data)
	s.saves++
	return nil
}

func (s *memStore) String() string { return "memstore" }

func openStore(t testing.TB, dir string, segBytes int64, st SnapshotStore) (*Log, *Recovered, error) {
	t.Helper()
	lg, _ := testLogger()
	return Open(Options{Dir: dir, SegmentBytes: segBytes, NoSync: true, Logger: lg, Snapshots: st})
}

func snapshotFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for _, n := range fileNames(t, dir) {
		if _, ok := parseSnapshotName(n); ok {
			out = append(out, n)
		}
	}
	return out
}

// TestSnapshotStoreKeepsTheSnapshot: with a store, snapshots go to it and
// not to files, compaction still drops the covered segments, and Open
// recovers the store's snapshot and the records after it. Without the
// store the compacted directory is refused (its first records are gone),
// so the store's snapshot is what recovery rests on.
func TestSnapshotStoreKeepsTheSnapshot(t *testing.T) {
	dir := t.TempDir()
	st := &memStore{}
	l, rec, err := openStore(t, dir, 100, st)
	require.NoError(t, err)
	require.Nil(t, rec.Snapshot)
	_, err = l.Write(recs(1, 30)...)
	require.NoError(t, err)
	before := len(segmentPaths(t, dir))
	require.NoError(t, l.SaveSnapshot(17, []byte("state@17")))
	require.Equal(t, uint64(17), st.index)
	require.Equal(t, []byte("state@17"), st.data)
	require.Empty(t, snapshotFiles(t, dir))
	require.Less(t, len(segmentPaths(t, dir)), before, "covered segments are deleted")
	_, err = l.Write(recs(31, 33)...)
	require.NoError(t, err)
	require.NoError(t, l.Close())

	l, rec, err = openStore(t, dir, 100, st)
	require.NoError(t, err)
	require.Equal(t, uint64(17), rec.SnapshotIndex)
	require.Equal(t, []byte("state@17"), rec.Snapshot)
	require.Equal(t, recs(18, 33), rec.Records)
	require.Equal(t, uint64(33), l.LastIndex())
	require.NoError(t, l.Close())

	_, _, err = openStore(t, dir, 100, nil)
	require.ErrorIs(t, err, ErrCorrupt, "without the store the log lacks its first records")
}

// TestSnapshotStoreTakesOverFiles: a directory written with snapshot files
// and opened with an empty store moves its snapshot into the store and
// removes the file; a store newer than the files wins.
func TestSnapshotStoreTakesOverFiles(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openT(t, dir, 100)
	_, err := l.Write(recs(1, 30)...)
	require.NoError(t, err)
	require.NoError(t, l.SaveSnapshot(12, []byte("file@12")))
	require.NoError(t, l.Close())
	require.NotEmpty(t, snapshotFiles(t, dir))

	st := &memStore{}
	l, rec, err := openStore(t, dir, 100, st)
	require.NoError(t, err)
	require.Equal(t, uint64(12), rec.SnapshotIndex)
	require.Equal(t, []byte("file@12"), rec.Snapshot)
	require.Equal(t, recs(13, 30), rec.Records)
	require.Equal(t, uint64(12), st.index)
	require.Equal(t, []byte("file@12"), st.data)
	require.Empty(t, snapshotFiles(t, dir), "the moved file is removed")
	require.NoError(t, l.SaveSnapshot(25, []byte("store@25")))
	require.NoError(t, l.Close())

	// A stale file (restored from a backup, say) loses to the store.
	stale := []byte("file@20")
	b := append(encodeSnapshotHeader(20, stale), stale...)
	require.NoError(t, os.WriteFile(filepath.Join(dir, snapshotName(20)), b, 0o644))
	l, rec, err = openStore(t, dir, 100, st)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.Equal(t, uint64(25), rec.SnapshotIndex)
	require.Equal(t, []byte("store@25"), rec.Snapshot)
	require.Equal(t, recs(26, 30), rec.Records)
	require.Empty(t, snapshotFiles(t, dir))
}

// TestSnapshotStoreFailures: a failed Save leaves the Log usable and the
// old snapshot in force (no segment it needs is deleted); a failed Load
// fails Open with the store's error.
func TestSnapshotStoreFailures(t *testing.T) {
	dir := t.TempDir()
	st := &memStore{}
	l, _, err := openStore(t, dir, 100, st)
	require.NoError(t, err)
	_, err = l.Write(recs(1, 30)...)
	require.NoError(t, err)
	require.NoError(t, l.SaveSnapshot(10, []byte("state@10")))
	segs := segmentPaths(t, dir)
	boom := errors.New("heap full")
	st.saveErr = boom
	err = l.SaveSnapshot(28, []byte("state@28"))
	require.ErrorIs(t, err, boom)
	require.Contains(t, err.Error(), "memstore")
	require.Equal(t, segs, segmentPaths(t, dir), "nothing is compacted past the saved snapshot")
	_, err = l.Append(rec(31))
	require.NoError(t, err, "a failed snapshot does not fail the log")
	require.NoError(t, l.Close())

	st.saveErr = nil
	l, rec, err := openStore(t, dir, 100, st)
	require.NoError(t, err)
	require.Equal(t, uint64(10), rec.SnapshotIndex)
	require.Equal(t, recs(11, 31), rec.Records)
	require.NoError(t, l.Close())

	st.loadErr = errors.New("heap /x/y.heap: bad snapshot")
	_, _, err = openStore(t, dir, 100, st)
	require.ErrorIs(t, err, st.loadErr)
	require.Contains(t, err.Error(), "memstore")
}
