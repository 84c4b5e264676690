package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
)

func TestValuesRoundTrip(t *testing.T) {
	t.Parallel()
	vals := []any{
		nil, true, false, int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64),
		1.5, math.Inf(-1), "", "héllo", []byte{}, []byte{0, 1, 255},
		[]float64{1, -2.5}, []any{int64(1), "a", []any{nil}},
		map[string]any{"a": int64(1), "b": map[string]any{"c": []byte("x")}},
	}
	for _, v := range vals {
		b, err := AppendValue(nil, v)
		if err != nil {
			t.Fatalf("encode %#v: %v", v, err)
		}
		got, err := DecodeValue(b)
		if err != nil {
			t.Fatalf("decode %#v: %v", v, err)
		}
		if !reflect.DeepEqual(v, got) {
			t.Fatalf("round trip: want %#v, got %#v", v, got)
		}
	}
}

func TestConvenienceTypesEncodeAsWireTypes(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]any{
		"int":      {int(5), int64(5)},
		"uint32":   {uint32(7), int64(7)},
		"float32":  {float32(0.5), 0.5},
		"strings":  {[]string{"a"}, []any{"a"}},
		"ints":     {[]int64{1}, []any{int64(1)}},
		"map ints": {map[string]int64{"k": 2}, map[string]any{"k": int64(2)}},
	} {
		b, err := AppendValue(nil, want[0])
		if err != nil {
			t.Fatal(in, err)
		}
		got, err := DecodeValue(b)
		if err != nil || !reflect.DeepEqual(want[1], got) {
			t.Fatalf("%s: want %#v, got %#v (%v)", in, want[1], got, err)
		}
	}
	if _, err := AppendValue(nil, struct{}{}); err == nil {
		t.Fatal("a struct must not encode")
	}
	if _, err := AppendValue(nil, uint64(math.MaxUint64)); err == nil {
		t.Fatal("an overflowing uint64 must not encode")
	}
}

func TestCallFrameRoundTrip(t *testing.T) {
	t.Parallel()
	f, err := AppendCall(nil, 42, 1500, "Map", "m", "put", []any{"k", int64(1)}, []any{int64(3)})
	if err != nil {
		t.Fatal(err)
	}
	body, err := ReadFrame(bytes.NewReader(f), nil, DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	q, err := DecodeRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	want := Request{Op: OpCall, ID: 42, Timeout: 1500, Type: "Map", Key: "m", Method: "put",
		Args: []any{"k", int64(1)}, Ctor: []any{int64(3)}}
	if !reflect.DeepEqual(want, q) {
		t.Fatalf("want %#v, got %#v", want, q)
	}
	r := AppendError(nil, 9, CodeBadArgs, "nope")
	rep, err := DecodeReply(r[4:])
	if err != nil || rep.ID != 9 || rep.OK || rep.Code != CodeBadArgs || rep.Msg != "nope" {
		t.Fatalf("error reply: %#v %v", rep, err)
	}
}

func TestSessionFramesRoundTrip(t *testing.T) {
	t.Parallel()
	c := Command{Session: 1 << 40, Seq: 7, Acked: 5}
	call, err := AppendCallP(nil, 3, 250, c, "AtomicLong", "a", "addAndGet", []any{int64(5)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := []Part{
		{Type: "AtomicLong", Key: "a", Method: "addAndGet", Args: []any{int64(-5)}},
		{Type: "AtomicLong", Key: "b", Method: "addAndGet", Args: []any{int64(5)}, Ctor: []any{int64(0)}},
	}
	multi, err := AppendMulti(nil, 4, 0, c, parts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		frame []byte
		want  Request
	}{
		{call, Request{Op: OpCallP, ID: 3, Timeout: 250, Session: 1 << 40, Seq: 7, Acked: 5,
			Type: "AtomicLong", Key: "a", Method: "addAndGet", Args: []any{int64(5)}, Ctor: []any{}}},
		{multi, Request{Op: OpMulti, ID: 4, Session: 1 << 40, Seq: 7, Acked: 5,
			Parts: []Part{
				{Type: "AtomicLong", Key: "a", Method: "addAndGet", Args: []any{int64(-5)}, Ctor: []any{}},
				{Type: "AtomicLong", Key: "b", Method: "addAndGet", Args: []any{int64(5)}, Ctor: []any{int64(0)}}}}},
		{AppendDeleteP(nil, 5, c, "Map", "m"), Request{Op: OpDeleteP, ID: 5, Session: 1 << 40, Seq: 7, Acked: 5, Type: "Map", Key: "m"}},
		{AppendSimple(nil, OpTopology, 6), Request{Op: OpTopology, ID: 6}},
	} {
		q, err := DecodeRequest(tc.frame[4:])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normalize(tc.want), normalize(q)) {
			t.Fatalf("want %#v\n got %#v", tc.want, q)
		}
		for i := range len(tc.frame) - 4 {
			if _, err := DecodeRequest(tc.frame[4 : 4+i]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("op %#x truncated at %d: got %v", tc.want.Op, i, err)
			}
		}
	}
}

// normalize makes empty argument lists nil, for comparisons.
func normalize(q Request) Request {
	if len(q.Args) == 0 {
		q.Args = nil
	}
	if len(q.Ctor) == 0 {
		q.Ctor = nil
	}
	for i := range q.Parts {
		if len(q.Parts[i].Args) == 0 {
			q.Parts[i].Args = nil
		}
		if len(q.Parts[i].Ctor) == 0 {
			q.Parts[i].Ctor = nil
		}
	}
	return q
}

func TestDecodersRejectMalformedInput(t *testing.T) {
	t.Parallel()
	good, _ := AppendCall(nil, 1, 0, "T", "k", "m", []any{"x"}, nil)
	body := good[4:]
	for i := 0; i < len(body); i++ {
		if _, err := DecodeRequest(body[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated at %d: got %v", i, err)
		}
	}
	if _, err := DecodeRequest(append(append([]byte{}, body...), 0)); !errors.Is(err, ErrMalformed) {
		t.Fatal("trailing byte accepted")
	}
	// A huge count with few bytes must fail without allocating.
	if _, err := DecodeValue([]byte{tagList, 0xff, 0xff, 0xff, 0xff, 0x0f}); !errors.Is(err, ErrMalformed) {
		t.Fatal("huge count accepted")
	}
	deep := bytes.Repeat([]byte{tagList, 1}, MaxDepth+2)
	deep = append(deep, tagNil)
	if _, err := DecodeValue(deep); !errors.Is(err, ErrMalformed) {
		t.Fatal("deep nesting accepted")
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 1, 0}), nil, 10); !errors.Is(err, ErrTooLarge) {
		t.Fatal("oversized frame accepted")
	}
}

// TestCallPLevel checks the optional level byte of OpCallP: levels 2 and
// 3 round-trip, 0 and 1 give AppendCallP's frame (level 0 decoded), a
// level byte of 0, 1 or above MaxLevel is malformed, and a level above
// MaxLevel is refused by the encoder.
func TestCallPLevel(t *testing.T) {
	c := Command{Session: 9, Seq: 2, Acked: 1}
	plain, err := AppendCallP(nil, 7, 100, c, "Counter", "c", "increment", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []uint8{0, 1, 2, 3} {
		b, err := AppendCallPLevel(nil, 7, 100, c, l, "Counter", "c", "increment", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		q, err := DecodeRequest(b[4:])
		if err != nil {
			t.Fatalf("level %d: %v", l, err)
		}
		want := l
		if l == 1 {
			want = 0
			if !bytes.Equal(b, plain) {
				t.Fatal("level 1 is not AppendCallP's frame")
			}
		}
		if q.Level != want || q.Method != "increment" || q.Session != 9 {
			t.Fatalf("level %d decoded as %+v", l, q)
		}
	}
	for _, bad := range []byte{0, 1, 4, 255} {
		b := append(append([]byte{}, plain[4:]...), bad)
		if _, err := DecodeRequest(b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("level byte %d accepted: %v", bad, err)
		}
	}
	if _, err := AppendCallPLevel(nil, 7, 0, c, 4, "Counter", "c", "increment", nil, nil); err == nil {
		t.Fatal("level 4 encoded")
	}
	// At the sequential level a Seen above 0 follows the level byte; at
	// the weak level it is not sent; a truncated Seen is malformed.
	c.Seen = 300
	for _, l := range []uint8{2, 3} {
		b, err := AppendCallPLevel(nil, 7, 100, c, l, "Counter", "c", "tally", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		q, err := DecodeRequest(b[4:])
		if err != nil {
			t.Fatalf("level %d: %v", l, err)
		}
		want := uint64(300)
		if l == 3 {
			want = 0
		}
		if q.Level != l || q.Seen != want {
			t.Fatalf("level %d with seen 300 decoded as level %d seen %d", l, q.Level, q.Seen)
		}
		if l == 2 {
			if _, err := DecodeRequest(b[4 : len(b)-1]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("truncated seen accepted: %v", err)
			}
		}
	}
}

// TestOKPos checks the OpOKPos reply: position and value round-trip, and
// a truncated one is malformed.
func TestOKPos(t *testing.T) {
	b, err := AppendOKPos(nil, 5, 1<<40, []any{int64(3), "x"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeReply(b[4:])
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.ID != 5 || r.Position != 1<<40 || !reflect.DeepEqual(r.Value, []any{int64(3), "x"}) {
		t.Fatalf("decoded %+v", r)
	}
	if _, err := DecodeReply(b[4:14]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated reply accepted: %v", err)
	}
	if _, err := AppendOKPos(nil, 5, 1, struct{}{}); err == nil {
		t.Fatal("an unencodable value encoded")
	}
}

// FuzzDecodeReply checks that DecodeReply never panics, fails only with
// ErrMalformed, and that a decoded OK reply re-encodes (as OpOK, OpOKInc or
// OpOKPos) to a frame that decodes to the same reply.
func FuzzDecodeReply(f *testing.F) {
	var seeds [][]byte
	ok, _ := AppendOK(nil, 1, int64(7))
	inc, _ := AppendOKInc(nil, 2, 9, "v")
	pos, _ := AppendOKPos(nil, 3, 300, []any{true, nil})
	for _, b := range [][]byte{ok, inc, pos, AppendError(nil, 4, CodeTimeout, "late")} {
		seeds = append(seeds, b[4:])
	}
	for _, s := range seeds {
		f.Add(s)
	}
	fuzzseed.Check(f, "FuzzDecodeReply", seeds)
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeReply(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if !r.OK {
			return
		}
		var b []byte
		switch Op(body[0]) {
		case OpOK:
			b, err = AppendOK(nil, r.ID, r.Value)
		case OpOKInc:
			b, err = AppendOKInc(nil, r.ID, r.Incarnation, r.Value)
		case OpOKPos:
			b, err = AppendOKPos(nil, r.ID, r.Position, r.Value)
		}
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		r2, err := DecodeReply(b[4:])
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		e1, _ := AppendValue(nil, r.Value)
		e2, _ := AppendValue(nil, r2.Value)
		if r.ID != r2.ID || r.Incarnation != r2.Incarnation || r.Position != r2.Position || !bytes.Equal(e1, e2) {
			t.Fatalf("round trip changed the reply:\n%#v\n%#v", r, r2)
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	for _, args := range [][]any{nil, {int64(1)}, {"s", []byte("b"), 1.5}, {map[string]any{"k": []any{true}}}, {[]float64{1, 2}}} {
		b, _ := AppendCall(nil, 7, 100, "Map", "key", "mergeAll", args, []any{int64(1)})
		f.Add(b[4:])
	}
	f.Add(AppendSimple(nil, OpCancel, 3)[4:])
	f.Add(AppendSimple(nil, OpDelete, 3, "T", "k")[4:])
	c := Command{Session: 9, Seq: 2, Acked: 1}
	p, _ := AppendCallP(nil, 7, 100, c, "AtomicLong", "a", "addAndGet", []any{int64(1)}, nil)
	f.Add(p[4:])
	m, _ := AppendMulti(nil, 7, 0, c, []Part{{Type: "AtomicLong", Key: "a", Method: "get"}, {Type: "Map", Key: "m", Method: "put", Args: []any{"k", "v"}}})
	f.Add(m[4:])
	f.Add(AppendDeleteP(nil, 7, c, "T", "k")[4:])
	f.Add(AppendSimple(nil, OpTopology, 3)[4:])
	lp, _ := AppendCallPLevel(nil, 7, 100, c, 3, "Counter", "c", "increment", nil, nil)
	f.Add(lp[4:])
	sc := c
	sc.Seen = 1 << 20
	sp, _ := AppendCallPLevel(nil, 7, 100, sc, 2, "Counter", "c", "tally", nil, nil)
	f.Add(sp[4:])
	var names NameCache // kept across inputs, as a connection keeps it
	f.Fuzz(func(t *testing.T, body []byte) {
		q, err := DecodeRequest(body)
		qn, nerr := DecodeRequestNames(body, &names)
		if (err == nil) != (nerr == nil) || (err == nil && !equalNaN(q, qn)) {
			t.Fatalf("decoding with a name cache differs: %#v, %v\n%#v, %v", q, err, qn, nerr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if q.Op != OpCall {
			return
		}
		// A decoded call re-encodes to a frame that decodes to the same call.
		b, err := AppendCall(nil, q.ID, q.Timeout, q.Type, q.Key, q.Method, q.Args, q.Ctor)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		q2, err := DecodeRequest(b[4:])
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !equalNaN(q, q2) {
			t.Fatalf("round trip changed the call:\n%#v\n%#v", q, q2)
		}
	})
}

func FuzzDecodeValues(f *testing.F) {
	for _, vs := range [][]any{{}, {nil, true, int64(-5)}, {"x", []byte{1}}, {[]any{map[string]any{"a": 1.5}}}, {[]float64{0.5}}} {
		b, _ := AppendValues(nil, vs)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		vs, err := DecodeValues(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if _, err := AppendValues(nil, vs); err != nil {
			t.Fatalf("decoded values do not re-encode: %v", err)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	b, _ := AppendCall(nil, 1, 0, "T", "k", "m", nil, nil)
	f.Add(b)
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for {
			body, err := ReadFrame(r, nil, 1<<16)
			if err != nil {
				return
			}
			if len(body) == 0 || len(body) > 1<<16 {
				t.Fatalf("frame of %d bytes", len(body))
			}
			DecodeRequest(body)
		}
	})
}

func equalNaN(a, b Request) bool {
	// NaN != NaN; compare encodings instead of values.
	ea, _ := AppendCall(nil, a.ID, a.Timeout, a.Type, a.Key, a.Method, a.Args, a.Ctor)
	eb, _ := AppendCall(nil, b.ID, b.Timeout, b.Type, b.Key, b.Method, b.Args, b.Ctor)
	if len(a.Args) == 0 && len(b.Args) == 0 && len(a.Ctor) == 0 && len(b.Ctor) == 0 {
		return bytes.Equal(ea, eb)
	}
	return len(ea) == len(eb)
}

// TestNameCache checks that a connection's name cache gives back the
// names it decoded, allocates neither name of a repeated call, and stays
// bounded: at most nameCacheSize names, none longer than maxCachedName.
func TestNameCache(t *testing.T) {
	var names NameCache
	call := func(typ, method string) []byte {
		b, err := AppendCall(nil, 1, 0, typ, "object-key", method, nil, nil)
		require.NoError(t, err)
		return b[4:]
	}
	for i := range 3 * nameCacheSize {
		method := fmt.Sprint("m", i%(nameCacheSize+3))
		if i%5 == 0 {
			method = strings.Repeat("x", maxCachedName+1+i)
		}
		q, err := DecodeRequestNames(call("AtomicLong", method), &names)
		require.NoError(t, err)
		require.Equal(t, "AtomicLong", q.Type)
		require.Equal(t, method, q.Method)
		for _, s := range names.names {
			require.LessOrEqual(t, len(s), maxCachedName, "a long name was cached")
		}
	}
	body := call("AtomicLong", "addAndGet")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := DecodeRequestNames(body, &names); err != nil {
			t.Fatal(err)
		}
	})
	require.Equal(t, 1.0, allocs, "a repeated call allocates its key only")
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := DecodeRequest(body); err != nil {
			t.Fatal(err)
		}
	})
	require.Equal(t, 3.0, allocs, "without a cache: type, key and method")
}
