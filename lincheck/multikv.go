package lincheck

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// MultiKVInput is the Input of a MultiKVModel operation: a put of Value to
// every key of Keys when Put is set (atomically: a sharded map's multi-shard
// write), a get of Keys[0] otherwise.
type MultiKVInput struct {
	Keys  []string
	Put   bool
	Value uint64 // the value written by a put; ignored by a get
}

// ReadOnly reports whether the operation is a get.
func (in MultiKVInput) ReadOnly() bool { return !in.Put }

// MultiKVModel is the sequential specification of a sharded key-value map
// whose puts may write several keys, in different shards, atomically. A get
// of a key returns the value of the latest put that wrote it, or 0. Inputs
// are MultiKVInput and outputs KVOutput (or UnknownOutcome{}). Operations are
// partitioned into the connected components of the "share a key" relation,
// so that independent keys are checked separately. The state is a
// map[string]uint64 that a step never modifies in place.
var MultiKVModel = porcupine.Model{
	Partition: partitionByComponents,
	Init:      func() any { return map[string]uint64{} },
	Step: func(state, input, output any) (bool, any) {
		in, st := multiKVInput(input), state.(map[string]uint64)
		switch {
		case in.Put:
			next := maps.Clone(st)
			for _, k := range in.Keys {
				next[k] = in.Value
			}
			return true, next
		case IsUnknownOutcome(output) || len(in.Keys) == 0:
			return true, st
		default:
			return kvOutput(output).Value == st[in.Keys[0]], st
		}
	},
	Equal: func(a, b any) bool { return maps.Equal(a.(map[string]uint64), b.(map[string]uint64)) },
	Hash: func(state any) uint64 {
		st := state.(map[string]uint64)
		keys := slices.Sorted(maps.Keys(st))
		h := fnv.New64a()
		for _, k := range keys {
			fmt.Fprintf(h, "%s=%d;", k, st[k])
		}
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		in := multiKVInput(input)
		if in.Put {
			return describe(fmt.Sprintf("put(%s, %d)", strings.Join(in.Keys, ","), in.Value), output, nil)
		}
		return describe(fmt.Sprintf("get(%s)", strings.Join(in.Keys, ",")), output, func() string {
			return strconv.FormatUint(kvOutput(output).Value, 10)
		})
	},
	DescribeState: func(state any) string {
		st := state.(map[string]uint64)
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(st)) {
			fmt.Fprintf(&b, "%s=%d ", k, st[k])
		}
		return strings.TrimSpace(b.String())
	},
}

// partitionByComponents groups operations by the connected components of
// the keys they touch (union-find), in order of first appearance.
func partitionByComponents(history []porcupine.Operation) [][]porcupine.Operation {
	parent := map[string]string{}
	var find func(k string) string
	find = func(k string) string {
		p, ok := parent[k]
		if !ok {
			parent[k] = k
			return k
		}
		if p == k {
			return k
		}
		r := find(p)
		parent[k] = r
		return r
	}
	for _, op := range history {
		keys := multiKVInput(op.Input).Keys
		for _, k := range keys[min(1, len(keys)):] {
			if a, b := find(keys[0]), find(k); a != b {
				parent[a] = b
			}
		}
	}
	index := map[string]int{}
	var parts [][]porcupine.Operation
	for _, op := range history {
		keys := multiKVInput(op.Input).Keys
		root := ""
		if len(keys) > 0 {
			root = find(keys[0])
		}
		i, ok := index[root]
		if !ok {
			i = len(parts)
			index[root] = i
			parts = append(parts, nil)
		}
		parts[i] = append(parts[i], op)
	}
	return parts
}

func multiKVInput(input any) MultiKVInput {
	in, ok := input.(MultiKVInput)
	if !ok {
		badType("MultiKVModel", "input", input, "MultiKVInput")
	}
	return in
}
