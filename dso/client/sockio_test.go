package client_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/wire"
)

// A client that waits for each reply makes one read system call per
// call: the read that found the socket empty after each reply (EAGAIN,
// then a wait for the poller) is spared, as on the server. Reading
// through the net.Conn it made two.
func TestOneReadSystemCallPerSequentialCall(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("package sockio reads sockets on Linux only")
	}
	cl, _ := startCluster(t, 1, dsotest.Options{})
	c := dialOne(t, cl)
	ctx := testCtx(t)
	n := dso.NewAtomicLong(c, "seq")
	_, err := n.AddAndGet(ctx, 1) // the connection is dialled
	require.NoError(t, err)
	before, conns := client.SocketReads(c)
	require.Equal(t, 1, conns, "the connection is not read by a sockio.Socket")
	const calls = 200
	for i := 2; i <= calls+1; i++ {
		v, err := n.AddAndGet(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, int64(i), v)
	}
	after, _ := client.SocketReads(c)
	reads := after - before
	t.Logf("%d read system calls for %d calls", reads, calls)
	require.LessOrEqual(t, reads, int64(calls+calls/20), "more than one read per call")
	require.GreaterOrEqual(t, reads, int64(calls), "fewer reads than replies: the count is wrong")
}

// Replies of every size, small ones several to a read, large ones over
// many reads and beyond the read buffer (read between sessions), arrive
// whole and in their callers' hands, on one connection shared by
// concurrent callers, whether the connection is read by a
// sockio.Socket or through its net.Conn.
func TestRepliesOfEverySizeArriveWhole(t *testing.T) {
	for _, plain := range []bool{false, true} {
		t.Run(fmt.Sprintf("plain=%v", plain), func(t *testing.T) {
			client.SetPlainSocketReads(plain)
			defer client.SetPlainSocketReads(false)
			cl, _ := startCluster(t, 1, dsotest.Options{})
			c := dialOne(t, cl)
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			sizes := []int{0, 1, 100, 4 << 10, 64<<10 - 30, 64 << 10, 200 << 10, 3 << 20}
			value := func(i int) []byte {
				return bytes.Repeat([]byte{byte('a' + i)}, sizes[i])
			}
			for i := range sizes {
				require.NoError(t, dso.NewAtomicReference(c, fmt.Sprint("v", i)).Set(ctx, value(i)))
			}
			if _, conns := client.SocketReads(c); conns != 1 && !plain && runtime.GOOS == "linux" {
				t.Fatal("the connection is not read by a sockio.Socket")
			}
			concurrently(t, 8, func(g int) error {
				for k := range 40 {
					i := (g + k) % len(sizes)
					v, err := dso.NewAtomicReference(c, fmt.Sprint("v", i)).Get(ctx)
					if err != nil {
						return err
					}
					if b, _ := v.([]byte); !bytes.Equal(b, value(i)) {
						return fmt.Errorf("value %d (%d bytes): got %d bytes", i, sizes[i], len(b))
					}
				}
				return nil
			})
		})
	}
}

// concurrently runs f(0), ..., f(n-1) in n goroutines and fails t with
// the first error any returned.
func concurrently(t *testing.T, n int, f func(g int) error) {
	t.Helper()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- f(g)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// hangGuard bounds a test's wait for replies, so that a lost reply fails
// the test with a message instead of hanging it; it is far above any wait
// of a working server, however loaded the machine.
const hangGuard = time.Minute

// A reply cut short by the server's close fails its call as unavailable
// ("unexpected EOF"), whether the cut falls in the frame's header or its
// body.
func TestTruncatedReplyFailsTheCall(t *testing.T) {
	full, err := wire.AppendOK(nil, 0, int64(7))
	require.NoError(t, err)
	for _, cut := range []int{2, 6, len(full) - 1} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			addr := dsoEndpoint(t, func(nc net.Conn, q wire.Request) bool {
				f, _ := wire.AppendOK(nil, q.ID, int64(7))
				nc.Write(f[:cut])
				return false
			})
			c, err := client.DialOptions(context.Background(), client.Options{Endpoints: []string{addr}, NoDiscovery: true, ConnsPerNode: 1})
			require.NoError(t, err)
			defer c.Close()
			_, err = dso.NewAtomicLong(c, "x").Get(context.Background())
			require.ErrorIs(t, err, client.ErrUnavailable)
			require.ErrorContains(t, err, "unexpected EOF")
		})
	}
}

// A call whose arguments cannot be encoded fails with dso.ErrBadArgs
// before anything is written, whoever reads the connection, and the
// connection goes on serving calls.
func TestUnencodableCallFailsAlone(t *testing.T) {
	cl, _ := startCluster(t, 1, dsotest.Options{})
	c := dialOne(t, cl)
	ctx := testCtx(t)
	n := dso.NewAtomicLong(c, "n")
	for i := int64(1); i <= 3; i++ {
		_, err := dso.NewHandle(c, dso.TypeAtomicLong, "n").Call(ctx, "set", make(chan int))
		require.ErrorIs(t, err, dso.ErrBadArgs)
		v, err := n.AddAndGet(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, i, v)
	}
}

// Calls too large for the socket to take at once (a caller reading its
// own reply writes its call without waiting, and leaves the rest to be
// written as other calls are) arrive whole, as do the calls after them,
// sequential and concurrent.
func TestCallsLargerThanTheSocketBufferArriveWhole(t *testing.T) {
	cl, _ := startCluster(t, 1, dsotest.Options{})
	c := dialOne(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 12<<20/16) // 12 MiB: more than loopback's send buffer
	ref := dso.NewAtomicReference(c, "big")
	for i := range 3 {
		big[0] = byte('a' + i)
		require.NoError(t, ref.Set(ctx, big))
		v, err := ref.Get(ctx)
		require.NoError(t, err)
		require.True(t, bytes.Equal(big, v.([]byte)), "round %d: the value read is not the value written", i)
	}
	concurrently(t, 4, func(g int) error {
		r := dso.NewAtomicReference(c, fmt.Sprint("big", g))
		v := bytes.Repeat([]byte{byte(g)}, 5<<20)
		if err := r.Set(ctx, v); err != nil {
			return err
		}
		got, err := r.Get(ctx)
		if err != nil {
			return err
		}
		if !bytes.Equal(v, got.([]byte)) {
			return fmt.Errorf("%s: the value read is not the value written", r.Ref())
		}
		return nil
	})
}

// Callers that read their own replies and the read loop (which reads while
// calls wait, such as barrier awaits) take turns at reading one connection
// without ever reading it at once: rounds of barrier crossings, each
// party also making quick calls, on one shared connection. The read loop
// used to give up reading inside its read session, and a caller starting
// its own session before that one ended crashed the client (a nil session
// function, in bench-dso's barrier run).
func TestReadersOfOneConnectionTakeTurns(t *testing.T) {
	cl, _ := startCluster(t, 1, dsotest.Options{})
	c := dialOne(t, cl)
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	const parties, rounds = 8, 1000
	concurrently(t, parties, func(g int) error {
		b := dso.NewCyclicBarrier(c, "turns", parties)
		n := dso.NewAtomicLong(c, fmt.Sprint("turns", g))
		for i := 1; i <= rounds; i++ {
			if _, err := b.Await(ctx); err != nil {
				return err
			}
			for k := range g % 3 {
				v, err := n.AddAndGet(ctx, 1)
				if err != nil {
					return err
				}
				if want := int64((i-1)*(g%3) + k + 1); v != want {
					return fmt.Errorf("%s: got %d, want %d", n.Ref(), v, want)
				}
			}
		}
		return nil
	})
}
