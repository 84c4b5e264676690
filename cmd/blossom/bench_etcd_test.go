package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEtcdArgsFormOneCluster(t *testing.T) {
	t.Parallel()
	args := etcdArgs(1, []int{2001, 2002, 2003}, 1000, "d/e2")
	got := strings.Join(args, " ")
	for _, want := range []string{
		"--name e2", "--data-dir d/e2",
		"--listen-client-urls http://127.0.0.1:2002", "--advertise-client-urls http://127.0.0.1:2002",
		"--listen-peer-urls http://127.0.0.1:3002", "--initial-advertise-peer-urls http://127.0.0.1:3002",
		"--initial-cluster e1=http://127.0.0.1:3001,e2=http://127.0.0.1:3002,e3=http://127.0.0.1:3003",
		"--initial-cluster-state new",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}

func TestEtcdVersionOK(t *testing.T) {
	t.Parallel()
	for v, ok := range map[string]bool{"3.4.23": true, "3.6.0": true, "2.3.8": false, "?": false, "": false} {
		if etcdVersionOK(v) != ok {
			t.Errorf("etcdVersionOK(%q) = %v", v, !ok)
		}
	}
}

func TestMissingEtcdNamesThePackage(t *testing.T) {
	t.Parallel()
	_, _, err := startEtcdCluster(context.Background(), "no-such-etcd-binary", 3, t.TempDir(), 1000)
	if err == nil || !strings.Contains(err.Error(), "etcd-server") {
		t.Fatalf("missing etcd: %v", err)
	}
}

func TestRunLoadCountsAndStopsOnError(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	r, err := runLoad(context.Background(), 4, 100*time.Millisecond, func(ctx context.Context, w int, rng *rand.Rand) error {
		calls.Add(1)
		time.Sleep(time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if int64(r.ops) != calls.Load() || r.ops < 4 || r.opsPerS <= 0 {
		t.Fatalf("%+v after %d calls", r, calls.Load())
	}
	if r.p50 < time.Millisecond || r.p99 < r.p50 {
		t.Fatalf("percentiles %v %v", r.p50, r.p99)
	}
	boom := errors.New("boom")
	start := time.Now()
	_, err = runLoad(context.Background(), 4, time.Minute, func(ctx context.Context, w int, rng *rand.Rand) error {
		if w == 2 {
			return boom
		}
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, boom) || time.Since(start) > 10*time.Second {
		t.Fatalf("error run: %v after %v", err, time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := runLoad(ctx, 2, time.Second, func(context.Context, int, *rand.Rand) error { return nil }); err == nil {
		t.Fatal("a canceled run reported a result")
	}
}
