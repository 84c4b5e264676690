package client_test

import (
	"context"
	"testing"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/dsotest"
)

func BenchmarkSequentialAddAndGet(b *testing.B) {
	_, c := startCluster(b, 1, dsotest.Options{})
	a := dso.NewAtomicLong(c, "bench")
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.AddAndGet(ctx, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParallelAddAndGetDisjointObjects(b *testing.B) {
	_, c := startCluster(b, 1, dsotest.Options{})
	ctx := context.Background()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		a := dso.NewAtomicLong(c, "bench")
		for pb.Next() {
			if _, err := a.AddAndGet(ctx, 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
