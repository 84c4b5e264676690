package wal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// lastRecordSpan returns where the last record of the segment file starts
// and the file's size.
func lastRecordSpan(t testing.TB, path string) (start, size int64, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	res, err := scanRecords(path, b, false)
	require.NoError(t, err)
	require.NotEmpty(t, res.recs)
	last := res.recs[len(res.recs)-1]
	return int64(len(b)) - frameSize(len(last)), int64(len(b)), len(res.recs)
}

// TestTornTailEveryOffset cuts the last segment at every byte offset inside
// its last record: Open must recover every earlier record, warn, and accept
// further writes at the right index.
func TestTornTailEveryOffset(t *testing.T) {
	for _, tc := range []struct {
		name     string
		segBytes int64
	}{
		{"one segment", 0},
		{"many segments", 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 20
			orig := writeLog(t, n, tc.segBytes)
			segs := segmentPaths(t, orig)
			lastSeg := filepath.Base(segs[len(segs)-1])
			start, size, _ := lastRecordSpan(t, segs[len(segs)-1])
			for cut := start; cut <= size; cut++ {
				dir := copyDir(t, orig)
				require.NoError(t, os.Truncate(filepath.Join(dir, lastSeg), cut))
				l, r, lb := openT(t, dir, tc.segBytes)
				wantN := n - 1
				if cut == size {
					wantN = n
					require.Zero(t, lb.warnings())
				} else if cut > start {
					require.Equal(t, 1, lb.warnings(), "cut %d: %s", cut, lb.String())
					require.Contains(t, lb.String(), "torn tail")
				}
				require.Equal(t, recs(1, wantN), r.Records, "cut at %d", cut)
				require.Equal(t, uint64(wantN), l.LastIndex())

				last, err := l.Append([]byte("after"))
				require.NoError(t, err)
				require.Equal(t, uint64(wantN+1), last)
				require.NoError(t, l.Close())

				l, r, lb = openT(t, dir, tc.segBytes)
				require.Zero(t, lb.warnings())
				require.Equal(t, append(recs(1, wantN), []byte("after")), r.Records)
				require.NoError(t, l.Close())
			}
		})
	}
}

// TestTornSegmentHeader: a crash while creating a segment can leave it with
// a partial or zero header; it is reset and writing continues in it.
func TestTornSegmentHeader(t *testing.T) {
	const n = 10
	orig := writeLog(t, n, 60)
	segs := segmentPaths(t, orig)
	require.Greater(t, len(segs), 2)
	// Drop the last segment's records: the log then ends at the record
	// before the last segment's first index.
	lastSeg := filepath.Base(segs[len(segs)-1])
	first, _ := parseSegmentName(lastSeg)
	for _, contents := range [][]byte{
		nil,
		segmentHeader(first)[:7],
		segmentHeader(first)[:segHeaderSize-1],
		make([]byte, segHeaderSize),
		make([]byte, 4096),
	} {
		dir := copyDir(t, orig)
		require.NoError(t, os.WriteFile(filepath.Join(dir, lastSeg), contents, 0o644))
		l, r, lb := openT(t, dir, 60)
		require.Equal(t, recs(1, int(first-1)), r.Records)
		require.Equal(t, 1, lb.warnings(), lb.String())
		last, err := l.Append([]byte("after"))
		require.NoError(t, err)
		require.Equal(t, first, last)
		require.NoError(t, l.Close())
		_, r, _ = openT(t, dir, 60)
		require.Equal(t, append(recs(1, int(first-1)), []byte("after")), r.Records)
	}
}

// TestTornTailZeros: the end of the last segment overwritten or extended
// with zeros (space allocated but never written) is a torn tail.
func TestTornTailZeros(t *testing.T) {
	const n = 6
	orig := writeLog(t, n, 0)
	path := segmentPaths(t, orig)[0]
	start, size, _ := lastRecordSpan(t, path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)

	zeroLast := append([]byte{}, b[:start]...)
	zeroLast = append(zeroLast, make([]byte, size-start+100)...)
	extended := append(append([]byte{}, b...), make([]byte, 3)...)
	extendedMore := append(append([]byte{}, b...), make([]byte, 300)...)
	for _, tc := range []struct {
		name  string
		data  []byte
		wantN int
	}{
		{"last record zeroed, file longer", zeroLast, n - 1},
		{"short zero tail", extended, n},
		{"long zero tail", extendedMore, n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, orig)
			p := filepath.Join(dir, filepath.Base(path))
			require.NoError(t, os.WriteFile(p, tc.data, 0o644))
			l, r, lb := openT(t, dir, 0)
			require.Equal(t, recs(1, tc.wantN), r.Records)
			require.Equal(t, 1, lb.warnings())
			_, err := l.Append([]byte("after"))
			require.NoError(t, err)
			require.NoError(t, l.Close())
			_, r, _ = openT(t, dir, 0)
			require.Equal(t, append(recs(1, tc.wantN), []byte("after")), r.Records)
		})
	}
}

// TestTornTailBadChecksum: a complete final record that fails its checksum
// (a torn write whose sectors landed partly) is dropped with a WARN.
func TestTornTailBadChecksum(t *testing.T) {
	const n = 6
	orig := writeLog(t, n, 0)
	path := segmentPaths(t, orig)[0]
	start, size, _ := lastRecordSpan(t, path)
	for off := start + 4; off < size; off++ { // CRC and data bytes
		dir := copyDir(t, orig)
		p := filepath.Join(dir, filepath.Base(path))
		flipBit(t, p, off, uint(off%8))
		l, r, lb := openT(t, dir, 0)
		require.Equal(t, recs(1, n-1), r.Records)
		require.Equal(t, 1, lb.warnings())
		require.NoError(t, l.Close())
	}
}

func flipBit(t testing.TB, path string, off int64, bit uint) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[off] ^= 1 << bit
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// TestCorruptMiddleRecord flips bits in a record followed by others: Open
// refuses with ErrCorrupt naming the file and the record's offset.
func TestCorruptMiddleRecord(t *testing.T) {
	const n = 30 // enough records after the damaged one that no length flip reaches EOF
	orig := writeLog(t, n, 0)
	path := segmentPaths(t, orig)[0]
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	// Record 4 starts after the header and records 1..3.
	start := int64(segHeaderSize)
	for i := 1; i <= 3; i++ {
		start += frameSize(len(rec(i)))
	}
	end := start + frameSize(len(rec(4)))
	require.Less(t, end, int64(len(b)))

	// Every bit of the checksum and the data.
	for off := start + 4; off < end; off++ {
		for bit := uint(0); bit < 8; bit++ {
			dir := copyDir(t, orig)
			p := filepath.Join(dir, filepath.Base(path))
			flipBit(t, p, off, bit)
			_, _, err := Open(Options{Dir: dir, NoSync: true})
			requireCorrupt(t, err, p, start)
		}
	}
	// Bits of the low length byte: the record becomes shorter (checksum
	// over the wrong bytes) or longer but still inside the file.
	for bit := uint(0); bit < 8; bit++ {
		dir := copyDir(t, orig)
		p := filepath.Join(dir, filepath.Base(path))
		flipBit(t, p, start, bit)
		_, _, err := Open(Options{Dir: dir, NoSync: true})
		requireCorrupt(t, err, p, start)
	}
	// A length beyond MaxRecordBytes is never a torn write.
	dir := copyDir(t, orig)
	p := filepath.Join(dir, filepath.Base(path))
	flipBit(t, p, start+3, 7)
	_, _, err = Open(Options{Dir: dir, NoSync: true})
	requireCorrupt(t, err, p, start)
}

// TestCorruptZeroHoleBeforeData: zeros followed by data are not a torn tail.
func TestCorruptZeroHoleBeforeData(t *testing.T) {
	orig := writeLog(t, 5, 0)
	path := segmentPaths(t, orig)[0]
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	start := int64(segHeaderSize) + frameSize(len(rec(1)))
	for i := start; i < start+frameSize(len(rec(2))); i++ {
		b[i] = 0
	}
	dir := copyDir(t, orig)
	p := filepath.Join(dir, filepath.Base(path))
	require.NoError(t, os.WriteFile(p, b, 0o644))
	_, _, err = Open(Options{Dir: dir, NoSync: true})
	requireCorrupt(t, err, p, start)
}

// TestCorruptNonLastSegment: in a segment that is not the last, even a bad
// or incomplete final record is corruption.
func TestCorruptNonLastSegment(t *testing.T) {
	orig := writeLog(t, 20, 100)
	segs := segmentPaths(t, orig)
	require.Greater(t, len(segs), 2)
	name := filepath.Base(segs[0])
	start, size, _ := lastRecordSpan(t, segs[0])

	t.Run("bit flip in last record", func(t *testing.T) {
		for off := start; off < size; off += 3 {
			dir := copyDir(t, orig)
			p := filepath.Join(dir, name)
			flipBit(t, p, off, 1)
			_, _, err := Open(Options{Dir: dir, NoSync: true})
			requireCorrupt(t, err, p, start)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for _, cut := range []int64{start + 3, start + 9, size - 1} {
			dir := copyDir(t, orig)
			p := filepath.Join(dir, name)
			require.NoError(t, os.Truncate(p, cut))
			_, _, err := Open(Options{Dir: dir, NoSync: true})
			requireCorrupt(t, err, p, start)
		}
	})
	t.Run("record removed", func(t *testing.T) {
		// Cut at a record boundary: every record is valid, but the next
		// segment no longer continues this one.
		dir := copyDir(t, orig)
		require.NoError(t, os.Truncate(filepath.Join(dir, name), start))
		_, _, err := Open(Options{Dir: dir, NoSync: true})
		requireCorrupt(t, err, filepath.Join(dir, filepath.Base(segs[1])), 0)
	})
}

func TestCorruptSegmentHeader(t *testing.T) {
	orig := writeLog(t, 20, 100)
	segs := segmentPaths(t, orig)
	for _, seg := range []string{segs[0], segs[1], segs[len(segs)-1]} {
		for _, off := range []int64{0, 5, 9, 17} {
			dir := copyDir(t, orig)
			p := filepath.Join(dir, filepath.Base(seg))
			flipBit(t, p, off, 2)
			_, _, err := Open(Options{Dir: dir, NoSync: true})
			requireCorrupt(t, err, p, 0)
		}
	}
	// A header whose first index disagrees with the file name.
	dir := copyDir(t, orig)
	p := filepath.Join(dir, filepath.Base(segs[1]))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	copy(b, segmentHeader(999))
	require.NoError(t, os.WriteFile(p, b, 0o644))
	_, _, err = Open(Options{Dir: dir, NoSync: true})
	requireCorrupt(t, err, p, 0)
}

func TestSegmentGap(t *testing.T) {
	orig := writeLog(t, 20, 100)
	segs := segmentPaths(t, orig)
	require.Greater(t, len(segs), 2)

	dir := copyDir(t, orig)
	require.NoError(t, os.Remove(filepath.Join(dir, filepath.Base(segs[1]))))
	_, _, err := Open(Options{Dir: dir, NoSync: true})
	requireCorrupt(t, err, filepath.Join(dir, filepath.Base(segs[2])), 0)

	// Missing first segment without a snapshot to cover it.
	dir = copyDir(t, orig)
	require.NoError(t, os.Remove(filepath.Join(dir, filepath.Base(segs[0]))))
	_, _, err = Open(Options{Dir: dir, NoSync: true})
	requireCorrupt(t, err, filepath.Join(dir, filepath.Base(segs[1])), 0)
}

// TestOpenIgnoresForeignFiles: files this package does not name are left
// alone.
func TestOpenIgnoresForeignFiles(t *testing.T) {
	dir := writeLog(t, 3, 0)
	for _, name := range []string{"README", "1.wal", "snap-5.snap", "00000000000000000000.wal"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("junk"), 0o644))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub.wal"), 0o755))
	l, r, _ := openT(t, dir, 0)
	require.Equal(t, recs(1, 3), r.Records)
	require.NoError(t, l.Close())
	require.FileExists(t, filepath.Join(dir, "README"))
}
