package dso_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/stretchr/testify/require"
)

// parkLog builds objects whose parked calls have IDs and record their
// answers as "id=value" or "id!error".
type parkLog struct {
	reg     *dso.Registry
	answers []string
}

func (l *parkLog) waiter(id string) *dso.Waiter {
	w := dso.NewWaiter(func(v any, err error) {
		if err != nil {
			l.answers = append(l.answers, fmt.Sprintf("%s!%v", id, err))
		} else {
			l.answers = append(l.answers, fmt.Sprintf("%s=%v", id, v))
		}
	})
	w.ID = id
	return w
}

// call invokes method on obj as the call id; it returns the immediate
// result, or "parked".
func (l *parkLog) call(t *testing.T, obj dso.Object, typ, id, method string, args ...any) any {
	t.Helper()
	inv := dso.NewInvocation(dso.Ref{Type: typ, Key: "k"}, method, args, func() *dso.Waiter { return l.waiter(id) })
	v, err := obj.Invoke(inv)
	require.NoError(t, err, "%s %s", id, method)
	if inv.Parked() != nil {
		return "parked"
	}
	return v
}

func (l *parkLog) make(t *testing.T, typ string, ctor ...any) dso.Object {
	t.Helper()
	c, _, ok := l.reg.Lookup(typ)
	require.True(t, ok)
	obj, err := c(ctor)
	require.NoError(t, err)
	return obj
}

// roundTrip encodes obj, rebuilds it from a blank object, checks that the
// rebuilt object encodes to the same bytes and that its parked calls came
// back in order, and returns it.
func (l *parkLog) roundTrip(t *testing.T, typ string, obj dso.Object, wantIDs ...string) dso.Object {
	t.Helper()
	b, err := obj.(dso.ParkedPersister).MarshalParked()
	require.NoError(t, err)
	again, err := obj.(dso.ParkedPersister).MarshalParked()
	require.NoError(t, err)
	require.Equal(t, b, again, "MarshalParked is not deterministic")
	blank, err := l.reg.Blank(typ)
	require.NoError(t, err)
	var ids []string
	err = blank.(dso.ParkedPersister).UnmarshalParked(b, func(id string, data any) (*dso.Waiter, error) {
		ids = append(ids, id)
		return l.waiter(id), nil
	})
	require.NoError(t, err)
	require.Equal(t, wantIDs, ids, "parked calls revived out of order")
	b2, err := blank.(dso.ParkedPersister).MarshalParked()
	require.NoError(t, err)
	require.Equal(t, b, b2, "state changed through MarshalParked/UnmarshalParked")
	return blank
}

func TestMarshalParkedBarrier(t *testing.T) {
	l := &parkLog{reg: dso.NewRegistry()}
	b := l.make(t, dso.TypeCyclicBarrier, int64(3))
	require.Equal(t, "parked", l.call(t, b, dso.TypeCyclicBarrier, "a", "await"))
	require.Equal(t, "parked", l.call(t, b, dso.TypeCyclicBarrier, "b", "await"))
	r := l.roundTrip(t, dso.TypeCyclicBarrier, b, "a", "b")
	require.Equal(t, int64(3), l.call(t, r, dso.TypeCyclicBarrier, "q", "getParties"))
	require.Equal(t, int64(0), l.call(t, r, dso.TypeCyclicBarrier, "c", "await"))
	require.Equal(t, []string{"a=0", "b=0"}, l.answers)
	require.Equal(t, int64(1), l.call(t, r, dso.TypeCyclicBarrier, "q", "generation"))
}

func TestMarshalParkedSemaphoreFIFO(t *testing.T) {
	l := &parkLog{reg: dso.NewRegistry()}
	s := l.make(t, dso.TypeSemaphore, int64(1))
	require.Equal(t, "parked", l.call(t, s, dso.TypeSemaphore, "big", "acquire", int64(3)))
	require.Equal(t, "parked", l.call(t, s, dso.TypeSemaphore, "small", "acquire", int64(1)))
	r := l.roundTrip(t, dso.TypeSemaphore, s, "big", "small")
	require.Equal(t, int64(1), l.call(t, r, dso.TypeSemaphore, "q", "availablePermits"))
	// Two more permits serve the head (3) first, then nothing is left for
	// the small one: FIFO survives the round trip.
	l.call(t, r, dso.TypeSemaphore, "rel", "release", int64(2))
	require.Equal(t, []string{"big=<nil>"}, l.answers)
	l.call(t, r, dso.TypeSemaphore, "rel", "release", int64(1))
	require.Equal(t, []string{"big=<nil>", "small=<nil>"}, l.answers)
}

func TestMarshalParkedLatchFutureRendezvous(t *testing.T) {
	l := &parkLog{reg: dso.NewRegistry()}
	lt := l.make(t, dso.TypeCountDownLatch, int64(2))
	require.Equal(t, "parked", l.call(t, lt, dso.TypeCountDownLatch, "w", "await"))
	l.call(t, lt, dso.TypeCountDownLatch, "c", "countDown")
	r := l.roundTrip(t, dso.TypeCountDownLatch, lt, "w")
	l.call(t, r, dso.TypeCountDownLatch, "c", "countDown")
	require.Equal(t, []string{"w=<nil>"}, l.answers)

	l.answers = nil
	f := l.make(t, dso.TypeFuture)
	require.Equal(t, "parked", l.call(t, f, dso.TypeFuture, "g1", "get"))
	require.Equal(t, "parked", l.call(t, f, dso.TypeFuture, "g2", "get"))
	r = l.roundTrip(t, dso.TypeFuture, f, "g1", "g2")
	value := map[string]any{"z": int64(1), "a": []any{"x", map[string]any{"n": 2.5, "m": nil}}}
	require.Equal(t, true, l.call(t, r, dso.TypeFuture, "s", "set", value))
	require.Len(t, l.answers, 2)
	r2 := l.roundTrip(t, dso.TypeFuture, r)
	require.Equal(t, value, l.call(t, r2, dso.TypeFuture, "g3", "get"))

	l.answers = nil
	rv := l.make(t, dso.TypeRendezvous)
	require.Equal(t, "parked", l.call(t, rv, dso.TypeRendezvous, "x", "exchange", []byte("mine")))
	r = l.roundTrip(t, dso.TypeRendezvous, rv, "x")
	require.Equal(t, []byte("mine"), l.call(t, r, dso.TypeRendezvous, "y", "exchange", "yours"))
	require.Equal(t, []string{"x=yours"}, l.answers)
}

func TestMarshalParkedPipe(t *testing.T) {
	l := &parkLog{reg: dso.NewRegistry()}
	p := l.make(t, dso.TypePipe, int64(1))
	l.call(t, p, dso.TypePipe, "p1", "put", "a")
	require.Equal(t, "parked", l.call(t, p, dso.TypePipe, "p2", "put", int64(2)))
	require.Equal(t, "parked", l.call(t, p, dso.TypePipe, "p3", "put", []any{"c"}))
	r := l.roundTrip(t, dso.TypePipe, p, "p2", "p3")
	require.Equal(t, "a", l.call(t, r, dso.TypePipe, "t1", "take"))
	require.Equal(t, []string{"p2=<nil>"}, l.answers)
	require.Equal(t, int64(2), l.call(t, r, dso.TypePipe, "t2", "take"))
	require.Equal(t, []any{"c"}, l.call(t, r, dso.TypePipe, "t3", "take"))
	require.Equal(t, "parked", l.call(t, r, dso.TypePipe, "t4", "take"))
	r = l.roundTrip(t, dso.TypePipe, r, "t4")
	l.call(t, r, dso.TypePipe, "c", "close")
	require.Equal(t, []string{"p2=<nil>", "p3=<nil>", "t4!dso: object closed: pipe is closed"}, l.answers)
	r = l.roundTrip(t, dso.TypePipe, r)
	require.Equal(t, true, l.call(t, r, dso.TypePipe, "q", "isClosed"))
}

func TestMarshalParkedMatrixBlob(t *testing.T) {
	l := &parkLog{reg: dso.NewRegistry()}
	m := l.make(t, dso.TypeMatrix, int64(2), int64(3))
	l.call(t, m, dso.TypeMatrix, "s", "set", int64(1), int64(2), -0.5)
	r := l.roundTrip(t, dso.TypeMatrix, m)
	require.Equal(t, []float64{0, 0, 0, 0, 0, -0.5}, l.call(t, r, dso.TypeMatrix, "g", "toArray"))
	b := l.make(t, dso.TypeBlob)
	l.call(t, b, dso.TypeBlob, "w", "write", []byte{1, 2, 3})
	r = l.roundTrip(t, dso.TypeBlob, b)
	require.Equal(t, []byte{1, 2, 3}, l.call(t, r, dso.TypeBlob, "r", "read"))
}

// parkedState hand-builds a ParkedPersister encoding for the refusal
// tests: version 1, then each field (int64: varint, bool, string: the
// id of a queued call followed by its Data, []any: a value).
func parkedState(fields ...any) []byte {
	b := []byte{1}
	for _, f := range fields {
		switch x := f.(type) {
		case int64:
			b = binary.AppendVarint(b, x)
		case uint64:
			b = binary.AppendUvarint(b, x)
		case bool:
			if x {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		case []any: // a value
			enc, _ := dso.AppendCanonical(nil, x[0])
			b = binary.AppendUvarint(b, uint64(len(enc)))
			b = append(b, enc...)
		case string: // a queued call: id, then Data nil
			b = binary.AppendUvarint(b, uint64(len(x)))
			b = append(b, x...)
			b = append(b, 1, 0) // Data: one byte, tag nil
		}
	}
	return b
}

func TestUnmarshalParkedRefusesInconsistentState(t *testing.T) {
	reg := dso.NewRegistry()
	revive := func(id string, _ any) (*dso.Waiter, error) {
		if id == "bad" {
			return nil, errors.New("unknown call")
		}
		w := dso.NewWaiter(nil)
		w.ID = id
		return w, nil
	}
	cases := []struct {
		typ, name string
		state     []byte
		want      string
	}{
		{dso.TypeCyclicBarrier, "no parties", parkedState(int64(0), int64(0), uint64(0)), "parties"},
		{dso.TypeCyclicBarrier, "full barrier", parkedState(int64(2), int64(0), uint64(2), "a", "b"), "waiting for 2 parties"},
		{dso.TypeCyclicBarrier, "revive refuses", parkedState(int64(3), int64(0), uint64(1), "bad"), "unknown call"},
		{dso.TypeCyclicBarrier, "trailing", append(parkedState(int64(3), int64(0), uint64(0)), 7), "trailing"},
		{dso.TypeCyclicBarrier, "version", []byte{9}, "version"},
		{dso.TypeCyclicBarrier, "empty", nil, "truncated"},
		{dso.TypeSemaphore, "truncated queue", parkedState(int64(5), uint64(1)), "exceeds"},
		{dso.TypeCountDownLatch, "open latch with waiters", parkedState(int64(0), uint64(1), "a"), "open latch"},
		{dso.TypeCountDownLatch, "negative count", parkedState(int64(-1), uint64(0)), "negative"},
		{dso.TypeFuture, "set with waiters", parkedState(true, []any{int64(1)}, uint64(1), "a"), "already set"},
		{dso.TypeFuture, "value not set", parkedState(false, []any{int64(1)}, uint64(0)), "not set"},
		{dso.TypeFuture, "bad bool", parkedState(int64(1), []any{nil}, uint64(0)), "boolean"},
		{dso.TypeRendezvous, "two waiting", parkedState(uint64(2), "a", "b"), "pair up"},
		{dso.TypePipe, "over capacity", parkedState(int64(0), false, uint64(1), []any{"x"}, uint64(0), uint64(0)), "capacity"},
		{dso.TypePipe, "closed with takers", parkedState(int64(1), true, uint64(0), uint64(0), uint64(1), "a"), "closed"},
		{dso.TypePipe, "putters not full", parkedState(int64(2), false, uint64(0), uint64(1), "a", uint64(0)), "not full"},
		{dso.TypeMatrix, "huge", parkedState(uint64(1<<40), uint64(1<<40)), "larger"},
		{dso.TypeMatrix, "short", parkedState(uint64(2), uint64(2)), "cells"},
		{dso.TypeBlob, "long", parkedState(uint64(10)), "exceeds"},
	}
	for _, c := range cases {
		obj, err := reg.Blank(c.typ)
		require.NoError(t, err)
		err = obj.(dso.ParkedPersister).UnmarshalParked(c.state, revive)
		require.ErrorContains(t, err, c.want, "%s: %s", c.typ, c.name)
		require.ErrorContains(t, err, c.typ, "%s: %s: the error names the type", c.typ, c.name)
	}
	// A semaphore whose head acquirer could be served is not a state any
	// sequence of calls leaves.
	obj, _ := reg.Blank(dso.TypeSemaphore)
	head := append(parkedState(int64(5), uint64(1)), 1, 'a')
	enc, _ := dso.AppendCanonical(nil, int64(2))
	head = append(binary.AppendUvarint(head, uint64(len(enc))), enc...)
	require.ErrorContains(t, obj.(dso.ParkedPersister).UnmarshalParked(head, revive), "yet waits")
	neg := append(parkedState(int64(0), uint64(1)), 1, 'a')
	enc, _ = dso.AppendCanonical(nil, "two")
	neg = append(binary.AppendUvarint(neg, uint64(len(enc))), enc...)
	require.ErrorContains(t, obj.(dso.ParkedPersister).UnmarshalParked(neg, revive), "wants string permits")
}

func TestBlank(t *testing.T) {
	reg := dso.NewRegistry()
	for _, typ := range reg.Types() {
		obj, err := reg.Blank(typ)
		require.NoError(t, err, typ)
		require.NotNil(t, obj, typ)
	}
	_, err := reg.Blank("Nope")
	require.ErrorIs(t, err, dso.ErrUnknownType)
	require.ErrorContains(t, err, `"Nope"`)
}

func TestAppendCanonical(t *testing.T) {
	m := map[string]any{}
	for i := range 50 {
		m[fmt.Sprintf("k%02d", i)] = map[string]any{"b": int64(i), "a": []any{map[string]any{"y": 1.5, "x": nil}}}
	}
	v := []any{m, map[string]int64{"q": 1, "p": 2}, map[string]float64{"d": 1, "c": 2}}
	first, err := dso.AppendCanonical(nil, v)
	require.NoError(t, err)
	for range 20 {
		b, err := dso.AppendCanonical(nil, v)
		require.NoError(t, err)
		require.Equal(t, first, b)
	}
	dec, err := wire.DecodeValue(first)
	require.NoError(t, err)
	require.Equal(t, m, dec.([]any)[0])
	again, err := dso.AppendCanonical(nil, dec)
	require.NoError(t, err)
	require.Equal(t, first, again, "a decoded value encodes to the same bytes")
	// The keys come in order in the bytes.
	small, _ := dso.AppendCanonical(nil, map[string]any{"b": nil, "a": nil})
	require.Equal(t, []byte{8, 2, 1, 'a', 0, 1, 'b', 0}, small)
	// Everything but maps is wire.AppendValue's encoding.
	for _, x := range []any{nil, true, int64(-3), 2.5, "s", []byte{1}, []float64{1}, []string{"a"}, []int{1}, uint8(7)} {
		want, err := wire.AppendValue(nil, x)
		require.NoError(t, err)
		got, err := dso.AppendCanonical(nil, x)
		require.NoError(t, err)
		require.Equal(t, want, got, "%T", x)
	}
	_, err = dso.AppendCanonical(nil, []any{struct{}{}})
	require.Error(t, err)
}

func TestCodeOfIsStable(t *testing.T) {
	err := errors.Join(dso.ErrTimeout, dso.ErrClosed, dso.ErrBadArgs)
	for range 100 {
		require.Equal(t, wire.CodeBadArgs, dso.CodeOf(err))
	}
	require.Equal(t, wire.CodeOverflow, dso.CodeOf(dso.ErrOverflow))
	require.Equal(t, wire.CodeApp, dso.CodeOf(errors.New("plain")))
	require.Equal(t, wire.CodeTimeout, dso.CodeOf(&dso.RemoteError{Code: wire.CodeTimeout}))
}

// parkedFuzzTypes are the types FuzzUnmarshalParked decodes: the first
// byte of an input picks one.
var parkedFuzzTypes = []string{dso.TypeCyclicBarrier, dso.TypeSemaphore, dso.TypeCountDownLatch,
	dso.TypeFuture, dso.TypeRendezvous, dso.TypePipe, dso.TypeMatrix, dso.TypeBlob}

// parkedFuzzSeeds are valid states of every type, with parked calls.
func parkedFuzzSeeds() [][]byte {
	l := &parkLog{reg: dso.NewRegistry()}
	type step struct {
		method string
		args   []any
	}
	build := func(typ string, ctor []any, steps ...step) []byte {
		c, _, _ := l.reg.Lookup(typ)
		obj, err := c(ctor)
		if err != nil {
			panic(err)
		}
		for i, s := range steps {
			inv := dso.NewInvocation(dso.Ref{Type: typ, Key: "k"}, s.method, s.args, func() *dso.Waiter { return l.waiter(fmt.Sprint(i)) })
			if _, err := obj.Invoke(inv); err != nil {
				panic(err)
			}
		}
		b, err := obj.(dso.ParkedPersister).MarshalParked()
		if err != nil {
			panic(err)
		}
		idx := 0
		for i, n := range parkedFuzzTypes {
			if n == typ {
				idx = i
			}
		}
		return append([]byte{byte(idx)}, b...)
	}
	return [][]byte{
		build(dso.TypeCyclicBarrier, []any{int64(3)}, step{"await", nil}, step{"await", nil}),
		build(dso.TypeSemaphore, []any{int64(1)}, step{"acquire", []any{int64(2)}}, step{"acquire", nil}),
		build(dso.TypeCountDownLatch, []any{int64(2)}, step{"await", nil}),
		build(dso.TypeFuture, nil, step{"get", nil}),
		build(dso.TypeFuture, nil, step{"set", []any{map[string]any{"a": int64(1)}}}),
		build(dso.TypeRendezvous, nil, step{"exchange", []any{"v"}}),
		build(dso.TypePipe, []any{int64(1)}, step{"put", []any{"a"}}, step{"put", []any{int64(2)}}),
		build(dso.TypePipe, []any{int64(2)}, step{"take", nil}),
		build(dso.TypePipe, nil, step{"put", []any{"a"}}, step{"close", nil}),
		build(dso.TypeMatrix, []any{int64(1), int64(2)}, step{"set", []any{int64(0), int64(1), 3.5}}),
		build(dso.TypeBlob, nil, step{"write", []any{[]byte("xyz")}}),
	}
}

// TestParkedFuzzSeeds keeps testdata/fuzz/FuzzUnmarshalParked in step
// with parkedFuzzSeeds.
func TestParkedFuzzSeeds(t *testing.T) {
	fuzzseed.Check(t, "FuzzUnmarshalParked", parkedFuzzSeeds())
}

// FuzzUnmarshalParked feeds arbitrary bytes to the UnmarshalParked of
// every ParkedPersister type (the first byte picks it). It must not
// panic; a state it accepts encodes again to bytes that it accepts and
// that encode the same way.
func FuzzUnmarshalParked(f *testing.F) {
	for _, s := range parkedFuzzSeeds() {
		f.Add(s)
	}
	reg := dso.NewRegistry()
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		typ := parkedFuzzTypes[int(in[0])%len(parkedFuzzTypes)]
		seen := map[string]bool{}
		revive := func(id string, _ any) (*dso.Waiter, error) {
			if seen[id] {
				return nil, errors.New("parked twice")
			}
			seen[id] = true
			w := dso.NewWaiter(nil)
			w.ID = id
			return w, nil
		}
		obj, err := reg.Blank(typ)
		require.NoError(t, err)
		if err := obj.(dso.ParkedPersister).UnmarshalParked(in[1:], revive); err != nil {
			return
		}
		b, err := obj.(dso.ParkedPersister).MarshalParked()
		require.NoError(t, err)
		obj2, _ := reg.Blank(typ)
		seen = map[string]bool{}
		require.NoError(t, obj2.(dso.ParkedPersister).UnmarshalParked(b, revive), "%s: a state it encoded", typ)
		b2, err := obj2.(dso.ParkedPersister).MarshalParked()
		require.NoError(t, err)
		require.Equal(t, b, b2)
	})
}
