package dso

import "fmt"

// blanks make the library objects whose constructor refuses to run
// without arguments, in a placeholder state that UnmarshalParked replaces.
var blanks = map[string]func() Object{
	TypeCyclicBarrier: func() Object { return &barrier{parties: 1} },
}

// Blank returns a new object of the type name, to be given a saved state
// with Persister.UnmarshalState or ParkedPersister.UnmarshalParked: the
// type's constructor called with no arguments, or, for a library type
// whose constructor needs some (CyclicBarrier needs its parties), an
// object in a placeholder state that the saved state replaces. It fails
// for a type the registry does not know and with the constructor's error.
func (r *Registry) Blank(name string) (Object, error) {
	ctor, canon, ok := r.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, name)
	}
	// A library name cannot be registered again, so blanks[canon] is the
	// library type's.
	if b, ok := blanks[canon]; ok {
		return b(), nil
	}
	return ctor(nil)
}
