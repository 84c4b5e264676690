package clustertest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/blossom-dso/blossom/lincheck"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/runner"
	"github.com/blossom-dso/blossom/runner/kvclient"
)

// callTimeout bounds one client call, retries included; a call that runs
// out is recorded with an unknown outcome.
const callTimeout = 10 * time.Second

// encodeValue is the unique value client c writes in its i-th operation:
// the string "c<c>-<i>" on the wire, the number (c+1)<<32 | (i+1) in the
// history (never 0, the initial value).
func encodeValue(c, i int) (string, uint64) {
	return fmt.Sprintf("c%d-%d", c, i), uint64(c+1)<<32 | uint64(i+1)
}

// decodeValue maps a value read back to its number in the history: 0 for
// an absent key, and a number no put wrote for anything malformed.
func decodeValue(s string) uint64 {
	if s == "" {
		return 0
	}
	var c, i int
	if n, err := fmt.Sscanf(s, "c%d-%d", &c, &i); err != nil || n != 2 || c < 0 || i < 0 || s != fmt.Sprintf("c%d-%d", c, i) {
		return ^uint64(0)
	}
	_, v := encodeValue(c, i)
	return v
}

// putRecord is one put of the workload, for the lost-write check.
type putRecord struct {
	key        string
	value      uint64
	call, ret  int64 // ret is meaningful only when acked
	acked      bool
	unknown    bool
	clientName string
}

// history records the workload's calls in a lincheck.Recorder and, for
// puts, on the side.
type history struct {
	t0  time.Time
	rec *lincheck.Recorder

	mu   sync.Mutex
	puts map[uint64]*putRecord // by value

	acked, unknown, refused, putsAcked atomic.Int64
}

func newHistory() *history {
	return &history{t0: time.Now(), rec: lincheck.NewRecorder(), puts: map[uint64]*putRecord{}}
}

// now is the history's clock: monotonic nanoseconds since it began.
func (h *history) now() int64 { return int64(time.Since(h.t0)) }

// put performs and records a put of the unique value (name, v).
func (h *history) put(ctx context.Context, cl *kvclient.Client, client int, key, name string, v uint64) error {
	call := h.now()
	id := h.rec.Invoke(client, lincheck.KVInput{Key: key, Put: true, Value: v}, call)
	pr := &putRecord{key: key, value: v, call: call, clientName: name}
	h.mu.Lock()
	h.puts[v] = pr
	h.mu.Unlock()
	err := cl.Put(ctx, key, []byte(name))
	ret := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil:
		h.rec.Ok(id, nil, ret)
		pr.acked, pr.ret = true, ret
		h.acked.Add(1)
		h.putsAcked.Add(1)
	case errors.Is(err, kvclient.ErrRefused):
		h.rec.Fail(id)
		h.refused.Add(1)
	default:
		h.rec.Info(id)
		pr.unknown = true
		h.unknown.Add(1)
	}
	return err
}

// get performs and records a get; it returns the value read.
func (h *history) get(ctx context.Context, cl *kvclient.Client, client int, key string) (string, error) {
	id := h.rec.Invoke(client, lincheck.KVInput{Key: key}, h.now())
	b, err := cl.Get(ctx, key)
	ret := h.now()
	switch {
	case err == nil:
		h.rec.Ok(id, lincheck.KVOutput{Value: decodeValue(string(b))}, ret)
		h.acked.Add(1)
	case errors.Is(err, kvclient.ErrRefused):
		h.rec.Fail(id)
		h.refused.Add(1)
	default:
		h.rec.Info(id)
		h.unknown.Add(1)
	}
	return string(b), err
}

// workload is K client sessions doing puts of unique values and gets on a
// few keys.
type workload struct {
	clients     int
	opsPerCl    int
	keys        []string
	putPercent  int
	think       time.Duration // a session waits up to this long (uniformly) between calls
	seed        uint64
	callParent  context.Context // parent of every call's context
	stopIssuing context.Context // no new call once it ends
}

// run runs the workload against c until every client has made its ops or
// stopIssuing ends; calls already made finish (or run out of time).
func (w workload) run(c *cluster, h *history) {
	var wg sync.WaitGroup
	for k := range w.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(w.seed, uint64(k)))
			cl := kvclient.New(c.clients, kvclient.Options{ID: uint64(k + 1), Groups: c.spec.groups, F: c.spec.f, AttemptTimeout: time.Second})
			for i := 0; i < w.opsPerCl && w.stopIssuing.Err() == nil; i++ {
				key := w.keys[rng.IntN(len(w.keys))]
				ctx, cancel := context.WithTimeout(w.callParent, callTimeout)
				if rng.IntN(100) < w.putPercent {
					name, v := encodeValue(k, i)
					_ = h.put(ctx, cl, k, key, name, v)
				} else {
					_, _ = h.get(ctx, cl, k, key)
				}
				cancel()
				if w.think > 0 {
					select {
					case <-time.After(time.Duration(rng.Int64N(int64(w.think)))):
					case <-w.stopIssuing.Done():
					}
				}
			}
		}()
	}
	wg.Wait()
}

// keysFor returns n keys, and more if needed so that every multicast
// group of c owns at least one.
func keysFor(c *cluster, n int) []string {
	var keys []string
	owned := map[protocols.GroupID]bool{}
	for i := 0; len(keys) < n || len(owned) < max(c.spec.groups, 1); i++ {
		k := fmt.Sprintf("k%d", i)
		g := runner.GroupOf(k, c.spec.groups)
		if len(keys) >= n && owned[g] {
			continue
		}
		owned[g] = true
		keys = append(keys, k)
	}
	return keys
}

// finalReads reads every key once at every replica of its group, through
// a session pinned to that replica, and records the reads in h. It
// returns the values read per key, by replica.
func finalReads(t testing.TB, c *cluster, h *history, keys []string, firstClient int) map[string]map[protocols.NodeID]string {
	t.Helper()
	out := map[string]map[protocols.NodeID]string{}
	client := firstClient
	for _, id := range c.ids {
		cl := kvclient.New(map[protocols.NodeID]string{id: c.clients[id]}, kvclient.Options{})
		for _, key := range keys {
			if !contains(c.group(key), id) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			v, err := h.get(ctx, cl, client, key)
			cancel()
			if err != nil {
				t.Fatalf("final read of %s at replica %d after healing: %v", key, id, err)
			}
			if out[key] == nil {
				out[key] = map[protocols.NodeID]string{}
			}
			out[key][id] = v
		}
		client++
	}
	return out
}

func contains(ids []protocols.NodeID, id protocols.NodeID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// lostWrites counts the acknowledged puts that the final state lost (each
// once, whatever the number of replicas that lost it): for
// each key, the final value must be written by a put that is not older in
// real time than any acknowledged put (a put that returned before an
// acknowledged put was called cannot be the last one), and an absent key
// loses every acknowledged put to it. It returns the count and a
// description of the first few.
func lostWrites(h *history, final map[string]map[protocols.NodeID]string) (int, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	byKey := map[string][]*putRecord{}
	for _, p := range h.puts {
		byKey[p.key] = append(byKey[p.key], p)
	}
	lostSet := map[uint64]bool{}
	var why []string
	keys := make([]string, 0, len(final))
	for k := range final {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		reads := final[key]
		ids := make([]int, 0, len(reads))
		for id := range reads {
			ids = append(ids, int(id))
		}
		sort.Ints(ids)
		for _, id := range ids {
			val := reads[protocols.NodeID(id)]
			fin := h.puts[decodeValue(val)]
			if fin != nil && fin.key != key {
				fin = nil
			}
			for _, p := range byKey[key] {
				if !p.acked || p == fin {
					continue
				}
				if fin == nil || (fin.acked && fin.ret < p.call) {
					lostSet[p.value] = true
					if len(why) < 5 {
						cause := "after the put of that value returned"
						if fin == nil {
							cause = "and no put wrote that value"
						}
						why = append(why, fmt.Sprintf("key %s at replica %d: final value %q, but put %q was acknowledged (called %v, returned %v) %s",
							key, id, val, p.clientName, time.Duration(p.call), time.Duration(p.ret), cause))
					}
				}
			}
		}
	}
	return len(lostSet), why
}

// checkResult is the verdict of a cluster run.
type checkResult struct {
	verdict  lincheck.Verdict
	checker  string
	ops      int
	lost     int
	lostWhy  []string
	linErr   error
	htmlPath string
	// porcupine is Porcupine's own verdict on the same history, with a
	// time limit (it takes milliseconds here); an Unknown fails the test
	// like an Illegal.
	porcupine        lincheck.Verdict
	porcupineElapsed time.Duration
}

// check runs lincheck over the whole history (final reads included) and
// the lost-write check.
func check(t testing.TB, name string, h *history, final map[string]map[protocols.NodeID]string) checkResult {
	t.Helper()
	ops := h.rec.Operations()
	res := lincheck.CheckKV(ops, time.Minute)
	out := checkResult{verdict: res.Verdict, checker: res.Checker, ops: len(ops), linErr: res.Err()}
	if res.Verdict == lincheck.Illegal {
		p := filepath.Join(os.TempDir(), fmt.Sprintf("blossom-clustertest-%s-%d.html", strings.ReplaceAll(name, "/", "_"), time.Now().UnixNano()))
		if err := res.WriteHTML(p); err == nil {
			out.htmlPath = p
		}
	}
	pr := porcupineCheck(ops, porcupineTimeout)
	out.porcupine, out.porcupineElapsed = pr.Verdict, pr.Elapsed
	out.lost, out.lostWhy = lostWrites(h, final)
	return out
}

// porcupineTimeout bounds the Porcupine cross-check of a history.
const porcupineTimeout = 10 * time.Second

// porcupineCheck runs Porcupine itself over ops, for the record.
func porcupineCheck(ops []porcupine.Operation, timeout time.Duration) lincheck.Result {
	return lincheck.Check(lincheck.KVModel, ops, timeout)
}
