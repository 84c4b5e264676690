package client_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/wire"
)

// frozenNode accepts connections and answers MEMBERS (with an empty
// list) if answerMembers, and nothing else, ever: a node that froze.
func frozenNode(t *testing.T, answerMembers bool) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			go func() {
				br := bufio.NewReader(nc)
				for {
					body, err := wire.ReadFrame(br, nil, 1<<20)
					if err != nil {
						return
					}
					q, err := wire.DecodeRequest(body)
					if err == nil && q.Op == wire.OpMembers && answerMembers {
						f, _ := wire.AppendOK(nil, q.ID, []any{})
						nc.Write(f)
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// Defect 4: an endpoint that accepts but never answers hung Dial for ever.
func TestDialMovesOnFromAnEndpointThatNeverAnswers(t *testing.T) {
	t.Parallel()
	cl, err := dsotest.StartCluster(2, dsotest.Options{})
	require.NoError(t, err)
	defer cl.Close()
	frozen := frozenNode(t, false)
	ctx := context.Background()
	c, err := client.DialOptions(ctx, client.Options{Endpoints: []string{frozen, cl.Endpoints[0]}, RequestTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	require.ElementsMatch(t, cl.Endpoints, c.Members())
	v, err := c.Call(ctx, dso.Ref{Type: dso.TypeCounter, Key: "c"}, "increment", nil, nil)
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
}

// Defect 4: a call without a deadline to a node that froze hung for ever;
// it now fails with ErrUnavailable once the node misses a ping.
func TestCallToAFrozenNodeFails(t *testing.T) {
	t.Parallel()
	frozen := frozenNode(t, true)
	ctx := context.Background()
	c, err := client.DialOptions(ctx, client.Options{Endpoints: []string{frozen}, ProbeInterval: 20 * time.Millisecond, RetryFor: 50 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Call(ctx, dso.Ref{Type: dso.TypeCounter, Key: "c"}, "increment", nil, nil)
	require.ErrorIs(t, err, client.ErrUnavailable)
	require.ErrorContains(t, err, "not even to a ping")
	_, err = c.List(ctx, "")
	require.ErrorIs(t, err, client.ErrUnavailable)
}

// A call parked on a live node is not mistaken for a frozen node: the
// server answers the watchdog's pings while the call waits. The watchdog's
// clock is the test's, so that the check does not depend on how fast a
// loaded machine answers: each round, the watchdog finds no frame since
// its last check and sends a PING, the test waits until the answer is
// read, and the watchdog's next check must find the node alive.
func TestParkedCallOutlivesTheWatchdog(t *testing.T) {
	t.Parallel()
	cl, err := dsotest.StartCluster(1, dsotest.Options{})
	require.NoError(t, err)
	defer cl.Close()
	ctx := context.Background()
	tick := make(chan time.Time)
	events := make(chan string)
	// One connection, so that one watchdog takes the ticks.
	opts := client.Options{Endpoints: cl.Endpoints, ConnsPerNode: 1, NoDiscovery: true}
	client.ProbeClock(&opts, tick, events)
	c, err := client.DialOptions(ctx, opts)
	require.NoError(t, err)
	defer c.Close()
	ref := dso.Ref{Type: dso.TypeFuture, Key: "f"}
	got := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, ref, "get", nil, nil)
		got <- err
	}()
	check := func() string {
		tick <- time.Time{}
		return <-events
	}
	before := client.FramesRead(c)
	for check() != "probe" { // until the call is in flight
		before = client.FramesRead(c)
	}
	for round := 0; round < 20; round++ {
		waitFor(t, func() bool { return client.FramesRead(c) != before }) // the PING's answer
		require.Equal(t, "quiet", check(), "round %d", round)
		before = client.FramesRead(c)
		require.Equal(t, "probe", check(), "round %d", round)
	}
	select {
	case err := <-got:
		t.Fatalf("the parked call returned before its future was set: %v", err)
	default:
	}
	_, err = cl.Servers[0].Invoke(ctx, ref, "set", []any{int64(1)}, nil)
	require.NoError(t, err)
	require.NoError(t, <-got)
}

// Refused connections on every endpoint fail fast, without back-off.
func TestDialFailsFastWhenEveryEndpointRefuses(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	_, err = client.DialOptions(context.Background(), client.Options{Endpoints: []string{addr, addr}, RetryFor: time.Hour})
	require.ErrorIs(t, err, client.ErrUnavailable)
	require.ErrorContains(t, err, "refused")
}

// Defect 12: List failed outright when one node was down; it now lists
// what the others hold and names the node that did not answer.
func TestListNamesTheNodeThatDidNotAnswer(t *testing.T) {
	t.Parallel()
	cl, err := dsotest.StartCluster(3, dsotest.Options{})
	require.NoError(t, err)
	defer cl.Close()
	ctx := context.Background()
	c, err := client.DialOptions(ctx, client.Options{Endpoints: cl.Endpoints, RetryFor: 100 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	var refs []dso.Ref
	for i := 0; i < 30; i++ {
		r := dso.Ref{Type: dso.TypeCounter, Key: fmt.Sprint("c", i)}
		_, err := c.Call(ctx, r, "increment", nil, nil)
		require.NoError(t, err)
		refs = append(refs, r)
	}
	down := cl.Endpoints[1]
	require.NoError(t, cl.Servers[1].Close())
	got, err := c.List(ctx, "")
	var lerr *client.ListError
	require.ErrorAs(t, err, &lerr)
	require.Equal(t, []string{down}, lerr.Failed)
	require.ErrorContains(t, err, down)
	var want []dso.Ref
	for _, r := range refs {
		if c.Owner(r) != down {
			want = append(want, r)
		}
	}
	require.NotEmpty(t, want)
	require.ElementsMatch(t, want, got)
}

// fakeEndpoint listens on loopback until the test ends, runs serve on each
// connection it accepts and then closes the connection; it returns the
// address.
func fakeEndpoint(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				serve(nc)
				nc.Close()
			}()
		}
	}()
	return l.Addr().String()
}

// dsoEndpoint accepts connections and reads DSO requests on each: it
// answers those that are not calls with an empty list (a dial's MEMBERS or
// PING) and hands each call to onCall, which answers it as it likes; the
// connection ends when onCall returns false, or at the client's close.
func dsoEndpoint(t *testing.T, onCall func(nc net.Conn, q wire.Request) bool) string {
	t.Helper()
	return fakeEndpoint(t, func(nc net.Conn) { serveDSO(nc, onCall) })
}

// serveDSO reads DSO requests on nc, answering those that are not calls
// with an empty list and handing each call to onCall, until onCall
// returns false or the connection ends.
func serveDSO(nc net.Conn, onCall func(nc net.Conn, q wire.Request) bool) {
	br := bufio.NewReader(nc)
	for {
		body, err := wire.ReadFrame(br, nil, 1<<20)
		if err != nil {
			return
		}
		q, err := wire.DecodeRequest(body)
		if err != nil {
			return
		}
		if q.Op != wire.OpCall {
			f, _ := wire.AppendOK(nil, q.ID, []any{})
			nc.Write(f)
			continue
		}
		if !onCall(nc, q) {
			return
		}
	}
}

// Defect 13: a non-DSO endpoint gave "frame too large: 1213486160 bytes".
func TestForeignProtocolIsRecognised(t *testing.T) {
	t.Parallel()
	addr := fakeEndpoint(t, func(nc net.Conn) { // an HTTP server's answer to a request it cannot parse
		nc.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
	})
	_, err := client.DialOptions(context.Background(), client.Options{Endpoints: []string{addr}})
	require.ErrorIs(t, err, client.ErrUnavailable)
	require.ErrorIs(t, err, wire.ErrForeign)
	require.ErrorContains(t, err, "does not speak the DSO protocol (got HTTP)")
	require.Equal(t, 1, strings.Count(err.Error(), "dso/client:"), err.Error())
}

// An endpoint that closes the connection without a word (a TLS server of
// an older version, say) is described as such, with or without a HELLO
// first; with a token the client reported a bare "EOF".
func TestSilentCloseIsExplained(t *testing.T) {
	t.Parallel()
	addr := fakeEndpoint(t, func(nc net.Conn) { nc.Read(make([]byte, 64)) }) // the first frame, then close
	for _, token := range []string{"tok", ""} {
		_, err := client.DialOptions(context.Background(), client.Options{Endpoints: []string{addr}, Token: token, RetryFor: 100 * time.Millisecond})
		require.ErrorIs(t, err, client.ErrUnavailable, "token %q", token)
		require.ErrorContains(t, err, "closed the connection without answering (does it want TLS", "token %q", token)
	}
}
