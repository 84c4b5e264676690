package executor

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
)

var clients struct {
	sync.Mutex
	m map[string]*client.Client
}

// DSO returns a client of the DSO cluster the executor passes to the
// invocation of ctx (Options.DSO). Clients are dialled once per process and
// cluster and shared by the invocations that run there; do not close them.
// The client presents the credentials of the function's environment
// (client.EnvToken, client.EnvTLSCA, client.EnvTLSCert, client.EnvTLSKey):
// a process or http worker has them from its own environment (a process
// worker inherits its caller's), a Lambda function from its configuration;
// an invocation's payload never carries them.
func DSO(ctx context.Context) (*client.Client, error) {
	info, ok := InvocationOf(ctx)
	if !ok || len(info.DSO) == 0 {
		return nil, fmt.Errorf("executor: no DSO cluster for this invocation (set Options.DSO)")
	}
	key := strings.Join(info.DSO, ",")
	clients.Lock()
	defer clients.Unlock()
	if c := clients.m[key]; c != nil {
		return c, nil
	}
	o := client.Options{Endpoints: info.DSO}
	if err := (client.Credentials{}).FromEnv().Apply(&o); err != nil {
		return nil, fmt.Errorf("executor: the function's DSO credentials: %w", err)
	}
	c, err := client.DialOptions(ctx, o)
	if err != nil {
		return nil, err
	}
	if clients.m == nil {
		clients.m = map[string]*client.Client{}
	}
	clients.m[key] = c
	return c, nil
}

// PersistentDSO returns a Caller of the persistent objects of the DSO
// cluster of the invocation of ctx whose calls apply once however often
// the invocation is retried: every attempt's calls form one replay
// session of the cluster, named by the invocation id (see
// client.Client.ReplaySession), so a retry's k-th call gets the answer the
// first execution of that call had instead of running again. Call it once
// per attempt, and make the calls one at a time and in the same order in
// every attempt (a function whose calls depend only on its arguments and
// their answers does). It needs servers that hold persistent objects
// (--protocol, --rf).
func PersistentDSO(ctx context.Context) (*client.Persistent, error) {
	info, ok := InvocationOf(ctx)
	if !ok {
		return nil, fmt.Errorf("executor: PersistentDSO outside an invocation")
	}
	c, err := DSO(ctx)
	if err != nil {
		return nil, err
	}
	h := fnv.New64a()
	h.Write([]byte("blossom/executor/invocation\x00" + info.ID))
	return c.ReplaySession(h.Sum64()), nil
}

// OnceCounter is a shared counter whose additions are idempotent: each
// addition carries a key, and a second addition under a key already seen
// changes nothing. With keys from Key(ctx, ...), a function that adds and
// then fails adds once however often it is retried.
//
// It is a DSO Map from keys to deltas, and Add is one putIfAbsent: one
// atomic step of the object, so the check and the addition cannot be
// separated by a crash or interleaved with a retry. Value sums the
// entries on the client, in one call but O(keys); the map grows by one
// entry per addition until Reset. It works on ephemeral objects too;
// calls on other ephemeral objects made by a retried function are not
// deduplicated (PersistentDSO deduplicates calls on persistent objects).
type OnceCounter struct{ m dso.Map }

// NewOnceCounter returns a handle on the idempotent counter key.
func NewOnceCounter(c dso.Caller, key string) OnceCounter {
	return OnceCounter{dso.NewMap(c, key)}
}

// Ref returns the reference of the Map that holds the counter.
func (k OnceCounter) Ref() dso.Ref { return k.m.Ref() }

// Add adds delta under key unless an addition under key was made before;
// it reports whether this call applied.
func (k OnceCounter) Add(ctx context.Context, key string, delta int64) (bool, error) {
	old, err := k.m.Call(ctx, "putIfAbsent", key, delta)
	if err != nil {
		return false, err
	}
	return old == nil, nil
}

// Value returns the sum of the additions.
func (k OnceCounter) Value(ctx context.Context) (int64, error) {
	es, err := k.m.Entries(ctx)
	if err != nil {
		return 0, err
	}
	var sum int64
	for key, v := range es {
		n, ok := v.(int64)
		if !ok {
			return 0, fmt.Errorf("executor: OnceCounter %s: entry %q is %T, not int64", k.m.Ref(), key, v)
		}
		sum += n
	}
	return sum, nil
}

// Reset removes every addition.
func (k OnceCounter) Reset(ctx context.Context) error {
	_, err := k.m.Call(ctx, "clear")
	return err
}
