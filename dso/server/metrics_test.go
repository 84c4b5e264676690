package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/server"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// metricsNode starts a one-node cluster whose server's metrics an admin
// handler (without pprof) serves, and dials it; all is closed when the
// test ends. It returns the client, the metrics' registry and the admin
// handler's URL.
func metricsNode(t *testing.T) (*client.Client, *prometheus.Registry, string) {
	t.Helper()
	cl, err := dsotest.StartCluster(1, dsotest.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(cl.Servers[0]))
	admin := httptest.NewServer(server.AdminHandler(reg, false))
	t.Cleanup(admin.Close)
	c, err := cl.Dial(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, reg, admin.URL
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	c, reg, adminURL := metricsNode(t)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		_, err := dso.NewAtomicLong(c, "a").IncrementAndGet(ctx)
		require.NoError(t, err)
	}
	_, err := dso.NewAtomicLong(c, "b").Get(ctx) // a read: no object made
	require.NoError(t, err)
	_, err = dso.NewHandle(c, dso.TypeAtomicLong, "a").Call(ctx, "noSuchMethod")
	require.ErrorIs(t, err, dso.ErrUnknownMethod)
	_, err = dso.NewHandle(c, "NoSuchType", "a").Call(ctx, "get")
	require.ErrorIs(t, err, dso.ErrUnknownType)
	_, err = dso.NewCounter(c, "n").Increment(ctx, 2)
	require.NoError(t, err)

	code, body := get(t, adminURL+"/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, want := range []string{
		`blossom_dso_calls_total{method="incrementAndGet",type="AtomicLong"} 5`,
		`blossom_dso_calls_total{method="get",type="AtomicLong"} 1`,
		`blossom_dso_calls_total{method="unknown",type="AtomicLong"} 1`,
		`blossom_dso_calls_total{method="increment",type="Counter"} 1`,
		`blossom_dso_call_errors_total{code="unknown method"} 1`,
		`blossom_dso_call_errors_total{code="unknown type"} 1`,
		`blossom_dso_call_duration_seconds_count{type="AtomicLong"} 7`,
		`blossom_dso_objects{type="AtomicLong"} 1`,
		`blossom_dso_objects{type="Counter"} 1`,
		`blossom_dso_parked_calls 0`,
	} {
		require.Contains(t, body, want+"\n")
	}
	for _, name := range []string{"blossom_dso_connections ", "blossom_dso_read_bytes_total ", "blossom_dso_written_bytes_total "} {
		i := strings.Index(body, "\n"+name)
		require.GreaterOrEqual(t, i, 0, name)
		require.NotEqual(t, "0", strings.Fields(body[i+1:])[1], name)
	}

	code, _ = get(t, adminURL+"/debug/pprof/")
	require.Equal(t, http.StatusNotFound, code, "pprof without withPprof")
	withPprof := httptest.NewServer(server.AdminHandler(reg, true))
	defer withPprof.Close()
	code, body = get(t, withPprof.URL+"/debug/pprof/")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "goroutine")
}

// TestMetricsParkedCalls checks the parked-call gauge and that a made-up
// method name does not become a label.
func TestMetricsParkedCalls(t *testing.T) {
	t.Parallel()
	c, _, adminURL := metricsNode(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- dso.NewCountDownLatch(c, "l", 1).Await(ctx) }()
	require.Eventually(t, func() bool {
		_, body := get(t, adminURL+"/metrics")
		return strings.Contains(body, "blossom_dso_parked_calls 1\n")
	}, 10e9, 10e6)
	_, err := dso.NewHandle(c, dso.TypeCountDownLatch, "l").Call(ctx, "madeUp1234")
	require.Error(t, err)
	_, err = dso.NewCountDownLatch(c, "l", 1).CountDown(ctx)
	require.NoError(t, err)
	require.NoError(t, <-done)
	_, body := get(t, adminURL+"/metrics")
	require.Contains(t, body, "blossom_dso_parked_calls 0\n")
	require.NotContains(t, body, "madeUp1234")
}

// A method name that is not valid UTF-8, in a call that fails otherwise
// than as an unknown method (here: a CyclicBarrier without its parties),
// is counted under "other": as a label value it made the Prometheus client
// panic, and the server process with it (found by FuzzConnection).
func TestMethodNameNotUTF8IsCountedAsOther(t *testing.T) {
	t.Parallel()
	c, _, adminURL := metricsNode(t)
	ctx := context.Background()
	_, err := dso.NewHandle(c, dso.TypeCyclicBarrier, "b").Call(ctx, "aw\xd9it")
	require.Error(t, err)
	require.NotErrorIs(t, err, dso.ErrUnknownMethod, "the test needs another error")
	require.NoError(t, c.Ping(ctx), "the server died")
	code, body := get(t, adminURL+"/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `blossom_dso_calls_total{method="other",type="CyclicBarrier"} 1`+"\n")
}
