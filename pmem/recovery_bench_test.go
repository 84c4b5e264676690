package pmem

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/internal/cputime"
)

// BenchmarkRecovery measures Open on a large heap file after a crash in the
// middle of an atomic block: the block updated 3,000 entries and dropped
// 3,000 values without freeing them, and the process died right after its
// commit point, so recovery replays the log and then collects the whole heap
// (walk, mark from the roots, sweep). PMEM_RECOVERY_MB sets the heap size
// (default 1024, on /dev/shm when present).
func BenchmarkRecovery(b *testing.B) {
	mb := 1024
	if v, err := strconv.Atoi(os.Getenv("PMEM_RECOVERY_MB")); err == nil && v > 0 {
		mb = v
	}
	dir := b.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "pmem-recovery-")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	path := filepath.Join(dir, "heap")
	size := int64(mb) << 20
	h, err := Create(path, size, nil)
	if err != nil {
		b.Fatal(err)
	}
	// Fill about 85% of the heap: a traced hash map of 400-byte values.
	val := make([]byte, 400)
	entries := 0
	fillStart := time.Now()
	var m HashMap
	if err := h.Atomic(func(tx *Tx) error {
		if m, err = NewHashMap(tx, true); err != nil {
			return err
		}
		return tx.SetRoot("m", m.P)
	}); err != nil {
		b.Fatal(err)
	}
	for full := false; !full; {
		err := h.Atomic(func(tx *Tx) error {
			for i := 0; i < 5000; i++ {
				p, err := NewBytes(tx, val)
				if err != nil {
					return err
				}
				if _, _, err := m.Put(tx, []byte(strconv.Itoa(entries+i)), uint64(p)); err != nil {
					return err
				}
			}
			return nil
		})
		if errors.Is(err, ErrOutOfMemory) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		entries += 5000
		_ = h.View(func(tx *Tx) error { full = tx.U64(topOff) > uint64(size)*85/100; return nil })
	}
	b.Logf("filled %d MB heap with %d entries in %v", mb, entries, time.Since(fillStart))
	crash := func(round int) {
		h.crashAfterCommit = true
		func() {
			defer func() {
				if r := recover(); r != errCrashAfterCommit {
					b.Fatalf("no crash: %v", r)
				}
			}()
			_ = h.Atomic(func(tx *Tx) error {
				for i := 0; i < 3000; i++ {
					k := []byte(strconv.Itoa((round*10007 + i*37) % entries))
					if v, ok := m.Get(tx, k); ok {
						tx.Write(Ptr(v)+8, []byte(fmt.Sprintf("round %d", round)))
					}
				}
				for i := 0; i < 3000; i++ {
					k := []byte(strconv.Itoa((round*7919 + i*53) % entries))
					m.Delete(tx, k) // the value's block is left for the collector
				}
				return nil
			})
		}()
		h.dev.close() // the mapping goes away with the process; nothing else is written
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		crash(i)
		b.StartTimer()
		cpu0 := cputime.Process()
		start := time.Now()
		h, err = Open(path)
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		cpu := cputime.Process() - cpu0
		b.StopTimer()
		rs := h.Recovery()
		if !rs.Replayed || rs.Freed == 0 {
			b.Fatalf("recovery did not replay and collect: %+v", rs)
		}
		b.Logf("recovered %d MB heap in %v wall, %v CPU (the machine is shared): replayed %d lines, %d blocks walked, %d reachable, %d freed (%d bytes)",
			mb, d, cpu, rs.ReplayedLines, rs.Blocks, rs.Reachable, rs.Freed, rs.FreedBytes)
		b.ReportMetric(float64(d.Milliseconds()), "ms/recovery")
		b.ReportMetric(float64(cpu.Milliseconds()), "cpu-ms/recovery")
		b.StartTimer()
	}
	b.StopTimer()
	h.Close()
}
