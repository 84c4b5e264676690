package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// MaxRecordBytes is the largest record Write accepts. Recovery refuses a
// record header that claims more, so a corrupt length field can never make
// Open allocate or read an unbounded amount.
const MaxRecordBytes = 64 << 20

// DefaultSegmentBytes is the segment size used when Options.SegmentBytes is 0.
const DefaultSegmentBytes = 64 << 20

// ErrCorrupt is wrapped by every error Open returns because the files on disk
// are damaged in a way that is not a torn tail. Test for it with errors.Is;
// errors.As with *CorruptError yields the file and offset.
var ErrCorrupt = errors.New("wal: corrupt")

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("wal: log is closed")

// ErrRecordTooLarge is wrapped by the error Write returns for a record longer
// than MaxRecordBytes; nothing of the batch is written in that case.
var ErrRecordTooLarge = errors.New("wal: record too large")

// CorruptError describes damage found by Open. It unwraps to ErrCorrupt.
type CorruptError struct {
	File   string // path of the damaged file
	Offset int64  // byte offset of the damaged header or record in File
	Reason string // what is wrong there
}

// Error reports the file, the offset and the reason.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt file %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corruptf(file string, off int64, format string, args ...any) error {
	return &CorruptError{File: file, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Segment file layout (all integers little-endian):
//
//	header: magic "BWAL" | version uint32 | first index uint64 | CRC-32C of the previous 16 bytes
//	record: length uint32 | CRC-32C of (length bytes, data) | data
const (
	segMagic       = "BWAL"
	segVersion     = 1
	segHeaderSize  = 20
	recHeaderSize  = 8
	segSuffix      = ".wal"
	segNameDigits  = 20
	snapPrefix     = "snap-"
	snapSuffix     = ".snap"
	tmpSuffix      = ".tmp"
	snapMagic      = "BSNP"
	snapVersion    = 1
	snapHeaderSize = 28
)

func segmentName(first uint64) string {
	return fmt.Sprintf("%0*d%s", segNameDigits, first, segSuffix)
}

func snapshotName(index uint64) string {
	return fmt.Sprintf("%s%0*d%s", snapPrefix, segNameDigits, index, snapSuffix)
}

// parseIndexName parses prefix + 20 decimal digits + suffix. Only names
// exactly as this package writes them are accepted.
func parseIndexName(name, prefix, suffix string) (uint64, bool) {
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) {
		return 0, false
	}
	digits := name[len(prefix) : len(name)-len(suffix)]
	if len(digits) != segNameDigits {
		return 0, false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

func parseSegmentName(name string) (uint64, bool) {
	n, ok := parseIndexName(name, "", segSuffix)
	return n, ok && n >= 1
}

func parseSnapshotName(name string) (uint64, bool) {
	return parseIndexName(name, snapPrefix, snapSuffix)
}

func segmentHeader(first uint64) []byte {
	h := make([]byte, segHeaderSize)
	copy(h, segMagic)
	binary.LittleEndian.PutUint32(h[4:], segVersion)
	binary.LittleEndian.PutUint64(h[8:], first)
	binary.LittleEndian.PutUint32(h[16:], crc32.Checksum(h[:16], castagnoli))
	return h
}

// checkSegmentHeader validates the header of the segment file path, whose
// name says it starts at index first.
func checkSegmentHeader(path string, b []byte, first uint64) error {
	if len(b) < segHeaderSize {
		return corruptf(path, 0, "segment header is %d bytes, want %d", len(b), segHeaderSize)
	}
	if string(b[:4]) != segMagic {
		return corruptf(path, 0, "bad segment magic %q", b[:4])
	}
	if got := crc32.Checksum(b[:16], castagnoli); got != binary.LittleEndian.Uint32(b[16:]) {
		return corruptf(path, 0, "segment header checksum mismatch")
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != segVersion {
		return corruptf(path, 0, "unsupported segment version %d", v)
	}
	if got := binary.LittleEndian.Uint64(b[8:]); got != first {
		return corruptf(path, 0, "segment header says first index %d, file name says %d", got, first)
	}
	return nil
}

func recordChecksum(lenField, data []byte) uint32 {
	return crc32.Update(crc32.Checksum(lenField, castagnoli), castagnoli, data)
}

// appendRecord appends the framed record to buf.
func appendRecord(buf, rec []byte) []byte {
	var h [recHeaderSize]byte
	binary.LittleEndian.PutUint32(h[:4], uint32(len(rec)))
	binary.LittleEndian.PutUint32(h[4:], recordChecksum(h[:4], rec))
	buf = append(buf, h[:]...)
	return append(buf, rec...)
}

// scanResult is what scanRecords found in one segment.
type scanResult struct {
	recs [][]byte // the valid records, in order; they alias the input
	end  int64    // offset just past the last valid record
	torn string   // why the tail from end on is torn; "" if it is not
}

// scanRecords decodes the records of the segment file path, whose contents
// (header included) are b. If lastSegment, an incomplete or checksum-failing
// record at the very end is reported as a torn tail instead of an error: the
// record extends to or past EOF, or it and everything after it are zero bytes.
func scanRecords(path string, b []byte, lastSegment bool) (scanResult, error) {
	var res scanResult
	off := segHeaderSize
	for off < len(b) {
		at := int64(off)
		rem := len(b) - off
		if rem < recHeaderSize {
			if lastSegment {
				res.end, res.torn = at, fmt.Sprintf("incomplete record header (%d of %d bytes)", rem, recHeaderSize)
				return res, nil
			}
			return res, corruptf(path, at, "incomplete record header (%d of %d bytes) in a segment that is not the last", rem, recHeaderSize)
		}
		n := binary.LittleEndian.Uint32(b[off:])
		sum := binary.LittleEndian.Uint32(b[off+4:])
		// A length this package never writes is damage, not a torn write:
		// appends land in fresh (zeroed) file space.
		if n > MaxRecordBytes {
			return res, corruptf(path, at, "record length %d exceeds the limit %d", n, MaxRecordBytes)
		}
		end := off + recHeaderSize + int(n)
		if end > len(b) {
			if lastSegment {
				res.end, res.torn = at, fmt.Sprintf("record of %d bytes extends past end of file", n)
				return res, nil
			}
			return res, corruptf(path, at, "record of %d bytes extends past end of a segment that is not the last", n)
		}
		if recordChecksum(b[off:off+4], b[off+recHeaderSize:end]) != sum {
			if lastSegment && (end == len(b) || allZero(b[off:])) {
				res.end, res.torn = at, "checksum mismatch in the final record"
				return res, nil
			}
			return res, corruptf(path, at, "record checksum mismatch")
		}
		res.recs = append(res.recs, b[off+recHeaderSize:end:end])
		off = end
	}
	res.end = int64(off)
	return res, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func encodeSnapshotHeader(index uint64, data []byte) []byte {
	h := make([]byte, snapHeaderSize)
	copy(h, snapMagic)
	binary.LittleEndian.PutUint32(h[4:], snapVersion)
	binary.LittleEndian.PutUint64(h[8:], index)
	binary.LittleEndian.PutUint64(h[16:], uint64(len(data)))
	sum := crc32.Update(crc32.Checksum(h[:24], castagnoli), castagnoli, data)
	binary.LittleEndian.PutUint32(h[24:], sum)
	return h
}

// decodeSnapshot validates the contents b of the snapshot file path, whose
// name says it covers records up to index, and returns its data.
func decodeSnapshot(path string, b []byte, index uint64) ([]byte, error) {
	if len(b) < snapHeaderSize {
		return nil, corruptf(path, 0, "snapshot header is %d bytes, want %d", len(b), snapHeaderSize)
	}
	if string(b[:4]) != snapMagic {
		return nil, corruptf(path, 0, "bad snapshot magic %q", b[:4])
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != snapVersion {
		return nil, corruptf(path, 4, "unsupported snapshot version %d", v)
	}
	if got := binary.LittleEndian.Uint64(b[8:]); got != index {
		return nil, corruptf(path, 8, "snapshot header says index %d, file name says %d", got, index)
	}
	if n := binary.LittleEndian.Uint64(b[16:]); n != uint64(len(b)-snapHeaderSize) {
		return nil, corruptf(path, 16, "snapshot header says %d data bytes, file has %d", n, len(b)-snapHeaderSize)
	}
	data := b[snapHeaderSize:]
	sum := crc32.Update(crc32.Checksum(b[:24], castagnoli), castagnoli, data)
	if sum != binary.LittleEndian.Uint32(b[24:]) {
		return nil, corruptf(path, 24, "snapshot checksum mismatch")
	}
	return data, nil
}
