package executor

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// EnvWorker is set in the environment of the worker processes the process
// back end starts; MaybeServeWorker serves invocations when it is set.
const EnvWorker = "BLOSSOM_EXECUTOR_WORKER"

// request is one line a worker reads.
type request struct {
	Invocation
	Worker string `json:"worker"`
}

// wireError is an *Error on the wire.
type wireError struct {
	Kind      Kind   `json:"kind"`
	Msg       string `json:"msg"`
	Stack     string `json:"stack,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
}

// response is one line a worker writes.
type response struct {
	ID     string          `json:"id"`
	Worker string          `json:"worker,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *wireError      `json:"error,omitempty"`
}

// MaybeServeWorker turns this process into a worker of the process back
// end when EnvWorker is set: it serves invocations on stdin and stdout
// until stdin closes, then exits. When EnvLambdaRuntimeAPI is set (the
// process was started by Lambda or its emulator) it serves as a Lambda
// handler instead (ServeLambda). Call it first thing in main of every
// binary that starts a process or lambda executor (the default worker
// command is the binary itself); otherwise it returns at once.
func MaybeServeWorker() {
	if os.Getenv(EnvLambdaRuntimeAPI) != "" {
		ServeLambda()
	}
	if os.Getenv(EnvWorker) == "" {
		return
	}
	if err := ServeStdio(); err != nil {
		fmt.Fprintln(os.Stderr, "executor worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// ServeStdio serves invocations on stdin and stdout until stdin closes. It
// redirects os.Stdout to os.Stderr first, so that what functions print
// does not mix with the answers.
func ServeStdio() error {
	out := os.Stdout
	os.Stdout = os.Stderr
	return ServeWorker(os.Stdin, out)
}

// ServeWorker reads invocations as JSON lines from r, runs them one at a
// time, and writes one JSON line per answer to w, until r ends.
func ServeWorker(r io.Reader, w io.Writer) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	enc := json.NewEncoder(w)
	// The greeting tells the pool that this process serves invocations.
	if err := enc.Encode(&response{Worker: greeting}); err != nil {
		return fmt.Errorf("write greeting: %w", err)
	}
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("read invocation: %w", err)
		}
		res, err := run(context.Background(), &req.Invocation, req.Worker)
		resp := toResponse(req.ID, req.Worker, res, err)
		if err := enc.Encode(&resp); err != nil {
			return fmt.Errorf("write answer: %w", err)
		}
	}
}

// toResponse encodes the outcome of an attempt.
func toResponse(id, worker string, res json.RawMessage, err error) response {
	resp := response{ID: id, Worker: worker, Result: res}
	if err != nil {
		ee, ok := err.(*Error)
		if !ok {
			ee = &Error{Kind: KindFailed, Msg: err.Error()}
		}
		resp.Error = &wireError{Kind: ee.Kind, Msg: ee.Msg, Stack: ee.Stack, Permanent: ee.Permanent}
		if ee.Worker != "" {
			resp.Worker = ee.Worker
		}
	}
	return resp
}

// greeting is the Worker field of the answer a worker writes first.
const greeting = "ready"

// startTimeout bounds the wait for a new worker's greeting.
const startTimeout = 30 * time.Second

// process runs attempts in a pool of worker processes.
type process struct {
	opts Options
	sem  chan struct{}

	mu     sync.Mutex
	idle   []*proc
	all    map[*proc]struct{}
	next   int
	closed bool
}

// proc is one worker process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	in     io.WriteCloser
	enc    *json.Encoder
	dec    *json.Decoder
	tail   *tail
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

func newProcess(opts Options) (*process, error) {
	if len(opts.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("executor: process back end: %w", err)
		}
		opts.Command = []string{exe}
	}
	if os.Getenv(EnvWorker) != "" {
		return nil, fmt.Errorf("executor: this process is a worker (%s is set) but did not serve: its main must call executor.MaybeServeWorker first", EnvWorker)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	return &process{opts: opts, sem: make(chan struct{}, opts.Concurrency), all: map[*proc]struct{}{}}, nil
}

func (b *process) Name() string { return "process" }

// get returns an idle worker or starts one.
func (b *process) get() (*proc, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, fmt.Errorf("executor closed")
	}
	if n := len(b.idle); n > 0 {
		p := b.idle[n-1]
		b.idle = b.idle[:n-1]
		b.mu.Unlock()
		return p, nil
	}
	b.next++
	id := b.next
	b.mu.Unlock()

	cmd := exec.Command(b.opts.Command[0], b.opts.Command[1:]...)
	cmd.Env = append(append(os.Environ(), EnvWorker+"=1"), b.opts.Env...)
	t := &tail{}
	cmd.Stderr = io.MultiWriter(b.opts.Stderr, t)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// Our own pipe rather than StdoutPipe: Wait may run while the last
	// answer is still unread.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start worker %q: %w", b.opts.Command[0], err)
	}
	w.Close()
	p := &proc{
		name:   fmt.Sprintf("process-%d[pid %d]", id, cmd.Process.Pid),
		cmd:    cmd,
		in:     in,
		enc:    json.NewEncoder(in),
		dec:    json.NewDecoder(bufio.NewReaderSize(r, 64<<10)),
		tail:   t,
		exited: make(chan struct{}),
	}
	go func() {
		p.err = cmd.Wait()
		r.Close()
		close(p.exited)
	}()
	hello := make(chan error, 1)
	go func() {
		var a response
		err := p.dec.Decode(&a)
		if err == nil && (a.ID != "" || a.Worker != greeting) {
			err = fmt.Errorf("first line is not the greeting")
		}
		hello <- err
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case err = <-hello:
	case <-timer.C:
		err = fmt.Errorf("no greeting in %v", startTimeout)
	}
	if err != nil {
		p.cmd.Process.Kill()
		<-p.exited
		return nil, fmt.Errorf("worker %s did not start serving (%v; does its main call executor.MaybeServeWorker?)%s", p.name, err, p.tail.suffix())
	}
	b.mu.Lock()
	b.all[p] = struct{}{}
	b.mu.Unlock()
	return p, nil
}

func (b *process) put(p *proc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		p.in.Close()
		return
	}
	b.idle = append(b.idle, p)
}

// discard kills p; the next get starts a replacement.
func (b *process) discard(p *proc) {
	b.mu.Lock()
	delete(b.all, p)
	b.mu.Unlock()
	p.cmd.Process.Kill()
	<-p.exited
}

type answer struct {
	resp response
	err  error
}

// Invoke sends the attempt to an idle worker and waits for its answer. A
// worker that dies, breaks the protocol, or does not answer by the
// deadline plus Options.KillGrace is killed and its attempt fails with
// ErrCrashed or ErrDeadline.
func (b *process) Invoke(ctx context.Context, inv *Invocation) (json.RawMessage, error) {
	fail := func(worker string, k Kind, msg string) *Error {
		return &Error{Function: inv.Function, Invocation: inv.ID, Attempt: inv.Attempt, Worker: worker, Kind: k, Msg: msg}
	}
	select {
	case b.sem <- struct{}{}:
		defer func() { <-b.sem }()
	case <-ctx.Done():
		return nil, fail("", KindCanceled, "waiting for a worker: "+ctx.Err().Error())
	}
	p, err := b.get()
	if err != nil {
		return nil, fail("", KindCrashed, err.Error())
	}
	p.tail.reset()
	if err := p.enc.Encode(&request{Invocation: *inv, Worker: p.name}); err != nil {
		b.discard(p)
		return nil, fail(p.name, KindCrashed, "send invocation: "+err.Error()+p.tail.suffix())
	}
	ch := make(chan answer, 1)
	go func() {
		var a answer
		a.err = p.dec.Decode(&a.resp)
		ch <- a
	}()
	var timeout <-chan time.Time
	if !inv.Deadline.IsZero() {
		t := time.NewTimer(time.Until(inv.Deadline) + b.opts.KillGrace)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case a := <-ch:
		if a.err != nil {
			b.discard(p)
			status := "exited"
			if p.err != nil {
				status = p.err.Error()
			}
			return nil, fail(p.name, KindCrashed, fmt.Sprintf("worker died (%s) while running the invocation: %v%s", status, a.err, p.tail.suffix()))
		}
		if a.resp.ID != inv.ID {
			b.discard(p)
			return nil, fail(p.name, KindCrashed, fmt.Sprintf("protocol: answer for %q to invocation %q", a.resp.ID, inv.ID))
		}
		b.put(p)
		if we := a.resp.Error; we != nil {
			e := fail(p.name, we.Kind, we.Msg)
			e.Stack, e.Permanent = we.Stack, we.Permanent
			return nil, e
		}
		return a.resp.Result, nil
	case <-timeout:
		b.discard(p)
		return nil, fail(p.name, KindDeadline, "no answer by the deadline; worker killed")
	case <-ctx.Done():
		b.discard(p)
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fail(p.name, KindDeadline, "caller's deadline; worker killed")
		}
		return nil, fail(p.name, KindCanceled, ctx.Err().Error()+"; worker killed")
	}
}

// Close ends every worker: idle ones see their stdin close and exit, busy
// ones are killed.
func (b *process) Close() error {
	b.mu.Lock()
	b.closed = true
	all := make([]*proc, 0, len(b.all))
	for p := range b.all {
		all = append(all, p)
	}
	b.idle = nil
	b.mu.Unlock()
	for _, p := range all {
		p.in.Close()
	}
	for _, p := range all {
		select {
		case <-p.exited:
		case <-time.After(2 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	return nil
}

// tail keeps the last bytes a worker wrote to stderr, for crash reports.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 2048

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailMax {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tail) reset() {
	t.mu.Lock()
	t.buf = t.buf[:0]
	t.mu.Unlock()
}

// suffix is "; stderr: ..." with the tail, or "".
func (t *tail) suffix() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.buf))
	if s == "" {
		return ""
	}
	return "; stderr: " + s
}
