// Package pmem keeps persistent objects in a memory-mapped file, in pure Go:
// a persistent heap with failure-atomic blocks, persistent data types,
// recovery with a recovery-time collector, and a crash simulator for tests.
// It follows J-NVM (objects live in non-volatile memory instead of being
// marshalled to files) without a patched runtime: objects refer to each other
// by offset (Ptr), never by Go pointer.
//
// # Heap layout
//
// A heap is one file (or region) of fixed size, in pages:
//
//	[0, 4 KiB)          header: magic "BLSMPMEM", Version, size, log size,
//	                    data offset, crc32c of those; written once at Create
//	                    (after everything else is durable) and never again
//	[4 KiB, 8 KiB)      allocator metadata: word 0 the top (end of the carved
//	                    part of the data area); from byte 64 one free-list
//	                    head per size class
//	[8 KiB, 12 KiB)     64 named roots of 64 bytes: 48-byte name, Ptr
//	[12 KiB, 16 KiB)    reserved
//	[16 KiB, +LogSize)  the redo log
//	[dataOff, size)     blocks, carved contiguously from dataOff up to top
//
// A block is a 16-byte header (tag, size class, state allocated/free, nptr,
// next-free link) and a payload; a Ptr is the offset of a payload. Size
// classes are 32..128 bytes by 16, then four per doubling (waste < 25%).
// Blocks are never split or coalesced: a free block goes back on its class's
// list and is reused for that class. nptr is the number of leading payload
// words that are pointers; it is all the collector needs to know about a
// block, so every data type puts its pointers first.
//
// Open refuses, with an error naming the file, a file that is too small, has
// another magic, a header checksum that does not match, a size other than the
// file's, an impossible layout (ErrCorrupt), or another layout version
// (ErrVersion).
//
// # Failure-atomic blocks: a redo log of cache lines
//
// Heap.Atomic(func(tx *Tx) error) runs a block. Writes go through the Tx:
//
//   - A write into a block allocated by this Tx (above the committed top, or
//     taken off a free list in this Tx) goes straight to the mapping: if the
//     block rolls back, that block is unreachable or free again, and its
//     contents do not matter. Such writes are not logged, so building large
//     new objects costs no log space.
//   - Any other write goes to a volatile copy of its 64-byte cache line (the
//     Tx's overlay); reads through the Tx see the overlay.
//   - Frees are deferred to commit, so a block freed by a Tx is not reused
//     (and not overwritten) by that same Tx.
//
// Commit: (1) flush the fresh blocks and write the modified lines into the
// log body (offset + 64 bytes each), flush; if fresh blocks were written,
// fence, so that the commit record cannot become durable before them; (2)
// write the commit record (magic, sequence number, record count, crc32c over
// sequence, count and body), flush, fence — the commit point; (3) copy the
// lines in place, flush, fence — the block is durable when Atomic returns;
// (4) clear the commit record, flush, without a fence (replaying an already
// applied log is harmless until the next commit record replaces it, and no
// in-place write happens before that). Rollback (an error or panic in the
// block, or a log overflow, ErrTxTooLarge) drops the overlay: nothing was
// written in place except into fresh blocks. Nested Atomic calls flatten
// into the outermost block; an error from a nested block rolls back the
// whole block.
//
// Flush(range) and Fence() are carried out by the heap's device, chosen at
// Create or OpenWith by Options.FlushMode (see FlushMode for what each mode
// guarantees on which medium): FlushMsync records the pages of a flush and
// msyncs them at the fence (two or three system calls per block);
// FlushCLWB writes back each 64-byte line of a flush with CLWB (or
// CLFLUSHOPT, or CLFLUSH, whichever CPUID reports first; small amd64
// assembly, no system call) and fences with SFENCE. FlushAuto, the default,
// picks FlushCLWB on tmpfs and on a DAX file that accepts a MAP_SYNC
// mapping, and FlushMsync elsewhere and on other architectures. The heap
// issues the same flushes and fences in every mode, so the crash simulator,
// which models them per cache line, covers every mode. An open heap file is
// locked (flock): a second Open fails with ErrInUse.
//
// # Recovery
//
// Open (1) validates the header; (2) if the log holds a commit record whose
// crc matches its body, validates every record's target (the allocator
// metadata, the roots or the data area, line-aligned) and copies the lines
// in place — finishing the interrupted block — then fences; a commit record
// with a bad crc is a block that never reached its commit point, and is
// ignored (rolled back: nothing of it is in place); the log is cleared and
// fenced; (3) runs the recovery-time collector: it walks the blocks from
// dataOff to top, validating every header, marks from the roots through the
// nptr pointer words (every pointer must lead to an allocated block, else the
// heap is refused as corrupt), marks every unreachable allocated block free,
// and rebuilds every free list from the block headers. The collector derives
// everything from the block headers and the roots, so a crash during it is
// repaired by running it again. Heap.Check verifies the same invariants
// without writing: no leak (every allocated block reachable) and free lists
// that hold exactly the free blocks.
//
// # Data types
//
// Bytes (NewBytes, BytesOf, SetBytes, strings), Counter, Array (growable
// array of words or pointers), HashMap (linear hashing: one bucket splits
// per insertion over the load factor, the directory doubles into a fresh
// block), SortedMap (a skip list whose node heights derive from key hashes);
// all take the Tx, and iterate in a deterministic order.
//
// Reads validate what they follow: every Tx access is bounds-checked against
// the heap, and a data type validates a block's header (tag, class, state,
// pointer count: one word read) before trusting it — once per node on a
// skip-list step, where the node's height and key length come from it. A
// finished Tx (its overlay map and line buffers) is reused by the next block,
// so small blocks and reads allocate nothing in the heap itself.
//
// # Crash simulator
//
// Sim is a heap region whose persistence is modelled per cache line: flushes
// snapshot lines, fences make snapshots persistent, and Sim.Crash keeps for
// every line not known to be persistent a seeded random choice among the
// contents it could have been evicted with. CrashAt stops a program at any
// persistence event, including inside recovery. The property test runs
// random programs over every data type, crashes them, recovers and checks
// all-or-nothing and no leak; the sabotage test removes the log flush and
// requires the property test to notice.
//
// A Heap is not safe for concurrent use; pmem/kv serializes its callers.
package pmem
