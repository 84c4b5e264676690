package check

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// The fast exact sequential checkers (earliest-deadline-first for uniform
// counters, the write-order graph for registers) are cross-checked against
// the exhaustive search on small random histories, many of them violations:
// both are exact, so they must agree on every one.

// randomPrograms returns c client programs of up to m operations each, with
// sequential timestamps per client, reads with probability 1/2.
func randomPrograms(rng *rand.Rand, c, m int, read func(client int) (bool, int64), write func(client, k int) int64) [][]CounterOp {
	progs := make([][]CounterOp, c)
	for i := range progs {
		for k := range rng.IntN(m + 1) {
			isRead, v := read(i)
			op := CounterOp{Client: i, Call: int64(2 * k), Return: int64(2*k + 1), Read: isRead}
			if isRead {
				op.Value = v
			} else {
				op.Delta = write(i, k)
			}
			progs[i] = append(progs[i], op)
		}
	}
	return progs
}

func flat(progs [][]CounterOp) []CounterOp {
	var out []CounterOp
	for _, p := range progs {
		out = append(out, p...)
	}
	return out
}

func TestCounterSequentialAgreesWithSearch(t *testing.T) {
	violations := 0
	for seed := uint64(1); seed <= 3000; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		progs := randomPrograms(rng, 2+rng.IntN(2), 4,
			func(int) (bool, int64) { return rng.IntN(2) == 0, int64(rng.IntN(5)) },
			func(int, int) int64 { return 1 })
		ops := flat(progs)
		var total int64
		for _, op := range ops {
			total += op.Delta
		}
		final := make([]int64, len(progs))
		for i := range final {
			final[i] = total
		}
		fast := CounterSequential(ops, final)
		// The search, on the same programs with the finals appended.
		for i := range progs {
			progs[i] = append(progs[i], CounterOp{Client: i, Call: 100, Return: 101, Read: true, Value: total})
		}
		slow := counterSearch(progs)
		if errors.Is(fast, ErrViolation) != errors.Is(slow, ErrViolation) || (fast != nil && !errors.Is(fast, ErrViolation)) || (slow != nil && !errors.Is(slow, ErrViolation)) {
			t.Fatalf("seed %d: earliest-deadline-first says %v, the search says %v, on %v", seed, fast, slow, ops)
		}
		if fast != nil {
			violations++
		}
	}
	t.Logf("3000 random histories, %d of them violations", violations)
	if violations < 300 || violations > 2700 {
		t.Errorf("%d violations in 3000 random histories: the generator tests too little of one side", violations)
	}
}

func TestRegisterSequentialAgreesWithSearch(t *testing.T) {
	violations := 0
	for seed := uint64(1); seed <= 3000; seed++ {
		rng := rand.New(rand.NewPCG(seed, 2))
		// Writes write unique values client*10+k+1; reads return 0 or any of
		// the values written by someone (drawn from a small pool).
		c := 2 + rng.IntN(2)
		progs := randomPrograms(rng, c, 4,
			func(int) (bool, int64) {
				if rng.IntN(3) == 0 {
					return true, 0
				}
				return rng.IntN(2) == 0, int64(rng.IntN(c)*10 + rng.IntN(4) + 1)
			},
			func(i, k int) int64 { return int64(i*10 + k + 1) })
		written := make(map[int]bool)
		var ops []RegisterOp[int]
		for _, p := range progs {
			for _, op := range p {
				r := RegisterOp[int]{Client: op.Client, Call: op.Call, Return: op.Return, Write: !op.Read, Value: int(op.Value)}
				if r.Write {
					r.Value = int(op.Delta)
					written[r.Value] = true
				}
				ops = append(ops, r)
			}
		}
		fast := RegisterSequential(ops, nil)
		// The search over register states, without finals.
		sp := make([][]scOp[int], len(progs))
		for i, p := range progs {
			for k, op := range p {
				name := fmt.Sprintf("op %d", k)
				if op.Read {
					v := int(op.Value)
					sp[i] = append(sp[i], scOp[int]{read: true, at: op.Call, name: name, step: func(s int) (bool, int) { return s == v, s }})
				} else {
					v := int(op.Delta)
					sp[i] = append(sp[i], scOp[int]{at: op.Call, name: name, step: func(int) (bool, int) { return true, v }})
				}
			}
		}
		slow := searchSC(sp, 0, strconv.Itoa, nil, SearchBudget)
		if errors.Is(fast, ErrViolation) != errors.Is(slow, ErrViolation) || (fast != nil && !errors.Is(fast, ErrViolation)) || (slow != nil && !errors.Is(slow, ErrViolation)) {
			t.Fatalf("seed %d: the write-order graph says %v, the search says %v, on %v", seed, fast, slow, ops)
		}
		if fast != nil {
			violations++
		}
	}
	t.Logf("3000 random histories, %d of them violations", violations)
	if violations < 300 || violations > 2700 {
		t.Errorf("%d violations in 3000 random histories: the generator tests too little of one side", violations)
	}
}
