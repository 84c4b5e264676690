package lincheck

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Verdict is the outcome of a linearizability check.
type Verdict string

// The verdicts of Check.
const (
	// Ok means the history is linearizable.
	Ok Verdict = "ok"
	// Illegal means the history is not linearizable: a violation.
	Illegal Verdict = "illegal"
	// Unknown means the check timed out before reaching a verdict, or (for
	// CheckUniqueKV) that the history is not one it decides. It is never a
	// pass.
	Unknown Verdict = "unknown"
)

// DefaultTimeout is the timeout Check uses when it is given none.
const DefaultTimeout = time.Minute

// ErrIllegal is wrapped by Result.Err for an Illegal verdict.
var ErrIllegal = errors.New("lincheck: history is not linearizable (illegal)")

// ErrUnknown is wrapped by Result.Err for an Unknown verdict, and for a Result
// that has no verdict at all.
var ErrUnknown = errors.New("lincheck: linearizability unknown, the check did not finish (not a pass)")

// Result is the outcome of Check, with what Porcupine needs to draw it.
type Result struct {
	Verdict    Verdict       // Ok, Illegal or Unknown
	Operations int           // number of operations checked
	Partitions int           // number of partitions the model split them into
	Timeout    time.Duration // the timeout the check ran with
	Elapsed    time.Duration // how long the check took
	// Checker names the procedure that reached the verdict:
	// CheckerPorcupine or CheckerUniqueValues.
	Checker string

	// Info is Porcupine's record of the history and of the longest
	// linearizations it found, for WriteHTML.
	Info porcupine.LinearizationInfo
	// Model is the model the history was checked against.
	Model porcupine.Model

	violation   string // for Illegal: what was found in the first illegal partition
	unsupported error  // for Unknown from CheckUniqueKV: why it cannot decide the history
}

// Check checks whether ops is linearizable with respect to model, giving up
// with the verdict Unknown after timeout (DefaultTimeout if timeout <= 0).
// Partitions, as given by model.Partition, are checked in parallel.
func Check(model porcupine.Model, ops []porcupine.Operation, timeout time.Duration) Result {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	r := Result{
		Verdict:    Unknown,
		Operations: len(ops),
		Timeout:    timeout,
		Elapsed:    time.Since(start),
		Info:       info,
		Model:      model,
		Checker:    CheckerPorcupine,
	}
	switch res {
	case porcupine.Ok:
		r.Verdict = Ok
	case porcupine.Illegal:
		r.Verdict = Illegal
	}
	parts := [][]porcupine.Operation{ops}
	if model.Partition != nil {
		parts = model.Partition(ops)
	}
	r.Partitions = len(parts)
	if r.Verdict == Illegal {
		r.violation = describeViolation(model, parts, info.PartialLinearizations())
	}
	return r
}

// describeViolation names the first partition that no linearization covers
// completely, and the operations its longest partial linearization cannot be
// extended with.
func describeViolation(model porcupine.Model, parts [][]porcupine.Operation, partials [][][]int) string {
	if len(partials) != len(parts) {
		return ""
	}
	describeOp := model.DescribeOperation
	if describeOp == nil {
		describeOp = func(input, output any) string { return fmt.Sprintf("%v → %v", input, output) }
	}
	for p, part := range parts {
		var longest []int
		for _, lin := range partials[p] {
			if len(lin) > len(longest) {
				longest = lin
			}
		}
		if len(longest) == len(part) {
			continue
		}
		in := make([]bool, len(part))
		for _, id := range longest {
			in[id] = true
		}
		var rest []string
		for id, ok := range in {
			if !ok {
				op := part[id]
				rest = append(rest, fmt.Sprintf("%s (client %d, %d..%d)", describeOp(op.Input, op.Output), op.ClientId, op.Call, op.Return))
			}
		}
		const show = 3
		more := ""
		if len(rest) > show {
			more = fmt.Sprintf(" and %d more", len(rest)-show)
			rest = rest[:show]
		}
		return fmt.Sprintf("partition %d (%d operations): the longest partial linearization has %d, and cannot be extended with %s%s",
			p, len(part), len(longest), strings.Join(rest, ", "), more)
	}
	return ""
}

// Err returns nil if the verdict is Ok, and otherwise an error that wraps
// ErrIllegal or ErrUnknown and says what was checked.
func (r Result) Err() error {
	switch r.Verdict {
	case Ok:
		return nil
	case Illegal:
		msg := fmt.Sprintf("%d operations in %d partitions", r.Operations, r.Partitions)
		if r.violation != "" {
			msg += "; " + r.violation
		}
		return fmt.Errorf("%w: %s", ErrIllegal, msg)
	case Unknown:
		if r.unsupported != nil {
			return fmt.Errorf("%w: %w", ErrUnknown, r.unsupported)
		}
		return fmt.Errorf("%w: timed out after %v on %d operations in %d partitions", ErrUnknown, r.Timeout, r.Operations, r.Partitions)
	}
	return fmt.Errorf("%w: result has no verdict (%q)", ErrUnknown, string(r.Verdict))
}

// WriteHTML writes Porcupine's visualization of the checked history to path:
// an HTML page showing every operation, the linearization found for an Ok
// verdict, or the longest partial linearizations and the point where they
// fail for an Illegal one. For a Result of CheckUniqueKV it draws the
// failing key of an Illegal verdict, and returns an error for any other
// verdict, which Porcupine did not compute: use Check for a drawing of a
// linearizable history.
func (r Result) WriteHTML(path string) (err error) {
	if r.Model.Init == nil {
		return fmt.Errorf("lincheck: write visualization to %s: result has no model", path)
	}
	if r.Checker == CheckerUniqueValues && r.Verdict != Illegal {
		return fmt.Errorf("lincheck: write visualization to %s: the %s checker found the history %s without Porcupine, so there is nothing to draw; use Check for a drawing", path, r.Checker, r.Verdict)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("lincheck: write visualization: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("lincheck: write visualization to %s: %w", path, cerr)
		}
	}()
	if err := porcupine.Visualize(r.Model, r.Info, f); err != nil {
		return fmt.Errorf("lincheck: write visualization to %s: %w", path, err)
	}
	return nil
}
