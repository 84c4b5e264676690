package client

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/blossom-dso/blossom/dso"
)

// lastStamp is the last stamp given to an enqueue at the weak level, so
// that one process's stamps increase even if the clock steps back.
var lastStamp atomic.Int64

// NextStamp returns a stamp for an item of a weak queue: the wall clock in
// microseconds, above every stamp this process returned before.
func NextStamp() int64 {
	for {
		last, now := lastStamp.Load(), time.Now().UnixMicro()
		s := max(now, last+1)
		if lastStamp.CompareAndSwap(last, s) {
			return s
		}
	}
}

// prepareWeak returns the arguments of a call at the weak level, prepared
// here, at its origin, when the weak table needs what the caller observed
// (dso/replicated's weak objects):
//
//   - Set.remove(e) becomes remove(e, tags), tags the adds of e that the
//     replica answering observe(e) holds: the remove removes those and no
//     add it did not observe;
//   - List.removeAt(0) becomes removeAt(0, item), item the front that the
//     replica answering observe() holds (an empty queue fails as the
//     library's List does, with dso.ErrFailed);
//   - List.add(e) becomes add(e, NextStamp()).
//
// Preparing once, before the first send, keeps a retry of the call the
// same command. Other calls are left as they are.
func (p *Persistent) prepareWeak(ctx context.Context, ref dso.Ref, method string, args []any) ([]any, error) {
	switch {
	case ref.Type == dso.TypeSet && method == "remove" && len(args) == 1:
		tags, err := p.Call(ctx, ref, "observe", args, nil)
		if err != nil {
			return nil, err
		}
		return []any{args[0], tags}, nil
	case ref.Type == dso.TypeList && method == "removeAt" && len(args) == 1:
		if i, ok := args[0].(int64); !ok || i != 0 {
			return args, nil // the table refuses it, naming the level
		}
		item, err := p.Call(ctx, ref, "observe", nil, nil)
		if err != nil {
			return nil, err
		}
		if item == nil {
			return nil, fmt.Errorf("%w: index 0 out of range for a list of 0 (%s is empty at the replica that answered)", dso.ErrFailed, ref)
		}
		return []any{args[0], item}, nil
	case ref.Type == dso.TypeList && method == "add" && len(args) == 1:
		return []any{args[0], NextStamp()}, nil
	}
	return args, nil
}
