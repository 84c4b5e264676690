package transport

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/paxos"
)

func TestTCPAllPairsAndSelf(t *testing.T) {
	noLeaks(t)
	ctx := testCtx(t)
	nodes := cluster(t, 3, nil)
	const rounds = 50
	for seq := range rounds {
		for _, a := range nodes {
			for _, b := range nodes {
				a.Send(b.id, tag(a.id, seq))
			}
		}
	}
	// Messages sent before the connections exist wait in the queues, so
	// every one arrives, in order, without retransmission.
	for _, b := range nodes {
		eventually(ctx, t, func() bool { return b.rec.count() == 3*rounds },
			"node %d got %d of %d messages", b.id, b.rec.count(), 3*rounds)
		next := map[protocols.NodeID]int{}
		for _, r := range b.rec.all() {
			m := r.m.(paxos.CatchUpReq)
			require.Equal(t, tag(r.from, next[r.from]), m, "FIFO per sender at node %d", b.id)
			next[r.from]++
		}
	}
	// Exactly one connection per pair: 1 dials 2 and 3, 2 dials 3.
	for _, n := range nodes {
		for _, p := range nodes {
			require.Equal(t, p.id != n.id, n.Connected(p.id), "node %d connected to %d", n.id, p.id)
		}
		// Sent is counted once the flush returns, possibly after the
		// receiver already got the bytes.
		eventually(ctx, t, func() bool { return n.Stats().Sent == 3*rounds }, "node %d sent %d", n.id, n.Stats().Sent)
		st := n.Stats()
		require.Equal(t, uint64(3*rounds), st.Received)
		require.Zero(t, st.Dropped)
		require.Zero(t, st.Reconnects)
		require.Equal(t, uint64(n.id-1), st.Accepted, "node %d accepted", n.id)
		require.Equal(t, uint64(3-n.id), st.Dialed, "node %d dialed", n.id)
		require.Equal(t, int64(n.id-1), n.ln.n.Load(), "sockets accepted by node %d", n.id)
	}
}

func TestTCPSelfDeliveryIsAsynchronous(t *testing.T) {
	noLeaks(t)
	ctx := testCtx(t)
	var mu sync.Mutex
	got := make(chan protocols.Message, 1)
	tr, err := NewTCP(Config{
		Self: 1, Listen: "127.0.0.1:0", Codec: paxosCodec(t),
		Handler: func(_ protocols.NodeID, m protocols.Message) {
			mu.Lock() // would deadlock if called from inside Send
			defer mu.Unlock()
			got <- m
		},
	})
	require.NoError(t, err)
	defer tr.Close()
	returnsWithin(ctx, t, "Send to self", func() {
		mu.Lock()
		defer mu.Unlock()
		tr.Send(1, tag(1, 7))
	})
	select {
	case m := <-got:
		require.Equal(t, tag(1, 7), m)
	case <-ctx.Done():
		t.Fatal("message to self never delivered")
	}
}

func TestTCPPeerRestart(t *testing.T) {
	noLeaks(t)
	ctx := testCtx(t)
	nodes := cluster(t, 2, nil)
	n1, n2 := nodes[0], nodes[1]
	sendUntil(ctx, t, n1, 1, n2.rec, 2, tag(1, 1))
	sendUntil(ctx, t, n2, 2, n1.rec, 1, tag(2, 1))

	restart := func(n *node) *node {
		cfg := n.cfg
		require.NoError(t, n.Close())
		cfg.Listener, cfg.Listen = nil, addr(n)
		return start(t, cfg)
	}

	// The acceptor restarts on the same address: the dialer reconnects.
	n2 = restart(n2)
	sendUntil(ctx, t, n1, 1, n2.rec, 2, tag(1, 2))
	sendUntil(ctx, t, n2, 2, n1.rec, 1, tag(2, 2))
	require.Equal(t, uint64(1), n1.Stats().Reconnects)
	require.Equal(t, uint64(2), n1.Stats().Dialed)

	// The dialer restarts: the acceptor takes the new connection.
	n1 = restart(n1)
	sendUntil(ctx, t, n1, 1, n2.rec, 2, tag(1, 3))
	sendUntil(ctx, t, n2, 2, n1.rec, 1, tag(2, 3))
	require.Equal(t, uint64(1), n2.Stats().Reconnects)
	require.Equal(t, uint64(2), n2.Stats().Accepted)
}

func TestTCPRefusesMisconfiguredPeers(t *testing.T) {
	cases := []struct {
		name       string
		goodID     protocols.NodeID
		bad        Config // Peers[goodID] is set to the good node's address
		badAddrKey protocols.NodeID
		reason     string
	}{{
		name:   "wrong cluster name",
		goodID: 2,
		bad:    Config{Cluster: "blue", Self: 1},
		reason: `cluster name "blue" != "red" expected by node 2`,
	}, {
		name:   "unknown node id",
		goodID: 5,
		bad:    Config{Cluster: "red", Self: 4},
		reason: "node 4 is not a configured peer of node 5",
	}, {
		name:       "wrong receiver",
		goodID:     5,
		bad:        Config{Cluster: "red", Self: 1},
		badAddrKey: 3, // the bad node thinks node 3 listens at node 5's address
		reason:     "dialer expected node 3 but this is node 5",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			noLeaks(t)
			ctx := testCtx(t)
			good := start(t, Config{Cluster: "red", Self: tc.goodID, Listen: "127.0.0.1:0",
				Peers: map[protocols.NodeID]string{1: "127.0.0.1:1", tc.goodID + 1: "127.0.0.1:1"}})
			key := tc.goodID
			if tc.badAddrKey != 0 {
				key = tc.badAddrKey
			}
			tc.bad.Listen = "127.0.0.1:0"
			tc.bad.Peers = map[protocols.NodeID]string{key: addr(good)}
			bad := start(t, tc.bad)
			for i := 0; bad.Stats().Rejected < 3; i++ {
				bad.Send(key, tag(bad.id, i))
				select {
				case <-ctx.Done():
					t.Fatalf("the bad node was not refused 3 times: %+v", bad.Stats())
				case <-time.After(5 * time.Millisecond):
				}
			}

			// The acceptor says who it refused and why.
			eventually(ctx, t, func() bool { return len(good.logs.messages("refused peer")) > 0 }, "refusal log")
			msg := good.logs.messages("refused peer")[0]
			require.True(t, strings.HasPrefix(msg, "refused peer "+itoa(bad.id)+" from 127.0.0.1:"), msg)
			require.True(t, strings.HasSuffix(msg, ": "+tc.reason), msg)
			eventually(ctx, t, func() bool { return good.Stats().Refused >= 3 }, "refusals counted")

			// The dialer logs the reason it was given, once, not per retry.
			dialerLogs := bad.logs.messages("refused the connection")
			require.Equal(t, []string{"node " + itoa(key) + " at " + addr(good) + " refused the connection: " + tc.reason}, dialerLogs)

			// Nothing got through.
			require.Zero(t, good.rec.count())
			require.Zero(t, good.Stats().Received)
			require.Zero(t, good.Stats().Accepted)
			require.Zero(t, bad.Stats().Dialed)
		})
	}
}

func itoa(id protocols.NodeID) string { return strconv.FormatUint(uint64(id), 10) }

// rawHello is a handshake built byte by byte from the documented format.
func rawHello(cluster string, from, to uint32) []byte {
	b := []byte("BLSM")
	b = append(b, 1, byte(len(cluster)))
	b = append(b, cluster...)
	b = binary.BigEndian.AppendUint32(b, from)
	return binary.BigEndian.AppendUint32(b, to)
}

// rawFrame is a frame built from the documented format.
func rawFrame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// expectClosed fails unless the node closes c within the test's bounds.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the node did not close the connection")
}

func TestTCPBadInputFromRawConn(t *testing.T) {
	noLeaks(t)
	ctx := testCtx(t)
	// Node 3 is the target; node 2 is a good peer; node 1 is configured
	// but not running, so a raw connection can impersonate it.
	nodes := cluster(t, 3, func(c *Config) {
		c.MaxFrame = 1024
		c.HandshakeTimeout = 500 * time.Millisecond
	})
	require.NoError(t, nodes[0].Close()) // node 1 is down; node 3 does not dial it
	n2, n3 := nodes[1], nodes[2]
	sendUntil(ctx, t, n2, 2, n3.rec, 3, tag(2, 0))

	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr(n3))
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	handshake := func() net.Conn {
		c := dial()
		_, err := c.Write(rawHello("test", 1, 3))
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		require.NoError(t, readReply(c))
		return c
	}

	t.Run("garbage instead of a handshake", func(t *testing.T) {
		c := dial()
		_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		expectClosed(t, c)
		eventually(ctx, t, func() bool { return len(n3.logs.messages("bad magic")) > 0 }, "bad magic log")
	})
	t.Run("truncated handshake", func(t *testing.T) {
		c := dial()
		_, _ = c.Write(rawHello("test", 1, 3)[:7])
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		expectClosed(t, c)
	})
	t.Run("silent connection", func(t *testing.T) {
		expectClosed(t, dial()) // closed after HandshakeTimeout
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			hello  []byte
			reason string
		}{
			{rawHello("test", 4, 3), "node 4 is not a configured peer of node 3"},
			{rawHello("test", 3, 3), "node id 3 is the acceptor's own id"},
			{rawHello("test", 1, 2), "dialer expected node 2 but this is node 3"},
			{rawHello("prod", 1, 3), `cluster name "prod" != "test" expected by node 3`},
			{append([]byte("BLSM\x02"), make([]byte, 20)...), "wire version 2 not supported (want 1)"},
		} {
			c := dial()
			_, err := c.Write(tc.hello)
			require.NoError(t, err)
			require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
			var re refusedError
			require.ErrorAs(t, readReply(c), &re)
			require.Equal(t, tc.reason, re.reason)
			expectClosed(t, c)
		}
		// Only the lower id dials: node 2 refuses node 3.
		refused := n2.Stats().Refused
		c, err := net.Dial("tcp", addr(n2))
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Write(rawHello("test", 3, 2))
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		var re refusedError
		require.ErrorAs(t, readReply(c), &re)
		require.Equal(t, "node 3 must not dial node 2: the lower id dials", re.reason)
		eventually(ctx, t, func() bool { return n2.Stats().Refused == refused+1 }, "refusal counted")
	})
	t.Run("oversized frame", func(t *testing.T) {
		c := handshake()
		_, _ = c.Write(rawFrame(make([]byte, 1025)))
		expectClosed(t, c)
		eventually(ctx, t, func() bool { return n3.Stats().FrameErrors == 1 }, "frame error counted")
		require.NotEmpty(t, n3.logs.messages("frame of 1025 bytes exceeds MaxFrame 1024"))
	})
	t.Run("huge length", func(t *testing.T) {
		c := handshake()
		_, _ = c.Write([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
		expectClosed(t, c)
		eventually(ctx, t, func() bool { return n3.Stats().FrameErrors == 2 }, "frame error counted")
	})
	t.Run("truncated frame", func(t *testing.T) {
		c := handshake()
		_, _ = c.Write(rawFrame(make([]byte, 1000))[:100])
		require.NoError(t, c.(*net.TCPConn).CloseWrite())
		expectClosed(t, c)
	})
	t.Run("undecodable body keeps the connection", func(t *testing.T) {
		c := handshake()
		_, err := c.Write(rawFrame([]byte{0xff, 0xee}))
		require.NoError(t, err)
		good, err := paxos.Codec{}.Marshal(nil, tag(1, 99))
		require.NoError(t, err)
		_, err = c.Write(append(rawFrame(nil), rawFrame(good)...)) // a keepalive, then a message
		require.NoError(t, err)
		eventually(ctx, t, func() bool { return n3.rec.has(1, tag(1, 99)) }, "message after a bad one")
		require.Equal(t, uint64(1), n3.Stats().DecodeErrors)
		require.NotEmpty(t, n3.logs.messages("dropping undecodable message of 2 bytes from node 1"))
	})

	// The node still works for its good peer, both ways.
	sendUntil(ctx, t, n2, 2, n3.rec, 3, tag(2, 1))
	sendUntil(ctx, t, n3, 3, n2.rec, 2, tag(3, 1))
	require.Equal(t, uint64(1), n2.Stats().Dialed, "the good peer's connection survived")
}

func TestTCPSendNeverBlocksWhenPeerIsDown(t *testing.T) {
	noLeaks(t)
	ctx := testCtx(t)
	ln := listen(t)
	down := ln.Addr().String()
	require.NoError(t, ln.Close()) // nobody listens there
	const queueLen = 8
	n := start(t, Config{Self: 1, Listen: "127.0.0.1:0", QueueLen: queueLen,
		Peers: map[protocols.NodeID]string{2: down}})
	returnsWithin(ctx, t, "Send", func() {
		for i := range 10 * queueLen {
			n.Send(2, tag(1, i))
		}
	})
	require.Equal(t, uint64(9*queueLen), n.Stats().Dropped, "all but the last QueueLen are dropped")
	require.False(t, n.Connected(2))
	n.Send(42, tag(1, 0)) // unknown peer
	require.Equal(t, uint64(9*queueLen+1), n.Stats().Dropped)
	eventually(ctx, t, func() bool { return len(n.logs.messages("cannot connect to node 2")) > 0 }, "dial failure log")
}

func TestTCPSendNeverBlocksOnStuckPeer(t *testing.T) {
	noLeaks(t)
	ctx := testCtx(t)
	// A peer that completes the handshake and then never reads.
	ln := listen(t)
	var wg sync.WaitGroup
	var conns []net.Conn
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if _, err := readHello(c); err == nil {
				_, _ = c.Write(appendReply(nil, ""))
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	const queueLen = 16
	n := start(t, Config{Self: 1, Listen: "127.0.0.1:0", QueueLen: queueLen,
		Peers: map[protocols.NodeID]string{2: ln.Addr().String()}})
	eventually(ctx, t, func() bool { return n.Stats().Dialed == 1 }, "connected to the stuck peer")
	big := paxos.Forward{Cmds: []protocols.Command{{Payload: make([]byte, 256<<10)}}}
	returnsWithin(ctx, t, "Send", func() {
		for range 10 * queueLen {
			n.Send(2, big)
		}
	})
	// 40 MiB cannot fit in the queue and the socket buffers.
	require.Positive(t, n.Stats().Dropped)
}

func TestTCPDropsUnencodableAndOversizedMessages(t *testing.T) {
	noLeaks(t)
	nodes := cluster(t, 2, func(c *Config) { c.MaxFrame = 100 })
	n1 := nodes[0]
	n1.Send(2, "not a paxos message")
	n1.Send(2, paxos.Forward{Cmds: []protocols.Command{{Payload: make([]byte, 200)}}})
	require.Equal(t, uint64(2), n1.Stats().Dropped)
	require.NotEmpty(t, n1.logs.messages("dropping string to peer 2"))
	require.NotEmpty(t, n1.logs.messages("dropping paxos.Forward to peer 2"))
}

func TestTCPSendAfterCloseDrops(t *testing.T) {
	noLeaks(t)
	n := cluster(t, 1, nil)[0]
	require.NoError(t, n.Close())
	require.NoError(t, n.Close())
	n.Send(1, tag(1, 0))
	require.Equal(t, uint64(1), n.Stats().Dropped)
}

func TestTCPConfigErrors(t *testing.T) {
	codec := paxosCodec(t)
	h := func(protocols.NodeID, protocols.Message) {}
	ok := Config{Self: 1, Listen: "127.0.0.1:0", Codec: codec, Handler: h}
	for name, mut := range map[string]func(*Config){
		"self 0":         func(c *Config) { c.Self = 0 },
		"no codec":       func(c *Config) { c.Codec = nil },
		"no handler":     func(c *Config) { c.Handler = nil },
		"no listen":      func(c *Config) { c.Listen = "" },
		"long cluster":   func(c *Config) { c.Cluster = strings.Repeat("x", 256) },
		"peer 0":         func(c *Config) { c.Peers = map[protocols.NodeID]string{0: "127.0.0.1:1"} },
		"empty address":  func(c *Config) { c.Peers = map[protocols.NodeID]string{2: ""} },
		"idle too short": func(c *Config) { c.Heartbeat, c.IdleTimeout = 2*time.Second, time.Second },
		"bad listen":     func(c *Config) { c.Listen = "256.0.0.1:x" },
	} {
		cfg := ok
		mut(&cfg)
		_, err := NewTCP(cfg)
		require.Error(t, err, name)
	}
}

// BenchmarkTCPSend measures one-way throughput of small messages between
// two nodes (messages may be dropped when the sender outruns the queue).
func BenchmarkTCPSend(b *testing.B) {
	lns := map[protocols.NodeID]net.Listener{}
	peers := map[protocols.NodeID]string{}
	for id := protocols.NodeID(1); id <= 2; id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(b, err)
		lns[id], peers[id] = ln, ln.Addr().String()
	}
	var got atomic.Int64
	var trs []*TCP
	for id := protocols.NodeID(1); id <= 2; id++ {
		tr, err := NewTCP(Config{Cluster: "bench", Self: id, Listener: lns[id], Peers: peers, Codec: paxosCodec(b),
			Handler: func(protocols.NodeID, protocols.Message) { got.Add(1) }})
		require.NoError(b, err)
		defer tr.Close()
		trs = append(trs, tr)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !trs[0].Connected(2) {
		require.True(b, time.Now().Before(deadline), "never connected")
		time.Sleep(time.Millisecond)
	}
	b.ResetTimer()
	for i := range b.N {
		trs[0].Send(2, tag(1, i))
	}
	for got.Load()+int64(trs[0].Stats().Dropped) < int64(b.N) {
		require.True(b, time.Now().Before(deadline.Add(time.Minute)), "messages neither delivered nor dropped")
		time.Sleep(time.Millisecond)
	}
}
