package dso

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"sync"

	"github.com/blossom-dso/blossom/dso/wire"
)

// RegisterType registers the user-defined type T, under the name of T
// (TypeNameOf[T]). newT returns a fresh zero object. Every exported method
// of *T becomes a remote call named after the method. A method may take
// any arguments that ConvertValue can produce (numbers, strings, bytes,
// slices, string-keyed maps, structs) and must return one of: nothing, a
// result, an error, or a result and an error. If *T has a method Init,
// the constructor arguments of the creating call are passed to it.
//
// Methods run on the server under the object's lock, one at a time; they
// must not block. Clients call them with the type-safe stubs Call0..Call3
// and Do0..Do3 on a Shared[T] handle:
//
//	type Centroids struct{ ... }
//	func (c *Centroids) Update(sums []float64, counts []int64) (int64, error)
//
//	dso.RegisterType(reg, func() *Centroids { return &Centroids{} })   // server
//	cs := dso.NewShared[Centroids](c, "centroids", k, dim)               // client
//	n, err := dso.Call2(ctx, cs, (*Centroids).Update, sums, counts)
func RegisterType[T any](r *Registry, newT func() *T) error {
	ut, err := inspect(reflect.TypeFor[*T]())
	if err != nil {
		return err
	}
	return r.Register(TypeNameOf[T](), func(args []any) (Object, error) {
		v := reflect.ValueOf(newT())
		o := &userObject{t: ut, v: v}
		if m, ok := ut.methods["Init"]; ok {
			if _, err := o.call(m, Ref{Type: TypeNameOf[T]()}, args); err != nil {
				return nil, err
			}
		} else if len(args) > 0 {
			return nil, fmt.Errorf("%w: %s has no Init method to take constructor arguments", ErrBadArgs, TypeNameOf[T]())
		}
		return o, nil
	})
}

// TypeNameOf returns the DSO type name of a user-defined type: its Go name
// qualified by its package path's last element ("kmeans.Centroids").
func TypeNameOf[T any]() string {
	t := reflect.TypeFor[T]()
	p := t.PkgPath()
	if i := strings.LastIndex(p, "/"); i >= 0 {
		p = p[i+1:]
	}
	if p == "" {
		return t.Name()
	}
	return p + "." + t.Name()
}

type userType struct {
	methods map[string]userMethod
}

type userMethod struct {
	fn       reflect.Value // func(*T, args...) results
	in       []reflect.Type
	hasValue bool
	hasErr   bool
}

var errorType = reflect.TypeFor[error]()

func inspect(pt reflect.Type) (*userType, error) {
	ut := &userType{methods: map[string]userMethod{}}
	for i := 0; i < pt.NumMethod(); i++ {
		m := pt.Method(i)
		ft := m.Type
		um := userMethod{fn: m.Func}
		for j := 1; j < ft.NumIn(); j++ {
			um.in = append(um.in, ft.In(j))
		}
		switch ft.NumOut() {
		case 0:
		case 1:
			if ft.Out(0) == errorType {
				um.hasErr = true
			} else {
				um.hasValue = true
			}
		case 2:
			if ft.Out(1) != errorType {
				return nil, fmt.Errorf("dso: method %s.%s: second result must be error", pt.Elem().Name(), m.Name)
			}
			um.hasValue, um.hasErr = true, true
		default:
			return nil, fmt.Errorf("dso: method %s.%s returns more than (value, error)", pt.Elem().Name(), m.Name)
		}
		ut.methods[m.Name] = um
	}
	return ut, nil
}

// userObject is an instance of a registered user type.
type userObject struct {
	t *userType
	v reflect.Value // *T
}

func (o *userObject) Invoke(inv *Invocation) (any, error) {
	m, ok := o.t.methods[inv.Method]
	if !ok {
		return nil, unknownMethod(inv)
	}
	return o.call(m, inv.Ref, inv.Args)
}

func (o *userObject) call(m userMethod, ref Ref, args []any) (res any, err error) {
	if len(args) != len(m.in) {
		return nil, fmt.Errorf("%w: %s takes %d arguments, got %d", ErrBadArgs, ref.Type, len(m.in), len(args))
	}
	in := make([]reflect.Value, len(args)+1)
	in[0] = o.v
	for i, a := range args {
		v, err := ConvertValue(a, m.in[i])
		if err != nil {
			return nil, fmt.Errorf("%w: argument %d of %s: %v", ErrBadArgs, i+1, ref.Type, err)
		}
		in[i+1] = v
	}
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("%w: %s panicked: %v", ErrFailed, ref.Type, p)
		}
	}()
	out := m.fn.Call(in)
	if m.hasErr {
		if e := out[len(out)-1]; !e.IsNil() {
			err := e.Interface().(error)
			if CodeOf(err) == wire.CodeApp && !errors.Is(err, ErrFailed) {
				return nil, fmt.Errorf("%w: %v", ErrFailed, err)
			}
			return nil, err
		}
	}
	if m.hasValue {
		return ToValue(out[0])
	}
	return nil, nil
}

// ToValue converts a Go value to a wire value: ints to int64, floats to
// float64, []byte and []float64 as they are, other slices and arrays to
// []any, string-keyed maps to map[string]any, structs to a map of their
// exported fields, pointers to what they point to (nil to nil).
func ToValue(v reflect.Value) (any, error) { return toValue(v, 0) }

func toValue(v reflect.Value, depth int) (any, error) {
	if depth > 32 {
		return nil, fmt.Errorf("dso: value nested deeper than 32 (a cycle?)")
	}
	switch v.Kind() {
	case reflect.Invalid:
		return nil, nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := v.Uint()
		if u > math.MaxInt64 {
			return nil, fmt.Errorf("dso: %d overflows int64", u)
		}
		return int64(u), nil
	case reflect.Float32, reflect.Float64:
		return v.Float(), nil
	case reflect.String:
		return v.String(), nil
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, nil
		}
		return toValue(v.Elem(), depth+1)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil, nil
		}
		switch v.Type().Elem().Kind() {
		case reflect.Uint8:
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			return b, nil
		case reflect.Float64, reflect.Float32:
			fs := make([]float64, v.Len())
			for i := range fs {
				fs[i] = v.Index(i).Float()
			}
			return fs, nil
		}
		l := make([]any, v.Len())
		for i := range l {
			e, err := toValue(v.Index(i), depth+1)
			if err != nil {
				return nil, err
			}
			l[i] = e
		}
		return l, nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("dso: map keys must be strings, not %s", v.Type().Key())
		}
		if v.IsNil() {
			return nil, nil
		}
		m := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			e, err := toValue(it.Value(), depth+1)
			if err != nil {
				return nil, err
			}
			m[it.Key().String()] = e
		}
		return m, nil
	case reflect.Struct:
		m := map[string]any{}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if !t.Field(i).IsExported() {
				continue
			}
			e, err := toValue(v.Field(i), depth+1)
			if err != nil {
				return nil, err
			}
			m[t.Field(i).Name] = e
		}
		return m, nil
	}
	return nil, fmt.Errorf("dso: cannot send a %s", v.Type())
}

// ConvertValue converts a wire value to a Go value of type t, the inverse
// of ToValue. Numbers convert between kinds when no precision is lost.
func ConvertValue(x any, t reflect.Type) (reflect.Value, error) {
	return convert(x, t, 0)
}

func convert(x any, t reflect.Type, depth int) (reflect.Value, error) {
	if depth > 32 {
		return reflect.Value{}, fmt.Errorf("value nested too deep")
	}
	bad := func() (reflect.Value, error) {
		return reflect.Value{}, fmt.Errorf("want %s, got %s", t, typeName(x))
	}
	if x == nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
			return reflect.Zero(t), nil
		}
		return bad()
	}
	if t.Kind() == reflect.Interface && reflect.TypeOf(x).Implements(t) {
		return reflect.ValueOf(x), nil
	}
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Bool:
		b, ok := x.(bool)
		if !ok {
			return bad()
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := AsInt(x)
		if !ok || v.OverflowInt(n) {
			return bad()
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := AsInt(x)
		if !ok || n < 0 || v.OverflowUint(uint64(n)) {
			return bad()
		}
		v.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		f, ok := AsFloat(x)
		if !ok {
			return bad()
		}
		v.SetFloat(f)
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			return bad()
		}
		v.SetString(s)
	case reflect.Pointer:
		e, err := convert(x, t.Elem(), depth+1)
		if err != nil {
			return e, err
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(e)
		return p, nil
	case reflect.Slice:
		var items []any
		switch s := x.(type) {
		case []byte:
			if t.Elem().Kind() == reflect.Uint8 {
				v.SetBytes(append([]byte{}, s...))
				return v, nil
			}
			return bad()
		case []float64:
			items = make([]any, len(s))
			for i, f := range s {
				items[i] = f
			}
		case []any:
			items = s
		default:
			return bad()
		}
		v = reflect.MakeSlice(t, len(items), len(items))
		for i, e := range items {
			ev, err := convert(e, t.Elem(), depth+1)
			if err != nil {
				return ev, fmt.Errorf("element %d: %w", i, err)
			}
			v.Index(i).Set(ev)
		}
	case reflect.Map:
		m, ok := x.(map[string]any)
		if !ok || t.Key().Kind() != reflect.String {
			return bad()
		}
		v = reflect.MakeMapWithSize(t, len(m))
		for k, e := range m {
			ev, err := convert(e, t.Elem(), depth+1)
			if err != nil {
				return ev, fmt.Errorf("entry %q: %w", k, err)
			}
			v.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
		}
	case reflect.Struct:
		m, ok := x.(map[string]any)
		if !ok {
			return bad()
		}
		for k, e := range m {
			f, ok := t.FieldByName(k)
			if !ok || !f.IsExported() {
				return reflect.Value{}, fmt.Errorf("%s has no field %s", t, k)
			}
			ev, err := convert(e, f.Type, depth+1)
			if err != nil {
				return ev, fmt.Errorf("field %s: %w", k, err)
			}
			v.FieldByIndex(f.Index).Set(ev)
		}
	case reflect.Interface:
		if t.NumMethod() == 0 {
			v.Set(reflect.ValueOf(x))
			return v, nil
		}
		return bad()
	default:
		return bad()
	}
	return v, nil
}

// Shared is a typed handle on an object of the user-defined type T.
type Shared[T any] struct{ Handle }

// NewShared returns a handle on the object of type T under key; ctor are
// passed to T's Init method if this handle's first call creates it.
func NewShared[T any](c Caller, key string, ctor ...any) Shared[T] {
	return Shared[T]{NewHandle(c, TypeNameOf[T](), key, ctor...)}
}

var methodNames sync.Map // uintptr -> string

// methodName returns the name of the method behind a method expression
// such as (*T).Update.
func methodName(f any) string {
	pc := reflect.ValueOf(f).Pointer()
	if n, ok := methodNames.Load(pc); ok {
		return n.(string)
	}
	full := runtime.FuncForPC(pc).Name()
	name := strings.TrimSuffix(full[strings.LastIndex(full, ".")+1:], "-fm")
	methodNames.Store(pc, name)
	return name
}

func callTyped[R any](ctx context.Context, h Handle, f any, args ...any) (R, error) {
	var zero R
	for i, a := range args {
		v, err := ToValue(reflect.ValueOf(a))
		if err != nil {
			return zero, fmt.Errorf("%w: argument %d: %v", ErrBadArgs, i+1, err)
		}
		args[i] = v
	}
	m := methodName(f)
	v, err := h.Call(ctx, m, args...)
	if err != nil {
		return zero, err
	}
	rv, err := ConvertValue(v, reflect.TypeFor[R]())
	if err != nil {
		return zero, fmt.Errorf("%s.%s: %w: reply: %v", h.ref, m, ErrInternal, err)
	}
	return rv.Interface().(R), nil
}

// Call0 calls a method of T that takes no argument and returns (R, error).
func Call0[T, R any](ctx context.Context, s Shared[T], m func(*T) (R, error)) (R, error) {
	return callTyped[R](ctx, s.Handle, m)
}

// Call1 calls a method of T with one argument.
func Call1[T, A, R any](ctx context.Context, s Shared[T], m func(*T, A) (R, error), a A) (R, error) {
	return callTyped[R](ctx, s.Handle, m, a)
}

// Call2 calls a method of T with two arguments.
func Call2[T, A, B, R any](ctx context.Context, s Shared[T], m func(*T, A, B) (R, error), a A, b B) (R, error) {
	return callTyped[R](ctx, s.Handle, m, a, b)
}

// Call3 calls a method of T with three arguments.
func Call3[T, A, B, C, R any](ctx context.Context, s Shared[T], m func(*T, A, B, C) (R, error), a A, b B, c C) (R, error) {
	return callTyped[R](ctx, s.Handle, m, a, b, c)
}

// Do0 calls a method of T that takes no argument and returns only an error.
func Do0[T any](ctx context.Context, s Shared[T], m func(*T) error) error {
	_, err := callTyped[any](ctx, s.Handle, m)
	return err
}

// Do1 calls a method of T with one argument that returns only an error.
func Do1[T, A any](ctx context.Context, s Shared[T], m func(*T, A) error, a A) error {
	_, err := callTyped[any](ctx, s.Handle, m, a)
	return err
}

// Do2 calls a method of T with two arguments that returns only an error.
func Do2[T, A, B any](ctx context.Context, s Shared[T], m func(*T, A, B) error, a A, b B) error {
	_, err := callTyped[any](ctx, s.Handle, m, a, b)
	return err
}

// Do3 calls a method of T with three arguments that returns only an error.
func Do3[T, A, B, C any](ctx context.Context, s Shared[T], m func(*T, A, B, C) error, a A, b B, c C) error {
	_, err := callTyped[any](ctx, s.Handle, m, a, b, c)
	return err
}
