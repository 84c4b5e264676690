package lincheck

import (
	"fmt"
	"strconv"

	"github.com/anishathalye/porcupine"
)

// KVInput is the Input of a KVModel operation: a put of Value to Key when
// Put is set, a get of Key otherwise.
type KVInput struct {
	Key   string
	Put   bool
	Value uint64 // the value written by a put; ignored by a get
}

// ReadOnly reports whether the operation is a get.
func (in KVInput) ReadOnly() bool { return !in.Put }

// KVOutput is the Output of a KVModel operation. A put's output is ignored
// (nil is fine); a get's output must be a KVOutput or UnknownOutcome{}.
type KVOutput struct {
	Value   uint64 // the value a get returned
	Unknown bool   // the outcome is unknown: the model accepts any result
}

// OutcomeUnknown reports whether Unknown is set; see IsUnknownOutcome.
func (o KVOutput) OutcomeUnknown() bool { return o.Unknown }

// KVModel is the sequential specification of a key-value map: one register
// per key, partitioned by key. A get returns the value of the latest put to
// its key, or 0 if there was none. Inputs are KVInput and outputs KVOutput;
// an operation whose outcome is unknown (see IsUnknownOutcome) accepts any
// result, and a put of unknown outcome still writes its value where it is
// linearized. The per-key state is the register's uint64 value.
var KVModel = porcupine.Model{
	Partition: PartitionBy(func(input any) string { return kvInput(input).Key }),
	Init:      func() any { return uint64(0) },
	Step: func(state, input, output any) (bool, any) {
		in, v := kvInput(input), state.(uint64)
		switch {
		case in.Put:
			return true, in.Value
		case IsUnknownOutcome(output):
			return true, v
		default:
			return kvOutput(output).Value == v, v
		}
	},
	Equal: func(a, b any) bool { return a.(uint64) == b.(uint64) },
	Hash:  func(state any) uint64 { return state.(uint64) },
	DescribeOperation: func(input, output any) string {
		in := kvInput(input)
		if in.Put {
			return describe(fmt.Sprintf("put(%s, %d)", in.Key, in.Value), output, nil)
		}
		return describe(fmt.Sprintf("get(%s)", in.Key), output, func() string {
			return strconv.FormatUint(kvOutput(output).Value, 10)
		})
	},
	DescribeState: func(state any) string { return strconv.FormatUint(state.(uint64), 10) },
}

func kvInput(input any) KVInput {
	in, ok := input.(KVInput)
	if !ok {
		badType("KVModel", "input", input, "KVInput")
	}
	return in
}

func kvOutput(output any) KVOutput {
	out, ok := output.(KVOutput)
	if !ok {
		badType("KVModel", "output of a get", output, "KVOutput or UnknownOutcome")
	}
	return out
}
