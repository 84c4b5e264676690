package lincheck

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// objOp is an operation that completed ok, for the object models' tests.
func objOp(client int, call, ret int64, input, output any) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: input, Call: call, Output: output, Return: ret}
}

type objCase struct {
	name string
	ops  []porcupine.Operation
	want Verdict
}

func checkObjCases(t *testing.T, model porcupine.Model, cases []objCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := Check(model, tc.ops, 5*time.Second)
			if res.Verdict != tc.want {
				t.Fatalf("verdict %s, want %s (%v)", res.Verdict, tc.want, res.Err())
			}
		})
	}
}

func TestSetModelVerdicts(t *testing.T) {
	t.Parallel()
	add := func(e string) SetInput { return SetInput{Name: "s", Op: SetAdd, Elem: e} }
	rm := func(e string) SetInput { return SetInput{Name: "s", Op: SetRemove, Elem: e} }
	has := func(e string) SetInput { return SetInput{Name: "s", Op: SetContains, Elem: e} }
	r := func(b bool) SetOutput { return SetOutput{Result: b} }
	checkObjCases(t, SetModel, []objCase{
		{"sequential", []porcupine.Operation{
			objOp(0, 0, 1, add("a"), r(true)), objOp(0, 2, 3, add("a"), r(false)),
			objOp(0, 4, 5, has("a"), r(true)), objOp(0, 6, 7, rm("a"), r(true)), objOp(0, 8, 9, has("a"), r(false)),
		}, Ok},
		{"two concurrent adds both new", []porcupine.Operation{
			objOp(0, 0, 5, add("a"), r(true)), objOp(1, 1, 6, add("a"), r(true)),
		}, Illegal},
		{"concurrent add and contains", []porcupine.Operation{
			objOp(0, 0, 5, add("a"), r(true)), objOp(1, 1, 6, has("a"), r(false)),
		}, Ok},
		{"stale contains after add", []porcupine.Operation{
			objOp(0, 0, 1, add("a"), r(true)), objOp(1, 2, 3, has("a"), r(false)),
		}, Illegal},
		{"elements independent", []porcupine.Operation{
			objOp(0, 0, 1, add("a"), r(true)), objOp(1, 2, 3, has("b"), r(false)),
		}, Ok},
		{"unknown add may have happened", []porcupine.Operation{
			{ClientId: 0, Input: add("a"), Call: 0, Output: UnknownOutcome{}, Return: 100},
			objOp(1, 2, 3, has("a"), r(true)),
		}, Ok},
	})
}

func TestMapModelVerdicts(t *testing.T) {
	t.Parallel()
	in := func(op MapOp, v int64) MapInput { return MapInput{Name: "m", Key: "k", Op: op, Value: v} }
	present := func(v int64) MapOutput { return MapOutput{Value: v, Present: true} }
	checkObjCases(t, MapModel, []objCase{
		{"put get merge remove", []porcupine.Operation{
			objOp(0, 0, 1, in(MapPut, 3), MapOutput{}), objOp(0, 2, 3, in(MapGet, 0), present(3)),
			objOp(0, 4, 5, in(MapMerge, 2), present(5)), objOp(0, 6, 7, in(MapRemove, 0), present(5)),
			objOp(0, 8, 9, in(MapGet, 0), MapOutput{}),
		}, Ok},
		{"lost merge", []porcupine.Operation{
			objOp(0, 0, 5, in(MapMerge, 1), present(1)), objOp(1, 1, 6, in(MapMerge, 1), present(1)),
		}, Illegal},
		{"concurrent merges", []porcupine.Operation{
			objOp(0, 0, 5, in(MapMerge, 1), present(2)), objOp(1, 1, 6, in(MapMerge, 1), present(1)),
		}, Ok},
		{"put returns wrong previous", []porcupine.Operation{
			objOp(0, 0, 1, in(MapPut, 3), MapOutput{}), objOp(0, 2, 3, in(MapPut, 4), present(4)),
		}, Illegal},
	})
}

func TestListModelVerdicts(t *testing.T) {
	t.Parallel()
	add := func(v string) ListInput { return ListInput{Name: "l", Op: ListAdd, Value: v} }
	read := ListInput{Name: "l", Op: ListRead}
	rm0 := ListInput{Name: "l", Op: ListRemoveAt, Index: 0}
	checkObjCases(t, ListModel, []objCase{
		{"appends in either order", []porcupine.Operation{
			objOp(0, 0, 5, add("a"), nil), objOp(1, 1, 6, add("b"), nil),
			objOp(2, 7, 8, read, ListOutput{Values: []string{"b", "a"}}),
			objOp(2, 9, 10, rm0, ListOutput{Value: "b", OK: true}),
			objOp(2, 11, 12, read, ListOutput{Values: []string{"a"}}),
		}, Ok},
		{"lost append", []porcupine.Operation{
			objOp(0, 0, 1, add("a"), nil), objOp(1, 2, 3, add("b"), nil),
			objOp(2, 4, 5, read, ListOutput{Values: []string{"b"}}),
		}, Illegal},
		{"remove out of range", []porcupine.Operation{
			objOp(0, 0, 1, rm0, ListOutput{OK: false}), objOp(0, 2, 3, add("a"), nil),
			objOp(0, 4, 5, rm0, ListOutput{Value: "a", OK: true}),
		}, Ok},
	})
}

func TestPipeModelVerdicts(t *testing.T) {
	t.Parallel()
	put := func(v string) PipeInput { return PipeInput{Name: "p", Op: PipePut, Value: v, Capacity: 1} }
	take := PipeInput{Name: "p", Op: PipeTake, Capacity: 1}
	poll := PipeInput{Name: "p", Op: PipePoll, Capacity: 1}
	offer := func(v string) PipeInput { return PipeInput{Name: "p", Op: PipeOffer, Value: v, Capacity: 1} }
	got := func(v string) PipeOutput { return PipeOutput{Value: v, OK: true} }
	checkObjCases(t, PipeModel, []objCase{
		{"fifo", []porcupine.Operation{
			objOp(0, 0, 1, put("a"), nil), objOp(1, 2, 3, take, got("a")),
			objOp(0, 4, 5, put("b"), nil), objOp(1, 6, 7, poll, got("b")), objOp(1, 8, 9, poll, PipeOutput{}),
		}, Ok},
		{"blocked put completes after take", []porcupine.Operation{
			objOp(0, 0, 1, put("a"), nil), objOp(0, 2, 10, put("b"), nil),
			objOp(1, 5, 6, take, got("a")), objOp(1, 11, 12, take, got("b")),
		}, Ok},
		{"put into a full pipe", []porcupine.Operation{
			objOp(0, 0, 1, put("a"), nil), objOp(0, 2, 3, put("b"), nil),
			objOp(1, 5, 6, take, got("a")),
		}, Illegal},
		{"reorder", []porcupine.Operation{
			objOp(0, 0, 1, offer("a"), PipeOutput{OK: true}), objOp(0, 2, 3, offer("b"), PipeOutput{OK: false}),
			objOp(1, 4, 5, take, got("b")),
		}, Illegal},
		{"duplicate delivery", []porcupine.Operation{
			objOp(0, 0, 1, put("a"), nil), objOp(1, 2, 3, take, got("a")), objOp(2, 4, 5, poll, got("a")),
		}, Illegal},
	})
}

func TestBarrierModelVerdicts(t *testing.T) {
	t.Parallel()
	arrive := BarrierInput{Name: "b", Parties: 2}
	depart := BarrierInput{Name: "b", Parties: 2, Depart: true}
	await := func(c int, call, ret, gen int64) []porcupine.Operation {
		return []porcupine.Operation{objOp(c, call, ret, arrive, nil), objOp(c, call, ret, depart, BarrierOutput{Generation: gen})}
	}
	cat := func(xs ...[]porcupine.Operation) []porcupine.Operation {
		var out []porcupine.Operation
		for _, x := range xs {
			out = append(out, x...)
		}
		return out
	}
	checkObjCases(t, BarrierModel, []objCase{
		{"two generations", cat(await(0, 0, 10, 0), await(1, 5, 11, 0), await(0, 12, 20, 1), await(1, 13, 21, 1)), Ok},
		{"released before the last party arrived", cat(await(0, 0, 4, 0), await(1, 5, 11, 0)), Illegal},
		{"three parties in one generation", cat(await(0, 0, 10, 0), await(1, 1, 11, 0), await(2, 2, 12, 0)), Illegal},
		{"wrong generation number", cat(await(0, 0, 10, 1), await(1, 5, 11, 1)), Illegal},
		{"fast party enters next generation early", cat(await(0, 0, 10, 0), await(1, 5, 30, 0), await(0, 11, 40, 1), await(1, 31, 41, 1)), Ok},
	})
}
