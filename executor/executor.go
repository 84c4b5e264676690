package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Invocation is one attempt of a call of a registered function, as a back
// end receives it.
type Invocation struct {
	// ID identifies the invocation; every attempt has the same ID.
	ID string `json:"id"`
	// Function is the registered name.
	Function string `json:"fn"`
	// Args is the JSON encoding of the argument.
	Args json.RawMessage `json:"args"`
	// Attempt counts from 1.
	Attempt int `json:"attempt"`
	// Deadline of this attempt; zero for none.
	Deadline time.Time `json:"deadline,omitzero"`
	// DSO lists the endpoints of the DSO cluster, passed to the function.
	DSO []string `json:"dso,omitempty"`
}

// Backend runs single attempts of invocations. Invoke returns the JSON
// result or an *Error naming the worker; it honours inv.Deadline and
// ctx's cancellation.
type Backend interface {
	// Name is the back end's name ("local", "process").
	Name() string
	// Invoke runs one attempt.
	Invoke(ctx context.Context, inv *Invocation) (json.RawMessage, error)
	// Close stops the back end's workers.
	Close() error
}

// RetryPolicy says how often and how soon a failed invocation is retried.
type RetryPolicy struct {
	// Attempts is the number of attempts in all (default 1: no retry).
	Attempts int
	// Backoff is the wait before the second attempt (default 10ms); each
	// later wait is Multiplier times longer (default 2), at most
	// MaxBackoff (default 1s).
	Backoff    time.Duration
	MaxBackoff time.Duration
	Multiplier float64
}

func (p RetryPolicy) filled() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 1
	}
	if p.Backoff <= 0 {
		p.Backoff = 10 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = time.Second
	}
	if p.Multiplier < 1 {
		p.Multiplier = 2
	}
	return p
}

// Options configures an Executor.
type Options struct {
	// Backend is "local", "process", "http" or "lambda"; empty means
	// $BLOSSOM_EXECUTOR, and "local" if that is empty too.
	Backend string
	// Concurrency bounds the attempts running at once (local: default
	// unlimited; process: the pool size, default 16; http and lambda:
	// requests in flight, default 64).
	Concurrency int
	// Timeout is the deadline of each attempt (0: none but the caller's).
	Timeout time.Duration
	// Retry is the default retry policy.
	Retry RetryPolicy
	// DSO lists the endpoints of the DSO cluster that functions reach
	// through DSO(ctx).
	DSO []string
	// Command starts a worker process (process back end); default: this
	// executable, with BLOSSOM_EXECUTOR_WORKER=1 in its environment, whose
	// main calls MaybeServeWorker.
	Command []string
	// Env is added to the workers' environment (process back end).
	Env []string
	// Stderr receives the workers' stderr and stdout (default os.Stderr).
	Stderr io.Writer
	// KillGrace is how long after an attempt's deadline a worker process
	// that has not answered is killed, or an http request abandoned
	// (default 250ms).
	KillGrace time.Duration
	// Endpoint is the URL the http back end POSTs invocations to;
	// default $BLOSSOM_EXECUTOR_ENDPOINT.
	Endpoint string
	// Lambda configures the lambda back end (lambda.go).
	Lambda LambdaOptions
	// Custom, if set, is the back end to use; Backend is then ignored.
	Custom Backend
}

// Executor invokes registered functions on a back end.
type Executor struct {
	b    Backend
	opts Options
	pfx  string
	seq  atomic.Uint64
}

// EnvBackend is the environment variable that chooses the back end when
// Options.Backend is empty.
const EnvBackend = "BLOSSOM_EXECUTOR"

// New returns an executor on the back end chosen by opts.
func New(opts Options) (*Executor, error) {
	e := &Executor{opts: opts}
	var buf [6]byte
	rand.Read(buf[:])
	e.pfx = hex.EncodeToString(buf[:])
	if opts.Stderr == nil {
		e.opts.Stderr = os.Stderr
	}
	if opts.KillGrace <= 0 {
		e.opts.KillGrace = 250 * time.Millisecond
	}
	if opts.Custom != nil {
		e.b = opts.Custom
		return e, nil
	}
	name := opts.Backend
	if name == "" {
		name = os.Getenv(EnvBackend)
	}
	switch name {
	case "", "local":
		e.b = newLocal(opts.Concurrency, "local")
	case "process":
		b, err := newProcess(e.opts)
		if err != nil {
			return nil, err
		}
		e.b = b
	case "http":
		b, err := newHTTP(e.opts)
		if err != nil {
			return nil, err
		}
		e.b = b
	case "lambda":
		b, err := newLambda(e.opts)
		if err != nil {
			return nil, err
		}
		e.b = b
	default:
		return nil, fmt.Errorf("executor: unknown back end %q (local, process, http, lambda)", name)
	}
	return e, nil
}

// Backend returns the executor's back end.
func (e *Executor) Backend() Backend { return e.b }

// Close stops the back end's workers.
func (e *Executor) Close() error { return e.b.Close() }

type execKey struct{}

// WithExecutor returns a context whose Go, InvokeAll and InvokeIterative
// calls use e.
func WithExecutor(ctx context.Context, e *Executor) context.Context {
	return context.WithValue(ctx, execKey{}, e)
}

var (
	defaultOnce sync.Once
	defaultExec *Executor
	defaultErr  error
)

// FromContext returns the executor of ctx, or the default one: a local or
// process executor chosen by $BLOSSOM_EXECUTOR, made at first use.
func FromContext(ctx context.Context) (*Executor, error) {
	if e, ok := ctx.Value(execKey{}).(*Executor); ok {
		return e, nil
	}
	defaultOnce.Do(func() { defaultExec, defaultErr = New(Options{}) })
	return defaultExec, defaultErr
}

// CallOption changes one call of Go, InvokeAll or InvokeIterative.
type CallOption func(*callOpts)

type callOpts struct {
	key     string
	timeout time.Duration
	retry   *RetryPolicy
}

// WithKey sets the invocation id (the idempotency key): calls that share it
// share their OnceCounter keys. InvokeAll and InvokeIterative append "/i"
// for the i-th invocation.
func WithKey(key string) CallOption { return func(o *callOpts) { o.key = key } }

// WithTimeout sets the deadline of each attempt of the call.
func WithTimeout(d time.Duration) CallOption { return func(o *callOpts) { o.timeout = d } }

// WithRetry sets the retry policy of the call.
func WithRetry(p RetryPolicy) CallOption { return func(o *callOpts) { o.retry = &p } }

func (e *Executor) newID() string {
	return e.pfx + "-" + strconv.FormatUint(e.seq.Add(1), 10)
}

// invoke runs an invocation with retries and returns the JSON result.
func (e *Executor) invoke(ctx context.Context, fn, id string, args json.RawMessage, o callOpts) (json.RawMessage, error) {
	pol := e.opts.Retry
	if o.retry != nil {
		pol = *o.retry
	}
	pol = pol.filled()
	timeout := e.opts.Timeout
	if o.timeout > 0 {
		timeout = o.timeout
	}
	wait := pol.Backoff
	for attempt := 1; ; attempt++ {
		inv := &Invocation{ID: id, Function: fn, Args: args, Attempt: attempt, DSO: e.opts.DSO}
		if timeout > 0 {
			inv.Deadline = time.Now().Add(timeout)
		}
		res, err := e.b.Invoke(ctx, inv)
		if err == nil {
			return res, nil
		}
		var ee *Error
		if !errors.As(err, &ee) {
			ee = &Error{Function: fn, Invocation: id, Attempt: attempt, Kind: KindFailed, Msg: err.Error(), Err: err}
		}
		if ctx.Err() != nil && ee.Kind != KindDeadline {
			ee.Kind = KindCanceled
		}
		if ee.Permanent || ctx.Err() != nil || attempt >= pol.Attempts {
			return nil, ee
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ee
		case <-t.C:
		}
		wait = min(time.Duration(float64(wait)*pol.Multiplier), pol.MaxBackoff)
	}
}

// Future is the result of a cloud thread started by Go.
type Future[Out any] struct {
	id   string
	done chan struct{}
	out  Out
	err  error
}

// ID returns the invocation id.
func (f *Future[Out]) ID() string { return f.id }

// Done is closed when the invocation has finished.
func (f *Future[Out]) Done() <-chan struct{} { return f.done }

// Get waits for the invocation and returns its result or its last *Error.
func (f *Future[Out]) Get() (Out, error) {
	<-f.done
	return f.out, f.err
}

// Join waits for the invocation and returns its error.
func (f *Future[Out]) Join() error {
	<-f.done
	return f.err
}

// Go starts fn(in) on the executor of ctx (see FromContext) and returns
// its future: a cloud thread.
func Go[In, Out any](ctx context.Context, fn Func[In, Out], in In, opts ...CallOption) *Future[Out] {
	var o callOpts
	for _, opt := range opts {
		opt(&o)
	}
	return start(ctx, fn, in, o)
}

func start[In, Out any](ctx context.Context, fn Func[In, Out], in In, o callOpts) *Future[Out] {
	f := &Future[Out]{done: make(chan struct{})}
	e, err := FromContext(ctx)
	if err != nil {
		f.err = err
		close(f.done)
		return f
	}
	f.id = o.key
	if f.id == "" {
		f.id = e.newID()
	}
	args, err := json.Marshal(in)
	if err != nil {
		f.err = &Error{Function: fn.name, Invocation: f.id, Kind: KindBadArgs, Msg: "encode arguments: " + err.Error(), Permanent: true, Err: err}
		close(f.done)
		return f
	}
	go func() {
		defer close(f.done)
		res, err := e.invoke(ctx, fn.name, f.id, args, o)
		if err != nil {
			f.err = err
			return
		}
		if err := json.Unmarshal(res, &f.out); err != nil {
			f.err = &Error{Function: fn.name, Invocation: f.id, Kind: KindBadArgs, Msg: "decode result: " + err.Error(), Err: err}
		}
	}()
	return f
}

// InvokeAll runs fn once per element of ins, all at once (within the
// back end's concurrency limit), and returns the results in order. The
// error joins the errors of the invocations that failed; their results
// are zero.
func InvokeAll[In, Out any](ctx context.Context, fn Func[In, Out], ins []In, opts ...CallOption) ([]Out, error) {
	var o callOpts
	for _, opt := range opts {
		opt(&o)
	}
	fs := make([]*Future[Out], len(ins))
	for i, in := range ins {
		oi := o
		if o.key != "" {
			oi.key = o.key + "/" + strconv.Itoa(i)
		}
		fs[i] = start(ctx, fn, in, oi)
	}
	out := make([]Out, len(ins))
	var errs []error
	for i, f := range fs {
		v, err := f.Get()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[i] = v
	}
	return out, errors.Join(errs...)
}

// Chunk is the argument of one worker of InvokeIterative: the iterations
// [From, To) of the loop, the worker's index among Workers, and the
// argument shared by all.
type Chunk[A any] struct {
	From, To int
	Worker   int
	Workers  int
	Arg      A
}

// Split divides [from, to) into at most workers contiguous chunks whose
// sizes differ by at most one.
func Split[A any](from, to, workers int, arg A) []Chunk[A] {
	n := to - from
	if n <= 0 {
		return nil
	}
	workers = max(1, min(workers, n))
	out := make([]Chunk[A], workers)
	lo := from
	for w := range workers {
		size := n / workers
		if w < n%workers {
			size++
		}
		out[w] = Chunk[A]{From: lo, To: lo + size, Worker: w, Workers: workers, Arg: arg}
		lo += size
	}
	return out
}

// InvokeIterative is a parallel for: it splits the iterations [from, to)
// into workers contiguous chunks (Split) and runs fn on each at once, and
// returns the workers' results in order.
func InvokeIterative[A, Out any](ctx context.Context, fn Func[Chunk[A], Out], from, to, workers int, arg A, opts ...CallOption) ([]Out, error) {
	return InvokeAll(ctx, fn, Split(from, to, workers, arg), opts...)
}
