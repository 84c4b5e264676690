package lincheck

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// UnknownOutcome is the Output that Recorder.Operations gives an operation
// whose outcome is unknown: one completed with Recorder.Info, or still
// pending. A model must accept any result for such an operation, applying
// its effect as if it succeeded at the point where it is linearized.
type UnknownOutcome struct{}

// String returns "?", the way an unknown outcome is shown.
func (UnknownOutcome) String() string { return "?" }

// unknownReporter is implemented by output types that carry their own
// unknown-outcome flag, such as KVOutput.
type unknownReporter interface {
	OutcomeUnknown() bool
}

// IsUnknownOutcome reports whether output marks an operation whose outcome is
// unknown: it is UnknownOutcome{}, or it has an OutcomeUnknown method that
// returns true (KVOutput, CounterOutput and CASOutput with Unknown set).
// Every model must accept any result for such an output.
func IsUnknownOutcome(output any) bool {
	switch o := output.(type) {
	case UnknownOutcome:
		return true
	case unknownReporter:
		return o.OutcomeUnknown()
	}
	return false
}

// ReadOnly is implemented by inputs that may describe operations without
// effect on the state, such as a get. Recorder.Operations leaves out an
// operation of unknown outcome whose input reports ReadOnly() == true: it
// could always be linearized last with any result, so it constrains nothing.
type ReadOnly interface {
	ReadOnly() bool
}

// PartitionBy returns a porcupine.Model Partition function that groups a
// history by key(input), keeping the order of operations within a group and
// ordering the groups by first appearance. A history is linearizable if and
// only if each group is, provided operations on different keys are
// independent.
func PartitionBy(key func(input any) string) func(history []porcupine.Operation) [][]porcupine.Operation {
	return func(history []porcupine.Operation) [][]porcupine.Operation {
		index := make(map[string]int)
		var parts [][]porcupine.Operation
		for _, op := range history {
			k := key(op.Input)
			i, ok := index[k]
			if !ok {
				i = len(parts)
				index[k] = i
				parts = append(parts, nil)
			}
			parts[i] = append(parts[i], op)
		}
		return parts
	}
}

// describe formats an operation call with its result for the visualization:
// "call" when there is no result to show, "call → result" otherwise, and
// "call → ?" when the outcome is unknown.
func describe(call string, output any, result func() string) string {
	if IsUnknownOutcome(output) {
		return call + " → ?"
	}
	if result == nil {
		return call
	}
	return call + " → " + result()
}

// badType panics with a message naming the model and the unexpected value;
// a history with values of the wrong type is a bug in the harness, not a
// linearizability violation.
func badType(model, what string, got any, want string) {
	panic(fmt.Sprintf("lincheck: %s: %s has type %T, want %s", model, what, got, want))
}
