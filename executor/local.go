package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
)

// local runs attempts on goroutines of this process.
type local struct {
	sem    chan struct{} // nil: unlimited
	n      atomic.Int64
	prefix string // of worker names
}

func newLocal(concurrency int, prefix string) *local {
	l := &local{prefix: prefix}
	if concurrency > 0 {
		l.sem = make(chan struct{}, concurrency)
	}
	return l
}

func (l *local) Name() string { return "local" }

func (l *local) Close() error { return nil }

type localResult struct {
	res json.RawMessage
	err error
}

// Invoke runs the attempt on a new goroutine. If the deadline passes or
// ctx is canceled first, it returns at once and abandons the goroutine,
// which runs on until the function returns (Go cannot stop it); its slot
// of the concurrency limit is freed at once.
func (l *local) Invoke(ctx context.Context, inv *Invocation) (json.RawMessage, error) {
	worker := fmt.Sprintf("%s-%d", l.prefix, l.n.Add(1))
	fail := func(k Kind, msg string) error {
		return &Error{Function: inv.Function, Invocation: inv.ID, Attempt: inv.Attempt, Worker: worker, Kind: k, Msg: msg}
	}
	if l.sem != nil {
		select {
		case l.sem <- struct{}{}:
			defer func() { <-l.sem }()
		case <-ctx.Done():
			return nil, fail(KindCanceled, "waiting for a worker: "+ctx.Err().Error())
		}
	}
	actx := ctx
	if !inv.Deadline.IsZero() {
		var cancel context.CancelFunc
		actx, cancel = context.WithDeadline(ctx, inv.Deadline)
		defer cancel()
	}
	done := make(chan localResult, 1)
	go func() {
		res, err := run(actx, inv, worker)
		done <- localResult{res, err}
	}()
	select {
	case r := <-done:
		return r.res, r.err
	case <-actx.Done():
		select {
		case r := <-done: // it returned just in time
			return r.res, r.err
		default:
		}
		if ctx.Err() == nil || ctx.Err() == context.DeadlineExceeded {
			return nil, fail(KindDeadline, "no result by the deadline (its goroutine is abandoned)")
		}
		return nil, fail(KindCanceled, ctx.Err().Error())
	}
}
