package kv

import (
	"slices"
	"sync"
)

// Memory is a volatile store: a Go map plus a sorted key slice for scans.
type Memory struct {
	mu   sync.RWMutex
	recs map[string][][]byte
	keys []string // sorted
}

// NewMemory returns an empty volatile store.
func NewMemory() *Memory { return &Memory{recs: map[string][][]byte{}} }

// Insert implements Store.
func (m *Memory) Insert(key string, fields [][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[key]; !ok {
		i, _ := slices.BinarySearch(m.keys, key)
		m.keys = slices.Insert(m.keys, i, key)
	}
	m.recs[key] = copyFields(fields)
	return nil
}

// Read implements Store.
func (m *Memory) Read(key string, dst [][]byte) ([][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.recs[key]
	if !ok {
		return dst, ErrNotFound
	}
	return copyInto(dst, r), nil
}

// Update implements Store.
func (m *Memory) Update(key string, i int, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[key]
	if !ok || i < 0 || i >= len(r) {
		return ErrNotFound
	}
	r[i] = append(r[i][:0], value...)
	return nil
}

// Scan implements Store.
func (m *Memory) Scan(start string, n int, fn func(string, [][]byte) bool) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, _ := slices.BinarySearch(m.keys, start)
	for ; i < len(m.keys) && n > 0; i, n = i+1, n-1 {
		if !fn(m.keys[i], m.recs[m.keys[i]]) {
			break
		}
	}
	return nil
}

// Close implements Store.
func (m *Memory) Close() error { return nil }
