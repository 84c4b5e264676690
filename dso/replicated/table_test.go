package replicated_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/replicated"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/stretchr/testify/require"
)

func TestAtomicLongAndCounterThroughApply(t *testing.T) {
	e := newEnv(t, replicated.Options{})
	hits := ref(dso.TypeAtomicLong, "hits")
	for want := int64(1); want <= 3; want++ {
		require.Equal(t, want, e.value(hits, "incrementAndGet"))
	}
	require.Equal(t, int64(13), e.value(hits, "addAndGet", int64(10)))
	require.Equal(t, int64(13), e.value(hits, "getAndAdd", int64(-3)))
	require.Equal(t, int64(10), e.value(hits, "get"))
	id, as := e.call(hits, "addAndGet", "ten")
	_, err := result(t, as, id)
	require.ErrorIs(t, err, dso.ErrBadArgs)
	require.Equal(t, int64(10), e.value(hits, "get"), "a failed call changes nothing")

	c := ref(dso.TypeCounter, "c")
	_, as = e.callCtor(c, []any{int64(100)}, "increment", int64(5))
	require.Len(t, as, 1)
	require.Equal(t, int64(104), e.value(c, "decrement", int64(1)))
	require.Equal(t, int64(104), e.value(c, "tally"))
	require.Equal(t, []dso.Ref{c}, e.tab.List("Counter"))
	require.Equal(t, 2, e.tab.Len())
}

func TestReadOfAbsentObjectCreatesNothing(t *testing.T) {
	e := newEnv(t, replicated.Options{})
	require.Equal(t, int64(0), e.value(ref(dso.TypeAtomicLong, "a"), "get"))
	require.Equal(t, false, e.value(ref(dso.TypeFuture, "f"), "isDone"))
	require.Equal(t, nil, e.value(ref(dso.TypeMap, "m"), "get", "k"))
	for _, c := range []struct {
		ref    dso.Ref
		ctor   []any
		method string
		want   error
	}{
		{ref(dso.TypeAtomicLong, "a"), nil, "nope", dso.ErrUnknownMethod},
		{ref(dso.TypeAtomicLong, "a"), nil, "addAndGet", dso.ErrBadArgs},
		{ref(dso.TypeCyclicBarrier, "b"), nil, "await", dso.ErrBadArgs}, // no parties
		{ref("Nope", "x"), nil, "get", dso.ErrUnknownType},
	} {
		id, as := e.callCtor(c.ref, c.ctor, c.method)
		_, err := result(t, as, id)
		require.ErrorIs(t, err, c.want, "%s.%s", c.ref, c.method)
	}
	require.Equal(t, 0, e.tab.Len())
	require.Empty(t, e.tab.List(""))
	require.Equal(t, int64(1), e.value(ref(dso.TypeAtomicLong, "a"), "incrementAndGet"))
	require.Equal(t, []dso.Ref{ref(dso.TypeAtomicLong, "a")}, e.tab.List(""))
}

func TestBarrierWithdrawnAwaitLeaves(t *testing.T) {
	e := newEnv(t, replicated.Options{})
	b := ref(dso.TypeCyclicBarrier, "b")
	three := []any{int64(3)}
	a1 := e.parks(b, three, "await")
	a2 := e.parks(b, three, "await")
	require.Equal(t, []protocols.CommandID{a1, a2}, e.tab.Parked())
	on, ok := e.tab.ParkedOn(a1)
	require.True(t, ok)
	require.Equal(t, b, on)

	w, as := e.withdraw(b, a1, wire.CodeTimeout, "deadline exceeded")
	require.Equal(t, []protocols.CommandID{a1, w}, ids(as), "the target, then the withdraw")
	_, err := result(t, as, a1)
	require.ErrorIs(t, err, dso.ErrTimeout)
	var re *dso.RemoteError
	require.ErrorAs(t, err, &re)
	require.Equal(t, wire.CodeTimeout, re.Code)
	require.Equal(t, "deadline exceeded", re.Msg)
	v, err := result(t, as, w)
	require.NoError(t, err)
	require.Equal(t, true, v)
	require.Equal(t, int64(1), e.value(b, "getNumberWaiting"), "the withdrawn await left")

	// The third await does not cross: only two parties are there.
	a3 := e.parks(b, three, "await")
	require.Equal(t, int64(2), e.value(b, "getNumberWaiting"))
	require.Equal(t, []protocols.CommandID{a2, a3}, e.tab.Parked())

	// Withdrawing it again, or with the key of another object, does
	// nothing and says so.
	w, as = e.withdraw(b, a1, wire.CodeTimeout, "again")
	require.Equal(t, []protocols.CommandID{w}, ids(as))
	v, _ = result(t, as, w)
	require.Equal(t, false, v)
	w, as = e.withdraw(ref(dso.TypeCyclicBarrier, "other"), a2, wire.CodeCanceled, "wrong key")
	require.Equal(t, []protocols.CommandID{w}, ids(as))
	v, _ = result(t, as, w)
	require.Equal(t, false, v)
	require.Contains(t, e.tab.Parked(), a2)

	// The third party crosses with the two waiting.
	a4, as := e.call(b, "await")
	require.Equal(t, []protocols.CommandID{a2, a3, a4}, ids(as))
	for _, id := range []protocols.CommandID{a2, a3, a4} {
		v, err := result(t, as, id)
		require.NoError(t, err)
		require.Equal(t, int64(0), v)
	}
	require.Empty(t, e.tab.Parked())
	require.Equal(t, int64(1), e.value(b, "generation"))
}

func TestFutureGetParksUntilSet(t *testing.T) {
	e := newEnv(t, replicated.Options{})
	f := ref(dso.TypeFuture, "f")
	g1 := e.parks(f, nil, "get") // a parked read keeps the future it created
	require.Equal(t, 1, e.tab.Len())
	g2 := e.parks(f, nil, "get")
	val := map[string]any{"b": []any{int64(1), "x"}, "a": 2.5}
	s, as := e.call(f, "set", val)
	require.Equal(t, []protocols.CommandID{g1, g2, s}, ids(as))
	for _, id := range []protocols.CommandID{g1, g2} {
		v, err := result(t, as, id)
		require.NoError(t, err)
		require.Equal(t, val, v)
	}
	v, _ := result(t, as, s)
	require.Equal(t, true, v)
	require.Equal(t, val, e.value(f, "get"))
	require.Equal(t, false, e.value(f, "set", int64(3)))
}

func TestSemaphoreFIFOWithWithdraw(t *testing.T) {
	e := newEnv(t, replicated.Options{})
	s := ref(dso.TypeSemaphore, "s")
	zero := []any{int64(0)}
	big := e.parks(s, zero, "acquire", int64(2))
	small := e.parks(s, zero, "acquire", int64(1))
	last := e.parks(s, zero, "acquire", int64(1))
	// One permit: the head wants two, so nobody passes (FIFO).
	r, as := e.call(s, "release", int64(1))
	require.Equal(t, []protocols.CommandID{r}, ids(as))
	require.Equal(t, int64(1), e.value(s, "availablePermits"))
	// Withdrawing the head lets the next one take the permit.
	w, as := e.withdraw(s, big, wire.CodeCanceled, "client went away")
	require.Equal(t, []protocols.CommandID{small, big, w}, ids(as))
	_, err := result(t, as, big)
	require.ErrorIs(t, err, dso.ErrCanceled)
	_, err = result(t, as, small)
	require.NoError(t, err)
	require.Equal(t, []protocols.CommandID{last}, e.tab.Parked())
	r, as = e.call(s, "release", int64(1))
	require.Equal(t, []protocols.CommandID{last, r}, ids(as))
	require.Empty(t, e.tab.Parked())
	require.Equal(t, int64(0), e.value(s, "availablePermits"))
}

func TestPipeBlockingPutTakeAndClose(t *testing.T) {
	e := newEnv(t, replicated.Options{})
	p := ref(dso.TypePipe, "p")
	one := []any{int64(1)}
	_, as := e.callCtor(p, one, "put", "x")
	require.Len(t, as, 1)
	put := e.parks(p, one, "put", "y")
	tk, as := e.call(p, "take")
	require.Equal(t, []protocols.CommandID{put, tk}, ids(as), "the take refills from the parked put")
	v, _ := result(t, as, tk)
	require.Equal(t, "x", v)
	require.Equal(t, "y", e.value(p, "take"))
	t1 := e.parks(p, nil, "take")
	t2 := e.parks(p, nil, "take")
	c, as := e.call(p, "close")
	require.Equal(t, []protocols.CommandID{t1, t2, c}, ids(as))
	for _, id := range []protocols.CommandID{t1, t2} {
		_, err := result(t, as, id)
		require.ErrorIs(t, err, dso.ErrClosed)
	}
	id, as := e.call(p, "put", "z")
	_, err := result(t, as, id)
	require.ErrorIs(t, err, dso.ErrClosed)
	require.Empty(t, e.tab.Parked())
}

func TestDeleteAnswersParkedCalls(t *testing.T) {
	e := newEnv(t, replicated.Options{})
	l := ref(dso.TypeCountDownLatch, "l")
	w1 := e.parks(l, []any{int64(1)}, "await")
	w2 := e.parks(l, nil, "await")
	d, as := e.apply(replicated.EncodeDelete(l), replicated.Key(l))
	require.Equal(t, []protocols.CommandID{w1, w2, d}, ids(as))
	for _, id := range []protocols.CommandID{w1, w2} {
		_, err := result(t, as, id)
		require.ErrorIs(t, err, dso.ErrClosed)
	}
	v, _ := result(t, as, d)
	require.Equal(t, true, v)
	require.Equal(t, 0, e.tab.Len())
	require.Empty(t, e.tab.Parked())
	d, as = e.apply(replicated.EncodeDelete(l), replicated.Key(l))
	v, _ = result(t, as, d)
	require.Equal(t, false, v)
}

// parkForever is a type that parks calls and is neither a Withdrawer nor
// a Closer: the table itself must answer its calls on delete. Its
// parkAndFail parks, keeps the waiter and fails; releaseAll then answers
// the waiters kept.
type parkForever struct{ kept []*dso.Waiter }

func (p *parkForever) Invoke(inv *dso.Invocation) (any, error) {
	switch inv.Method {
	case "boom":
		panic("boom")
	case "ok":
		return int64(1), nil
	case "parkAndFail":
		p.kept = append(p.kept, inv.Park())
		return nil, fmt.Errorf("%w: parked, then failed", dso.ErrFailed)
	case "releaseAll":
		for _, w := range p.kept {
			w.Reply("late", nil)
		}
		n := len(p.kept)
		p.kept = nil
		return int64(n), nil
	}
	inv.Park()
	return nil, nil
}

func TestPanicsAndObjectsThatDoNotCloseStayContained(t *testing.T) {
	reg := dso.NewRegistry()
	require.NoError(t, reg.Register("Forever", func([]any) (dso.Object, error) { return &parkForever{}, nil }))
	e := &env{t: t, tab: replicated.New(reg, replicated.Options{})}
	f := ref("Forever", "f")
	id, as := e.call(f, "boom")
	_, err := result(t, as, id)
	require.ErrorIs(t, err, dso.ErrInternal)
	require.ErrorContains(t, err, "panicked: boom")
	require.Equal(t, 0, e.tab.Len(), "a call that panicked on a new object does not keep it")
	w := e.parks(f, nil, "wait")
	require.Equal(t, int64(1), e.value(f, "ok"))
	id, as = e.call(f, "boom")
	_, err = result(t, as, id)
	require.ErrorIs(t, err, dso.ErrInternal)
	require.Equal(t, int64(1), e.value(f, "ok"), "the table stays usable")
	// A call that parks and fails is answered once, with its error, even
	// if the object answers its waiter later.
	id, as = e.call(f, "parkAndFail")
	_, err = result(t, as, id)
	require.ErrorIs(t, err, dso.ErrFailed)
	require.NotContains(t, e.tab.Parked(), id)
	require.Equal(t, int64(1), e.value(f, "releaseAll"), "no second answer to the failed call")
	_, err = e.tab.Snapshot()
	require.ErrorContains(t, err, "Forever")
	d, as := e.apply(replicated.EncodeDelete(f), replicated.Key(f))
	require.Equal(t, []protocols.CommandID{w, d}, ids(as))
	_, err = result(t, as, w)
	require.ErrorIs(t, err, dso.ErrClosed)
	require.Empty(t, e.tab.Parked())
}

func TestMultiCall(t *testing.T) {
	owns := func(r dso.Ref) bool { return !strings.HasPrefix(r.Key, "other") }
	e := newEnv(t, replicated.Options{Owns: owns})
	a, m := ref(dso.TypeAtomicLong, "a"), ref(dso.TypeMap, "m")
	other := ref(dso.TypeAtomicLong, "other")
	multi := func(calls ...dso.Call) (any, error) {
		t.Helper()
		p, err := replicated.EncodeMulti(calls)
		require.NoError(t, err)
		keys := make([]string, len(calls))
		for i, c := range calls {
			keys[i] = replicated.Key(c.Ref)
		}
		id, as := e.apply(p, keys...)
		return result(t, as, id)
	}
	v, err := multi(
		dso.Call{Ref: a, Method: "addAndGet", Args: []any{int64(5)}},
		dso.Call{Ref: other, Method: "addAndGet", Args: []any{int64(1)}},
		dso.Call{Ref: m, Method: "put", Args: []any{"k", "v"}},
		dso.Call{Ref: m, Method: "size"},
	)
	require.NoError(t, err)
	require.Equal(t, []any{int64(5), nil, nil, int64(1)}, v)
	require.Equal(t, []dso.Ref{a, m}, e.tab.List(""), "the part not owned here is skipped")

	// A part that fails does not undo the parts before it, nor stop those
	// after it; the answer is the first failure.
	_, err = multi(
		dso.Call{Ref: a, Method: "addAndGet", Args: []any{int64(1)}},
		dso.Call{Ref: a, Method: "addAndGet", Args: []any{"x"}},
		dso.Call{Ref: m, Method: "nope"},
		dso.Call{Ref: a, Method: "incrementAndGet"},
	)
	require.ErrorIs(t, err, dso.ErrBadArgs)
	require.ErrorContains(t, err, "call 2 of 4")
	require.Equal(t, int64(7), e.value(a, "get"))

	// A part that would park is refused and leaves no trace: no new
	// semaphore, no queued acquirer.
	s := ref(dso.TypeSemaphore, "s")
	_, err = multi(dso.Call{Ref: s, Method: "acquire", Ctor: []any{int64(0)}})
	require.ErrorIs(t, err, dso.ErrBadArgs)
	require.ErrorContains(t, err, "would wait")
	require.Equal(t, 2, e.tab.Len())
	_, as := e.callCtor(s, []any{int64(0)}, "release", int64(1))
	require.Len(t, as, 1)
	_, err = multi(dso.Call{Ref: s, Method: "acquire", Args: []any{int64(2)}}, dso.Call{Ref: a, Method: "incrementAndGet"})
	require.ErrorIs(t, err, dso.ErrBadArgs)
	require.Equal(t, int64(8), e.value(a, "get"))
	require.Equal(t, int64(1), e.value(s, "availablePermits"))
	require.Equal(t, true, e.value(s, "tryAcquire", int64(1)), "no acquirer left queued ahead")
	require.Empty(t, e.tab.Parked())

	// A single call on an object of another group is refused.
	id, as := e.call(other, "get")
	_, err = result(t, as, id)
	require.ErrorIs(t, err, dso.ErrWrongNode)
	_, err = replicated.EncodeMulti(nil)
	require.Error(t, err)
}

func TestLimits(t *testing.T) {
	e := newEnv(t, replicated.Options{MaxObjects: 2, MaxKey: 8})
	e.value(ref(dso.TypeAtomicLong, "a"), "incrementAndGet")
	e.value(ref(dso.TypeAtomicLong, "b"), "incrementAndGet")
	id, as := e.call(ref(dso.TypeAtomicLong, "c"), "incrementAndGet")
	_, err := result(t, as, id)
	require.ErrorIs(t, err, dso.ErrLimit)
	require.Equal(t, int64(0), e.value(ref(dso.TypeAtomicLong, "c"), "get"), "a read needs no room")
	id, as = e.callCtor(ref(dso.TypeFuture, "f"), nil, "get")
	_, err = result(t, as, id)
	require.ErrorIs(t, err, dso.ErrLimit, "a call that would park on a new object beyond the limit")
	require.Empty(t, e.tab.Parked())
	require.Equal(t, 2, e.tab.Len())

	e = newEnv(t, replicated.Options{MaxKey: 8})
	id, as = e.call(ref(dso.TypeAtomicLong, "123456789"), "incrementAndGet")
	_, err = result(t, as, id)
	require.ErrorIs(t, err, dso.ErrLimit)
	e.value(ref(dso.TypeAtomicLong, "12345678"), "incrementAndGet")
}

// nest returns a value of depth d: d lists, one in the other, around 1.
func nest(d int) any {
	var v any = int64(1)
	for range d {
		v = []any{v}
	}
	return v
}

func TestDeepArgumentsAreRefused(t *testing.T) {
	_, err := replicated.EncodeCall(ref(dso.TypeList, "l"), "add", []any{nest(wire.MaxDepth - 1)}, nil)
	require.ErrorIs(t, err, dso.ErrBadArgs)
	_, err = replicated.EncodeCall(ref(dso.TypeList, "l"), "add", nil, []any{nest(wire.MaxDepth - 1)})
	require.ErrorIs(t, err, dso.ErrBadArgs)
	_, err = replicated.EncodeCall(ref(dso.TypeList, "l"), "add", []any{struct{}{}}, nil)
	require.Error(t, err)

	// A payload made elsewhere is refused by the table too.
	e := newEnv(t, replicated.Options{})
	deep := append([]byte{1, 4, 'L', 'i', 's', 't', 1, 'l', 3, 'a', 'd', 'd', 1}, encodedValue(nest(wire.MaxDepth-1))...)
	deep = append(deep, 0)
	id, as := e.apply(deep, replicated.Key(ref(dso.TypeList, "l")))
	_, err = result(t, as, id)
	require.ErrorIs(t, err, dso.ErrBadArgs)

	// The deepest value allowed survives a List, a TreeMap's range, a
	// snapshot.
	deepest := nest(wire.MaxDepth - 2)
	e.value(ref(dso.TypeList, "l"), "add", deepest)
	require.Equal(t, []any{deepest}, e.value(ref(dso.TypeList, "l"), "toList"))
	e.value(ref(dso.TypeTreeMap, "t"), "put", "k", deepest)
	require.Equal(t, []any{[]any{"k", deepest}}, e.value(ref(dso.TypeTreeMap, "t"), "range", "", ""))
	snap, err := e.tab.Snapshot()
	require.NoError(t, err)
	require.NoError(t, replicated.New(nil, replicated.Options{}).Restore(snap))
}

func encodedValue(v any) []byte {
	enc, err := dso.AppendCanonical(nil, v)
	if err != nil {
		panic(err)
	}
	out := append([]byte{}, byte(len(enc))) // short values only
	return append(out, enc...)
}

func TestMalformedPayloads(t *testing.T) {
	good, err := replicated.EncodeCall(ref(dso.TypeAtomicLong, "a"), "addAndGet", []any{int64(1)}, nil)
	require.NoError(t, err)
	multi, err := replicated.EncodeMulti([]dso.Call{{Ref: ref(dso.TypeAtomicLong, "a"), Method: "get"}})
	require.NoError(t, err)
	withdraw := replicated.EncodeWithdraw(protocols.CommandID{Client: 1, Seq: 2}, wire.CodeTimeout, "t")
	code0 := append([]byte{}, withdraw...)
	code0[3] = 0
	for name, p := range map[string][]byte{
		"empty":          nil,
		"unknown kind":   {9},
		"kind 0":         {0},
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte{}, good...), 0),
		"huge count":     {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad value":      {1, 0, 0, 0, 1, 1, 99, 0},
		"no calls":       {4, 0},
		"multi trailing": append(append([]byte{}, multi...), 1),
		"withdraw cut":   withdraw[:3],
		"withdraw code0": code0,
		"delete cut":     replicated.EncodeDelete(ref("T", "k"))[:3],
	} {
		e := newEnv(t, replicated.Options{})
		id, as := e.apply(p)
		_, err := result(t, as, id)
		require.ErrorIs(t, err, dso.ErrMalformed, name)
		var re *dso.RemoteError
		require.ErrorAs(t, err, &re, name)
		require.Equal(t, wire.CodeMalformed, re.Code, name)
		require.Equal(t, 0, e.tab.Len(), name)
	}
}

func TestSmallestPayloadsAreWellFormed(t *testing.T) {
	e := newEnv(t, replicated.Options{})
	multi, err := replicated.EncodeMulti([]dso.Call{{}})
	require.NoError(t, err)
	call, err := replicated.EncodeCall(dso.Ref{}, "", nil, nil)
	require.NoError(t, err)
	for _, p := range [][]byte{multi, call} {
		id, as := e.apply(p)
		_, err := result(t, as, id)
		require.ErrorIs(t, err, dso.ErrUnknownType, "%x", p)
	}
	id, as := e.apply(replicated.EncodeDelete(dso.Ref{}))
	v, err := result(t, as, id)
	require.NoError(t, err)
	require.Equal(t, false, v)
}

func TestResultEncoding(t *testing.T) {
	for _, v := range []any{nil, true, int64(-5), 2.5, "s", []byte{1}, []any{int64(1), map[string]any{"b": nil, "a": "x"}}, []float64{1.5}} {
		got, err := replicated.DecodeResult(replicated.EncodeResult(v, nil))
		require.NoError(t, err)
		require.Equal(t, v, got)
	}
	m := map[string]any{}
	for _, k := range strings.Split("q w e r t y u i o p", " ") {
		m[k] = k
	}
	first := replicated.EncodeResult(m, nil)
	for range 20 {
		require.Equal(t, first, replicated.EncodeResult(m, nil), "map results encode alike")
	}
	_, err := replicated.DecodeResult(replicated.EncodeResult(nil, errors.Join(dso.ErrTimeout, errors.New("late"))))
	require.ErrorIs(t, err, dso.ErrTimeout)
	require.ErrorContains(t, err, "late")
	_, err = replicated.DecodeResult(replicated.EncodeResult(nil, dso.ErrOverflow))
	require.ErrorIs(t, err, dso.ErrOverflow)
	require.ErrorIs(t, err, dso.ErrFailed)
	_, err = replicated.DecodeResult(replicated.EncodeResult(nil, errors.New("plain")))
	require.ErrorIs(t, err, dso.ErrFailed)
	_, err = replicated.DecodeResult(replicated.EncodeResult(struct{}{}, nil))
	require.ErrorIs(t, err, dso.ErrInternal)
	for _, bad := range [][]byte{nil, {0x81}, {0x81, 99}, {0x82}, {0x82, 0, 0}, {0x82, 5}, {0x82, 5, 2, 'x'}, {0x82, 5, 0, 0}, {7}} {
		_, err := replicated.DecodeResult(bad)
		require.ErrorIs(t, err, dso.ErrMalformed, "%x", bad)
	}
}

func TestKeys(t *testing.T) {
	for _, r := range []dso.Ref{ref("AtomicLong", "x"), ref("a/b", "c/d"), ref("", ""), ref("T", ""), ref("12:x/", ":/")} {
		k := replicated.Key(r)
		got, err := replicated.ParseKey(k)
		require.NoError(t, err, k)
		require.Equal(t, r, got)
	}
	require.Equal(t, "10:AtomicLong/hits", replicated.Key(ref("AtomicLong", "hits")))
	require.NotEqual(t, replicated.Key(ref("a/b", "c")), replicated.Key(ref("a", "b/c")))
	for _, k := range []string{"", "x", ":a/b", "01:a/b", "+1:a/b", "2:a/b", "1:ab", "99:a/b", "-1:a/b"} {
		_, err := replicated.ParseKey(k)
		require.Error(t, err, k)
	}
}

func TestCommandWithParkedIDIsIgnored(t *testing.T) {
	e := newEnv(t, replicated.Options{})
	f := ref(dso.TypeFuture, "f")
	g := e.parks(f, nil, "get")
	p, err := replicated.EncodeCall(f, "set", []any{int64(1)}, nil)
	require.NoError(t, err)
	n := len(e.rec.all)
	e.tab.Apply(protocols.Command{ID: g, Keys: []string{replicated.Key(f)}, Payload: p}, &e.rec)
	require.Len(t, e.rec.all, n, "no answer")
	require.Equal(t, false, e.value(f, "isDone"), "not executed")
}

// A call withdrawn before it executed (its client gave up while it was
// still on its way) is answered with the withdrawal's error when it
// arrives, and does not run: a pipe's take does not swallow a value nobody
// will read. The table remembers it across a snapshot.
func TestWithdrawBeforeExecutionBlocksTheCall(t *testing.T) {
	e := newEnv(t, replicated.Options{})
	p := ref(dso.TypePipe, "p")
	late := protocols.CommandID{Client: 7, Seq: 100} // not executed yet
	w, as := e.withdraw(p, late, wire.CodeCanceled, "client gone")
	v, err := result(t, as, w)
	require.NoError(t, err)
	require.Equal(t, false, v, "nothing was parked")

	// Through a snapshot, as a restarted replica would see it.
	snap, err := e.tab.Snapshot()
	require.NoError(t, err)
	restored := replicated.New(nil, replicated.Options{})
	require.NoError(t, restored.Restore(snap))
	for _, tab := range []*replicated.Table{e.tab, restored} {
		var rec recorder
		take, err := replicated.EncodeCall(p, "take", nil, nil)
		require.NoError(t, err)
		tab.Apply(protocols.Command{ID: late, Keys: []string{replicated.Key(p)}, Payload: take}, &rec)
		_, err = result(t, rec.all, late)
		require.ErrorIs(t, err, dso.ErrCanceled)
		require.Empty(t, tab.Parked(), "the withdrawn take must not park")
		put, err := replicated.EncodeCall(p, "put", []any{"v"}, nil)
		require.NoError(t, err)
		tab.Apply(protocols.Command{ID: protocols.CommandID{Client: 8, Seq: 1}, Keys: []string{replicated.Key(p)}, Payload: put}, &rec)
		poll, err := replicated.EncodeCall(p, "poll", nil, nil)
		require.NoError(t, err)
		pid := protocols.CommandID{Client: 8, Seq: 2}
		tab.Apply(protocols.Command{ID: pid, Keys: []string{replicated.Key(p)}, Payload: poll}, &rec)
		v, err := result(t, rec.all, pid)
		require.NoError(t, err)
		require.Equal(t, []any{"v"}, v, "the value put after the withdrawn take is still there")
	}
}

// A withdraw for a closed connection (EncodeWithdrawParked) acts only on
// a parked call: a call that has not executed yet stays free to run, as
// its client may be retrying it through another replica.
func TestWithdrawParkedLeavesAFutureCallFree(t *testing.T) {
	e := newEnv(t, replicated.Options{})
	a := ref(dso.TypeAtomicLong, "a")
	late := protocols.CommandID{Client: 7, Seq: 100}
	w, as := e.apply(replicated.EncodeWithdrawParked(late, wire.CodeCanceled, "connection closed"), replicated.Key(a))
	v, err := result(t, as, w)
	require.NoError(t, err)
	require.Equal(t, false, v)
	var rec recorder
	add, err := replicated.EncodeCall(a, "addAndGet", []any{int64(5)}, nil)
	require.NoError(t, err)
	e.tab.Apply(protocols.Command{ID: late, Keys: []string{replicated.Key(a)}, Payload: add}, &rec)
	v, err = result(t, rec.all, late)
	require.NoError(t, err)
	require.Equal(t, int64(5), v, "the call ran")
}
