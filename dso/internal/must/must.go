// Package must holds the few assertions the DSO tests use. They stop the
// test at the first failure, like testify's require, without pulling a
// dependency into the module's test graph.
package must

import (
	"errors"
	"reflect"
	"testing"
)

// NoError fails the test if err is not nil.
func NoError(t testing.TB, err error, what ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error %v %v", err, what)
	}
}

// ErrorIs fails the test unless errors.Is(err, target).
func ErrorIs(t testing.TB, err, target error, what ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v is not %v %v", err, target, what)
	}
}

// Error fails the test if err is nil.
func Error(t testing.TB, err error, what ...any) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error %v", what)
	}
}

// Equal fails the test unless want and got are deeply equal.
func Equal(t testing.TB, want, got any, what ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("want %#v, got %#v %v", want, got, what)
	}
}

// True fails the test unless cond holds.
func True(t testing.TB, cond bool, what ...any) {
	t.Helper()
	if !cond {
		t.Fatalf("condition failed %v", what)
	}
}
