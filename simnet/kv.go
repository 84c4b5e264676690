package simnet

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/wire"
	"github.com/blossom-dso/blossom/replica"
)

// kvMachine is the workload's state machine: a map from key to the last
// value put. A get answers the key's value; a put answers 0. In multicast
// runs a put writes every key of the command.
type kvMachine struct {
	kv        map[string]uint64
	multicast bool
	out       [8]byte
}

// Apply implements replica.StateMachine: every command is answered at
// once.
func (m *kvMachine) Apply(c protocols.Command, a replica.Answers) {
	var out uint64
	if len(c.Keys) > 0 && len(c.Payload) >= minPayload {
		if c.Payload[0] == opPut {
			v := binary.LittleEndian.Uint64(c.Payload[1:])
			m.kv[c.Keys[0]] = v
			if m.multicast {
				for _, k := range c.Keys[1:] {
					m.kv[k] = v
				}
			}
		} else {
			out = m.kv[c.Keys[0]]
		}
	}
	binary.LittleEndian.PutUint64(m.out[:], out)
	a.Answer(c.ID, m.out[:])
}

// isGet is the workload's protocols.Config.ReadOnly: a get only reads.
func isGet(c protocols.Command) bool {
	return len(c.Keys) > 0 && len(c.Payload) >= minPayload && c.Payload[0] != opPut
}

// Snapshot implements replica.StateMachine: the pairs sorted by key.
func (m *kvMachine) Snapshot() ([]byte, error) {
	keys := slices.Sorted(maps.Keys(m.kv))
	b := binary.AppendUvarint(nil, uint64(len(keys)))
	for _, k := range keys {
		b = wire.AppendString(b, k)
		b = binary.AppendUvarint(b, m.kv[k])
	}
	return b, nil
}

// Restore implements replica.StateMachine.
func (m *kvMachine) Restore(snap []byte) error {
	r := wire.NewReader(snap)
	n := r.Count(2)
	kv := make(map[string]uint64, n)
	for range n {
		k := r.String()
		kv[k] = r.Uvarint()
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("simnet: kv snapshot: %w", err)
	}
	m.kv = kv
	return nil
}
