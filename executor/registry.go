package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"sync"
)

// handler runs a registered function on JSON arguments.
type handler func(ctx context.Context, args json.RawMessage) (json.RawMessage, error)

var registry struct {
	sync.RWMutex
	m map[string]handler
}

// Func is a registered function from In to Out, invoked by name. In and Out
// must be JSON-encodable.
type Func[In, Out any] struct{ name string }

// Name returns the name the function was registered under.
func (f Func[In, Out]) Name() string { return f.name }

// Register registers fn under name and returns its typed handle. Call it
// from a package-level variable or an init function, so that every
// process of the binary (the driver and its workers) has the same
// functions. It panics if name is empty or already taken.
func Register[In, Out any](name string, fn func(ctx context.Context, in In) (Out, error)) Func[In, Out] {
	if name == "" || fn == nil {
		panic("executor: Register needs a name and a function")
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.m == nil {
		registry.m = map[string]handler{}
	}
	if _, dup := registry.m[name]; dup {
		panic(fmt.Sprintf("executor: function %q registered twice", name))
	}
	registry.m[name] = func(ctx context.Context, args json.RawMessage) (json.RawMessage, error) {
		var in In
		if err := json.Unmarshal(args, &in); err != nil {
			return nil, &Error{Kind: KindBadArgs, Msg: "decode arguments: " + err.Error(), Permanent: true, Err: err}
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, &Error{Kind: KindBadArgs, Msg: "encode result: " + err.Error(), Permanent: true, Err: err}
		}
		return b, nil
	}
	return Func[In, Out]{name: name}
}

// Registered lists the names of the registered functions, sorted.
func Registered() []string {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]string, 0, len(registry.m))
	for n := range registry.m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// run executes one attempt of inv in this process, on worker, with ctx
// carrying the invocation's Info. It converts errors and panics to *Error.
func run(ctx context.Context, inv *Invocation, worker string) (res json.RawMessage, err error) {
	fail := func(k Kind, msg string, perm bool, cause error) *Error {
		return &Error{Function: inv.Function, Invocation: inv.ID, Attempt: inv.Attempt, Worker: worker,
			Kind: k, Msg: msg, Permanent: perm, Err: cause}
	}
	registry.RLock()
	h := registry.m[inv.Function]
	registry.RUnlock()
	if h == nil {
		return nil, fail(KindUnknownFunction, fmt.Sprintf("no function %q in this worker", inv.Function), true, nil)
	}
	if !inv.Deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, inv.Deadline)
		defer cancel()
	}
	ctx = context.WithValue(ctx, infoKey{}, Info{ID: inv.ID, Function: inv.Function, Attempt: inv.Attempt, Worker: worker, DSO: inv.DSO})
	defer func() {
		if r := recover(); r != nil {
			e := fail(KindPanic, fmt.Sprint(r), false, nil)
			e.Stack = string(debug.Stack())
			res, err = nil, e
		}
	}()
	res, err = h(ctx, inv.Args)
	if err != nil {
		var ee *Error
		if errors.As(err, &ee) && ee.Function == "" { // from the handler's codec
			ee.Function, ee.Invocation, ee.Attempt, ee.Worker = inv.Function, inv.ID, inv.Attempt, worker
			return nil, ee
		}
		k := KindFailed
		if ctx.Err() == context.DeadlineExceeded && errors.Is(err, context.DeadlineExceeded) {
			k = KindDeadline
		}
		return nil, fail(k, err.Error(), IsPermanent(err), err)
	}
	return res, nil
}

// Info describes the invocation a function runs in; every attempt of one
// invocation has the same ID.
type Info struct {
	// ID is the invocation id (Options.Key or generated), the same for
	// every attempt.
	ID string
	// Function is the registered name.
	Function string
	// Attempt counts from 1.
	Attempt int
	// Worker names where this attempt runs.
	Worker string
	// DSO lists the endpoints of the DSO cluster the executor passes on.
	DSO []string
}

type infoKey struct{}

// InvocationOf returns the Info of the invocation ctx belongs to.
func InvocationOf(ctx context.Context) (Info, bool) {
	i, ok := ctx.Value(infoKey{}).(Info)
	return i, ok
}

// Key returns an idempotency key for the side effect named name of the
// current invocation: the invocation id and name. It is the same in every
// attempt, so a DSO operation keyed by it (OnceCounter.Add) applies once
// however often the invocation is retried. Outside an invocation it
// returns name.
func Key(ctx context.Context, name string) string {
	if i, ok := InvocationOf(ctx); ok {
		return i.ID + "/" + name
	}
	return name
}
