// Package idset is a set of command ids (protocols.CommandID) for the
// executed-command sets of protocols: a client's sequence numbers mostly
// come one after another, so each client keeps a sliding bitmap over the
// sequence numbers it recently used, and only outliers (holes left behind
// by the window, numbers below where the client started or far ahead of
// it) go to maps. Lookups and inserts of sequential ids cost one map
// lookup by client and a bit test, instead of hashing the whole id.
//
// A forged id costs at most a bounded amount of memory: a sequence number
// far beyond a client's window is one entry of the outlier map, and one
// just beyond a full window slides it by one word, leaving at most 64
// holes.
package idset

import (
	"iter"
	"math/bits"

	"github.com/blossom-dso/blossom/protocols"
)

// maxWords bounds a client's bitmap, in 64-bit words. A sequence number in
// the word just after a full bitmap slides it forward by one word (the
// sequence numbers of the word it drops that are not in the set are
// remembered as holes); one farther goes to the outlier map.
const maxWords = 256

// bigSeq and above are always outliers, so that a window's arithmetic never
// overflows.
const bigSeq = 1 << 62

// window is one client's part of the set.
type window struct {
	// start is the first sequence number the client inserted. Below it,
	// members are in extra.
	start uint64
	// lo is the sequence number of bit 0 of bits[0]. Every sequence number
	// in [start, lo) is a member unless it is in holes.
	lo    uint64
	bits  []uint64
	holes map[uint64]struct{}
	// extra holds members below start or too far beyond the bitmap.
	extra map[uint64]struct{}
}

// maxDense bounds the client ids whose windows are found by index rather
// than through the map: small ids (the simulator's clients are numbered
// from 1) cost no hashing, at most maxDense pointers per set.
const maxDense = 1024

// Set is a set of command ids. The zero value is an empty set ready to
// use. It is not safe for concurrent use.
type Set struct {
	// dense[c] is the window of client c < maxDense, clients those of
	// the other clients.
	dense   []*window
	clients map[uint64]*window
	n       int
	// the window of the client looked up last
	lastID uint64
	last   *window
}

// Len returns the number of ids in the set.
func (s *Set) Len() int { return s.n }

func (s *Set) window(client uint64) *window {
	if s.last != nil && s.lastID == client {
		return s.last
	}
	var w *window
	if client < uint64(len(s.dense)) {
		w = s.dense[client]
	} else if client >= maxDense {
		w = s.clients[client]
	}
	if w != nil {
		s.lastID, s.last = client, w
	}
	return w
}

// Has reports whether id is in the set.
func (s *Set) Has(id protocols.CommandID) bool {
	w := s.window(id.Client)
	return w != nil && w.has(id.Seq)
}

// Add inserts id and reports whether it was new.
func (s *Set) Add(id protocols.CommandID) bool {
	w := s.window(id.Client)
	if w == nil {
		w = &window{}
		if id.Seq < bigSeq {
			w.start, w.lo = id.Seq, id.Seq
		}
		switch c := id.Client; {
		case c < maxDense:
			if c >= uint64(len(s.dense)) {
				s.dense = append(s.dense, make([]*window, int(c)+1-len(s.dense))...)
			}
			s.dense[c] = w
		default:
			if s.clients == nil {
				s.clients = map[uint64]*window{}
			}
			s.clients[c] = w
		}
		s.lastID, s.last = id.Client, w
	}
	if !w.add(id.Seq) {
		return false
	}
	s.n++
	return true
}

// All yields every id of the set, in no particular order. The set must not
// change during the iteration.
func (s *Set) All() iter.Seq[protocols.CommandID] {
	return func(yield func(protocols.CommandID) bool) {
		for client, w := range s.dense {
			if w == nil {
				continue
			}
			for seq := range w.all() {
				if !yield(protocols.CommandID{Client: uint64(client), Seq: seq}) {
					return
				}
			}
		}
		for client, w := range s.clients {
			for seq := range w.all() {
				if !yield(protocols.CommandID{Client: client, Seq: seq}) {
					return
				}
			}
		}
	}
}

func (w *window) all() iter.Seq[uint64] {
	return func(yield func(uint64) bool) {
		for seq := range w.extra {
			if !yield(seq) {
				return
			}
		}
		for seq := w.start; seq < w.lo; seq++ {
			if _, hole := w.holes[seq]; !hole && !yield(seq) {
				return
			}
		}
		for i, word := range w.bits {
			for v := word; v != 0; v &= v - 1 {
				if !yield(w.lo + uint64(i)*64 + uint64(bits.TrailingZeros64(v))) {
					return
				}
			}
		}
	}
}

// Reset empties the set.
func (s *Set) Reset() { *s = Set{} }

func (w *window) has(seq uint64) bool {
	switch {
	case seq < w.start || seq >= bigSeq:
		_, ok := w.extra[seq]
		return ok
	case seq < w.lo:
		_, hole := w.holes[seq]
		return !hole
	}
	off := seq - w.lo
	if i := off / 64; i < uint64(len(w.bits)) {
		return w.bits[i]&(1<<(off%64)) != 0
	}
	_, ok := w.extra[seq]
	return ok
}

func (w *window) add(seq uint64) bool {
	switch {
	case seq < w.start || seq >= bigSeq:
		return addTo(&w.extra, seq)
	case seq < w.lo:
		if _, hole := w.holes[seq]; !hole {
			return false
		}
		delete(w.holes, seq)
		return true
	}
	i := (seq - w.lo) / 64
	switch {
	case i > maxWords:
		return addTo(&w.extra, seq)
	case i == maxWords:
		// The next word after a full bitmap: the bitmap slides by one
		// word.
		w.grow(maxWords)
		w.slide(1)
		i = maxWords - 1
	}
	w.grow(int(i) + 1)
	bit := uint64(1) << ((seq - w.lo) % 64)
	if w.bits[i]&bit != 0 {
		return false
	}
	w.bits[i] |= bit
	if i == 0 && w.bits[0] == ^uint64(0) {
		full := 1
		for full < len(w.bits) && w.bits[full] == ^uint64(0) {
			full++
		}
		w.slide(full)
	}
	return true
}

// slide drops the first k words of the bitmap (k <= len(w.bits)),
// remembering their non-members as holes.
func (w *window) slide(k int) {
	for j := range k {
		for v := ^w.bits[j]; v != 0; v &= v - 1 {
			if w.holes == nil {
				w.holes = map[uint64]struct{}{}
			}
			w.holes[w.lo+uint64(j)*64+uint64(bits.TrailingZeros64(v))] = struct{}{}
		}
	}
	n := copy(w.bits, w.bits[k:])
	clear(w.bits[n:])
	w.bits = w.bits[:n]
	w.lo += uint64(k) * 64
}

// grow extends the bitmap to n words; the members of extra in the words
// it now covers move into them.
func (w *window) grow(n int) {
	old := len(w.bits)
	if n <= old {
		return
	}
	w.bits = append(w.bits, make([]uint64, n-old)...)
	if len(w.extra) == 0 {
		return
	}
	from, to := w.lo+uint64(old)*64, w.lo+uint64(n)*64
	for seq := range w.extra {
		// bigSeq and above stay outliers even where the bitmap reaches
		// past bigSeq (has and add look for them in extra only).
		if seq >= from && seq < to && seq < bigSeq {
			off := seq - w.lo
			w.bits[off/64] |= 1 << (off % 64)
			delete(w.extra, seq)
		}
	}
}

func addTo(m *map[uint64]struct{}, seq uint64) bool {
	if _, ok := (*m)[seq]; ok {
		return false
	}
	if *m == nil {
		*m = map[uint64]struct{}{}
	}
	(*m)[seq] = struct{}{}
	return true
}
