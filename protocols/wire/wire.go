// Package wire holds the binary encoding primitives that every protocol
// codec is built from: unsigned varints, length-prefixed byte strings,
// ballots and commands. Encoders append to a byte slice; a Reader decodes
// with a sticky error, so a codec checks one error at the end. Lengths are
// bounded, so a malformed frame can never make a decoder allocate more than
// the frame's own size allows.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("wire: malformed message")

// AppendUvarint appends v as an unsigned varint.
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendBytes appends p with a varint length prefix.
func AppendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// AppendString appends s with a varint length prefix.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBool appends v as one byte.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendBallot appends a ballot.
func AppendBallot(b []byte, bal ballot.Ballot) []byte {
	b = binary.AppendUvarint(b, bal.Round)
	return binary.AppendUvarint(b, uint64(bal.Node))
}

// AppendCommandID appends a command id.
func AppendCommandID(b []byte, id protocols.CommandID) []byte {
	b = binary.AppendUvarint(b, id.Client)
	return binary.AppendUvarint(b, id.Seq)
}

// AppendCommand appends a command: id, acknowledgement watermark, keys,
// payload.
func AppendCommand(b []byte, c protocols.Command) []byte {
	b = AppendCommandID(b, c.ID)
	b = binary.AppendUvarint(b, c.Acked)
	b = binary.AppendUvarint(b, uint64(len(c.Keys)))
	for _, k := range c.Keys {
		b = AppendString(b, k)
	}
	return AppendBytes(b, c.Payload)
}

// AppendCommands appends a counted list of commands.
func AppendCommands(b []byte, cs []protocols.Command) []byte {
	b = binary.AppendUvarint(b, uint64(len(cs)))
	for _, c := range cs {
		b = AppendCommand(b, c)
	}
	return b
}

// UvarintLen is the length of v encoded by AppendUvarint.
func UvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// BallotLen is the length of bal encoded by AppendBallot.
func BallotLen(bal ballot.Ballot) int { return UvarintLen(bal.Round) + UvarintLen(uint64(bal.Node)) }

// CommandLen is the length of c encoded by AppendCommand, so that an
// encoder can allocate its buffer once.
func CommandLen(c protocols.Command) int {
	n := UvarintLen(c.ID.Client) + UvarintLen(c.ID.Seq) + UvarintLen(c.Acked) + UvarintLen(uint64(len(c.Keys)))
	for _, k := range c.Keys {
		n += UvarintLen(uint64(len(k))) + len(k)
	}
	return n + UvarintLen(uint64(len(c.Payload))) + len(c.Payload)
}

// CommandsLen is the length of cs encoded by AppendCommands.
func CommandsLen(cs []protocols.Command) int {
	n := UvarintLen(uint64(len(cs)))
	for _, c := range cs {
		n += CommandLen(c)
	}
	return n
}

// Reader decodes the primitives of this package from a byte slice. The
// first error sticks: later reads return zero values, and Err reports it.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b. Decoded byte slices alias b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

func (r *Reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
}

// Err returns the first decoding error, or nil.
func (r *Reader) Err() error { return r.err }

// Len is the number of bytes not yet read.
func (r *Reader) Len() int { return len(r.b) }

// Done returns the first error, or an error if unread bytes remain.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Sprintf("%d trailing bytes", len(r.b)))
	}
	return r.err
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("truncated byte")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// Bool reads a byte written by AppendBool; any value other than 0 or 1 is an
// error.
func (r *Reader) Bool() bool {
	switch r.Byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail("bad bool")
	return false
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Count reads a varint element count and checks that at least minSize bytes
// per element remain, so a forged count cannot force a large allocation.
func (r *Reader) Count(minSize int) int {
	v := r.Uvarint()
	if r.err != nil {
		return 0
	}
	if minSize < 1 {
		minSize = 1
	}
	if v > uint64(len(r.b)/minSize) {
		r.fail(fmt.Sprintf("count %d exceeds remaining %d bytes", v, len(r.b)))
		return 0
	}
	return int(v)
}

// Bytes reads a length-prefixed byte string. The result aliases the input.
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(fmt.Sprintf("length %d exceeds remaining %d bytes", n, len(r.b)))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// String reads a length-prefixed string.
func (r *Reader) String() string { return string(r.Bytes()) }

// Ballot reads a ballot.
func (r *Reader) Ballot() ballot.Ballot {
	round := r.Uvarint()
	node := r.Uvarint()
	if node > 1<<32-1 {
		r.fail("node id out of range")
	}
	return ballot.Ballot{Round: round, Node: protocols.NodeID(node)}
}

// NodeID reads a node id written with AppendUvarint.
func (r *Reader) NodeID() protocols.NodeID {
	v := r.Uvarint()
	if v > 1<<32-1 {
		r.fail("node id out of range")
	}
	return protocols.NodeID(v)
}

// CommandID reads a command id.
func (r *Reader) CommandID() protocols.CommandID {
	return protocols.CommandID{Client: r.Uvarint(), Seq: r.Uvarint()}
}

// Command reads a command written by AppendCommand.
func (r *Reader) Command() protocols.Command {
	c := protocols.Command{ID: r.CommandID(), Acked: r.Uvarint()}
	if n := r.Count(1); n > 0 {
		c.Keys = make([]string, n)
		for i := range c.Keys {
			c.Keys[i] = r.String()
		}
	}
	if p := r.Bytes(); len(p) > 0 {
		c.Payload = p
	}
	return c
}

// Commands reads a list written by AppendCommands.
func (r *Reader) Commands() []protocols.Command {
	n := r.Count(4)
	if n == 0 {
		return nil
	}
	cs := make([]protocols.Command, n)
	for i := range cs {
		cs[i] = r.Command()
	}
	return cs
}
