package replicated

import (
	"encoding/binary"
	"fmt"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/wire"
)

// The building blocks of payloads, results and snapshots: counts and
// lengths are uvarints, strings and byte strings a uvarint length and the
// bytes, a value a uvarint length and its dso.AppendCanonical encoding
// (each value decoded on its own, at the top level, by wire.DecodeValue),
// a value list a uvarint count and the values.

func appendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue appends one value, length-prefixed.
func appendValue(b []byte, v any) ([]byte, error) {
	enc, err := dso.AppendCanonical(nil, v)
	if err != nil {
		return b, err
	}
	return appendBytes(b, enc), nil
}

// appendValues appends a count and the values.
func appendValues(b []byte, vs []any) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		var err error
		if b, err = appendValue(b, v); err != nil {
			return b, err
		}
	}
	return b, nil
}

// readValues reads a count and that many values (wire.Reader.Value).
func readValues(r *wire.Reader) []any {
	n := r.Count(2) // a length and a tag at least
	if r.Err() != nil || n == 0 {
		return nil
	}
	vs := make([]any, n)
	for i := range vs {
		vs[i] = r.Value()
	}
	return vs
}

// maxArgDepth is the deepest nesting (see valueDepth) of a call's
// argument: an object may keep an argument one level down in its state
// (List.add, Map.put) and return it up to two levels down in a result
// (TreeMap.range gives [key, value] pairs), which must still decode
// (wire.MaxDepth) from a snapshot or an answer.
const maxArgDepth = wire.MaxDepth - 2

// valueDepth is 0 for a scalar, bytes, floats or an empty list or map,
// and 1 + the depth of the deepest element of a list or map. It stops
// counting a little beyond maxArgDepth.
func valueDepth(v any) int { return depthFrom(v, 0) }

func depthFrom(v any, at int) int {
	if at > maxArgDepth {
		return 0
	}
	d := 0
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			d = max(d, 1+depthFrom(e, at+1))
		}
	case map[string]any:
		for _, e := range x {
			d = max(d, 1+depthFrom(e, at+1))
		}
	}
	return d
}

// checkDepth refuses arguments nested deeper than maxArgDepth.
func checkDepth(what string, vs []any) error {
	for i, v := range vs {
		if d := valueDepth(v); d > maxArgDepth {
			return fmt.Errorf("%w: %s %d nests lists and maps more than %d deep; a persistent object keeps values up to %d deep",
				dso.ErrBadArgs, what, i+1, maxArgDepth, maxArgDepth)
		}
	}
	return nil
}
