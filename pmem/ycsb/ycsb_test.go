package ycsb

import (
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/pmem/kv"
)

// TestBackendsAgree runs every workload on every back end with the same seed
// and requires the four stores to end with identical contents.
func TestBackendsAgree(t *testing.T) {
	cfg := Config{Records: 300, Ops: 400, Seed: 7}
	var dumps []map[string][][]byte
	for _, b := range Backends {
		s, err := b.Open(t.TempDir(), cfg)
		require.NoError(t, err)
		r := NewRunner(s, cfg)
		require.NoError(t, r.Load())
		for _, w := range Workloads {
			res, err := r.Run(w)
			require.NoError(t, err, "%s %s", b.Name, w.Name)
			require.Equal(t, cfg.Ops, res.Ops)
		}
		dump := map[string][][]byte{}
		var prev string
		require.NoError(t, s.Scan("", 1<<30, func(k string, f [][]byte) bool {
			require.Less(t, prev, k, "%s scans in key order", b.Name)
			prev = k
			dump[k] = kvCopy(f)
			return true
		}))
		require.Equal(t, int(r.inserted), len(dump), b.Name)
		dumps = append(dumps, dump)
		require.NoError(t, s.Close())
	}
	for i := 1; i < len(dumps); i++ {
		require.True(t, reflect.DeepEqual(dumps[0], dumps[i]), "%s and %s differ", Backends[0].Name, Backends[i].Name)
	}
}

func kvCopy(f [][]byte) [][]byte {
	out := make([][]byte, len(f))
	for i := range f {
		out[i] = append([]byte(nil), f[i]...)
	}
	return out
}

// TestDurableBackendsReopen checks that the durable stores keep their
// records across close and reopen.
func TestDurableBackendsReopen(t *testing.T) {
	for _, b := range Backends {
		if b.Name == "memory" {
			continue
		}
		t.Run(b.Name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{Records: 100, Ops: 100, Seed: 3}
			s, err := b.Open(dir, cfg)
			require.NoError(t, err)
			r := NewRunner(s, cfg)
			require.NoError(t, r.Load())
			_, err = r.Run(Workloads[0])
			require.NoError(t, err)
			want, err := s.Read(Key(5), nil)
			require.NoError(t, err)
			require.NoError(t, s.Close())
			s, err = b.Open(dir, cfg)
			require.NoError(t, err)
			defer s.Close()
			got, err := s.Read(Key(5), nil)
			require.NoError(t, err)
			require.Equal(t, want, got)
			_, err = s.Read("no such key", nil)
			require.ErrorIs(t, err, kv.ErrNotFound)
		})
	}
}

// TestZipfianIsSkewed checks the generators' shape: the most popular item of
// a zipfian over 1000 items is drawn far more often than uniform, and latest
// favours the newest record.
func TestZipfianIsSkewed(t *testing.T) {
	seed := uint64(11)
	rng := rand.New(rand.NewPCG(seed, 0))
	z := newZipfian(1000)
	counts := make([]int, 1000)
	for i := 0; i < 100000; i++ {
		counts[z.next(rng)]++
	}
	require.Greater(t, counts[0], 10*100, "seed %d: item 0 drawn %d times", seed, counts[0])
	require.Greater(t, counts[0], counts[10], "seed %d", seed)
	s := newScrambledZipfian()
	seen := map[uint64]int{}
	for i := 0; i < 10000; i++ {
		v := s.next(rng, 1000)
		require.Less(t, v, uint64(1000))
		seen[v]++
	}
	top := 0
	for _, c := range seen {
		top = max(top, c)
	}
	require.Greater(t, top, 10*10, "seed %d: scrambled zipfian is not skewed", seed)
}

// BenchmarkYCSB measures each workload on each back end (files on /dev/shm
// when present). YCSB_RECORDS sets the record count (default 20000).
func BenchmarkYCSB(b *testing.B) {
	dir := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir = "/dev/shm"
	}
	records := 20000
	if v, err := fmt.Sscan(os.Getenv("YCSB_RECORDS"), &records); v == 0 || err != nil {
		records = 20000
	}
	for _, w := range Workloads {
		for _, be := range Backends {
			b.Run(w.Name+"/"+be.Name, func(b *testing.B) {
				d, err := os.MkdirTemp(dir, "ycsb-bench-")
				require.NoError(b, err)
				defer os.RemoveAll(d)
				cfg := Config{Records: records, Ops: b.N, Seed: 1}
				s, err := be.Open(d, cfg)
				require.NoError(b, err)
				defer s.Close()
				r := NewRunner(s, cfg)
				require.NoError(b, r.Load())
				b.ResetTimer()
				res, err := r.Run(w)
				require.NoError(b, err)
				b.ReportMetric(res.OpsPerSec(), "ops/s")
			})
		}
	}
}

// TestYCSBTable prints the comparison table (as `blossom ycsb` does) when
// YCSB_TABLE=records,ops is set; it measures, so it is skipped otherwise.
func TestYCSBTable(t *testing.T) {
	var cfg Config
	if n, _ := fmt.Sscanf(os.Getenv("YCSB_TABLE"), "%d,%d", &cfg.Records, &cfg.Ops); n != 2 {
		t.Skip("set YCSB_TABLE=records,ops to print the YCSB table")
	}
	cfg.Seed = 1
	dir := os.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir = "/dev/shm"
	}
	tab, err := RunTable(dir, Backends, Workloads, cfg, TableOptions{Log: os.Stderr})
	require.NoError(t, err)
	fmt.Printf("YCSB: %d records of 10 x 100 bytes, %d ops per workload, files in %s, one client\n", cfg.Records, cfg.Ops, dir)
	tab.Format(os.Stdout)
}
