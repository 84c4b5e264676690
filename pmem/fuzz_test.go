package pmem

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
)

// fuzzBase is a minimal heap image holding data and a committed, not yet
// applied redo log (a crash right after a commit point), so that fuzzed
// patches reach the header, the log, the roots and the blocks.
var fuzzBase = sync.OnceValue(func() []byte {
	size := logOff + minLogSize + 16*pageSize
	sim := NewSim(size)
	h, err := sim.Create(&Options{LogSize: minLogSize})
	if err != nil {
		panic(err)
	}
	if err := setup(h); err != nil {
		panic(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var cur state
	for _, b := range genProgram(rng, 3) {
		b.end = 0
		if cur, _, err = runBlock(h, b, cur); err != nil {
			panic(err)
		}
	}
	// Crash at the first event after the next block's commit fence: the
	// persistent image then holds a committed log not yet applied.
	sim.crashAtFence = sim.Fences + 1
	func() {
		defer func() {
			if _, ok := recover().(*SimCrash); !ok {
				panic("no crash")
			}
		}()
		_ = h.Atomic(func(tx *Tx) error {
			o := loadObjects(tx)
			o.ctr.Add(tx, 42)
			return o.vals.Append(tx, 7)
		})
	}()
	return sim.Image()
})

// patchImage applies the fuzz input to a copy of the base image: the input is
// a sequence of patches (offset u32 little-endian, length byte, bytes). A
// first byte of 0 instead makes the rest of the input the whole file.
func patchImage(data []byte) []byte {
	if len(data) > 0 && data[0] == 0 {
		return append([]byte(nil), data[1:]...)
	}
	img := append([]byte(nil), fuzzBase()...)
	if len(data) > 0 {
		data = data[1:]
	}
	for len(data) >= 5 {
		off := int(binary.LittleEndian.Uint32(data)) % len(img)
		n := min(int(data[4]), len(data)-5, len(img)-off)
		copy(img[off:], data[5:5+n])
		data = data[5+n:]
	}
	return img
}

func patch(off int, b ...byte) []byte {
	p := make([]byte, 5, 5+len(b))
	binary.LittleEndian.PutUint32(p, uint32(off))
	p[4] = byte(len(b))
	return append(p, b...)
}

func fuzzSeeds() [][]byte {
	u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	return [][]byte{
		{1},
		{0, 'B', 'L', 'S', 'M'},
		append([]byte{1}, patch(0, 'X')...),
		append([]byte{1}, patch(8, 2)...),
		append([]byte{1}, patch(logOff+16, u64(1<<40)...)...),
		append([]byte{1}, patch(logBodyOff, u64(8)...)...),
		append([]byte{1}, patch(topOff, u64(1<<62)...)...),
		append([]byte{1}, patch(rootsOff+maxRootName, u64(logOff+999)...)...),
		append([]byte{1}, patch(logOff+LineSize+minLogSize, 0xB1, 0x0C, 200, 1)...),
		append([]byte{1}, patch(logOff+minLogSize+blockHdr+8, 0xff, 0xff)...),
	}
}

func TestFuzzOpenSeedsCheckedIn(t *testing.T) {
	fuzzseed.Check(t, "FuzzOpen", fuzzSeeds())
}

// FuzzOpen opens arbitrary heap images: Open (header, redo log replay,
// collector) and Check must return an error or succeed, never panic.
func FuzzOpen(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img := patchImage(data)
		h, err := openMem("fuzz", img, nopDevice{})
		if err != nil {
			return
		}
		_, _ = h.Check()
		_ = h.View(func(tx *Tx) error {
			for _, r := range tx.Roots() {
				_ = tx.Root(r)
			}
			return nil
		})
	})
}

func TestFuzzBaseOpens(t *testing.T) {
	h, err := openMem("fuzz", append([]byte(nil), fuzzBase()...), nopDevice{})
	if err != nil {
		t.Fatal(err)
	}
	if !h.Recovery().Replayed {
		t.Fatal("the fuzz base image holds no committed log to replay")
	}
	if _, err := h.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenRandomPatches is FuzzOpen's deterministic cousin for every test
// run: seeded random patches over the base image's header, log, metadata and
// blocks; Open and Check must never panic.
func TestOpenRandomPatches(t *testing.T) {
	seed := uint64(envInt("PMEM_SEED", 1))
	rng := rand.New(rand.NewPCG(seed, 3))
	base := fuzzBase()
	regions := [][2]int{{0, 64}, {logOff, logOff + 256}, {metaOff, metaOff + 128}, {rootsOff, rootsOff + 512}, {logOff + minLogSize, len(base)}}
	opened := 0
	for i := 0; i < 3000; i++ {
		in := []byte{1}
		for k := 0; k < 1+rng.IntN(6); k++ {
			r := regions[rng.IntN(len(regions))]
			b := make([]byte, 1+rng.IntN(8))
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
			in = append(in, patch(r[0]+rng.IntN(r[1]-r[0]), b...)...)
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("seed %d iteration %d: Open panicked on input %x: %v", seed, i, in, r)
				}
			}()
			if h, err := openMem("fuzz", patchImage(in), nopDevice{}); err == nil {
				opened++
				_, _ = h.Check()
			}
		}()
	}
	t.Logf("3000 patched images, %d opened", opened)
}
