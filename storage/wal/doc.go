// Package wal is the write-ahead log and snapshot store of a replica
// process: the durable home of the records a protocol hands to
// Env.Persist, and of the periodic snapshots that let old records go.
//
// # Use
//
// Open the directory, rebuild state from Recovered (Snapshot, then Records
// in order), then for each batch of Persist records call Write and, before
// releasing the network sends and client replies that depend on them, Sync
// (or call Append, which does both). Many goroutines may Write and Sync at
// once; concurrent Syncs share fsyncs (group commit). From time to time call
// SaveSnapshot with the state up to some index; segment files wholly
// covered by it are deleted.
//
// # Durability contract
//
// Records are numbered 1, 2, 3, ... consecutively across restarts. A record
// is durable once a Sync (or Append) that began after its Write returned has
// returned nil: a crash of the process or the machine after that point
// cannot lose it, and Open will return it (or a snapshot covering it).
// Records written but not yet synced may or may not survive a crash; what
// Open recovers of them is a prefix of what was written. (If the kernel
// wrote unsynced pages out of order and the crash left a hole followed by
// data, Open reports corruption rather than guess; see the rules below.) Writes reach the file with
// write(2) in one call per segment and batch, and a sync fsyncs the current
// segment; a new segment is only created after the previous one has been
// fsynced, and its directory entry is fsynced before it receives records.
// A snapshot is written to a temporary file, fsynced, renamed into place and
// the directory fsynced, so it is atomic. Options.NoSync disables every
// fsync and with it the guarantee against machine crashes.
//
// After any I/O error (write, fsync) the Log refuses all further writes and
// syncs with that error, because after a failed fsync the kernel may have
// dropped the dirty data: close it and Open the directory again.
//
// # Files
//
// All integers are little-endian; CRC means CRC-32C (Castagnoli).
//
// Segment files are named after the index of their first record, with 20
// decimal digits: 00000000000000000001.wal. A segment starts with a 20-byte
// header:
//
//	magic "BWAL" | version uint32 (1) | first index uint64 | CRC of the previous 16 bytes
//
// followed by records, each
//
//	length uint32 | CRC of the 4 length bytes followed by the data | data
//
// The checksum covers the length as well as the data so that a run of zero
// bytes (what a crash can leave in a file's unwritten tail) never reads as
// valid empty records. A length above MaxRecordBytes (64 MiB) is never
// written and is treated as corruption, so a damaged length cannot make
// recovery allocate without bound. Write starts a new segment once the
// current one has reached Options.SegmentBytes.
//
// Snapshot files are named snap-<index>.snap, with the index in 20 digits,
// and hold a 28-byte header and the data:
//
//	magic "BSNP" | version uint32 (1) | index uint64 | data length uint64 | CRC of the previous 24 bytes and the data
//
// A snapshot is written as snap-<index>.snap.tmp and renamed.
//
// # Snapshot stores
//
// With Options.Snapshots the snapshot lives in a SnapshotStore (package
// pmem/snapstore keeps it in a pmem heap) instead of snap-*.snap files: the
// store's Save replaces it atomically and its Load returns it at Open; the
// segments stay in the directory, and compaction and the recovery rules
// below are the same with the store's snapshot in place of the newest file.
// Snapshot files found in the directory (it was used without a store) are
// moved into the store if newer than its snapshot, then removed.
//
// # Recovery rules
//
// Open applies these rules, in this order:
//
//   - A missing or empty directory is a fresh log: nothing is recovered and
//     the first record written gets index 1.
//   - Files ending in .tmp are snapshots whose rename never happened; they
//     are removed and ignored. Files with other names are ignored.
//   - The snapshot with the highest index is the snapshot. If it fails its
//     checks, Open fails with an error naming it: it does not fall back to
//     an older snapshot, since the records the older one needs may be gone.
//     Older snapshots are removed.
//   - Segments whose records are all covered by the snapshot (every segment
//     but the last one whose successor starts at or below SnapshotIndex+1)
//     are not read and are removed, finishing an interrupted compaction.
//     Records <= SnapshotIndex in the remaining segments are skipped.
//   - The remaining segments must continue each other without a gap, and
//     the first must start at or below SnapshotIndex+1.
//   - Torn tail: in the LAST segment only, a final record that is incomplete
//     or fails its checksum, where the record extends to or past the end of
//     the file or it and everything after it are zero bytes, is what a crash
//     during Write leaves. The file is truncated before that record, a WARN
//     is logged, and writing continues there. Likewise a last segment whose
//     header is incomplete or all zero (a crash while creating it) is reset
//     to an empty segment.
//   - Anything else is corruption and Open fails with an error wrapping
//     ErrCorrupt (a *CorruptError) naming the file and byte offset: a bad
//     record followed by further data, any bad record in a segment other
//     than the last, a bad segment header, a gap between segments.
//   - If the log ends before the snapshot index (possible only if files
//     were lost), writing continues in a new segment at SnapshotIndex+1.
//
// A damaged length field in the last segment that happens to point to or
// past the end of the file cannot be told apart from a torn write and is
// treated as one, dropping the records after it; the checksums catch other
// damage.
package wal
