package replicated

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/protocols"
)

// The objects of a weak table whose updates would not commute as the
// library implements them: their effectors carry what the caller observed
// (prepared at the origin: by dso/client for a call at the weak level, by
// the segments of degradable/remote), so that every replica applies the
// same effect whatever order it executes them in (see the package doc).
var weakTypes = map[string]dso.Constructor{
	dso.TypeAtomicLong: newWeakAtomic(additiveLong),
	dso.TypeAtomicInt:  newWeakAtomic(additiveInt),
	dso.TypeCounter:    newWeakCounter,
	dso.TypeSet:        newWeakSet,
	dso.TypeList:       newWeakQueue,
	dso.TypeMap:        newWeakMap,
}

// library is the object library, for the parts of the weak objects that
// are library objects.
var library = dso.NewRegistry()

// weakObject is an object of a weak table whose calls need their command's
// id (tags of adds, writers of enqueues).
type weakObject interface {
	dso.Object
	invokeWeak(id protocols.CommandID, inv *dso.Invocation) (any, error)
}

// ctor returns the constructor of typ in this table: the weak table's own
// for the types in weakTypes.
func (t *Table) ctor(typ string) (dso.Constructor, bool) {
	if t.isWeak() {
		if c, ok := weakTypes[typ]; ok {
			return c, true
		}
	}
	c, _, ok := t.reg.Lookup(typ)
	return c, ok
}

// blank returns a new object of typ to restore a saved state into
// (dso.Registry.Blank), the weak table's own for the types in weakTypes.
func (t *Table) blank(typ string) (dso.Object, error) {
	if c, ok := weakTypes[typ]; ok && t.isWeak() {
		return c(nil)
	}
	return t.reg.Blank(typ)
}

func (t *Table) isWeak() bool { return t.opts.Level == degradable.Weak }

// commandTag is the tag of the adds of command id: "c:" and the client and
// sequence in hex.
func commandTag(id protocols.CommandID) string {
	return "c:" + strconv.FormatUint(id.Client, 16) + "." + strconv.FormatUint(id.Seq, 16)
}

// callerTag is the tag a caller chose (a segment's): "u:" and its text, so
// that it never equals a commandTag.
func callerTag(s string) string { return "u:" + s }

// appliedSeqs is a set of sequence numbers: every number up to floor, and
// the sorted numbers above it in above.
type appliedSeqs struct {
	floor uint64
	above []uint64
}

func (a *appliedSeqs) has(s uint64) bool {
	if s <= a.floor {
		return true
	}
	_, ok := slices.BinarySearch(a.above, s)
	return ok
}

// add inserts s and reports whether it was absent.
func (a *appliedSeqs) add(s uint64) bool {
	if a.has(s) {
		return false
	}
	i, _ := slices.BinarySearch(a.above, s)
	a.above = slices.Insert(a.above, i, s)
	for len(a.above) > 0 && a.above[0] == a.floor+1 {
		a.floor++
		a.above = a.above[1:]
	}
	return true
}

// list encodes the set as [floor, above...].
func (a *appliedSeqs) list() []any {
	out := []any{int64(a.floor)}
	for _, s := range a.above {
		out = append(out, int64(s))
	}
	return out
}

// seqsFrom decodes list.
func seqsFrom(v any) (*appliedSeqs, error) {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return nil, errors.New("applied sequence numbers: not a list")
	}
	a := &appliedSeqs{}
	for i, x := range l {
		n, ok := x.(int64)
		if !ok || n < 0 || (i > 1 && uint64(n) <= a.above[len(a.above)-1]) || (i == 1 && uint64(n) <= a.floor+1) {
			return nil, fmt.Errorf("applied sequence numbers: bad entry %d (%v)", i, x)
		}
		if i == 0 {
			a.floor = uint64(n)
		} else {
			a.above = append(a.above, uint64(n))
		}
	}
	return a, nil
}

// weakCounter is a Counter of a weak table: the library's counter, its
// initial value (weakinit.go), and the flushes of segments applied, so
// that a segment's flush sent again counts once.
//
// flush(segment, seq, delta) adds delta unless the flush seq of segment
// was applied here before; either way it answers the value.
type weakCounter struct {
	lib     dso.Object
	init    weakInit
	applied map[string]*appliedSeqs
}

func newWeakCounter(args []any) (dso.Object, error) {
	lib, in, err := additiveCounter.build(args)
	if err != nil {
		return nil, err
	}
	return &weakCounter{lib: lib, init: in, applied: map[string]*appliedSeqs{}}, nil
}

func (c *weakCounter) offerInit(args []any) (func(), error) {
	return additiveCounter.offer(c.lib, &c.init, args)
}

func (c *weakCounter) Invoke(inv *dso.Invocation) (any, error) {
	return c.invokeWeak(protocols.CommandID{}, inv)
}

func (c *weakCounter) invokeWeak(_ protocols.CommandID, inv *dso.Invocation) (any, error) {
	if inv.Method != "flush" {
		return c.lib.Invoke(inv)
	}
	if !inv.Arity(3, 3) {
		return nil, inv.Err()
	}
	seg, seq, d := inv.String(0), inv.Int(1), inv.Int(2)
	if inv.Err() != nil {
		return nil, inv.Err()
	}
	if seq < 1 {
		return nil, fmt.Errorf("%w: %s.flush: sequence number %d, want at least 1", dso.ErrBadArgs, inv.Ref, seq)
	}
	a := c.applied[seg]
	if a != nil && a.has(uint64(seq)) {
		return c.lib.Invoke(dso.NewInvocation(inv.Ref, "tally", nil, nil))
	}
	v, err := c.lib.Invoke(dso.NewInvocation(inv.Ref, "increment", []any{d}, nil))
	if err != nil {
		return nil, err
	}
	if a == nil {
		a = &appliedSeqs{}
		c.applied[seg] = a
	}
	a.add(uint64(seq))
	return v, nil
}

// ReadOnly implements dso.ReadOnlyMethods.
func (c *weakCounter) ReadOnly(method string) bool { return method == "tally" }

// MarshalState implements dso.Persister: [library state, {segment:
// applied}], and the winning constructor arguments third if an update had
// some.
func (c *weakCounter) MarshalState() ([]byte, error) {
	st, err := c.lib.(dso.Persister).MarshalState()
	if err != nil {
		return nil, err
	}
	applied := make(map[string]any, len(c.applied))
	for s, a := range c.applied {
		applied[s] = a.list()
	}
	if c.init.args != nil {
		return dso.AppendCanonical(nil, []any{st, applied, c.init.args})
	}
	return dso.AppendCanonical(nil, []any{st, applied})
}

// UnmarshalState implements dso.Persister; it also takes the library
// counter's state (a weak table's counter before segments flushed once).
func (c *weakCounter) UnmarshalState(b []byte) error {
	v, err := wire.DecodeValue(b)
	if err != nil {
		return err
	}
	if _, ok := v.(int64); ok {
		if err := additiveCounter.restore(c.lib, &c.init, b, nil); err != nil {
			return err
		}
		c.applied = map[string]*appliedSeqs{}
		return nil
	}
	l, ok := v.([]any)
	if !ok || len(l) < 2 || len(l) > 3 {
		return errors.New("weak counter state: not [state, applied[, constructor arguments]]")
	}
	st, ok1 := l[0].([]byte)
	m, ok2 := l[1].(map[string]any)
	if !ok1 || !ok2 {
		return errors.New("weak counter state: not [bytes, map]")
	}
	applied := make(map[string]*appliedSeqs, len(m))
	for s, x := range m {
		if applied[s], err = seqsFrom(x); err != nil {
			return fmt.Errorf("weak counter state: segment %q: %w", s, err)
		}
	}
	var args any
	if len(l) == 3 {
		if args = l[2]; args == nil {
			return errors.New("weak counter state: nil constructor arguments")
		}
	}
	if err := additiveCounter.restore(c.lib, &c.init, st, args); err != nil {
		return err
	}
	c.applied = applied
	return nil
}

// orElem is an element of a weak set and the tags of its adds not removed.
type orElem struct {
	v    any
	tags map[string]bool
}

// weakSet is a Set of a weak table: an observed-remove set. An add gets a
// tag (commandTag of its command, or callerTag of a tag its caller gave);
// a remove names the tags of the adds it observed and removes those only,
// so that an add it did not observe (a concurrent add) survives it. The
// removed tags stay as tombstones, so that an add that reaches a replica
// after a remove of its tag stays removed.
//
// Methods: add(e[, tag]), addAll(list[, tag[, removes]]) (removes as
// removeAll's, applied after the adds: a segment's batch in one call),
// remove(e, tags),
// removeAll([[e, tags]...]), contains(e), size(), members(), toList(),
// observe(e) (the tags of e's live adds, sorted), observeAll() ([[e,
// tags]...], sorted by e's encoding).
type weakSet struct {
	elems map[string]*orElem         // by the element's encoding
	tomb  map[string]map[string]bool // removed tags, by the element's encoding
}

func newWeakSet([]any) (dso.Object, error) {
	return &weakSet{elems: map[string]*orElem{}, tomb: map[string]map[string]bool{}}, nil
}

func (s *weakSet) Invoke(inv *dso.Invocation) (any, error) {
	return s.invokeWeak(protocols.CommandID{}, inv)
}

// scalar returns the key of the scalar v (the library set's key).
func scalar(v any, what string) (string, error) {
	switch v.(type) {
	case nil, bool, int64, float64, string, []byte:
		b, _ := wire.AppendValue(nil, v)
		return string(b), nil
	}
	return "", fmt.Errorf("%w: %s is %T, not a scalar (nil, bool, int, float, string, bytes)", dso.ErrBadArgs, what, v)
}

// tagArg returns the tag of an add: the caller's (argument i, if given)
// or the command's.
func tagArg(id protocols.CommandID, inv *dso.Invocation, i int) (string, error) {
	if len(inv.Args) > i {
		t, ok := inv.Args[i].(string)
		if !ok || t == "" {
			return "", fmt.Errorf("%w: %s.%s: the tag (argument %d) must be a non-empty string", dso.ErrBadArgs, inv.Ref, inv.Method, i+1)
		}
		return callerTag(t), nil
	}
	if id == (protocols.CommandID{}) {
		return "", fmt.Errorf("%w: %s.%s at the weak level needs its command's id (not in a multi-object call)", dso.ErrBadArgs, inv.Ref, inv.Method)
	}
	return commandTag(id), nil
}

// add adds v under tag, unless tag was removed; it reports whether v was
// absent before.
func (s *weakSet) add(k string, v any, tag string) bool {
	e := s.elems[k]
	if s.tomb[k][tag] {
		return e == nil
	}
	if e == nil {
		s.elems[k] = &orElem{v: v, tags: map[string]bool{tag: true}}
		return true
	}
	e.tags[tag] = true
	return false
}

// remove removes the tags of k, tombstoned; it reports whether k was
// present before.
func (s *weakSet) remove(k string, tags []string) bool {
	if len(tags) == 0 {
		return s.elems[k] != nil
	}
	tb := s.tomb[k]
	if tb == nil {
		tb = map[string]bool{}
		s.tomb[k] = tb
	}
	e := s.elems[k]
	for _, t := range tags {
		tb[t] = true
		if e != nil {
			delete(e.tags, t)
		}
	}
	if e != nil && len(e.tags) == 0 {
		delete(s.elems, k)
	}
	return e != nil
}

// tagsArg reads a list of tags.
func tagsArg(inv *dso.Invocation, v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s.%s: the tags must be a list of strings (observe returns them)", dso.ErrBadArgs, inv.Ref, inv.Method)
	}
	out := make([]string, len(l))
	for i, x := range l {
		t, ok := x.(string)
		if !ok || (len(t) < 3 || (t[:2] != "c:" && t[:2] != "u:")) {
			return nil, fmt.Errorf("%w: %s.%s: tag %d is %v, not a tag observe returned", dso.ErrBadArgs, inv.Ref, inv.Method, i, x)
		}
		out[i] = t
	}
	return out, nil
}

func (s *weakSet) invokeWeak(id protocols.CommandID, inv *dso.Invocation) (any, error) {
	switch inv.Method {
	case "add", "contains", "observe":
		max := 1
		if inv.Method == "add" {
			max = 2
		}
		if !inv.Arity(1, max) {
			return nil, inv.Err()
		}
		k, err := scalar(inv.Args[0], "the element")
		if err != nil {
			return nil, err
		}
		switch inv.Method {
		case "add":
			tag, err := tagArg(id, inv, 1)
			if err != nil {
				return nil, err
			}
			return s.add(k, inv.Args[0], tag), nil
		case "contains":
			return s.elems[k] != nil, nil
		}
		return s.observe(k), nil
	case "addAll":
		if !inv.Arity(1, 3) {
			return nil, inv.Err()
		}
		l, ok := inv.Args[0].([]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s.addAll takes a list", dso.ErrBadArgs, inv.Ref)
		}
		tag, err := tagArg(id, inv, 1)
		if err != nil {
			return nil, err
		}
		keys := make([]string, len(l))
		for i, v := range l {
			if keys[i], err = scalar(v, fmt.Sprintf("addAll: element %d", i)); err != nil {
				return nil, err
			}
		}
		var rms []removal
		if len(inv.Args) == 3 {
			if rms, err = parseRemoves(inv, inv.Args[2]); err != nil {
				return nil, err
			}
		}
		var added int64
		for i, k := range keys {
			if s.add(k, l[i], tag) {
				added++
			}
		}
		s.removeAll(rms)
		return added, nil
	case "remove":
		if !inv.Arity(1, 2) {
			return nil, inv.Err()
		}
		if len(inv.Args) == 1 {
			return nil, fmt.Errorf("%w: %s.remove at the weak level removes the adds its caller observed: remove(e, tags) with the tags observe(e) returned (dso/client prepares them for a remove called at the weak level)", dso.ErrBadArgs, inv.Ref)
		}
		k, err := scalar(inv.Args[0], "the element")
		if err != nil {
			return nil, err
		}
		tags, err := tagsArg(inv, inv.Args[1])
		if err != nil {
			return nil, err
		}
		return s.remove(k, tags), nil
	case "removeAll":
		if !inv.Arity(1, 1) {
			return nil, inv.Err()
		}
		rms, err := parseRemoves(inv, inv.Args[0])
		if err != nil {
			return nil, err
		}
		return s.removeAll(rms), nil
	case "size":
		if inv.Arity(0, 0) {
			return int64(len(s.elems)), nil
		}
	case "members", "toList":
		if inv.Arity(0, 0) {
			out := make([]any, 0, len(s.elems))
			for _, k := range slices.Sorted(maps.Keys(s.elems)) {
				out = append(out, s.elems[k].v)
			}
			return out, nil
		}
	case "observeAll":
		if inv.Arity(0, 0) {
			out := make([]any, 0, len(s.elems))
			for _, k := range slices.Sorted(maps.Keys(s.elems)) {
				out = append(out, []any{s.elems[k].v, s.observe(k)})
			}
			return out, nil
		}
	default:
		return nil, fmt.Errorf("%w: %s has no method %q at the weak level", dso.ErrBadArgs, inv.Ref, inv.Method)
	}
	return nil, inv.Err()
}

// removal is a remove of the tags of the element of key k.
type removal struct {
	k    string
	tags []string
}

// parseRemoves reads a list of [element, tags].
func parseRemoves(inv *dso.Invocation, v any) ([]removal, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s.%s: the removes must be a list of [element, tags]", dso.ErrBadArgs, inv.Ref, inv.Method)
	}
	rms := make([]removal, len(l))
	for i, x := range l {
		p, ok := x.([]any)
		if !ok || len(p) != 2 {
			return nil, fmt.Errorf("%w: %s.%s: remove %d is not [element, tags]", dso.ErrBadArgs, inv.Ref, inv.Method, i)
		}
		k, err := scalar(p[0], fmt.Sprintf("%s: remove %d", inv.Method, i))
		if err != nil {
			return nil, err
		}
		tags, err := tagsArg(inv, p[1])
		if err != nil {
			return nil, err
		}
		rms[i] = removal{k, tags}
	}
	return rms, nil
}

// removeAll applies rms and returns how many elements they took out.
func (s *weakSet) removeAll(rms []removal) int64 {
	var removed int64
	for _, r := range rms {
		if s.remove(r.k, r.tags) && s.elems[r.k] == nil {
			removed++
		}
	}
	return removed
}

// observe returns the tags of k's live adds, sorted.
func (s *weakSet) observe(k string) []any {
	e := s.elems[k]
	if e == nil {
		return []any{}
	}
	out := make([]any, 0, len(e.tags))
	for _, t := range slices.Sorted(maps.Keys(e.tags)) {
		out = append(out, t)
	}
	return out
}

// ReadOnly implements dso.ReadOnlyMethods.
func (s *weakSet) ReadOnly(method string) bool {
	switch method {
	case "contains", "size", "members", "toList", "observe", "observeAll":
		return true
	}
	return false
}

// MarshalState implements dso.Persister: [[[e, tags]...], {key: tombs}],
// the elements sorted by key and the tags sorted.
func (s *weakSet) MarshalState() ([]byte, error) {
	elems := make([]any, 0, len(s.elems))
	for _, k := range slices.Sorted(maps.Keys(s.elems)) {
		elems = append(elems, []any{s.elems[k].v, s.observe(k)})
	}
	tomb := make(map[string]any, len(s.tomb))
	for k, tb := range s.tomb {
		l := make([]any, 0, len(tb))
		for _, t := range slices.Sorted(maps.Keys(tb)) {
			l = append(l, t)
		}
		tomb[k] = l
	}
	return dso.AppendCanonical(nil, []any{elems, tomb})
}

// legacyTag tags the members of a library set's state (a weak table's set
// before sets could remove): a remove that observed them removes them.
const legacyTag = "u:legacy"

// UnmarshalState implements dso.Persister; it also takes the library
// set's state (its members).
func (s *weakSet) UnmarshalState(b []byte) error {
	v, err := wire.DecodeValue(b)
	if err != nil {
		return err
	}
	l, ok := v.([]any)
	if !ok {
		return errors.New("weak set state: not a list")
	}
	elems, tomb := map[string]*orElem{}, map[string]map[string]bool{}
	var pairs []any
	legacy := len(l) != 2
	if !legacy {
		_, isPairs := l[0].([]any)
		m, isMap := l[1].(map[string]any)
		legacy = !isPairs || !isMap
		if !legacy {
			pairs = l[0].([]any)
			for k, x := range m {
				tags, err := stateTags(x)
				if err != nil {
					return fmt.Errorf("weak set state: tombstones: %w", err)
				}
				tomb[k] = map[string]bool{}
				for _, t := range tags {
					tomb[k][t] = true
				}
			}
		}
	}
	if legacy {
		for _, x := range l {
			pairs = append(pairs, []any{x, []any{legacyTag}})
		}
	}
	for i, x := range pairs {
		p, ok := x.([]any)
		if !ok || len(p) != 2 {
			return fmt.Errorf("weak set state: element %d is not [element, tags]", i)
		}
		k, err := scalar(p[0], "element")
		if err != nil {
			return fmt.Errorf("weak set state: %w", err)
		}
		tags, err := stateTags(p[1])
		if err != nil || len(tags) == 0 {
			return fmt.Errorf("weak set state: element %d has no tags (%v)", i, err)
		}
		if elems[k] != nil {
			return fmt.Errorf("weak set state: element %d repeated", i)
		}
		e := &orElem{v: p[0], tags: map[string]bool{}}
		for _, t := range tags {
			e.tags[t] = true
		}
		elems[k] = e
	}
	s.elems, s.tomb = elems, tomb
	return nil
}

// stateTags reads a list of tags of a saved state.
func stateTags(v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, errors.New("tags: not a list")
	}
	out := make([]string, len(l))
	for i, x := range l {
		if out[i], ok = x.(string); !ok {
			return nil, fmt.Errorf("tag %d is not a string", i)
		}
	}
	return out, nil
}

// weakQueue is a List of a weak table, offered as a queue of per-writer
// queues: every item belongs to a writer (the session of the add's
// command, or the writer a segment names) and has a number in that
// writer's order and the writer's stamp; the queue is the items received
// and not removed, ordered by dso.CompareQueueItems (stamp, writer,
// number), as the segments of degradable/remote order their views. A removal names the
// item it removes (as its caller observed it), so every replica removes
// the same one; removed items stay as tombstones per writer, so that an
// item that reaches a replica after its removal stays removed.
//
// Methods: add(e[, stamp]) (writer "c:" and the command's client, number
// its sequence), addAll([[n, stamp, e]...], writer[, removals]) (writer
// "u:" and writer; removals as removeAll's, applied after the adds: a
// segment's batch in one call), removeAt(0, item) (removes item, an observe() result, and
// returns its element), removeAll([[writer, n]...]) (how many were
// present), observe() (the front item [writer, n, stamp, e] or nil),
// observeAll(), size(), toList().
type weakQueue struct {
	items   []dso.QueueItem         // sorted by dso.CompareQueueItems
	index   map[qKey]dso.QueueItem  // the items, by writer and number
	removed map[string]*appliedSeqs // per writer
}

// qKey names an item: its writer and number.
type qKey struct {
	writer string
	n      uint64
}

func newWeakQueue([]any) (dso.Object, error) {
	return &weakQueue{index: map[qKey]dso.QueueItem{}, removed: map[string]*appliedSeqs{}}, nil
}

func (q *weakQueue) Invoke(inv *dso.Invocation) (any, error) {
	return q.invokeWeak(protocols.CommandID{}, inv)
}

// insert adds it unless it is present or removed; it reports whether it
// did.
func (q *weakQueue) insert(it dso.QueueItem) bool {
	if r := q.removed[it.Writer]; r != nil && r.has(uint64(it.N)) {
		return false
	}
	k := qKey{it.Writer, uint64(it.N)}
	if _, ok := q.index[k]; ok { // also under another stamp
		return false
	}
	i, _ := slices.BinarySearchFunc(q.items, it, dso.CompareQueueItems)
	q.items = slices.Insert(q.items, i, it)
	q.index[k] = it
	return true
}

// drop removes the item (writer, n), tombstoned; it reports whether it was
// present.
func (q *weakQueue) drop(writer string, n uint64) bool {
	r := q.removed[writer]
	if r == nil {
		r = &appliedSeqs{}
		q.removed[writer] = r
	}
	r.add(n)
	k := qKey{writer, n}
	it, ok := q.index[k]
	if !ok {
		return false
	}
	delete(q.index, k)
	i, _ := slices.BinarySearchFunc(q.items, it, dso.CompareQueueItems)
	q.items = slices.Delete(q.items, i, i+1)
	return true
}

func (q *weakQueue) invokeWeak(id protocols.CommandID, inv *dso.Invocation) (any, error) {
	switch inv.Method {
	case "add":
		if !inv.Arity(1, 2) {
			return nil, inv.Err()
		}
		var stamp int64
		if len(inv.Args) == 2 {
			stamp = inv.Int(1)
		}
		if inv.Err() != nil {
			return nil, inv.Err()
		}
		if id == (protocols.CommandID{}) {
			return nil, fmt.Errorf("%w: %s.add at the weak level needs its command's id (not in a multi-object call)", dso.ErrBadArgs, inv.Ref)
		}
		q.insert(dso.QueueItem{Writer: "c:" + strconv.FormatUint(id.Client, 16), N: int64(id.Seq), Stamp: stamp, V: inv.Args[0]})
		return true, nil
	case "addAll":
		if !inv.Arity(2, 3) {
			return nil, inv.Err()
		}
		l, ok := inv.Args[0].([]any)
		w := inv.String(1)
		if !ok || inv.Err() != nil || w == "" {
			return nil, fmt.Errorf("%w: %s.addAll at the weak level takes a list of [n, stamp, element] and a writer", dso.ErrBadArgs, inv.Ref)
		}
		its := make([]dso.QueueItem, len(l))
		for i, x := range l {
			p, ok := x.([]any)
			ok = ok && len(p) == 3
			if ok {
				its[i], ok = dso.QueueItemFrom([]any{callerTag(w), p[0], p[1], p[2]})
			}
			if !ok {
				return nil, fmt.Errorf("%w: %s.addAll: entry %d is not [n >= 1, stamp, element]", dso.ErrBadArgs, inv.Ref, i)
			}
		}
		var rs []qKey
		if len(inv.Args) == 3 {
			var err error
			if rs, err = parseItemRefs(inv, inv.Args[2]); err != nil {
				return nil, err
			}
		}
		var added int64
		for _, it := range its {
			if q.insert(it) {
				added++
			}
		}
		for _, r := range rs {
			q.drop(r.writer, r.n)
		}
		return added, nil
	case "removeAt":
		if !inv.Arity(1, 2) {
			return nil, inv.Err()
		}
		if i := inv.Int(0); inv.Err() != nil || i != 0 {
			return nil, fmt.Errorf("%w: %s at the weak level is a queue: removeAt(0) only", dso.ErrBadArgs, inv.Ref)
		}
		if len(inv.Args) == 1 {
			return nil, fmt.Errorf("%w: %s.removeAt(0) at the weak level removes the item its caller observed: removeAt(0, item) with the item observe() returned (dso/client prepares it for a call at the weak level)", dso.ErrBadArgs, inv.Ref)
		}
		it, ok := dso.QueueItemFrom(inv.Args[1])
		if !ok {
			return nil, fmt.Errorf("%w: %s.removeAt: the item must be [writer, n, stamp, element], as observe() returns it", dso.ErrBadArgs, inv.Ref)
		}
		q.drop(it.Writer, uint64(it.N))
		return it.V, nil
	case "removeAll":
		if !inv.Arity(1, 1) {
			return nil, inv.Err()
		}
		rs, err := parseItemRefs(inv, inv.Args[0])
		if err != nil {
			return nil, err
		}
		var removed int64
		for _, r := range rs {
			if q.drop(r.writer, r.n) {
				removed++
			}
		}
		return removed, nil
	case "observe":
		if inv.Arity(0, 0) {
			if len(q.items) == 0 {
				return nil, nil
			}
			return q.items[0].List(), nil
		}
	case "observeAll":
		if inv.Arity(0, 0) {
			out := make([]any, len(q.items))
			for i, it := range q.items {
				out[i] = it.List()
			}
			return out, nil
		}
	case "size":
		if inv.Arity(0, 0) {
			return int64(len(q.items)), nil
		}
	case "toList":
		if inv.Arity(0, 0) {
			out := make([]any, len(q.items))
			for i, it := range q.items {
				out[i] = it.V
			}
			return out, nil
		}
	default:
		return nil, fmt.Errorf("%w: %s has no method %q at the weak level, where a List is a queue", dso.ErrBadArgs, inv.Ref, inv.Method)
	}
	return nil, inv.Err()
}

// parseItemRefs reads a list of [writer, n].
func parseItemRefs(inv *dso.Invocation, v any) ([]qKey, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s.%s: the removals must be a list of [writer, n]", dso.ErrBadArgs, inv.Ref, inv.Method)
	}
	rs := make([]qKey, len(l))
	for i, x := range l {
		p, ok := x.([]any)
		var w string
		var n int64
		if ok && len(p) == 2 {
			w, ok = p[0].(string)
			if ok {
				n, ok = p[1].(int64)
			}
		}
		if !ok || n < 1 || w == "" {
			return nil, fmt.Errorf("%w: %s.%s: removal %d is not [writer, n >= 1]", dso.ErrBadArgs, inv.Ref, inv.Method, i)
		}
		rs[i] = qKey{w, uint64(n)}
	}
	return rs, nil
}

// ReadOnly implements dso.ReadOnlyMethods.
func (q *weakQueue) ReadOnly(method string) bool {
	switch method {
	case "observe", "observeAll", "size", "toList":
		return true
	}
	return false
}

// MarshalState implements dso.Persister: [[item...], {writer: removed}].
func (q *weakQueue) MarshalState() ([]byte, error) {
	items := make([]any, len(q.items))
	for i, it := range q.items {
		items[i] = it.List()
	}
	removed := make(map[string]any, len(q.removed))
	for w, r := range q.removed {
		removed[w] = r.list()
	}
	return dso.AppendCanonical(nil, []any{items, removed})
}

// UnmarshalState implements dso.Persister.
func (q *weakQueue) UnmarshalState(b []byte) error {
	v, err := wire.DecodeValue(b)
	if err != nil {
		return err
	}
	l, ok := v.([]any)
	if !ok || len(l) != 2 {
		return errors.New("weak queue state: not [items, removed]")
	}
	its, ok1 := l[0].([]any)
	m, ok2 := l[1].(map[string]any)
	if !ok1 || !ok2 {
		return errors.New("weak queue state: not [list, map]")
	}
	items := make([]dso.QueueItem, len(its))
	index := make(map[qKey]dso.QueueItem, len(its))
	for i, x := range its {
		it, ok := dso.QueueItemFrom(x)
		if !ok || (i > 0 && dso.CompareQueueItems(items[i-1], it) >= 0) {
			return fmt.Errorf("weak queue state: item %d malformed or out of order", i)
		}
		k := qKey{it.Writer, uint64(it.N)}
		if _, dup := index[k]; dup {
			return fmt.Errorf("weak queue state: item %d repeated under another stamp", i)
		}
		items[i], index[k] = it, it
	}
	removed := make(map[string]*appliedSeqs, len(m))
	for w, x := range m {
		if removed[w], err = seqsFrom(x); err != nil {
			return fmt.Errorf("weak queue state: writer %q: %w", w, err)
		}
	}
	q.items, q.index, q.removed = items, index, removed
	return nil
}
