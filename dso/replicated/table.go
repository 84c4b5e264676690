// Package replicated is the object table of persistent DSO objects: a
// replica.StateMachine whose commands call, delete and withdraw calls on
// shared objects, so that a consensus protocol (through replica.Core)
// replicates the objects on several nodes. Every replica applies the same
// commands in the same order to its Table and reaches the same objects,
// the same parked calls and the same answers.
//
// A command's Payload is made by EncodeCall, EncodeDelete, EncodeWithdraw
// or EncodeMulti, and its Keys hold the key (Key) of every object it
// touches; the answers are EncodeResult bytes, read with DecodeResult.
//
// Calls run exactly as on the in-memory server (dso/server): an object is
// created by the first call that may change it, with that call's
// constructor arguments; a read of an absent object, or a call that
// fails, leaves no object behind; a method that panics fails with
// dso.ErrInternal and the table stays usable. A call that parks (a
// barrier's await, a semaphore's acquire, a future's get, ...) is part of
// the replicated state: it is answered by the later command that releases
// it (or withdraws it, or deletes its object), and snapshots keep it.
//
// Arguments that nest lists and maps more than wire.MaxDepth-2 deep are
// refused with dso.ErrBadArgs: an object may keep an argument inside its
// state, or return it inside a result, which must decode again.
//
// # Degradation levels
//
// A persistent object is created at one level (degradable.Level) and
// keeps it. Linearizable objects live in the table of the group's
// consensus instance; sequential and weak ones in the tables of the
// group's instances of those levels (runner.HostConfig.Levels: the
// "sequential" and "weak-merge" strategies, Options.Level set). The
// linearizable table also binds every name created at another level (a
// declare command, EncodeDeclare, which the server runs before a name's
// first call at that level), ordered with every call on that name, so that
// addressing an object at another level than its own fails with
// dso.ErrBadArgs naming its level, never making a second object.
//
// A weak table's replicas execute the updates of every replica in any
// interleaving (protocols.Merge), so it offers only the methods whose
// updates commute (WeakMethods): additions to AtomicLong, AtomicInt and
// Counter (together a PN-counter), merges of Map entries that sum
// integers or take the max or min, the reads of these types, and the
// weak table's own Counter, Set and List (weakobjects.go), whose updates
// carry what their caller observed, prepared at the origin (by dso/client
// for a call at the weak level, by the segments of degradable/remote),
// and Map (weakmap.go):
//
//   - a Map key's value is a function of the set of merges it received,
//     whatever their order: the key keeps the sum of its sum-merges, the
//     max of its max-merges and the min of its min-merges, and its value
//     is as if all the sums came first, then the maxes, then the mins
//     (min(max(sum, max), min), leaving out a combiner the key never
//     received); each combiner commutes with itself but not with the
//     others (merging 5 with sum then 3 with max gives 5, the other
//     order 8), so a key merged with several combiners reads that value,
//     not the one of the order its replica executed them in; a merge
//     answers the value after it, and every read reads these values;
//   - Counter.flush(segment, seq, delta) adds delta once per (segment,
//     seq), however often it is sent;
//   - Set is an observed-remove set: an add is tagged (by its command's
//     id, or a tag its caller gives), remove(e, tags) removes the adds it
//     names (those its caller observed, observe(e)) and no other, so a
//     concurrent add survives it; removed tags are kept (tombstones,
//     never collected), so an add that arrives after its remove stays
//     removed;
//   - List is a queue of per-writer queues: an item has its writer (the
//     add's session, or a segment), its number in the writer's order and
//     the writer's stamp, the queue is ordered by (stamp, writer, number)
//     (dso.CompareQueueItems, as the clients' views are),
//     and removeAt(0, item) removes the item it names (the front its
//     caller observed, observe()), which two callers may both take (at
//     least once); removed items are kept per writer (tombstones).
//
// Any other call fails with dso.ErrBadArgs naming the level. Replicas
// that executed the same updates hold equal tables. An addition that
// overflows fails where it overflows, which depends on the order: weak
// counters must stay within int64 (AtomicInt: int32).
//
// Constructor arguments at the weak level: which update creates an object
// differs from replica to replica (two clients may create one object at
// once, at two replicas), so no replica takes the first creation's
// arguments as the object's for good. The initial value of a weak
// AtomicLong, AtomicInt or Counter is that of the least (by canonical
// encoding, dso.AppendCanonical) non-empty constructor arguments among
// all its updates, whatever their order (the type's default, 0, while
// none had any); a replica that executes an update whose arguments win
// changes the object's value by the difference of the initial values, and
// an update that fails leaves them as they were. So clients that create
// such an object with different initial values (or some with none) see
// one of them win everywhere, not each their own; clients should agree on
// them. A call whose constructor arguments the type refuses fails at every
// replica, also where the object exists (elsewhere it would not be
// created). The other weak types ignore constructor arguments. Snapshots
// keep the winning arguments (weakinit.go).
package replicated

import (
	"fmt"
	"slices"
	"strings"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/replica"
)

// DefaultMaxKey is the default of Options.MaxKey, the in-memory server's
// default too (dso/server.DefaultMaxKey).
const DefaultMaxKey = 4096

// Options configures a Table. The zero value holds every object, without
// a limit on their number, with keys up to DefaultMaxKey bytes. Every
// replica of a group must use the same options, or their tables diverge.
type Options struct {
	// MaxObjects bounds the objects the table holds; a call that would
	// create one more is answered with dso.ErrLimit. 0 (or less) means
	// no limit. The limit makes a creation depend on every object created
	// before it, on any key: it keeps replicas identical under protocols
	// that order all commands (Paxos, multicast within a group), not
	// under those that order only commands sharing a key (EPaxos, Atlas),
	// where it must stay 0.
	MaxObjects int
	// MaxKey bounds the length in bytes of the key of an object that a
	// call creates (dso.ErrLimit beyond); 0 (or less) means DefaultMaxKey.
	MaxKey int
	// Owns reports whether this table holds the object ref. A deployment
	// of disjoint multicast groups gives each group's table the objects
	// of that group: a multi-object call then reaches every involved
	// group, and each applies the calls on its own objects. A call,
	// delete or withdraw of an object not owned is answered with
	// dso.ErrWrongNode (false for a withdraw). Nil means every object.
	Owns func(ref dso.Ref) bool
	// Level is the degradation level of the table's objects (see
	// level.go): 0 or degradable.Linearizable for the table of a group's
	// consensus instance, which also holds the bindings of the names
	// created at other levels; degradable.Sequential for a table that a
	// sequential strategy replicates (every method offered);
	// degradable.Weak for one that "weak-merge" replicates, which offers
	// only the methods whose updates commute.
	Level degradable.Level
}

// Table is the replicated object table: a replica.StateMachine. Apply is
// deterministic: the same state and command give the same answers, in the
// same order, and the same next state at every replica (no clock, no
// randomness, no map order). A Table is not safe for concurrent use: every
// method, the read-only ones included, must be called from the goroutine
// that applies the commands.
//
// Commands:
//
//   - a call (EncodeCall) runs a method; it is answered with the method's
//     result, or, if it parks, by the command that releases it;
//   - a withdraw (EncodeWithdraw) cancels a parked call: if the target is
//     parked on an object whose key is among the withdraw command's Keys,
//     the object forgets it (dso.Withdrawer), the target is answered with
//     the withdraw's code and message, and the withdraw with true;
//     otherwise (answered already, not executed yet, unknown, another
//     object) the withdraw is answered with false, and the target, if it
//     executes later, is answered with the withdrawal's error and does
//     not run (the table remembers up to MaxWithdrawn such targets;
//     EncodeWithdrawParked leaves the target free to run instead);
//   - a delete (EncodeDelete) removes an object, answered with whether it
//     existed; the calls parked on it are answered with dso.ErrClosed;
//   - a multi-object call (EncodeMulti) applies its calls on the objects
//     this table owns, in order, in one Apply; see Apply.
//
// A payload that does not decode is answered with an error of code
// wire.CodeMalformed (dso.ErrMalformed) and changes nothing.
type Table struct {
	reg    *dso.Registry
	opts   Options
	objs   map[dso.Ref]*entry
	parked map[protocols.CommandID]*parkedCall
	gone   withdrawnCalls  // calls withdrawn before they executed
	cur    replica.Answers // the Answers of the Apply running, else nil
	// levels binds the names created at another level (linearizable
	// table only).
	levels map[dso.Ref]degradable.Level
	curID  protocols.CommandID // the id of the command Apply runs
}

// entry is one object and the number of its calls in the parked registry.
type entry struct {
	obj     dso.Object
	nparked int
}

// parkedCall is a call waiting on the object ref.
type parkedCall struct {
	ref dso.Ref
	e   *entry
	w   *dso.Waiter
}

var _ replica.StateMachine = (*Table)(nil)

// New returns an empty table of objects of the types in reg (nil: the
// object library, dso.NewRegistry()).
func New(reg *dso.Registry, opts Options) *Table {
	if reg == nil {
		reg = dso.NewRegistry()
	}
	if opts.MaxKey <= 0 {
		opts.MaxKey = DefaultMaxKey
	}
	if opts.MaxObjects < 0 {
		opts.MaxObjects = 0
	}
	return &Table{reg: reg, opts: opts, objs: map[dso.Ref]*entry{}, parked: map[protocols.CommandID]*parkedCall{}}
}

// Apply implements replica.StateMachine: it executes the command c and
// gives a its answer (unless c parks) and the answers of the parked calls
// c releases, before c's own.
//
// A multi-object call applies, in order, each of its calls whose object
// this table owns (Options.Owns), and skips the others: they belong to
// other groups, which apply them at the same point of their own order.
// It is answered with a list holding, per call, its result, or nil for a
// call skipped here; if some of its calls fail, it is answered instead
// with the error of the first that failed (its message names the call).
// A call that fails does not undo the calls before it, nor stop those
// after it: "atomic" means that every involved group applies all the
// calls at the same point of its order, so that no other command sees
// some done and others not, not that they are a transaction. A call that
// would park fails with dso.ErrBadArgs (blocking methods are not allowed
// in a multi-object call) and leaves the object as it was.
//
// A command whose ID is that of a call parked in the table is ignored:
// the core never executes an ID twice, and answering it would answer that
// ID twice.
func (t *Table) Apply(c protocols.Command, a replica.Answers) {
	if _, ok := t.parked[c.ID]; ok {
		return
	}
	t.cur, t.curID = a, c.ID
	defer func() { t.cur, t.curID = nil, protocols.CommandID{} }()
	if g, ok := t.gone.take(c.ID); ok {
		t.answer(c.ID, nil, &dso.RemoteError{Code: g.code, Msg: g.msg})
		return
	}
	cmd, err := decodeCommand(c.Payload)
	if err != nil {
		t.answer(c.ID, nil, err)
		return
	}
	switch cmd.kind {
	case kindCall:
		t.applyCall(c.ID, cmd.calls[0])
	case kindDelete:
		ok, err := t.delete(cmd.calls[0].Ref)
		t.answer(c.ID, ok, err)
	case kindWithdraw, kindWithdrawParked:
		t.answer(c.ID, t.withdraw(c.Keys, cmd), nil)
	case kindMulti:
		v, err := t.multi(cmd.calls)
		t.answer(c.ID, v, err)
	case kindDeclare:
		if t.opts.Level > degradable.Linearizable {
			t.answer(c.ID, nil, fmt.Errorf("%w: a declare goes to the linearizable table, not the %v one", dso.ErrBadArgs, t.opts.Level))
			return
		}
		ok, err := t.declare(cmd.calls[0].Ref, cmd.level)
		t.answer(c.ID, ok, err)
	}
}

// answer gives the answer of id to the Apply running.
func (t *Table) answer(id protocols.CommandID, v any, err error) {
	if t.cur != nil {
		t.cur.Answer(id, EncodeResult(v, err))
	}
}

// waiterID is the dso.Waiter.ID of the call id.
func waiterID(id protocols.CommandID) string { return id.String() }

// newWaiter returns the waiter of the call id: its answer, whenever an
// object gives it, takes it out of the parked registry and goes to the
// Answers of the Apply running.
func (t *Table) newWaiter(id protocols.CommandID) *dso.Waiter {
	var w *dso.Waiter
	w = dso.NewWaiter(func(v any, err error) {
		if p, ok := t.parked[id]; ok && p.w == w {
			delete(t.parked, id)
			p.e.nparked--
		}
		t.answer(id, v, err)
	})
	w.ID = waiterID(id)
	return w
}

// register records that the call id waits on the object ref.
func (t *Table) register(id protocols.CommandID, ref dso.Ref, e *entry, w *dso.Waiter) {
	t.parked[id] = &parkedCall{ref: ref, e: e, w: w}
	e.nparked++
}

// applyCall runs the call command id.
func (t *Table) applyCall(id protocols.CommandID, cl dso.Call) {
	var w *dso.Waiter
	v, e, err := t.run(cl, func() *dso.Waiter {
		w = t.newWaiter(id)
		return w
	}, true)
	switch {
	case w == nil:
		t.answer(id, v, err)
	case err != nil:
		// Through the waiter, so that the call is answered once even if
		// the object answered it already, or keeps it and answers later.
		w.Reply(nil, err)
	case !w.Done(): // else the object answered it before Invoke returned
		t.register(id, cl.Ref, e, w)
	}
}

// run runs one call. It returns the call's result and the entry of the
// object if the table holds it afterwards. If the call parks and mayPark
// is false, or if it parks and fails, the object forgets the waiter
// (dso.Withdrawer) and the call fails.
func (t *Table) run(cl dso.Call, park func() *dso.Waiter, mayPark bool) (any, *entry, error) {
	ref := cl.Ref
	ctor, ok := t.ctor(ref.Type)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q", dso.ErrUnknownType, ref.Type)
	}
	if !t.owns(ref) {
		return nil, nil, fmt.Errorf("%w: this replica group does not hold %s", dso.ErrWrongNode, ref)
	}
	if err := checkDepth("argument", cl.Args); err != nil {
		return nil, nil, err
	}
	if err := checkDepth("constructor argument", cl.Ctor); err != nil {
		return nil, nil, err
	}
	if l, ok := t.levels[ref]; ok {
		return nil, nil, levelMismatch(ref, l, degradable.Linearizable)
	}
	if t.opts.Level == degradable.Weak {
		if err := checkWeak(cl); err != nil {
			return nil, nil, err
		}
	}
	e := t.objs[ref]
	created := e == nil
	if created {
		if len(ref.Key) > t.opts.MaxKey {
			return nil, nil, fmt.Errorf("%w: key of %d bytes; objects are created with keys up to %d bytes", dso.ErrLimit, len(ref.Key), t.opts.MaxKey)
		}
		obj, err := construct(ctor, cl.Ctor)
		if err != nil {
			return nil, nil, fmt.Errorf("create %s: %w", ref, err)
		}
		e = &entry{obj: obj}
	}
	var undo func()
	if t.isWeak() && !created && len(cl.Ctor) > 0 {
		var err error
		if undo, err = t.offerCtor(ctor, e.obj, cl); err != nil {
			return nil, nil, fmt.Errorf("%s: constructor arguments: %w", ref, err)
		}
	}
	inv := dso.NewInvocation(ref, cl.Method, cl.Args, park)
	v, err := invoke(e.obj, inv, t.curID)
	if err != nil && undo != nil {
		undo()
	}
	if w := inv.Parked(); w != nil && (err != nil || !mayPark) {
		if !w.Done() {
			withdrawFrom(e.obj, w)
		}
		if err == nil {
			v, err = nil, fmt.Errorf("%w: %s.%s would wait: blocking methods are not allowed in a multi-object call", dso.ErrBadArgs, ref, cl.Method)
		}
	}
	if !created {
		return v, e, err
	}
	// A new object is kept if the call may have changed it or parked on
	// it; a read or a failed call leaves nothing behind.
	if err != nil || (inv.Parked() == nil && readOnly(e.obj, cl.Method)) {
		return v, nil, err
	}
	if max := t.opts.MaxObjects; max > 0 && len(t.objs) >= max {
		return nil, nil, fmt.Errorf("%w: cannot create %s: the table holds %d objects, its limit", dso.ErrLimit, ref, max)
	}
	t.objs[ref] = e
	return v, e, nil
}

func (t *Table) owns(ref dso.Ref) bool { return t.opts.Owns == nil || t.opts.Owns(ref) }

func readOnly(obj dso.Object, method string) bool {
	ro, ok := obj.(dso.ReadOnlyMethods)
	return ok && ro.ReadOnly(method)
}

// construct runs a constructor; a panic is an internal error.
func construct(ctor dso.Constructor, args []any) (obj dso.Object, err error) {
	defer func() {
		if p := recover(); p != nil {
			obj, err = nil, fmt.Errorf("%w: constructor panicked: %v", dso.ErrInternal, p)
		}
	}()
	obj, err = ctor(args)
	if err == nil && obj == nil {
		err = fmt.Errorf("%w: constructor returned no object", dso.ErrInternal)
	}
	return obj, err
}

// invoke runs one method; a panic is an internal error (the in-memory
// server's rule), and the table stays usable.
// A weak table's own objects (weakObject) get the command's id.
func invoke(obj dso.Object, inv *dso.Invocation, id protocols.CommandID) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("%w: %s.%s panicked: %v", dso.ErrInternal, inv.Ref, inv.Method, p)
		}
	}()
	if w, ok := obj.(weakObject); ok {
		return w.invokeWeak(id, inv)
	}
	return obj.Invoke(inv)
}

// withdrawFrom makes obj forget w, if it can; a panic is swallowed (the
// call is answered anyway).
func withdrawFrom(obj dso.Object, w *dso.Waiter) {
	wd, ok := obj.(dso.Withdrawer)
	if !ok {
		return
	}
	defer func() { _ = recover() }()
	wd.Withdraw(w)
}

// withdraw runs a withdraw command whose Keys are keys.
func (t *Table) withdraw(keys []string, cmd command) bool {
	p, ok := t.parked[cmd.target]
	if !ok {
		if cmd.kind == kindWithdraw {
			t.gone.add(cmd.target, withdrawnCall{code: cmd.code, msg: cmd.msg})
		}
		return false
	}
	if !slices.Contains(keys, Key(p.ref)) {
		return false
	}
	withdrawFrom(p.e.obj, p.w)
	p.w.Reply(nil, &dso.RemoteError{Code: cmd.code, Msg: cmd.msg})
	return true
}

// delete removes the object ref and answers the calls parked on it.
func (t *Table) delete(ref dso.Ref) (bool, error) {
	if !t.owns(ref) {
		return false, fmt.Errorf("%w: this replica group does not hold %s", dso.ErrWrongNode, ref)
	}
	e := t.objs[ref]
	if e == nil {
		if l, ok := t.levels[ref]; ok {
			return false, levelMismatch(ref, l, degradable.Linearizable)
		}
		return false, nil
	}
	delete(t.objs, ref)
	if c, ok := e.obj.(dso.Closer); ok {
		func() {
			defer func() { _ = recover() }()
			c.Close()
		}()
	}
	if e.nparked > 0 {
		// An object that does not release its calls when closed: the
		// table does.
		for _, id := range t.Parked() {
			if p := t.parked[id]; p.e == e {
				p.w.Reply(nil, fmt.Errorf("%w: %s deleted while a call waited", dso.ErrClosed, ref))
			}
		}
	}
	return true, nil
}

// multi runs the calls of a multi-object call.
func (t *Table) multi(calls []dso.Call) (any, error) {
	out := make([]any, len(calls))
	var first error
	for i, cl := range calls {
		if !t.owns(cl.Ref) {
			continue
		}
		v, _, err := t.run(cl, func() *dso.Waiter { return dso.NewWaiter(nil) }, false)
		if err != nil {
			if first == nil {
				first = fmt.Errorf("call %d of %d (%s.%s): %w", i+1, len(calls), cl.Ref, cl.Method, err)
			}
			continue
		}
		out[i] = v
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// Len returns the number of objects in the table.
func (t *Table) Len() int { return len(t.objs) }

// List returns the objects whose type name starts with prefix, sorted by
// type, then key.
func (t *Table) List(prefix string) []dso.Ref {
	var out []dso.Ref
	if prefix == "" { // every object: a snapshot's list, sized once
		out = make([]dso.Ref, 0, len(t.objs))
	}
	for ref := range t.objs {
		if strings.HasPrefix(ref.Type, prefix) {
			out = append(out, ref)
		}
	}
	slices.SortFunc(out, compareRefs)
	return out
}

func compareRefs(a, b dso.Ref) int {
	if c := strings.Compare(a.Type, b.Type); c != 0 {
		return c
	}
	return strings.Compare(a.Key, b.Key)
}

func compareIDs(a, b protocols.CommandID) int {
	switch {
	case a.Less(b):
		return -1
	case b.Less(a):
		return 1
	}
	return 0
}

// Parked returns the ids of the parked calls, sorted (protocols.CommandID
// Less).
func (t *Table) Parked() []protocols.CommandID {
	out := make([]protocols.CommandID, 0, len(t.parked))
	for id := range t.parked {
		out = append(out, id)
	}
	slices.SortFunc(out, compareIDs)
	return out
}

// ParkedOn returns the object the call id is parked on, if it is parked.
func (t *Table) ParkedOn(id protocols.CommandID) (dso.Ref, bool) {
	p, ok := t.parked[id]
	if !ok {
		return dso.Ref{}, false
	}
	return p.ref, true
}

// Get returns the object ref, if the table holds it, for inspection: the
// caller must not call its methods.
func (t *Table) Get(ref dso.Ref) (dso.Object, bool) {
	e, ok := t.objs[ref]
	if !ok {
		return nil, false
	}
	return e.obj, true
}
