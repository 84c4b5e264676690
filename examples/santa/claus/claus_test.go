package claus_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/blossom-dso/blossom/examples/internal/setup"
	"github.com/blossom-dso/blossom/examples/santa/claus"
	"github.com/blossom-dso/blossom/executor"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	executor.MaybeServeWorker()
	os.Exit(m.Run())
}

func TestGoroutines(t *testing.T) {
	for range 50 { // the races of the book's version showed within a few runs
		c := claus.Classic("g", 5, 0)
		r, err := claus.RunGoroutines(context.Background(), claus.Local(), c)
		require.NoError(t, err)
		require.NoError(t, claus.Check(c, r))
	}
}

func TestDSO(t *testing.T) {
	env, err := setup.Start(context.Background(), setup.Flags{Nodes: 3}, setup.Options{})
	require.NoError(t, err)
	defer env.Close()
	c := claus.Classic("dso", 5, 0)
	r, err := claus.RunGoroutines(context.Background(), claus.DSO(env.Client, c.Run), c)
	require.NoError(t, err)
	require.NoError(t, claus.Check(c, r))
	// Short runs: Santa woken by the elves while the last reindeer were
	// coming back once read a count of 4 reindeer and took it for a call.
	for i := range 10 {
		c := claus.Config{Run: fmt.Sprint("short-", i), Reindeer: 9, Elves: 10, Group: 3, Deliveries: 1, Requests: 1}
		r, err := claus.RunGoroutines(context.Background(), claus.DSO(env.Client, c.Run), c)
		require.NoError(t, err)
		require.NoError(t, claus.Check(c, r))
	}
}

func TestCloud(t *testing.T) {
	for _, b := range []string{"local", "process", "http"} {
		t.Run(b, func(t *testing.T) {
			c := claus.Classic("cloud-"+b, 3, 0)
			if b == "process" { // fewer worker processes
				c = claus.Config{Run: c.Run, Reindeer: 3, Elves: 4, Group: 2, Deliveries: 3, Requests: 3, Seed: 1}
			}
			env, err := setup.Start(context.Background(), setup.Flags{Nodes: 3, Backend: b},
				setup.Options{Concurrency: 1 + c.Reindeer + c.Elves, Stderr: io.Discard})
			require.NoError(t, err)
			defer env.Close()
			r, err := claus.RunCloud(env.Context(context.Background()), c)
			require.NoError(t, err)
			require.NoError(t, claus.Check(c, r))
		})
	}
}

// TestCheck shows that Check catches a run that breaks the invariants.
func TestCheck(t *testing.T) {
	c := claus.Config{Reindeer: 2, Elves: 2, Group: 2, Deliveries: 1, Requests: 1}
	ok := claus.Result{
		Santa:    claus.Report{Wakes: []claus.Wake{{Deliver: true, Seen: 2}, {Seen: 2, Left: 2}}, Deliveries: 1, Helps: 1, Served: 2},
		Reindeer: []int{1, 1}, Elves: []int{1, 1},
	}
	require.NoError(t, claus.Check(c, ok))
	bad := ok
	bad.Santa.Wakes = []claus.Wake{{Deliver: true, Seen: 1}, {Seen: 2, Left: 2}}
	require.Error(t, claus.Check(c, bad), "woke with one reindeer")
	bad = ok
	bad.Elves = []int{1, 0}
	require.Error(t, claus.Check(c, bad), "an elf not helped")
	bad = ok
	bad.Santa.Wakes = []claus.Wake{{Deliver: true, Seen: 2}, {Seen: 1, Left: 2}, {Seen: 1, Left: 1}}
	bad.Santa.Helps = 2
	require.Error(t, claus.Check(c, bad), "helped one elf while two were asking")
	require.Error(t, claus.Config{Reindeer: 9, Elves: 2, Group: 3, Requests: 1}.Validate())
}

// A Santa who wakes with nobody waiting fails the run.
func TestSpuriousWake(t *testing.T) {
	o := claus.Local()
	c := claus.Classic("spurious", 1, 0)
	require.NoError(t, o.Semaphore("santaSem", 0).Release(context.Background(), 1))
	_, err := claus.Santa(context.Background(), o, c)
	require.ErrorContains(t, err, "woken with 0 reindeer and 0 elves waiting")
}

// BenchmarkSanta times one classic run (9 reindeer, 10 elves) of each
// variant; the cloud variant runs on the local back end.
func BenchmarkSanta(b *testing.B) {
	env, err := setup.Start(context.Background(), setup.Flags{Nodes: 3}, setup.Options{Concurrency: 20})
	require.NoError(b, err)
	defer env.Close()
	ctx := env.Context(context.Background())
	run := func(name string, f func(claus.Config) (claus.Result, error)) {
		b.Run(name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				c := claus.Classic(fmt.Sprint("bench-", name, i), 5, 0)
				r, err := f(c)
				require.NoError(b, err)
				require.NoError(b, claus.Check(c, r))
			}
		})
	}
	run("goroutines", func(c claus.Config) (claus.Result, error) { return claus.RunGoroutines(ctx, claus.Local(), c) })
	run("dso", func(c claus.Config) (claus.Result, error) {
		return claus.RunGoroutines(ctx, claus.DSO(env.Client, c.Run), c)
	})
	run("cloud", func(c claus.Config) (claus.Result, error) { return claus.RunCloud(ctx, c) })
}
