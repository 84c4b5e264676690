package kv

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/internal/cputime"
)

// benchDir is where the benchmarks put their files: $KV_BENCH_DIR, or the
// temporary directory.
func benchDir(b *testing.B) string {
	d := os.Getenv("KV_BENCH_DIR")
	if d == "" {
		d = os.TempDir()
	}
	dir, err := os.MkdirTemp(d, "kvbench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

const benchRecords = 10000

// reportCPU reports the process CPU time since cpu0 per operation (cpu-ns/op):
// on a loaded machine, steadier than the wall clock's ns/op.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	if d := cputime.Process() - cpu0; d > 0 && cpu0 > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func benchRecord(rng *rand.Rand) [][]byte {
	f := make([][]byte, 10)
	for i := range f {
		f[i] = make([]byte, 100)
		for j := range f[i] {
			f[i][j] = 'a' + byte(rng.IntN(26))
		}
	}
	return f
}

// BenchmarkOp measures one YCSB read (every field copied out) and one
// single-field update per iteration on each store, over 10,000 records of
// 10 x 100 bytes with uniform keys; the file store runs with no cache (every
// read goes to the file) and with a cache of every record. allocs/op shows
// which stores copy or allocate per operation.
func BenchmarkOp(b *testing.B) {
	open := []struct {
		name string
		open func(dir string) (Store, error)
	}{
		{"pmem", func(d string) (Store, error) { return OpenPmem(filepath.Join(d, "heap"), 64<<20) }},
		{"file", func(d string) (Store, error) { return OpenFile(filepath.Join(d, "data"), 0) }},
		{"file-cached", func(d string) (Store, error) { return OpenFile(filepath.Join(d, "data"), benchRecords) }},
		{"memory", func(string) (Store, error) { return NewMemory(), nil }},
		{"bbolt", func(d string) (Store, error) { return OpenBolt(filepath.Join(d, "bolt")) }},
	}
	for _, o := range open {
		for _, op := range []string{"read", "update"} {
			b.Run(o.name+"/"+op, func(b *testing.B) {
				s, err := o.open(benchDir(b))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				rng := rand.New(rand.NewPCG(1, 2))
				rec := benchRecord(rng)
				keys := make([]string, benchRecords)
				for i := range keys {
					keys[i] = fmt.Sprintf("user%d", i)
					if err := s.Insert(keys[i], rec); err != nil {
						b.Fatal(err)
					}
				}
				for _, k := range keys { // warm the caches
					if _, err := s.Read(k, nil); err != nil {
						b.Fatal(err)
					}
				}
				dst := make([][]byte, 10)
				val := rec[0]
				b.ReportAllocs()
				b.ResetTimer()
				cpu0 := cputime.Process()
				defer func() { reportCPU(b, cpu0) }()
				for i := 0; i < b.N; i++ {
					k := keys[rng.IntN(len(keys))]
					if op == "read" {
						dst, err = s.Read(k, dst)
					} else {
						val[i%len(val)]++
						err = s.Update(k, i%10, val)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkFileParts measures the parts of a file-store update: marshalling
// and unmarshalling a 1 KB record, and the synchronous 1 KB write (O_DSYNC)
// and 4-byte write (freeing a slot) it issues on the medium of
// $KV_BENCH_DIR.
func BenchmarkFileParts(b *testing.B) {
	rec := benchRecord(rand.New(rand.NewPCG(1, 2)))
	enc := marshal(nil, "user12345", rec)
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 2048)
		cpu0 := cputime.Process()
		defer func() { reportCPU(b, cpu0) }()
		for i := 0; i < b.N; i++ {
			buf = marshal(buf[:0], "user12345", rec)
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		dst := make([][]byte, 10)
		cpu0 := cputime.Process()
		defer func() { reportCPU(b, cpu0) }()
		for i := 0; i < b.N; i++ {
			var err error
			if _, dst, _, err = unmarshal(enc, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, n := range []int{len(enc) + slotHdr, 4} {
		b.Run(fmt.Sprintf("pwrite-dsync-%dB", n), func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(benchDir(b), "w"), os.O_RDWR|os.O_CREATE|oDSync, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, n)
			if _, err := f.WriteAt(make([]byte, 1<<20), 0); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			cpu0 := cputime.Process()
			defer func() { reportCPU(b, cpu0) }()
			for i := 0; i < b.N; i++ {
				if _, err := f.WriteAt(buf, int64(i%512)*2048); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
