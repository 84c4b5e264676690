package replicated_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/replicated"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/stretchr/testify/require"
)

// fuzzRefs are the objects of populated(); commands of the fuzz targets
// carry their keys.
var fuzzRefs = []dso.Ref{
	{Type: dso.TypeAtomicLong, Key: "a"}, {Type: dso.TypeCyclicBarrier, Key: "b"}, {Type: dso.TypeFuture, Key: "f"},
	{Type: dso.TypePipe, Key: "p"}, {Type: dso.TypeSemaphore, Key: "s"}, {Type: dso.TypeMap, Key: "m"},
	{Type: dso.TypeList, Key: "l"}, {Type: dso.TypeMatrix, Key: "x"}, {Type: dso.TypeRendezvous, Key: "r"},
	{Type: dso.TypeCountDownLatch, Key: "c"}, {Type: dso.TypeBlob, Key: "o"}, {Type: dso.TypeTreeMap, Key: "t"},
}

func fuzzKeys() []string {
	keys := make([]string, len(fuzzRefs))
	for i, r := range fuzzRefs {
		keys[i] = replicated.Key(r)
	}
	return keys
}

// populatedParked are the calls parked in populated().
var populatedParked = []protocols.CommandID{{Client: 1, Seq: 2}, {Client: 1, Seq: 3}, {Client: 1, Seq: 4}, {Client: 1, Seq: 5}, {Client: 1, Seq: 8}, {Client: 1, Seq: 10}, {Client: 1, Seq: 15}}

// populated returns a table holding an object of every snapshotted type
// and calls parked on most of them (populatedParked and 1.16).
func populated() *replicated.Table {
	tab := replicated.New(nil, replicated.Options{})
	var rec recorder
	seq := uint64(0)
	do := func(r dso.Ref, ctor []any, method string, args ...any) {
		seq++
		p, err := replicated.EncodeCall(r, method, args, ctor)
		if err != nil {
			panic(err)
		}
		tab.Apply(protocols.Command{ID: protocols.CommandID{Client: 1, Seq: seq}, Keys: []string{replicated.Key(r)}, Payload: p}, &rec)
	}
	do(fuzzRefs[0], nil, "addAndGet", int64(41))                               // 1
	do(fuzzRefs[1], []any{int64(3)}, "await")                                  // 2 parks
	do(fuzzRefs[1], nil, "await")                                              // 3 parks
	do(fuzzRefs[2], nil, "get")                                                // 4 parks
	do(fuzzRefs[4], []any{int64(0)}, "acquire", int64(2))                      // 5 parks
	do(fuzzRefs[3], []any{int64(1)}, "put", "first")                           // 6
	do(fuzzRefs[5], nil, "put", "k", map[string]any{"z": 1.5, "a": nil})       // 7
	do(fuzzRefs[3], nil, "put", []any{"second"})                               // 8 parks
	do(fuzzRefs[6], nil, "add", []byte("x"))                                   // 9
	do(fuzzRefs[9], []any{int64(2)}, "await")                                  // 10 parks
	do(fuzzRefs[7], []any{int64(2), int64(2)}, "set", int64(1), int64(0), 2.5) // 11
	do(fuzzRefs[10], nil, "write", []byte{0, 1})                               // 12
	do(fuzzRefs[11], nil, "put", "b", int64(2))                                // 13
	do(fuzzRefs[11], nil, "put", "a", int64(1))                                // 14
	do(fuzzRefs[8], nil, "exchange", "mine")                                   // 15 parks
	do(fuzzRefs[4], nil, "acquire", int64(1))                                  // 16 parks
	if want := append(slices.Clone(populatedParked), protocols.CommandID{Client: 1, Seq: 16}); !slices.Equal(want, tab.Parked()) {
		panic(fmt.Sprintf("populated: parked %v, want %v", tab.Parked(), want))
	}
	return tab
}

func TestSnapshotRestoreKeepsObjectsAndParkedCalls(t *testing.T) {
	a := populated()
	snap, err := a.Snapshot()
	require.NoError(t, err)
	again, err := a.Snapshot()
	require.NoError(t, err)
	require.Equal(t, snap, again)

	b := replicated.New(nil, replicated.Options{})
	require.NoError(t, b.Restore(snap))
	snap2, err := b.Snapshot()
	require.NoError(t, err)
	require.Equal(t, snap, snap2, "Snapshot, Restore, Snapshot gives the same bytes")
	require.Equal(t, a.Parked(), b.Parked())
	require.Equal(t, a.List(""), b.List(""))

	// Both go on alike: releases answer the restored parked calls, in the
	// same order, with the same results.
	var ra, rb recorder
	cmds := [][]any{
		{fuzzRefs[1], "await"}, // the barrier's third party releases 1.2 and 1.3
		{fuzzRefs[2], "set", map[string]any{"v": int64(1), "w": "x"}}, // releases 1.4
		{fuzzRefs[4], "release", int64(3)},                            // releases 1.5 (2), then 1.16 (1)
		{fuzzRefs[3], "take"},                                         // "first", and the parked put 1.8 moves in
		{fuzzRefs[9], "countDown"},
		{fuzzRefs[9], "countDown"},         // releases 1.10
		{fuzzRefs[8], "exchange", "yours"}, // releases 1.15
		{fuzzRefs[0], "get"},
		{fuzzRefs[5], "entries"},
	}
	for i, c := range cmds {
		p, err := replicated.EncodeCall(c[0].(dso.Ref), c[1].(string), c[2:], nil)
		require.NoError(t, err)
		cmd := protocols.Command{ID: protocols.CommandID{Client: 2, Seq: uint64(i + 1)}, Keys: []string{replicated.Key(c[0].(dso.Ref))}, Payload: p}
		a.Apply(cmd, &ra)
		b.Apply(cmd, &rb)
	}
	require.Equal(t, ra.all, rb.all)
	require.Empty(t, b.Parked())
	got := map[protocols.CommandID]any{}
	for _, x := range rb.all {
		v, err := replicated.DecodeResult(x.Result)
		require.NoError(t, err)
		got[x.ID] = v
	}
	require.Equal(t, int64(0), got[protocols.CommandID{Client: 1, Seq: 2}])
	require.Equal(t, map[string]any{"v": int64(1), "w": "x"}, got[protocols.CommandID{Client: 1, Seq: 4}])
	require.Equal(t, "first", got[protocols.CommandID{Client: 2, Seq: 4}])
	require.Equal(t, "yours", got[protocols.CommandID{Client: 1, Seq: 15}])
	require.Equal(t, "mine", got[protocols.CommandID{Client: 2, Seq: 7}])
	require.Equal(t, int64(41), got[protocols.CommandID{Client: 2, Seq: 8}])
	require.Contains(t, got, protocols.CommandID{Client: 1, Seq: 16})
	sa, _ := a.Snapshot()
	sb, _ := b.Snapshot()
	require.Equal(t, sa, sb)

	// An empty table snapshots too.
	empty, err := replicated.New(nil, replicated.Options{}).Snapshot()
	require.NoError(t, err)
	require.NoError(t, b.Restore(empty))
	require.Equal(t, 0, b.Len())
	require.Empty(t, b.Parked())
}

// Point is a user type without persistence.
type Point struct{ X int }

// Move moves the point.
func (p *Point) Move(d int) int { p.X += d; return p.X }

func TestSnapshotRefusesTypesWithoutPersistence(t *testing.T) {
	reg := dso.NewRegistry()
	require.NoError(t, dso.RegisterType(reg, func() *Point { return &Point{} }))
	e := &env{t: t, tab: replicated.New(reg, replicated.Options{})}
	pt := ref(dso.TypeNameOf[Point](), "p")
	require.Equal(t, int64(2), e.value(pt, "Move", int64(2)))
	_, err := e.tab.Snapshot()
	require.ErrorContains(t, err, "replicated_test.Point")
	require.ErrorContains(t, err, "neither dso.Persister nor dso.ParkedPersister")
	d, as := e.apply(replicated.EncodeDelete(pt), replicated.Key(pt))
	v, _ := result(t, as, d)
	require.Equal(t, true, v)
	_, err = e.tab.Snapshot()
	require.NoError(t, err)
}

// snapshotOf hand-builds a snapshot in the documented format.
type snapObject struct {
	ref   dso.Ref
	kind  byte
	state []byte
}

func snapshotOf(objs []snapObject, calls []protocols.CommandID, callRefs []dso.Ref) []byte {
	b := append([]byte("dsoT"), 2)
	b = binary.AppendUvarint(b, uint64(len(objs)))
	str := func(b []byte, s string) []byte { return append(binary.AppendUvarint(b, uint64(len(s))), s...) }
	for _, o := range objs {
		b = str(b, o.ref.Type)
		b = str(b, o.ref.Key)
		b = append(b, o.kind)
		b = str(b, string(o.state))
	}
	b = binary.AppendUvarint(b, uint64(len(calls)))
	for i, c := range calls {
		b = binary.AppendUvarint(b, c.Client)
		b = binary.AppendUvarint(b, c.Seq)
		b = str(b, callRefs[i].Type)
		b = str(b, callRefs[i].Key)
	}
	return binary.AppendUvarint(b, 0) // no calls withdrawn before they ran
}

// futureWaiting returns the state of a future on which the calls ids wait.
func futureWaiting(t *testing.T, ids ...string) []byte {
	reg := dso.NewRegistry()
	c, _, _ := reg.Lookup(dso.TypeFuture)
	f, err := c(nil)
	require.NoError(t, err)
	for _, id := range ids {
		_, err := f.Invoke(dso.NewInvocation(ref(dso.TypeFuture, "f"), "get", nil, func() *dso.Waiter {
			w := dso.NewWaiter(nil)
			w.ID = id
			return w
		}))
		require.NoError(t, err)
	}
	b, err := f.(dso.ParkedPersister).MarshalParked()
	require.NoError(t, err)
	return b
}

func TestRestoreRefusesBadSnapshots(t *testing.T) {
	f, g := ref(dso.TypeFuture, "f"), ref(dso.TypeFuture, "g")
	one, two := protocols.CommandID{Client: 1, Seq: 1}, protocols.CommandID{Client: 1, Seq: 2}
	long, _ := dso.AppendCanonical(nil, int64(5))
	good := snapshotOf([]snapObject{{f, 2, futureWaiting(t, "1.1")}}, []protocols.CommandID{one}, []dso.Ref{f})
	cases := map[string]struct {
		snap []byte
		want string
	}{
		"good":              {good, ""},
		"magic":             {[]byte("nope\x01\x00\x00"), "not a replicated object table snapshot"},
		"version":           {[]byte("dsoT\x01\x00\x00"), "version 1"},
		"trailing":          {append(append([]byte{}, good...), 0), "trailing"},
		"call not held":     {snapshotOf([]snapObject{{f, 2, futureWaiting(t)}}, []protocols.CommandID{one}, []dso.Ref{f}), "does not hold it"},
		"waiter not listed": {snapshotOf([]snapObject{{f, 2, futureWaiting(t, "1.1")}}, nil, nil), "not in the snapshot's parked calls"},
		"other object":      {snapshotOf([]snapObject{{f, 2, futureWaiting(t, "1.1")}, {g, 2, futureWaiting(t)}}, []protocols.CommandID{one}, []dso.Ref{g}), "parked on Future/g"},
		"parked twice":      {snapshotOf([]snapObject{{f, 2, futureWaiting(t, "1.1", "1.1")}}, []protocols.CommandID{one}, []dso.Ref{f}), "parked twice"},
		"objects unsorted":  {snapshotOf([]snapObject{{g, 2, futureWaiting(t)}, {f, 2, futureWaiting(t)}}, nil, nil), "out of order"},
		"object repeated":   {snapshotOf([]snapObject{{f, 2, futureWaiting(t)}, {f, 2, futureWaiting(t)}}, nil, nil), "out of order"},
		"calls unsorted": {snapshotOf([]snapObject{{f, 2, futureWaiting(t, "1.1", "1.2")}}, []protocols.CommandID{two, one}, []dso.Ref{f, f}),
			"out of order"},
		"unknown type":      {snapshotOf([]snapObject{{ref("Nope", "x"), 1, long}}, nil, nil), "unknown object type"},
		"unknown kind":      {snapshotOf([]snapObject{{f, 3, futureWaiting(t)}}, nil, nil), "unknown state kind"},
		"wrong kind":        {snapshotOf([]snapObject{{f, 1, futureWaiting(t)}}, nil, nil), "not a dso.Persister"},
		"wrong kind too":    {snapshotOf([]snapObject{{ref(dso.TypeAtomicLong, "a"), 2, long}}, nil, nil), "not a dso.ParkedPersister"},
		"bad state":         {snapshotOf([]snapObject{{ref(dso.TypeAtomicLong, "a"), 1, []byte{99}}}, nil, nil), "AtomicLong"},
		"huge object count": {append([]byte("dsoT\x02"), 0xff, 0xff, 0xff, 0xff, 0x0f), "exceeds"},
	}
	for name, c := range cases {
		tab := populated()
		before, err := tab.Snapshot()
		require.NoError(t, err)
		err = tab.Restore(c.snap)
		if c.want == "" {
			require.NoError(t, err, name)
			after, err := tab.Snapshot()
			require.NoError(t, err)
			require.Equal(t, c.snap, after, name)
			continue
		}
		require.ErrorContains(t, err, c.want, name)
		after, err := tab.Snapshot()
		require.NoError(t, err)
		require.Equal(t, before, after, "%s: a failed Restore changes nothing", name)
	}
	// Every strict prefix of a real snapshot is refused.
	snap, err := populated().Snapshot()
	require.NoError(t, err)
	for n := range len(snap) {
		require.Error(t, replicated.New(nil, replicated.Options{}).Restore(snap[:n]), "prefix of %d bytes", n)
	}
}

// applySeeds are payloads for FuzzApply: every kind of command, valid and
// damaged, on the objects of populated().
func applySeeds() [][]byte {
	must := func(p []byte, err error) []byte {
		if err != nil {
			panic(err)
		}
		return p
	}
	call := must(replicated.EncodeCall(fuzzRefs[0], "addAndGet", []any{int64(1)}, nil))
	return [][]byte{
		call,
		call[:len(call)-2],
		must(replicated.EncodeCall(fuzzRefs[1], "await", nil, nil)),
		must(replicated.EncodeCall(fuzzRefs[2], "set", []any{map[string]any{"b": []any{1.5}, "a": "x"}}, nil)),
		must(replicated.EncodeCall(fuzzRefs[3], "take", nil, nil)),
		must(replicated.EncodeCall(fuzzRefs[4], "release", []any{int64(2)}, nil)),
		must(replicated.EncodeCall(ref(dso.TypeCyclicBarrier, "new"), "await", nil, []any{int64(2)})),
		replicated.EncodeWithdraw(protocols.CommandID{Client: 1, Seq: 2}, wire.CodeTimeout, "late"),
		replicated.EncodeWithdraw(protocols.CommandID{Client: 1, Seq: 5}, wire.CodeCanceled, "gone"),
		replicated.EncodeWithdrawParked(protocols.CommandID{Client: 1, Seq: 5}, wire.CodeCanceled, "closed"),
		replicated.EncodeDelete(fuzzRefs[1]),
		replicated.EncodeDelete(fuzzRefs[3]),
		must(replicated.EncodeMulti([]dso.Call{
			{Ref: fuzzRefs[0], Method: "incrementAndGet"},
			{Ref: fuzzRefs[5], Method: "merge", Args: []any{"n", int64(2)}},
			{Ref: fuzzRefs[4], Method: "acquire", Args: []any{int64(9)}},
		})),
		{4, 0},
		{9, 9, 9},
		replicated.EncodeDeclare(ref(dso.TypeCounter, "weak"), degradable.Weak),
		replicated.EncodeDeclare(fuzzRefs[0], degradable.Sequential),
		{6, 1, 'x', 1, 'y', 9},
	}
}

// restoreSeeds are snapshots for FuzzRestore.
func restoreSeeds() [][]byte {
	full, err := populated().Snapshot()
	if err != nil {
		panic(err)
	}
	empty, _ := replicated.New(nil, replicated.Options{}).Snapshot()
	bound := populated()
	var rec recorder
	bound.Apply(protocols.Command{ID: protocols.CommandID{Client: 9, Seq: 1}, Payload: replicated.EncodeDeclare(ref(dso.TypeSet, "s"), degradable.Weak)}, &rec)
	levels, err := bound.Snapshot()
	if err != nil {
		panic(err)
	}
	return [][]byte{full, empty, full[:len(full)/2], []byte("dsoT"), levels, levels[:len(levels)-1]}
}

// TestFuzzSeeds keeps testdata/fuzz/FuzzApply and FuzzRestore in step
// with applySeeds and restoreSeeds.
func TestFuzzSeeds(t *testing.T) {
	fuzzseed.Check(t, "FuzzApply", applySeeds())
	fuzzseed.Check(t, "FuzzRestore", restoreSeeds())
}

// FuzzApply applies an arbitrary payload, with the keys of every object,
// to the table of populated(). Apply must not panic; the command must be
// answered once or parked; every answer must decode; the table must still
// snapshot and restore to the same bytes.
func FuzzApply(f *testing.F) {
	for _, s := range applySeeds() {
		f.Add(s)
	}
	keys := fuzzKeys()
	f.Fuzz(func(t *testing.T, payload []byte) {
		tab := populated()
		var rec recorder
		id := protocols.CommandID{Client: 3, Seq: 1}
		tab.Apply(protocols.Command{ID: id, Keys: keys, Payload: payload}, &rec)
		seen := map[protocols.CommandID]bool{}
		for _, a := range rec.all {
			require.False(t, seen[a.ID], "%s answered twice", a.ID)
			seen[a.ID] = true
			_, err := replicated.DecodeResult(a.Result)
			if err != nil {
				var re *dso.RemoteError
				require.ErrorAs(t, err, &re, "answer %x does not decode", a.Result)
			}
		}
		parked := false
		for _, p := range tab.Parked() {
			parked = parked || p == id
		}
		require.True(t, seen[id] != parked, "the command must be answered or parked, not both, not neither")
		snap, err := tab.Snapshot()
		require.NoError(t, err)
		other := replicated.New(nil, replicated.Options{})
		require.NoError(t, other.Restore(snap))
		again, err := other.Snapshot()
		require.NoError(t, err)
		require.True(t, bytes.Equal(snap, again))
	})
}

// FuzzRestore restores arbitrary bytes: Restore must not panic; it fails
// and leaves the table as it was, or succeeds with a table whose snapshot
// restores to the same bytes.
func FuzzRestore(f *testing.F) {
	for _, s := range restoreSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, snap []byte) {
		tab := replicated.New(nil, replicated.Options{})
		var rec recorder
		p, _ := replicated.EncodeCall(fuzzRefs[0], "incrementAndGet", nil, nil)
		tab.Apply(protocols.Command{ID: protocols.CommandID{Client: 1, Seq: 1}, Payload: p}, &rec)
		checkRestore(t, tab, snap, replicated.Options{})
	})
}

// checkRestore restores snap into tab: it must fail and leave tab as it
// was, or succeed with a table whose snapshot restores, into a new table
// with opts, to the same bytes.
func checkRestore(t *testing.T, tab *replicated.Table, snap []byte, opts replicated.Options) {
	before, err := tab.Snapshot()
	require.NoError(t, err)
	if err := tab.Restore(snap); err != nil {
		after, err := tab.Snapshot()
		require.NoError(t, err)
		require.Equal(t, before, after, "a failed Restore changed the table")
		return
	}
	got, err := tab.Snapshot()
	require.NoError(t, err)
	other := replicated.New(nil, opts)
	require.NoError(t, other.Restore(got))
	again, err := other.Snapshot()
	require.NoError(t, err)
	require.Equal(t, got, again)
}
