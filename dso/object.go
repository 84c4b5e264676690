package dso

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/blossom-dso/blossom/dso/wire"
)

// Ref names a shared object: its type and its key. Two calls with the same
// Ref reach the same object, wherever they come from.
type Ref struct {
	Type string
	Key  string
}

func (r Ref) String() string { return r.Type + "/" + r.Key }

// Sentinel errors. A reply error from a server matches one of these with
// errors.Is, whatever its message.
var (
	ErrUnknownType   = errors.New("dso: unknown object type")
	ErrUnknownMethod = errors.New("dso: unknown method")
	ErrBadArgs       = errors.New("dso: bad arguments")
	ErrCanceled      = errors.New("dso: call canceled")
	ErrTimeout       = errors.New("dso: call timed out")
	ErrWrongNode     = errors.New("dso: object not owned by this node")
	ErrTooLarge      = errors.New("dso: payload too large")
	ErrFailed        = errors.New("dso: call failed")
	ErrClosed        = errors.New("dso: object closed")
	ErrMalformed     = errors.New("dso: malformed request")
	ErrInternal      = errors.New("dso: internal server error")
	ErrDenied        = errors.New("dso: permission denied")
	ErrLimit         = errors.New("dso: server limit reached")
	// ErrClosing is the error of a parked call withdrawn because its
	// server is closing gracefully (wire.CodeClosing): the call did not
	// complete, and whether it had effects is unknown.
	ErrClosing = errors.New("dso: server closing")
	// ErrOverflow is returned, wrapping ErrFailed, by integer arithmetic
	// whose result does not fit the object's integers (int64; 32 bits for
	// AtomicInt, 8 for AtomicByteArray's elements), like Java's
	// Math.addExact; the object is left unchanged.
	ErrOverflow = fmt.Errorf("%w: integer overflow", ErrFailed)
)

// fitBits returns v if it fits in a signed integer of bits bits (8, 32 or
// 64), else ErrOverflow.
func fitBits(v int64, bits uint8) (int64, error) {
	if bits < 64 && (v < -1<<(bits-1) || v >= 1<<(bits-1)) {
		return 0, fmt.Errorf("%w: %d does not fit in %d bits", ErrOverflow, v, bits)
	}
	return v, nil
}

// addExact returns a+b, or ErrOverflow if it leaves bits bits.
func addExact(a, b int64, bits uint8) (int64, error) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, fmt.Errorf("%w: %d + %d", ErrOverflow, a, b)
	}
	return fitBits(s, bits)
}

// mulExact returns a*b, or ErrOverflow if it leaves bits bits.
func mulExact(a, b int64, bits uint8) (int64, error) {
	if a == 0 || b == 0 {
		return 0, nil
	}
	p := a * b
	if p/b != a || (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) {
		return 0, fmt.Errorf("%w: %d × %d", ErrOverflow, a, b)
	}
	return fitBits(p, bits)
}

var codeErrors = map[wire.Code]error{
	wire.CodeUnknownType:   ErrUnknownType,
	wire.CodeUnknownMethod: ErrUnknownMethod,
	wire.CodeBadArgs:       ErrBadArgs,
	wire.CodeCanceled:      ErrCanceled,
	wire.CodeTimeout:       ErrTimeout,
	wire.CodeWrongNode:     ErrWrongNode,
	wire.CodeTooLarge:      ErrTooLarge,
	wire.CodeApp:           ErrFailed,
	wire.CodeClosed:        ErrClosed,
	wire.CodeMalformed:     ErrMalformed,
	wire.CodeInternal:      ErrInternal,
	wire.CodeDenied:        ErrDenied,
	wire.CodeLimit:         ErrLimit,
	wire.CodeOverflow:      ErrOverflow,
	wire.CodeClosing:       ErrClosing,
}

// codeOrder lists the codes of codeErrors in increasing order, so that
// CodeOf picks the same code for an error that matches several sentinels
// (errors.Join, two %w) every time, as a replicated object table needs.
var codeOrder = func() []wire.Code {
	cs := make([]wire.Code, 0, len(codeErrors))
	for c := range codeErrors {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
	return cs
}()

// CodeOf returns the wire code that carries err to a client: the code of a
// RemoteError, CodeOverflow for ErrOverflow, else the lowest code whose
// sentinel err matches, else CodeApp. The same error always gives the
// same code.
func CodeOf(err error) wire.Code {
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Code
	}
	if errors.Is(err, ErrOverflow) { // before ErrFailed, which it wraps
		return wire.CodeOverflow
	}
	for _, c := range codeOrder {
		if c == wire.CodeApp {
			continue
		}
		if errors.Is(err, codeErrors[c]) {
			return c
		}
	}
	return wire.CodeApp
}

// RemoteError is an error reply received from a server.
type RemoteError struct {
	Code wire.Code
	Msg  string
}

func (e *RemoteError) Error() string { return e.Msg }

// Is matches the sentinel error of the reply's code (and those it wraps:
// an overflow is also an ErrFailed).
func (e *RemoteError) Is(target error) bool {
	s := codeErrors[e.Code]
	return s != nil && errors.Is(s, target)
}

// Object is the server-side state of one shared object. The server calls
// Invoke with the object's own lock held, so calls on one object run one
// at a time in the order the server received them, while calls on other
// objects run in parallel. Invoke must not block: a call that has to wait
// parks itself with inv.Park and returns; the object answers it later
// through the Waiter. A method that fails returns an error wrapping one of
// the sentinel errors (ErrBadArgs for arguments, ErrFailed otherwise).
type Object interface {
	Invoke(inv *Invocation) (any, error)
}

// Withdrawer is implemented by objects that park calls. Withdraw is called
// with the object's lock held when a parked call is canceled (context,
// deadline, vanished client); the object must forget w and stay consistent.
type Withdrawer interface {
	Withdraw(w *Waiter)
}

// Closer is implemented by objects that must release their parked calls
// when they are deleted. Close is called with the object's lock held.
type Closer interface {
	Close()
}

// Constructor creates an object from the constructor arguments sent with
// the call that first touches it.
type Constructor func(args []any) (Object, error)

// Invocation is one method call as an object sees it.
type Invocation struct {
	Ref    Ref
	Method string
	Args   []any
	err    error
	park   func() *Waiter
	parked *Waiter
}

// NewInvocation builds an invocation; park is called at most once, by
// Park, to register a waiter. Servers and tests use it.
func NewInvocation(ref Ref, method string, args []any, park func() *Waiter) *Invocation {
	return &Invocation{Ref: ref, Method: method, Args: args, park: park}
}

// Reset makes inv equal to what NewInvocation(ref, method, args, park)
// returns, so that a server can reuse one Invocation for calls on objects
// that do not keep it once Invoke returns (see Scalar).
func (inv *Invocation) Reset(ref Ref, method string, args []any, park func() *Waiter) {
	*inv = Invocation{Ref: ref, Method: method, Args: args, park: park}
}

// Park suspends the call: the server sends no reply when Invoke returns,
// and the object must later call w.Reply (or the call is withdrawn).
func (inv *Invocation) Park() *Waiter {
	if inv.parked == nil {
		if inv.park == nil {
			inv.parked = NewWaiter(nil)
		} else {
			inv.parked = inv.park()
		}
	}
	return inv.parked
}

// Parked returns the waiter if Invoke parked the call.
func (inv *Invocation) Parked() *Waiter { return inv.parked }

// Err returns the first argument error met by the accessors.
func (inv *Invocation) Err() error { return inv.err }

func (inv *Invocation) argErr(i int, want string, got any) {
	if inv.err == nil {
		if i >= len(inv.Args) {
			inv.err = fmt.Errorf("%w: %s.%s needs argument %d (%s)", ErrBadArgs, inv.Ref.Type, inv.Method, i+1, want)
		} else {
			inv.err = fmt.Errorf("%w: argument %d of %s.%s: want %s, got %s", ErrBadArgs, i+1, inv.Ref.Type, inv.Method, want, typeName(got))
		}
	}
}

// Arity checks that the call has between min and max arguments.
func (inv *Invocation) Arity(min, max int) bool {
	if n := len(inv.Args); n < min || n > max {
		if inv.err == nil {
			if min == max {
				inv.err = fmt.Errorf("%w: %s.%s takes %d arguments, got %d", ErrBadArgs, inv.Ref.Type, inv.Method, min, n)
			} else {
				inv.err = fmt.Errorf("%w: %s.%s takes %d to %d arguments, got %d", ErrBadArgs, inv.Ref.Type, inv.Method, min, max, n)
			}
		}
		return false
	}
	return inv.err == nil
}

// Int returns argument i as an int64 (a float with an integral value is
// accepted).
func (inv *Invocation) Int(i int) int64 {
	v, ok := AsInt(argAt(inv.Args, i))
	if !ok {
		if f, isFloat := argAt(inv.Args, i).(float64); isFloat && f == math.Trunc(f) && inv.err == nil {
			inv.err = fmt.Errorf("%w: argument %d of %s.%s: %.0f is out of range for int64", ErrBadArgs, i+1, inv.Ref.Type, inv.Method, f)
			return 0
		}
		inv.argErr(i, "int", argAt(inv.Args, i))
	}
	return v
}

// IntOr returns argument i as an int64, or def if the call has fewer args.
func (inv *Invocation) IntOr(i int, def int64) int64 {
	if i >= len(inv.Args) {
		return def
	}
	return inv.Int(i)
}

// Float returns argument i as a float64 (ints are converted).
func (inv *Invocation) Float(i int) float64 {
	v, ok := AsFloat(argAt(inv.Args, i))
	if !ok {
		inv.argErr(i, "float", argAt(inv.Args, i))
	}
	return v
}

// Bool returns argument i as a bool.
func (inv *Invocation) Bool(i int) bool {
	v, ok := argAt(inv.Args, i).(bool)
	if !ok {
		inv.argErr(i, "bool", argAt(inv.Args, i))
	}
	return v
}

// String returns argument i as a string.
func (inv *Invocation) String(i int) string {
	v, ok := argAt(inv.Args, i).(string)
	if !ok {
		inv.argErr(i, "string", argAt(inv.Args, i))
	}
	return v
}

// StringOr returns argument i as a string, or def if absent.
func (inv *Invocation) StringOr(i int, def string) string {
	if i >= len(inv.Args) {
		return def
	}
	return inv.String(i)
}

// Bytes returns argument i as a byte slice (a string is converted).
func (inv *Invocation) Bytes(i int) []byte {
	switch v := argAt(inv.Args, i).(type) {
	case []byte:
		return v
	case string:
		return []byte(v)
	}
	inv.argErr(i, "bytes", argAt(inv.Args, i))
	return nil
}

// Floats returns argument i as a []float64 (a list of numbers is converted).
func (inv *Invocation) Floats(i int) []float64 {
	v, ok := AsFloats(argAt(inv.Args, i))
	if !ok {
		inv.argErr(i, "list of floats", argAt(inv.Args, i))
	}
	return v
}

// Map returns argument i as a map.
func (inv *Invocation) Map(i int) map[string]any {
	v, ok := argAt(inv.Args, i).(map[string]any)
	if !ok {
		inv.argErr(i, "map", argAt(inv.Args, i))
	}
	return v
}

// Value returns argument i as it came, checking that it exists.
func (inv *Invocation) Value(i int) any {
	if i >= len(inv.Args) {
		inv.argErr(i, "value", nil)
		return nil
	}
	return inv.Args[i]
}

func argAt(args []any, i int) any {
	if i < len(args) {
		return args[i]
	}
	return missing{}
}

type missing struct{}

func typeName(v any) string {
	switch v.(type) {
	case missing:
		return "nothing"
	case nil:
		return "nil"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "string"
	case []byte:
		return "bytes"
	case []float64:
		return "floats"
	case []any:
		return "list"
	case map[string]any:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}

// AsInt converts a wire value to int64: an int, or a float with an
// integral value.
func AsInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

// AsFloat converts a wire value (int or float) to float64.
func AsFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// AsFloats converts a []float64 or a list of numbers to []float64.
func AsFloats(v any) ([]float64, bool) {
	switch x := v.(type) {
	case []float64:
		return x, true
	case []any:
		fs := make([]float64, len(x))
		for i, e := range x {
			f, ok := AsFloat(e)
			if !ok {
				return nil, false
			}
			fs[i] = f
		}
		return fs, true
	}
	return nil, false
}

func unknownMethod(inv *Invocation) error {
	return fmt.Errorf("%w: %s has no method %q", ErrUnknownMethod, inv.Ref.Type, inv.Method)
}

// Waiter is a parked call. The first Reply wins; later ones are ignored,
// so a release racing a cancellation answers the call exactly once.
type Waiter struct {
	// Data is the object's own record of what the call waits for.
	Data any
	// ID names the parked call for its owner (the server that parked it),
	// which sets it right after NewWaiter, before the waiter is handed to
	// an object. Objects never read or change it; they keep it, with
	// Data, in the state they encode (ParkedPersister), so that a
	// replicated object table can rebuild its parked calls from a
	// snapshot. Empty for owners that do not persist parked calls.
	ID    string
	reply func(v any, err error)
	done  atomic.Bool
}

// NewWaiter returns a waiter answered through reply (nil: discard).
func NewWaiter(reply func(v any, err error)) *Waiter { return &Waiter{reply: reply} }

// Reply answers the parked call; it reports whether this was the first
// answer. It must not be called with locks that reply itself takes.
func (w *Waiter) Reply(v any, err error) bool {
	if !w.done.CompareAndSwap(false, true) {
		return false
	}
	if w.reply != nil {
		w.reply(v, err)
	}
	return true
}

// Done reports whether the waiter has been answered.
func (w *Waiter) Done() bool { return w.done.Load() }

// Registry maps type names to constructors. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	types map[string]Constructor
	names map[string]string // canonical interned name
}

// NewRegistry returns a registry holding the object library.
func NewRegistry() *Registry {
	r := &Registry{types: map[string]Constructor{}, names: map[string]string{}}
	for name, c := range library {
		r.types[name] = c
		r.names[name] = name
	}
	return r
}

// Register adds a type; registering a name twice is an error.
func (r *Registry) Register(name string, c Constructor) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.types[name]; ok {
		return fmt.Errorf("dso: type %q already registered", name)
	}
	r.types[name] = c
	r.names[name] = name
	return nil
}

// Lookup returns the constructor of a type and the interned type name.
func (r *Registry) Lookup(name string) (Constructor, string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.types[name]
	return c, r.names[name], ok
}

// Types lists the registered type names, sorted.
func (r *Registry) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.types))
	for n := range r.types {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// library holds the constructors of the built-in types, filled by init
// functions of the files that define them.
var library = map[string]Constructor{}
