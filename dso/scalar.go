package dso

// Scalar is implemented by objects whose whole state is one int64 and
// whose methods never park. A server may then keep the int64 alone in a
// compact table, without the object, and run each call on a fresh object
// of the type (made by its constructor without arguments) loaded with
// that state: LoadScalar(v) must make the object equal to the one whose
// ScalarState is v, whatever it held before, and a method must not keep
// the Invocation, park, or leave any state outside ScalarState.
type Scalar interface {
	Object
	// ScalarState returns the object's state.
	ScalarState() int64
	// LoadScalar replaces the object's state with v, a value ScalarState
	// returned for an object of the same type.
	LoadScalar(v int64)
}

var (
	_ Scalar = (*atomicInteger)(nil)
	_ Scalar = (*atomicBoolean)(nil)
	_ Scalar = (*counter)(nil)
)

// ScalarState implements Scalar.
func (a *atomicInteger) ScalarState() int64 { return a.v }

// LoadScalar implements Scalar; the width (AtomicLong or AtomicInt) is the
// object's own.
func (a *atomicInteger) LoadScalar(v int64) { a.v = v }

// ScalarState implements Scalar: 1 for true, 0 for false.
func (a *atomicBoolean) ScalarState() int64 {
	if a.v {
		return 1
	}
	return 0
}

// LoadScalar implements Scalar.
func (a *atomicBoolean) LoadScalar(v int64) { a.v = v != 0 }

// ScalarState implements Scalar.
func (c *counter) ScalarState() int64 { return c.v }

// LoadScalar implements Scalar.
func (c *counter) LoadScalar(v int64) { c.v = v }
