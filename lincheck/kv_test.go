package lincheck

import (
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/stretchr/testify/require"
)

func put(k string, v uint64) KVInput { return KVInput{Key: k, Put: true, Value: v} }
func get(k string) KVInput           { return KVInput{Key: k} }
func got(v uint64) KVOutput          { return KVOutput{Value: v} }

func TestKVModelVerdicts(t *testing.T) {
	t.Parallel()
	requireVerdicts(t, KVModel, []historyCase{
		{name: "empty history is linearizable", want: Ok},
		{name: "get before any put returns 0", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, get("x"), got(0)),
		}},
		{name: "get of a key never written returns something else", want: Illegal, ops: []porcupine.Operation{
			op(0, 0, 10, get("x"), got(5)),
		}},
		{name: "sequential put then get", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, put("x", 1), nil),
			op(1, 20, 30, get("x"), got(1)),
		}},
		{name: "get concurrent with put may see the old value", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, put("x", 1), nil),
			op(0, 20, 40, put("x", 2), nil),
			op(1, 25, 35, get("x"), got(1)),
		}},
		{name: "get concurrent with put may see the new value", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, put("x", 1), nil),
			op(0, 20, 40, put("x", 2), nil),
			op(1, 25, 35, get("x"), got(2)),
		}},
		{name: "touching intervals are concurrent", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, put("x", 1), KVOutput{}),
			op(1, 10, 20, get("x"), got(0)),
		}},
		{name: "stale read after a completed write", want: Illegal, ops: []porcupine.Operation{
			op(0, 0, 10, put("x", 1), nil),
			op(0, 20, 30, put("x", 2), nil),
			op(1, 40, 50, get("x"), got(1)),
		}},
		{name: "reads going back in time", want: Illegal, ops: []porcupine.Operation{
			op(0, 0, 100, put("x", 1), nil),
			op(1, 10, 20, get("x"), got(1)),
			op(2, 30, 40, get("x"), got(0)),
		}},
		{name: "keys are independent registers", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, put("x", 1), nil),
			op(1, 0, 10, put("y", 2), nil),
			op(2, 20, 30, get("x"), got(1)),
			op(2, 40, 50, get("y"), got(2)),
			op(2, 60, 70, get("z"), got(0)),
		}},
		{name: "a value does not leak to another key", want: Illegal, ops: []porcupine.Operation{
			op(0, 0, 10, put("x", 1), nil),
			op(1, 20, 30, get("x"), got(1)),
			op(1, 40, 50, get("y"), got(1)),
		}},
		// Unknown outcomes: the put may or may not have taken effect.
		{name: "info put that must have taken effect", want: Ok, ops: []porcupine.Operation{
			infoOp(0, 0, put("x", 1)),
			op(1, 10, 20, get("x"), got(1)),
		}},
		{name: "info put that must not have taken effect", want: Ok, ops: []porcupine.Operation{
			infoOp(0, 0, put("x", 1)),
			op(1, 10, 20, get("x"), got(0)),
			op(1, 30, 40, get("x"), got(0)),
		}},
		{name: "info put that took effect after a later put", want: Ok, ops: []porcupine.Operation{
			infoOp(0, 0, put("x", 1)),
			op(1, 10, 20, put("x", 2), nil),
			op(1, 30, 40, get("x"), got(1)),
		}},
		{name: "info put takes effect at most once", want: Illegal, ops: []porcupine.Operation{
			infoOp(0, 0, put("x", 1)),
			op(1, 10, 20, get("x"), got(1)),
			op(1, 30, 40, put("x", 2), nil),
			op(1, 50, 60, get("x"), got(1)),
		}},
		{name: "info put cannot take effect before its invocation", want: Illegal, ops: []porcupine.Operation{
			op(1, 0, 10, get("x"), got(1)),
			infoOp(0, 20, put("x", 1)),
		}},
		{name: "info put does not explain a value never written", want: Illegal, ops: []porcupine.Operation{
			infoOp(0, 0, put("x", 1)),
			op(1, 10, 20, get("x"), got(7)),
		}},
		{name: "info get accepts any value", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, put("x", 1), nil),
			infoOp(1, 20, get("x")),
		}},
		{name: "output with Unknown set accepts any value", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, put("x", 1), nil),
			op(1, 20, 30, get("x"), KVOutput{Value: 9, Unknown: true}),
		}},
	})
}

func TestKVModelDescribesOperations(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		input, output any
		want          string
	}{
		{put("x", 3), nil, "put(x, 3)"},
		{put("x", 3), UnknownOutcome{}, "put(x, 3) → ?"},
		{get("x"), got(3), "get(x) → 3"},
		{get("x"), UnknownOutcome{}, "get(x) → ?"},
		{get("x"), KVOutput{Unknown: true}, "get(x) → ?"},
	} {
		require.Equal(t, tc.want, KVModel.DescribeOperation(tc.input, tc.output))
	}
	require.Equal(t, "3", KVModel.DescribeState(uint64(3)))
}

func TestKVModelPanicsOnWrongTypes(t *testing.T) {
	t.Parallel()
	require.PanicsWithValue(t, "lincheck: KVModel: input has type string, want KVInput", func() {
		KVModel.Step(uint64(0), "get x", got(0))
	})
	require.Panics(t, func() { KVModel.Step(uint64(0), get("x"), uint64(0)) })
}
