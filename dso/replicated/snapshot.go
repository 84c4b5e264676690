package replicated

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/protocols"
)

// The snapshot format: the magic "dsoT" and the version (1); the objects,
// sorted by type then key: a count, then per object its type and key
// (strings), how its state is encoded (1: dso.Persister.MarshalState, 2:
// dso.ParkedPersister.MarshalParked) and the state (uvarint length and
// bytes); the parked calls, sorted by id: a count, then per call its id
// (client and sequence, uvarints) and the type and key of the object it
// waits on; the calls withdrawn before they executed, in id order (see
// withdrawnCalls.appendTo). The order of the calls waiting on one object,
// and what each waits for, is in that object's state (dso.Waiter.ID names
// them).
//
// Version 3 is version 2 followed by the names bound to another level
// (Table.LevelOf), sorted by type then key: a count, then per name its
// type and key (strings) and its level (one byte). A table that binds no
// name writes version 2.
const (
	snapMagic   = "dsoT"
	snapVersion = 2
	// snapVersionLevels is the version with the level bindings.
	snapVersionLevels = 3

	statePersister       = 1
	stateParkedPersister = 2
)

// Snapshot implements replica.StateMachine: the whole table, parked calls
// included; equal tables give equal bytes. It fails, naming the type, if
// an object implements neither dso.ParkedPersister nor dso.Persister (a
// user type registered with dso.RegisterType, say), or implements only
// Persister while calls are parked on it; the replica then keeps its log
// instead of compacting it.
func (t *Table) Snapshot() ([]byte, error) {
	refs := t.List("")
	version := byte(snapVersion)
	if len(t.levels) > 0 {
		version = snapVersionLevels
	}
	b := append([]byte(snapMagic), version)
	b = binary.AppendUvarint(b, uint64(len(refs)))
	for _, ref := range refs {
		kind, state, err := marshalObject(ref, t.objs[ref])
		if err != nil {
			return nil, err
		}
		b = appendString(b, ref.Type)
		b = appendString(b, ref.Key)
		b = append(b, kind)
		b = appendBytes(b, state)
	}
	ids := t.Parked()
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		p := t.parked[id]
		b = binary.AppendUvarint(b, id.Client)
		b = binary.AppendUvarint(b, id.Seq)
		b = appendString(b, p.ref.Type)
		b = appendString(b, p.ref.Key)
	}
	b = t.gone.appendTo(b)
	if len(t.levels) > 0 {
		names := slices.SortedFunc(maps.Keys(t.levels), compareRefs)
		b = binary.AppendUvarint(b, uint64(len(names)))
		for _, ref := range names {
			b = append(appendString(appendString(b, ref.Type), ref.Key), byte(t.levels[ref]))
		}
	}
	return b, nil
}

// marshalObject encodes one object's state; a panic is an error.
func marshalObject(ref dso.Ref, e *entry) (kind byte, state []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			kind, state, err = 0, nil, fmt.Errorf("replicated: snapshot of %s panicked: %v", ref, p)
		}
	}()
	switch o := e.obj.(type) {
	case dso.ParkedPersister:
		state, err = o.MarshalParked()
		kind = stateParkedPersister
	case dso.Persister:
		if e.nparked > 0 {
			return 0, nil, fmt.Errorf("replicated: cannot snapshot %s: %d calls are parked on it and type %s encodes no parked calls (dso.ParkedPersister)", ref, e.nparked, ref.Type)
		}
		state, err = o.MarshalState()
		kind = statePersister
	default:
		return 0, nil, fmt.Errorf("replicated: cannot snapshot %s: type %s implements neither dso.Persister nor dso.ParkedPersister", ref, ref.Type)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("replicated: snapshot of %s: %w", ref, err)
	}
	return kind, state, nil
}

// savedObject and savedCall are the decoded records of a snapshot.
type savedObject struct {
	ref   dso.Ref
	kind  byte
	state []byte
}

type savedCall struct {
	id      protocols.CommandID
	ref     dso.Ref
	revived bool
}

// errSnapshot is wrapped by every error of Restore.
var errSnapshot = errors.New("replicated: bad snapshot")

// Restore implements replica.StateMachine: it replaces the table with the
// one snap encodes (Snapshot). Each object is made by its type's
// constructor with no arguments (dso.Registry.Blank) and given its state.
// Malformed or inconsistent bytes, an unknown type, objects out of order,
// a parked call that its object does not hold (or holds twice), give an
// error and change nothing.
func (t *Table) Restore(snap []byte) error {
	objs, calls, gone, levels, err := decodeSnapshot(snap)
	if err != nil {
		return fmt.Errorf("%w: %w", errSnapshot, err)
	}
	byID := make(map[string]*savedCall, len(calls))
	for i := range calls {
		byID[waiterID(calls[i].id)] = &calls[i]
	}
	newObjs := make(map[dso.Ref]*entry, len(objs))
	newParked := make(map[protocols.CommandID]*parkedCall, len(calls))
	for _, so := range objs {
		e, err := t.restoreObject(so, byID, newParked)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", errSnapshot, so.ref, err)
		}
		newObjs[so.ref] = e
	}
	for _, c := range calls {
		if !c.revived {
			return fmt.Errorf("%w: call %s is parked on %s, which does not hold it", errSnapshot, c.id, c.ref)
		}
	}
	for ref := range levels {
		if newObjs[ref] != nil {
			return fmt.Errorf("%w: %s is both an object and bound to the %v level", errSnapshot, ref, levels[ref])
		}
	}
	t.objs, t.parked, t.gone, t.levels = newObjs, newParked, gone, levels
	return nil
}

// decodeSnapshot reads the records of a snapshot, checking their order.
func decodeSnapshot(snap []byte) ([]savedObject, []savedCall, withdrawnCalls, map[dso.Ref]degradable.Level, error) {
	r := wire.NewReader(snap, "snapshot")
	if len(snap) < len(snapMagic)+1 || string(snap[:len(snapMagic)]) != snapMagic {
		return nil, nil, withdrawnCalls{}, nil, errors.New("not a replicated object table snapshot")
	}
	for range snapMagic { // checked above
		r.Byte()
	}
	version := r.Byte()
	if version != snapVersion && version != snapVersionLevels {
		return nil, nil, withdrawnCalls{}, nil, fmt.Errorf("snapshot version %d, not %d or %d", version, snapVersion, snapVersionLevels)
	}
	n := r.Count(4) // type, key, kind, state: a byte each at least
	objs := make([]savedObject, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		var so savedObject
		so.ref.Type = r.String()
		so.ref.Key = r.String()
		so.kind = r.Byte()
		so.state = r.Bytes()
		if r.Err() != nil {
			break
		}
		if so.kind != statePersister && so.kind != stateParkedPersister {
			r.Fail("object %s: unknown state kind %d", so.ref, so.kind)
		}
		if i > 0 && compareRefs(objs[i-1].ref, so.ref) >= 0 {
			r.Fail("object %s after %s: objects out of order or repeated", so.ref, objs[i-1].ref)
		}
		objs = append(objs, so)
	}
	m := r.Count(4) // client, seq, type, key: a byte each at least
	calls := make([]savedCall, 0, m)
	for i := 0; i < m && r.Err() == nil; i++ {
		var c savedCall
		c.id.Client = r.Uvarint()
		c.id.Seq = r.Uvarint()
		c.ref.Type = r.String()
		c.ref.Key = r.String()
		if r.Err() != nil {
			break
		}
		if i > 0 && !calls[i-1].id.Less(c.id) {
			r.Fail("parked call %s after %s: calls out of order or repeated", c.id, calls[i-1].id)
		}
		calls = append(calls, c)
	}
	gone := readWithdrawn(r)
	var levels map[dso.Ref]degradable.Level
	if version == snapVersionLevels && r.Err() == nil {
		k := r.Count(3) // type, key, level: a byte each at least
		if r.Err() == nil && k == 0 {
			r.Fail("version %d with no level bindings", version)
		}
		levels = make(map[dso.Ref]degradable.Level, k)
		var prev dso.Ref
		for i := 0; i < k && r.Err() == nil; i++ {
			ref := dso.Ref{Type: r.String(), Key: r.String()}
			l := degradable.Level(r.Byte())
			if r.Err() != nil {
				break
			}
			switch {
			case l != degradable.Sequential && l != degradable.Weak:
				r.Fail("%s bound to level %d", ref, l)
			case i > 0 && compareRefs(prev, ref) >= 0:
				r.Fail("binding of %s after %s: out of order or repeated", ref, prev)
			}
			levels[ref], prev = l, ref
		}
	}
	if err := r.Done(); err != nil {
		return nil, nil, withdrawnCalls{}, nil, err
	}
	return objs, calls, gone, levels, nil
}

// restoreObject rebuilds one object of a snapshot and the calls parked on
// it, which it records in parked.
func (t *Table) restoreObject(so savedObject, byID map[string]*savedCall, parked map[protocols.CommandID]*parkedCall) (e *entry, err error) {
	defer func() {
		if p := recover(); p != nil {
			e, err = nil, fmt.Errorf("restoring its state panicked: %v", p)
		}
	}()
	obj, err := t.blank(so.ref.Type)
	if err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, errors.New("its constructor returned no object")
	}
	e = &entry{obj: obj}
	switch so.kind {
	case stateParkedPersister:
		pp, ok := obj.(dso.ParkedPersister)
		if !ok {
			return nil, fmt.Errorf("type %s is not a dso.ParkedPersister", so.ref.Type)
		}
		revive := func(id string, _ any) (*dso.Waiter, error) {
			c := byID[id]
			switch {
			case c == nil:
				return nil, errors.New("not in the snapshot's parked calls")
			case c.ref != so.ref:
				return nil, fmt.Errorf("parked on %s in the snapshot's parked calls", c.ref)
			case c.revived:
				return nil, errors.New("parked twice")
			}
			c.revived = true
			w := t.newWaiter(c.id)
			parked[c.id] = &parkedCall{ref: so.ref, e: e, w: w}
			e.nparked++
			return w, nil
		}
		if err := pp.UnmarshalParked(so.state, revive); err != nil {
			return nil, err
		}
	case statePersister:
		p, ok := obj.(dso.Persister)
		if !ok {
			return nil, fmt.Errorf("type %s is not a dso.Persister", so.ref.Type)
		}
		if err := p.UnmarshalState(so.state); err != nil {
			return nil, err
		}
	}
	return e, nil
}
