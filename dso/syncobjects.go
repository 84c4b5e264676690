package dso

import (
	"fmt"
	"slices"
)

// Type names of the synchronization objects.
const (
	TypeCyclicBarrier  = "CyclicBarrier"
	TypeSemaphore      = "Semaphore"
	TypeCountDownLatch = "CountDownLatch"
	TypeFuture         = "Future"
	TypeRendezvous     = "Rendezvous"
	TypePipe           = "Pipe"
)

func init() {
	library[TypeCyclicBarrier] = newBarrier
	library[TypeSemaphore] = newSemaphore
	library[TypeCountDownLatch] = newLatch
	library[TypeFuture] = func([]any) (Object, error) { return &future{}, nil }
	library[TypeRendezvous] = func([]any) (Object, error) { return &rendezvous{}, nil }
	library[TypePipe] = newPipe
}

// waitQueue is a FIFO of parked calls.
type waitQueue []*Waiter

func (q *waitQueue) remove(w *Waiter) bool {
	i := slices.Index(*q, w)
	if i < 0 {
		return false
	}
	*q = slices.Delete(*q, i, i+1)
	return true
}

func (q *waitQueue) pop() *Waiter {
	w := (*q)[0]
	(*q)[0] = nil
	*q = (*q)[1:]
	return w
}

func (q *waitQueue) failAll(err error) {
	for _, w := range *q {
		w.Reply(nil, err)
	}
	*q = nil
}

func errDeleted(what string) error {
	return fmt.Errorf("%w: %s deleted while a call waited", ErrClosed, what)
}

// barrier is a cyclic barrier for a fixed number of parties. await returns
// the number of the generation it crossed (0, 1, ...). A withdrawn waiter
// leaves the barrier as if it had never arrived.
type barrier struct {
	parties int64
	gen     int64
	waiting waitQueue
}

func newBarrier(args []any) (Object, error) {
	p, err := ctorInt(args, 0, "parties", 0)
	if err != nil {
		return nil, err
	}
	if p < 1 {
		return nil, fmt.Errorf("%w: CyclicBarrier needs at least 1 party, got %d (pass the parties as constructor argument)", ErrBadArgs, p)
	}
	return &barrier{parties: p}, nil
}

func (b *barrier) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "await":
		if !inv.Arity(0, 0) {
			return nil, inv.Err()
		}
		g := b.gen
		if int64(len(b.waiting))+1 >= b.parties {
			for _, w := range b.waiting {
				w.Reply(g, nil)
			}
			b.waiting = b.waiting[:0]
			b.gen++
			return g, nil
		}
		b.waiting = append(b.waiting, inv.Park())
		return nil, nil
	case "getParties":
		inv.Arity(0, 0)
		return b.parties, inv.Err()
	case "getNumberWaiting":
		inv.Arity(0, 0)
		return int64(len(b.waiting)), inv.Err()
	case "generation":
		inv.Arity(0, 0)
		return b.gen, inv.Err()
	}
	return nil, unknownMethod(inv)
}

func (b *barrier) Withdraw(w *Waiter) { b.waiting.remove(w) }
func (b *barrier) Close()             { b.waiting.failAll(errDeleted("barrier")) }

// semaphore is a counting semaphore with FIFO grants: a large request at
// the head of the queue is not overtaken by smaller ones.
type semaphore struct {
	permits int64
	queue   waitQueue // Data: int64 permits wanted
}

func newSemaphore(args []any) (Object, error) {
	p, err := ctorInt(args, 0, "permits", 0)
	return &semaphore{permits: p}, err
}

func (s *semaphore) grant() {
	for len(s.queue) > 0 {
		n := s.queue[0].Data.(int64)
		if n > s.permits {
			return
		}
		s.permits -= n
		s.queue.pop().Reply(nil, nil)
	}
}

func (s *semaphore) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "acquire", "tryAcquire", "release":
		if !inv.Arity(0, 1) {
			return nil, inv.Err()
		}
		n := inv.IntOr(0, 1)
		if inv.Err() != nil {
			return nil, inv.Err()
		}
		if n < 0 {
			return nil, fmt.Errorf("%w: %s(%d): negative permits", ErrBadArgs, inv.Method, n)
		}
		switch inv.Method {
		case "release":
			s.permits += n
			s.grant()
			return nil, nil
		case "tryAcquire":
			if len(s.queue) == 0 && n <= s.permits {
				s.permits -= n
				return true, nil
			}
			return false, nil
		}
		if len(s.queue) == 0 && n <= s.permits {
			s.permits -= n
			return nil, nil
		}
		w := inv.Park()
		w.Data = n
		s.queue = append(s.queue, w)
		return nil, nil
	case "availablePermits":
		inv.Arity(0, 0)
		return s.permits, inv.Err()
	case "drainPermits":
		inv.Arity(0, 0)
		n := max(s.permits, 0)
		s.permits -= n
		return n, inv.Err()
	}
	return nil, unknownMethod(inv)
}

func (s *semaphore) Withdraw(w *Waiter) {
	if s.queue.remove(w) {
		s.grant()
	}
}
func (s *semaphore) Close() { s.queue.failAll(errDeleted("semaphore")) }

// latch is a count-down latch.
type latch struct {
	count   int64
	waiting waitQueue
}

func newLatch(args []any) (Object, error) {
	c, err := ctorInt(args, 0, "count", 0)
	if err == nil && c < 0 {
		err = fmt.Errorf("%w: CountDownLatch count %d is negative", ErrBadArgs, c)
	}
	return &latch{count: c}, err
}

func (l *latch) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "countDown":
		inv.Arity(0, 0)
		if inv.Err() != nil {
			return nil, inv.Err()
		}
		if l.count > 0 {
			l.count--
			if l.count == 0 {
				for _, w := range l.waiting {
					w.Reply(nil, nil)
				}
				l.waiting = nil
			}
		}
		return l.count, nil
	case "getCount":
		inv.Arity(0, 0)
		return l.count, inv.Err()
	case "await":
		inv.Arity(0, 0)
		if inv.Err() != nil || l.count == 0 {
			return nil, inv.Err()
		}
		l.waiting = append(l.waiting, inv.Park())
		return nil, nil
	}
	return nil, unknownMethod(inv)
}

func (l *latch) Withdraw(w *Waiter) { l.waiting.remove(w) }
func (l *latch) Close()             { l.waiting.failAll(errDeleted("latch")) }

// future is a write-once value; get waits until it is set.
type future struct {
	done    bool
	v       any
	waiting waitQueue
}

func (f *future) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "set", "complete":
		if !inv.Arity(1, 1) {
			return nil, inv.Err()
		}
		if f.done {
			return false, nil
		}
		f.done, f.v = true, inv.Args[0]
		for _, w := range f.waiting {
			w.Reply(f.v, nil)
		}
		f.waiting = nil
		return true, nil
	case "get":
		inv.Arity(0, 0)
		if inv.Err() != nil || f.done {
			return f.v, inv.Err()
		}
		f.waiting = append(f.waiting, inv.Park())
		return nil, nil
	case "isDone":
		inv.Arity(0, 0)
		return f.done, inv.Err()
	}
	return nil, unknownMethod(inv)
}

func (f *future) Withdraw(w *Waiter) { f.waiting.remove(w) }
func (f *future) Close()             { f.waiting.failAll(errDeleted("future")) }

// rendezvous pairs calls to exchange: each gets the other's value.
type rendezvous struct{ waiting waitQueue } // Data: the value offered

func (r *rendezvous) Invoke(inv *Invocation) (any, error) {
	if inv.Method != "exchange" {
		return nil, unknownMethod(inv)
	}
	if !inv.Arity(1, 1) {
		return nil, inv.Err()
	}
	if len(r.waiting) > 0 {
		w := r.waiting.pop()
		w.Reply(inv.Args[0], nil)
		return w.Data, nil
	}
	w := inv.Park()
	w.Data = inv.Args[0]
	r.waiting = append(r.waiting, w)
	return nil, nil
}

func (r *rendezvous) Withdraw(w *Waiter) { r.waiting.remove(w) }
func (r *rendezvous) Close()             { r.waiting.failAll(errDeleted("rendezvous")) }

// pipe is a bounded FIFO queue with blocking put and take, closed by its
// writer: after close, take drains what is left and then fails with
// ErrClosed.
type pipe struct {
	capacity int64
	q        []any
	closed   bool
	putters  waitQueue // Data: the value to put
	takers   waitQueue
}

// DefaultPipeCapacity is the capacity of a pipe created without one.
const DefaultPipeCapacity = 1024

func newPipe(args []any) (Object, error) {
	c, err := ctorInt(args, 0, "capacity", DefaultPipeCapacity)
	if err == nil && c < 0 {
		err = fmt.Errorf("%w: Pipe capacity %d is negative", ErrBadArgs, c)
	}
	return &pipe{capacity: c}, err
}

func errPipeClosed() error { return fmt.Errorf("%w: pipe is closed", ErrClosed) }

// put hands v to a taker or queues it; it reports false if the pipe is full.
func (p *pipe) put(v any) bool {
	if len(p.takers) > 0 {
		p.takers.pop().Reply(v, nil)
		return true
	}
	if int64(len(p.q)) < p.capacity {
		p.q = append(p.q, v)
		return true
	}
	return false
}

// take removes the next value, refilling from a parked putter.
func (p *pipe) take() (any, bool) {
	if len(p.q) > 0 {
		v := p.q[0]
		p.q[0] = nil
		p.q = p.q[1:]
		if len(p.putters) > 0 {
			w := p.putters.pop()
			p.q = append(p.q, w.Data)
			w.Reply(nil, nil)
		}
		return v, true
	}
	if len(p.putters) > 0 {
		w := p.putters.pop()
		w.Reply(nil, nil)
		return w.Data, true
	}
	return nil, false
}

func (p *pipe) Invoke(inv *Invocation) (any, error) {
	switch inv.Method {
	case "put", "offer":
		if !inv.Arity(1, 1) {
			return nil, inv.Err()
		}
		if p.closed {
			return nil, errPipeClosed()
		}
		if p.put(inv.Args[0]) {
			if inv.Method == "offer" {
				return true, nil
			}
			return nil, nil
		}
		if inv.Method == "offer" {
			return false, nil
		}
		w := inv.Park()
		w.Data = inv.Args[0]
		p.putters = append(p.putters, w)
		return nil, nil
	case "take", "poll":
		if !inv.Arity(0, 0) {
			return nil, inv.Err()
		}
		v, ok := p.take()
		if inv.Method == "poll" {
			if ok {
				return []any{v}, nil
			}
			return []any{}, nil
		}
		if ok {
			return v, nil
		}
		if p.closed {
			return nil, errPipeClosed()
		}
		p.takers = append(p.takers, inv.Park())
		return nil, nil
	case "close":
		inv.Arity(0, 0)
		if inv.Err() == nil && !p.closed {
			p.closed = true
			p.takers.failAll(errPipeClosed())
			p.putters.failAll(errPipeClosed())
		}
		return nil, inv.Err()
	case "size":
		inv.Arity(0, 0)
		return int64(len(p.q)), inv.Err()
	case "isClosed":
		inv.Arity(0, 0)
		return p.closed, inv.Err()
	}
	return nil, unknownMethod(inv)
}

func (p *pipe) Withdraw(w *Waiter) {
	if !p.putters.remove(w) {
		p.takers.remove(w)
	}
}

func (p *pipe) Close() {
	p.takers.failAll(errDeleted("pipe"))
	p.putters.failAll(errDeleted("pipe"))
}
