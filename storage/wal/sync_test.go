package wal

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// blockingSync replaces the Log's fsync with one that announces each call
// on started and then waits for a value on release.
type blockingSync struct {
	started chan struct{}
	release chan error
	calls   atomic.Int64
}

func installBlockingSync(l *Log) *blockingSync {
	bs := &blockingSync{started: make(chan struct{}, 100), release: make(chan error)}
	l.mu.Lock()
	l.syncFile = func(*os.File) error {
		bs.calls.Add(1)
		bs.started <- struct{}{}
		return <-bs.release
	}
	l.mu.Unlock()
	return bs
}

// openSynced opens dir with fsync enabled (the tests replace syncFile).
func openSynced(t *testing.T, dir string) *Log {
	t.Helper()
	lg, _ := testLogger()
	l, _, err := Open(Options{Dir: dir, Logger: lg})
	require.NoError(t, err)
	return l
}

// waitFor polls until cond holds (no deadline: the test timeout is the
// backstop, so the tests do not depend on timing).
func waitFor(cond func() bool) {
	for !cond() {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func (l *Log) waiters() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waiting
}

// TestGroupCommit: while one fsync is in flight, N more callers Write and
// Sync; all of them are then covered by exactly one more fsync.
func TestGroupCommit(t *testing.T) {
	const n = 32
	l := openSynced(t, t.TempDir())
	bs := installBlockingSync(l)
	base := l.Stats().Fsyncs

	_, err := l.Write(rec(0))
	require.NoError(t, err)
	first := make(chan error, 1)
	go func() { first <- l.Sync() }()
	<-bs.started // the leader's fsync is now in flight

	var wrote, done sync.WaitGroup
	errs := make(chan error, n)
	wrote.Add(n)
	for i := range n {
		done.Go(func() {
			_, err := l.Write(rec(i + 1))
			wrote.Done()
			if err == nil {
				err = l.Sync()
			}
			errs <- err
		})
	}
	wrote.Wait()
	// Every caller is parked behind the in-flight fsync, none started its
	// own.
	waitFor(func() bool {
		require.EqualValues(t, 1, bs.calls.Load(), "an fsync started while one was in flight")
		return l.waiters() == n
	})
	select {
	case <-first:
		t.Fatal("Sync returned before its fsync completed")
	default:
	}

	bs.release <- nil // first fsync completes
	require.NoError(t, <-first)
	allDone := make(chan struct{})
	go func() { done.Wait(); close(allDone) }()
	select {
	case <-bs.started: // one waiter leads the second fsync
		bs.release <- nil // and it covers everyone
		<-allDone
	case <-allDone:
		t.Fatal("the waiters returned without an fsync covering their records")
	}
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 2, bs.calls.Load())
	require.EqualValues(t, 2, l.Stats().Fsyncs-base)

	// Nothing new written: Sync needs no fsync.
	require.NoError(t, l.Sync())
	require.EqualValues(t, 2, bs.calls.Load())

	// Close syncs nothing more either.
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	require.NoError(t, <-closed)
	require.EqualValues(t, 2, bs.calls.Load())
}

// TestSyncFailureIsSticky: after a failed fsync the Log refuses further use
// with that error; waiters behind the failed fsync get it too.
func TestSyncFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	l := openSynced(t, dir)
	bs := installBlockingSync(l)
	_, err := l.Write(rec(1))
	require.NoError(t, err)
	first := make(chan error, 1)
	go func() { first <- l.Sync() }()
	<-bs.started
	second := make(chan error, 1)
	go func() {
		_, err := l.Append(rec(2))
		second <- err
	}()
	waitFor(func() bool { return l.waiters() == 1 })

	boom := errors.New("EIO")
	bs.release <- boom
	require.ErrorIs(t, <-first, boom)
	require.ErrorIs(t, <-second, boom)
	_, err = l.Write(rec(3))
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, l.Sync(), boom)
	require.ErrorIs(t, l.SaveSnapshot(1, nil), boom)
	require.ErrorIs(t, l.Close(), boom)

	// What was written is still there for the next Open.
	l, r, _ := openT(t, dir, 0)
	require.Equal(t, recs(1, 2), r.Records)
	require.NoError(t, l.Close())
}

// TestCloseWaitsForInflightSync: Close lets a running fsync finish before
// closing the file, and its own final fsync covers later writes.
func TestCloseWaitsForInflightSync(t *testing.T) {
	dir := t.TempDir()
	l := openSynced(t, dir)
	bs := installBlockingSync(l)
	_, err := l.Write(rec(1))
	require.NoError(t, err)
	first := make(chan error, 1)
	go func() { first <- l.Sync() }()
	<-bs.started
	_, err = l.Write(rec(2))
	require.NoError(t, err)

	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	waitFor(func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.closed
	})
	select {
	case <-closed:
		t.Fatal("Close returned during an fsync")
	default:
	}
	bs.release <- nil
	require.NoError(t, <-first)
	select {
	case <-bs.started: // Close's own fsync for record 2
		bs.release <- nil
		require.NoError(t, <-closed)
	case err := <-closed:
		t.Fatalf("Close returned (%v) without syncing record 2", err)
	}
	require.EqualValues(t, 2, bs.calls.Load())
}

// TestRollSyncsPreviousSegment: a segment is fsynced before the next one is
// created, so the records in it count as synced.
func TestRollSyncsPreviousSegment(t *testing.T) {
	dir := t.TempDir()
	lg, _ := testLogger()
	l, _, err := Open(Options{Dir: dir, SegmentBytes: 50, Logger: lg})
	require.NoError(t, err)
	var calls atomic.Int64
	l.syncFile = func(f *os.File) error { calls.Add(1); return f.Sync() }
	_, err = l.Write(recs(1, 3)...) // 1 and 2 fill the segment, 3 rolls
	require.NoError(t, err)
	require.EqualValues(t, 2, l.Stats().Segments)
	require.EqualValues(t, 2, calls.Load(), "old segment and the directory")
	require.NoError(t, l.Sync())
	require.EqualValues(t, 3, calls.Load())
	require.NoError(t, l.Close())
}
