package lincheck

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

var (
	diffSeed = flag.Uint64("diff.seed", 1, "TestUniqueKVAgreesWithPorcupine: seed of the first history")
	diffN    = flag.Int("diff.n", 100000, "TestUniqueKVAgreesWithPorcupine: number of histories")
)

// genOp is an operation of a generated history.
type genOp struct {
	client    int
	key       string
	put       bool
	value     uint64 // put: the value written
	call, ret int64
	info      bool   // outcome unknown
	output    uint64 // ok get: the value read
}

// genHistory draws a small KVModel history with unique put values from
// seed: 1-3 keys, 2-5 clients, 1-12 operations, some of unknown outcome.
// It simulates an atomic register per key (every operation takes effect at
// a random instant of its interval, and an info put at a random instant
// after its call, or never), so the history is linearizable, unless
// mutate is set: then one or two random mutations are applied, which often
// break it. mutation says which ("" for none).
func genHistory(seed uint64, mutate bool) (ops []porcupine.Operation, mutation string) {
	rng := rand.New(rand.NewPCG(seed, 0x6c696e636865636b))
	keys := 1 + rng.IntN(3)
	clients := 2 + rng.IntN(4)
	n := 1 + rng.IntN(12)
	type event struct {
		at  int64 // linearization point
		seq int   // tie-break
		op  int
	}
	free := make([]int64, clients) // when each client may call next
	g := make([]genOp, n)
	var events []event
	next := uint64(1)
	for i := range g {
		c := rng.IntN(clients)
		call := free[c] + rng.Int64N(4)
		dur := rng.Int64N(7)
		o := genOp{client: c, key: fmt.Sprintf("k%d", rng.IntN(keys)), put: rng.IntN(2) == 0, call: call, ret: call + dur}
		o.info = rng.IntN(7) == 0
		at := call + rng.Int64N(dur+1)
		if o.info { // takes effect any time after its call, or never
			at = call + rng.Int64N(20)
			if rng.IntN(3) == 0 {
				at = -1
			}
		}
		if o.put {
			o.value = next
			next++
		}
		g[i] = o
		free[c] = o.ret + rng.Int64N(2) // the next call may tie with this return
		if at >= 0 {
			events = append(events, event{at: at, seq: rng.IntN(1000), op: i})
		}
	}
	slices.SortFunc(events, func(a, b event) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.seq - b.seq
	})
	state := map[string]uint64{}
	for _, e := range events {
		o := &g[e.op]
		if o.put {
			state[o.key] = o.value
		} else {
			o.output = state[o.key]
		}
	}
	if mutate {
		var done []string
		for range 1 + rng.IntN(2) {
			if m := mutateHistory(rng, g, next); m != "" {
				done = append(done, m)
			}
		}
		mutation = strings.Join(done, "; ")
	}
	rec := NewRecorder()
	for _, o := range g {
		id := rec.Invoke(o.client, KVInput{Key: o.key, Put: o.put, Value: o.value}, o.call)
		if o.info {
			rec.Info(id)
		} else {
			rec.Ok(id, KVOutput{Value: o.output}, o.ret)
		}
	}
	return rec.Operations(), mutation
}

// mutateHistory applies one random mutation to g and names it ("" if the
// one drawn did not apply). unused is a value no put writes.
func mutateHistory(rng *rand.Rand, g []genOp, unused uint64) string {
	var gets, puts []int
	for i, o := range g {
		if o.put {
			puts = append(puts, i)
		} else if !o.info {
			gets = append(gets, i)
		}
	}
	switch m := rng.IntN(6); {
	case m == 0 && len(gets) > 0 && len(puts) > 0: // a get reads another put's value
		i, j := gets[rng.IntN(len(gets))], puts[rng.IntN(len(puts))]
		g[i].output = g[j].value
		return fmt.Sprintf("get %d reads put %d", i, j)
	case m == 1 && len(gets) > 0: // a get reads the initial value, or a value never written
		i := gets[rng.IntN(len(gets))]
		v := uint64(0)
		if rng.IntN(4) == 0 {
			v = unused
		}
		g[i].output = v
		return fmt.Sprintf("get %d reads %d", i, v)
	case m == 2: // an operation moves in time
		i := rng.IntN(len(g))
		d := rng.Int64N(9) - 4
		g[i].call = max(0, g[i].call+d)
		g[i].ret = max(g[i].call, g[i].ret+d)
		return fmt.Sprintf("op %d moves by %d", i, d)
	case m == 3: // an operation's interval shrinks to one end
		i := rng.IntN(len(g))
		if rng.IntN(2) == 0 {
			g[i].call = g[i].ret
		} else {
			g[i].ret = g[i].call
		}
		return fmt.Sprintf("op %d shrinks", i)
	case m == 4 && len(puts) > 1: // two puts exchange their values
		i, j := puts[rng.IntN(len(puts))], puts[rng.IntN(len(puts))]
		g[i].value, g[j].value = g[j].value, g[i].value
		return fmt.Sprintf("puts %d and %d swap values", i, j)
	case m == 5 && len(puts) > 0: // a put of unknown outcome completes, or the reverse
		i := puts[rng.IntN(len(puts))]
		g[i].info = !g[i].info
		return fmt.Sprintf("put %d flips info", i)
	}
	return ""
}

// formatHistory prints ops one a line, for a failure message.
func formatHistory(ops []porcupine.Operation) string {
	var b strings.Builder
	for i := range ops {
		fmt.Fprintf(&b, "  %2d %s\n", i, describeOp(ops, i))
	}
	return b.String()
}

// TestUniqueKVAgreesWithPorcupine is the differential test: on tens of
// thousands of random small histories, half of them mutated, CheckUniqueKV
// and Porcupine reach the same verdict. Both verdicts must occur often, or
// the test proves little.
func TestUniqueKVAgreesWithPorcupine(t *testing.T) {
	n := *diffN
	if testing.Short() {
		n = min(n, 3000)
	}
	var legal, illegal int
	for i := range n {
		seed := *diffSeed + uint64(i)
		ops, mutation := genHistory(seed, i%2 == 1)
		require.NoError(t, UniqueKV(ops), "seed %d", seed)
		want := Illegal
		if porcupine.CheckOperations(KVModel, ops) {
			want = Ok
			legal++
		} else {
			illegal++
		}
		if i%2 == 0 {
			require.Equal(t, Ok, want, "seed %d: an unmutated history is linearizable by construction:\n%s", seed, formatHistory(ops))
		}
		got := CheckUniqueKV(ops, testTimeout)
		if got.Verdict != want {
			t.Fatalf("seed %d (mutation %q): Porcupine says %s, CheckUniqueKV says %s (%v); rerun with -diff.seed=%d -diff.n=1\n%s",
				seed, mutation, want, got.Verdict, got.Err(), seed, formatHistory(ops))
		}
	}
	t.Logf("%d histories agree: %d linearizable, %d not (seeds %d..%d)", n, legal, illegal, *diffSeed, *diffSeed+uint64(n)-1)
	require.Greater(t, illegal, n/10, "too few non-linearizable histories to compare on")
	require.Greater(t, legal, n/2, "too few linearizable histories to compare on")
}

// kvPut and kvGet are shorthands for ok operations on a KVModel history.
func kvPut(client int, call, ret int64, key string, v uint64) porcupine.Operation {
	return op(client, call, ret, KVInput{Key: key, Put: true, Value: v}, KVOutput{})
}

func kvGet(client int, call, ret int64, key string, v uint64) porcupine.Operation {
	return op(client, call, ret, KVInput{Key: key}, KVOutput{Value: v})
}

func kvInfoPut(client int, call int64, key string, v uint64) porcupine.Operation {
	return infoOp(client, call, KVInput{Key: key, Put: true, Value: v})
}

// TestUniqueKVPlantedViolations is the sabotage test: each history carries
// a planted violation that CheckUniqueKV must report Illegal, naming the
// key, and its control (the same history without the plant) must be Ok.
// Porcupine must agree on both, so the plants are real violations.
func TestUniqueKVPlantedViolations(t *testing.T) {
	base := []porcupine.Operation{ // key y is fine throughout
		kvPut(3, 0, 100, "y", 1),
		kvGet(4, 101, 110, "y", 1),
	}
	cases := []struct {
		name           string
		control, plant []porcupine.Operation
		mentions       string
	}{{
		name: "stale read",
		control: []porcupine.Operation{
			kvPut(0, 0, 10, "x", 1), kvPut(0, 20, 30, "x", 2), kvGet(1, 40, 50, "x", 2),
		},
		plant: []porcupine.Operation{
			kvPut(0, 0, 10, "x", 1), kvPut(0, 20, 30, "x", 2), kvGet(1, 40, 50, "x", 1),
		},
		mentions: "must each take effect before the other",
	}, {
		name: "read before write",
		control: []porcupine.Operation{
			kvGet(1, 0, 10, "x", 0), kvPut(0, 5, 30, "x", 1),
		},
		plant: []porcupine.Operation{
			kvGet(1, 0, 10, "x", 1), kvPut(0, 20, 30, "x", 1),
		},
		mentions: "returns before put(x, 1)",
	}, {
		name: "lost write",
		control: []porcupine.Operation{
			kvPut(0, 0, 10, "x", 1), kvGet(1, 20, 30, "x", 1), kvPut(2, 25, 40, "x", 2), kvGet(1, 50, 60, "x", 2),
		},
		plant: []porcupine.Operation{ // put 2 completed, yet a later get still reads 1
			kvPut(0, 0, 10, "x", 1), kvGet(1, 20, 30, "x", 1), kvPut(2, 25, 40, "x", 2), kvGet(1, 50, 60, "x", 1),
		},
		mentions: "put 2",
	}, {
		name: "read of a value never written",
		control: []porcupine.Operation{
			kvPut(0, 0, 10, "x", 1), kvGet(1, 5, 15, "x", 1),
		},
		plant: []porcupine.Operation{
			kvPut(0, 0, 10, "x", 1), kvGet(1, 5, 15, "x", 7),
		},
		mentions: "no put to its key wrote",
	}, {
		name: "initial value read after a write completed",
		control: []porcupine.Operation{
			kvGet(1, 0, 10, "x", 0), kvPut(0, 5, 10, "x", 1), kvGet(1, 20, 30, "x", 1),
		},
		plant: []porcupine.Operation{
			kvPut(0, 0, 10, "x", 1), kvGet(1, 20, 30, "x", 0),
		},
		mentions: "the initial value 0",
	}, {
		name: "unknown-outcome write observed, then unobserved",
		control: []porcupine.Operation{
			kvPut(0, 0, 10, "x", 1), kvInfoPut(2, 5, "x", 2), kvGet(1, 20, 30, "x", 1), kvGet(1, 40, 50, "x", 2),
		},
		plant: []porcupine.Operation{
			kvPut(0, 0, 10, "x", 1), kvInfoPut(2, 5, "x", 2), kvGet(1, 20, 30, "x", 2), kvGet(1, 40, 50, "x", 1),
		},
		mentions: "must each take effect before the other",
	}, {
		name: "overlapping forward zones",
		control: []porcupine.Operation{
			kvPut(0, 0, 10, "x", 1), kvPut(1, 0, 10, "x", 2), kvGet(2, 20, 30, "x", 2), kvGet(3, 20, 30, "x", 2),
		},
		plant: []porcupine.Operation{ // after both puts, one get reads 1 and a concurrent one reads 2, then 1 again
			kvPut(0, 0, 10, "x", 1), kvPut(1, 0, 10, "x", 2), kvGet(2, 20, 30, "x", 1), kvGet(3, 20, 30, "x", 2),
			kvGet(2, 40, 50, "x", 2), kvGet(3, 40, 50, "x", 1),
		},
		mentions: "must each take effect before the other",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			control := append(slices.Clone(base), tc.control...)
			require.Equal(t, Ok, Check(KVModel, control, testTimeout).Verdict, "Porcupine on the control")
			res := CheckUniqueKV(control, testTimeout)
			require.Equal(t, Ok, res.Verdict, "control: %v", res.Err())
			require.NoError(t, res.Err())

			plant := append(slices.Clone(base), tc.plant...)
			require.Equal(t, Illegal, Check(KVModel, plant, testTimeout).Verdict, "Porcupine on the plant")
			res = CheckUniqueKV(plant, testTimeout)
			require.Equal(t, Illegal, res.Verdict)
			require.Equal(t, CheckerUniqueValues, res.Checker)
			err := res.Err()
			require.ErrorIs(t, err, ErrIllegal)
			require.Contains(t, err.Error(), `key "x"`)
			require.Contains(t, err.Error(), tc.mentions)
			require.NotContains(t, err.Error(), "disagree")
			require.Equal(t, 2, res.Partitions)
		})
	}
}

// TestCheckUniqueKVWritesReportOfFailingKey checks that a violation found
// by CheckUniqueKV still gets Porcupine's visualization, of the failing key
// only.
func TestCheckUniqueKVWritesReportOfFailingKey(t *testing.T) {
	var ops []porcupine.Operation
	for i := range 20 { // a long, legal history on key y
		ops = append(ops, kvPut(0, int64(10*i), int64(10*i+5), "y", uint64(i+1)), kvGet(1, int64(10*i+6), int64(10*i+9), "y", uint64(i+1)))
	}
	ops = append(ops, kvPut(2, 0, 10, "x", 1), kvPut(2, 20, 30, "x", 2), kvGet(3, 40, 50, "x", 1))
	res := CheckUniqueKV(ops, testTimeout)
	require.Equal(t, Illegal, res.Verdict)
	require.Len(t, res.Info.PartialLinearizations(), 1, "the report covers key x alone")
	path := filepath.Join(t.TempDir(), "report.html")
	require.NoError(t, res.WriteHTML(path))
	html, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(html), "put(x, 2)")
	require.NotContains(t, string(html), "put(y, 1)")
}

// TestCheckKVChoosesChecker checks that CheckKV uses CheckUniqueKV exactly
// when the put values are unique, and that CheckUniqueKV refuses the rest
// with Unknown.
func TestCheckKVChoosesChecker(t *testing.T) {
	unique := []porcupine.Operation{kvPut(0, 0, 10, "x", 1), kvGet(1, 20, 30, "x", 1), kvPut(0, 0, 10, "y", 1)}
	require.NoError(t, UniqueKV(unique), "values may repeat across keys")
	res := CheckKV(unique, testTimeout)
	require.Equal(t, Ok, res.Verdict)
	require.Equal(t, CheckerUniqueValues, res.Checker)
	require.ErrorContains(t, res.WriteHTML(filepath.Join(t.TempDir(), "ok.html")), "nothing to draw")

	for name, ops := range map[string][]porcupine.Operation{
		"duplicate value": {kvPut(0, 0, 10, "x", 1), kvPut(1, 20, 30, "x", 1), kvGet(1, 40, 50, "x", 1)},
		"put of 0":        {kvPut(0, 0, 10, "x", 0), kvGet(1, 20, 30, "x", 0)},
		"other model":     {op(0, 0, 10, CounterInput{Name: "c", Delta: 1}, CounterOutput{Value: 1})},
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, UniqueKV(ops), ErrNotUniqueKV)
			res := CheckUniqueKV(ops, testTimeout)
			require.Equal(t, Unknown, res.Verdict)
			require.ErrorIs(t, res.Err(), ErrUnknown)
			require.ErrorIs(t, res.Err(), ErrNotUniqueKV)
			if name != "other model" {
				res = CheckKV(ops, testTimeout)
				require.Equal(t, CheckerPorcupine, res.Checker)
				require.Equal(t, Ok, res.Verdict, "err: %v", res.Err())
			}
		})
	}
}

// TestCheckUniqueKVDecidesWhatPorcupineCannot: the history that makes
// Porcupine time out (40 concurrent puts and a get of a value nobody wrote)
// is decided at once; Porcupine's drawing of it then times out, which the
// error says.
func TestCheckUniqueKVDecidesWhatPorcupineCannot(t *testing.T) {
	res := CheckUniqueKV(hardHistory(40), 50*time.Millisecond)
	require.Equal(t, Illegal, res.Verdict)
	require.ErrorContains(t, res.Err(), "get(x) → 41 (client 40, 0..1000) returns a value that no put to its key wrote")
	require.ErrorContains(t, res.Err(), "Porcupine timed out on this key")
}
