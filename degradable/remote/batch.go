package remote

import (
	"context"
	"fmt"
	"sync"
)

// batches is the flush bookkeeping of a set or queue segment: whether its
// last batch failed (and is sent again, unchanged, before any later one)
// and whether its Flusher lists it. Its fields are guarded by the
// segment's mutex.
type batches struct {
	retry bool // the batch in the segment's sending slot failed
	dirty bool // listed in the Flusher's segments
}

// markLocked lists seg among f's segments to flush, unless it is listed
// (the segment's mutex held); it fails with ErrClosed once f closed.
func (b *batches) markLocked(f *Flusher, seg flushable) error {
	if b.dirty {
		return nil
	}
	if err := f.mark(seg); err != nil {
		return err
	}
	b.dirty = true
	return nil
}

// sendAll sends a segment's batches, with its flush mutex held: the
// failed batch again, then each next one, until none is left or one
// fails. take (mu held) moves the next batch into the segment's sending
// slot and reports whether there was one; send sends the batch in the
// sending slot; done (mu held) empties the slot. A failed batch stays in
// the slot and the segment stays listed in f (unless f closed: then the
// error says the batch stayed).
func (b *batches) sendAll(ctx context.Context, mu *sync.Mutex, f *Flusher, seg flushable, what string, take func() bool, send func(context.Context) error, done func()) error {
	for {
		mu.Lock()
		if !b.retry {
			if !take() {
				mu.Unlock()
				return nil
			}
			b.dirty = false
		}
		mu.Unlock()
		err := send(ctx)
		mu.Lock()
		if err != nil {
			b.retry = true
			listed := b.dirty
			b.dirty = true
			mu.Unlock()
			if !listed {
				_ = f.mark(seg) // closed: the batch stays, and the error says so
			}
			return fmt.Errorf("remote: flush of %s: %w", what, err)
		}
		b.retry = false
		done()
		mu.Unlock()
	}
}
