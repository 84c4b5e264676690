package kv

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
)

// File is the file-system store: records are marshalled and appended to a
// log file, which is fsynced after every write; a volatile index maps each
// key to its latest record, rebuilt by scanning the log on open (a torn tail
// is cut off). Updates read, unmarshal, modify, marshal and append the whole
// record. The log is never compacted.
type File struct {
	mu    sync.Mutex
	f     *os.File
	end   int64
	index map[string]int64
	keys  []string // sorted
	buf   []byte
}

// OpenFile opens (or creates) the store whose log is the file at path.
func OpenFile(path string) (*File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	s := &File{f: f, index: map[string]int64{}}
	for off := 0; off < len(data); {
		key, _, n, err := unmarshal(data[off:])
		if err != nil {
			break // torn tail
		}
		if _, ok := s.index[key]; !ok {
			s.keys = append(s.keys, key)
		}
		s.index[key] = int64(off)
		off += n
		s.end = int64(off)
	}
	if s.end != int64(len(data)) {
		if err := f.Truncate(s.end); err != nil {
			f.Close()
			return nil, err
		}
	}
	slices.Sort(s.keys)
	return s, nil
}

func (s *File) append(key string, fields [][]byte) error {
	s.buf = marshal(s.buf[:0], key, fields)
	if _, err := s.f.WriteAt(s.buf, s.end); err != nil {
		return err
	}
	if err := s.f.Sync(); err != nil {
		return err
	}
	if _, ok := s.index[key]; !ok {
		i, _ := slices.BinarySearch(s.keys, key)
		s.keys = slices.Insert(s.keys, i, key)
	}
	s.index[key] = s.end
	s.end += int64(len(s.buf))
	return nil
}

func (s *File) read(key string) ([][]byte, error) {
	off, ok := s.index[key]
	if !ok {
		return nil, ErrNotFound
	}
	var hdr [8]byte
	if _, err := s.f.ReadAt(hdr[:], off); err != nil {
		return nil, err
	}
	n := 8 + int(uint32(hdr[0])|uint32(hdr[1])<<8|uint32(hdr[2])<<16|uint32(hdr[3])<<24)
	b := make([]byte, n)
	if _, err := s.f.ReadAt(b, off); err != nil {
		return nil, err
	}
	k, fields, _, err := unmarshal(b)
	if err != nil || k != key {
		return nil, fmt.Errorf("kv: %s: bad record at %d", s.f.Name(), off)
	}
	return fields, nil
}

// Insert implements Store.
func (s *File) Insert(key string, fields [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.append(key, fields)
}

// Read implements Store.
func (s *File) Read(key string) ([][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read(key)
}

// Update implements Store.
func (s *File) Update(key string, i int, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.read(key)
	if err != nil {
		return err
	}
	if i < 0 || i >= len(r) {
		return ErrNotFound
	}
	r[i] = value
	return s.append(key, r)
}

// Scan implements Store.
func (s *File) Scan(start string, n int, fn func(string, [][]byte) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := slices.BinarySearch(s.keys, start)
	for ; i < len(s.keys) && n > 0; i, n = i+1, n-1 {
		r, err := s.read(s.keys[i])
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
