package wal

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// logBuf collects log output so tests can assert on WARNs.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *logBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *logBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *logBuf) warnings() int {
	return strings.Count(w.String(), "level=WARN")
}

func testLogger() (*slog.Logger, *logBuf) {
	w := &logBuf{}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), w
}

// openT opens dir with NoSync and a captured logger, failing the test on
// error.
func openT(t testing.TB, dir string, segBytes int64) (*Log, *Recovered, *logBuf) {
	t.Helper()
	lg, lb := testLogger()
	l, rec, err := Open(Options{Dir: dir, SegmentBytes: segBytes, NoSync: true, Logger: lg})
	require.NoError(t, err, "log output:\n%s", lb.String())
	return l, rec, lb
}

// rec returns the deterministic contents of record i (sizes vary).
func rec(i int) []byte {
	return []byte(fmt.Sprintf("record-%d-%s", i, strings.Repeat("x", i%17)))
}

func recs(from, to int) [][]byte {
	var out [][]byte
	for i := from; i <= to; i++ {
		out = append(out, rec(i))
	}
	return out
}

// frameSize is the on-disk size of a record with n data bytes.
func frameSize(n int) int64 { return int64(recHeaderSize + n) }

// segmentPaths lists the segment files in dir, ascending.
func segmentPaths(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	require.NoError(t, err)
	slices.Sort(m)
	return m
}

func fileNames(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// copyDir copies the regular files of src into a fresh temp dir.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	es, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range es {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	return dst
}

// writeLog writes records 1..n to a fresh log in a temp dir, closes it and
// returns the dir.
func writeLog(t testing.TB, n int, segBytes int64) string {
	t.Helper()
	dir := t.TempDir()
	l, _, _ := openT(t, dir, segBytes)
	for i := 1; i <= n; i++ {
		last, err := l.Write(rec(i))
		require.NoError(t, err)
		require.Equal(t, uint64(i), last)
	}
	require.NoError(t, l.Close())
	return dir
}

// requireCorrupt checks that err is a *CorruptError for file at offset and
// that its message names both.
func requireCorrupt(t testing.TB, err error, file string, offset int64) {
	t.Helper()
	require.ErrorIs(t, err, ErrCorrupt)
	var ce *CorruptError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, file, ce.File)
	require.Equal(t, offset, ce.Offset, "error: %v", err)
	require.Contains(t, err.Error(), file)
	require.Contains(t, err.Error(), fmt.Sprintf("offset %d", offset))
}
