package client_test

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/stretchr/testify/require"
)

// A call written on an idle TLS connection whose server is closing
// gracefully, before the client has read the server's goodbye, is sent
// again on a new connection (to the server restarted on the same address)
// instead of failing with ErrUnavailable. The client's read loop (a TLS
// connection's is always reading) is held back, with the connection's
// last frame (or end) read and not acted on, while the call is written.
// (On plain TCP connections nobody reads while no call is pending: see
// TestGracefulCloseWhileIdleIsReadBeforeTheNextCall and
// TestGoodbyeInAnswerToACallIsRetried.)
func TestCallRacingAGracefulCloseIsRetried(t *testing.T) {
	testCallRacingAGracefulClose(t, true)
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

	defer restartAt(t, ep, so).Close()

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

// A plain TCP connection whose server closed gracefully while it idled
// (nobody reads it then) is read before the next call is written on it:
// the goodbye sends the call on a new connection, to the server restarted
// on the same address.
func TestGracefulCloseWhileIdleIsReadBeforeTheNextCall(t *testing.T) {
	ctx := testCtx(t)
	cl1, err := dsotest.StartCluster(1, dsotest.Options{})
	require.NoError(t, err)
	ep := cl1.Endpoints[0]
	co := client.Options{Endpoints: []string{ep}, ConnsPerNode: 1, NoDiscovery: true, RetryFor: time.Minute}
	client.IdleCheck(&co, time.Nanosecond)
	c, err := client.DialOptions(ctx, co)
	require.NoError(t, err)
	defer c.Close()
	n := dso.NewAtomicLong(c, "n", 0)
	v, err := n.AddAndGet(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
	require.NoError(t, cl1.Close()) // the goodbye and the end wait, unread, in the client's socket

	defer restartAt(t, ep, dsotest.Options{}).Close()
	v, err = n.AddAndGet(ctx, 1)
	require.NoError(t, err, "the call must go to the restarted server")
	require.Equal(t, int64(1), v, "executed once, on the restarted server (which starts from 0)")
}

// A call whose connection's server answers it with its goodbye (it was
// closing, and did not execute the call) is sent again on a new
// connection, whoever reads the goodbye: the caller itself, or the read
// loop while the caller waits.
func TestGoodbyeInAnswerToACallIsRetried(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run("concurrent="+strconv.FormatBool(concurrent), func(t *testing.T) {
			var conns atomic.Int32
			addr := answeringEndpoint(t, func(q wire.Request) []byte {
				if conns.Load() == 1 {
					return wire.AppendError(nil, 0, wire.CodeClosing, "closing")
				}
				f, _ := wire.AppendOK(nil, q.ID, int64(7))
				return f
			}, &conns)
			c, err := client.DialOptions(testCtx(t), client.Options{Endpoints: []string{addr}, NoDiscovery: true, ConnsPerNode: 1, RetryFor: time.Minute})
			require.NoError(t, err)
			defer c.Close()
			calls := 1
			if concurrent {
				calls = 8
			}
			errs := make(chan error, calls)
			for range calls {
				go func() {
					v, err := dso.NewAtomicLong(c, "x").Get(testCtx(t))
					if err == nil && v != 7 {
						err = fmt.Errorf("got %d", v)
					}
					errs <- err
				}()
			}
			for range calls {
				require.NoError(t, <-errs)
			}
			require.GreaterOrEqual(t, conns.Load(), int32(2), "the calls were not sent again")
		})
	}
}

// answeringEndpoint accepts connections (counting them in conns),
// answers a connection's requests other than calls with an empty list,
// and each call with the frame answer returns; a goodbye (id 0) ends the
// connection after it is written.
func answeringEndpoint(t *testing.T, answer func(q wire.Request) []byte, conns *atomic.Int32) string {
	t.Helper()
	return fakeEndpoint(t, func(nc net.Conn) {
		conns.Add(1)
		serveDSO(nc, func(nc net.Conn, q wire.Request) bool {
			f := answer(q)
			nc.Write(f)
			id, _ := wire.PeekID(f[4:])
			return id != 0
		})
	})
}

// A plain TCP connection whose server closed it without a word while it
// idled (a crash, say) is found closed before the next call is written on
// it, and the call goes on a new connection: written on the closed one,
// it would fail as unavailable (its fate unknown).
func TestCloseWhileIdleIsFoundBeforeTheNextCall(t *testing.T) {
	for _, check := range []bool{true, false} {
		t.Run("check="+strconv.FormatBool(check), func(t *testing.T) {
			var conns atomic.Int32
			closed := make(chan struct{})
			addr := fakeEndpoint(t, func(nc net.Conn) {
				first := conns.Add(1) == 1
				serveDSO(nc, func(nc net.Conn, q wire.Request) bool {
					f, _ := wire.AppendOK(nil, q.ID, int64(conns.Load()))
					nc.Write(f)
					if first {
						nc.Close()
						close(closed)
						return false
					}
					return true
				})
			})
			co := client.Options{Endpoints: []string{addr}, NoDiscovery: true, ConnsPerNode: 1, RetryFor: time.Minute}
			if check {
				client.IdleCheck(&co, time.Nanosecond)
			} else {
				client.IdleCheck(&co, -1)
			}
			c, err := client.DialOptions(testCtx(t), co)
			require.NoError(t, err)
			defer c.Close()
			x := dso.NewAtomicLong(c, "x")
			v, err := x.Get(testCtx(t))
			require.NoError(t, err)
			require.Equal(t, int64(1), v)
			<-closed
			v, err = x.Get(testCtx(t))
			if !check {
				require.ErrorIs(t, err, client.ErrUnavailable, "without the check the call goes on the closed connection")
				return
			}
			require.NoError(t, err)
			require.Equal(t, int64(2), v, "answered on a new connection")
		})
	}
}

// restartAt starts a one-node cluster with options so on the address ep,
// where one was closed: a server restarted.
func restartAt(t *testing.T, ep string, so dsotest.Options) *dsotest.Cluster {
	t.Helper()
	host, port, err := net.SplitHostPort(ep)
	require.NoError(t, err)
	so.Host = host
	so.BasePort, err = strconv.Atoi(port)
	require.NoError(t, err)
	cl, err := dsotest.StartCluster(1, so)
	require.NoError(t, err)
	return cl
}
