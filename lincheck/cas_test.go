package lincheck

import (
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

func casRead(k string) CASInput           { return CASInput{Key: k, Op: CASRead} }
func casWrite(k string, v int64) CASInput { return CASInput{Key: k, Op: CASWrite, Value: v} }
func cas(k string, old, new int64) CASInput {
	return CASInput{Key: k, Op: CASCompareAndSet, Old: old, New: new}
}
func swapped(ok bool) CASOutput { return CASOutput{Swapped: ok} }
func casGot(v int64) CASOutput  { return CASOutput{Value: v} }

func TestCASModelVerdicts(t *testing.T) {
	t.Parallel()
	requireVerdicts(t, CASModel, []historyCase{
		{name: "one of two concurrent cas from the same value wins", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, cas("k", 0, 1), swapped(true)),
			op(1, 5, 15, cas("k", 0, 2), swapped(false)),
			op(2, 20, 30, casRead("k"), casGot(1)),
		}},
		{name: "two successful cas from the same old value", want: Illegal, ops: []porcupine.Operation{
			op(0, 0, 10, cas("k", 0, 1), swapped(true)),
			op(1, 5, 15, cas("k", 0, 2), swapped(true)),
		}},
		{name: "cas fails although the value matched", want: Illegal, ops: []porcupine.Operation{
			op(0, 0, 10, casWrite("k", 4), nil),
			op(0, 20, 30, cas("k", 4, 5), swapped(false)),
		}},
		{name: "failed cas leaves the value", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, casWrite("k", 4), nil),
			op(0, 20, 30, cas("k", 3, 5), swapped(false)),
			op(1, 40, 50, casRead("k"), casGot(4)),
		}},
		{name: "stale read after a successful cas", want: Illegal, ops: []porcupine.Operation{
			op(0, 0, 10, cas("k", 0, 1), swapped(true)),
			op(1, 20, 30, casRead("k"), casGot(0)),
		}},
		{name: "a chain of cas", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, cas("k", 0, 1), swapped(true)),
			op(1, 0, 30, cas("k", 1, 2), swapped(true)),
			op(2, 0, 30, cas("k", 2, 3), swapped(true)),
			op(3, 40, 50, casRead("k"), casGot(3)),
		}},
		{name: "registers are independent", want: Ok, ops: []porcupine.Operation{
			op(0, 0, 10, cas("a", 0, 1), swapped(true)),
			op(1, 0, 10, cas("b", 0, 1), swapped(true)),
		}},
		{name: "info cas that must have taken effect", want: Ok, ops: []porcupine.Operation{
			infoOp(0, 0, cas("k", 0, 1)),
			op(1, 10, 20, casRead("k"), casGot(1)),
		}},
		{name: "info cas that must not have taken effect", want: Ok, ops: []porcupine.Operation{
			infoOp(0, 0, cas("k", 0, 1)),
			op(1, 10, 20, casRead("k"), casGot(0)),
			op(1, 30, 40, cas("k", 0, 2), swapped(true)),
		}},
		{name: "info cas cannot succeed from a value it did not expect", want: Illegal, ops: []porcupine.Operation{
			infoOp(0, 0, cas("k", 0, 1)),
			op(1, 10, 20, cas("k", 0, 2), swapped(true)),
			op(1, 30, 40, casRead("k"), casGot(1)),
		}},
		{name: "info write that took effect", want: Ok, ops: []porcupine.Operation{
			infoOp(0, 0, casWrite("k", 7)),
			op(1, 10, 20, cas("k", 7, 8), swapped(true)),
		}},
	})
}

func TestCASModelDescribesOperations(t *testing.T) {
	t.Parallel()
	require.Equal(t, "cas(k, 1, 2) → true", CASModel.DescribeOperation(cas("k", 1, 2), swapped(true)))
	require.Equal(t, "cas(k, 1, 2) → ?", CASModel.DescribeOperation(cas("k", 1, 2), UnknownOutcome{}))
	require.Equal(t, "write(k, 4)", CASModel.DescribeOperation(casWrite("k", 4), nil))
	require.Equal(t, "read(k) → 4", CASModel.DescribeOperation(casRead("k"), casGot(4)))
	require.Equal(t, "read(k) → ?", CASModel.DescribeOperation(casRead("k"), CASOutput{Unknown: true}))
	require.Equal(t, "4", CASModel.DescribeState(int64(4)))
	require.Equal(t, "cas", CASCompareAndSet.String())
	require.Panics(t, func() { CASModel.Step(int64(0), CASInput{Op: 9}, casGot(0)) })
}
