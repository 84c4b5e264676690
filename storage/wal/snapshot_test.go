package wal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSnapshotCompactsAndRecovers(t *testing.T) {
	dir := t.TempDir()
	const segBytes = 100
	l, _, _ := openT(t, dir, segBytes)
	_, err := l.Write(recs(1, 30)...)
	require.NoError(t, err)
	before := segmentPaths(t, dir)
	require.Greater(t, len(before), 4)

	// Pick an index inside a segment, so that segment must stay.
	const snapIdx = 17
	require.NoError(t, l.SaveSnapshot(snapIdx, []byte("state@17")))
	require.Contains(t, fileNames(t, dir), snapshotName(snapIdx))
	after := segmentPaths(t, dir)
	require.Less(t, len(after), len(before))
	require.Equal(t, uint64(len(after)), l.Stats().Segments)
	first, _ := parseSegmentName(filepath.Base(after[0]))
	require.LessOrEqual(t, first, uint64(snapIdx), "the segment holding %d is kept", snapIdx)
	second, _ := parseSegmentName(filepath.Base(after[1]))
	require.Greater(t, second, uint64(snapIdx+1), "segments wholly <= %d are deleted", snapIdx)

	_, err = l.Write(recs(31, 33)...)
	require.NoError(t, err)
	require.NoError(t, l.Close())

	l, r, lb := openT(t, dir, segBytes)
	require.Zero(t, lb.warnings())
	require.Equal(t, []byte("state@17"), r.Snapshot)
	require.Equal(t, uint64(snapIdx), r.SnapshotIndex)
	require.Equal(t, recs(snapIdx+1, 33), r.Records, "records <= the snapshot index are skipped")
	require.Equal(t, uint64(33), l.LastIndex())

	// A newer snapshot replaces the older file.
	require.NoError(t, l.SaveSnapshot(30, []byte("state@30")))
	var snaps []string
	for _, n := range fileNames(t, dir) {
		if _, ok := parseSnapshotName(n); ok {
			snaps = append(snaps, n)
		}
	}
	require.Equal(t, []string{snapshotName(30)}, snaps)
	last, err := l.Append(rec(34))
	require.NoError(t, err)
	require.Equal(t, uint64(34), last)
	require.NoError(t, l.Close())

	_, r, _ = openT(t, dir, segBytes)
	require.Equal(t, []byte("state@30"), r.Snapshot)
	require.Equal(t, recs(31, 34), r.Records)
}

func TestSnapshotIndexBounds(t *testing.T) {
	l, _, _ := openT(t, t.TempDir(), 0)
	defer l.Close()
	require.Error(t, l.SaveSnapshot(1, nil), "nothing written yet")
	_, err := l.Write(recs(1, 10)...)
	require.NoError(t, err)
	require.Error(t, l.SaveSnapshot(11, nil))
	require.NoError(t, l.SaveSnapshot(5, []byte("a")))
	require.Error(t, l.SaveSnapshot(4, nil), "below the previous snapshot")
	require.NoError(t, l.SaveSnapshot(5, []byte("b")), "the same index again is allowed")
	require.NoError(t, l.SaveSnapshot(10, nil))
}

// TestSnapshotAtLastIndex: a snapshot of everything leaves no records to
// replay, and writing continues after it.
func TestSnapshotAtLastIndex(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openT(t, dir, 50)
	_, err := l.Write(recs(1, 12)...)
	require.NoError(t, err)
	require.NoError(t, l.SaveSnapshot(12, []byte{}))
	require.Len(t, segmentPaths(t, dir), 1, "only the current segment is left")
	require.NoError(t, l.Close())

	l, r, _ := openT(t, dir, 50)
	require.NotNil(t, r.Snapshot)
	require.Empty(t, r.Snapshot)
	require.Equal(t, uint64(12), r.SnapshotIndex)
	require.Empty(t, r.Records)
	require.Equal(t, uint64(12), l.LastIndex())
	last, err := l.Append(rec(13))
	require.NoError(t, err)
	require.Equal(t, uint64(13), last)
	require.NoError(t, l.Close())
	_, r, _ = openT(t, dir, 50)
	require.Equal(t, recs(13, 13), r.Records)
}

// TestSnapshotTempFileIgnored: a crash between writing a snapshot and
// renaming it leaves a .tmp file, which is removed and does not count.
func TestSnapshotTempFileIgnored(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openT(t, dir, 0)
	_, err := l.Write(recs(1, 10)...)
	require.NoError(t, err)
	require.NoError(t, l.SaveSnapshot(4, []byte("state@4")))
	require.NoError(t, l.Close())

	// A complete but unrenamed snapshot and a partial one.
	full := append(encodeSnapshotHeader(8, []byte("state@8")), "state@8"...)
	tmp1 := filepath.Join(dir, snapshotName(8)+tmpSuffix)
	tmp2 := filepath.Join(dir, snapshotName(9)+tmpSuffix)
	require.NoError(t, os.WriteFile(tmp1, full, 0o644))
	require.NoError(t, os.WriteFile(tmp2, full[:10], 0o644))

	l, r, _ := openT(t, dir, 0)
	require.Equal(t, []byte("state@4"), r.Snapshot)
	require.Equal(t, uint64(4), r.SnapshotIndex)
	require.Equal(t, recs(5, 10), r.Records)
	require.NoFileExists(t, tmp1)
	require.NoFileExists(t, tmp2)
	require.NoError(t, l.Close())
}

// TestCorruptNewestSnapshot: a damaged newest snapshot is an error naming
// it, even when an older valid snapshot exists.
func TestCorruptNewestSnapshot(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openT(t, dir, 0)
	_, err := l.Write(recs(1, 10)...)
	require.NoError(t, err)
	require.NoError(t, l.SaveSnapshot(4, []byte("state@4")))
	old, err := os.ReadFile(filepath.Join(dir, snapshotName(4)))
	require.NoError(t, err)
	require.NoError(t, l.SaveSnapshot(8, []byte("state@8")))
	require.NoError(t, l.Close())
	require.NoFileExists(t, filepath.Join(dir, snapshotName(4)))
	require.NoError(t, os.WriteFile(filepath.Join(dir, snapshotName(4)), old, 0o644))

	newest := filepath.Join(dir, snapshotName(8))
	good, err := os.ReadFile(newest)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		data []byte
		off  int64
	}{
		{"data bit flip", flipped(good, len(good)-2), 24},
		{"magic", flipped(good, 1), 0},
		{"index", flipped(good, 8), 8},
		{"length", flipped(good, 16), 16},
		{"truncated", good[:len(good)-1], 16},
		{"short header", good[:10], 0},
		{"empty", nil, 0},
	} {
		require.NoError(t, os.WriteFile(newest, tc.data, 0o644))
		_, _, err := Open(Options{Dir: dir, NoSync: true})
		requireCorrupt(t, err, newest, tc.off)
	}
	require.NoError(t, os.WriteFile(newest, good, 0o644))
	_, r, _ := openT(t, dir, 0)
	require.Equal(t, []byte("state@8"), r.Snapshot)
	require.NoFileExists(t, filepath.Join(dir, snapshotName(4)), "older snapshots are removed")
}

func flipped(b []byte, off int) []byte {
	c := append([]byte{}, b...)
	c[off] ^= 0x10
	return c
}

// TestInterruptedCompaction: segments covered by the snapshot that a crash
// kept from being deleted are skipped (not even read) and removed by Open.
func TestInterruptedCompaction(t *testing.T) {
	const segBytes = 80
	orig := writeLog(t, 25, segBytes)
	dir := copyDir(t, orig)
	l, _, _ := openT(t, dir, segBytes)
	require.NoError(t, l.SaveSnapshot(20, []byte("s")))
	require.NoError(t, l.Close())
	kept := segmentPaths(t, dir)
	// Put the deleted segments back, one of them damaged: it is covered,
	// so the damage does not matter.
	all := segmentPaths(t, orig)
	for _, p := range all {
		if _, err := os.Stat(filepath.Join(dir, filepath.Base(p))); err == nil {
			continue
		}
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		b[len(b)-1] ^= 0xff
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(p)), b, 0o644))
	}
	require.Len(t, segmentPaths(t, dir), len(all))

	l, r, lb := openT(t, dir, segBytes)
	require.Equal(t, uint64(20), r.SnapshotIndex)
	require.Equal(t, recs(21, 25), r.Records)
	require.Zero(t, lb.warnings())
	require.Contains(t, lb.String(), "covered by the snapshot")
	require.Equal(t, kept, segmentPaths(t, dir))
	require.NoError(t, l.Close())
}

// TestLogEndsBeforeSnapshot: if the log was cut short below the snapshot
// index (files lost behind the WAL's back), writing resumes after the
// snapshot.
func TestLogEndsBeforeSnapshot(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openT(t, dir, 0)
	_, err := l.Write(recs(1, 10)...)
	require.NoError(t, err)
	require.NoError(t, l.SaveSnapshot(10, []byte("s")))
	require.NoError(t, l.Close())
	// Keep records 1..5 only, cut at a record boundary.
	off := int64(segHeaderSize)
	for i := 1; i <= 5; i++ {
		off += frameSize(len(rec(i)))
	}
	require.NoError(t, os.Truncate(segmentPaths(t, dir)[0], off))

	l, r, lb := openT(t, dir, 0)
	require.Equal(t, uint64(10), r.SnapshotIndex)
	require.Empty(t, r.Records)
	require.Equal(t, uint64(10), l.LastIndex())
	require.Equal(t, 1, lb.warnings())
	require.Equal(t, []string{filepath.Join(dir, segmentName(11))}, segmentPaths(t, dir))
	last, err := l.Append(rec(11))
	require.NoError(t, err)
	require.Equal(t, uint64(11), last)
	require.NoError(t, l.Close())
	_, r, _ = openT(t, dir, 0)
	require.Equal(t, recs(11, 11), r.Records)
}

// TestSnapshotWithoutSegments: a directory holding only a snapshot.
func TestSnapshotWithoutSegments(t *testing.T) {
	dir := t.TempDir()
	data := []byte("only a snapshot")
	require.NoError(t, os.WriteFile(filepath.Join(dir, snapshotName(7)),
		append(encodeSnapshotHeader(7, data), data...), 0o644))
	l, r, _ := openT(t, dir, 0)
	require.Equal(t, data, r.Snapshot)
	require.Equal(t, uint64(7), l.LastIndex())
	last, err := l.Append(rec(8))
	require.NoError(t, err)
	require.Equal(t, uint64(8), last)
	require.NoError(t, l.Close())
}
