package lincheck

import (
	"fmt"
	"strconv"

	"github.com/anishathalye/porcupine"
)

// CASOp is the kind of a CASModel operation.
type CASOp uint8

// The operations of a compare-and-set register.
const (
	// CASRead returns the register's value.
	CASRead CASOp = iota
	// CASWrite sets the register to CASInput.Value.
	CASWrite
	// CASCompareAndSet sets the register to CASInput.New if it holds
	// CASInput.Old, and reports whether it did.
	CASCompareAndSet
)

// String returns the operation's name as shown in the visualization.
func (op CASOp) String() string {
	switch op {
	case CASRead:
		return "read"
	case CASWrite:
		return "write"
	case CASCompareAndSet:
		return "cas"
	}
	return "CASOp(" + strconv.Itoa(int(op)) + ")"
}

// CASInput is the Input of a CASModel operation on the register called Key.
type CASInput struct {
	Key   string
	Op    CASOp
	Value int64 // the value a CASWrite writes
	Old   int64 // the value a CASCompareAndSet expects
	New   int64 // the value a CASCompareAndSet installs
}

// ReadOnly reports whether the operation is a CASRead.
func (in CASInput) ReadOnly() bool { return in.Op == CASRead }

// CASOutput is the Output of a CASModel operation. A write's output is
// ignored (nil is fine); a read's or a compare-and-set's output must be a
// CASOutput or UnknownOutcome{}.
type CASOutput struct {
	Value   int64 // the value a CASRead returned
	Swapped bool  // whether a CASCompareAndSet installed its New value
	Unknown bool  // the outcome is unknown: the model accepts any result
}

// OutcomeUnknown reports whether Unknown is set; see IsUnknownOutcome.
func (o CASOutput) OutcomeUnknown() bool { return o.Unknown }

// CASModel is the sequential specification of a set of int64 compare-and-set
// registers (Java's AtomicLong), partitioned by key. Every register starts
// at 0. Inputs are CASInput and outputs CASOutput; an operation whose outcome
// is unknown (see IsUnknownOutcome) accepts any result, and a write or
// compare-and-set of unknown outcome still takes effect, as the sequential
// specification says, where it is linearized. The per-key state is the
// register's int64 value.
var CASModel = porcupine.Model{
	Partition: PartitionBy(func(input any) string { return casInput(input).Key }),
	Init:      func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in, v := casInput(input), state.(int64)
		unknown := IsUnknownOutcome(output)
		switch in.Op {
		case CASWrite:
			return true, in.Value
		case CASCompareAndSet:
			swapped := v == in.Old
			next := v
			if swapped {
				next = in.New
			}
			if unknown {
				return true, next
			}
			return casOutput(output).Swapped == swapped, next
		default: // CASRead, checked by casInput
			return unknown || casOutput(output).Value == v, v
		}
	},
	Equal: func(a, b any) bool { return a.(int64) == b.(int64) },
	Hash:  func(state any) uint64 { return uint64(state.(int64)) },
	DescribeOperation: func(input, output any) string {
		in := casInput(input)
		switch in.Op {
		case CASWrite:
			return describe(fmt.Sprintf("write(%s, %d)", in.Key, in.Value), output, nil)
		case CASCompareAndSet:
			return describe(fmt.Sprintf("cas(%s, %d, %d)", in.Key, in.Old, in.New), output, func() string {
				return strconv.FormatBool(casOutput(output).Swapped)
			})
		default:
			return describe(fmt.Sprintf("read(%s)", in.Key), output, func() string {
				return strconv.FormatInt(casOutput(output).Value, 10)
			})
		}
	},
	DescribeState: func(state any) string { return strconv.FormatInt(state.(int64), 10) },
}

func casInput(input any) CASInput {
	in, ok := input.(CASInput)
	if !ok {
		badType("CASModel", "input", input, "CASInput")
	}
	if in.Op > CASCompareAndSet {
		panic(fmt.Sprintf("lincheck: CASModel: input has unknown operation %v", in.Op))
	}
	return in
}

func casOutput(output any) CASOutput {
	out, ok := output.(CASOutput)
	if !ok {
		badType("CASModel", "output", output, "CASOutput or UnknownOutcome")
	}
	return out
}
