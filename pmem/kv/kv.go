// Package kv puts the pmem heap and three comparison stores behind one
// key-value interface shaped like YCSB's: records of numbered fields, point
// reads, single-field updates, inserts and ordered scans.
//
//   - Pmem keeps records as persistent objects in a pmem heap: a hash map
//     (point operations) and a sorted map (scans) index records, each one
//     block holding a field directory and the fields; an update rewrites
//     one field in place inside an atomic block.
//   - File marshals each record and appends it to a log file, with fsync
//     after each write, and keeps an in-memory index (the file-system back
//     end of the comparison).
//   - Bolt stores marshalled records in go.etcd.io/bbolt, syncing each
//     transaction (its default).
//   - Memory keeps records in a Go map, with no durability: the ceiling.
//
// Every store is safe for concurrent use.
package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// ErrNotFound is returned for a key that is not in the store.
var ErrNotFound = errors.New("kv: key not found")

// Store is the interface the YCSB driver runs against.
type Store interface {
	// Insert stores a record (overwriting any record under key). fields are
	// copied.
	Insert(key string, fields [][]byte) error
	// Read returns a copy of the record under key, or ErrNotFound.
	Read(key string) ([][]byte, error)
	// Update replaces field i of the record under key with a copy of value,
	// or returns ErrNotFound.
	Update(key string, i int, value []byte) error
	// Scan calls fn with up to n records whose keys are >= start, in key
	// order, until fn returns false. The fields passed to fn are only valid
	// during the call.
	Scan(start string, n int, fn func(key string, fields [][]byte) bool) error
	// Close releases the store; with a durable store, everything acknowledged
	// before is on the medium.
	Close() error
}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// marshal encodes a record as [u32 body length][u32 crc32c of body] body,
// with body = [u16 key length][key][u16 n]{[u32 len][field]}.
func marshal(dst []byte, key string, fields [][]byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, 8)...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(fields)))
	for _, f := range fields {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(f)))
		dst = append(dst, f...)
	}
	body := dst[start+8:]
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(body, crcTable))
	return dst
}

// unmarshal decodes one record from the front of b and returns its total
// encoded length. The fields are copies.
func unmarshal(b []byte) (key string, fields [][]byte, n int, err error) {
	bad := fmt.Errorf("kv: malformed record")
	if len(b) < 8 {
		return "", nil, 0, bad
	}
	bl := int(binary.LittleEndian.Uint32(b))
	if bl > len(b)-8 || bl < 4 {
		return "", nil, 0, bad
	}
	body := b[8 : 8+bl]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return "", nil, 0, bad
	}
	kl := int(binary.LittleEndian.Uint16(body))
	if 2+kl+2 > len(body) {
		return "", nil, 0, bad
	}
	key = string(body[2 : 2+kl])
	p := body[2+kl:]
	nf := int(binary.LittleEndian.Uint16(p))
	p = p[2:]
	fields = make([][]byte, nf)
	for i := range fields {
		if len(p) < 4 {
			return "", nil, 0, bad
		}
		fl := int(binary.LittleEndian.Uint32(p))
		if fl > len(p)-4 {
			return "", nil, 0, bad
		}
		fields[i] = append([]byte(nil), p[4:4+fl]...)
		p = p[4+fl:]
	}
	return key, fields, 8 + bl, nil
}

func copyFields(fields [][]byte) [][]byte {
	out := make([][]byte, len(fields))
	for i, f := range fields {
		out[i] = append([]byte(nil), f...)
	}
	return out
}
