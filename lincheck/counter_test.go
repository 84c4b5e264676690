package lincheck

import (
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

func add(name string, d int64) CounterInput { return CounterInput{Name: name, Add: true, Delta: d} }
func read(name string) CounterInput         { return CounterInput{Name: name} }
func val(v int64) CounterOutput             { return CounterOutput{Value: v} }

func TestCounterModelVerdicts(t *testing.T) {
	t.Parallel()
	requireVerdicts(t, CounterModel, []historyCase{
		{name: "concurrent adds in either order", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, add("c", 1), val(2)),
			op(1, 0, 10, add("c", 1), val(1)),
			op(2, 20, 30, read("c"), val(2)),
		}},
		{name: "negative delta", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, add("c", 5), val(5)),
			op(0, 20, 30, add("c", -7), val(-2)),
			op(1, 40, 50, read("c"), val(-2)),
		}},
		{name: "lost update: both concurrent adds return 1", want: Illegal, ops: []porcupine.Operation{
			op(0, 0, 10, add("c", 1), val(1)),
			op(1, 0, 10, add("c", 1), val(1)),
		}},
		{name: "lost update: a later read misses an add", want: Illegal, ops: []porcupine.Operation{
			op(0, 0, 10, add("c", 1), val(1)),
			op(1, 5, 15, add("c", 1), val(2)),
			op(2, 20, 30, read("c"), val(1)),
		}},
		{name: "add returns a value before its predecessor completed", want: Illegal, ops: []porcupine.Operation{
			op(0, 0, 10, add("c", 1), val(1)),
			op(1, 20, 30, add("c", 1), val(1)),
		}},
		{name: "counters are independent", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, add("a", 1), val(1)),
			op(1, 0, 10, add("b", 1), val(1)),
			op(2, 20, 30, read("a"), val(1)),
		}},
		{name: "an add on another counter does not count", want: Illegal, ops: []porcupine.Operation{
			op(0, 0, 10, add("a", 1), val(1)),
			op(1, 20, 30, add("b", 1), val(2)),
		}},
		{name: "info add that must have taken effect", want: Ok, ops: []porcupine.Operation{
			infoOp(0, 0, add("c", 5)),
			op(1, 10, 20, read("c"), val(5)),
		}},
		{name: "info add that must not have taken effect", want: Ok, ops: []porcupine.Operation{
			infoOp(0, 0, add("c", 5)),
			op(1, 10, 20, add("c", 1), val(1)),
			op(1, 30, 40, read("c"), val(1)),
		}},
		{name: "info add that took effect between two adds", want: Ok, ops: []porcupine.Operation{
			op(1, 0, 10, add("c", 1), val(1)),
			infoOp(0, 5, add("c", 5)),
			op(1, 20, 30, add("c", 1), val(7)),
		}},
		{name: "info add takes effect once, with its own delta", want: Illegal, ops: []porcupine.Operation{
			infoOp(0, 0, add("c", 5)),
			op(1, 10, 20, read("c"), val(3)),
		}},
		{name: "two info adds where only one took effect", want: Ok, ops: []porcupine.Operation{
			infoOp(0, 0, add("c", 1)),
			infoOp(1, 0, add("c", 1)),
			op(2, 10, 20, read("c"), val(1)),
		}},
	})
}

func TestCounterModelDescribesOperations(t *testing.T) {
	t.Parallel()
	require.Equal(t, "add(c, -2) → 5", CounterModel.DescribeOperation(add("c", -2), val(5)))
	require.Equal(t, "add(c, 1) → ?", CounterModel.DescribeOperation(add("c", 1), UnknownOutcome{}))
	require.Equal(t, "get(c) → 5", CounterModel.DescribeOperation(read("c"), val(5)))
	require.Equal(t, "get(c) → ?", CounterModel.DescribeOperation(read("c"), CounterOutput{Unknown: true}))
	require.Equal(t, "-3", CounterModel.DescribeState(int64(-3)))
}
