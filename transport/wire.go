package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/blossom-dso/blossom/protocols"
)

// Wire constants; see the package documentation for the layout.
const (
	// Magic opens every handshake and handshake reply.
	Magic = "BLSM"
	// Version is the wire-format version this package speaks.
	Version byte = 1

	maxClusterLen = 255
	maxReasonLen  = 255

	statusOK      byte = 0
	statusRefused byte = 1

	// readChunk bounds how much of a frame body is allocated ahead of the
	// bytes actually received.
	readChunk = 64 << 10
)

var (
	errBadMagic = errors.New("bad magic: not a blossom transport peer")
	// errEmptyReply is a refusal without a reason.
	errEmptyReply = errors.New("refused without a reason")
)

// versionError is a handshake in a wire version this node does not speak.
type versionError struct{ got byte }

func (e versionError) Error() string {
	return fmt.Sprintf("wire version %d not supported (want %d)", e.got, Version)
}

// frameTooLargeError is a frame header announcing more than MaxFrame bytes.
type frameTooLargeError struct{ size, max uint64 }

func (e frameTooLargeError) Error() string {
	return fmt.Sprintf("frame of %d bytes exceeds MaxFrame %d", e.size, e.max)
}

// refusedError is a handshake the acceptor refused, with its reason.
type refusedError struct{ reason string }

func (e refusedError) Error() string { return "refused: " + e.reason }

// hello is the dialer's half of the handshake.
type hello struct {
	cluster  string
	from, to protocols.NodeID
}

func appendHello(b []byte, h hello) []byte {
	b = append(b, Magic...)
	b = append(b, Version, byte(len(h.cluster)))
	b = append(b, h.cluster...)
	b = binary.BigEndian.AppendUint32(b, uint32(h.from))
	return binary.BigEndian.AppendUint32(b, uint32(h.to))
}

// readHello reads a hello; it never reads past the hello's last byte.
func readHello(r io.Reader) (hello, error) {
	var head [len(Magic) + 2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return hello{}, err
	}
	if string(head[:len(Magic)]) != Magic {
		return hello{}, errBadMagic
	}
	if v := head[len(Magic)]; v != Version {
		return hello{}, versionError{v}
	}
	rest := make([]byte, int(head[len(Magic)+1])+8)
	if _, err := io.ReadFull(r, rest); err != nil {
		return hello{}, err
	}
	n := len(rest) - 8
	return hello{
		cluster: string(rest[:n]),
		from:    protocols.NodeID(binary.BigEndian.Uint32(rest[n:])),
		to:      protocols.NodeID(binary.BigEndian.Uint32(rest[n+4:])),
	}, nil
}

// appendReply encodes the acceptor's answer: accepted if reason is empty,
// refused with reason (truncated to 255 bytes) otherwise.
func appendReply(b []byte, reason string) []byte {
	b = append(b, Magic...)
	b = append(b, Version)
	if reason == "" {
		return append(b, statusOK, 0)
	}
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	b = append(b, statusRefused, byte(len(reason)))
	return append(b, reason...)
}

// readReply reads the acceptor's answer. A refusal is a refusedError.
func readReply(r io.Reader) error {
	var head [len(Magic) + 3]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return err
	}
	if string(head[:len(Magic)]) != Magic {
		return errBadMagic
	}
	status, n := head[len(Magic)+1], int(head[len(Magic)+2])
	reason := make([]byte, n)
	if _, err := io.ReadFull(r, reason); err != nil {
		return err
	}
	switch {
	case status == statusOK && n == 0:
		return nil
	case status == statusRefused && n > 0:
		return refusedError{string(reason)}
	case status == statusRefused:
		return refusedError{errEmptyReply.Error()}
	}
	if v := head[len(Magic)]; v != Version {
		return versionError{v}
	}
	return fmt.Errorf("malformed handshake reply (status %d)", status)
}

// readFrame reads one frame. It returns a nil body for a keepalive (a
// zero-length frame) and a frameTooLargeError, without reading the body, for
// a frame longer than maxFrame. The body is allocated as its bytes arrive, in
// chunks of at most readChunk, so a lying header costs at most one chunk
// beyond the bytes the peer really sent. The body is freshly allocated: the
// codec may keep references into it.
func readFrame(r io.Reader, maxFrame int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := uint64(binary.BigEndian.Uint32(hdr[:]))
	switch {
	case n == 0:
		return nil, nil
	case n > uint64(maxFrame):
		return nil, frameTooLargeError{n, uint64(maxFrame)}
	}
	size := int(n)
	body := make([]byte, 0, min(size, readChunk))
	for len(body) < size {
		k := min(size-len(body), readChunk)
		if cap(body)-len(body) < k {
			grown := make([]byte, len(body), min(size, max(2*cap(body), len(body)+k)))
			copy(grown, body)
			body = grown
		}
		m, err := io.ReadFull(r, body[len(body):len(body)+k])
		body = body[:len(body)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return body, nil
}
