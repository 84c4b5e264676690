package dso

import (
	"fmt"
	"math"
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

// atomicInteger is AtomicLong (bits = 64) and AtomicInt (bits = 32).
// Arithmetic that leaves the range fails with ErrOverflow (like Java's
// Math.addExact, not like AtomicInteger's wrap-around), and a value set
// outside it with ErrBadArgs; the object is then unchanged.
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
	if _, err := fitBits(v, bits); err != nil {
		return nil, fmt.Errorf("%w: initial value %d out of range for int%d", ErrBadArgs, v, bits)
	}
	a.v = v
	return a, nil
}

// inRange returns v, or records a bad-argument error on inv if v does not
// fit the object's integers.
func (a *atomicInteger) inRange(inv *Invocation, v int64) int64 {
	if _, err := fitBits(v, a.bits); err != nil && inv.err == nil {
		inv.err = fmt.Errorf("%w: %d out of range for int%d", ErrBadArgs, v, a.bits)
		return a.v
	}
	return v
}

// arith records err on inv (if any) and returns v, or a.v on error.
func (a *atomicInteger) arith(inv *Invocation, v int64, err error) int64 {
	if err != nil {
		if inv.err == nil {
			inv.err = err
		}
		return a.v
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
			a.v = a.inRange(inv, inv.Int(0))
		}
		return nil, inv.Err()
	case "getAndSet":
		if inv.Arity(1, 1) {
			a.v = a.inRange(inv, inv.Int(0))
		}
	case "addAndGet", "getAndAdd":
		if inv.Arity(1, 1) {
			if d := inv.Int(0); inv.Err() == nil {
				v, err := addExact(a.v, d, a.bits)
				a.v = a.arith(inv, v, err)
			}
		}
		if inv.Method == "addAndGet" {
			if inv.Err() != nil {
				return nil, inv.Err()
			}
			return a.v, nil
		}
	case "incrementAndGet", "decrementAndGet", "getAndIncrement", "getAndDecrement":
		if inv.Arity(0, 0) {
			d := int64(1)
			if inv.Method == "decrementAndGet" || inv.Method == "getAndDecrement" {
				d = -1
			}
			v, err := addExact(a.v, d, a.bits)
			a.v = a.arith(inv, v, err)
		}
		if inv.Method[:3] != "get" {
			if inv.Err() != nil {
				return nil, inv.Err()
			}
			return a.v, nil
		}
	case "multiplyAndGet":
		if inv.Arity(1, 1) {
			if f := inv.Int(0); inv.Err() == nil {
				v, err := mulExact(a.v, f, a.bits)
				a.v = a.arith(inv, v, err)
			}
		}
		if inv.Err() != nil {
			return nil, inv.Err()
		}
		return a.v, nil
	case "compareAndSet":
		if !inv.Arity(2, 2) {
			return nil, inv.Err()
		}
		exp, upd := inv.Int(0), inv.Int(1)
		if inv.Err() != nil {
			return nil, inv.Err()
		}
		upd = a.inRange(inv, upd)
		if inv.Err() != nil {
			return nil, inv.Err()
		}
		if a.v == exp {
			a.v = upd
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
				nv := x
				if inv.Method == "addAndGet" || inv.Method == "getAndAdd" {
					v, err := addExact(int64(old), x, 8)
					if err != nil {
						return nil, err
					}
					nv = v
				} else if _, err := fitBits(x, 8); err != nil {
					return nil, fmt.Errorf("%w: %d out of range for a byte (-128..127)", ErrBadArgs, x)
				}
				a.b[i] = int8(nv)
				switch inv.Method {
				case "set":
					return nil, nil
				case "addAndGet":
					return nv, nil
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
				if _, err := fitBits(upd, 8); err != nil {
					return nil, fmt.Errorf("%w: %d out of range for a byte (-128..127)", ErrBadArgs, upd)
				}
				if int64(a.b[i]) == exp {
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
		var err error
		var v int64
		if inv.Method == "decrement" {
			if d == math.MinInt64 {
				return nil, fmt.Errorf("%w: -(%d)", ErrOverflow, d)
			}
			d = -d
		}
		if v, err = addExact(c.v, d, 64); err != nil {
			return nil, err
		}
		c.v = v
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
