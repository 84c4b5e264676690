package executor_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/executor"
	"github.com/stretchr/testify/require"
)

// persistentArgs are the arguments of test.persistentIncs: Calls
// increments of the persistent AtomicLong Key, through PersistentDSO (or,
// with Plain, through the client's own session), failing after FailAfter
// of them in attempts up to FailAttempts.
type persistentArgs struct {
	Key              string
	Calls, FailAfter int
	FailAttempts     int
	Plain            bool
}

var persistentIncs = executor.Register("test.persistentIncs", func(ctx context.Context, a persistentArgs) ([]int64, error) {
	var p dso.Caller
	if a.Plain {
		c, err := executor.DSO(ctx)
		if err != nil {
			return nil, err
		}
		p = c.Persistent()
	} else {
		r, err := executor.PersistentDSO(ctx)
		if err != nil {
			return nil, err
		}
		p = r
	}
	info, _ := executor.InvocationOf(ctx)
	var got []int64
	for i := 0; i <= a.Calls; i++ {
		if i == a.FailAfter && info.Attempt <= a.FailAttempts {
			return nil, fmt.Errorf("failing after %d increments, attempt %d", i, info.Attempt)
		}
		if i == a.Calls {
			break
		}
		v, err := dso.NewAtomicLong(p, a.Key).IncrementAndGet(ctx)
		if err != nil {
			return nil, err
		}
		got = append(got, v)
	}
	return got, nil
})

// TestPersistentCallsApplyOnceAcrossRetries runs functions that increment
// a persistent counter and fail part-way in their first attempts: through
// PersistentDSO every increment applies once and the retry sees the first
// execution's answers; through a plain session (the check's control)
// every attempt's increments apply.
func TestPersistentCallsApplyOnceAcrossRetries(t *testing.T) {
	net, err := dsotest.NewNetwork("paxos")
	require.NoError(t, err)
	rep := &dsotest.Replicated{Protocol: "paxos", RF: 3, Dir: t.TempDir(), Net: net}
	cl, err := dsotest.StartCluster(3, dsotest.Options{Replicate: rep.Replicate})
	require.NoError(t, err)
	defer cl.Close()
	ctx := context.Background()
	c, err := client.DialOptions(ctx, client.Options{Endpoints: cl.Endpoints})
	require.NoError(t, err)
	defer c.Close()
	value := func(key string) int64 {
		v, err := dso.NewAtomicLong(c.Persistent(), key).Get(ctx)
		require.NoError(t, err)
		return v
	}

	for _, b := range []string{"local", "process"} {
		t.Run(b, func(t *testing.T) {
			_, ectx := newExec(t, b, executor.Options{DSO: cl.Endpoints,
				Retry: executor.RetryPolicy{Attempts: 3, Backoff: time.Millisecond}})
			for _, a := range []persistentArgs{
				{Calls: 4, FailAfter: 4, FailAttempts: 1}, // fails after all of them
				{Calls: 5, FailAfter: 2, FailAttempts: 2}, // fails half-way, twice
			} {
				a.Key = fmt.Sprintf("%s-%d-%d", b, a.Calls, a.FailAfter)
				got, err := executor.Go(ectx, persistentIncs, a).Get()
				require.NoError(t, err)
				want := make([]int64, a.Calls)
				for i := range want {
					want[i] = int64(i + 1)
				}
				require.Equal(t, want, got, "%+v: the last attempt sees each increment once", a)
				require.Equal(t, int64(a.Calls), value(a.Key), "%+v: each increment applied once", a)

				// The control: without the replay session, the failed
				// attempts' increments count too.
				a.Key += "-plain"
				a.Plain = true
				_, err = executor.Go(ectx, persistentIncs, a).Get()
				require.NoError(t, err)
				require.Equal(t, int64(a.Calls+a.FailAfter*a.FailAttempts), value(a.Key), "%+v", a)
			}

			// Two invocations are two sessions: both apply.
			a := persistentArgs{Key: b + "-two", Calls: 2, FailAfter: -1}
			out, err := executor.InvokeAll(ectx, persistentIncs, []persistentArgs{a, a})
			require.NoError(t, err)
			require.ElementsMatch(t, []int64{1, 2, 3, 4}, append(out[0], out[1]...))
			require.Equal(t, int64(4), value(a.Key))
		})
	}
}
