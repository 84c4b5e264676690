package dso_test

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/wire"
)

// TestCompareQueueItemsOrder checks the contract of CompareQueueItems:
// stamp first, then writer, then number, the element ignored; the order
// is a total order on (stamp, writer, number), the same whatever order
// the items arrive in.
func TestCompareQueueItemsOrder(t *testing.T) {
	it := func(st int64, w string, n int64) dso.QueueItem {
		return dso.QueueItem{Writer: w, N: n, Stamp: st, V: w + "." + string(rune('0'+n))}
	}
	cases := []struct {
		a, b dso.QueueItem
		want int
	}{
		{it(1, "u:b", 9), it(2, "u:a", 1), -1},  // the stamp decides before the writer and number
		{it(5, "u:a", 9), it(5, "u:b", 1), -1},  // then the writer, before the number
		{it(5, "c:f", 1), it(5, "u:a", 1), -1},  // writers compare as strings
		{it(5, "u:a", 1), it(5, "u:a", 2), -1},  // then the number
		{it(-3, "u:a", 1), it(0, "u:a", 1), -1}, // stamps are signed
		{it(7, "u:a", 3), it(7, "u:a", 3), 0},
	}
	for _, c := range cases {
		if got := dso.CompareQueueItems(c.a, c.b); sign(got) != c.want {
			t.Errorf("CompareQueueItems(%v, %v) = %d, want sign %d", c.a, c.b, got, c.want)
		}
		if got := dso.CompareQueueItems(c.b, c.a); sign(got) != -c.want {
			t.Errorf("CompareQueueItems(%v, %v) = %d, want sign %d", c.b, c.a, got, -c.want)
		}
	}
	a, b := it(4, "u:a", 2), it(4, "u:a", 2)
	b.V = "another element"
	if dso.CompareQueueItems(a, b) != 0 {
		t.Errorf("the element changed the order of %v and %v", a, b)
	}

	// Every arrival order sorts to one queue, each writer's items (stamped
	// in increasing order) in the writer's order.
	var want []dso.QueueItem
	for st := int64(1); st <= 4; st++ {
		for _, w := range []string{"c:1", "u:x", "u:y"} {
			for n := int64(1); n <= 3; n++ {
				want = append(want, it(st*10+n, w, (st-1)*3+n))
			}
		}
	}
	slices.SortFunc(want, dso.CompareQueueItems)
	for i := 1; i < len(want); i++ {
		if dso.CompareQueueItems(want[i-1], want[i]) >= 0 {
			t.Fatalf("items %d and %d not strictly ordered: %v, %v", i-1, i, want[i-1], want[i])
		}
	}
	last := map[string]int64{}
	for _, x := range want {
		if x.N <= last[x.Writer] {
			t.Fatalf("writer %s's item %d after its item %d", x.Writer, x.N, last[x.Writer])
		}
		last[x.Writer] = x.N
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		got := slices.Clone(want)
		r.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortFunc(got, dso.CompareQueueItems)
		if !slices.EqualFunc(got, want, func(x, y dso.QueueItem) bool { return x == y }) {
			t.Fatalf("a shuffled queue sorted to %v, want %v", got, want)
		}
	}
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// TestQueueItemWireForm checks List and QueueItemFrom: an item survives
// the wire, and anything else than [writer, n >= 1, stamp, element] is
// refused.
func TestQueueItemWireForm(t *testing.T) {
	it := dso.QueueItem{Writer: "u:seg", N: 3, Stamp: -7, V: []any{"x", int64(1)}}
	b, err := wire.AppendValue(nil, it.List())
	if err != nil {
		t.Fatal(err)
	}
	v, err := wire.DecodeValue(b)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := dso.QueueItemFrom(v)
	if !ok || got.Writer != it.Writer || got.N != it.N || got.Stamp != it.Stamp || !slices.Equal(got.V.([]any), it.V.([]any)) {
		t.Fatalf("QueueItemFrom(%v) = %v, %v, want %v", v, got, ok, it)
	}
	for _, bad := range []any{
		nil, "x", []any{"u:a", int64(1), int64(2)},
		[]any{"u:a", int64(1), int64(2), "e", "extra"},
		[]any{"", int64(1), int64(2), "e"},
		[]any{"u:a", int64(0), int64(2), "e"},
		[]any{"u:a", int64(-1), int64(2), "e"},
		[]any{int64(1), int64(1), int64(2), "e"},
		[]any{"u:a", "1", int64(2), "e"},
		[]any{"u:a", int64(1), 2.0, "e"},
	} {
		if got, ok := dso.QueueItemFrom(bad); ok || got != (dso.QueueItem{}) {
			t.Errorf("QueueItemFrom(%v) = %v, %v, want a refusal", bad, got, ok)
		}
	}
}

// FuzzQueueItemFrom decodes a wire value and an item from it: no input
// may panic, and an item accepted encodes back to the same bytes.
func FuzzQueueItemFrom(f *testing.F) {
	for _, v := range []any{
		[]any{"u:seg", int64(1), int64(1700000000000000), "e"},
		[]any{"c:1f", int64(12), int64(-1), []any{int64(1)}},
		[]any{"", int64(0), int64(0), nil},
		[]any{"u:a", int64(1)},
	} {
		b, _ := wire.AppendValue(nil, v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := wire.DecodeValue(b)
		if err != nil {
			return
		}
		it, ok := dso.QueueItemFrom(v)
		if !ok {
			return
		}
		if it.Writer == "" || it.N < 1 {
			t.Fatalf("QueueItemFrom(%v) accepted %v", v, it)
		}
		again, err := wire.AppendValue(nil, it.List())
		if err != nil {
			t.Fatalf("the item %v does not encode: %v", it, err)
		}
		if canon, _ := wire.AppendValue(nil, v); !bytes.Equal(again, canon) {
			t.Fatalf("the item %v encodes to %x, not %x", it, again, canon)
		}
	})
}
