package dso_test

import (
	"context"
	"fmt"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
)

// Histogram is a user-defined shared object: its exported methods run on
// the server that holds it.
type Histogram struct{ Buckets map[string]int64 }

// Add counts one value into its bucket and returns the bucket's count.
func (h *Histogram) Add(bucket string) (int64, error) {
	if h.Buckets == nil {
		h.Buckets = map[string]int64{}
	}
	h.Buckets[bucket]++
	return h.Buckets[bucket], nil
}

// Snapshot returns every bucket.
func (h *Histogram) Snapshot() (map[string]int64, error) { return h.Buckets, nil }

func ExampleRegisterType() {
	// Servers register the type once (here: a 3-node cluster in-process).
	cl, err := dsotest.StartCluster(3, dsotest.Options{Register: func(r *dso.Registry) error {
		return dso.RegisterType(r, func() *Histogram { return &Histogram{} })
	}})
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	ctx := context.Background()
	c, err := cl.Dial(ctx)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	// Clients call its methods through type-checked stubs: the method
	// expression names the remote method and fixes argument and result types.
	h := dso.NewShared[Histogram](c, "latency")
	for _, b := range []string{"fast", "slow", "fast"} {
		if _, err := dso.Call1(ctx, h, (*Histogram).Add, b); err != nil {
			panic(err)
		}
	}
	snap, err := dso.Call0(ctx, h, (*Histogram).Snapshot)
	fmt.Println(snap, err)
	// Output: map[fast:2 slow:1] <nil>
}

func ExampleNewAtomicLong() {
	cl, err := dsotest.StartCluster(1, dsotest.Options{})
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	ctx := context.Background()
	c, err := cl.Dial(ctx)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	hits := dso.NewAtomicLong(c, "hits")
	n, err := hits.AddAndGet(ctx, 5)
	fmt.Println(n, err)
	// Output: 5 <nil>
}
