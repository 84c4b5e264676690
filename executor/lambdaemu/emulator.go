// Package lambdaemu is a local AWS Lambda emulator for one function, for
// tests and for trying the executor's lambda back end on one machine
// (`blossom lambda-emulator`). It serves two APIs, so that the real code
// paths of both sides run end to end:
//
//   - Lambda's Invoke API to callers, on the REST path the AWS SDK calls
//     (POST /2015-03-31/functions/{name}/invocations), reached through
//     the SDK's custom endpoint (BaseEndpoint; see AWSConfig). Request
//     signatures are not checked.
//   - Lambda's Runtime API (/2018-06-01/runtime/invocation/next, .../{id}/response,
//     .../{id}/error, /2018-06-01/runtime/init/error) to the handler
//     processes it starts: the function's command (by default this very
//     binary) with AWS_LAMBDA_RUNTIME_API pointing at a listener of its
//     own, so an aws-lambda-go handler (lambda.Start) runs unmodified.
//
// Each handler process is one execution environment. An invocation is
// given an idle environment (a warm start) or, when none is idle, a new
// process (a cold start); environments are reused until they die or time
// out. At most Options.Concurrency invocations run at once; an invocation
// beyond that is rejected at once with 429 TooManyRequestsException
// (Reason ReservedFunctionConcurrentInvocationLimitExceeded), as Lambda
// throttles a function whose reserved concurrency is exhausted; nothing
// waits in a queue. An invocation runs for at most Options.Timeout from the
// moment its environment takes it (process start and init are not
// counted, as on Lambda, but bounded by Options.InitTimeout); at the
// timeout the process is killed and the caller gets a function error
// (X-Amz-Function-Error: Unhandled, errorType Sandbox.Timedout, "Task
// timed out after ..."). A process that exits during an invocation fails
// it with errorType Runtime.ExitError. Request and response payloads are
// bounded by Options.MaxPayload (6 MB like Lambda): a larger request gets
// 413 RequestTooLargeException, a larger response the function error
// Function.ResponseSizeTooLarge.
//
// Only synchronous invocations (RequestResponse) and DryRun are served;
// Event (asynchronous) invocations, versions, aliases and the other
// Lambda APIs are not.
package lambdaemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Options configures an Emulator.
type Options struct {
	// Function is the name of the one function served (default "blossom").
	Function string
	// Command starts an execution environment (default: this executable,
	// whose main must serve the Runtime API when AWS_LAMBDA_RUNTIME_API
	// is set, as executor.MaybeServeWorker does).
	Command []string
	// Env is added to the environments' environment.
	Env []string
	// Concurrency is the function's concurrency limit (default 10).
	Concurrency int
	// Timeout is the function's timeout per invocation (default 3s, as on
	// Lambda).
	Timeout time.Duration
	// InitTimeout bounds a new environment's start until it asks for its
	// first invocation (default 10s, as on Lambda).
	InitTimeout time.Duration
	// MaxPayload bounds request and response payloads (default 6 MB).
	MaxPayload int
	// Stderr receives the environments' stdout and stderr (their logs;
	// default os.Stderr).
	Stderr io.Writer
}

// Stats counts what the emulator did since it started.
type Stats struct {
	// Invocations accepted (not throttled, not rejected).
	Invocations int64
	// ColdStarts: invocations that started a new environment.
	ColdStarts int64
	// WarmStarts: invocations that an idle environment took.
	WarmStarts int64
	// Throttles: invocations rejected with TooManyRequestsException.
	Throttles int64
	// Timeouts: invocations whose environment was killed at the timeout.
	Timeouts int64
	// Exits: invocations failed because their environment exited.
	Exits int64
	// Running is the number of invocations in progress.
	Running int
	// Environments is the number of live environments, busy or idle.
	Environments int
}

// Emulator serves the Invoke API on its listener and the Runtime API to the
// environments it starts.
type Emulator struct {
	opts Options
	ln   net.Listener
	srv  *http.Server

	invocations, cold, warm, throttles, timeouts, exits atomic.Int64

	mu      sync.Mutex
	running int
	idle    []*sandbox
	all     map[*sandbox]struct{}
	nextID  int
	closed  bool
	closing chan struct{}
}

// Start listens on addr ("127.0.0.1:0" for any free port) and serves.
func Start(addr string, opts Options) (*Emulator, error) {
	if opts.Function == "" {
		opts.Function = "blossom"
	}
	if len(opts.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("lambdaemu: %w", err)
		}
		opts.Command = []string{exe}
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 10
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Second
	}
	if opts.InitTimeout <= 0 {
		opts.InitTimeout = 10 * time.Second
	}
	if opts.MaxPayload <= 0 {
		opts.MaxPayload = 6 << 20
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("lambdaemu: %w", err)
	}
	e := &Emulator{opts: opts, ln: ln, all: map[*sandbox]struct{}{}, closing: make(chan struct{})}
	e.srv = &http.Server{Handler: http.HandlerFunc(e.serveInvoke), ReadHeaderTimeout: 10 * time.Second}
	go e.srv.Serve(ln)
	return e, nil
}

// URL is the endpoint to give the SDK (BaseEndpoint).
func (e *Emulator) URL() string { return "http://" + e.ln.Addr().String() }

// Function is the name of the function served.
func (e *Emulator) Function() string { return e.opts.Function }

// AWSConfig is an SDK configuration that reaches the emulator: its URL as
// the base endpoint, region "local" and anonymous credentials (requests
// are not signed; the emulator does not check signatures).
func (e *Emulator) AWSConfig() aws.Config {
	return aws.Config{Region: "local", BaseEndpoint: aws.String(e.URL()), Credentials: aws.AnonymousCredentials{}}
}

// Stats returns the counters.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Stats{
		Invocations: e.invocations.Load(), ColdStarts: e.cold.Load(), WarmStarts: e.warm.Load(),
		Throttles: e.throttles.Load(), Timeouts: e.timeouts.Load(), Exits: e.exits.Load(),
		Running: e.running, Environments: len(e.all),
	}
}

// Close stops serving and kills every environment.
func (e *Emulator) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.closing)
	all := make([]*sandbox, 0, len(e.all))
	for sb := range e.all {
		all = append(all, sb)
	}
	e.mu.Unlock()
	err := e.srv.Close()
	for _, sb := range all {
		sb.kill()
	}
	return err
}

// apiError writes an error of the Invoke API the way Lambda does: the
// status, the error type in X-Amzn-ErrorType and a JSON body.
func apiError(w http.ResponseWriter, status int, typ, msg string, extra map[string]string) {
	body := map[string]string{"Type": "User", "message": msg}
	if status >= 500 {
		body["Type"] = "Service"
	}
	for k, v := range extra {
		body[k] = v
	}
	w.Header().Set("X-Amzn-Requestid", newRequestID())
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

const invokePrefix = "/2015-03-31/functions/"

// serveInvoke serves the Invoke API.
func (e *Emulator) serveInvoke(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), invokePrefix)
	name, ok2 := strings.CutSuffix(rest, "/invocations")
	if !ok || !ok2 || strings.Contains(name, "/") {
		apiError(w, http.StatusNotFound, "UnknownOperationException", "the emulator serves POST "+invokePrefix+"{name}/invocations only", nil)
		return
	}
	if r.Method != http.MethodPost {
		apiError(w, http.StatusMethodNotAllowed, "UnknownOperationException", "Invoke is a POST", nil)
		return
	}
	name, err := url.PathUnescape(name)
	if err != nil || !e.matches(name) {
		apiError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("Function not found: %s", name), nil)
		return
	}
	switch q := r.URL.Query().Get("Qualifier"); q {
	case "", "$LATEST":
	default:
		apiError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("Function not found: %s:%s (the emulator serves $LATEST only)", name, q), nil)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(e.opts.MaxPayload)+1))
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestContentException", "read request: "+err.Error(), nil)
		return
	}
	if len(body) > e.opts.MaxPayload {
		// Read on (boundedly) so that the caller, still sending, reads
		// the answer rather than a reset connection.
		io.Copy(io.Discard, io.LimitReader(r.Body, 4*int64(e.opts.MaxPayload)))
		apiError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException",
			fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", e.opts.MaxPayload), nil)
		return
	}
	if len(body) > 0 && !json.Valid(body) {
		apiError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json", nil)
		return
	}
	switch t := r.Header.Get("X-Amz-Invocation-Type"); t {
	case "", "RequestResponse":
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		apiError(w, http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("the emulator does not serve invocation type %q", t), nil)
		return
	}
	if !e.acquire() {
		e.throttles.Add(1)
		apiError(w, http.StatusTooManyRequests, "TooManyRequestsException", "Rate Exceeded.",
			map[string]string{"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"})
		return
	}
	e.invocations.Add(1)
	id := newRequestID()
	res := e.invoke(id, body)
	e.release() // before answering, so that a caller sees the slot free
	w.Header().Set("X-Amzn-Requestid", id)
	w.Header().Set("X-Amz-Executed-Version", "$LATEST")
	w.Header().Set("Content-Type", "application/json")
	if res.functionError != "" {
		w.Header().Set("X-Amz-Function-Error", res.functionError)
	}
	w.WriteHeader(http.StatusOK)
	w.Write(res.payload)
}

// matches reports whether name (a name, a partial or full ARN) is the
// function served.
func (e *Emulator) matches(name string) bool {
	if name == e.opts.Function {
		return true
	}
	i := strings.LastIndex(name, ":function:")
	return i >= 0 && name[i+len(":function:"):] == e.opts.Function
}

func (e *Emulator) acquire() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.running >= e.opts.Concurrency {
		return false
	}
	e.running++
	return true
}

func (e *Emulator) release() {
	e.mu.Lock()
	e.running--
	e.mu.Unlock()
}

func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// result is the outcome of an invocation as the caller sees it.
type result struct {
	payload       []byte
	functionError string // "" or "Unhandled"
	kill          bool   // the environment was killed (timeout)
}

// functionError builds a Lambda-made function error.
func functionError(typ, msg string) result {
	p, _ := json.Marshal(map[string]string{"errorType": typ, "errorMessage": msg})
	return result{payload: p, functionError: "Unhandled"}
}

// invoke runs one invocation on an environment, warm or cold.
func (e *Emulator) invoke(id string, payload []byte) result {
	c := &call{id: id, payload: payload, done: make(chan result, 1)}
	for {
		sb, cold, err := e.get()
		if err != nil {
			return functionError("Runtime.StartError", fmt.Sprintf("RequestId: %s Error: %v", id, err))
		}
		var initTimeout <-chan time.Time
		if cold {
			t := time.NewTimer(e.opts.InitTimeout)
			initTimeout = t.C
			defer t.Stop()
		}
		select {
		case sb.work <- c:
			if !cold {
				e.warm.Add(1)
			}
		case <-sb.exited:
			e.discard(sb)
			if !cold {
				continue // an idle environment died: start another
			}
			e.exits.Add(1)
			if ie := sb.initError(); ie != nil {
				return result{payload: ie, functionError: "Unhandled"}
			}
			return functionError("Runtime.ExitError", fmt.Sprintf("RequestId: %s Error: Runtime exited during init: %s", id, sb.status()))
		case <-sb.initFailed: // Lambda ends an environment whose init failed
			e.discard(sb)
			e.exits.Add(1)
			return result{payload: sb.initError(), functionError: "Unhandled"}
		case <-initTimeout:
			e.discard(sb)
			e.timeouts.Add(1)
			return functionError("Sandbox.Timedout", fmt.Sprintf("RequestId: %s Error: Init timed out after %.2f seconds", id, e.opts.InitTimeout.Seconds()))
		case <-e.closing:
			return functionError("Runtime.ExitError", fmt.Sprintf("RequestId: %s Error: emulator closed", id))
		}
		var r result
		select {
		case r = <-c.done:
		case <-sb.exited:
			select {
			case r = <-c.done: // answered, then exited
			default:
				c.finish(functionError("Runtime.ExitError", fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", id, sb.status())))
				r = <-c.done
				e.exits.Add(1)
			}
		}
		if r.kill || sb.dead() {
			e.discard(sb)
		} else {
			e.put(sb)
		}
		return r
	}
}

// call is one invocation handed to an environment.
type call struct {
	id      string
	payload []byte
	once    sync.Once
	done    chan result

	mu    sync.Mutex
	timer *time.Timer // the timeout, set by the environment's /next
}

// finish delivers the first outcome; later ones are dropped.
func (c *call) finish(r result) bool {
	first := false
	c.once.Do(func() {
		first = true
		c.mu.Lock()
		if c.timer != nil {
			c.timer.Stop()
		}
		c.mu.Unlock()
		c.done <- r
	})
	return first
}

// get returns an idle environment or starts one.
func (e *Emulator) get() (*sandbox, bool, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, false, errors.New("emulator closed")
	}
	for n := len(e.idle); n > 0; n = len(e.idle) {
		sb := e.idle[n-1]
		e.idle = e.idle[:n-1]
		if !sb.dead() {
			e.mu.Unlock()
			return sb, false, nil
		}
		delete(e.all, sb)
	}
	e.nextID++
	id := e.nextID
	e.mu.Unlock()
	sb, err := e.startSandbox(id)
	if err != nil {
		return nil, false, err
	}
	e.cold.Add(1)
	return sb, true, nil
}

func (e *Emulator) put(sb *sandbox) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		go sb.kill()
		return
	}
	if sb.dead() { // exited since its answer; forgetIdle has run or will find nothing
		delete(e.all, sb)
		return
	}
	e.idle = append(e.idle, sb)
}

// forgetIdle drops sb, which has exited, if it is idle; a busy one is
// dropped by its invocation.
func (e *Emulator) forgetIdle(sb *sandbox) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, x := range e.idle {
		if x == sb {
			e.idle = append(e.idle[:i], e.idle[i+1:]...)
			delete(e.all, sb)
			return
		}
	}
}

func (e *Emulator) discard(sb *sandbox) {
	e.mu.Lock()
	delete(e.all, sb)
	e.mu.Unlock()
	sb.kill()
}

// sandbox is one execution environment: a handler process and the Runtime
// API listener it talks to.
type sandbox struct {
	e      *Emulator
	stream string
	cmd    *exec.Cmd
	srv    *http.Server
	work   chan *call
	exited chan struct{}
	// initFailed is closed when the process reports an init error.
	initFailed chan struct{}

	mu      sync.Mutex
	cur     *call
	waitErr error
	initErr []byte
}

func (e *Emulator) startSandbox(id int) (*sandbox, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sb := &sandbox{
		e:          e,
		stream:     fmt.Sprintf("%s/[$LATEST]env-%d", time.Now().UTC().Format("2006/01/02"), id),
		work:       make(chan *call),
		exited:     make(chan struct{}),
		initFailed: make(chan struct{}),
	}
	sb.srv = &http.Server{Handler: http.HandlerFunc(sb.serveRuntime), ReadHeaderTimeout: 10 * time.Second}
	cmd := exec.Command(e.opts.Command[0], e.opts.Command[1:]...)
	cmd.Env = append(os.Environ(),
		"AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(),
		"AWS_LAMBDA_FUNCTION_NAME="+e.opts.Function,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1024",
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+e.opts.Function,
		"AWS_LAMBDA_LOG_STREAM_NAME="+sb.stream,
		"AWS_REGION=local",
		"_HANDLER=bootstrap",
	)
	cmd.Env = append(cmd.Env, e.opts.Env...)
	cmd.Stdout, cmd.Stderr = e.opts.Stderr, e.opts.Stderr
	sb.cmd = cmd
	go sb.srv.Serve(ln)
	if err := cmd.Start(); err != nil {
		sb.srv.Close()
		return nil, fmt.Errorf("start %q: %w", e.opts.Command[0], err)
	}
	e.mu.Lock()
	e.all[sb] = struct{}{}
	e.mu.Unlock()
	go func() {
		err := cmd.Wait()
		sb.mu.Lock()
		sb.waitErr = err
		sb.mu.Unlock()
		close(sb.exited)
		sb.srv.Close()
		e.forgetIdle(sb)
	}()
	return sb, nil
}

func (sb *sandbox) dead() bool {
	select {
	case <-sb.exited:
		return true
	default:
		return false
	}
}

// status describes how the process exited.
func (sb *sandbox) status() string {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.waitErr != nil {
		return sb.waitErr.Error()
	}
	return "exit status 0"
}

func (sb *sandbox) initError() []byte {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.initErr
}

// kill ends the process and waits for it.
func (sb *sandbox) kill() {
	sb.cmd.Process.Kill()
	<-sb.exited
}

const runtimePrefix = "/2018-06-01/runtime/"

// serveRuntime serves the Runtime API to the environment's process.
func (sb *sandbox) serveRuntime(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, runtimePrefix)
	if !ok {
		http.Error(w, `{"errorType":"InvalidRequest","errorMessage":"unknown path"}`, http.StatusNotFound)
		return
	}
	switch {
	case path == "invocation/next" && r.Method == http.MethodGet:
		sb.next(w, r)
	case path == "init/error" && r.Method == http.MethodPost:
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if !json.Valid(body) {
			body, _ = json.Marshal(map[string]string{"errorType": "Runtime.InitError", "errorMessage": string(body)})
		}
		sb.mu.Lock()
		if sb.initErr == nil {
			sb.initErr = body
			close(sb.initFailed) // the invocation waiting for init ends the environment
		}
		sb.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	case strings.HasPrefix(path, "invocation/") && r.Method == http.MethodPost:
		id, what, _ := strings.Cut(strings.TrimPrefix(path, "invocation/"), "/")
		sb.mu.Lock()
		c := sb.cur
		sb.mu.Unlock()
		if c == nil || c.id != id || (what != "response" && what != "error") {
			http.Error(w, `{"errorType":"InvalidRequestID","errorMessage":"no such invocation in progress"}`, http.StatusBadRequest)
			return
		}
		max := sb.e.opts.MaxPayload
		body, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
		switch {
		case err != nil:
			c.finish(functionError("Runtime.ExitError", fmt.Sprintf("RequestId: %s Error: reading the runtime's %s: %v", id, what, err)))
		case len(body) > max:
			c.finish(functionError("Function.ResponseSizeTooLarge",
				fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", max)))
			http.Error(w, `{"errorType":"RequestEntityTooLarge","errorMessage":"payload too large"}`, http.StatusRequestEntityTooLarge)
			return
		case what == "response":
			c.finish(result{payload: body})
		default:
			if !json.Valid(body) {
				body, _ = json.Marshal(map[string]string{"errorType": r.Header.Get("Lambda-Runtime-Function-Error-Type"), "errorMessage": string(body)})
			}
			c.finish(result{payload: body, functionError: "Unhandled"})
		}
		sb.mu.Lock()
		if sb.cur == c {
			sb.cur = nil
		}
		sb.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	default:
		http.Error(w, `{"errorType":"InvalidRequest","errorMessage":"unknown path"}`, http.StatusNotFound)
	}
}

// next hands the process its next invocation and starts its timeout.
func (sb *sandbox) next(w http.ResponseWriter, r *http.Request) {
	var c *call
	select {
	case c = <-sb.work:
	case <-r.Context().Done():
		return
	case <-sb.exited:
		return
	}
	timeout := sb.e.opts.Timeout
	deadline := time.Now().Add(timeout)
	sb.mu.Lock()
	sb.cur = c
	sb.mu.Unlock()
	c.mu.Lock()
	c.timer = time.AfterFunc(timeout, func() {
		r := functionError("Sandbox.Timedout", fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", c.id, timeout.Seconds()))
		r.kill = true // the invocation's goroutine discards the environment
		if c.finish(r) {
			sb.e.timeouts.Add(1)
		}
	})
	c.mu.Unlock()
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", c.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:local:000000000000:function:"+sb.e.opts.Function)
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-"+strings.ReplaceAll(c.id, "-", "")[:24])
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	io.Copy(w, bytes.NewReader(c.payload))
}

// Wait blocks until ctx ends or the emulator is closed.
func (e *Emulator) Wait(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-e.closing:
	}
}
