package explore

import (
	"math/rand/v2"
	"strconv"

	"github.com/blossom-dso/blossom/simnet"
)

// Guided replays a list of decisions: at each step it takes the next
// decision if it is enabled and skips it otherwise (Skipped counts those);
// when the list runs out it picks the oldest message, submit or reply in
// flight, and ends the run when none is left (Tail).
type Guided struct {
	// Decisions are choice labels.
	Decisions []string
	// Skipped counts the decisions that were not enabled when their turn
	// came.
	Skipped int
	next    int
}

// Next implements simnet.Scheduler.
func (g *Guided) Next(_ int, enabled []simnet.Choice) int {
	for g.next < len(g.Decisions) {
		d := g.Decisions[g.next]
		g.next++
		for i, c := range enabled {
			if c.Label() == d {
				return i
			}
		}
		g.Skipped++
	}
	return Tail(enabled)
}

// Tail is the default policy after the decisions: the oldest message,
// submit or reply in flight, never a tick or a fault; -1 if there is none.
func Tail(enabled []simnet.Choice) int {
	for i, c := range enabled {
		switch c.Kind {
		case simnet.ChoiceDeliver, simnet.ChoiceSubmit, simnet.ChoiceReply:
			return i
		}
	}
	return -1
}

// Random picks uniformly among the enabled choices (a random walk).
type Random struct {
	// Rand is the source of the walk.
	Rand *rand.Rand
}

// Next implements simnet.Scheduler.
func (r *Random) Next(_ int, enabled []simnet.Choice) int { return r.Rand.IntN(len(enabled)) }

// PCT is the probabilistic concurrency testing scheduler of Burckhardt et
// al. (ASPLOS 2010), adapted to message passing as in PCTCP (Ozkan et al.,
// OOPSLA 2018): the "threads" are chains of events — each channel i->j,
// each client's submits, the replies, each replica's ticks — with random
// distinct priorities, and the enabled event of the highest-priority chain
// runs, oldest first within a chain. At Depth−1 change points drawn
// uniformly from the first K steps the chain about to run drops below
// every other. A bug that needs d ordering constraints is found by one run
// with probability at least 1/(n·K^(d−1)) for n chains.
//
// Faults within the budget are injected at steps drawn uniformly from the
// first K: a drop or duplicate replaces the delivery chosen at its step, a
// crash takes the replica about to act down, and a restart brings back a
// crashed replica at a later drawn step.
type PCT struct {
	rand   *rand.Rand
	depth  int
	prio   map[string]float64
	change map[int]int // step -> change point number (1..depth-1)
	faults map[int]simnet.ChoiceKind
}

// NewPCT returns a PCT scheduler for one run: depth d, an estimate k of the
// run's length in steps, and the budget of faults to place.
func NewPCT(r *rand.Rand, d, k int, b simnet.Budget) *PCT {
	k = max(k, 1)
	p := &PCT{rand: r, depth: d, prio: map[string]float64{}, change: map[int]int{}, faults: map[int]simnet.ChoiceKind{}}
	for i := 1; i < d; i++ {
		p.change[r.IntN(k)] = i
	}
	place := func(n int, kind simnet.ChoiceKind) {
		for range n {
			p.faults[r.IntN(k)] = kind
		}
	}
	place(b.Drops, simnet.ChoiceDrop)
	place(b.Dups, simnet.ChoiceDup)
	place(b.Crashes, simnet.ChoiceCrash)
	place(b.Crashes, simnet.ChoiceRestart)
	return p
}

// chain names the chain of a choice.
func chain(c simnet.Choice) string {
	switch c.Kind {
	case simnet.ChoiceDeliver, simnet.ChoiceDrop, simnet.ChoiceDup:
		return "m" + strconv.Itoa(c.From) + ">" + strconv.Itoa(c.Node)
	case simnet.ChoiceSubmit:
		return "s" + strconv.Itoa(c.From)
	case simnet.ChoiceReply:
		return "r"
	case simnet.ChoiceTick:
		return "t" + strconv.Itoa(c.Node)
	}
	return "f" + strconv.Itoa(c.Node)
}

func (p *PCT) priority(ch string) float64 {
	v, ok := p.prio[ch]
	if !ok {
		// A new chain gets a random priority above every change point's.
		v = float64(p.depth) + p.rand.Float64()
		p.prio[ch] = v
	}
	return v
}

// Next implements simnet.Scheduler.
func (p *PCT) Next(step int, enabled []simnet.Choice) int {
	best := -1
	pick := func() {
		best = -1
		var bp float64
		for i, c := range enabled {
			if c.Fault() {
				continue
			}
			if v := p.priority(chain(c)); best < 0 || v > bp {
				best, bp = i, v
			}
		}
	}
	pick()
	if n, ok := p.change[step]; ok && best >= 0 {
		p.prio[chain(enabled[best])] = float64(p.depth - n)
		pick()
	}
	if kind, ok := p.faults[step]; ok {
		if f := p.fault(kind, enabled, best); f >= 0 {
			return f
		}
	}
	return best
}

// fault returns the fault of kind to inject instead of choice best, or -1.
func (p *PCT) fault(kind simnet.ChoiceKind, enabled []simnet.Choice, best int) int {
	var cands []int
	for i, c := range enabled {
		if c.Kind != kind {
			continue
		}
		switch kind {
		case simnet.ChoiceDrop, simnet.ChoiceDup:
			if best >= 0 && c.Node == enabled[best].Node && c.From == enabled[best].From && c.N == enabled[best].N {
				return i
			}
		case simnet.ChoiceCrash:
			if best >= 0 && c.Node == enabled[best].Node {
				return i
			}
			cands = append(cands, i)
		default:
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		return -1
	}
	return cands[p.rand.IntN(len(cands))]
}
