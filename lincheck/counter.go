package lincheck

import (
	"fmt"
	"strconv"

	"github.com/anishathalye/porcupine"
)

// CounterInput is the Input of a CounterModel operation on the counter called
// Name ("" for a history with a single counter): add Delta and return the new
// value when Add is set, read the value otherwise.
type CounterInput struct {
	Name  string
	Add   bool
	Delta int64 // the amount an add adds, possibly negative; ignored by a get
}

// ReadOnly reports whether the operation is a get.
func (in CounterInput) ReadOnly() bool { return !in.Add }

// CounterOutput is the Output of a CounterModel operation; it must be a
// CounterOutput or UnknownOutcome{}.
type CounterOutput struct {
	Value   int64 // the value after an add, or the value a get read
	Unknown bool  // the outcome is unknown: the model accepts any result
}

// OutcomeUnknown reports whether Unknown is set; see IsUnknownOutcome.
func (o CounterOutput) OutcomeUnknown() bool { return o.Unknown }

// CounterModel is the sequential specification of a set of named int64
// counters, partitioned by name. Every counter starts at 0; an add adds its
// Delta (wrapping around like Java's long) and returns the new value, a get
// returns the value. Inputs are CounterInput and outputs CounterOutput; an
// operation whose outcome is unknown (see IsUnknownOutcome) accepts any
// result, and an add of unknown outcome still adds its Delta where it is
// linearized. The per-name state is the counter's int64 value.
var CounterModel = porcupine.Model{
	Partition: PartitionBy(func(input any) string { return counterInput(input).Name }),
	Init:      func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in, v := counterInput(input), state.(int64)
		if in.Add {
			v += in.Delta
		}
		if IsUnknownOutcome(output) {
			return true, v
		}
		return counterOutput(output).Value == v, v
	},
	Equal: func(a, b any) bool { return a.(int64) == b.(int64) },
	Hash:  func(state any) uint64 { return uint64(state.(int64)) },
	DescribeOperation: func(input, output any) string {
		in := counterInput(input)
		call := fmt.Sprintf("get(%s)", in.Name)
		if in.Add {
			call = fmt.Sprintf("add(%s, %d)", in.Name, in.Delta)
		}
		return describe(call, output, func() string {
			return strconv.FormatInt(counterOutput(output).Value, 10)
		})
	},
	DescribeState: func(state any) string { return strconv.FormatInt(state.(int64), 10) },
}

func counterInput(input any) CounterInput {
	in, ok := input.(CounterInput)
	if !ok {
		badType("CounterModel", "input", input, "CounterInput")
	}
	return in
}

func counterOutput(output any) CounterOutput {
	out, ok := output.(CounterOutput)
	if !ok {
		badType("CounterModel", "output", output, "CounterOutput or UnknownOutcome")
	}
	return out
}
