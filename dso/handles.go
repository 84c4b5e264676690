package dso

import (
	"context"
	"fmt"
)

// Caller sends one method call to the object ref, creating the object with
// ctor if it does not exist yet. dso/client.Client implements it for a
// remote cluster; a server implements it in-process.
type Caller interface {
	Call(ctx context.Context, ref Ref, method string, args []any, ctor []any) (any, error)
}

// Handle is an untyped reference to a shared object through a Caller.
// The typed handles below wrap one.
type Handle struct {
	c    Caller
	ref  Ref
	ctor []any
}

// NewHandle returns a handle on the object (typ, key); ctor are the
// constructor arguments used if a call creates the object.
func NewHandle(c Caller, typ, key string, ctor ...any) Handle {
	return Handle{c: c, ref: Ref{Type: typ, Key: key}, ctor: ctor}
}

// Ref returns the object's reference.
func (h Handle) Ref() Ref { return h.ref }

// Call invokes a method by name.
func (h Handle) Call(ctx context.Context, method string, args ...any) (any, error) {
	v, err := h.c.Call(ctx, h.ref, method, args, h.ctor)
	if err != nil {
		return nil, fmt.Errorf("%s.%s: %w", h.ref, method, err)
	}
	return v, nil
}

func (h Handle) int(ctx context.Context, method string, args ...any) (int64, error) {
	v, err := h.Call(ctx, method, args...)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("%s.%s: %w: reply %s is not an int", h.ref, method, ErrInternal, typeName(v))
	}
	return n, nil
}

func (h Handle) float(ctx context.Context, method string, args ...any) (float64, error) {
	v, err := h.Call(ctx, method, args...)
	if err != nil {
		return 0, err
	}
	f, ok := AsFloat(v)
	if !ok {
		return 0, fmt.Errorf("%s.%s: %w: reply %s is not a number", h.ref, method, ErrInternal, typeName(v))
	}
	return f, nil
}

func (h Handle) bool(ctx context.Context, method string, args ...any) (bool, error) {
	v, err := h.Call(ctx, method, args...)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s.%s: %w: reply %s is not a bool", h.ref, method, ErrInternal, typeName(v))
	}
	return b, nil
}

func (h Handle) none(ctx context.Context, method string, args ...any) error {
	_, err := h.Call(ctx, method, args...)
	return err
}

func (h Handle) list(ctx context.Context, method string, args ...any) ([]any, error) {
	v, err := h.Call(ctx, method, args...)
	if err != nil {
		return nil, err
	}
	l, ok := v.([]any)
	if !ok && v != nil {
		return nil, fmt.Errorf("%s.%s: %w: reply %s is not a list", h.ref, method, ErrInternal, typeName(v))
	}
	return l, nil
}

func (h Handle) strings(ctx context.Context, method string, args ...any) ([]string, error) {
	l, err := h.list(ctx, method, args...)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(l))
	for i, e := range l {
		out[i], _ = e.(string)
	}
	return out, nil
}

// AtomicLong is a shared 64-bit integer.
type AtomicLong struct{ Handle }

// NewAtomicLong returns a handle on the AtomicLong key (initial value 0,
// or initial[0] if it is created by this handle's first call).
func NewAtomicLong(c Caller, key string, initial ...int64) AtomicLong {
	return AtomicLong{NewHandle(c, TypeAtomicLong, key, ctorOf(initial)...)}
}

func ctorOf[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// Get returns the value.
func (a AtomicLong) Get(ctx context.Context) (int64, error) { return a.int(ctx, "get") }

// Set sets the value.
func (a AtomicLong) Set(ctx context.Context, v int64) error { return a.none(ctx, "set", v) }

// GetAndSet sets the value and returns the previous one.
func (a AtomicLong) GetAndSet(ctx context.Context, v int64) (int64, error) {
	return a.int(ctx, "getAndSet", v)
}

// AddAndGet adds d and returns the new value.
func (a AtomicLong) AddAndGet(ctx context.Context, d int64) (int64, error) {
	return a.int(ctx, "addAndGet", d)
}

// GetAndAdd adds d and returns the previous value.
func (a AtomicLong) GetAndAdd(ctx context.Context, d int64) (int64, error) {
	return a.int(ctx, "getAndAdd", d)
}

// IncrementAndGet adds one and returns the new value.
func (a AtomicLong) IncrementAndGet(ctx context.Context) (int64, error) {
	return a.int(ctx, "incrementAndGet")
}

// DecrementAndGet subtracts one and returns the new value.
func (a AtomicLong) DecrementAndGet(ctx context.Context) (int64, error) {
	return a.int(ctx, "decrementAndGet")
}

// CompareAndSet sets the value to upd if it equals exp.
func (a AtomicLong) CompareAndSet(ctx context.Context, exp, upd int64) (bool, error) {
	return a.bool(ctx, "compareAndSet", exp, upd)
}

// AtomicInt is a shared 32-bit integer with wrap-around arithmetic.
type AtomicInt struct{ AtomicLong }

// NewAtomicInt returns a handle on the AtomicInt key.
func NewAtomicInt(c Caller, key string, initial ...int64) AtomicInt {
	return AtomicInt{AtomicLong{NewHandle(c, TypeAtomicInt, key, ctorOf(initial)...)}}
}

// AtomicBoolean is a shared boolean.
type AtomicBoolean struct{ Handle }

// NewAtomicBoolean returns a handle on the AtomicBoolean key.
func NewAtomicBoolean(c Caller, key string, initial ...bool) AtomicBoolean {
	return AtomicBoolean{NewHandle(c, TypeAtomicBoolean, key, ctorOf(initial)...)}
}

// Get returns the value.
func (a AtomicBoolean) Get(ctx context.Context) (bool, error) { return a.bool(ctx, "get") }

// Set sets the value.
func (a AtomicBoolean) Set(ctx context.Context, v bool) error { return a.none(ctx, "set", v) }

// GetAndSet sets the value and returns the previous one.
func (a AtomicBoolean) GetAndSet(ctx context.Context, v bool) (bool, error) {
	return a.bool(ctx, "getAndSet", v)
}

// CompareAndSet sets the value to upd if it equals exp.
func (a AtomicBoolean) CompareAndSet(ctx context.Context, exp, upd bool) (bool, error) {
	return a.bool(ctx, "compareAndSet", exp, upd)
}

// AtomicReference is a shared value of any wire type (bytes, typically).
type AtomicReference struct{ Handle }

// NewAtomicReference returns a handle on the AtomicReference key.
func NewAtomicReference(c Caller, key string) AtomicReference {
	return AtomicReference{NewHandle(c, TypeAtomicReference, key)}
}

// Get returns the value (nil if never set).
func (a AtomicReference) Get(ctx context.Context) (any, error) { return a.Call(ctx, "get") }

// Set sets the value.
func (a AtomicReference) Set(ctx context.Context, v any) error { return a.none(ctx, "set", v) }

// CompareAndSet sets the value to upd if it deeply equals exp.
func (a AtomicReference) CompareAndSet(ctx context.Context, exp, upd any) (bool, error) {
	return a.bool(ctx, "compareAndSet", exp, upd)
}

// AtomicByteArray is a shared array of signed bytes.
type AtomicByteArray struct{ Handle }

// NewAtomicByteArray returns a handle on an array of length n.
func NewAtomicByteArray(c Caller, key string, n int) AtomicByteArray {
	return AtomicByteArray{NewHandle(c, TypeAtomicByteArray, key, int64(n))}
}

// Get returns element i.
func (a AtomicByteArray) Get(ctx context.Context, i int) (int8, error) {
	v, err := a.int(ctx, "get", int64(i))
	return int8(v), err
}

// Set sets element i.
func (a AtomicByteArray) Set(ctx context.Context, i int, v int8) error {
	return a.none(ctx, "set", int64(i), int64(v))
}

// AddAndGet adds d to element i and returns its new value.
func (a AtomicByteArray) AddAndGet(ctx context.Context, i int, d int8) (int8, error) {
	v, err := a.int(ctx, "addAndGet", int64(i), int64(d))
	return int8(v), err
}

// CompareAndSet sets element i to upd if it equals exp.
func (a AtomicByteArray) CompareAndSet(ctx context.Context, i int, exp, upd int8) (bool, error) {
	return a.bool(ctx, "compareAndSet", int64(i), int64(exp), int64(upd))
}

// Length returns the array's length.
func (a AtomicByteArray) Length(ctx context.Context) (int, error) {
	n, err := a.int(ctx, "length")
	return int(n), err
}

// Counter is the serverless shell's counter.
type Counter struct{ Handle }

// NewCounter returns a handle on the Counter key.
func NewCounter(c Caller, key string) Counter { return Counter{NewHandle(c, TypeCounter, key)} }

// Increment adds i and returns the new tally.
func (k Counter) Increment(ctx context.Context, i int64) (int64, error) {
	return k.int(ctx, "increment", i)
}

// Tally returns the value.
func (k Counter) Tally(ctx context.Context) (int64, error) { return k.int(ctx, "tally") }

// Reset sets the value to zero.
func (k Counter) Reset(ctx context.Context) error { return k.none(ctx, "reset") }

// Map is a shared hash map from strings to values.
type Map struct{ Handle }

// NewMap returns a handle on the Map key.
func NewMap(c Caller, key string) Map { return Map{NewHandle(c, TypeMap, key)} }

// Get returns the value of k, or nil.
func (m Map) Get(ctx context.Context, k string) (any, error) { return m.Call(ctx, "get", k) }

// Put sets k to v and returns the previous value.
func (m Map) Put(ctx context.Context, k string, v any) (any, error) { return m.Call(ctx, "put", k, v) }

// Remove deletes k and returns its value.
func (m Map) Remove(ctx context.Context, k string) (any, error) { return m.Call(ctx, "remove", k) }

// ContainsKey reports whether k is in the map.
func (m Map) ContainsKey(ctx context.Context, k string) (bool, error) {
	return m.bool(ctx, "containsKey", k)
}

// Merge combines v into the value of k with a named combiner (sum, max,
// min, replace) and returns the new value.
func (m Map) Merge(ctx context.Context, k string, v any, combiner string) (any, error) {
	return m.Call(ctx, "merge", k, v, combiner)
}

// MergeAll merges every entry of in, atomically, and returns the map's size.
func (m Map) MergeAll(ctx context.Context, in map[string]any, combiner string) (int64, error) {
	return m.int(ctx, "mergeAll", in, combiner)
}

// KeySet returns the keys, sorted.
func (m Map) KeySet(ctx context.Context) ([]string, error) { return m.strings(ctx, "keySet") }

// Size returns the number of entries.
func (m Map) Size(ctx context.Context) (int64, error) { return m.int(ctx, "size") }

// Entries returns a copy of the map.
func (m Map) Entries(ctx context.Context) (map[string]any, error) {
	v, err := m.Call(ctx, "entries")
	out, _ := v.(map[string]any)
	return out, err
}

// Set is a shared set of scalar values.
type Set struct{ Handle }

// NewSet returns a handle on the Set key.
func NewSet(c Caller, key string) Set { return Set{NewHandle(c, TypeSet, key)} }

// Add inserts v; it reports whether v was absent.
func (s Set) Add(ctx context.Context, v any) (bool, error) { return s.bool(ctx, "add", v) }

// AddAll adds every element of vs (scalars; if one is not, nothing is
// added) and returns how many were not in the set.
func (s Set) AddAll(ctx context.Context, vs []any) (int64, error) { return s.int(ctx, "addAll", vs) }

// Remove deletes v; it reports whether v was present.
func (s Set) Remove(ctx context.Context, v any) (bool, error) { return s.bool(ctx, "remove", v) }

// Contains reports whether v is a member.
func (s Set) Contains(ctx context.Context, v any) (bool, error) { return s.bool(ctx, "contains", v) }

// Size returns the number of members.
func (s Set) Size(ctx context.Context) (int64, error) { return s.int(ctx, "size") }

// Members returns the members.
func (s Set) Members(ctx context.Context) ([]any, error) { return s.list(ctx, "members") }

// List is a shared array list.
type List struct{ Handle }

// NewList returns a handle on the List key.
func NewList(c Caller, key string) List { return List{NewHandle(c, TypeList, key)} }

// Add appends v.
func (l List) Add(ctx context.Context, v any) error { return l.none(ctx, "add", v) }

// Get returns element i.
func (l List) Get(ctx context.Context, i int) (any, error) { return l.Call(ctx, "get", int64(i)) }

// Set replaces element i and returns the previous one.
func (l List) Set(ctx context.Context, i int, v any) (any, error) {
	return l.Call(ctx, "set", int64(i), v)
}

// RemoveAt removes element i and returns it.
func (l List) RemoveAt(ctx context.Context, i int) (any, error) {
	return l.Call(ctx, "removeAt", int64(i))
}

// Size returns the length.
func (l List) Size(ctx context.Context) (int64, error) { return l.int(ctx, "size") }

// ToList returns a copy of the elements.
func (l List) ToList(ctx context.Context) ([]any, error) { return l.list(ctx, "toList") }

// TreeMap is a shared map sorted by key.
type TreeMap struct{ Handle }

// NewTreeMap returns a handle on the TreeMap key.
func NewTreeMap(c Caller, key string) TreeMap { return TreeMap{NewHandle(c, TypeTreeMap, key)} }

// Put sets k to v and returns the previous value.
func (t TreeMap) Put(ctx context.Context, k string, v any) (any, error) {
	return t.Call(ctx, "put", k, v)
}

// Get returns the value of k, or nil.
func (t TreeMap) Get(ctx context.Context, k string) (any, error) { return t.Call(ctx, "get", k) }

// FirstKey returns the smallest key, or "" and false if empty.
func (t TreeMap) FirstKey(ctx context.Context) (string, bool, error) { return t.key(ctx, "firstKey") }

// LastKey returns the largest key, or "" and false if empty.
func (t TreeMap) LastKey(ctx context.Context) (string, bool, error) { return t.key(ctx, "lastKey") }

func (t TreeMap) key(ctx context.Context, m string, args ...any) (string, bool, error) {
	v, err := t.Call(ctx, m, args...)
	s, ok := v.(string)
	return s, ok, err
}

// Range returns the entries with from <= key < to (to "" = no bound) in
// key order, as [key, value] pairs.
func (t TreeMap) Range(ctx context.Context, from, to string) ([][2]any, error) {
	l, err := t.list(ctx, "range", from, to)
	out := make([][2]any, len(l))
	for i, e := range l {
		p, _ := e.([]any)
		if len(p) == 2 {
			out[i] = [2]any{p[0], p[1]}
		}
	}
	return out, err
}

// Matrix is a shared dense matrix of float64.
type Matrix struct{ Handle }

// NewMatrix returns a handle on a rows × cols matrix.
func NewMatrix(c Caller, key string, rows, cols int) Matrix {
	return Matrix{NewHandle(c, TypeMatrix, key, int64(rows), int64(cols))}
}

// Get returns cell (i, j).
func (m Matrix) Get(ctx context.Context, i, j int) (float64, error) {
	return m.float(ctx, "get", int64(i), int64(j))
}

// Set sets cell (i, j).
func (m Matrix) Set(ctx context.Context, i, j int, v float64) error {
	return m.none(ctx, "set", int64(i), int64(j), v)
}

// Add adds d to cell (i, j) and returns its new value.
func (m Matrix) Add(ctx context.Context, i, j int, d float64) (float64, error) {
	return m.float(ctx, "add", int64(i), int64(j), d)
}

// SetRow replaces row i.
func (m Matrix) SetRow(ctx context.Context, i int, row []float64) error {
	return m.none(ctx, "setRow", int64(i), row)
}

// ToArray returns the cells in row-major order.
func (m Matrix) ToArray(ctx context.Context) ([]float64, error) {
	v, err := m.Call(ctx, "toArray")
	out, _ := v.([]float64)
	return out, err
}

// Blob is a shared byte string.
type Blob struct{ Handle }

// NewBlob returns a handle on the Blob key.
func NewBlob(c Caller, key string) Blob { return Blob{NewHandle(c, TypeBlob, key)} }

// Write replaces the content.
func (b Blob) Write(ctx context.Context, p []byte) error { return b.none(ctx, "write", p) }

// Append appends p and returns the new size.
func (b Blob) Append(ctx context.Context, p []byte) (int64, error) { return b.int(ctx, "append", p) }

// Read returns the content.
func (b Blob) Read(ctx context.Context) ([]byte, error) {
	v, err := b.Call(ctx, "read")
	p, _ := v.([]byte)
	return p, err
}

// CyclicBarrier is a shared cyclic barrier.
type CyclicBarrier struct{ Handle }

// NewCyclicBarrier returns a handle on a barrier for the given parties.
func NewCyclicBarrier(c Caller, key string, parties int) CyclicBarrier {
	return CyclicBarrier{NewHandle(c, TypeCyclicBarrier, key, int64(parties))}
}

// Await waits until all parties have arrived and returns the number of the
// generation crossed.
func (b CyclicBarrier) Await(ctx context.Context) (int64, error) { return b.int(ctx, "await") }

// Semaphore is a shared counting semaphore with FIFO grants.
type Semaphore struct{ Handle }

// NewSemaphore returns a handle on a semaphore created with permits.
func NewSemaphore(c Caller, key string, permits int) Semaphore {
	return Semaphore{NewHandle(c, TypeSemaphore, key, int64(permits))}
}

// Acquire waits for n permits.
func (s Semaphore) Acquire(ctx context.Context, n int) error { return s.none(ctx, "acquire", int64(n)) }

// TryAcquire takes n permits if they are available at once.
func (s Semaphore) TryAcquire(ctx context.Context, n int) (bool, error) {
	return s.bool(ctx, "tryAcquire", int64(n))
}

// Release returns n permits.
func (s Semaphore) Release(ctx context.Context, n int) error { return s.none(ctx, "release", int64(n)) }

// AvailablePermits returns the free permits.
func (s Semaphore) AvailablePermits(ctx context.Context) (int64, error) {
	return s.int(ctx, "availablePermits")
}

// CountDownLatch is a shared count-down latch.
type CountDownLatch struct{ Handle }

// NewCountDownLatch returns a handle on a latch created with count.
func NewCountDownLatch(c Caller, key string, count int) CountDownLatch {
	return CountDownLatch{NewHandle(c, TypeCountDownLatch, key, int64(count))}
}

// CountDown decrements the count and returns it.
func (l CountDownLatch) CountDown(ctx context.Context) (int64, error) { return l.int(ctx, "countDown") }

// Await waits until the count is zero.
func (l CountDownLatch) Await(ctx context.Context) error { return l.none(ctx, "await") }

// GetCount returns the count.
func (l CountDownLatch) GetCount(ctx context.Context) (int64, error) { return l.int(ctx, "getCount") }

// Future is a shared write-once value.
type Future struct{ Handle }

// NewFuture returns a handle on the Future key.
func NewFuture(c Caller, key string) Future { return Future{NewHandle(c, TypeFuture, key)} }

// Set completes the future; it reports false if it was already complete.
func (f Future) Set(ctx context.Context, v any) (bool, error) { return f.bool(ctx, "set", v) }

// Get waits for the value.
func (f Future) Get(ctx context.Context) (any, error) { return f.Call(ctx, "get") }

// IsDone reports whether the future is complete.
func (f Future) IsDone(ctx context.Context) (bool, error) { return f.bool(ctx, "isDone") }

// Rendezvous pairs two parties that exchange values.
type Rendezvous struct{ Handle }

// NewRendezvous returns a handle on the Rendezvous key.
func NewRendezvous(c Caller, key string) Rendezvous {
	return Rendezvous{NewHandle(c, TypeRendezvous, key)}
}

// Exchange waits for a partner and returns its value.
func (r Rendezvous) Exchange(ctx context.Context, v any) (any, error) {
	return r.Call(ctx, "exchange", v)
}

// Pipe is a shared bounded FIFO queue.
type Pipe struct{ Handle }

// NewPipe returns a handle on a pipe of the given capacity.
func NewPipe(c Caller, key string, capacity int) Pipe {
	return Pipe{NewHandle(c, TypePipe, key, int64(capacity))}
}

// Put appends v, waiting while the pipe is full.
func (p Pipe) Put(ctx context.Context, v any) error { return p.none(ctx, "put", v) }

// Take removes the next value, waiting while the pipe is empty; it fails
// with ErrClosed once the pipe is closed and drained.
func (p Pipe) Take(ctx context.Context) (any, error) { return p.Call(ctx, "take") }

// Close closes the pipe.
func (p Pipe) Close(ctx context.Context) error { return p.none(ctx, "close") }

// Call is one method call on an object, as a part of a multi-object call.
type Call struct {
	Ref    Ref
	Method string
	Args   []any
	// Ctor are the constructor arguments, used if the call creates the
	// object.
	Ctor []any
}
