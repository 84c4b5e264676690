package check

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// ErrViolation is wrapped by every error that reports a history violating
// the level it was checked against.
var ErrViolation = errors.New("check: the history violates the level")

// ErrUndecided is wrapped by the error of a checker that could not decide:
// its search ran out of budget, or the history is outside what it decides
// (say, a register history whose writes are not unique). It is never a pass.
var ErrUndecided = errors.New("check: undecided (not a pass)")

// ErrBadHistory is wrapped by the error for a history that is not well
// formed: a return before its call, two operations of one client that
// overlap, finals for fewer replicas than there are clients.
var ErrBadHistory = errors.New("check: malformed history")

// PorcupineTimeout bounds each Porcupine run of the linearizability checkers;
// a run that does not finish in time is ErrUndecided.
const PorcupineTimeout = time.Minute

// shortcutTimeout bounds the linearizability check that a sequential
// checker may run first, as a shortcut: a linearizable history is
// sequentially consistent.
const shortcutTimeout = 5 * time.Second

// SearchBudget bounds the number of states the exact searches of the
// sequential checkers visit; a search that needs more is ErrUndecided.
const SearchBudget = 1 << 21

// span is what every operation type has: its client and interval.
type span struct {
	client    int
	call, ret int64
}

// programOrder returns, per client, the indices of its operations in
// program order (by invocation), and checks that the history is well
// formed: intervals are ordered, one client's operations do not overlap,
// and there is a final for every client when finals are given (nFinal >
// 0). Clients are numbered from 0; a client with no operation has an empty
// program.
func programOrder(spans []span, nFinal int) ([][]int, error) {
	n := nFinal
	for i, s := range spans {
		if s.client < 0 {
			return nil, fmt.Errorf("%w: operation %d has client %d", ErrBadHistory, i, s.client)
		}
		if s.ret < s.call {
			return nil, fmt.Errorf("%w: operation %d of client %d returns at %d, before its call at %d", ErrBadHistory, i, s.client, s.ret, s.call)
		}
		n = max(n, s.client+1)
	}
	if nFinal > 0 && nFinal < n {
		return nil, fmt.Errorf("%w: %d finals for %d clients (want one final per replica)", ErrBadHistory, nFinal, n)
	}
	po := make([][]int, n)
	for i, s := range spans {
		po[s.client] = append(po[s.client], i)
	}
	for c, ops := range po {
		slices.SortStableFunc(ops, func(a, b int) int { return cmpInt(spans[a].call, spans[b].call) })
		for k := 1; k < len(ops); k++ {
			if spans[ops[k-1]].ret > spans[ops[k]].call {
				return nil, fmt.Errorf("%w: client %d runs operations %d and %d at once (a handle is for one goroutine at a time)", ErrBadHistory, c, ops[k-1], ops[k])
			}
		}
	}
	return po, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// end returns a timestamp after every timestamp of the history, for the
// finals.
func end(spans []span) int64 {
	var t int64
	for _, s := range spans {
		t = max(t, s.ret)
	}
	return t + 1
}

// interner numbers the distinct values of a history: V's zero value is 0,
// the others count from 1.
type interner[V comparable] struct {
	ids    map[V]int
	values []V
}

func newInterner[V comparable]() *interner[V] {
	var zero V
	return &interner[V]{ids: map[V]int{zero: 0}, values: []V{zero}}
}

func (in *interner[V]) id(v V) int {
	if id, ok := in.ids[v]; ok {
		return id
	}
	in.values = append(in.values, v)
	in.ids[v] = len(in.values) - 1
	return len(in.values) - 1
}

// violation formats an error wrapping ErrViolation.
func violation(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrViolation}, args...)...)
}

// undecided formats an error wrapping ErrUndecided.
func undecided(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUndecided}, args...)...)
}
