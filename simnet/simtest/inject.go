package simtest

import (
	"math/rand/v2"
	"reflect"
	"testing"

	fuzz "github.com/google/gofuzz"
	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/simnet"
)

// Forger builds forged messages of a protocol with gofuzz: each is a
// random one of the sample message types, every field filled with random
// values within and outside the valid ranges (huge slot and sequence
// numbers, ballots from the future, empty and enormous lists), except that
// node ids are those of real nodes, 0, or one past the last node (an
// unknown peer): what a buggy or mismatched peer could send.
func Forger(samples []protocols.Message, nodes int) func(r *rand.Rand, from, to protocols.NodeID) protocols.Message {
	types := make([]reflect.Type, 0, len(samples))
	for _, m := range samples {
		types = append(types, reflect.TypeOf(m))
	}
	return func(r *rand.Rand, _, _ protocols.NodeID) protocols.Message {
		maxElems := 8
		if r.IntN(20) == 0 {
			maxElems = 2000 // enormous dependency sets, batches, lists
		}
		f := fuzz.NewWithSeed(r.Int64()).NilChance(0.1).NumElements(0, maxElems).Funcs(
			func(id *protocols.NodeID, c fuzz.Continue) { *id = protocols.NodeID(c.Intn(nodes + 2)) },
			func(g *protocols.GroupID, c fuzz.Continue) { *g = protocols.GroupID(c.Intn(4)) },
			func(n *uint64, c fuzz.Continue) {
				switch c.Intn(3) {
				case 0:
					*n = uint64(c.Intn(16)) // near the real ones
				case 1:
					*n = c.Uint64() // from the far future
				default:
					*n = uint64(c.Intn(1 << 20))
				}
			},
			func(s *string, c fuzz.Continue) {
				keys := []string{"k0", "k1", "c1", "g0/k0", "g1/k1", ""}
				*s = keys[c.Intn(len(keys))]
			},
			func(b *[]byte, c fuzz.Continue) {
				*b = make([]byte, c.Intn(24))
				for i := range *b {
					(*b)[i] = byte(c.Uint32())
				}
			},
		)
		v := reflect.New(types[r.IntN(len(types))])
		f.Fuzz(v.Interface())
		return v.Elem().Interface()
	}
}

// InjectForged runs cfg for seeds first.. first+n−1 with forged messages
// (Forger) injected every virtual millisecond while the fault window is
// open, mixed with the real traffic: no replica may panic (a panic fails
// the run), and every run must pass the checks of Check, liveness of the
// honest clients after the injection stops included. It returns the total
// of injected and ignored messages.
func InjectForged(t *testing.T, cfg simnet.Config, samples []protocols.Message, first uint64, n int) (injected, ignored int64) {
	t.Helper()
	nodes := cfg.Nodes
	if cfg.Groups > 0 {
		nodes = cfg.Groups * (2*max(cfg.F, 1) + 1)
	}
	cfg.Inject, cfg.InjectEvery = Forger(samples, nodes), 1000
	for seed := first; seed < first+uint64(n); seed++ {
		cfg.Seed = seed
		res, err := Check(cfg)
		require.NoError(t, err, "seed %d", seed)
		injected += res.Injected
		ignored += res.InjectIgnored
	}
	require.Positive(t, injected, "nothing was injected")
	t.Logf("%s: %d seeds from %d: %d forged messages injected, %d ignored (no record, send or execution), 0 panics, all checks passed",
		cfg.Protocol, n, first, injected, ignored)
	return injected, ignored
}
