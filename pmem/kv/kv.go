// Package kv puts the pmem heap and three comparison stores behind one
// key-value interface shaped like YCSB's: records of numbered fields, point
// reads, single-field updates, inserts and ordered scans.
//
//   - Pmem keeps records as persistent objects in a pmem heap: a hash map
//     (point operations) and a sorted map (scans) index records, each one
//     block holding a field directory and the fields; an update rewrites
//     one field in place inside an atomic block.
//   - File is the file-system back end of J-NVM's comparison, modelled on
//     Infinispan's SingleFileStore behind its data container: each write
//     marshals the whole record into a slot of one data file with a
//     synchronous write, a volatile cache holds a bounded number of
//     unmarshalled records (see File).
//   - Bolt stores marshalled records in go.etcd.io/bbolt, syncing each
//     transaction (its default).
//   - Memory keeps records in a Go map, with no durability: the ceiling.
//
// Every store is safe for concurrent use.
package kv

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// ErrNotFound is returned for a key that is not in the store.
var ErrNotFound = errors.New("kv: key not found")

// Store is the interface the YCSB driver runs against.
type Store interface {
	// Insert stores a record (overwriting any record under key). fields are
	// copied.
	Insert(key string, fields [][]byte) error
	// Read copies every field of the record under key into dst, reusing the
	// capacity of dst and of its elements (dst[i] = append(dst[i][:0],
	// field...)), and returns the filled slice; or ErrNotFound. The result
	// shares no memory with the store.
	Read(key string, dst [][]byte) ([][]byte, error)
	// Update replaces field i of the record under key with a copy of value,
	// leaving the other fields as they are (YCSB's update writes one field),
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

var errMalformed = errors.New("kv: malformed record")

// unmarshal decodes one record from the front of b and returns its key
// (aliasing b), its fields copied into dst as Store.Read specifies, and its
// total encoded length.
func unmarshal(b []byte, dst [][]byte) (key []byte, fields [][]byte, n int, err error) {
	if len(b) < 8 {
		return nil, dst, 0, errMalformed
	}
	bl := int(binary.LittleEndian.Uint32(b))
	if bl > len(b)-8 || bl < 4 {
		return nil, dst, 0, errMalformed
	}
	body := b[8 : 8+bl]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, dst, 0, errMalformed
	}
	kl := int(binary.LittleEndian.Uint16(body))
	if 2+kl+2 > len(body) {
		return nil, dst, 0, errMalformed
	}
	key = body[2 : 2+kl]
	p := body[2+kl:]
	nf := int(binary.LittleEndian.Uint16(p))
	p = p[2:]
	if nf > len(p)/4 {
		return nil, dst, 0, errMalformed
	}
	fields = resize(dst, nf)
	for i := range fields {
		if len(p) < 4 {
			return nil, dst, 0, errMalformed
		}
		fl := int(binary.LittleEndian.Uint32(p))
		if fl > len(p)-4 {
			return nil, dst, 0, errMalformed
		}
		fields[i] = append(fields[i][:0], p[4:4+fl]...)
		p = p[4+fl:]
	}
	if len(p) != 0 {
		return nil, dst, 0, errMalformed
	}
	return key, fields, 8 + bl, nil
}

func copyFields(fields [][]byte) [][]byte {
	return copyInto(nil, fields)
}

// copyInto copies fields into dst as Store.Read specifies.
func copyInto(dst [][]byte, fields [][]byte) [][]byte {
	dst = resize(dst, len(fields))
	for i, f := range fields {
		dst[i] = append(dst[i][:0], f...)
	}
	return dst
}

// resize returns dst with length n, keeping the elements (and their
// capacity) it already has.
func resize(dst [][]byte, n int) [][]byte {
	if cap(dst) < n {
		dst = append(dst[:cap(dst)], make([][]byte, n-cap(dst))...)
	}
	return dst[:n]
}
