package server_test

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
)

// tlsCluster starts a one-node cluster with mutual TLS and three tokens,
// and returns it and the directory of its certificates.
func tlsCluster(t *testing.T) (*dsotest.Cluster, string) {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, dsotest.WriteCerts(dir, []string{"127.0.0.1", "localhost"}, time.Hour))
	stls, err := dsotest.ServerTLS(filepath.Join(dir, dsotest.ServerCertFile), filepath.Join(dir, dsotest.ServerKeyFile), filepath.Join(dir, dsotest.CACertFile))
	require.NoError(t, err)
	tokens, err := server.ParseTokens(strings.NewReader("# test tokens\nro-token read\nrw-token write\nadmin-token admin\n"))
	require.NoError(t, err)
	cl, err := dsotest.StartCluster(1, dsotest.Options{TLS: stls, Tokens: tokens})
	require.NoError(t, err)
	t.Cleanup(func() { cl.Close() })
	return cl, dir
}

func tlsDial(t *testing.T, cl *dsotest.Cluster, dir, token string, clientCert bool) (*client.Client, error) {
	t.Helper()
	cert, key := "", ""
	if clientCert {
		cert, key = filepath.Join(dir, dsotest.ClientCertFile), filepath.Join(dir, dsotest.ClientKeyFile)
	}
	ctls, err := client.LoadTLS(filepath.Join(dir, dsotest.CACertFile), cert, key)
	require.NoError(t, err)
	c, err := client.DialOptions(context.Background(), client.Options{Endpoints: cl.Endpoints, TLS: ctls, Token: token,
		RetryFor: 200 * time.Millisecond, DialTimeout: 5 * time.Second})
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// Defect 3: any client could list, reset or delete any object.
func TestTokensGrantReadWriteAdminOverMutualTLS(t *testing.T) {
	t.Parallel()
	cl, dir := tlsCluster(t)
	ctx := context.Background()
	ref := dso.Ref{Type: dso.TypeCounter, Key: "c"}

	rw, err := tlsDial(t, cl, dir, "rw-token", true)
	require.NoError(t, err)
	v, err := rw.Call(ctx, ref, "increment", []any{int64(5)}, nil)
	require.NoError(t, err)
	require.Equal(t, int64(5), v)
	_, err = rw.Call(ctx, ref, "reset", nil, nil)
	require.ErrorIs(t, err, dso.ErrDenied)
	_, err = rw.Delete(ctx, ref)
	require.ErrorIs(t, err, dso.ErrDenied)

	ro, err := tlsDial(t, cl, dir, "ro-token", true)
	require.NoError(t, err)
	v, err = ro.Call(ctx, ref, "tally", nil, nil)
	require.NoError(t, err)
	require.Equal(t, int64(5), v)
	for _, m := range []string{"increment", "reset"} {
		_, err = ro.Call(ctx, ref, m, nil, nil)
		require.ErrorIs(t, err, dso.ErrDenied, m)
	}
	_, err = ro.Call(ctx, dso.Ref{Type: dso.TypeCounter, Key: "absent"}, "increment", nil, nil)
	require.ErrorIs(t, err, dso.ErrDenied, "a denied call creates nothing")
	_, err = ro.List(ctx, "")
	require.ErrorIs(t, err, dso.ErrDenied)
	_, err = ro.Delete(ctx, ref)
	require.ErrorIs(t, err, dso.ErrDenied)

	admin, err := tlsDial(t, cl, dir, "admin-token", true)
	require.NoError(t, err)
	refs, err := admin.List(ctx, "")
	require.NoError(t, err)
	require.Equal(t, []dso.Ref{ref}, refs)
	_, err = admin.Call(ctx, ref, "reset", nil, nil)
	require.NoError(t, err)
	ok, err := admin.Delete(ctx, ref)
	require.NoError(t, err)
	require.True(t, ok)

	_, err = tlsDial(t, cl, dir, "wrong-token", true)
	require.ErrorIs(t, err, dso.ErrDenied)
	none, err := tlsDial(t, cl, dir, "", true)
	if err == nil { // MEMBERS needs read rights: the dial itself is refused
		_, err = none.Call(ctx, ref, "tally", nil, nil)
	}
	require.ErrorIs(t, err, dso.ErrDenied)
}

func TestMutualTLSRefusesClientsWithoutCertificate(t *testing.T) {
	t.Parallel()
	cl, dir := tlsCluster(t)
	_, err := tlsDial(t, cl, dir, "admin-token", false)
	require.Error(t, err)
	// A plain-TCP client gets no DSO answer either.
	_, err = client.DialOptions(context.Background(), client.Options{Endpoints: cl.Endpoints, RetryFor: 100 * time.Millisecond, DialTimeout: 2 * time.Second})
	require.Error(t, err)
}

// A client without TLS dialling a TLS server is told that the server wants
// TLS (it got "node unavailable: ...: EOF" when it sent a token first: the
// server closed the connection on the failed handshake without a word).
func TestPlainClientOfATLSServerIsToldToUseTLS(t *testing.T) {
	t.Parallel()
	cl, _ := tlsCluster(t)
	for _, token := range []string{"admin-token", ""} {
		_, err := client.DialOptions(context.Background(), client.Options{Endpoints: cl.Endpoints, Token: token,
			RetryFor: 100 * time.Millisecond, DialTimeout: 5 * time.Second})
		require.Error(t, err, "token %q", token)
		t.Logf("token %q: %v", token, err)
		require.ErrorIs(t, err, dso.ErrDenied, "token %q", token)
		require.Contains(t, err.Error(), "requires TLS", "token %q", token)
	}
}
