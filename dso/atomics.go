package dso

import (
	"fmt"
	"reflect"
)

// Type names of the atomic objects.
const (
	TypeAtomicLong      = "AtomicLong"
	TypeAtomicInt       = "AtomicInt"
	TypeAtomicBoolean   = "AtomicBoolean"
	TypeAtomicReference = "AtomicReference"
	TypeAtomicByteArray = "AtomicByteArray"
	TypeCounter         = "Counter"
)

func init() {
	library[TypeAtomicLong] = func(args []any) (Object, error) { return newAtomicInteger(args, 64) }
	library[TypeAtomicInt] = func(args []any) (Object, error) { return newAtomicInteger(args, 32) }
	library[TypeAtomicBoolean] = newAtomicBoolean
	library[TypeAtomicReference] = newAtomicReference
	library[TypeAtomicByteArray] = newAtomicByteArray
	library[TypeCounter] = newCounter
}

func ctorInt(args []any, i int, what string, def int64) (int64, error) {
	if i >= len(args) {
		return def, nil
	}
	v, ok := AsInt(args[i])
	if !ok {
		return 0, fmt.Errorf("%w: constructor argument %s: want int, got %s", ErrBadArgs, what, typeName(args[i]))
	}
	return v, nil
}

// atomicInteger is AtomicLong (bits = 64) and AtomicInt (bits = 32, with
// Java's wrap-around arithmetic).
type atomicInteger struct {
	v    int64
	bits uint8
}

func newAtomicInteger(args []any, bits uint8) (Object, error) {
	v, err := ctorInt(args, 0, "initial value", 0)
	if err != nil {
		return nil, err
	}
	a := &atomicInteger{bits: bits}
	a.v = a.wrap(v)
	return a, nil
}

func (a *atomicInteger) wrap(v int64) int64 {
	if a.bits == 32 {
		return int64(int32(v))
	}
	return v
}

func (a *atomicInteger) Invoke(inv *Invocation) (any, error) {
	old := a.v
	switch inv.Method {
	case "get", "intValue", "longValue":
		inv.Arity(0, 0)
	case "set":
		if inv.Arity(1, 1) {
			a.v = a.wrap(inv.Int(0))
		}
		return nil, inv.Err()
	case "getAndSet":
		if inv.Arity(1, 1) {
			a.v = a.wrap(inv.Int(0))
		}
	case "addAndGet", "getAndAdd":
		if inv.Arity(1, 1) {
			a.v = a.wrap(a.v + inv.Int(0))
		}
		if inv.Method == "addAndGet" {
			return a.v, inv.Err()
		}
	case "incrementAndGet", "decrementAndGet", "getAndIncrement", "getAndDecrement":
		inv.Arity(0, 0)
		if inv.Method == "incrementAndGet" || inv.Method == "getAndIncrement" {
			a.v = a.wrap(a.v + 1)
		} else {
			a.v = a.wrap(a.v - 1)
		}
		if inv.Method[:3] != "get" {
			return a.v, inv.Err()
		}
	case "multiplyAndGet":
		if inv.Arity(1, 1) {
			a.v = a.wrap(a.v * inv.Int(0))
		}
		return a.v, inv.Err()
	case "compareAndSet":
		if !inv.Arity(2, 2) {
			return nil, inv.Err()
		}
		exp, upd := inv.Int(0), inv.Int(1)
		if inv.Err() != nil {
			return nil, inv.Err()
		}
		if a.v == a.wrap(exp) {
			a.v = a.wrap(upd)
			return true, nil
		}
		return false, nil
	default:
		return nil, unknownMethod(inv)
	}
	if inv.Err() != nil {
		a.v = old
		return nil, inv.Err()
	}
	return old, nil
}

type atomicBoolean struct{ v bool }

func newAtomicBoolean(args []any) (Object, error) {
	a := &atomicBoolean{}
	if len(args) > 0 {
		b, ok := args[0].(bool)
		if !ok {
			return nil, fmt.Errorf("%w: constructor argument initial value: want bool, got %s", ErrBadArgs, typeName(args[0]))
		}
		a.v = b
	}
	return a, nil
}

func (a *atomicBoolean) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "get":
		inv.Arity(0, 0)
		return a.v, inv.Err()
	case "set", "getAndSet":
		if !inv.Arity(1, 1) {
			return nil, inv.Err()
		}
		v := inv.Bool(0)
		if inv.Err() != nil {
			return nil, inv.Err()
		}
		old := a.v
		a.v = v
		if inv.Method == "set" {
			return nil, nil
		}
		return old, nil
	case "compareAndSet":
		if !inv.Arity(2, 2) {
			return nil, inv.Err()
		}
		exp, upd := inv.Bool(0), inv.Bool(1)
		if inv.Err() != nil {
			return nil, inv.Err()
		}
		if a.v == exp {
			a.v = upd
			return true, nil
		}
		return false, nil
	}
	return nil, unknownMethod(inv)
}

// atomicReference holds any wire value; compareAndSet compares values
// deeply.
type atomicReference struct{ v any }

func newAtomicReference(args []any) (Object, error) {
	a := &atomicReference{}
	if len(args) > 0 {
		a.v = args[0]
	}
	return a, nil
}

func (a *atomicReference) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "get":
		inv.Arity(0, 0)
		return a.v, inv.Err()
	case "set", "getAndSet":
		if !inv.Arity(1, 1) {
			return nil, inv.Err()
		}
		old := a.v
		a.v = inv.Args[0]
		if inv.Method == "set" {
			return nil, nil
		}
		return old, nil
	case "compareAndSet":
		if !inv.Arity(2, 2) {
			return nil, inv.Err()
		}
		if reflect.DeepEqual(a.v, inv.Args[0]) {
			a.v = inv.Args[1]
			return true, nil
		}
		return false, nil
	}
	return nil, unknownMethod(inv)
}

// atomicByteArray is an array of signed bytes with atomic element updates.
type atomicByteArray struct{ b []int8 }

// MaxByteArray bounds the length of an AtomicByteArray.
const MaxByteArray = 64 << 20

func newAtomicByteArray(args []any) (Object, error) {
	n, err := ctorInt(args, 0, "length", 0)
	if err != nil {
		return nil, err
	}
	if n < 0 || n > MaxByteArray {
		return nil, fmt.Errorf("%w: AtomicByteArray length %d out of [0, %d]", ErrBadArgs, n, MaxByteArray)
	}
	return &atomicByteArray{b: make([]int8, n)}, nil
}

func (a *atomicByteArray) index(inv *Invocation) (int, bool) {
	i := inv.Int(0)
	if inv.Err() != nil {
		return 0, false
	}
	if i < 0 || i >= int64(len(a.b)) {
		inv.err = fmt.Errorf("%w: index %d out of range [0, %d)", ErrFailed, i, len(a.b))
		return 0, false
	}
	return int(i), true
}

func (a *atomicByteArray) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "length":
		inv.Arity(0, 0)
		return int64(len(a.b)), inv.Err()
	case "toArray":
		inv.Arity(0, 0)
		out := make([]byte, len(a.b))
		for i, v := range a.b {
			out[i] = byte(v)
		}
		return out, inv.Err()
	case "get":
		if inv.Arity(1, 1) {
			if i, ok := a.index(inv); ok {
				return int64(a.b[i]), nil
			}
		}
	case "set", "getAndSet", "addAndGet", "getAndAdd":
		if inv.Arity(2, 2) {
			if i, ok := a.index(inv); ok {
				x := inv.Int(1)
				if inv.Err() != nil {
					return nil, inv.Err()
				}
				old := a.b[i]
				switch inv.Method {
				case "set":
					a.b[i] = int8(x)
					return nil, nil
				case "getAndSet":
					a.b[i] = int8(x)
				case "addAndGet":
					a.b[i] = int8(int64(a.b[i]) + x)
					return int64(a.b[i]), nil
				case "getAndAdd":
					a.b[i] = int8(int64(a.b[i]) + x)
				}
				return int64(old), nil
			}
		}
	case "compareAndSet":
		if inv.Arity(3, 3) {
			if i, ok := a.index(inv); ok {
				exp, upd := inv.Int(1), inv.Int(2)
				if inv.Err() != nil {
					return nil, inv.Err()
				}
				if a.b[i] == int8(exp) {
					a.b[i] = int8(upd)
					return true, nil
				}
				return false, nil
			}
		}
	default:
		return nil, unknownMethod(inv)
	}
	return nil, inv.Err()
}

// counter is the sshell counter: increment, decrement, tally, reset.
type counter struct{ v int64 }

func newCounter(args []any) (Object, error) {
	v, err := ctorInt(args, 0, "initial value", 0)
	return &counter{v: v}, err
}

func (c *counter) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "increment", "decrement":
		if !inv.Arity(0, 1) {
			return nil, inv.Err()
		}
		d := inv.IntOr(0, 1)
		if inv.Err() != nil {
			return nil, inv.Err()
		}
		if inv.Method == "decrement" {
			d = -d
		}
		c.v += d
		return c.v, nil
	case "tally":
		inv.Arity(0, 0)
		return c.v, inv.Err()
	case "reset":
		inv.Arity(0, 0)
		if inv.Err() == nil {
			c.v = 0
		}
		return nil, inv.Err()
	}
	return nil, unknownMethod(inv)
}
