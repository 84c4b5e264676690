package lincheck

import (
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

func TestMultiKVModelAcceptsAtomicMultiPut(t *testing.T) {
	ops := []porcupine.Operation{
		{ClientId: 0, Input: MultiKVInput{Keys: []string{"a", "b"}, Put: true, Value: 1}, Call: 0, Output: nil, Return: 10},
		{ClientId: 1, Input: MultiKVInput{Keys: []string{"a"}}, Call: 11, Output: KVOutput{Value: 1}, Return: 12},
		{ClientId: 1, Input: MultiKVInput{Keys: []string{"b"}}, Call: 13, Output: KVOutput{Value: 1}, Return: 14},
	}
	require.Equal(t, Ok, Check(MultiKVModel, ops, 0).Verdict)
}

func TestMultiKVModelRejectsTornMultiPut(t *testing.T) {
	// b is read as 1 before a is read as 0, both after the put began and
	// a's read after b's: the put cannot be atomic.
	ops := []porcupine.Operation{
		{ClientId: 0, Input: MultiKVInput{Keys: []string{"a", "b"}, Put: true, Value: 1}, Call: 0, Output: nil, Return: 100},
		{ClientId: 1, Input: MultiKVInput{Keys: []string{"b"}}, Call: 10, Output: KVOutput{Value: 1}, Return: 12},
		{ClientId: 1, Input: MultiKVInput{Keys: []string{"a"}}, Call: 13, Output: KVOutput{Value: 0}, Return: 14},
	}
	require.Equal(t, Illegal, Check(MultiKVModel, ops, 0).Verdict)
}

func TestMultiKVModelPartitionsIndependentKeys(t *testing.T) {
	ops := []porcupine.Operation{
		{Input: MultiKVInput{Keys: []string{"a", "b"}, Put: true, Value: 1}},
		{Input: MultiKVInput{Keys: []string{"c"}}},
		{Input: MultiKVInput{Keys: []string{"b", "d"}, Put: true, Value: 2}},
	}
	require.Len(t, partitionByComponents(ops), 2)
}
