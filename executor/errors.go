package executor

import (
	"context"
	"errors"
	"fmt"
)

// Kind classifies the failure of an invocation.
type Kind int

// The kinds of failure. An *Error matches the sentinel of its kind with
// errors.Is.
const (
	// KindFailed: the function returned an error.
	KindFailed Kind = iota + 1
	// KindPanic: the function panicked.
	KindPanic
	// KindDeadline: the attempt's deadline passed before it returned.
	KindDeadline
	// KindCrashed: the worker running the attempt died or broke its protocol.
	KindCrashed
	// KindUnknownFunction: no function of that name is registered in the worker.
	KindUnknownFunction
	// KindBadArgs: the arguments or the result could not be encoded or decoded.
	KindBadArgs
	// KindCanceled: the caller's context was canceled.
	KindCanceled
)

// Sentinels matched by errors.Is on an *Error of the corresponding Kind.
var (
	ErrFailed          = errors.New("function failed")
	ErrPanic           = errors.New("function panicked")
	ErrDeadline        = errors.New("invocation deadline exceeded")
	ErrCrashed         = errors.New("worker crashed")
	ErrUnknownFunction = errors.New("unknown function")
	ErrBadArgs         = errors.New("bad arguments or result")
	ErrCanceled        = errors.New("invocation canceled")
)

func (k Kind) sentinel() error {
	switch k {
	case KindFailed:
		return ErrFailed
	case KindPanic:
		return ErrPanic
	case KindDeadline:
		return ErrDeadline
	case KindCrashed:
		return ErrCrashed
	case KindUnknownFunction:
		return ErrUnknownFunction
	case KindBadArgs:
		return ErrBadArgs
	case KindCanceled:
		return ErrCanceled
	}
	return ErrFailed
}

// String returns the kind's name.
func (k Kind) String() string { return k.sentinel().Error() }

// Error is the failure of one attempt of an invocation.
type Error struct {
	// Function is the registered name of the function.
	Function string
	// Invocation is the invocation id, shared by all its attempts.
	Invocation string
	// Attempt counts from 1.
	Attempt int
	// Worker names where the attempt ran ("local-7", "process-2[pid 4242]").
	Worker string
	// Kind classifies the failure.
	Kind Kind
	// Msg is the error's or the panic's message.
	Msg string
	// Stack is the stack of a panic, when known.
	Stack string
	// Permanent failures are not retried.
	Permanent bool
	// Err is the original error when the attempt ran in this process.
	Err error
}

// Error formats the failure with the function, invocation, attempt and worker.
func (e *Error) Error() string {
	w := e.Worker
	if w == "" {
		w = "none"
	}
	return fmt.Sprintf("executor: %s (invocation %s, attempt %d, worker %s): %s: %s",
		e.Function, e.Invocation, e.Attempt, w, e.Kind, e.Msg)
}

// Unwrap returns the kind's sentinel, the original error if any, and
// context.DeadlineExceeded for a deadline.
func (e *Error) Unwrap() []error {
	out := []error{e.Kind.sentinel()}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	if e.Kind == KindDeadline {
		out = append(out, context.DeadlineExceeded)
	}
	return out
}

// permanent marks an error that retries cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that the executor does not retry the invocation
// that returned it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked by Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}
