// Package gctune sizes the garbage collector's headroom for a server that
// holds a large, long-lived heap (millions of objects) and allocates little
// per request.
//
// Go's default (GOGC=100) lets the heap grow to twice the live heap before
// a collection: a node holding 100 MB of objects then uses 200 MB, and a
// node holding 5 MB collects every 5 MB of garbage. A Tuner keeps the
// headroom (the heap allowed above the live heap) at a fraction of the live
// heap instead, but never below a floor: collections stay rare on small
// heaps, and a large heap costs little more than itself. The price is more
// collections when the live heap is large and the allocation rate high,
// each marking the live heap; objects kept without pointers (as the DSO's
// scalar tables keep theirs) cost no marking.
//
// It adjusts runtime/debug.SetGCPercent after each collection, from the
// live heap that runtime/metrics reports. Setting GOGC in the environment
// turns it off: the user's choice wins.
package gctune

import (
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// MinHeadroom is the floor of the headroom: 4 MiB, the runtime's own
// minimum heap. A DSO call leaves a few dozen bytes of garbage (a 1 KB
// write about a kilobyte), so even 100,000 calls a second take a second
// or more to fill it; every MiB of floor is a MiB of resident memory of
// every idle node.
const MinHeadroom = 4 << 20

// minLive is the smallest live heap Percent reckons with: the runtime's
// own minimum heap at GOGC=100, which it scales by the percent before the
// first collection (a live heap of 0), so a percent computed for a tiny
// heap must not be applied to it.
const minLive = 4 << 20

// Percent returns the GOGC value that gives a live heap of live bytes (at
// least 4 MiB) a headroom of frac (a fraction, such as 0.125) of itself,
// and at least MinHeadroom: rounded up, at least 1.
func Percent(live uint64, frac float64) int {
	l := float64(max(live, minLive))
	head := max(float64(MinHeadroom), frac*l)
	return int(max(1, math.Ceil(100*head/l)))
}

// Start sizes the headroom to frac of the live heap from now until stop is
// called, checking every period for a new collection. It does nothing
// (and stop does nothing) if frac is not positive or GOGC is set.
func Start(frac float64, period time.Duration) (stop func()) {
	if frac <= 0 || os.Getenv("GOGC") != "" {
		return func() {}
	}
	done := make(chan struct{})
	t := tuner{frac: frac, set: debug.SetGCPercent}
	t.poll()
	go func() {
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				t.poll()
			}
		}
	}()
	return func() { close(done) }
}

// tuner sets the GC percent after each collection.
type tuner struct {
	frac    float64
	set     func(int) int // debug.SetGCPercent, or a test's
	cycles  uint64        // collections seen
	percent int           // last percent set (0: none yet)
	samples [2]metrics.Sample
}

// poll reads the collector's metrics and, after a new collection, adjusts
// the percent.
func (t *tuner) poll() {
	t.samples[0].Name = "/gc/cycles/total:gc-cycles"
	t.samples[1].Name = "/gc/heap/live:bytes"
	metrics.Read(t.samples[:])
	if t.samples[0].Value.Kind() != metrics.KindUint64 || t.samples[1].Value.Kind() != metrics.KindUint64 {
		return
	}
	cycles := t.samples[0].Value.Uint64()
	if cycles == t.cycles && t.percent != 0 {
		return
	}
	t.cycles = cycles
	t.adjust(t.samples[1].Value.Uint64())
}

// adjust sets the percent for a live heap of live bytes, unless it is
// within a tenth of the one set already (each change costs a stop of the
// world).
func (t *tuner) adjust(live uint64) {
	p := Percent(live, t.frac)
	if t.percent != 0 && p*10 >= t.percent*9 && p*10 <= t.percent*11 {
		return
	}
	t.percent = p
	t.set(p)
}
