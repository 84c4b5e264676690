package dso

import "cmp"

// A QueueItem is an item of a weak queue: a List of a table replicated at
// the weak level (dso/replicated), which is a queue of per-writer queues.
// Its wire form, as the List's observe and observeAll return it and its
// state holds it, is [writer, number, stamp, element] (List).
//
// The replicas and the clients that keep a view of such a queue
// (degradable/remote) order its items by CompareQueueItems, so that they
// agree on its front.
type QueueItem struct {
	// Writer names the item's writer: "c:" and the client of the add's
	// command, or "u:" and the id of the segment that sent it.
	Writer string
	// N is the item's number in its writer's order, at least 1.
	N int64
	// Stamp is the writer's stamp (dso/client.NextStamp).
	Stamp int64
	// V is the element, a wire value.
	V any
}

// CompareQueueItems returns the order of a and b in a weak queue: by
// stamp, then writer, then number (negative if a comes first, 0 if they
// have the same stamp, writer and number, positive otherwise). The order
// is total on (stamp, writer, number) and ignores the element; a writer
// that stamps its items in increasing order has them in its order.
func CompareQueueItems(a, b QueueItem) int {
	if c := cmp.Compare(a.Stamp, b.Stamp); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Writer, b.Writer); c != 0 {
		return c
	}
	return cmp.Compare(a.N, b.N)
}

// List returns the wire form of it: [writer, number, stamp, element].
func (it QueueItem) List() []any { return []any{it.Writer, it.N, it.Stamp, it.V} }

// QueueItemFrom decodes the wire form [writer, number, stamp, element]
// of an item; it reports false (and a zero item) unless v is a list of
// four with a non-empty string writer, an integer number at least 1 and
// an integer stamp.
func QueueItemFrom(v any) (QueueItem, bool) {
	l, ok := v.([]any)
	if !ok || len(l) != 4 {
		return QueueItem{}, false
	}
	w, ok1 := l[0].(string)
	n, ok2 := l[1].(int64)
	st, ok3 := l[2].(int64)
	if !ok1 || !ok2 || !ok3 || w == "" || n < 1 {
		return QueueItem{}, false
	}
	return QueueItem{Writer: w, N: n, Stamp: st, V: l[3]}, true
}
