package executor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/executor"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary serve as the process back end's worker.
func TestMain(m *testing.M) {
	executor.MaybeServeWorker()
	os.Exit(m.Run())
}

var (
	square = executor.Register("test.square", func(_ context.Context, n int) (int, error) { return n * n, nil })
	fail   = executor.Register("test.fail", func(_ context.Context, msg string) (int, error) {
		return 0, errors.New(msg)
	})
	failPermanent = executor.Register("test.failPermanent", func(ctx context.Context, c string) (int, error) {
		cl, err := executor.DSO(ctx)
		if err != nil {
			return 0, err
		}
		if _, err := dso.NewAtomicLong(cl, c).IncrementAndGet(ctx); err != nil {
			return 0, err
		}
		return 0, executor.Permanent(errors.New("no use retrying"))
	})
	panics = executor.Register("test.panic", func(_ context.Context, msg string) (int, error) { panic(msg) })
	block  = executor.Register("test.block", func(context.Context, struct{}) (int, error) {
		select {} // ignores its context
	})
	waitCtx = executor.Register("test.waitCtx", func(ctx context.Context, _ struct{}) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	crash = executor.Register("test.crash", func(context.Context, int) (int, error) {
		fmt.Fprintln(os.Stderr, "about to exit")
		os.Exit(3)
		return 0, nil
	})
	info = executor.Register("test.info", func(ctx context.Context, _ struct{}) (executor.Info, error) {
		i, _ := executor.InvocationOf(ctx)
		return i, nil
	})
	chunkSum = executor.Register("test.chunkSum", func(_ context.Context, c executor.Chunk[int]) ([]int, error) {
		return []int{c.From, c.To, c.Worker, c.Workers, c.Arg}, nil
	})
	incThenFail = executor.Register("test.incThenFail", func(ctx context.Context, a incArgs) (int64, error) {
		cl, err := executor.DSO(ctx)
		if err != nil {
			return 0, err
		}
		if _, err := executor.NewOnceCounter(cl, a.Once).Add(ctx, executor.Key(ctx, "inc"), 1); err != nil {
			return 0, err
		}
		if _, err := dso.NewAtomicLong(cl, a.Plain).IncrementAndGet(ctx); err != nil {
			return 0, err
		}
		if i, _ := executor.InvocationOf(ctx); i.Attempt <= a.FailAttempts {
			switch a.How {
			case "panic":
				panic("failing after the increment")
			case "crash":
				os.Exit(4)
			}
			return 0, fmt.Errorf("failing after the increment, attempt %d", i.Attempt)
		}
		return 1, nil
	})
)

type incArgs struct {
	Once, Plain  string
	FailAttempts int
	How          string
}

func backends(*testing.T) []string {
	return []string{"local", "process", "http"}
}

func newExec(t *testing.T, backend string, o executor.Options) (*executor.Executor, context.Context) {
	t.Helper()
	o.Backend = backend
	if backend == "http" && o.Endpoint == "" {
		srv := httptest.NewServer(executor.HTTPHandler("http"))
		t.Cleanup(srv.Close)
		o.Endpoint = srv.URL
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	e, err := executor.New(o)
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e, executor.WithExecutor(context.Background(), e)
}

func TestResults(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			_, ctx := newExec(t, b, executor.Options{Concurrency: 2})
			v, err := executor.Go(ctx, square, 7).Get()
			require.NoError(t, err)
			require.Equal(t, 49, v)

			out, err := executor.InvokeAll(ctx, square, []int{1, 2, 3, 4, 5})
			require.NoError(t, err)
			require.Equal(t, []int{1, 4, 9, 16, 25}, out)

			chunks, err := executor.InvokeIterative(ctx, chunkSum, 10, 20, 3, 42)
			require.NoError(t, err)
			require.Equal(t, [][]int{{10, 14, 0, 3, 42}, {14, 17, 1, 3, 42}, {17, 20, 2, 3, 42}}, chunks)

			f := executor.Go(ctx, info, struct{}{}, executor.WithKey("my-key"))
			i, err := f.Get()
			require.NoError(t, err)
			require.Equal(t, "my-key", i.ID)
			require.Equal(t, "test.info", i.Function)
			require.Equal(t, 1, i.Attempt)
			require.True(t, strings.HasPrefix(i.Worker, b+"-"), i.Worker)
		})
	}
}

func TestErrorsAndPanics(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			_, ctx := newExec(t, b, executor.Options{})
			_, err := executor.Go(ctx, fail, "boom").Get()
			var ee *executor.Error
			require.ErrorAs(t, err, &ee)
			require.ErrorIs(t, err, executor.ErrFailed)
			require.Equal(t, "test.fail", ee.Function)
			require.True(t, strings.HasPrefix(ee.Worker, b+"-"), ee.Worker)
			require.Contains(t, err.Error(), "boom")
			require.Contains(t, err.Error(), "test.fail")
			require.Contains(t, err.Error(), ee.Worker)

			_, err = executor.Go(ctx, panics, "kaboom").Get()
			require.ErrorIs(t, err, executor.ErrPanic)
			require.ErrorAs(t, err, &ee)
			require.Contains(t, err.Error(), "kaboom")
			require.Contains(t, err.Error(), "test.panic")
			require.Contains(t, ee.Stack, "executor_test")

			_, err = executor.InvokeAll(ctx, fail, []string{"a", "b"})
			require.ErrorIs(t, err, executor.ErrFailed)
			require.Contains(t, err.Error(), "a")
			require.Contains(t, err.Error(), "b")

			unknown := executor.Func[int, int]{}
			_, err = executor.Go(ctx, unknown, 1).Get()
			require.ErrorIs(t, err, executor.ErrUnknownFunction)

			// The back end keeps working after failures.
			v, err := executor.Go(ctx, square, 3).Get()
			require.NoError(t, err)
			require.Equal(t, 9, v)
		})
	}
}

func TestDeadlines(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			_, ctx := newExec(t, b, executor.Options{Concurrency: 1, KillGrace: time.Millisecond})
			// A function that ignores its context is abandoned (local) or
			// killed (process) at the deadline.
			_, err := executor.Go(ctx, block, struct{}{}, executor.WithTimeout(20*time.Millisecond)).Get()
			require.ErrorIs(t, err, executor.ErrDeadline)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Contains(t, err.Error(), "test.block")
			// One that watches it returns the deadline error itself.
			_, err = executor.Go(ctx, waitCtx, struct{}{}, executor.WithTimeout(20*time.Millisecond)).Get()
			require.ErrorIs(t, err, executor.ErrDeadline)
			// The only slot is free again (process: a new worker).
			v, err := executor.Go(ctx, square, 5).Get()
			require.NoError(t, err)
			require.Equal(t, 25, v)
		})
	}
}

func TestCrashedWorkerIsReplaced(t *testing.T) {
	_, ctx := newExec(t, "process", executor.Options{Concurrency: 1})
	_, err := executor.Go(ctx, crash, 0).Get()
	require.ErrorIs(t, err, executor.ErrCrashed)
	require.Contains(t, err.Error(), "test.crash")
	require.Contains(t, err.Error(), "exit status 3")
	require.Contains(t, err.Error(), "about to exit")
	require.Contains(t, err.Error(), "process-1[pid")
	i, err := executor.Go(ctx, info, struct{}{}).Get()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(i.Worker, "process-2[pid"), i.Worker)
}

func TestRetriesApplyOnce(t *testing.T) {
	cl, err := dsotest.StartCluster(3, dsotest.Options{})
	require.NoError(t, err)
	defer cl.Close()
	c, err := cl.Dial(context.Background())
	require.NoError(t, err)
	defer c.Close()

	hows := map[string][]string{"local": {"error", "panic"}, "process": {"error", "panic", "crash"}, "http": {"error", "panic"}}
	for _, b := range backends(t) {
		for _, how := range hows[b] {
			t.Run(b+"/"+how, func(t *testing.T) {
				_, ctx := newExec(t, b, executor.Options{
					DSO:   cl.Endpoints,
					Retry: executor.RetryPolicy{Attempts: 3, Backoff: time.Millisecond},
				})
				a := incArgs{Once: "once-" + b + how, Plain: "plain-" + b + how, FailAttempts: 1, How: how}
				v, err := executor.Go(ctx, incThenFail, a).Get()
				require.NoError(t, err)
				require.Equal(t, int64(1), v)
				n, err := executor.NewOnceCounter(c, a.Once).Value(ctx)
				require.NoError(t, err)
				require.Equal(t, int64(1), n, "the idempotent counter counts the retried increment once")
				p, err := dso.NewAtomicLong(c, a.Plain).Get(ctx)
				require.NoError(t, err)
				require.Equal(t, int64(2), p, "a plain AtomicLong sees both attempts")

				// Two invocations are two increments; InvokeAll's keys differ.
				out, err := executor.InvokeAll(ctx, incThenFail, []incArgs{{Once: a.Once, Plain: a.Plain}, {Once: a.Once, Plain: a.Plain}})
				require.NoError(t, err)
				require.Equal(t, []int64{1, 1}, out)
				n, err = executor.NewOnceCounter(c, a.Once).Value(ctx)
				require.NoError(t, err)
				require.Equal(t, int64(3), n)

				// Attempts exhausted: the last error comes back.
				a.FailAttempts = 5
				_, err = executor.Go(ctx, incThenFail, a).Get()
				var ee *executor.Error
				require.ErrorAs(t, err, &ee)
				require.Equal(t, 3, ee.Attempt)
				n, err = executor.NewOnceCounter(c, a.Once).Value(ctx)
				require.NoError(t, err)
				require.Equal(t, int64(4), n)

				// A permanent error is not retried.
				_, err = executor.Go(ctx, failPermanent, "perm-"+b+how).Get()
				require.ErrorAs(t, err, &ee)
				require.Equal(t, 1, ee.Attempt)
				require.True(t, ee.Permanent)
				p, err = dso.NewAtomicLong(c, "perm-"+b+how).Get(ctx)
				require.NoError(t, err)
				require.Equal(t, int64(1), p)
			})
		}
	}
}

func TestHTTPErrors(t *testing.T) {
	e, ctx := newExec(t, "http", executor.Options{Endpoint: "http://127.0.0.1:1/nothing-here"})
	_, err := executor.Go(ctx, square, 2).Get()
	require.ErrorIs(t, err, executor.ErrCrashed)
	require.Equal(t, "http", e.Backend().Name())
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, ctx = newExec(t, "http", executor.Options{Endpoint: srv.URL})
	_, err = executor.Go(ctx, square, 2).Get()
	require.ErrorIs(t, err, executor.ErrCrashed)
	require.ErrorContains(t, err, "404")
}

func TestSplit(t *testing.T) {
	require.Len(t, executor.Split(0, 3, 8, 0), 3)
	require.Nil(t, executor.Split(5, 5, 2, 0))
	cs := executor.Split(0, 10, 4, "x")
	require.Equal(t, []int{0, 3, 6, 8, 10}, []int{cs[0].From, cs[1].From, cs[2].From, cs[3].From, cs[3].To})
}

func TestBackendFromEnv(t *testing.T) {
	t.Setenv(executor.EnvBackend, "process")
	e, err := executor.New(executor.Options{Stderr: io.Discard})
	require.NoError(t, err)
	defer e.Close()
	require.Equal(t, "process", e.Backend().Name())
	t.Setenv(executor.EnvBackend, "http")
	_, err = executor.New(executor.Options{})
	require.ErrorContains(t, err, executor.EnvEndpoint)
	t.Setenv(executor.EnvBackend, "nope")
	_, err = executor.New(executor.Options{})
	require.Error(t, err)
}

func TestWorkerThatDoesNotServe(t *testing.T) {
	// /bin/true exits at once without greeting: the invocation fails, and
	// the error says why.
	_, ctx := newExec(t, "process", executor.Options{Command: []string{"/bin/true"}})
	_, err := executor.Go(ctx, square, 2).Get()
	require.ErrorIs(t, err, executor.ErrCrashed)
	require.ErrorContains(t, err, "MaybeServeWorker")
	// A worker whose main forgot MaybeServeWorker refuses to start a pool
	// of its own (no fork bomb).
	t.Setenv(executor.EnvWorker, "1")
	_, err = executor.New(executor.Options{Backend: "process"})
	require.ErrorContains(t, err, "MaybeServeWorker")
}

var running, peak atomic.Int64

var track = executor.Register("test.track", func(context.Context, int) (int64, error) {
	n := running.Add(1)
	defer running.Add(-1)
	for {
		p := peak.Load()
		if n <= p || peak.CompareAndSwap(p, n) {
			break
		}
	}
	runtime.Gosched()
	return n, nil
})

func TestLocalConcurrencyLimit(t *testing.T) {
	_, ctx := newExec(t, "local", executor.Options{Concurrency: 2})
	peak.Store(0)
	_, err := executor.InvokeAll(ctx, track, make([]int, 50))
	require.NoError(t, err)
	require.LessOrEqual(t, peak.Load(), int64(2))
}

func TestCancel(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			_, ctx := newExec(t, b, executor.Options{Concurrency: 1})
			cctx, cancel := context.WithCancel(ctx)
			f := executor.Go(cctx, block, struct{}{}, executor.WithRetry(executor.RetryPolicy{Attempts: 5}))
			cancel()
			var ee *executor.Error
			require.ErrorAs(t, f.Join(), &ee)
			require.ErrorIs(t, f.Join(), executor.ErrCanceled)
			require.Equal(t, 1, ee.Attempt)
			v, err := executor.Go(ctx, square, 4).Get()
			require.NoError(t, err)
			require.Equal(t, 16, v)
		})
	}
}
