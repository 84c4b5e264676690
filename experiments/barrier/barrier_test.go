package barrier

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso/dsotest"
)

// The safety checks: parties goroutines cross rounds barriers.
const (
	checkParties = 12
	checkRounds  = 8
	// checkLate is how long the late party of each round waits after the
	// others arrived (CheckOptions.Late).
	checkLate = 200 * time.Millisecond
)

// testCtx bounds a test that would otherwise hang on a barrier that never
// releases; no test asserts on time.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// skipMissing skips the test when a Start function found no server program.
func skipMissing(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, ErrMissing) {
		t.Skipf("skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// joins returns, for a barrier under test, the Join of a barrier named key
// counting the given parties.
type joins func(key string, parties int) Join

func dsoJoins(t *testing.T) joins {
	c, err := dsotest.StartCluster(1, dsotest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return func(key string, parties int) Join {
		return func(ctx context.Context, _ int) (Party, error) { return JoinDSO(ctx, c.Endpoints, key, parties) }
	}
}

func redisJoins(t *testing.T) joins {
	s, err := StartRedis(testCtx(t))
	skipMissing(t, err)
	t.Cleanup(func() { s.Stop() })
	return func(key string, parties int) Join {
		return func(ctx context.Context, _ int) (Party, error) { return JoinRedis(ctx, s.Addrs[0], key, parties) }
	}
}

func zooKeeperJoins(t *testing.T) joins {
	s, err := StartZooKeeper(testCtx(t), 1)
	skipMissing(t, err)
	t.Cleanup(func() { s.Stop() })
	return func(key string, parties int) Join {
		return func(ctx context.Context, _ int) (Party, error) {
			return JoinZooKeeper(ctx, s.Addrs, "/"+key, parties)
		}
	}
}

// checkBarrier checks a barrier implementation: it passes Check over
// repeated rounds, with and without a late party per round, and a barrier
// of it counting one party fewer than take part (an off-by-one release)
// fails it with ErrEarlyLeave.
func checkBarrier(t *testing.T, j joins) {
	ctx := testCtx(t)
	if err := Check(ctx, checkParties, checkRounds, j("ok", checkParties), CheckOptions{}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := Check(ctx, checkParties, checkRounds, j("late", checkParties), CheckOptions{Late: checkLate}); err != nil {
		t.Fatalf("Check with a late party: %v", err)
	}
	// Again on a fresh barrier, with a straggler: only one releasing too
	// early lets the check go on, and it must catch it.
	err := Check(ctx, checkParties, checkRounds, j("short", checkParties-1), CheckOptions{Straggler: true})
	if !errors.Is(err, ErrEarlyLeave) {
		t.Fatalf("Check of a barrier counting %d of %d parties: %v, want %v", checkParties-1, checkParties, err, ErrEarlyLeave)
	}
	t.Logf("planted off-by-one caught: %v", err)
}

func TestDSOBarrier(t *testing.T)       { checkBarrier(t, dsoJoins(t)) }
func TestRedisBarrier(t *testing.T)     { checkBarrier(t, redisJoins(t)) }
func TestZooKeeperBarrier(t *testing.T) { checkBarrier(t, zooKeeperJoins(t)) }

// onlyRounds is a barrier that never waits: every Await returns at once.
type onlyRounds struct{}

func (onlyRounds) Await(context.Context) error { return nil }
func (onlyRounds) Close() error                { return nil }

// Check catches a barrier that does not wait at all whatever the timing
// (with a straggler), and Cross reports a failing party's error.
func TestCheckAndCrossErrors(t *testing.T) {
	ctx := testCtx(t)
	none := func(context.Context, int) (Party, error) { return onlyRounds{}, nil }
	if err := Check(ctx, 4, 3, none, CheckOptions{Straggler: true}); !errors.Is(err, ErrEarlyLeave) {
		t.Fatalf("Check of a barrier that never waits: %v, want %v", err, ErrEarlyLeave)
	}
	boom := errors.New("boom")
	bad := func(_ context.Context, i int) (Party, error) {
		if i == 2 {
			return nil, boom
		}
		return onlyRounds{}, nil
	}
	if _, err := Cross(ctx, 4, 3, bad); !errors.Is(err, boom) {
		t.Fatalf("Cross with a failing join: %v, want %v", err, boom)
	}
	if _, err := Cross(ctx, 0, 3, none); err == nil {
		t.Fatal("Cross of 0 parties: no error")
	}
}

// Cross crosses a real barrier and reports a crossing time.
func TestCrossDSO(t *testing.T) {
	j := dsoJoins(t)
	res, err := Cross(testCtx(t), 8, 5, j("cross", 8))
	if err != nil {
		t.Fatal(err)
	}
	if res.Crossing <= 0 {
		t.Fatalf("crossing time %v", res.Crossing)
	}
	t.Logf("8 parties: %v per crossing (joined in %v)", res.Crossing, res.Join)
}

// A missing server program is reported as ErrMissing with the package to
// install.
func TestStartMissing(t *testing.T) {
	old := ZooKeeperJar
	ZooKeeperJar = "/nonexistent/zookeeper.jar"
	t.Cleanup(func() { ZooKeeperJar = old })
	_, err := StartZooKeeper(context.Background(), 1)
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "zookeeperd") {
		t.Fatalf("StartZooKeeper without the jar: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = StartRedis(context.Background())
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "apt-get install redis-server") {
		t.Fatalf("StartRedis without redis-server: %v", err)
	}
}
