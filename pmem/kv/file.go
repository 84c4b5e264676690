package kv

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
)

// File is the file-system back end of J-NVM's YCSB comparison (deliverable
// §5, Figure 19: Infinispan's default file store on ext4 over NVMM, with
// Infinispan's data container caching up to 10% of the records). It follows
// Infinispan 9.4's SingleFileStore behind that container:
//
//   - One data file of slots. A slot is a 16-byte header [u32 slot size]
//     [u32 key length, 0 when free][u64 version] followed by the marshalled
//     record (see marshal: length, crc32c, key, every field).
//   - Every write (insert or update) marshals the whole record and writes it
//     with one synchronous write (the file is opened O_DSYNC, as
//     SingleFileStore opens its channel "rwd") into a slot taken first-fit
//     from a size-ordered free list, or at the end of the file; a free slot
//     much larger than needed is split. Then the record's previous slot is
//     freed by a second synchronous write that zeroes its key length.
//   - The index (key to slot) is in memory and rebuilt by scanning the file
//     on open; the highest version of a key wins (SingleFileStore keeps an
//     expiry time where this keeps the version, so a crash between the two
//     writes of an update cannot resurrect the older record), a slot whose
//     record fails its crc is garbage (it was never acknowledged) and a torn
//     end of the file (a slot header that is incomplete, or claims more
//     bytes than follow) is cut off, with everything after it.
//   - Keys are 1 to 65535 bytes (a free slot has key length 0).
//   - A volatile cache of up to CacheRecords unmarshalled records, with
//     CLOCK eviction, stands for the data container: a read that hits it
//     copies the fields out; a miss reads the slot (pread), unmarshals it
//     and caches it. An update changes one field of the cached (or loaded)
//     record and writes the whole record through, as an Infinispan put
//     does; inserts are written through and cached.
//
// What it leaves out: Java serialization (a record is marshalled with the
// compact length-prefixed encoding above, the cheapest honest marshalling)
// and Infinispan's own layers (interceptors, locking, the JVM's GC).
type File struct {
	mu      sync.Mutex
	f       *os.File
	syncAll bool // no O_DSYNC on this platform: fsync after each write
	end     int64
	version uint64
	index   map[string]fileSlot
	free    []fileSlot // ordered by size, then offset
	keys    []string   // sorted
	buf     []byte
	cache   recordCache
	// crashAfterWrite (tests) makes store return after writing the new
	// slot, without freeing the old one.
	crashAfterWrite bool
}

type fileSlot struct {
	off  int64
	size uint32
}

const (
	fileMagic   = "BKVFILE1"
	slotHdr     = 16
	minSplit    = 128  // SingleFileStore's SMALLEST_ENTRY_SIZE
	splitFactor = 0.75 // SingleFileStore's default fragmentation factor
)

// OpenFile opens (or creates) the file store whose data file is path, with
// a cache of up to cacheRecords records (0: no cache; every read goes to
// the file).
func OpenFile(path string, cacheRecords int) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|oDSync, 0o644)
	if err != nil {
		return nil, err
	}
	s := &File{f: f, syncAll: oDSync == 0, index: map[string]fileSlot{}, cache: newRecordCache(cacheRecords)}
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// load rebuilds the index and the free list from the file.
func (s *File) load() error {
	data, err := io.ReadAll(s.f)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		s.end = int64(len(fileMagic))
		return s.write([]byte(fileMagic), 0)
	}
	if len(data) < len(fileMagic) || string(data[:len(fileMagic)]) != fileMagic {
		return fmt.Errorf("kv: %s is not a file store (bad magic)", s.f.Name())
	}
	vers := map[string]uint64{}
	var scratch [][]byte
	off := len(fileMagic)
	for off+slotHdr <= len(data) {
		size := int(binary.LittleEndian.Uint32(data[off:]))
		if size < slotHdr || size > len(data)-off {
			break // torn end
		}
		sl := fileSlot{int64(off), uint32(size)}
		kl := binary.LittleEndian.Uint32(data[off+4:])
		ver := binary.LittleEndian.Uint64(data[off+8:])
		key, f, _, err := unmarshal(data[off+slotHdr:off+size], scratch)
		scratch = f
		switch {
		case kl == 0 || err != nil || int(kl) != len(key):
			s.addFree(sl)
		default:
			k := string(key)
			old, seen := s.index[k]
			switch {
			case !seen:
				s.index[k], vers[k] = sl, ver
				s.keys = append(s.keys, k)
			case ver > vers[k]:
				s.addFree(old)
				s.index[k], vers[k] = sl, ver
			default:
				s.addFree(sl)
			}
			s.version = max(s.version, ver)
		}
		off += size
	}
	s.end = int64(off)
	if off != len(data) {
		if err := s.f.Truncate(s.end); err != nil {
			return err
		}
	}
	slices.Sort(s.keys)
	return nil
}

func (s *File) write(b []byte, off int64) error {
	if _, err := s.f.WriteAt(b, off); err != nil {
		return err
	}
	if s.syncAll {
		return s.f.Sync()
	}
	return nil
}

func (s *File) addFree(sl fileSlot) {
	i, _ := slices.BinarySearchFunc(s.free, sl, cmpSlot)
	s.free = slices.Insert(s.free, i, sl)
}

func cmpSlot(a, b fileSlot) int {
	if a.size != b.size {
		return int(a.size) - int(b.size)
	}
	return int(a.off - b.off)
}

// allocate returns a slot of at least n bytes: the smallest free one (split
// when much larger), or a new one at the end of the file.
func (s *File) allocate(n int) (fileSlot, error) {
	i, _ := slices.BinarySearchFunc(s.free, fileSlot{0, uint32(n)}, cmpSlot)
	if i == len(s.free) {
		sl := fileSlot{s.end, uint32(n)}
		s.end += int64(n)
		return sl, nil
	}
	sl := s.free[i]
	s.free = slices.Delete(s.free, i, i+1)
	if rem := int(sl.size) - n; rem >= minSplit && float64(n) <= float64(sl.size)*splitFactor {
		rest := fileSlot{sl.off + int64(n), uint32(rem)}
		var hdr [slotHdr]byte
		binary.LittleEndian.PutUint32(hdr[:], rest.size)
		if err := s.write(hdr[:], rest.off); err != nil {
			return fileSlot{}, err
		}
		s.addFree(rest)
		sl.size = uint32(n)
	}
	return sl, nil
}

// store marshals the whole record into a new slot (one synchronous write),
// points the index at it and frees the previous slot (a second one).
func (s *File) store(key string, fields [][]byte) error {
	if len(key) == 0 || len(key) > 0xffff || len(fields) > 0xffff {
		return fmt.Errorf("kv: file store: key of %d bytes, %d fields (want 1-65535 bytes, at most 65535 fields)", len(key), len(fields))
	}
	s.buf = append(s.buf[:0], make([]byte, slotHdr)...)
	s.buf = marshal(s.buf, key, fields)
	sl, err := s.allocate(len(s.buf))
	if err != nil {
		return err
	}
	s.version++
	binary.LittleEndian.PutUint32(s.buf, sl.size)
	binary.LittleEndian.PutUint32(s.buf[4:], uint32(len(key)))
	binary.LittleEndian.PutUint64(s.buf[8:], s.version)
	if err := s.write(s.buf, sl.off); err != nil {
		s.addFree(sl)
		return err
	}
	old, existed := s.index[key]
	s.index[key] = sl
	if s.crashAfterWrite {
		return nil
	}
	if !existed {
		i, _ := slices.BinarySearch(s.keys, key)
		s.keys = slices.Insert(s.keys, i, key)
		return nil
	}
	var zero [4]byte
	if err := s.write(zero[:], old.off+4); err != nil {
		return err
	}
	s.addFree(old)
	return nil
}

// record returns the fields of key's record, from the cache or else read
// from the file, unmarshalled and cached. The result belongs to the cache:
// valid until the next call that may evict.
func (s *File) record(key string) ([][]byte, error) {
	if r, ok := s.cache.get(key); ok {
		return r, nil
	}
	sl, ok := s.index[key]
	if !ok {
		return nil, ErrNotFound
	}
	s.buf = slices.Grow(s.buf[:0], int(sl.size))[:sl.size]
	if _, err := s.f.ReadAt(s.buf, sl.off); err != nil {
		return nil, err
	}
	dst := s.cache.slot(key)
	k, fields, _, err := unmarshal(s.buf[slotHdr:], dst)
	if err != nil || string(k) != key {
		s.cache.drop(key)
		return nil, fmt.Errorf("kv: %s: bad record at %d", s.f.Name(), sl.off)
	}
	s.cache.set(key, fields)
	return fields, nil
}

// Insert implements Store.
func (s *File) Insert(key string, fields [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store(key, fields); err != nil {
		return err
	}
	s.cache.set(key, copyInto(s.cache.slot(key), fields))
	return nil
}

// Read implements Store.
func (s *File) Read(key string, dst [][]byte) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.record(key)
	if err != nil {
		return dst, err
	}
	return copyInto(dst, r), nil
}

// Update implements Store.
func (s *File) Update(key string, i int, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.record(key)
	if err != nil {
		return err
	}
	if i < 0 || i >= len(r) {
		return ErrNotFound
	}
	prev := r[i]
	r[i] = value
	err = s.store(key, r)
	r[i] = append(prev[:0], value...)
	if err != nil {
		s.cache.drop(key) // the cached record may be ahead of the file
	}
	return err
}

// Scan implements Store.
func (s *File) Scan(start string, n int, fn func(string, [][]byte) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := slices.BinarySearch(s.keys, start)
	for ; i < len(s.keys) && n > 0; i, n = i+1, n-1 {
		r, err := s.record(s.keys[i])
		if err != nil {
			return err
		}
		if !fn(s.keys[i], r) {
			break
		}
	}
	return nil
}

// Close implements Store.
func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}

// recordCache holds up to max unmarshalled records, evicting with CLOCK
// (second chance). Evicted records' buffers are reused.
type recordCache struct {
	max   int
	idx   map[string]int
	ents  []cacheEnt
	hand  int
	spare [][]byte
}

type cacheEnt struct {
	key    string
	fields [][]byte
	ref    bool
}

func newRecordCache(max int) recordCache {
	return recordCache{max: max, idx: map[string]int{}}
}

func (c *recordCache) get(key string) ([][]byte, bool) {
	i, ok := c.idx[key]
	if !ok {
		return nil, false
	}
	c.ents[i].ref = true
	return c.ents[i].fields, true
}

// slot returns buffers to fill for key's record: its cached record's, or an
// evicted one's, or nil.
func (c *recordCache) slot(key string) [][]byte {
	if i, ok := c.idx[key]; ok {
		return c.ents[i].fields
	}
	if c.max > 0 && len(c.ents) == c.max {
		c.evict()
	}
	s := c.spare
	c.spare = nil
	return s
}

func (c *recordCache) evict() {
	for c.ents[c.hand].ref {
		c.ents[c.hand].ref = false
		c.hand = (c.hand + 1) % len(c.ents)
	}
	e := c.ents[c.hand]
	delete(c.idx, e.key)
	last := len(c.ents) - 1
	if c.hand != last {
		c.ents[c.hand] = c.ents[last]
		c.idx[c.ents[c.hand].key] = c.hand
	}
	c.ents = c.ents[:last]
	if c.hand >= len(c.ents) {
		c.hand = 0
	}
	c.spare = e.fields
}

// set caches fields (which the cache now owns) as key's record.
func (c *recordCache) set(key string, fields [][]byte) {
	if c.max <= 0 {
		c.spare = fields
		return
	}
	if i, ok := c.idx[key]; ok {
		c.ents[i].fields, c.ents[i].ref = fields, true
		return
	}
	if len(c.ents) == c.max {
		c.evict()
	}
	c.idx[key] = len(c.ents)
	c.ents = append(c.ents, cacheEnt{key: key, fields: fields})
}

func (c *recordCache) drop(key string) {
	i, ok := c.idx[key]
	if !ok {
		return
	}
	last := len(c.ents) - 1
	delete(c.idx, key)
	if i != last {
		c.ents[i] = c.ents[last]
		c.idx[c.ents[i].key] = i
	}
	c.ents = c.ents[:last]
	if c.hand >= len(c.ents) {
		c.hand = 0
	}
}
