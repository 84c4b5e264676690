package protocols

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Factory builds a protocol instance from a validated Config.
type Factory func(cfg Config) (Protocol, error)

// Codec turns a protocol's messages into bytes and back. Unmarshal must
// reject malformed, truncated or oversized input with an error (never panic),
// and Unmarshal(Marshal(m)) must equal m for every message the protocol
// sends.
type Codec interface {
	// Marshal appends the encoding of m to buf and returns the result. It
	// returns an error for a message type the protocol does not define.
	Marshal(buf []byte, m Message) ([]byte, error)
	// Unmarshal decodes one message that occupies all of b.
	Unmarshal(b []byte) (Message, error)
}

// Spec is one registered protocol.
type Spec struct {
	// Name is the protocol's registry name, e.g. "paxos".
	Name string
	// New builds an instance.
	New Factory
	// Codec encodes the protocol's messages.
	Codec Codec
	// Contract is the order contract the protocol keeps (Linearizable
	// unless it was registered with RegisterContract).
	Contract Contract
}

var (
	registryMu sync.RWMutex
	registry   = map[string]Spec{}
)

// ErrUnknownProtocol is returned by Lookup for a name nobody registered.
var ErrUnknownProtocol = errors.New("protocols: unknown protocol")

// Register makes a protocol available under name. It is meant to be called
// from a protocol package's init function and panics on a duplicate or empty
// name, which is a programming error.
func Register(name string, f Factory, c Codec) { RegisterContract(name, Linearizable, f, c) }

// RegisterContract is Register for a protocol that keeps the order contract
// k, which may be weaker than Linearizable; runtimes and checks read it
// from Spec.Contract.
func RegisterContract(name string, k Contract, f Factory, c Codec) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if name == "" || f == nil || c == nil {
		panic("protocols: Register needs a name, a factory and a codec")
	}
	if _, dup := registry[name]; dup {
		panic("protocols: duplicate registration of " + name)
	}
	if k > Merge {
		panic("protocols: unknown contract " + k.String())
	}
	registry[name] = Spec{Name: name, New: f, Codec: c, Contract: k}
}

// Lookup returns the protocol registered under name, or an error wrapping
// ErrUnknownProtocol that lists the registered names.
func Lookup(name string) (Spec, error) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	s, ok := registry[name]
	if !ok {
		return Spec{}, fmt.Errorf("%w %q (registered: %v)", ErrUnknownProtocol, name, namesLocked())
	}
	return s, nil
}

// Names lists the registered protocols in sorted order.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return namesLocked()
}

func namesLocked() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// New validates cfg and builds the protocol registered under name.
func New(name string, cfg Config) (Protocol, error) {
	s, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return s.New(cfg)
}
