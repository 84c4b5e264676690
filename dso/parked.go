package dso

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/blossom-dso/blossom/dso/wire"
)

// The ParkedPersister encodings. Each starts with the format version
// (parkedV1), then the object's fields in a fixed order: integers as
// varints (counts and lengths as uvarints), booleans as one byte 0 or 1,
// values as a uvarint length and their AppendCanonical encoding (each
// value at the top level, so that a value that decoded from a call
// decodes again however deep it nests), and a queue of parked calls as a
// uvarint count and, per call, its ID (uvarint length and bytes) and Data
// (a value).
const parkedV1 = 1

// parkedEnc builds a ParkedPersister encoding.
type parkedEnc struct {
	b   []byte
	err error
}

func newParkedEnc() *parkedEnc { return &parkedEnc{b: []byte{parkedV1}} }

func (e *parkedEnc) uvarint(u uint64) { e.b = binary.AppendUvarint(e.b, u) }
func (e *parkedEnc) varint(i int64)   { e.b = binary.AppendVarint(e.b, i) }

func (e *parkedEnc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *parkedEnc) bytes(p []byte) {
	e.uvarint(uint64(len(p)))
	e.b = append(e.b, p...)
}

func (e *parkedEnc) value(v any) {
	if e.err != nil {
		return
	}
	enc, err := AppendCanonical(nil, v)
	if err != nil {
		e.err = err
		return
	}
	e.bytes(enc)
}

func (e *parkedEnc) queue(q waitQueue) {
	e.uvarint(uint64(len(q)))
	for _, w := range q {
		e.bytes([]byte(w.ID))
		e.value(w.Data)
	}
}

func (e *parkedEnc) done() ([]byte, error) { return e.b, e.err }

// parkedDec reads a ParkedPersister encoding; the first error sticks.
type parkedDec struct {
	*wire.Reader
	typ    string
	revive func(id string, data any) (*Waiter, error)
}

func newParkedDec(typ string, b []byte, revive func(string, any) (*Waiter, error)) *parkedDec {
	d := &parkedDec{Reader: wire.NewReader(b, "dso: "+typ+" state"), typ: typ, revive: revive}
	if v := d.Byte(); d.Err() == nil && v != parkedV1 {
		d.Fail("unknown format version %d", v)
	}
	return d
}

func (d *parkedDec) bool() bool {
	switch c := d.Byte(); c {
	case 0:
		return false
	case 1:
		return true
	default:
		d.Fail("bad boolean %d", c)
		return false
	}
}

// queue reads a queue of parked calls, reviving each.
func (d *parkedDec) queue() waitQueue {
	n := d.Count(2)
	if d.Err() != nil || n == 0 {
		return nil
	}
	q := make(waitQueue, 0, n)
	for range n {
		id := d.String()
		data := d.Value()
		if d.Err() != nil {
			return nil
		}
		w, err := d.revive(id, data)
		if err != nil {
			d.SetErr(fmt.Errorf("dso: %s state: parked call %q: %w", d.typ, id, err))
			return nil
		}
		if w == nil {
			d.Fail("revive gave no waiter for parked call %q", id)
			return nil
		}
		w.Data = data
		q = append(q, w)
	}
	return q
}

// MarshalParked implements ParkedPersister: parties, generation, waiters.
func (b *barrier) MarshalParked() ([]byte, error) {
	e := newParkedEnc()
	e.varint(b.parties)
	e.varint(b.gen)
	e.queue(b.waiting)
	return e.done()
}

// UnmarshalParked implements ParkedPersister.
func (b *barrier) UnmarshalParked(p []byte, revive func(string, any) (*Waiter, error)) error {
	d := newParkedDec(TypeCyclicBarrier, p, revive)
	parties, gen := d.Varint(), d.Varint()
	if d.Err() == nil && (parties < 1 || gen < 0) {
		d.Fail("%d parties, generation %d", parties, gen)
	}
	q := d.queue()
	if d.Err() == nil && int64(len(q)) >= parties {
		d.Fail("%d waiting for %d parties", len(q), parties)
	}
	if err := d.Done(); err != nil {
		return err
	}
	b.parties, b.gen, b.waiting = parties, gen, q
	return nil
}

// MarshalParked implements ParkedPersister: permits, then the queue of
// acquirers (Data: the permits each wants).
func (s *semaphore) MarshalParked() ([]byte, error) {
	e := newParkedEnc()
	e.varint(s.permits)
	e.queue(s.queue)
	return e.done()
}

// UnmarshalParked implements ParkedPersister.
func (s *semaphore) UnmarshalParked(p []byte, revive func(string, any) (*Waiter, error)) error {
	d := newParkedDec(TypeSemaphore, p, revive)
	permits := d.Varint()
	q := d.queue()
	for i, w := range q {
		n, ok := w.Data.(int64)
		if !ok || n < 0 {
			d.Fail("acquirer %d wants %s permits", i+1, typeName(w.Data))
			break
		}
		if i == 0 && n <= permits {
			d.Fail("head acquirer wants %d of %d available permits yet waits", n, permits)
		}
	}
	if err := d.Done(); err != nil {
		return err
	}
	s.permits, s.queue = permits, q
	return nil
}

// MarshalParked implements ParkedPersister: count, waiters.
func (l *latch) MarshalParked() ([]byte, error) {
	e := newParkedEnc()
	e.varint(l.count)
	e.queue(l.waiting)
	return e.done()
}

// UnmarshalParked implements ParkedPersister.
func (l *latch) UnmarshalParked(p []byte, revive func(string, any) (*Waiter, error)) error {
	d := newParkedDec(TypeCountDownLatch, p, revive)
	count := d.Varint()
	if d.Err() == nil && count < 0 {
		d.Fail("negative count %d", count)
	}
	q := d.queue()
	if d.Err() == nil && count == 0 && len(q) > 0 {
		d.Fail("%d waiting on an open latch", len(q))
	}
	if err := d.Done(); err != nil {
		return err
	}
	l.count, l.waiting = count, q
	return nil
}

// MarshalParked implements ParkedPersister: done, value, waiters.
func (f *future) MarshalParked() ([]byte, error) {
	e := newParkedEnc()
	e.bool(f.done)
	e.value(f.v)
	e.queue(f.waiting)
	return e.done()
}

// UnmarshalParked implements ParkedPersister.
func (f *future) UnmarshalParked(p []byte, revive func(string, any) (*Waiter, error)) error {
	d := newParkedDec(TypeFuture, p, revive)
	done := d.bool()
	v := d.Value()
	if d.Err() == nil && !done && v != nil {
		d.Fail("a value in a future not set")
	}
	q := d.queue()
	if d.Err() == nil && done && len(q) > 0 {
		d.Fail("%d waiting on a future already set", len(q))
	}
	if err := d.Done(); err != nil {
		return err
	}
	f.done, f.v, f.waiting = done, v, q
	return nil
}

// MarshalParked implements ParkedPersister: the waiters (Data: the value
// each offers).
func (r *rendezvous) MarshalParked() ([]byte, error) {
	e := newParkedEnc()
	e.queue(r.waiting)
	return e.done()
}

// UnmarshalParked implements ParkedPersister.
func (r *rendezvous) UnmarshalParked(p []byte, revive func(string, any) (*Waiter, error)) error {
	d := newParkedDec(TypeRendezvous, p, revive)
	q := d.queue()
	if d.Err() == nil && len(q) > 1 {
		d.Fail("%d waiting to exchange, which pair up as they come", len(q))
	}
	if err := d.Done(); err != nil {
		return err
	}
	r.waiting = q
	return nil
}

// MarshalParked implements ParkedPersister: capacity, closed, the queued
// values, the putters (Data: the value each puts), the takers.
func (p *pipe) MarshalParked() ([]byte, error) {
	e := newParkedEnc()
	e.varint(p.capacity)
	e.bool(p.closed)
	e.uvarint(uint64(len(p.q)))
	for _, v := range p.q {
		e.value(v)
	}
	e.queue(p.putters)
	e.queue(p.takers)
	return e.done()
}

// UnmarshalParked implements ParkedPersister.
func (p *pipe) UnmarshalParked(b []byte, revive func(string, any) (*Waiter, error)) error {
	d := newParkedDec(TypePipe, b, revive)
	capacity := d.Varint()
	closed := d.bool()
	n := d.Count(2)
	if d.Err() == nil && (capacity < 0 || int64(n) > capacity) {
		d.Fail("%d values in a pipe of capacity %d", n, capacity)
	}
	var q []any
	if d.Err() == nil && n > 0 {
		q = make([]any, n)
		for i := range q {
			q[i] = d.Value()
		}
	}
	putters := d.queue()
	takers := d.queue()
	switch {
	case d.Err() != nil:
	case closed && len(putters)+len(takers) > 0:
		d.Fail("calls waiting on a closed pipe")
	case len(putters) > 0 && int64(n) < capacity:
		d.Fail("putters waiting on a pipe that is not full")
	case len(takers) > 0 && (n > 0 || len(putters) > 0):
		d.Fail("takers waiting on a pipe that holds values")
	}
	if err := d.Done(); err != nil {
		return err
	}
	p.capacity, p.closed, p.q, p.putters, p.takers = capacity, closed, q, putters, takers
	return nil
}

// MarshalParked implements ParkedPersister: rows, columns and the cells
// (float64 bits, big-endian); a matrix parks nothing.
func (o *matrix) MarshalParked() ([]byte, error) {
	e := newParkedEnc()
	e.uvarint(uint64(o.rows))
	e.uvarint(uint64(o.cols))
	for _, x := range o.v {
		e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(x))
	}
	return e.done()
}

// UnmarshalParked implements ParkedPersister; revive is never called.
func (o *matrix) UnmarshalParked(b []byte, _ func(string, any) (*Waiter, error)) error {
	d := newParkedDec(TypeMatrix, b, nil)
	r, c := d.Uvarint(), d.Uvarint()
	if d.Err() == nil && (r > MaxMatrixCells || c > MaxMatrixCells || (c > 0 && r > MaxMatrixCells/c)) {
		d.Fail("%d×%d matrix larger than %d cells", r, c, MaxMatrixCells)
	}
	cells := int(r * c)
	if d.Err() == nil && d.Left()/8 < cells {
		d.Fail("%d cells in %d bytes", cells, d.Left())
	}
	if d.Err() != nil {
		return d.Err()
	}
	v := make([]float64, cells)
	for i := range v {
		v[i] = math.Float64frombits(d.U64())
	}
	if err := d.Done(); err != nil {
		return err
	}
	o.rows, o.cols, o.v = int(r), int(c), v
	return nil
}

// MarshalParked implements ParkedPersister: the bytes; a blob parks
// nothing.
func (o *blob) MarshalParked() ([]byte, error) {
	e := newParkedEnc()
	e.bytes(o.b)
	return e.done()
}

// UnmarshalParked implements ParkedPersister; revive is never called.
func (o *blob) UnmarshalParked(b []byte, _ func(string, any) (*Waiter, error)) error {
	d := newParkedDec(TypeBlob, b, nil)
	p := d.Bytes()
	if d.Err() == nil && len(p) > MaxBlob {
		d.Fail("blob of %d bytes, more than %d", len(p), MaxBlob)
	}
	if err := d.Done(); err != nil {
		return err
	}
	o.b = append([]byte(nil), p...)
	return nil
}
