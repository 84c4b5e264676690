package server_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/server"
)

// Defect 6: a client could not tell that an ephemeral object was made
// again (after a delete, or by a restarted node that had lost it).
func TestIncarnationTellsARecreatedObject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ref := dso.Ref{Type: dso.TypeCounter, Key: "c"}
	dial := func(addr string) *client.Client {
		c, err := client.DialOptions(ctx, client.Options{Endpoints: []string{addr}, Incarnations: true})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	_, addr, _ := serve(t, server.Config{}, nil)
	c := dial(addr)
	_, inc0, err := c.CallIncarnation(ctx, ref, "tally", nil, nil)
	require.NoError(t, err)
	require.Zero(t, inc0, "a read of an absent object created nothing")
	_, inc1, err := c.CallIncarnation(ctx, ref, "increment", nil, nil)
	require.NoError(t, err)
	require.NotZero(t, inc1)
	_, inc, err := c.CallIncarnation(ctx, ref, "tally", nil, nil)
	require.NoError(t, err)
	require.Equal(t, inc1, inc, "same object, same incarnation")
	_, err = c.Delete(ctx, ref)
	require.NoError(t, err)
	_, inc2, err := c.CallIncarnation(ctx, ref, "increment", nil, nil)
	require.NoError(t, err)
	require.NotEqual(t, inc1, inc2, "recreated after a delete")

	// Another server process (a restart without durable storage) makes
	// the object again with another incarnation.
	_, addr2, _ := serve(t, server.Config{}, nil)
	_, inc3, err := dial(addr2).CallIncarnation(ctx, ref, "increment", nil, nil)
	require.NoError(t, err)
	require.NotEqual(t, inc2, inc3)

	// A plain client cannot ask for incarnations by mistake.
	plain, err := client.Dial(ctx, addr)
	require.NoError(t, err)
	defer plain.Close()
	_, _, err = plain.CallIncarnation(ctx, ref, "tally", nil, nil)
	require.ErrorIs(t, err, client.ErrNoIncarnations)
}

// With pmem storage an object survives a restart, and so does its
// incarnation.
func TestIncarnationSurvivesAPmemRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "node.heap")
	ref := dso.Ref{Type: dso.TypeAtomicLong, Key: "l"}
	run := func() (any, uint64) {
		s, err := server.New(server.Config{PmemPath: path, PmemSize: 16 << 20, Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		go s.Serve(l)
		defer s.Close()
		c, err := client.DialOptions(ctx, client.Options{Endpoints: []string{l.Addr().String()}, Incarnations: true})
		require.NoError(t, err)
		defer c.Close()
		v, inc, err := c.CallIncarnation(ctx, ref, "incrementAndGet", nil, nil)
		require.NoError(t, err)
		return v, inc
	}
	v1, inc1 := run()
	v2, inc2 := run()
	require.Equal(t, int64(1), v1)
	require.Equal(t, int64(2), v2, "the state survived")
	require.Equal(t, inc1, inc2, "and so did the incarnation")
}
