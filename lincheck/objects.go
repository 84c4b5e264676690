package lincheck

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// This file holds the models of the DSO objects that the core models do
// not cover: a set partitioned by element, a map partitioned by key, a
// list, a queue-like pipe, and a cyclic barrier's generations.

// SetOp is the kind of a SetModel operation.
type SetOp uint8

// The operations of SetModel.
const (
	SetAdd      SetOp = iota // add Elem; returns whether it was absent
	SetRemove                // remove Elem; returns whether it was present
	SetContains              // returns whether Elem is present
)

// SetInput is the Input of a SetModel operation on the element Elem of the
// set Name.
type SetInput struct {
	Name string
	Op   SetOp
	Elem string
}

// ReadOnly reports whether the operation is a contains.
func (in SetInput) ReadOnly() bool { return in.Op == SetContains }

// SetOutput is the Output of a SetModel operation.
type SetOutput struct {
	Result  bool // add: was absent; remove, contains: was present
	Unknown bool
}

// OutcomeUnknown reports whether Unknown is set.
func (o SetOutput) OutcomeUnknown() bool { return o.Unknown }

// SetModel is the sequential specification of sets of strings, partitioned
// by (set, element): every operation touches one element, so each element
// is checked on its own. The per-partition state is the element's
// membership (bool).
var SetModel = porcupine.Model{
	Partition: PartitionBy(func(input any) string {
		in := setInput(input)
		return in.Name + "\x00" + in.Elem
	}),
	Init: func() any { return false },
	Step: func(state, input, output any) (bool, any) {
		in, member := setInput(input), state.(bool)
		next, result := member, member
		switch in.Op {
		case SetAdd:
			next, result = true, !member
		case SetRemove:
			next = false
		}
		if IsUnknownOutcome(output) {
			return true, next
		}
		return setOutput(output).Result == result, next
	},
	Equal: func(a, b any) bool { return a.(bool) == b.(bool) },
	Hash: func(state any) uint64 {
		if state.(bool) {
			return 1
		}
		return 0
	},
	DescribeOperation: func(input, output any) string {
		in := setInput(input)
		name := [...]string{"add", "remove", "contains"}[in.Op]
		return describe(fmt.Sprintf("%s(%s, %s)", name, in.Name, in.Elem), output, func() string {
			return strconv.FormatBool(setOutput(output).Result)
		})
	},
	DescribeState: func(state any) string { return strconv.FormatBool(state.(bool)) },
}

func setInput(input any) SetInput {
	in, ok := input.(SetInput)
	if !ok || in.Op > SetContains {
		badType("SetModel", "input", input, "SetInput")
	}
	return in
}

func setOutput(output any) SetOutput {
	out, ok := output.(SetOutput)
	if !ok {
		badType("SetModel", "output", output, "SetOutput or UnknownOutcome")
	}
	return out
}

// MapOp is the kind of a MapModel operation.
type MapOp uint8

// The operations of MapModel.
const (
	MapGet    MapOp = iota // returns the value, if present
	MapPut                 // sets Value; returns the previous value, if present
	MapRemove              // deletes; returns the previous value, if present
	MapMerge               // adds Value (combiner sum); returns the new value
)

// MapInput is the Input of a MapModel operation on the entry Key of the
// map Name.
type MapInput struct {
	Name  string
	Key   string
	Op    MapOp
	Value int64
}

// ReadOnly reports whether the operation is a get.
func (in MapInput) ReadOnly() bool { return in.Op == MapGet }

// MapOutput is the Output of a MapModel operation.
type MapOutput struct {
	Value   int64 // the value returned (previous, read, or merged)
	Present bool  // whether there was a value to return
	Unknown bool
}

// OutcomeUnknown reports whether Unknown is set.
func (o MapOutput) OutcomeUnknown() bool { return o.Unknown }

// mapEntry is the per-key state of MapModel.
type mapEntry struct {
	v       int64
	present bool
}

// MapModel is the sequential specification of maps from strings to int64
// with get, put, remove and merge-by-sum, partitioned by (map, key). The
// per-key state is the entry's value and presence.
var MapModel = porcupine.Model{
	Partition: PartitionBy(func(input any) string {
		in := mapInput(input)
		return in.Name + "\x00" + in.Key
	}),
	Init: func() any { return mapEntry{} },
	Step: func(state, input, output any) (bool, any) {
		in, e := mapInput(input), state.(mapEntry)
		next, want := e, MapOutput{Value: e.v, Present: e.present}
		switch in.Op {
		case MapPut:
			next = mapEntry{v: in.Value, present: true}
		case MapRemove:
			next = mapEntry{}
		case MapMerge:
			next = mapEntry{v: e.v + in.Value, present: true}
			want = MapOutput{Value: next.v, Present: true}
		}
		if !want.Present {
			want.Value = 0
		}
		if IsUnknownOutcome(output) {
			return true, next
		}
		got := mapOutput(output)
		if !got.Present {
			got.Value = 0
		}
		return got == want, next
	},
	Equal: func(a, b any) bool { return a.(mapEntry) == b.(mapEntry) },
	Hash: func(state any) uint64 {
		e := state.(mapEntry)
		if !e.present {
			return 0x9e3779b97f4a7c15
		}
		return uint64(e.v)
	},
	DescribeOperation: func(input, output any) string {
		in := mapInput(input)
		var call string
		switch in.Op {
		case MapGet:
			call = fmt.Sprintf("get(%s, %s)", in.Name, in.Key)
		case MapPut:
			call = fmt.Sprintf("put(%s, %s, %d)", in.Name, in.Key, in.Value)
		case MapRemove:
			call = fmt.Sprintf("remove(%s, %s)", in.Name, in.Key)
		default:
			call = fmt.Sprintf("merge(%s, %s, %d)", in.Name, in.Key, in.Value)
		}
		return describe(call, output, func() string {
			o := mapOutput(output)
			if !o.Present {
				return "nil"
			}
			return strconv.FormatInt(o.Value, 10)
		})
	},
	DescribeState: func(state any) string {
		e := state.(mapEntry)
		if !e.present {
			return "nil"
		}
		return strconv.FormatInt(e.v, 10)
	},
}

func mapInput(input any) MapInput {
	in, ok := input.(MapInput)
	if !ok || in.Op > MapMerge {
		badType("MapModel", "input", input, "MapInput")
	}
	return in
}

func mapOutput(output any) MapOutput {
	out, ok := output.(MapOutput)
	if !ok {
		badType("MapModel", "output", output, "MapOutput or UnknownOutcome")
	}
	return out
}

// ListOp is the kind of a ListModel operation.
type ListOp uint8

// The operations of ListModel.
const (
	ListAdd      ListOp = iota // append Value
	ListRead                   // return every element, in order
	ListRemoveAt               // remove element Index; returns it, or not OK if out of range
)

// ListInput is the Input of a ListModel operation on the list Name.
type ListInput struct {
	Name  string
	Op    ListOp
	Value string
	Index int
}

// ReadOnly reports whether the operation is a read.
func (in ListInput) ReadOnly() bool { return in.Op == ListRead }

// ListOutput is the Output of a ListModel operation.
type ListOutput struct {
	Values  []string // ListRead
	Value   string   // ListRemoveAt
	OK      bool     // ListRemoveAt: the index was in range
	Unknown bool
}

// OutcomeUnknown reports whether Unknown is set.
func (o ListOutput) OutcomeUnknown() bool { return o.Unknown }

// ListModel is the sequential specification of lists of strings with
// append, read-all and remove-at, partitioned by list. The state is the
// list, encoded as one string (elements must not contain "\x00").
var ListModel = porcupine.Model{
	Partition: PartitionBy(func(input any) string { return listInput(input).Name }),
	Init:      func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, l := listInput(input), splitList(state.(string))
		unknown := IsUnknownOutcome(output)
		switch in.Op {
		case ListAdd:
			return true, joinList(append(l, in.Value))
		case ListRead:
			return unknown || slices.Equal(l, listOutput(output).Values), state
		default:
			ok := in.Index >= 0 && in.Index < len(l)
			var v string
			next := state
			if ok {
				v = l[in.Index]
				next = joinList(slices.Delete(l, in.Index, in.Index+1))
			}
			if unknown {
				return true, next
			}
			o := listOutput(output)
			return o.OK == ok && (!ok || o.Value == v), next
		}
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	Hash:  hashStringState,
	DescribeOperation: func(input, output any) string {
		in := listInput(input)
		switch in.Op {
		case ListAdd:
			return describe(fmt.Sprintf("add(%s, %s)", in.Name, in.Value), output, nil)
		case ListRead:
			return describe(fmt.Sprintf("toList(%s)", in.Name), output, func() string {
				return "[" + strings.Join(listOutput(output).Values, " ") + "]"
			})
		default:
			return describe(fmt.Sprintf("removeAt(%s, %d)", in.Name, in.Index), output, func() string {
				o := listOutput(output)
				if !o.OK {
					return "out of range"
				}
				return o.Value
			})
		}
	},
	DescribeState: func(state any) string { return "[" + strings.Join(splitList(state.(string)), " ") + "]" },
}

func hashStringState(state any) uint64 {
	h := fnv.New64a()
	h.Write([]byte(state.(string)))
	return h.Sum64()
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s[1:], "\x00")
}

func joinList(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return "\x00" + strings.Join(l, "\x00")
}

func listInput(input any) ListInput {
	in, ok := input.(ListInput)
	if !ok || in.Op > ListRemoveAt {
		badType("ListModel", "input", input, "ListInput")
	}
	return in
}

func listOutput(output any) ListOutput {
	out, ok := output.(ListOutput)
	if !ok {
		badType("ListModel", "output", output, "ListOutput or UnknownOutcome")
	}
	return out
}

// PipeOp is the kind of a PipeModel operation.
type PipeOp uint8

// The operations of PipeModel.
const (
	PipePut   PipeOp = iota // append Value; blocks while full, so it linearizes when there is room
	PipeTake                // remove the head; blocks while empty, so it linearizes when there is one
	PipeOffer               // append Value if there is room; returns whether it did
	PipePoll                // remove the head if any; returns it, or not OK
)

// PipeInput is the Input of a PipeModel operation on the pipe Name, whose
// capacity is Capacity (the same for every operation on one pipe).
type PipeInput struct {
	Name     string
	Op       PipeOp
	Value    string
	Capacity int
}

// PipeOutput is the Output of a PipeModel operation.
type PipeOutput struct {
	Value   string // take, poll: the value removed
	OK      bool   // offer: appended; poll: removed a value
	Unknown bool
}

// OutcomeUnknown reports whether Unknown is set.
func (o PipeOutput) OutcomeUnknown() bool { return o.Unknown }

// PipeModel is the sequential specification of bounded FIFO queues of
// strings (the DSO Pipe), partitioned by pipe. A blocking put or take is
// linearized when it completes, so it is only legal where the queue has
// room (put) or a value (take). The state is the queue, encoded as one
// string (values must not contain "\x00"). A take or poll of unknown
// outcome on an empty queue is taken not to have happened.
var PipeModel = porcupine.Model{
	Partition: PartitionBy(func(input any) string { return pipeInput(input).Name }),
	Init:      func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, q := pipeInput(input), splitList(state.(string))
		unknown := IsUnknownOutcome(output)
		switch in.Op {
		case PipePut:
			if len(q) >= in.Capacity {
				return false, state
			}
			return true, joinList(append(q, in.Value))
		case PipeOffer:
			ok := len(q) < in.Capacity
			next := state
			if ok {
				next = joinList(append(q, in.Value))
			}
			return unknown || pipeOutput(output).OK == ok, next
		default: // take, poll
			if len(q) == 0 {
				if in.Op == PipeTake {
					return unknown, state
				}
				return unknown || !pipeOutput(output).OK, state
			}
			next := joinList(q[1:])
			if unknown {
				return true, next
			}
			o := pipeOutput(output)
			return (in.Op == PipeTake || o.OK) && o.Value == q[0], next
		}
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	Hash:  hashStringState,
	DescribeOperation: func(input, output any) string {
		in := pipeInput(input)
		switch in.Op {
		case PipePut:
			return describe(fmt.Sprintf("put(%s, %s)", in.Name, in.Value), output, nil)
		case PipeOffer:
			return describe(fmt.Sprintf("offer(%s, %s)", in.Name, in.Value), output, func() string {
				return strconv.FormatBool(pipeOutput(output).OK)
			})
		case PipeTake:
			return describe(fmt.Sprintf("take(%s)", in.Name), output, func() string { return pipeOutput(output).Value })
		default:
			return describe(fmt.Sprintf("poll(%s)", in.Name), output, func() string {
				if o := pipeOutput(output); o.OK {
					return o.Value
				}
				return "empty"
			})
		}
	},
	DescribeState: func(state any) string { return "[" + strings.Join(splitList(state.(string)), " ") + "]" },
}

func pipeInput(input any) PipeInput {
	in, ok := input.(PipeInput)
	if !ok || in.Op > PipePoll {
		badType("PipeModel", "input", input, "PipeInput")
	}
	return in
}

func pipeOutput(output any) PipeOutput {
	out, ok := output.(PipeOutput)
	if !ok {
		badType("PipeModel", "output", output, "PipeOutput or UnknownOutcome")
	}
	return out
}

// BarrierInput is the Input of a BarrierModel operation on the barrier
// Name of Parties parties. A call to await is recorded as two operations
// with the same interval: an arrival (Depart false) and a departure
// (Depart true) whose output is the generation the call returned.
type BarrierInput struct {
	Name    string
	Parties int
	Depart  bool
}

// BarrierOutput is the Output of a departure: the generation crossed.
type BarrierOutput struct {
	Generation int64
	Unknown    bool
}

// OutcomeUnknown reports whether Unknown is set.
func (o BarrierOutput) OutcomeUnknown() bool { return o.Unknown }

// barrierState counts the arrivals and departures linearized so far.
type barrierState struct{ arrived, departed int64 }

// BarrierModel is the specification of a cyclic barrier's generations,
// partitioned by barrier: the k-th departure (k = 0, 1, ...) belongs to
// generation k / Parties and may only be linearized once Parties × (that
// generation + 1) arrivals have been. So no call returns before all the
// parties of its generation have called, and each generation releases
// exactly Parties calls, numbered in order. The output of an arrival is
// ignored.
var BarrierModel = porcupine.Model{
	Partition: PartitionBy(func(input any) string { return barrierInput(input).Name }),
	Init:      func() any { return barrierState{} },
	Step: func(state, input, output any) (bool, any) {
		in, s := barrierInput(input), state.(barrierState)
		if !in.Depart {
			s.arrived++
			return true, s
		}
		p := int64(in.Parties)
		gen := s.departed / p
		if s.arrived < p*(gen+1) {
			return false, state
		}
		s.departed++
		if IsUnknownOutcome(output) {
			return true, s
		}
		return barrierOutput(output).Generation == gen, s
	},
	Equal: func(a, b any) bool { return a.(barrierState) == b.(barrierState) },
	Hash: func(state any) uint64 {
		s := state.(barrierState)
		return uint64(s.arrived)<<32 ^ uint64(s.departed)
	},
	DescribeOperation: func(input, output any) string {
		in := barrierInput(input)
		if !in.Depart {
			return describe(fmt.Sprintf("arrive(%s)", in.Name), output, nil)
		}
		return describe(fmt.Sprintf("depart(%s)", in.Name), output, func() string {
			return strconv.FormatInt(barrierOutput(output).Generation, 10)
		})
	},
	DescribeState: func(state any) string {
		s := state.(barrierState)
		return fmt.Sprintf("arrived %d, departed %d", s.arrived, s.departed)
	},
}

func barrierInput(input any) BarrierInput {
	in, ok := input.(BarrierInput)
	if !ok || in.Parties < 1 {
		badType("BarrierModel", "input", input, "BarrierInput with Parties >= 1")
	}
	return in
}

func barrierOutput(output any) BarrierOutput {
	out, ok := output.(BarrierOutput)
	if !ok {
		badType("BarrierModel", "output", output, "BarrierOutput or UnknownOutcome")
	}
	return out
}
