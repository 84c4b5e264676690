package dso

import (
	"encoding/binary"
	"slices"

	"github.com/blossom-dso/blossom/dso/wire"
)

// The tags of a list and of a map in the wire encoding, taken from
// wire.AppendValue itself so that AppendCanonical cannot drift from it.
var (
	tagList = mustTag([]any{})
	tagMap  = mustTag(map[string]any{})
)

func mustTag(v any) byte {
	b, err := wire.AppendValue(nil, v)
	if err != nil {
		panic(err)
	}
	return b[0]
}

// AppendCanonical appends the wire encoding of v, like wire.AppendValue
// (same accepted types, same bytes for everything but maps), with the
// entries of every map, at any depth, in increasing order of their keys.
// Equal values therefore encode to equal bytes, which wire.AppendValue,
// following Go's map order, does not promise: state that replicas compare
// or hash (MarshalState, MarshalParked, a replicated table's answers and
// snapshots) is encoded with it. wire.DecodeValue decodes it.
func AppendCanonical(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case []any:
		b = binary.AppendUvarint(append(b, tagList), uint64(len(x)))
		for _, e := range x {
			var err error
			if b, err = AppendCanonical(b, e); err != nil {
				return b, err
			}
		}
		return b, nil
	case map[string]any:
		b = binary.AppendUvarint(append(b, tagMap), uint64(len(x)))
		for _, k := range sortedMapKeys(x) {
			b = wire.AppendString(b, k)
			var err error
			if b, err = AppendCanonical(b, x[k]); err != nil {
				return b, err
			}
		}
		return b, nil
	case map[string]int64:
		b = binary.AppendUvarint(append(b, tagMap), uint64(len(x)))
		for _, k := range sortedMapKeys(x) {
			b, _ = wire.AppendValue(wire.AppendString(b, k), x[k])
		}
		return b, nil
	case map[string]float64:
		b = binary.AppendUvarint(append(b, tagMap), uint64(len(x)))
		for _, k := range sortedMapKeys(x) {
			b, _ = wire.AppendValue(wire.AppendString(b, k), x[k])
		}
		return b, nil
	}
	return wire.AppendValue(b, v)
}

func sortedMapKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
