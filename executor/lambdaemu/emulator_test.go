package lambdaemu_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/executor"
	"github.com/blossom-dso/blossom/executor/lambdaemu"
)

// TestMain lets the test binary serve as the emulator's handler processes:
// they are started with AWS_LAMBDA_RUNTIME_API set, and MaybeServeWorker
// runs aws-lambda-go's lambda.Start.
// With EMU_INIT_FAIL set, a handler process fails its init instead:
// "report" posts an init error to the Runtime API first, "exit" just exits.
func TestMain(m *testing.M) {
	if api := os.Getenv(executor.EnvLambdaRuntimeAPI); api != "" {
		switch os.Getenv("EMU_INIT_FAIL") {
		case "report":
			resp, err := http.Post("http://"+api+"/2018-06-01/runtime/init/error", "application/json",
				strings.NewReader(`{"errorType":"Test.InitFailed","errorMessage":"no configuration"}`))
			if err == nil {
				resp.Body.Close()
			}
			os.Exit(1)
		case "exit":
			os.Exit(4)
		}
	}
	executor.MaybeServeWorker()
	os.Exit(m.Run())
}

// addArgs: add Delta to the OnceCounter Counter (keyed by the invocation)
// and to the plain AtomicLong Counter+"/attempts"; then fail attempts up to
// FailAttempts (returning an error, or exiting the process if Crash).
type addArgs struct {
	Counter      string
	Delta        int64
	FailAttempts int
	Crash        bool
}

var (
	add = executor.Register("emu.add", func(ctx context.Context, a addArgs) (int64, error) {
		c, err := executor.DSO(ctx)
		if err != nil {
			return 0, err
		}
		if _, err := executor.NewOnceCounter(c, a.Counter).Add(ctx, executor.Key(ctx, "add"), a.Delta); err != nil {
			return 0, err
		}
		if _, err := dso.NewAtomicLong(c, a.Counter+"/attempts").AddAndGet(ctx, 1); err != nil {
			return 0, err
		}
		if i, _ := executor.InvocationOf(ctx); i.Attempt <= a.FailAttempts {
			if a.Crash {
				os.Exit(3)
			}
			return 0, fmt.Errorf("planned failure of attempt %d", i.Attempt)
		}
		return executor.NewOnceCounter(c, a.Counter).Value(ctx)
	})
	info = executor.Register("emu.info", func(ctx context.Context, _ struct{}) (executor.Info, error) {
		i, _ := executor.InvocationOf(ctx)
		return i, nil
	})
	fail   = executor.Register("emu.fail", func(_ context.Context, msg string) (int, error) { return 0, errors.New(msg) })
	panics = executor.Register("emu.panic", func(_ context.Context, msg string) (int, error) { panic(msg) })
	block  = executor.Register("emu.block", func(context.Context, struct{}) (int, error) {
		select {} // ignores its context
	})
	waitCtx = executor.Register("emu.waitCtx", func(ctx context.Context, _ struct{}) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	latch = executor.Register("emu.latch", func(ctx context.Context, key string) (string, error) {
		c, err := executor.DSO(ctx)
		if err != nil {
			return "", err
		}
		if err := dso.NewCountDownLatch(c, key, 1).Await(ctx); err != nil {
			return "", err
		}
		i, _ := executor.InvocationOf(ctx)
		return i.Worker, nil
	})
	big = executor.Register("emu.big", func(_ context.Context, n int) (string, error) { return strings.Repeat("x", n), nil })
)

var cluster struct {
	once sync.Once
	eps  []string
	err  error
}

// dsoEndpoints starts one DSO node for the package's tests.
func dsoEndpoints(t *testing.T) []string {
	cluster.once.Do(func() {
		cl, err := dsotest.StartCluster(1, dsotest.Options{})
		cluster.err = err
		if err == nil {
			cluster.eps = cl.Endpoints // left running until the test binary exits
		}
	})
	require.NoError(t, cluster.err)
	return cluster.eps
}

func dial(t *testing.T) *client.Client {
	c, err := client.Dial(context.Background(), dsoEndpoints(t)...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func logs() io.Writer {
	if testing.Verbose() {
		return os.Stderr
	}
	return io.Discard
}

// initFail is EMU_INIT_FAIL for the environments start starts.
var initFail string

// start runs an emulator whose environments are this test binary.
func start(t *testing.T, o lambdaemu.Options) *lambdaemu.Emulator {
	o.Command = []string{os.Args[0], "-test.run=^$"}
	o.Env = append(o.Env, "EMU_INIT_FAIL="+initFail)
	o.Stderr = logs()
	e, err := lambdaemu.Start("127.0.0.1:0", o)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e
}

// lambdaExec is an executor on the lambda back end reaching e through the
// SDK's custom endpoint.
func lambdaExec(t *testing.T, e *lambdaemu.Emulator, o executor.Options) context.Context {
	cfg := e.AWSConfig()
	o.Backend = "lambda"
	o.DSO = dsoEndpoints(t)
	o.Lambda.Config = &cfg
	if o.Lambda.Function == "" {
		o.Lambda.Function = e.Function()
	}
	ex, err := executor.New(o)
	require.NoError(t, err)
	t.Cleanup(func() { ex.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return executor.WithExecutor(ctx, ex)
}

func sdk(e *lambdaemu.Emulator) *awslambda.Client {
	return awslambda.NewFromConfig(e.AWSConfig(), func(o *awslambda.Options) { o.Retryer = aws.NopRetryer{} })
}

// waitRunning polls the emulator until n invocations are in progress.
func waitRunning(t *testing.T, ctx context.Context, e *lambdaemu.Emulator, n int) {
	for e.Stats().Running != n {
		select {
		case <-ctx.Done():
			t.Fatalf("never %d invocations running: %+v", n, e.Stats())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestEndToEnd: SDK -> emulator -> aws-lambda-go handler -> DSO calls ->
// result, with the first invocation a cold start and the next warm.
func TestEndToEnd(t *testing.T) {
	e := start(t, lambdaemu.Options{Timeout: time.Minute})
	ctx := lambdaExec(t, e, executor.Options{})
	key := fmt.Sprint("e2e-", time.Now().UnixNano())
	v, err := executor.Go(ctx, add, addArgs{Counter: key, Delta: 5}).Get()
	require.NoError(t, err)
	require.EqualValues(t, 5, v)
	require.Equal(t, lambdaemu.Stats{Invocations: 1, ColdStarts: 1, Environments: 1}, e.Stats())

	v, err = executor.Go(ctx, add, addArgs{Counter: key, Delta: 7}).Get()
	require.NoError(t, err)
	require.EqualValues(t, 12, v, "the second invocation adds under its own key")
	i, err := executor.Go(ctx, info, struct{}{}, executor.WithKey("k-1")).Get()
	require.NoError(t, err)
	require.Equal(t, "k-1", i.ID)
	require.Equal(t, "emu.info", i.Function)
	require.Equal(t, dsoEndpoints(t), i.DSO)
	require.Regexp(t, `^lambda:blossom/.*\[\$LATEST\]env-1$`, i.Worker, "one environment served all three")
	require.Equal(t, lambdaemu.Stats{Invocations: 3, ColdStarts: 1, WarmStarts: 2, Environments: 1}, e.Stats())

	// The DSO saw the additions.
	got, err := executor.NewOnceCounter(dial(t), key).Value(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 12, got)
}

// TestErrors: function errors and panics come back as the executor's
// errors naming function and worker; Lambda-level failures (the process
// exits, the request names no function) are mapped too.
func TestErrors(t *testing.T) {
	e := start(t, lambdaemu.Options{Timeout: time.Minute})
	ctx := lambdaExec(t, e, executor.Options{})

	_, err := executor.Go(ctx, fail, "no luck").Get()
	require.ErrorIs(t, err, executor.ErrFailed)
	require.ErrorContains(t, err, "emu.fail")
	require.ErrorContains(t, err, "worker lambda:blossom/")
	require.ErrorContains(t, err, "no luck")

	_, err = executor.Go(ctx, panics, "boom").Get()
	require.ErrorIs(t, err, executor.ErrPanic)
	require.ErrorContains(t, err, "boom")
	var ee *executor.Error
	require.ErrorAs(t, err, &ee)
	require.Contains(t, ee.Stack, "panic")
	require.Equal(t, int64(1), e.Stats().ColdStarts, "errors and panics leave the environment warm")

	_, err = executor.Go(ctx, add, addArgs{Counter: "crash", FailAttempts: 1, Crash: true}).Get()
	require.ErrorIs(t, err, executor.ErrCrashed)
	require.ErrorContains(t, err, "Runtime.ExitError")
	require.ErrorContains(t, err, "exit status 3")
	require.Equal(t, int64(1), e.Stats().Exits)

	v, err := executor.Go(ctx, fail, "after the crash").Get()
	require.Error(t, err)
	require.Zero(t, v)
	require.Equal(t, int64(2), e.Stats().ColdStarts, "the crashed environment was replaced")

	// A function the emulator does not serve.
	nctx := lambdaExec(t, e, executor.Options{Lambda: executor.LambdaOptions{Function: "nope"}})
	_, err = executor.Go(nctx, fail, "x").Get()
	require.ErrorIs(t, err, executor.ErrUnknownFunction)
	require.ErrorContains(t, err, "ResourceNotFoundException")
	_, err = sdk(e).Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("nope")})
	var nf *types.ResourceNotFoundException
	require.ErrorAs(t, err, &nf)
}

// TestTimeouts: the emulator kills an environment at the function's
// timeout and the caller gets ErrDeadline; the executor's own per-attempt
// deadline reaches the function's context through the handler.
func TestTimeouts(t *testing.T) {
	e := start(t, lambdaemu.Options{Timeout: 500 * time.Millisecond})
	ctx := lambdaExec(t, e, executor.Options{})
	_, err := executor.Go(ctx, block, struct{}{}).Get()
	require.ErrorIs(t, err, executor.ErrDeadline)
	require.ErrorContains(t, err, "Task timed out after 0.50 seconds")
	st := e.Stats()
	require.Equal(t, int64(1), st.Timeouts)
	require.Zero(t, st.Environments, "the timed-out environment was killed")

	e2 := start(t, lambdaemu.Options{Timeout: time.Minute})
	ctx2 := lambdaExec(t, e2, executor.Options{})
	_, err = executor.Go(ctx2, waitCtx, struct{}{}, executor.WithTimeout(200*time.Millisecond)).Get()
	require.ErrorIs(t, err, executor.ErrDeadline)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Zero(t, e2.Stats().Timeouts, "the function honoured the executor's deadline before Lambda's")
}

// TestRetriesApplyOnce: a function that adds to a OnceCounter and then
// fails, by an error and then by a crash of its process, is retried by
// the executor's policy (not the SDK's) and its addition counts once.
func TestRetriesApplyOnce(t *testing.T) {
	e := start(t, lambdaemu.Options{Timeout: time.Minute})
	ctx := lambdaExec(t, e, executor.Options{Retry: executor.RetryPolicy{Attempts: 3, Backoff: time.Millisecond}})
	key := fmt.Sprint("retry-", time.Now().UnixNano())
	v, err := executor.Go(ctx, add, addArgs{Counter: key, Delta: 4, FailAttempts: 2}).Get()
	require.NoError(t, err)
	require.EqualValues(t, 4, v)

	crashKey := key + "-crash"
	v, err = executor.Go(ctx, add, addArgs{Counter: crashKey, Delta: 4, FailAttempts: 2, Crash: true}).Get()
	require.NoError(t, err)
	require.EqualValues(t, 4, v)

	c := dial(t)
	for _, k := range []string{key, crashKey} {
		n, err := dso.NewAtomicLong(c, k+"/attempts").Get(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 3, n, "every attempt ran its side effects")
		got, err := executor.NewOnceCounter(c, k).Value(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 4, got, "but the keyed addition applied once")
	}
	st := e.Stats()
	require.Equal(t, int64(6), st.Invocations)
	require.Equal(t, int64(2), st.Exits)
}

// TestConcurrencyLimit: invocations beyond the concurrency limit are
// throttled with TooManyRequestsException; environments are started per
// concurrent invocation (cold starts) and reused when idle (warm starts).
func TestConcurrencyLimit(t *testing.T) {
	e := start(t, lambdaemu.Options{Concurrency: 2, Timeout: time.Minute})
	ctx := lambdaExec(t, e, executor.Options{Concurrency: 3})
	c := dial(t)
	round := func(key string) []string {
		fs := []*executor.Future[string]{executor.Go(ctx, latch, key), executor.Go(ctx, latch, key)}
		waitRunning(t, ctx, e, 2)
		// A third invocation is throttled, through the SDK and the executor.
		_, err := sdk(e).Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("blossom"), Payload: []byte(`{}`)})
		var tm *types.TooManyRequestsException
		require.ErrorAs(t, err, &tm)
		require.EqualValues(t, "ReservedFunctionConcurrentInvocationLimitExceeded", tm.Reason)
		_, err = executor.Go(ctx, latch, key).Get()
		require.ErrorIs(t, err, executor.ErrCrashed)
		require.ErrorContains(t, err, "throttled")
		_, err = dso.NewCountDownLatch(c, key, 1).CountDown(ctx)
		require.NoError(t, err)
		var workers []string
		for _, f := range fs {
			w, err := f.Get()
			require.NoError(t, err)
			workers = append(workers, w)
		}
		require.NotEqual(t, workers[0], workers[1], "two environments ran at once")
		return workers
	}
	key := fmt.Sprint("latch-", time.Now().UnixNano())
	first := round(key + "-1")
	st := e.Stats()
	require.Equal(t, lambdaemu.Stats{Invocations: 2, ColdStarts: 2, Throttles: 2, Environments: 2}, st)
	second := round(key + "-2")
	require.ElementsMatch(t, first, second, "the second round reused both environments")
	st = e.Stats()
	require.Equal(t, lambdaemu.Stats{Invocations: 4, ColdStarts: 2, WarmStarts: 2, Throttles: 4, Environments: 2}, st)
}

// TestPayloadLimits: requests over 6 MB are refused (by the emulator, and
// by the back end before sending), responses over 6 MB fail the invocation.
func TestPayloadLimits(t *testing.T) {
	e := start(t, lambdaemu.Options{Timeout: time.Minute})
	ctx := lambdaExec(t, e, executor.Options{})
	huge := []byte(`"` + strings.Repeat("a", 6<<20) + `"`)
	_, err := sdk(e).Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("blossom"), Payload: huge})
	var tl *types.RequestTooLargeException
	require.ErrorAs(t, err, &tl)

	_, err = executor.Go(ctx, fail, string(huge)).Get()
	require.ErrorIs(t, err, executor.ErrBadArgs)
	require.ErrorContains(t, err, "payload limit")

	_, err = executor.Go(ctx, big, 6<<20).Get()
	require.ErrorIs(t, err, executor.ErrCrashed)
	require.ErrorContains(t, err, "Function.ResponseSizeTooLarge")

	s, err := executor.Go(ctx, big, 1<<20).Get()
	require.NoError(t, err)
	require.Len(t, s, 1<<20)
	require.Zero(t, e.Stats().Throttles)
}

// TestInitFailures: an environment that fails its init, reporting it to
// the Runtime API or just exiting, fails the invocation with the error it
// reported or Runtime.ExitError, and is not reused.
func TestInitFailures(t *testing.T) {
	for _, c := range []struct{ mode, want string }{
		{"report", "Test.InitFailed: no configuration"},
		{"exit", "Runtime.ExitError: RequestId: "},
	} {
		initFail = c.mode
		e := start(t, lambdaemu.Options{Timeout: time.Minute})
		initFail = ""
		ctx := lambdaExec(t, e, executor.Options{})
		for range 2 {
			_, err := executor.Go(ctx, fail, "never runs").Get()
			require.ErrorIs(t, err, executor.ErrCrashed, c.mode)
			require.ErrorContains(t, err, c.want, c.mode)
		}
		if c.mode == "exit" {
			_, err := executor.Go(ctx, fail, "never runs").Get()
			require.ErrorContains(t, err, "exit status 4")
		}
		st := e.Stats()
		require.Equal(t, st.Invocations, st.ColdStarts, "every invocation started an environment")
		require.Equal(t, st.Invocations, st.Exits, c.mode)
		require.Zero(t, st.WarmStarts, c.mode)
		require.Zero(t, st.Environments, c.mode)
	}
}
