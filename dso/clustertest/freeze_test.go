package clustertest

import (
	"context"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
)

// TestParkedAwaitsSurviveFaults parks two of the three parties of a
// persistent CyclicBarrier on the barrier's owner, hits the owner, and
// only then lets the third party arrive; every round must be crossed by
// all three parties, each await returning the round's generation:
//
//   - round 0: the owner is frozen (SIGSTOP) long enough for the parked
//     parties' clients to give it up and resubmit their awaits at the next
//     replica, then continued: it finds their connections closed and
//     withdraws the awaits it was sent, which the other replica answers
//     canceled; the clients must run them again (the test checks, through
//     the nodes' metrics, that this withdrawal did happen);
//   - round 1: the owner is killed (kill -9) and restarted, then the last
//     party arrives;
//   - round 2: the owner is killed and the last party arrives while it is
//     down; then it is restarted;
//   - round 3: first a party gives up (its deadline passes) and another
//     closes its client while parked: both awaits must be withdrawn, so
//     that nobody waits; then the three parties cross.
//
// At the end nobody waits and the barrier is at generation 4.
func TestParkedAwaitsSurviveFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("real-process cluster test; skipped under -short")
	}
	for _, protocol := range []string{"paxos", "atlas", "wbcast"} {
		t.Run(protocol, func(t *testing.T) {
			c := startCluster(t, clusterSpec{protocol: protocol, n: 3, rf: 3, admin: true})
			const key, parties = "parked", 3
			obs := c.dial(context.Background())
			owner := slices.Index(c.addrs, obs.Owner(dso.Ref{Type: dso.TypeCyclicBarrier, Key: key}))
			if owner < 0 {
				t.Fatalf("owner of barrier %s is not among %v", key, c.addrs)
			}
			t.Logf("barrier %s: owner node %d", key, owner+1)
			sessions := make([]*client.Persistent, parties)
			for i := range sessions {
				sessions[i] = c.dial(context.Background()).Persistent()
			}
			type result struct {
				party int
				gen   int64
				err   error
			}
			results := make(chan result, parties)
			await := func(party int) {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), awaitTimeout)
					defer cancel()
					g, err := dso.NewCyclicBarrier(sessions[party], key, parties).Await(ctx)
					results <- result{party, g, err}
				}()
			}
			call := func(method string) int64 {
				t.Helper()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				v, err := dso.NewCyclicBarrier(obs.Persistent(), key, parties).Call(ctx, method)
				if err != nil {
					t.Fatalf("%s: %v", method, err)
				}
				n, _ := dso.AsInt(v)
				return n
			}
			waitParked := func(when string) {
				t.Helper()
				for deadline := time.Now().Add(30 * time.Second); call("getNumberWaiting") != 2; time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("%s: 2 parties are not parked after 30s (waiting: %d)", when, call("getNumberWaiting"))
					}
				}
			}
			noneReturned := func(when string) {
				t.Helper()
				select {
				case r := <-results:
					t.Fatalf("%s: party %d's await returned before the last party arrived: generation %d, error %v", when, r.party, r.gen, r.err)
				default:
				}
			}
			cross := func(round int64) {
				t.Helper()
				for range parties {
					r := <-results
					if r.err != nil || r.gen != round {
						t.Errorf("round %d: party %d's await returned generation %d, error %v; want generation %d", round, r.party, r.gen, r.err, round)
					}
				}
			}

			// Round 0: freeze.
			await(1)
			await(2)
			waitParked("round 0")
			c.signal(owner, syscall.SIGSTOP)
			time.Sleep(3 * time.Second) // the clients give the owner up after two probe intervals (1s)
			c.signal(owner, syscall.SIGCONT)
			time.Sleep(2 * time.Second) // the owner finds the closed connections and withdraws
			noneReturned("round 0, after the freeze")
			waitParked("round 0, after the freeze")
			var withdrawn float64
			for i := range c.procs {
				if i != owner {
					withdrawn += c.metric(i, `blossom_dso_call_errors_total{code="canceled"}`)
				}
			}
			t.Logf("round 0: awaits withdrawn by the continued owner and answered canceled by the other replicas: %v", withdrawn)
			if withdrawn == 0 {
				t.Errorf("round 0: no await was withdrawn by the continued owner: the clients did not move to another replica during the freeze")
			}
			await(0)
			cross(0)

			// Round 1: kill -9 and restart, then the last party.
			await(1)
			await(2)
			waitParked("round 1")
			c.kill9(owner)
			time.Sleep(time.Second)
			c.restart(owner)
			noneReturned("round 1, after the restart")
			waitParked("round 1, after the restart")
			await(0)
			cross(1)

			// Round 2: kill -9; the last party arrives while the owner is
			// down.
			await(1)
			await(2)
			waitParked("round 2")
			c.kill9(owner)
			noneReturned("round 2, owner killed")
			await(0)
			cross(2)
			c.restart(owner)

			// Round 3: an await given up, another whose client closes;
			// neither may count as a party.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := dso.NewCyclicBarrier(sessions[0], key, parties).Await(ctx)
			cancel()
			if err == nil {
				t.Fatalf("round 3: a lone await with a deadline of 1s returned without error")
			}
			closing := c.dial(context.Background())
			closed := make(chan error, 1)
			go func() {
				_, err := dso.NewCyclicBarrier(closing.Persistent(), key, parties).Await(context.Background())
				closed <- err
			}()
			waitWaiting := func(n int64, when string) {
				t.Helper()
				for deadline := time.Now().Add(30 * time.Second); call("getNumberWaiting") != n; time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("%s: %d parties wait after 30s, want %d", when, call("getNumberWaiting"), n)
					}
				}
			}
			waitWaiting(1, "round 3, the await of the client to close")
			closing.Close()
			if err := <-closed; err == nil {
				t.Errorf("round 3: the await of a closed client returned without error")
			}
			waitWaiting(0, "round 3, awaits given up and of a closed client")
			await(0)
			await(1)
			await(2)
			cross(3)

			if n := call("getNumberWaiting"); n != 0 {
				t.Errorf("after the rounds, %d parties wait, want 0", n)
			}
			if g := call("generation"); g != 4 {
				t.Errorf("after the rounds, the barrier is at generation %d, want 4", g)
			}
			for _, e := range c.unexpectedExits() {
				t.Errorf("unexpected exit: %s", e)
			}
		})
	}
}
