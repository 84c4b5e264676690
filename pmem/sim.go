package pmem

import (
	"bytes"
	"math/rand/v2"
)

// Sim is the crash simulator: a heap region whose persistence is modelled at
// cache-line granularity. The heap writes the volatile image (what the CPU
// caches hold); Sim keeps a shadow, the persistent image (what the medium
// holds). A flush snapshots the flushed lines as they are at that moment; a
// fence makes every snapshot taken since the last fence persistent. A
// simulated crash then keeps, for each line whose volatile content differs
// from the persistent one, an arbitrary (seeded) choice among the contents it
// may have reached the medium with — the persisted one, the volatile one, or
// an unfenced flush snapshot — which models cache evictions at any time.
//
// Sim counts persistence events (flushes and fences); CrashAt makes the n-th
// event panic with a *SimCrash, which is how tests stop a program at an
// arbitrary point, including inside recovery.
//
// A Sim and the heaps opened on it are for tests: it is single-threaded.
type Sim struct {
	vol     []byte
	per     []byte
	pending map[int][]byte // line -> contents at the last unfenced flush
	order   []int
	events  int
	crashAt int
	// crashAtFence, if not 0, crashes at the first event after the fence
	// that brings Fences to it.
	crashAtFence int
	// Flushes, Fences count the persistence events since the Sim was made.
	Flushes, Fences int
}

// SimCrash is the panic value of a simulated crash.
type SimCrash struct{ Event int }

func (c *SimCrash) Error() string { return "pmem: simulated crash" }

// NewSim returns a simulator over a zeroed region of size bytes.
func NewSim(size int) *Sim {
	return &Sim{vol: make([]byte, size), per: make([]byte, size), pending: map[int][]byte{}}
}

// Create formats a new heap on the simulator.
func (s *Sim) Create(opts *Options) (*Heap, error) {
	ls := opts.logSize(int64(len(s.vol)))
	if int64(len(s.vol)) < logOff+ls+16*pageSize {
		return nil, ErrOutOfMemory
	}
	h := &Heap{name: "sim", mem: s.vol, dev: s}
	h.format(uint64(len(s.vol)), uint64(ls))
	return h, nil
}

// Open recovers the heap in the simulator's volatile image, as Open does for
// a file.
func (s *Sim) Open() (*Heap, error) { return openMem("sim", s.vol, s) }

// Events returns the number of persistence events (flushes plus fences) so
// far.
func (s *Sim) Events() int { return s.events }

// CrashAt arms a crash at persistence event n (counted from the Sim's
// creation; see Events); 0 disarms.
func (s *Sim) CrashAt(n int) { s.crashAt = n }

func (s *Sim) event() {
	s.events++
	if s.crashAtFence != 0 && s.Fences >= s.crashAtFence {
		s.crashAtFence = 0
		panic(&SimCrash{Event: s.events})
	}
	if s.crashAt != 0 && s.events >= s.crashAt {
		s.crashAt = 0
		panic(&SimCrash{Event: s.events})
	}
}

func (s *Sim) flush(off, n int) {
	s.event()
	s.Flushes++
	for l := off &^ (LineSize - 1); l < off+n; l += LineSize {
		p, ok := s.pending[l]
		if !ok {
			p = make([]byte, LineSize)
			s.pending[l] = p
			s.order = append(s.order, l)
		}
		copy(p, s.vol[l:l+LineSize])
	}
}

func (s *Sim) fence() {
	s.event()
	s.Fences++
	for _, l := range s.order {
		copy(s.per[l:l+LineSize], s.pending[l])
	}
	clear(s.pending)
	s.order = s.order[:0]
}

func (s *Sim) close() error { return nil }

// Crash simulates a power failure: every line not known to be persistent
// keeps a content chosen by rng among those it could have been written back
// with, the result becomes both the persistent and the volatile image, and
// the heaps opened before are dead. It returns the number of lines that
// were at risk (dirty or flushed-but-unfenced).
func (s *Sim) Crash(rng *rand.Rand) int {
	s.crashAt = 0
	atRisk := 0
	for l := 0; l < len(s.vol); l += LineSize {
		v, p := s.vol[l:l+LineSize], s.per[l:l+LineSize]
		snap, flushed := s.pending[l]
		if bytes.Equal(v, p) && (!flushed || bytes.Equal(snap, p)) {
			continue
		}
		atRisk++
		switch k := rng.IntN(3); {
		case k == 0:
			copy(p, v)
		case k == 1 && flushed:
			copy(p, snap)
		}
	}
	clear(s.pending)
	s.order = s.order[:0]
	copy(s.vol, s.per)
	return atRisk
}

// Image returns a copy of the persistent image.
func (s *Sim) Image() []byte { return bytes.Clone(s.per) }
