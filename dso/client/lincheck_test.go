package client_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/lincheck"
)

// runHistory starts a 3-node cluster, runs body concurrently for each of
// the clients (each with its own connection and random source), and checks
// the recorded history against model. A violation writes Porcupine's
// visualization next to the test's temporary files and fails.
func runHistory(t *testing.T, model porcupine.Model, clients, opsPerClient int,
	body func(ctx context.Context, c *client.Client, rng *rand.Rand, rec *lincheck.Recorder, id int)) {
	t.Helper()
	cl, err := dsotest.StartCluster(3, dsotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	rec := lincheck.NewWallRecorder()
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		c, err := client.DialOptions(ctx, client.Options{Endpoints: cl.Endpoints, ConnsPerNode: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for n := 0; n < opsPerClient; n++ {
				body(ctx, c, rng, rec, i)
			}
		}(i)
	}
	wg.Wait()
	ops := rec.Operations()
	res := lincheck.Check(model, ops, 30*time.Second)
	if err := res.Err(); err != nil {
		path := filepath.Join(t.TempDir(), "violation.html")
		if werr := res.WriteHTML(path); werr == nil {
			if keep := os.Getenv("BLOSSOM_LINCHECK_DIR"); keep != "" {
				data, _ := os.ReadFile(path)
				os.WriteFile(filepath.Join(keep, t.Name()+".html"), data, 0o644)
			}
		}
		t.Fatalf("%d operations: %v", len(ops), err)
	}
}

// record runs one call between an invoke and its completion: ok with the
// output, fail for a definite error, info when the outcome is unknown.
func record(rec *lincheck.Recorder, proc int, input any, call func() (any, error)) {
	id := rec.Invoke(proc, input, -1)
	out, err := call()
	switch {
	case err == nil:
		rec.Ok(id, out, -1)
	case errors.Is(err, client.ErrUnavailable) || errors.Is(err, dso.ErrCanceled) || errors.Is(err, dso.ErrTimeout):
		rec.Info(id)
	default:
		rec.Fail(id)
	}
}

func TestCounterHistoryIsLinearizable(t *testing.T) {
	t.Parallel()
	runHistory(t, lincheck.CounterModel, 8, 60, func(ctx context.Context, c *client.Client, rng *rand.Rand, rec *lincheck.Recorder, id int) {
		name := fmt.Sprint("c", rng.IntN(3))
		k := dso.NewCounter(c, name)
		if rng.IntN(2) == 0 {
			d := int64(rng.IntN(5) - 1)
			record(rec, id, lincheck.CounterInput{Name: name, Add: true, Delta: d}, func() (any, error) {
				v, err := k.Increment(ctx, d)
				return lincheck.CounterOutput{Value: v}, err
			})
		} else {
			record(rec, id, lincheck.CounterInput{Name: name}, func() (any, error) {
				v, err := k.Tally(ctx)
				return lincheck.CounterOutput{Value: v}, err
			})
		}
	})
}

func TestCASLongHistoryIsLinearizable(t *testing.T) {
	t.Parallel()
	runHistory(t, lincheck.CASModel, 8, 60, func(ctx context.Context, c *client.Client, rng *rand.Rand, rec *lincheck.Recorder, id int) {
		key := fmt.Sprint("r", rng.IntN(3))
		a := dso.NewAtomicLong(c, key)
		switch rng.IntN(3) {
		case 0:
			v := int64(rng.IntN(4))
			record(rec, id, lincheck.CASInput{Key: key, Op: lincheck.CASWrite, Value: v}, func() (any, error) {
				return nil, a.Set(ctx, v)
			})
		case 1:
			o, n := int64(rng.IntN(4)), int64(rng.IntN(4))
			record(rec, id, lincheck.CASInput{Key: key, Op: lincheck.CASCompareAndSet, Old: o, New: n}, func() (any, error) {
				ok, err := a.CompareAndSet(ctx, o, n)
				return lincheck.CASOutput{Swapped: ok}, err
			})
		default:
			record(rec, id, lincheck.CASInput{Key: key, Op: lincheck.CASRead}, func() (any, error) {
				v, err := a.Get(ctx)
				return lincheck.CASOutput{Value: v}, err
			})
		}
	})
}

func TestMapHistoryIsLinearizablePerKey(t *testing.T) {
	t.Parallel()
	runHistory(t, lincheck.MapModel, 8, 80, func(ctx context.Context, c *client.Client, rng *rand.Rand, rec *lincheck.Recorder, id int) {
		m := dso.NewMap(c, "m")
		key := fmt.Sprint("k", rng.IntN(4))
		v := int64(rng.IntN(5))
		op := lincheck.MapOp(rng.IntN(4))
		out := func(x any, err error) (any, error) {
			n, ok := x.(int64)
			return lincheck.MapOutput{Value: n, Present: ok}, err
		}
		record(rec, id, lincheck.MapInput{Name: "m", Key: key, Op: op, Value: v}, func() (any, error) {
			switch op {
			case lincheck.MapGet:
				return out(m.Get(ctx, key))
			case lincheck.MapPut:
				return out(m.Put(ctx, key, v))
			case lincheck.MapRemove:
				return out(m.Remove(ctx, key))
			default:
				return out(m.Merge(ctx, key, v, "sum"))
			}
		})
	})
}

func TestSetHistoryIsLinearizable(t *testing.T) {
	t.Parallel()
	runHistory(t, lincheck.SetModel, 8, 80, func(ctx context.Context, c *client.Client, rng *rand.Rand, rec *lincheck.Recorder, id int) {
		s := dso.NewSet(c, "s")
		e := fmt.Sprint("e", rng.IntN(4))
		op := lincheck.SetOp(rng.IntN(3))
		record(rec, id, lincheck.SetInput{Name: "s", Op: op, Elem: e}, func() (any, error) {
			var b bool
			var err error
			switch op {
			case lincheck.SetAdd:
				b, err = s.Add(ctx, e)
			case lincheck.SetRemove:
				b, err = s.Remove(ctx, e)
			default:
				b, err = s.Contains(ctx, e)
			}
			return lincheck.SetOutput{Result: b}, err
		})
	})
}

func TestListHistoryIsLinearizable(t *testing.T) {
	t.Parallel()
	var seq sync.Map
	runHistory(t, lincheck.ListModel, 6, 30, func(ctx context.Context, c *client.Client, rng *rand.Rand, rec *lincheck.Recorder, id int) {
		l := dso.NewList(c, "l")
		switch rng.IntN(3) {
		case 0:
			n, _ := seq.LoadOrStore(id, new(int))
			*n.(*int)++
			v := fmt.Sprintf("%d.%d", id, *n.(*int))
			record(rec, id, lincheck.ListInput{Name: "l", Op: lincheck.ListAdd, Value: v}, func() (any, error) {
				return nil, l.Add(ctx, v)
			})
		case 1:
			record(rec, id, lincheck.ListInput{Name: "l", Op: lincheck.ListRead}, func() (any, error) {
				vs, err := l.ToList(ctx)
				out := make([]string, len(vs))
				for i, v := range vs {
					out[i], _ = v.(string)
				}
				return lincheck.ListOutput{Values: out}, err
			})
		default:
			record(rec, id, lincheck.ListInput{Name: "l", Op: lincheck.ListRemoveAt, Index: 0}, func() (any, error) {
				v, err := l.RemoveAt(ctx, 0)
				if errors.Is(err, dso.ErrFailed) {
					return lincheck.ListOutput{OK: false}, nil
				}
				s, _ := v.(string)
				return lincheck.ListOutput{Value: s, OK: true}, err
			})
		}
	})
}

func TestPipeHistoryIsLinearizable(t *testing.T) {
	t.Parallel()
	const capacity = 2
	// Even clients put and odd ones take, so every blocked call is released.
	var seq sync.Map
	runHistory(t, lincheck.PipeModel, 6, 40, func(ctx context.Context, c *client.Client, rng *rand.Rand, rec *lincheck.Recorder, id int) {
		p := dso.NewPipe(c, "p", capacity)
		// Every call is bounded, so a call left without a partner (takes
		// outnumber successful puts) ends as an unknown outcome.
		ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		in := lincheck.PipeInput{Name: "p", Capacity: capacity}
		if id%2 == 0 {
			n, _ := seq.LoadOrStore(id, new(int))
			*n.(*int)++
			in.Value = fmt.Sprintf("%d.%d", id, *n.(*int))
			if rng.IntN(2) == 0 {
				in.Op = lincheck.PipePut
				record(rec, id, in, func() (any, error) { return nil, p.Put(ctx, in.Value) })
			} else {
				in.Op = lincheck.PipeOffer
				record(rec, id, in, func() (any, error) {
					ok, err := p.Handle.Call(ctx, "offer", in.Value)
					return lincheck.PipeOutput{OK: ok == true}, err
				})
			}
			return
		}
		in.Op = lincheck.PipeTake
		record(rec, id, in, func() (any, error) {
			v, err := p.Take(ctx)
			s, _ := v.(string)
			return lincheck.PipeOutput{Value: s, OK: true}, err
		})
	})
}

func TestBarrierGenerationsAreLinearizable(t *testing.T) {
	t.Parallel()
	const parties = 5
	runHistory(t, lincheck.BarrierModel, parties, 15, func(ctx context.Context, c *client.Client, rng *rand.Rand, rec *lincheck.Recorder, id int) {
		b := dso.NewCyclicBarrier(c, "gen", parties)
		arrive := rec.Invoke(id, lincheck.BarrierInput{Name: "gen", Parties: parties}, -1)
		depart := rec.Invoke(id, lincheck.BarrierInput{Name: "gen", Parties: parties, Depart: true}, -1)
		g, err := b.Await(ctx)
		if err != nil {
			rec.Info(arrive)
			rec.Info(depart)
			return
		}
		rec.Ok(arrive, nil, -1)
		rec.Ok(depart, lincheck.BarrierOutput{Generation: g}, -1)
	})
}

// lossyCounter is a planted bug: every fifth increment reports its effect
// but does not apply it.
type lossyCounter struct{ v, calls int64 }

func (c *lossyCounter) Invoke(inv *dso.Invocation) (any, error) {
	if inv.Method == "tally" {
		return c.v, nil
	}
	d := inv.IntOr(0, 1)
	if c.calls++; c.calls%5 == 0 {
		return c.v + d, nil
	}
	c.v += d
	return c.v, nil
}

// TestCheckerCatchesAPlantedLostUpdate runs the counter history check
// against a server whose counter loses updates: the check must fail, so
// the passing checks above are evidence, not vacuous.
func TestCheckerCatchesAPlantedLostUpdate(t *testing.T) {
	t.Parallel()
	cl, err := dsotest.StartCluster(1, dsotest.Options{Register: func(r *dso.Registry) error {
		return r.Register("LossyCounter", func([]any) (dso.Object, error) { return &lossyCounter{}, nil })
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	c, err := cl.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rec := lincheck.NewWallRecorder()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			h := dso.NewHandle(c, "LossyCounter", "k")
			for i := 0; i < 10; i++ {
				record(rec, w, lincheck.CounterInput{Name: "k", Add: true, Delta: 1}, func() (any, error) {
					v, err := h.Call(ctx, "increment", int64(1))
					n, _ := v.(int64)
					return lincheck.CounterOutput{Value: n}, err
				})
			}
		}(w)
	}
	wg.Wait()
	record(rec, 0, lincheck.CounterInput{Name: "k"}, func() (any, error) {
		v, err := dso.NewHandle(c, "LossyCounter", "k").Call(ctx, "tally")
		n, _ := v.(int64)
		return lincheck.CounterOutput{Value: n}, err
	})
	res := lincheck.Check(lincheck.CounterModel, rec.Operations(), 30*time.Second)
	if res.Verdict != lincheck.Illegal {
		t.Fatalf("verdict %s for a counter that loses updates, want illegal", res.Verdict)
	}
}
