package executor_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/executor"
)

var incr = executor.Register("test.incr", func(ctx context.Context, key string) (int64, error) {
	cl, err := executor.DSO(ctx)
	if err != nil {
		return 0, err
	}
	return dso.NewAtomicLong(cl, key).IncrementAndGet(ctx)
})

// securedCluster starts one DSO server that requires mutual TLS and a
// token, and returns it with the directory of its test CA.
func securedCluster(t *testing.T) (*dsotest.Cluster, string) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, dsotest.WriteCerts(dir, []string{"127.0.0.1", "localhost"}, time.Hour))
	stls, err := dsotest.ServerTLS(filepath.Join(dir, dsotest.ServerCertFile), filepath.Join(dir, dsotest.ServerKeyFile), filepath.Join(dir, dsotest.CACertFile))
	require.NoError(t, err)
	tokens, err := server.ParseTokens(strings.NewReader("fn-token write\n"))
	require.NoError(t, err)
	cl, err := dsotest.StartCluster(1, dsotest.Options{TLS: stls, Tokens: tokens})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return cl, dir
}

// Functions reach a secured cluster with the credentials of their
// environment (a process worker inherits its caller's), and without them
// they are refused. Not parallel: it sets the environment.
func TestFunctionsPresentTheirEnvironmentsCredentials(t *testing.T) {
	for _, b := range []string{"local", "process"} {
		t.Run(b, func(t *testing.T) {
			// Without credentials: the TLS handshake or the token check fails.
			bare, _ := securedCluster(t)
			_, ctx := newExec(t, b, executor.Options{DSO: bare.Endpoints, Retry: executor.RetryPolicy{Attempts: 1}})
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			_, err := executor.Go(cctx, incr, "n").Get()
			require.Error(t, err, "a function without credentials reached a secured cluster")

			// With them (a new cluster, so no client is cached).
			cl, dir := securedCluster(t)
			t.Setenv(client.EnvToken, "fn-token")
			t.Setenv(client.EnvTLSCA, filepath.Join(dir, dsotest.CACertFile))
			t.Setenv(client.EnvTLSCert, filepath.Join(dir, dsotest.ClientCertFile))
			t.Setenv(client.EnvTLSKey, filepath.Join(dir, dsotest.ClientKeyFile))
			_, ctx = newExec(t, b, executor.Options{DSO: cl.Endpoints})
			for want := int64(1); want <= 2; want++ {
				v, err := executor.Go(ctx, incr, "n").Get()
				require.NoError(t, err)
				require.Equal(t, want, v)
			}

			// A token that does not exist is refused.
			other, dir := securedCluster(t)
			t.Setenv(client.EnvToken, "no-such-token")
			t.Setenv(client.EnvTLSCA, filepath.Join(dir, dsotest.CACertFile))
			t.Setenv(client.EnvTLSCert, filepath.Join(dir, dsotest.ClientCertFile))
			t.Setenv(client.EnvTLSKey, filepath.Join(dir, dsotest.ClientKeyFile))
			_, ctx = newExec(t, b, executor.Options{DSO: other.Endpoints, Retry: executor.RetryPolicy{Attempts: 1}})
			_, err = executor.Go(ctx, incr, "n").Get()
			require.Error(t, err)
			require.Contains(t, err.Error(), "token")
		})
	}
}
