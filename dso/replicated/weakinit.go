package replicated

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/wire"
)

// The initial value of a weak table's AtomicLong, AtomicInt and Counter.
//
// A weak table's replicas execute the updates in different orders, so
// "the call that creates the object" differs between them: two clients
// that create one AtomicLong at once, with different initial values, at
// two replicas, would leave each replica with its own creator's value for
// good. Instead, every update's constructor arguments count, whatever the
// order: the object's value is its initial value plus every addition,
// and its initial value is that of the least (by canonical encoding,
// dso.AppendCanonical) non-empty constructor arguments among its updates
// (the type's default, 0, if none had any). A replica that executes an
// update whose constructor arguments win changes its initial value, and so
// its value, by the difference. Constructor arguments that the type
// refuses fail the call at every replica, also when the object exists.

// weakInit is the initial value of a weak table's additive object.
type weakInit struct {
	args []any  // the winning constructor arguments; nil: none yet
	enc  []byte // the canonical encoding of args
	v    int64  // the initial value args give (the default if none)
}

// additive describes an additive library type of a weak table: its
// methods that read its value and add their argument.
type additive struct {
	typ, read, add string
}

var (
	additiveLong    = additive{dso.TypeAtomicLong, "get", "addAndGet"}
	additiveInt     = additive{dso.TypeAtomicInt, "get", "addAndGet"}
	additiveCounter = additive{dso.TypeCounter, "tally", "increment"}
)

// build returns the library object args construct, its value and init.
func (a additive) build(args []any) (dso.Object, weakInit, error) {
	c, _, _ := library.Lookup(a.typ)
	lib, err := c(args)
	if err != nil {
		return nil, weakInit{}, err
	}
	v, err := lib.Invoke(dso.NewInvocation(dso.Ref{Type: a.typ}, a.read, nil, nil))
	n, ok := v.(int64)
	if err != nil || !ok {
		return nil, weakInit{}, fmt.Errorf("%w: %s.%s of a new object gave %v, %v", dso.ErrInternal, a.typ, a.read, v, err)
	}
	in := weakInit{v: n}
	if len(args) > 0 {
		if in.enc, err = dso.AppendCanonical(nil, args); err != nil {
			return nil, weakInit{}, err
		}
		in.args = args
	}
	return lib, in, nil
}

// offer makes args the constructor arguments of lib, whose initial value
// is *in, if they win over in's (see above): it adds the difference of the
// initial values to lib. It returns a function that undoes it (nil if
// nothing changed).
func (a additive) offer(lib dso.Object, in *weakInit, args []any) (func(), error) {
	if len(args) == 0 {
		return nil, nil
	}
	enc, err := dso.AppendCanonical(nil, args)
	if err != nil {
		return nil, err
	}
	if in.args != nil && bytes.Compare(enc, in.enc) >= 0 {
		return nil, nil
	}
	_, next, err := a.build(args)
	if err != nil {
		return nil, err
	}
	d := next.v - in.v
	if (in.v > 0 && d > next.v) || (in.v < 0 && d < next.v) { // overflow
		return nil, fmt.Errorf("%w: the initial value %d of %s's constructor arguments %v is too far from %d to take its place", dso.ErrBadArgs, next.v, a.typ, args, in.v)
	}
	p := lib.(dso.Persister)
	st, err := p.MarshalState()
	if err != nil {
		return nil, err
	}
	if d != 0 {
		if _, err := lib.Invoke(dso.NewInvocation(dso.Ref{Type: a.typ}, a.add, []any{d}, nil)); err != nil {
			return nil, fmt.Errorf("taking the initial value %d of the constructor arguments %v: %w", next.v, args, err)
		}
	}
	old := *in
	*in = next
	return func() {
		*in = old
		_ = p.UnmarshalState(st) // its own state: it decodes
	}, nil
}

// restore sets lib and in from a saved state: the library state st, and
// the winning constructor arguments args (nil: none).
func (a additive) restore(lib dso.Object, in *weakInit, st []byte, args any) error {
	var l []any
	if args != nil {
		var ok bool
		if l, ok = args.([]any); !ok || len(l) == 0 {
			return fmt.Errorf("%s state: the constructor arguments are not a non-empty list", a.typ)
		}
	}
	_, next, err := a.build(l)
	if err != nil {
		return fmt.Errorf("%s state: the constructor arguments: %w", a.typ, err)
	}
	if err := lib.(dso.Persister).UnmarshalState(st); err != nil {
		return err
	}
	*in = next
	return nil
}

// weakInitialized is a weak table's object whose initial value its
// updates' constructor arguments decide.
type weakInitialized interface {
	// offerInit offers the constructor arguments of an update about to
	// run; it returns a function that undoes what it changed, for an
	// update that fails (nil if it changed nothing).
	offerInit(args []any) (func(), error)
}

// weakAtomic is an AtomicLong or AtomicInt of a weak table: the library's
// object, and its initial value (see above).
type weakAtomic struct {
	a    additive
	lib  dso.Object
	init weakInit
}

func newWeakAtomic(a additive) dso.Constructor {
	return func(args []any) (dso.Object, error) {
		lib, in, err := a.build(args)
		if err != nil {
			return nil, err
		}
		return &weakAtomic{a: a, lib: lib, init: in}, nil
	}
}

func (w *weakAtomic) Invoke(inv *dso.Invocation) (any, error) { return w.lib.Invoke(inv) }

func (w *weakAtomic) offerInit(args []any) (func(), error) { return w.a.offer(w.lib, &w.init, args) }

// ReadOnly implements dso.ReadOnlyMethods.
func (w *weakAtomic) ReadOnly(method string) bool { return readOnly(w.lib, method) }

// MarshalState implements dso.Persister: the library object's state while
// no update had constructor arguments, else [library state, constructor
// arguments].
func (w *weakAtomic) MarshalState() ([]byte, error) {
	st, err := w.lib.(dso.Persister).MarshalState()
	if err != nil || w.init.args == nil {
		return st, err
	}
	return dso.AppendCanonical(nil, []any{st, w.init.args})
}

// UnmarshalState implements dso.Persister.
func (w *weakAtomic) UnmarshalState(b []byte) error {
	v, err := wire.DecodeValue(b)
	if err != nil {
		return err
	}
	if _, ok := v.(int64); ok {
		return w.a.restore(w.lib, &w.init, b, nil)
	}
	l, ok := v.([]any)
	if !ok || len(l) != 2 {
		return errors.New("weak atomic state: not a value nor [state, constructor arguments]")
	}
	st, ok := l[0].([]byte)
	if !ok {
		return errors.New("weak atomic state: not [bytes, constructor arguments]")
	}
	return w.a.restore(w.lib, &w.init, st, l[1])
}

// offerCtor runs the constructor arguments of the call cl on obj, an
// object of this weak table that exists: they must construct the type,
// as they must at a replica where it does not exist yet (else the call
// fails there and not here), and an update offers them to an object
// whose initial value they decide. It returns what offerInit returns.
func (t *Table) offerCtor(ctor dso.Constructor, obj dso.Object, cl dso.Call) (func(), error) {
	if _, err := construct(ctor, cl.Ctor); err != nil {
		return nil, err
	}
	in, ok := obj.(weakInitialized)
	if !ok || readOnly(obj, cl.Method) {
		return nil, nil
	}
	return in.offerInit(cl.Ctor)
}
