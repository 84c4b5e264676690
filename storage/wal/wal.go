package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Options configures Open.
type Options struct {
	// Dir holds the segment and snapshot files. It is created if missing.
	// One Log at a time may use a directory; nothing enforces this.
	Dir string
	// SegmentBytes is the size past which Write starts a new segment file.
	// A segment always holds at least one record, so a segment may exceed
	// it by up to one record. 0 means DefaultSegmentBytes.
	SegmentBytes int64
	// NoSync skips every fsync (of segments, snapshots and directories).
	// Sync and Append then return as soon as the data is handed to the
	// operating system, so a machine crash can lose acknowledged records.
	// For tests and benchmarks only; never for a real replica.
	NoSync bool
	// Logger receives a WARN for each torn tail repaired by Open and INFO
	// for files Open cleans up. nil means slog.Default().
	Logger *slog.Logger
	// Snapshots, if not nil, keeps the Log's snapshot instead of the
	// snap-*.snap files in Dir (a pmem heap, say: see SnapshotStore).
	// Snapshot files found in Dir are moved into it by Open. nil means
	// snapshot files.
	Snapshots SnapshotStore
}

// SnapshotStore keeps the newest snapshot of one Log outside its directory.
// The Log calls it from one goroutine at a time.
type SnapshotStore interface {
	// Load returns the newest snapshot saved: its index and data (index 0
	// and nil data if none was ever saved). An error (a damaged snapshot,
	// an unreadable medium) makes Open fail with it, so it should name
	// where the snapshot lives.
	Load() (index uint64, data []byte, err error)
	// Save makes data the snapshot at index, durably and atomically: once
	// it returns nil, Load returns (index, data) even after a crash; a
	// crash during Save leaves the previous snapshot or this one, whole.
	// On error the previous snapshot must still be the one Load returns.
	// Save must not keep data after it returns.
	Save(index uint64, data []byte) error
	// String names the store (for logs and errors).
	String() string
}

// Recovered is what Open found on disk.
type Recovered struct {
	// Snapshot is the data of the newest snapshot, nil if there is none.
	Snapshot []byte
	// SnapshotIndex is the index of the last record the snapshot covers,
	// 0 if there is no snapshot.
	SnapshotIndex uint64
	// Records are the records with index > SnapshotIndex, in order; the
	// first has index SnapshotIndex+1 and the last has index
	// Log.LastIndex(). The caller owns the slices.
	Records [][]byte
}

// Stats are counters of a Log since Open.
type Stats struct {
	Records  uint64 // records written by Write and Append
	Bytes    uint64 // bytes written to segment files, framing included
	Fsyncs   uint64 // fsync calls issued on files and directories (0 with NoSync)
	Segments uint64 // segment files currently in the directory
}

type segment struct {
	first uint64 // index of the segment's first record
	path  string
}

// Log is an open write-ahead log. All methods are safe for concurrent use.
//
// After an I/O error from Write, Sync, Append or SaveSnapshot the Log is
// failed: the state of unsynced data is unknown (a failed fsync may have
// dropped dirty pages), so every later call returns that first error. Close
// the Log and Open the directory again to recover what is durable.
type Log struct {
	dir      string
	segBytes int64
	noSync   bool
	logger   *slog.Logger
	store    SnapshotStore // nil: snapshot files in dir
	// syncFile makes a file durable; tests replace it to observe and
	// block fsyncs. It must not be changed while the Log is in use.
	syncFile func(*os.File) error

	// snapMu serializes SaveSnapshot and Close.
	snapMu sync.Mutex

	mu        sync.Mutex
	cond      sync.Cond // on mu: signalled when a sync finishes
	f         *os.File  // current (last) segment, opened for append
	segSize   int64     // bytes in f
	segs      []segment // live segments, ascending; the last is f
	last      uint64    // index of the last written record
	synced    uint64    // every record <= synced is durable
	syncing   bool      // a sync leader is running an fsync without mu
	waiting   int       // Sync callers blocked on cond (observed by tests)
	retired   []*os.File
	snapIndex uint64
	closed    bool
	failed    error
	buf       []byte

	nRecords  atomic.Uint64
	nBytes    atomic.Uint64
	nFsyncs   atomic.Uint64
	nSegments atomic.Uint64
}

// maxKeptBuf bounds the encoding buffer a Log keeps between Writes.
const maxKeptBuf = 1 << 20

// Open opens the log in opts.Dir, creating the directory if needed, and
// returns what it recovered. It removes leftover *.tmp files, loads the
// newest snapshot (a corrupt one is an error), reads every segment not
// wholly covered by it, truncates a torn tail of the last segment (logging a
// WARN), and deletes segments and older snapshots made obsolete by the
// snapshot. Damage other than a torn tail yields an error wrapping
// ErrCorrupt that names the file and offset. Before returning, Open makes
// the recovered records durable, so Sync never has to cover them.
func Open(opts Options) (*Log, *Recovered, error) {
	if opts.Dir == "" {
		return nil, nil, errors.New("wal: Options.Dir is empty")
	}
	if opts.SegmentBytes < 0 {
		return nil, nil, fmt.Errorf("wal: Options.SegmentBytes is negative (%d)", opts.SegmentBytes)
	}
	l := &Log{
		dir:      opts.Dir,
		segBytes: opts.SegmentBytes,
		noSync:   opts.NoSync,
		logger:   opts.Logger,
		store:    opts.Snapshots,
		syncFile: (*os.File).Sync,
	}
	if l.segBytes == 0 {
		l.segBytes = DefaultSegmentBytes
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	l.cond.L = &l.mu
	rec, err := l.recover()
	if err != nil {
		if l.f != nil {
			l.f.Close()
		}
		return nil, nil, err
	}
	return l, rec, nil
}

func (l *Log) recover() (*Recovered, error) {
	if _, err := os.Stat(l.dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(l.dir, 0o755); err != nil {
			return nil, fmt.Errorf("wal: create dir: %w", err)
		}
		if err := l.syncDir(filepath.Dir(filepath.Clean(l.dir))); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("wal: read dir: %w", err)
	}
	var segs []segment
	var snaps []uint64
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		if strings.HasSuffix(name, tmpSuffix) {
			// A snapshot written but not renamed: the crash happened
			// before it became the snapshot, so it never counted.
			path := filepath.Join(l.dir, name)
			l.logger.Info("wal: removing leftover temp file", "file", path)
			if err := os.Remove(path); err != nil {
				return nil, fmt.Errorf("wal: remove temp file: %w", err)
			}
			continue
		}
		if first, ok := parseSegmentName(name); ok {
			segs = append(segs, segment{first: first, path: filepath.Join(l.dir, name)})
		} else if idx, ok := parseSnapshotName(name); ok {
			snaps = append(snaps, idx)
		}
	}
	slices.SortFunc(segs, func(a, b segment) int { return cmpU64(a.first, b.first) })
	slices.Sort(snaps)

	rec := &Recovered{}
	if len(snaps) > 0 {
		idx := snaps[len(snaps)-1]
		path := filepath.Join(l.dir, snapshotName(idx))
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("wal: read snapshot: %w", err)
		}
		data, err := decodeSnapshot(path, b, idx)
		if err != nil {
			return nil, err
		}
		rec.Snapshot, rec.SnapshotIndex = data, idx
	}
	if l.store != nil {
		if err := l.loadStore(rec); err != nil {
			return nil, err
		}
	}
	l.snapIndex = rec.SnapshotIndex

	// Segments whose records are all covered by the snapshot (every one
	// but the last whose successor starts at or below SnapshotIndex+1) are
	// left over from an interrupted compaction: not read, deleted below.
	var obsolete []segment
	for len(segs) > 1 && segs[1].first-1 <= l.snapIndex {
		obsolete = append(obsolete, segs[0])
		segs = segs[1:]
	}

	next := uint64(0) // index the next segment must start at; 0 = not known yet
	for i, s := range segs {
		lastSeg := i == len(segs)-1
		if next == 0 {
			if s.first > l.snapIndex+1 {
				return nil, corruptf(s.path, 0, "first segment starts at index %d, but records from %d are missing (snapshot index %d)", s.first, l.snapIndex+1, l.snapIndex)
			}
		} else if s.first != next {
			return nil, corruptf(s.path, 0, "segment starts at index %d, previous segment ends at %d", s.first, next-1)
		}
		b, err := os.ReadFile(s.path)
		if err != nil {
			return nil, fmt.Errorf("wal: read segment: %w", err)
		}
		var res scanResult
		if lastSeg && (len(b) < segHeaderSize || allZero(b)) {
			// Crash while creating the segment, before its header
			// reached the disk: start it again.
			res.end, res.torn = 0, "incomplete segment header"
		} else {
			if err := checkSegmentHeader(s.path, b, s.first); err != nil {
				return nil, err
			}
			if res, err = scanRecords(s.path, b, lastSeg); err != nil {
				return nil, err
			}
		}
		for j, r := range res.recs {
			if s.first+uint64(j) > l.snapIndex {
				rec.Records = append(rec.Records, r)
			}
		}
		next = s.first + uint64(len(res.recs))
		if lastSeg {
			if err := l.openLastSegment(s, res, int64(len(b))); err != nil {
				return nil, err
			}
		}
	}
	l.segs = segs
	l.last = l.snapIndex
	if len(segs) > 0 && next-1 > l.snapIndex {
		l.last = next - 1
	}

	if len(segs) == 0 || next-1 < l.snapIndex {
		// No segment, or the log ends before the snapshot: writing must
		// continue at SnapshotIndex+1 in a fresh segment, and every
		// existing segment is wholly covered by the snapshot.
		if len(segs) > 0 {
			l.logger.Warn("wal: log ends before the snapshot; starting a new segment after it",
				"log_last_index", next-1, "snapshot_index", l.snapIndex)
			if err := l.f.Close(); err != nil {
				return nil, fmt.Errorf("wal: %w", err)
			}
			l.f = nil
			obsolete = append(obsolete, segs...)
		}
		f, s, err := l.createSegment(l.snapIndex + 1)
		if err != nil {
			return nil, err
		}
		l.f, l.segs, l.segSize = f, []segment{s}, segHeaderSize
		if err := l.syncDir(l.dir); err != nil {
			return nil, err
		}
	}
	// Records read back may sit only in the page cache (the previous
	// process died before its fsync): make them durable now.
	if err := l.fsync(l.f); err != nil {
		return nil, fmt.Errorf("wal: sync %s: %w", l.f.Name(), err)
	}
	l.synced = l.last
	l.nSegments.Store(uint64(len(l.segs)))

	// Finish an interrupted compaction.
	for _, s := range obsolete {
		l.logger.Info("wal: removing segment covered by the snapshot", "file", s.path, "snapshot_index", l.snapIndex)
		if err := os.Remove(s.path); err != nil {
			return nil, fmt.Errorf("wal: remove obsolete segment: %w", err)
		}
	}
	below := rec.SnapshotIndex
	if l.store != nil {
		below = math.MaxUint64 // every file was moved into the store
	}
	if err := l.removeSnapshotsBelow(below); err != nil {
		return nil, err
	}
	return rec, nil
}

// loadStore replaces rec's snapshot, read from the files in the directory,
// with the store's. A file snapshot newer than the store's (the directory
// was last used with snapshot files) is first saved into the store; the
// files are removed at the end of recover.
func (l *Log) loadStore(rec *Recovered) error {
	idx, data, err := l.store.Load()
	if err != nil {
		return fmt.Errorf("wal: load snapshot from %s: %w", l.store, err)
	}
	if rec.SnapshotIndex > idx {
		l.logger.Info("wal: moving the snapshot file into the snapshot store",
			"file", filepath.Join(l.dir, snapshotName(rec.SnapshotIndex)), "store", l.store.String())
		if err := l.store.Save(rec.SnapshotIndex, rec.Snapshot); err != nil {
			return fmt.Errorf("wal: move snapshot into %s: %w", l.store, err)
		}
		return nil
	}
	switch {
	case idx == 0:
		data = nil
	case data == nil:
		data = []byte{}
	}
	rec.Snapshot, rec.SnapshotIndex = data, idx
	return nil
}

// openLastSegment opens the last segment for appending, first truncating
// the torn tail res reports, if any.
func (l *Log) openLastSegment(s segment, res scanResult, size int64) error {
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("wal: open segment: %w", err)
	}
	l.f = f
	if res.torn == "" {
		l.segSize = size
		return nil
	}
	l.logger.Warn("wal: truncating torn tail of the last segment",
		"file", s.path, "offset", res.end, "dropped_bytes", size-res.end, "reason", res.torn)
	if err := f.Truncate(res.end); err != nil {
		return fmt.Errorf("wal: truncate torn tail: %w", err)
	}
	l.segSize = res.end
	if res.end == 0 {
		if _, err := f.Write(segmentHeader(s.first)); err != nil {
			return fmt.Errorf("wal: rewrite segment header: %w", err)
		}
		l.segSize = segHeaderSize
	}
	// The fsync at the end of recover makes the truncation durable.
	return nil
}

// createSegment creates the segment file starting at first and writes its
// header. The caller fsyncs the directory.
func (l *Log) createSegment(first uint64) (*os.File, segment, error) {
	s := segment{first: first, path: filepath.Join(l.dir, segmentName(first))}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, s, fmt.Errorf("wal: create segment: %w", err)
	}
	if _, err := f.Write(segmentHeader(first)); err != nil {
		f.Close()
		return nil, s, fmt.Errorf("wal: write segment header %s: %w", s.path, err)
	}
	return f, s, nil
}

func (l *Log) removeSnapshotsBelow(index uint64) error {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return fmt.Errorf("wal: read dir: %w", err)
	}
	for _, e := range entries {
		if idx, ok := parseSnapshotName(e.Name()); ok && idx < index {
			if err := os.Remove(filepath.Join(l.dir, e.Name())); err != nil {
				return fmt.Errorf("wal: remove old snapshot: %w", err)
			}
		}
	}
	return nil
}

// fsync makes f durable unless NoSync, counting the call.
func (l *Log) fsync(f *os.File) error {
	if l.noSync {
		return nil
	}
	l.nFsyncs.Add(1)
	return l.syncFile(f)
}

// syncDir fsyncs the directory dir so that entries created, renamed or
// removed in it are durable.
func (l *Log) syncDir(dir string) error {
	if l.noSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("wal: open dir for sync: %w", err)
	}
	err = l.fsync(d)
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("wal: sync dir %s: %w", dir, err)
	}
	return nil
}

// usableLocked reports why the Log cannot be used, if it cannot.
func (l *Log) usableLocked() error {
	if l.closed {
		return ErrClosed
	}
	return l.failed
}

// failLocked marks the Log failed with err (keeping the first failure) and
// wakes every Sync waiter.
func (l *Log) failLocked(err error) error {
	if l.failed == nil {
		l.failed = err
	}
	l.cond.Broadcast()
	return l.failed
}

// Write appends recs to the log with write(2) and returns the index of the
// last one. The records are not durable until a Sync that starts after Write
// returns has returned. Records are numbered 1, 2, 3, ... consecutively
// across Close and Open; a batch gets consecutive indexes and is never
// interleaved with another Write's records. Write with no records returns
// LastIndex(). A record longer than MaxRecordBytes makes the whole batch
// fail with ErrRecordTooLarge before anything is written. On an I/O error
// the Log is failed (see Log) and the index returned is 0.
func (l *Log) Write(recs ...[]byte) (last uint64, err error) {
	for i, r := range recs {
		if len(r) > MaxRecordBytes {
			return 0, fmt.Errorf("wal: record %d of the batch is %d bytes (limit %d): %w", i, len(r), MaxRecordBytes, ErrRecordTooLarge)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return 0, err
	}
	for i := 0; i < len(recs); {
		if l.segSize >= l.segBytes && l.last >= l.segs[len(l.segs)-1].first {
			if err := l.rollLocked(); err != nil {
				return 0, err
			}
		}
		buf := l.buf[:0]
		size := l.segSize
		j := i
		for j < len(recs) && (j == i || size < l.segBytes) {
			buf = appendRecord(buf, recs[j])
			size += int64(recHeaderSize + len(recs[j]))
			j++
		}
		n, err := l.f.Write(buf)
		l.segSize += int64(n)
		l.nBytes.Add(uint64(n))
		if cap(buf) <= maxKeptBuf {
			l.buf = buf
		}
		if err != nil {
			return 0, l.failLocked(fmt.Errorf("wal: write %s: %w", l.f.Name(), err))
		}
		l.last += uint64(j - i)
		l.nRecords.Add(uint64(j - i))
		i = j
	}
	return l.last, nil
}

// rollLocked makes the current segment durable and starts a new one at
// last+1. Making the old segment durable first guarantees that only the last
// segment can ever have a torn tail.
func (l *Log) rollLocked() error {
	old := l.f
	if err := l.fsync(old); err != nil {
		return l.failLocked(fmt.Errorf("wal: sync %s: %w", old.Name(), err))
	}
	l.synced = max(l.synced, l.last)
	f, s, err := l.createSegment(l.last + 1)
	if err != nil {
		return l.failLocked(err)
	}
	// Until the directory is synced, the new file may vanish in a crash.
	// Nothing in it is acknowledged yet, but a later Sync must not assume
	// the entry exists, so sync it before any record goes in.
	if err := l.syncDir(l.dir); err != nil {
		f.Close()
		return l.failLocked(err)
	}
	if l.syncing {
		// The running sync leader may still fsync old: close it later.
		l.retired = append(l.retired, old)
	} else if err := old.Close(); err != nil {
		f.Close()
		return l.failLocked(fmt.Errorf("wal: close %s: %w", old.Name(), err))
	}
	l.f, l.segSize = f, segHeaderSize
	l.segs = append(l.segs, s)
	l.nSegments.Store(uint64(len(l.segs)))
	return nil
}

// Sync returns once every record whose Write returned before Sync was called
// is durable (group commit). Concurrent callers share fsyncs: while one fsync
// is in flight, later callers wait for it, and then a single fsync covers all
// of them. With Options.NoSync nothing is fsynced. After Close, Sync returns
// ErrClosed; after an I/O error, the Log's failure.
func (l *Log) Sync() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return err
	}
	return l.syncLocked(l.last)
}

// syncLocked makes every record <= target durable, leading an fsync or
// waiting for the one in flight.
func (l *Log) syncLocked(target uint64) error {
	for l.synced < target {
		if l.failed != nil {
			return l.failed
		}
		if l.syncing {
			l.waiting++
			l.cond.Wait()
			l.waiting--
			continue
		}
		// Lead (even after Close has begun: Close waits for this fsync
		// before closing the file, and would otherwise do it itself): one fsync of the current segment covers everything
		// written so far (earlier segments were synced when rolled).
		l.syncing = true
		f, upTo := l.f, l.last
		retired := l.retired
		l.retired = nil
		l.mu.Unlock()
		err := l.fsync(f)
		for _, r := range retired {
			r.Close() // already fsynced by rollLocked
		}
		l.mu.Lock()
		l.syncing = false
		if err != nil {
			return l.failLocked(fmt.Errorf("wal: sync %s: %w", f.Name(), err))
		}
		l.synced = max(l.synced, upTo)
		l.cond.Broadcast()
	}
	return nil
}

// Append writes recs and waits until they are durable: Write followed by
// Sync. It returns the index of the last record.
func (l *Log) Append(recs ...[]byte) (uint64, error) {
	last, err := l.Write(recs...)
	if err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.usableLocked(); err != nil {
		return 0, err
	}
	if err := l.syncLocked(last); err != nil {
		return 0, err
	}
	return last, nil
}

// LastIndex returns the index of the last record written (durable or not),
// or SnapshotIndex if none follows the snapshot, or 0 for an empty log.
func (l *Log) LastIndex() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Stats returns the Log's counters. It may be called concurrently with
// anything, including after Close.
func (l *Log) Stats() Stats {
	return Stats{
		Records:  l.nRecords.Load(),
		Bytes:    l.nBytes.Load(),
		Fsyncs:   l.nFsyncs.Load(),
		Segments: l.nSegments.Load(),
	}
}

// Close makes every written record durable, waits for a SaveSnapshot or
// fsync in flight, and closes the files. Sync callers waiting when Close
// starts are released by its final fsync. Every later call returns
// ErrClosed, a second Close included. Close returns the Log's failure if it
// had one, but closes the files anyway.
func (l *Log) Close() error {
	l.snapMu.Lock()
	defer l.snapMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	l.closed = true
	for l.syncing {
		l.cond.Wait()
	}
	err := l.failed
	if err == nil && l.synced < l.last {
		if serr := l.fsync(l.f); serr != nil {
			err = l.failLocked(fmt.Errorf("wal: sync %s: %w", l.f.Name(), serr))
		} else {
			l.synced = l.last
		}
	}
	l.cond.Broadcast()
	for _, r := range l.retired {
		r.Close()
	}
	l.retired = nil
	if cerr := l.f.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("wal: close %s: %w", l.f.Name(), cerr)
	}
	return err
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
