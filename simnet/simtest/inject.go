package simtest

import (
	"math/rand/v2"
	"reflect"
	"testing"

	fuzz "github.com/google/gofuzz"
	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/simnet"
)

// Forger builds forged messages of a protocol with gofuzz: each is a
// random one of the sample message types, every field filled with random
// values within and outside the valid ranges (huge slot and sequence
// numbers, empty and enormous lists), except that node ids are those of
// real nodes, 0, or one past the last node (an unknown peer), and that
// ballots are foreign: owned by node 0 or an unknown node, or with a round
// absurdly far in the future (at least 2^40), and client commands come
// from clients outside the workload (see below). That is what a buggy or
// mismatched peer could send; a message with a current ballot and
// plausible fields could not be told from a real one (see "Hostile input"
// in package protocols). Confine, if given, restricts each forged message
// further in the same spirit (for the protocol's messages that carry no
// ballot).
func Forger(samples []protocols.Message, nodes int, multicast bool, confine ...Confine) func(r *rand.Rand, from, to protocols.NodeID) protocols.Message {
	types := make([]reflect.Type, 0, len(samples))
	var inner []reflect.Type // of messages nested in an interface field
	for _, m := range samples {
		types = append(types, reflect.TypeOf(m))
		if v := reflect.ValueOf(m); v.Kind() == reflect.Struct {
			for i := range v.NumField() {
				if f := v.Field(i); f.Kind() == reflect.Interface && !f.IsNil() {
					inner = append(inner, f.Elem().Type())
				}
			}
		}
	}
	return func(r *rand.Rand, _, _ protocols.NodeID) protocols.Message {
		f := fuzz.NewWithSeed(r.Int64()).NilChance(0.1).NumElements(0, 8).Funcs(
			func(id *protocols.NodeID, c fuzz.Continue) { *id = protocols.NodeID(c.Intn(nodes + 2)) },
			func(m *protocols.Message, c fuzz.Continue) {
				// A nested message (skeen's Paxos messages) is one of
				// the types nested in the samples, forged alike.
				if len(inner) == 0 {
					*m = nil
					return
				}
				v := reflect.New(inner[c.Intn(len(inner))])
				c.Fuzz(v.Interface())
				*m = v.Elem().Interface()
			},
			func(b *ballot.Ballot, c fuzz.Continue) {
				if c.Intn(2) == 0 {
					*b = ballot.Ballot{Round: uint64(c.Intn(16)), Node: protocols.NodeID(c.Intn(2) * (nodes + 1))}
				} else {
					*b = ballot.Ballot{Round: 1<<40 + c.Uint64()>>1, Node: protocols.NodeID(c.Intn(nodes + 2))}
				}
			},
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
			func(cmd *protocols.Command, c fuzz.Continue) {
				// A client's command is relayed verbatim, not vouched
				// for by the relaying peer: a forged one comes from a
				// client no workload has (0 or from 2^32 on), touches
				// distinct keys and carries a payload too short to be a
				// put, so that it changes no value the checks see. In
				// a multicast run it names no key, hence no destination
				// group: a delivered command no client multicast would
				// be a lie about a client (the integrity check).
				keys := []string{"k0", "k1", "k2", "c1", "g0/k0", "g1/k1", ""}
				if multicast {
					keys = nil
				}
				c.Rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
				*cmd = protocols.Command{
					ID:      protocols.CommandID{Client: uint64(c.Intn(2)) << (32 + c.Intn(31)), Seq: c.Uint64()},
					Keys:    keys[:c.Intn(min(4, len(keys)+1))],
					Payload: make([]byte, c.Intn(9)),
					Acked:   c.Uint64(),
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
		if r.IntN(20) == 0 {
			// An enormous dependency set, batch or list: one list field
			// of the message (not nested lists too, which would make the
			// forger itself allocate without bound) grows to 2,000
			// elements.
			var lists []reflect.Value
			for i := range v.Elem().NumField() {
				if fv := v.Elem().Field(i); fv.Kind() == reflect.Slice && fv.CanSet() {
					lists = append(lists, fv)
				}
			}
			if len(lists) > 0 {
				l := lists[r.IntN(len(lists))]
				big := reflect.MakeSlice(l.Type(), 2000, 2000)
				for i := range big.Len() {
					f.Fuzz(big.Index(i).Addr().Interface())
				}
				l.Set(big)
			}
		}
		m := v.Elem().Interface()
		for _, c := range confine {
			m = c(r, m)
		}
		return m
	}
}

// Confine restricts a forged message to what an honest but buggy or
// mismatched peer could send, for instance by moving its positions out of
// range; it returns the message to inject.
type Confine func(r *rand.Rand, m protocols.Message) protocols.Message

// InjectForged runs cfg for seeds first.. first+n−1 with forged messages
// (Forger) injected every virtual millisecond while the fault window is
// open, mixed with the real traffic: no replica may panic (a panic fails
// the run), and every run must pass the checks of Check, liveness of the
// honest clients after the injection stops included. It returns the total
// of injected and ignored messages.
func InjectForged(t *testing.T, cfg simnet.Config, samples []protocols.Message, first uint64, n int, confine ...Confine) (injected, ignored int64) {
	t.Helper()
	nodes := cfg.Nodes
	if cfg.Groups > 0 {
		nodes = cfg.Groups * (2*max(cfg.F, 1) + 1)
	}
	cfg.Inject, cfg.InjectEvery = Forger(samples, nodes, cfg.Groups > 0, confine...), 1000
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
