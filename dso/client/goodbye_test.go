package client_test

import (
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/stretchr/testify/require"
)

// A call written on an idle connection whose server is closing gracefully,
// before the client has read the server's goodbye, is sent again on a new
// connection (to the server restarted on the same address) instead of
// failing with ErrUnavailable. The client's read loop is held back, with
// the connection's last frame (or end) read and not acted on, while the
// call is written.
func TestCallRacingAGracefulCloseIsRetried(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run("tls="+strconv.FormatBool(useTLS), func(t *testing.T) {
			t.Parallel()
			testCallRacingAGracefulClose(t, useTLS)
		})
	}
}

func testCallRacingAGracefulClose(t *testing.T, useTLS bool) {
	ctx := testCtx(t)
	var so dsotest.Options
	var co client.Options
	if useTLS {
		dir := t.TempDir()
		require.NoError(t, dsotest.WriteCerts(dir, []string{"127.0.0.1"}, time.Hour))
		var err error
		so.TLS, err = dsotest.ServerTLS(filepath.Join(dir, dsotest.ServerCertFile), filepath.Join(dir, dsotest.ServerKeyFile), "")
		require.NoError(t, err)
		co.TLS, err = client.LoadTLS(filepath.Join(dir, dsotest.CACertFile), "", "")
		require.NoError(t, err)
	}
	cl1, err := dsotest.StartCluster(1, so)
	require.NoError(t, err)
	ep := cl1.Endpoints[0]

	var hold atomic.Bool
	held := make(chan error, 1)
	release := make(chan struct{})
	client.ReadHook(&co, func(err error) {
		if hold.CompareAndSwap(true, false) {
			held <- err
			<-release
		}
	})
	co.Endpoints, co.ConnsPerNode, co.NoDiscovery = []string{ep}, 1, true
	co.RetryFor = time.Minute
	c, err := client.DialOptions(ctx, co)
	require.NoError(t, err)
	defer c.Close()
	n := dso.NewAtomicLong(c, "n", 0)
	v, err := n.AddAndGet(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, int64(1), v)

	hold.Store(true)
	closed := make(chan error, 1)
	go func() { closed <- cl1.Close() }()
	t.Logf("the client read, and has not acted on: %v", <-held)

	host, port, err := net.SplitHostPort(ep)
	require.NoError(t, err)
	so.Host = host
	so.BasePort, err = strconv.Atoi(port)
	require.NoError(t, err)
	cl2, err := dsotest.StartCluster(1, so)
	require.NoError(t, err)
	defer cl2.Close()

	type result struct {
		v   int64
		err error
	}
	res := make(chan result, 1)
	go func() {
		v, err := n.AddAndGet(ctx, 1)
		res <- result{v, err}
	}()
	for client.Pending(c) == 0 { // the call is on the old connection
		time.Sleep(time.Millisecond)
	}
	close(release)
	r := <-res
	require.NoError(t, r.err, "a call the closing server never read must be sent again")
	require.Equal(t, int64(1), r.v, "executed once, on the restarted server (which starts from 0)")
	require.NoError(t, <-closed)
}
