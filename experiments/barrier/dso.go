package barrier

import (
	"context"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
)

// DSO is a party of the DSO's CyclicBarrier (the deliverable's default
// barrier: a monitor inside one object), with a client of its own holding
// one connection per node.
type DSO struct {
	c *client.Client
	b dso.CyclicBarrier
}

// JoinDSO dials the DSO servers at endpoints and returns a party of the
// CyclicBarrier key for parties parties.
func JoinDSO(ctx context.Context, endpoints []string, key string, parties int) (*DSO, error) {
	c, err := client.DialOptions(ctx, client.Options{Endpoints: endpoints, ConnsPerNode: 1})
	if err != nil {
		return nil, err
	}
	return &DSO{c: c, b: dso.NewCyclicBarrier(c, key, parties)}, nil
}

// Await crosses the next generation of the barrier.
func (b *DSO) Await(ctx context.Context) error {
	_, err := b.b.Await(ctx)
	return err
}

// Close closes the party's client.
func (b *DSO) Close() error { return b.c.Close() }
