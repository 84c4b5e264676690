package dso_test

import (
	"errors"
	"testing"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/wire"
)

var fuzzMethods = map[string][]string{
	dso.TypeAtomicLong:      {"get", "set", "addAndGet", "compareAndSet", "getAndIncrement", "multiplyAndGet"},
	dso.TypeAtomicBoolean:   {"get", "set", "compareAndSet"},
	dso.TypeAtomicByteArray: {"get", "set", "addAndGet", "compareAndSet", "toArray"},
	dso.TypeCounter:         {"increment", "tally", "reset"},
	dso.TypeMap:             {"put", "get", "merge", "mergeAll", "remove", "keySet"},
	dso.TypeSet:             {"add", "remove", "contains", "members"},
	dso.TypeList:            {"add", "addAt", "get", "set", "removeAt", "subList"},
	dso.TypeTreeMap:         {"put", "remove", "range", "floorKey", "ceilingKey"},
	dso.TypeMatrix:          {"get", "set", "add", "setRow", "addRow", "getRow"},
	dso.TypeBlob:            {"write", "append", "readAt", "writeAt"},
	dso.TypeCyclicBarrier:   {"await", "getNumberWaiting"},
	dso.TypeSemaphore:       {"acquire", "release", "tryAcquire"},
	dso.TypeCountDownLatch:  {"countDown", "await"},
	dso.TypeFuture:          {"set", "get"},
	dso.TypePipe:            {"put", "take", "poll", "offer", "close"},
	dso.TypeRendezvous:      {"exchange"},
}

// FuzzInvokeWithDecodedArgs decodes constructor and call arguments from
// the fuzzer's bytes and runs a sequence of calls on a fresh object of
// every library type: no input may panic, and every failure must wrap one
// of the sentinel errors.
func FuzzInvokeWithDecodedArgs(f *testing.F) {
	add := func(ctor []any, calls ...[]any) {
		b, _ := wire.AppendValues(nil, ctor)
		for _, c := range calls {
			b, _ = wire.AppendValues(b, c)
		}
		f.Add(b)
	}
	add([]any{int64(2), int64(2)}, []any{int64(0), int64(1), int64(3)}, []any{int64(1), []float64{1, 2}})
	add(nil, []any{"k", int64(1), "sum"}, []any{map[string]any{"k": 2.5}, "max"})
	add([]any{int64(1)}, []any{}, []any{int64(-1)})
	reg := dso.NewRegistry()
	f.Fuzz(func(t *testing.T, b []byte) {
		var lists [][]any
		for len(b) > 0 && len(lists) < 8 {
			vs, n := decodePrefix(b)
			if n == 0 {
				break
			}
			lists = append(lists, vs)
			b = b[n:]
		}
		if len(lists) == 0 {
			return
		}
		for typ, methods := range fuzzMethods {
			ctor, _, _ := reg.Lookup(typ)
			obj, err := ctor(lists[0])
			if err != nil {
				checkSentinel(t, err)
				continue
			}
			for i, args := range lists[1:] {
				m := methods[i%len(methods)]
				inv := dso.NewInvocation(dso.Ref{Type: typ, Key: "k"}, m, args, nil)
				_, err := obj.Invoke(inv)
				if err != nil {
					checkSentinel(t, err)
				}
			}
		}
	})
}

// decodePrefix decodes the longest prefix of b that is a value list.
func decodePrefix(b []byte) ([]any, int) {
	for n := len(b); n > 0; n-- {
		if vs, err := wire.DecodeValues(b[:n]); err == nil {
			return vs, n
		}
		if len(b)-n > 64 {
			break
		}
	}
	return nil, 0
}

func checkSentinel(t *testing.T, err error) {
	for _, s := range []error{dso.ErrBadArgs, dso.ErrFailed, dso.ErrUnknownMethod, dso.ErrClosed, dso.ErrTooLarge} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error wraps no sentinel: %v", err)
}
