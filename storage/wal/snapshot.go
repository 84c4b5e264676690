package wal

import (
	"fmt"
	"os"
	"path/filepath"
)

// SaveSnapshot durably records data as the state after applying every record
// up to and including index, then compacts the log.
//
// It first makes the records up to index durable (so the log never ends
// before the snapshot), writes data to a temporary file, fsyncs it, renames
// it to snap-<index>.snap and fsyncs the directory: a crash leaves either the
// previous snapshot or this one, never a partial file. Then it deletes the
// segment files whose records are all <= index (never the current one) and
// older snapshot files. With Options.Snapshots the snapshot goes to the
// store's Save instead of a file.
//
// index must be <= LastIndex() and >= the previous snapshot's index. A
// failure to write the snapshot is returned but does not fail the Log.
// SaveSnapshot calls are serialized with each other and with Close; Write,
// Sync and Append proceed while data is written.
func (l *Log) SaveSnapshot(index uint64, data []byte) error {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()

	l.mu.Lock()
	err := l.usableLocked()
	if err == nil && index > l.last {
		err = fmt.Errorf("wal: snapshot index %d is past the last written index %d", index, l.last)
	}
	if err == nil && index < l.snapIndex {
		err = fmt.Errorf("wal: snapshot index %d is below the previous snapshot index %d", index, l.snapIndex)
	}
	if err == nil {
		err = l.syncLocked(index)
	}
	l.mu.Unlock()
	if err != nil {
		return err
	}

	if l.store != nil {
		if err := l.store.Save(index, data); err != nil {
			return fmt.Errorf("wal: save snapshot %d in %s: %w", index, l.store, err)
		}
	} else if err := l.writeSnapshot(index, data); err != nil {
		return err
	}

	l.mu.Lock()
	l.snapIndex = index
	var drop []segment
	for len(l.segs) > 1 && l.segs[1].first-1 <= index {
		drop = append(drop, l.segs[0])
		l.segs = l.segs[1:]
	}
	l.nSegments.Store(uint64(len(l.segs)))
	l.mu.Unlock()

	// Deletions need no fsync: a segment or snapshot that reappears after
	// a crash is covered by this snapshot and deleted by the next Open.
	for _, s := range drop {
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("wal: remove compacted segment: %w", err)
		}
	}
	if l.store != nil {
		return nil
	}
	return l.removeSnapshotsBelow(index)
}

func (l *Log) writeSnapshot(index uint64, data []byte) (err error) {
	path := filepath.Join(l.dir, snapshotName(index))
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("wal: create snapshot: %w", err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(encodeSnapshotHeader(index, data)); err != nil {
		f.Close()
		return fmt.Errorf("wal: write snapshot %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("wal: write snapshot %s: %w", tmp, err)
	}
	if err := l.fsync(f); err != nil {
		f.Close()
		return fmt.Errorf("wal: sync snapshot %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("wal: close snapshot %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("wal: rename snapshot: %w", err)
	}
	return l.syncDir(l.dir)
}
