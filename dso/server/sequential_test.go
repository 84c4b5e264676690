package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
)

// sequentialReads sums, over the servers of pc, the reads of the
// sequential level served locally and those sent through the log, from
// their metrics (blossom_dso_replica_reads_total).
func sequentialReads(t *testing.T, pc *pcluster) (local, logged float64) {
	t.Helper()
	for _, s := range pc.cl.Servers {
		reg := prometheus.NewPedanticRegistry()
		require.NoError(t, reg.Register(s))
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() != "blossom_dso_replica_reads_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				require.Equal(t, "sequential", labels["level"])
				switch labels["path"] {
				case "local":
					local += m.GetCounter().GetValue()
				case "log":
					logged += m.GetCounter().GetValue()
				default:
					t.Fatalf("path %q", labels["path"])
				}
			}
		}
	}
	return local, logged
}

// TestSequentialReadsAreLocal checks that the sequential level serves
// reads from the replica a client talks to: four goroutines of two
// clients each increment their own sequential counter, call a
// linearizable object (so that the session's numbers at the sequential
// level have gaps) and read the counter back, 25 times; every read sees
// the goroutine's own increments and never goes back (read-your-writes,
// monotonic reads), and the servers' metrics count at least 90% of the
// reads as served locally.
func TestSequentialReadsAreLocal(t *testing.T) {
	pc := startLevels(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const rounds = 25
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 2 {
		c := pc.dial(t)
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- func() error {
					cnt := dso.NewCounter(c.Persistent().At(degradable.Sequential), fmt.Sprintf("seq-%d-%d", i, j))
					lin := dso.NewAtomicLong(c.Persistent(), "lin")
					last := int64(0)
					for r := range rounds {
						if _, err := cnt.Increment(ctx, 1); err != nil {
							return err
						}
						if _, err := lin.AddAndGet(ctx, 1); err != nil {
							return err
						}
						v, err := cnt.Tally(ctx)
						if err != nil {
							return err
						}
						if v < int64(r+1) || v < last {
							return fmt.Errorf("round %d of %d.%d: read %d after %d increments and a read of %d", r, i, j, v, r+1, last)
						}
						last = v
					}
					return nil
				}()
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	local, logged := sequentialReads(t, pc)
	t.Logf("sequential reads: %v local, %v through the log", local, logged)
	require.Equal(t, float64(4*rounds), local+logged, "every read counted once")
	require.GreaterOrEqual(t, local, 0.9*(local+logged), "reads were not served locally")
}
