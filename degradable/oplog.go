package degradable

import (
	"slices"
	"sync/atomic"
)

// The log keeps its entries in chunks of chunkSize; at most retainChunks
// chunks are kept before the oldest is dropped (after every replica has
// applied it). Every replica of every object that is updated allocates a
// chunk: with 1024-entry chunks Retwis's thousands of per-user sets and
// queues held most of the heap in barely used chunks and spent a third of
// its CPU time in the garbage collector. Smaller chunks cost a hot object
// more trimming (a push to every idle replica per chunk): 64-entry chunks
// made a sequential register 2-3 times slower, 256 did not.
const (
	chunkBits    = 8
	chunkSize    = 1 << chunkBits
	retainChunks = 16
)

// chunk is a fixed run of log entries.
type chunk[T any] [chunkSize]T

// logView is an immutable picture of which chunks a log holds: chunks[0]
// holds the entries from index start on.
type logView[T any] struct {
	start  uint64
	chunks []*chunk[T]
}

// opLog is an append-only log with one appender at a time (the caller
// excludes the others) and any number of concurrent readers, each of which
// reads entries below Len. Entries below the start of the current view have
// been dropped; the owner drops a chunk only once no reader needs it.
type opLog[T any] struct {
	n    atomic.Uint64 // entries published
	view atomic.Pointer[logView[T]]
}

func newOpLog[T any]() *opLog[T] {
	l := &opLog[T]{}
	l.view.Store(&logView[T]{})
	return l
}

// Len returns the number of entries appended so far (dropped ones
// included). Entries below it may be read.
func (l *opLog[T]) Len() uint64 { return l.n.Load() }

// Start returns the index of the first entry not dropped.
func (l *opLog[T]) Start() uint64 { return l.view.Load().start }

// append adds e and returns its index. Appenders must be excluded from each
// other (and from drop) by the caller.
func (l *opLog[T]) append(e T) uint64 {
	i := l.n.Load()
	v := l.view.Load()
	off := i - v.start
	c := int(off >> chunkBits)
	if c == len(v.chunks) {
		v = &logView[T]{start: v.start, chunks: append(slices.Clip(v.chunks), new(chunk[T]))}
		l.view.Store(v)
	}
	v.chunks[c][off&(chunkSize-1)] = e
	l.n.Store(i + 1) // publishes the entry (and the view) to readers
	return i
}

// reader returns a view through which the entries in [from, Len()) can be
// read, for a from not below Start. Load Len before calling it.
func (l *opLog[T]) reader() *logView[T] { return l.view.Load() }

// at returns entry i of the view; i must be published and not dropped.
func (v *logView[T]) at(i uint64) *T {
	off := i - v.start
	return &v.chunks[off>>chunkBits][off&(chunkSize-1)]
}

// full reports whether the log holds more chunks than it should retain, and
// if so the index up to which it may drop once every reader has passed it.
func (l *opLog[T]) full() (upTo uint64, ok bool) {
	v := l.view.Load()
	if len(v.chunks) <= retainChunks {
		return 0, false
	}
	return v.start + chunkSize, true
}

// drop discards the oldest chunk, whose entries end at upTo (as returned by
// full); no reader may need them any more. Appenders must be excluded.
func (l *opLog[T]) drop(upTo uint64) {
	v := l.view.Load()
	if v.start+chunkSize != upTo || len(v.chunks) == 0 {
		return // someone dropped it already
	}
	l.view.Store(&logView[T]{start: upTo, chunks: slices.Clone(v.chunks[1:])})
}
