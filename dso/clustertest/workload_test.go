package clustertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/ring"
	"github.com/blossom-dso/blossom/lincheck"
)

// callTimeout bounds one workload call, failovers included; a call that
// runs out is recorded with an unknown outcome.
const callTimeout = 10 * time.Second

// awaitTimeout bounds one barrier await, failovers included.
const awaitTimeout = 30 * time.Second

// slowParty bounds the wait of the slow barrier party before an await.
const slowParty = 800 * time.Millisecond

// mapName is the persistent Map of the workload.
const mapName = "m"

// history records the workload's calls: counter operations for
// lincheck.CounterModel, map operations for lincheck.MapModel, and the
// increments per counter for the lost-increment check.
type history struct {
	counters *lincheck.Recorder
	maps     *lincheck.Recorder

	mu         sync.Mutex
	incAcked   map[string]int64 // acknowledged increments, by counter
	incUnknown map[string]int64 // increments of unknown outcome, by counter
	errs       map[string]int   // errors seen, by a short description

	acked, unknown atomic.Int64 // calls (a multi-object call counts once)
}

func newHistory() *history {
	return &history{
		counters: lincheck.NewWallRecorder(), maps: lincheck.NewWallRecorder(),
		incAcked: map[string]int64{}, incUnknown: map[string]int64{}, errs: map[string]int{},
	}
}

// failed records a call that returned err: its outcome is unknown (every
// error is taken as unknown, which is always sound).
func (h *history) failed(err error) {
	h.unknown.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs[errClass(err)]++
}

// errClass shortens err to its kind, for the error summary.
func errClass(err error) string {
	var re *dso.RemoteError
	switch {
	case errors.As(err, &re):
		return "remote " + re.Code.String()
	case errors.Is(err, client.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, dso.ErrTimeout):
		return "timeout"
	case errors.Is(err, dso.ErrCanceled):
		return "canceled"
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// add performs and records addAndGet(1) on counter key.
func (h *history) add(ctx context.Context, p dso.Caller, client int, key string) {
	id := h.counters.Invoke(client, lincheck.CounterInput{Name: key, Add: true, Delta: 1}, lincheck.Now)
	v, err := dso.NewAtomicLong(p, key).AddAndGet(ctx, 1)
	if err != nil {
		h.counters.Info(id)
		h.failed(err)
		h.mu.Lock()
		h.incUnknown[key]++
		h.mu.Unlock()
		return
	}
	h.counters.Ok(id, lincheck.CounterOutput{Value: v}, lincheck.Now)
	h.acked.Add(1)
	h.mu.Lock()
	h.incAcked[key]++
	h.mu.Unlock()
}

// get performs and records a get of counter key; it returns the value read.
func (h *history) get(ctx context.Context, p dso.Caller, client int, key string) (int64, error) {
	id := h.counters.Invoke(client, lincheck.CounterInput{Name: key}, lincheck.Now)
	v, err := dso.NewAtomicLong(p, key).Get(ctx)
	if err != nil {
		h.counters.Info(id)
		h.failed(err)
		return 0, err
	}
	h.counters.Ok(id, lincheck.CounterOutput{Value: v}, lincheck.Now)
	h.acked.Add(1)
	return v, nil
}

// multiAdd performs and records one multi-object call that increments
// counters a and b (multicast protocols only). The group of a answers
// both results if it holds both counters; an increment whose result it
// does not return is recorded as done with any result.
func (h *history) multiAdd(ctx context.Context, p *client.Persistent, client int, a, b string) {
	keys := []string{a, b}
	ids := make([]int, len(keys))
	calls := make([]dso.Call, len(keys))
	for i, k := range keys {
		ids[i] = h.counters.Invoke(client, lincheck.CounterInput{Name: k, Add: true, Delta: 1}, lincheck.Now)
		calls[i] = dso.Call{Ref: dso.NewAtomicLong(p, k).Ref(), Method: "addAndGet", Args: []any{int64(1)}}
	}
	res, err := p.Multi(ctx, calls)
	if err == nil && len(res) != len(calls) {
		err = fmt.Errorf("multi-object call answered %d results for %d calls: %v", len(res), len(calls), res)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		for i, k := range keys {
			h.counters.Info(ids[i])
			h.incUnknown[k]++
		}
		h.unknown.Add(1)
		h.errs[errClass(err)]++
		return
	}
	for i, k := range keys {
		out := lincheck.CounterOutput{Unknown: true}
		if v, ok := dso.AsInt(res[i]); ok && res[i] != nil {
			out = lincheck.CounterOutput{Value: v}
		}
		h.counters.Ok(ids[i], out, lincheck.Now)
		h.incAcked[k]++
	}
	h.acked.Add(1)
}

// put performs and records a put of the unique value v to the map entry.
func (h *history) put(ctx context.Context, p dso.Caller, client int, entry string, v int64) {
	id := h.maps.Invoke(client, lincheck.MapInput{Name: mapName, Key: entry, Op: lincheck.MapPut, Value: v}, lincheck.Now)
	prev, err := dso.NewMap(p, mapName).Put(ctx, entry, v)
	if err != nil {
		h.maps.Info(id)
		h.failed(err)
		return
	}
	h.maps.Ok(id, mapOutput(prev), lincheck.Now)
	h.acked.Add(1)
}

// mapGet performs and records a get of the map entry; it returns the
// value read.
func (h *history) mapGet(ctx context.Context, p dso.Caller, client int, entry string) (any, error) {
	id := h.maps.Invoke(client, lincheck.MapInput{Name: mapName, Key: entry, Op: lincheck.MapGet}, lincheck.Now)
	v, err := dso.NewMap(p, mapName).Get(ctx, entry)
	if err != nil {
		h.maps.Info(id)
		h.failed(err)
		return nil, err
	}
	h.maps.Ok(id, mapOutput(v), lincheck.Now)
	h.acked.Add(1)
	return v, nil
}

// mapOutput is the MapModel output of a value returned by the Map: nil
// (absent) or an int64. Anything else is recorded as a value no put wrote.
func mapOutput(v any) lincheck.MapOutput {
	if v == nil {
		return lincheck.MapOutput{}
	}
	if n, ok := v.(int64); ok {
		return lincheck.MapOutput{Value: n, Present: true}
	}
	return lincheck.MapOutput{Value: -1, Present: true}
}

// errSummary describes the errors seen, most frequent first.
func (h *history) errSummary() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.errs) == 0 {
		return "none"
	}
	type kv struct {
		k string
		n int
	}
	var l []kv
	for k, n := range h.errs {
		l = append(l, kv{k, n})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].n > l[j].n || (l[i].n == l[j].n && l[i].k < l[j].k) })
	var parts []string
	for _, e := range l {
		parts = append(parts, fmt.Sprintf("%s×%d", e.k, e.n))
	}
	return strings.Join(parts, ", ")
}

// workload is the sessions of the counter and map workload.
type workload struct {
	clients  int
	counters []string
	entries  []string
	multi    bool          // also increment two counters in one multi-object call
	think    time.Duration // a session waits up to this long (uniformly) between calls
	seed     uint64
}

// dial returns the sessions of the workload: one client.Client each.
func (w workload) dial(c *cluster) []*client.Persistent {
	out := make([]*client.Persistent, w.clients)
	for k := range out {
		out[k] = c.dial(context.Background()).Persistent()
	}
	return out
}

// run runs the workload over sessions (one per client) until stopIssuing
// ends; calls already made finish (or run out of time).
func (w workload) run(sessions []*client.Persistent, h *history, stopIssuing context.Context) {
	var wg sync.WaitGroup
	for k, p := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(w.seed, uint64(k)))
			for i := 0; stopIssuing.Err() == nil; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				counter := w.counters[rng.IntN(len(w.counters))]
				entry := w.entries[rng.IntN(len(w.entries))]
				switch r := rng.IntN(100); {
				case r < 40:
					h.add(ctx, p, k, counter)
				case r < 55:
					_, _ = h.get(ctx, p, k, counter)
				case r < 75:
					// A unique value: client and operation number.
					h.put(ctx, p, k, entry, int64(k+1)<<32|int64(i+1))
				case r < 90:
					_, _ = h.mapGet(ctx, p, k, entry)
				case w.multi:
					other := w.counters[(slices.Index(w.counters, counter)+1+rng.IntN(len(w.counters)-1))%len(w.counters)]
					h.multiAdd(ctx, p, k, counter, other)
				default:
					h.add(ctx, p, k, counter)
				}
				cancel()
				if w.think > 0 {
					select {
					case <-time.After(time.Duration(rng.Int64N(int64(w.think)))):
					case <-stopIssuing.Done():
					}
				}
			}
		}()
	}
	wg.Wait()
}

// countersFor returns n counter names, and more if needed so that every
// replica group of a disjoint layout holds at least one.
func countersFor(t testing.TB, c *cluster, n int, disjoint bool) []string {
	t.Helper()
	r, err := ring.New(c.addrs, 0)
	if err != nil {
		t.Fatal(err)
	}
	groups := 1
	if disjoint {
		groups = c.spec.n / c.spec.rf
	}
	var keys []string
	held := map[int]bool{}
	for i := 0; len(keys) < n || len(held) < groups; i++ {
		k := fmt.Sprintf("c%d", i)
		g, _ := r.Group(dso.TypeAtomicLong, k, c.spec.rf, disjoint)
		if len(keys) >= n && held[g] {
			continue
		}
		held[g] = true
		keys = append(keys, k)
	}
	return keys
}

// barrierRun is the record of the barrier parties.
type barrierRun struct {
	key     string
	parties int
	rec     *lincheck.Recorder

	mu       sync.Mutex
	gens     [][]int64 // per party, the generations its awaits returned, in order
	errs     []string  // awaits that failed
	maxSeen  int64     // highest generation returned so far
	stopping bool      // stop was called: parties stop at stopGen
	stopGen  int64     // parties stop after returning a generation ≥ this
}

// runBarrier runs k parties, each with its own client, that await the
// persistent CyclicBarrier key in rounds until stop is called. Party 0 is
// slow: before half of its awaits it waits up to slowParty, so the other
// parties' awaits stay parked for a while, exposed to the nemesis (a
// parked call is replicated state; its client moves to another replica
// when its node dies or freezes). wait returns once every party has
// stopped. After stop, every party goes on to the
// round after the highest generation returned so far, then stops, so that
// all end on the same round. A failed await stops every party (the others'
// awaits are canceled).
func runBarrier(c *cluster, key string, k int, seed uint64) (b *barrierRun, stop func(), wait func()) {
	b = &barrierRun{key: key, parties: k, rec: lincheck.NewWallRecorder(), gens: make([][]int64, k), maxSeen: -1}
	ctx, cancel := context.WithCancel(context.Background())
	c.t.Cleanup(cancel)
	var wg sync.WaitGroup
	for i := range k {
		p := c.dial(context.Background()).Persistent()
		wg.Add(1)
		go func() {
			defer wg.Done()
			bar := dso.NewCyclicBarrier(p, key, k)
			rng := rand.New(rand.NewPCG(seed, uint64(100+i)))
			for {
				if i == 0 && rng.IntN(2) == 0 {
					select {
					case <-time.After(time.Duration(rng.Int64N(int64(slowParty)))):
					case <-ctx.Done():
					}
				}
				actx, acancel := context.WithTimeout(ctx, awaitTimeout)
				in := lincheck.BarrierInput{Name: key, Parties: k}
				arrive := b.rec.Invoke(i, in, lincheck.Now)
				in.Depart = true
				depart := b.rec.Invoke(i, in, lincheck.Now)
				g, err := bar.Await(actx)
				acancel()
				if err != nil {
					b.rec.Info(arrive)
					b.rec.Info(depart)
					b.mu.Lock()
					if ctx.Err() == nil {
						b.errs = append(b.errs, fmt.Sprintf("party %d, await #%d: %v", i, len(b.gens[i])+1, err))
					}
					b.mu.Unlock()
					cancel()
					return
				}
				b.rec.Ok(arrive, nil, lincheck.Now)
				b.rec.Ok(depart, lincheck.BarrierOutput{Generation: g}, lincheck.Now)
				b.mu.Lock()
				b.gens[i] = append(b.gens[i], g)
				b.maxSeen = max(b.maxSeen, g)
				done := b.stopping && g >= b.stopGen
				b.mu.Unlock()
				if done {
					return
				}
			}
		}()
	}
	stop = func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if !b.stopping {
			b.stopping, b.stopGen = true, b.maxSeen+1
		}
	}
	wait = func() {
		wg.Wait()
		cancel()
	}
	return b, stop, wait
}

// check checks the barrier's record: no await failed, every party
// returned the generations 0, 1, 2, ... in order (each party crossed every
// round), so every generation was returned to all parties; and Porcupine
// finds the history linearizable for lincheck.BarrierModel. It returns
// the rounds crossed and the Porcupine verdict.
func (b *barrierRun) check(t testing.TB) (int, lincheck.Verdict) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.errs {
		t.Errorf("barrier %s: %s", b.key, e)
	}
	count := map[int64]int{}
	rounds := -1
	for i, gs := range b.gens {
		for j, g := range gs {
			count[g]++
			if g != int64(j) {
				t.Errorf("barrier %s: party %d's await #%d returned generation %d, want %d (generations %v)", b.key, i, j+1, g, j, gs)
				break
			}
		}
		if rounds < 0 {
			rounds = len(gs)
		} else if len(gs) != rounds && len(b.errs) == 0 {
			t.Errorf("barrier %s: party %d crossed %d rounds, party 0 %d", b.key, i, len(gs), rounds)
		}
	}
	for g, n := range count {
		if n != b.parties && len(b.errs) == 0 {
			t.Errorf("barrier %s: generation %d returned to %d callers, want %d", b.key, g, n, b.parties)
		}
	}
	if len(b.errs) > 0 {
		return max(rounds, 0), lincheck.Unknown
	}
	res := lincheck.Check(lincheck.BarrierModel, b.rec.Operations(), time.Minute)
	if err := res.Err(); err != nil {
		t.Errorf("barrier %s: %v", b.key, err)
	}
	return max(rounds, 0), res.Verdict
}
