package snapstore

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/internal/cputime"
	"github.com/blossom-dso/blossom/pmem"
	"github.com/blossom-dso/blossom/storage/wal"
)

// benchDir is a temp dir on /dev/shm when there is one, so that the heap
// and the snapshot files sit on the same medium (tmpfs), as the issue's
// comparisons do.
func benchDir(b *testing.B) string {
	b.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "snapstore-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return b.TempDir()
}

// BenchmarkSnapshot compares the snapshots of a write-ahead log kept in a
// pmem heap (this package) with snapshot files (storage/wal's default), on
// the same medium, with fsync on: save is Log.SaveSnapshot of a snapshot of
// the given size (a temp file written, fsynced, renamed, the directory
// fsynced; or one atomic block of the heap), restore is wal.Open of the
// directory, which reads and checks the snapshot (the heap is already open:
// its own recovery is BenchmarkRecovery in package pmem). Sub-benchmarks
// alternate the two stores per size; compare their ns/op as ratios. Each
// also reports the process CPU time of the measured calls (cpu-ns/op),
// which a loaded machine disturbs less than the wall-clock time.
func BenchmarkSnapshot(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20, 16 << 20} {
		d := data(1, size)
		for _, kind := range []string{"pmem", "file"} {
			setup := func(b *testing.B) (dir string, store func() wal.SnapshotStore) {
				dir = benchDir(b)
				if kind == "file" {
					return filepath.Join(dir, "log"), func() wal.SnapshotStore { return nil }
				}
				h, err := pmem.Create(filepath.Join(dir, "heap"), 128<<20, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { h.Close() })
				s, err := Open(h)
				if err != nil {
					b.Fatal(err)
				}
				return filepath.Join(dir, "log"), func() wal.SnapshotStore { return s.Named("group-0") }
			}
			b.Run(fmt.Sprintf("save/%s/%dKiB", kind, size>>10), func(b *testing.B) {
				dir, store := setup(b)
				l, _, err := wal.Open(wal.Options{Dir: dir, Snapshots: store()})
				if err != nil {
					b.Fatal(err)
				}
				defer l.Close()
				b.SetBytes(int64(size))
				var cpu time.Duration
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					idx, err := l.Append([]byte("record"))
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					c0 := cputime.Process()
					if err := l.SaveSnapshot(idx, d); err != nil {
						b.Fatal(err)
					}
					cpu += cputime.Process() - c0
				}
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
			b.Run(fmt.Sprintf("restore/%s/%dKiB", kind, size>>10), func(b *testing.B) {
				dir, store := setup(b)
				l, _, err := wal.Open(wal.Options{Dir: dir, Snapshots: store()})
				if err != nil {
					b.Fatal(err)
				}
				idx, err := l.Append([]byte("record"))
				if err == nil {
					err = l.SaveSnapshot(idx, d)
				}
				if err == nil {
					err = l.Close()
				}
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(size))
				var cpu time.Duration
				b.ResetTimer()
				for range b.N {
					c0 := cputime.Process()
					l, rec, err := wal.Open(wal.Options{Dir: dir, Snapshots: store()})
					if err != nil {
						b.Fatal(err)
					}
					cpu += cputime.Process() - c0
					if len(rec.Snapshot) != size {
						b.Fatalf("restored %d bytes, want %d", len(rec.Snapshot), size)
					}
					b.StopTimer()
					l.Close()
					b.StartTimer()
				}
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
