package runner

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/wire"
	"github.com/blossom-dso/blossom/replica"
)

// The operations of a KV command: the first payload byte.
const (
	OpPut = 'P' // set the key to the rest of the payload; answers nothing
	OpGet = 'G' // answers the key's value (empty if absent)
)

// Limits of the client API.
const (
	MaxKey   = 1024
	MaxValue = 1 << 20
)

// KV is the replicated key-value state machine of `blossom replica`. It
// implements replica.StateMachine.
type KV struct {
	m map[string][]byte
}

// NewKV returns an empty store.
func NewKV() *KV { return &KV{m: map[string][]byte{}} }

// Apply implements replica.StateMachine: it executes a put or a get on the
// command's first key and answers at once. A command with no key or an
// unknown operation does nothing and answers an empty result.
func (kv *KV) Apply(c protocols.Command, a replica.Answers) {
	a.Answer(c.ID, kv.apply(c))
}

func (kv *KV) apply(c protocols.Command) []byte {
	if len(c.Keys) == 0 || len(c.Payload) == 0 {
		return nil
	}
	switch c.Payload[0] {
	case OpPut:
		kv.m[c.Keys[0]] = slices.Clone(c.Payload[1:])
	case OpGet:
		return kv.m[c.Keys[0]]
	}
	return nil
}

// Get returns a key's value as this replica has it (not linearizable).
func (kv *KV) Get(key string) ([]byte, bool) {
	v, ok := kv.m[key]
	return v, ok
}

// Len is the number of keys.
func (kv *KV) Len() int { return len(kv.m) }

// Snapshot implements replica.StateMachine: pairs sorted by key.
func (kv *KV) Snapshot() ([]byte, error) {
	keys := slices.Sorted(maps.Keys(kv.m))
	b := binary.AppendUvarint(nil, uint64(len(keys)))
	for _, k := range keys {
		b = wire.AppendString(b, k)
		b = wire.AppendBytes(b, kv.m[k])
	}
	return b, nil
}

// Restore implements replica.StateMachine.
func (kv *KV) Restore(snap []byte) error {
	r := wire.NewReader(snap)
	n := r.Count(2)
	m := make(map[string][]byte, n)
	for range n {
		k := r.String()
		m[k] = slices.Clone(r.Bytes())
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("runner: kv snapshot: %w", err)
	}
	kv.m = m
	return nil
}

// Command builds the protocol command of a KV operation.
func Command(id protocols.CommandID, acked uint64, op byte, key string, value []byte) protocols.Command {
	p := make([]byte, 1+len(value))
	p[0] = op
	copy(p[1:], value)
	return protocols.Command{ID: id, Acked: acked, Keys: []string{key}, Payload: p}
}

// GroupOf maps a key to one of groups multicast groups by its FNV-1a hash.
func GroupOf(key string, groups int) protocols.GroupID {
	if groups <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return protocols.GroupID(h.Sum32() % uint32(groups))
}
