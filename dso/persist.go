package dso

import (
	"fmt"
	"slices"

	"github.com/blossom-dso/blossom/dso/wire"
)

// Persister is implemented by objects whose state a server can keep in
// durable storage (blossom server --storage pmem:PATH): MarshalState encodes
// the whole state, UnmarshalState replaces the state of an object made by
// its type's constructor with no arguments. The server calls both with the
// object's lock held. Objects whose meaning includes parked calls (barriers,
// semaphores, futures, ...) do not implement it, and a server with durable
// storage refuses to create them; they implement ParkedPersister instead.
// MarshalState is deterministic: equal states give equal bytes (maps are
// encoded with AppendCanonical).
type Persister interface {
	MarshalState() ([]byte, error)
	UnmarshalState([]byte) error
}

// ParkedPersister is implemented by objects whose whole state, the calls
// parked on them included, can be encoded and rebuilt: the synchronization
// objects (CyclicBarrier, Semaphore, CountDownLatch, Future, Rendezvous,
// Pipe), and Matrix and Blob, which park nothing and are not Persisters
// (the pmem server keeps refusing them). A replicated object table
// (package dso/replicated) uses it to snapshot objects whose parked calls
// are part of the replicated state. Its caller runs it under the same
// exclusion as Invoke.
type ParkedPersister interface {
	// MarshalParked encodes the whole state: the object's own values and,
	// queue by queue in their order, the ID and Data of every parked call
	// (Waiter.ID, Waiter.Data). Equal states give equal bytes.
	MarshalParked() ([]byte, error)
	// UnmarshalParked replaces the state of an object just made by
	// Registry.Blank (its type's constructor with no arguments, or a
	// placeholder) with the state b encodes. For
	// every parked call, in the order MarshalParked wrote them, it calls
	// revive with the call's ID and Data; revive returns the waiter to
	// queue in its place (the object sets its Data) or an error, which
	// UnmarshalParked returns at once. Malformed or inconsistent b gives an
	// error, never a panic; after an error the object must be dropped.
	UnmarshalParked(b []byte, revive func(id string, data any) (*Waiter, error)) error
}

// ReadOnlyMethods is implemented by persistent objects that can tell which
// methods never change their state; the server does not re-save the state
// after those. Without it, the state is encoded after every successful call
// (and written only if it changed).
type ReadOnlyMethods interface {
	ReadOnly(method string) bool
}

// readMethods are the methods that only read, for every library type that
// implements Persister (no such type has a mutating method of these names).
var readMethods = map[string]bool{
	"get": true, "intValue": true, "longValue": true, "length": true, "tally": true,
	"toArray": true, "contains": true, "containsKey": true, "getOrDefault": true,
	"size": true, "isEmpty": true, "keySet": true, "values": true, "entries": true,
	"toMap": true, "members": true, "toList": true, "indexOf": true, "subList": true,
	"firstKey": true, "lastKey": true, "ceilingKey": true, "floorKey": true,
	"higherKey": true, "lowerKey": true, "range": true,
}

func marshalValue(v any) ([]byte, error) { return AppendCanonical(nil, v) }

func unmarshalValue(b []byte, typ string) (any, error) {
	v, err := wire.DecodeValue(b)
	if err != nil {
		return nil, fmt.Errorf("dso: %s state: %w", typ, err)
	}
	return v, nil
}

func badState(typ string, v any) error {
	return fmt.Errorf("dso: %s state: unexpected %s", typ, typeName(v))
}

// ReadOnly implements ReadOnlyMethods.
func (a *atomicInteger) ReadOnly(m string) bool { return readMethods[m] }

// MarshalState implements Persister: the value.
func (a *atomicInteger) MarshalState() ([]byte, error) { return marshalValue(a.v) }

// UnmarshalState implements Persister.
func (a *atomicInteger) UnmarshalState(b []byte) error {
	v, err := unmarshalValue(b, "AtomicLong/AtomicInt")
	if err != nil {
		return err
	}
	x, ok := v.(int64)
	if !ok {
		return badState("AtomicLong/AtomicInt", v)
	}
	if _, err := fitBits(x, a.bits); err != nil {
		return badState("AtomicInt", v)
	}
	a.v = x
	return nil
}

// ReadOnly implements ReadOnlyMethods.
func (a *atomicBoolean) ReadOnly(m string) bool { return readMethods[m] }

// MarshalState implements Persister.
func (a *atomicBoolean) MarshalState() ([]byte, error) { return marshalValue(a.v) }

// UnmarshalState implements Persister.
func (a *atomicBoolean) UnmarshalState(b []byte) error {
	v, err := unmarshalValue(b, TypeAtomicBoolean)
	if err != nil {
		return err
	}
	x, ok := v.(bool)
	if !ok {
		return badState(TypeAtomicBoolean, v)
	}
	a.v = x
	return nil
}

// ReadOnly implements ReadOnlyMethods.
func (a *atomicReference) ReadOnly(m string) bool { return readMethods[m] }

// MarshalState implements Persister.
func (a *atomicReference) MarshalState() ([]byte, error) { return marshalValue(a.v) }

// UnmarshalState implements Persister.
func (a *atomicReference) UnmarshalState(b []byte) error {
	v, err := unmarshalValue(b, TypeAtomicReference)
	if err != nil {
		return err
	}
	a.v = v
	return nil
}

// ReadOnly implements ReadOnlyMethods.
func (a *atomicByteArray) ReadOnly(m string) bool { return readMethods[m] }

// MarshalState implements Persister: the bytes.
func (a *atomicByteArray) MarshalState() ([]byte, error) {
	b := make([]byte, len(a.b))
	for i, x := range a.b {
		b[i] = byte(x)
	}
	return marshalValue(b)
}

// UnmarshalState implements Persister.
func (a *atomicByteArray) UnmarshalState(b []byte) error {
	v, err := unmarshalValue(b, TypeAtomicByteArray)
	if err != nil {
		return err
	}
	x, ok := v.([]byte)
	if !ok {
		return badState(TypeAtomicByteArray, v)
	}
	a.b = make([]int8, len(x))
	for i, c := range x {
		a.b[i] = int8(c)
	}
	return nil
}

// ReadOnly implements ReadOnlyMethods.
func (c *counter) ReadOnly(m string) bool { return readMethods[m] }

// MarshalState implements Persister.
func (c *counter) MarshalState() ([]byte, error) { return marshalValue(c.v) }

// UnmarshalState implements Persister.
func (c *counter) UnmarshalState(b []byte) error {
	v, err := unmarshalValue(b, TypeCounter)
	if err != nil {
		return err
	}
	x, ok := v.(int64)
	if !ok {
		return badState(TypeCounter, v)
	}
	c.v = x
	return nil
}

// ReadOnly implements ReadOnlyMethods.
func (o *mapObject) ReadOnly(m string) bool { return readMethods[m] }

// MarshalState implements Persister: the map.
func (o *mapObject) MarshalState() ([]byte, error) { return marshalValue(o.m) }

// UnmarshalState implements Persister.
func (o *mapObject) UnmarshalState(b []byte) error {
	m, err := unmarshalMap(b, TypeMap)
	if err == nil {
		o.m = m
	}
	return err
}

func unmarshalMap(b []byte, typ string) (map[string]any, error) {
	v, err := unmarshalValue(b, typ)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badState(typ, v)
	}
	return m, nil
}

// ReadOnly implements ReadOnlyMethods.
func (o *setObject) ReadOnly(m string) bool { return readMethods[m] }

// MarshalState implements Persister: the members, as a list.
func (o *setObject) MarshalState() ([]byte, error) { return marshalValue(o.members()) }

// UnmarshalState implements Persister.
func (o *setObject) UnmarshalState(b []byte) error {
	v, err := unmarshalValue(b, TypeSet)
	if err != nil {
		return err
	}
	l, ok := v.([]any)
	if !ok {
		return badState(TypeSet, v)
	}
	m := make(map[string]any, len(l))
	for _, x := range l {
		k, err := wire.AppendValue(nil, x)
		if err != nil {
			return err
		}
		m[string(k)] = x
	}
	o.m = m
	return nil
}

// ReadOnly implements ReadOnlyMethods.
func (o *listObject) ReadOnly(m string) bool { return readMethods[m] }

// MarshalState implements Persister: the list.
func (o *listObject) MarshalState() ([]byte, error) {
	if o.l == nil {
		return marshalValue([]any{})
	}
	return marshalValue(o.l)
}

// UnmarshalState implements Persister.
func (o *listObject) UnmarshalState(b []byte) error {
	v, err := unmarshalValue(b, TypeList)
	if err != nil {
		return err
	}
	l, ok := v.([]any)
	if !ok {
		return badState(TypeList, v)
	}
	o.l = l
	return nil
}

// ReadOnly implements ReadOnlyMethods.
func (o *treeMap) ReadOnly(m string) bool { return readMethods[m] }

// MarshalState implements Persister: the map (its order is the keys').
func (o *treeMap) MarshalState() ([]byte, error) { return marshalValue(o.m) }

// UnmarshalState implements Persister.
func (o *treeMap) UnmarshalState(b []byte) error {
	m, err := unmarshalMap(b, TypeTreeMap)
	if err != nil {
		return err
	}
	o.m, o.keys = m, sortedKeys(m)
	slices.Sort(o.keys)
	return nil
}
