// Package wire is the binary protocol between DSO clients and servers:
// length-prefixed frames carrying calls and replies matched by request id,
// and a tagged encoding of argument and result values. docs/PROTOCOL.md
// describes the same format for writers of clients in other languages.
//
// Every decoder here is bounded: a count or length is checked against the
// bytes that remain before anything is allocated, nesting is limited to
// MaxDepth, and a malformed input yields an error wrapping ErrMalformed.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("wire: malformed frame")

// ErrTooLarge is returned by ReadFrame for a frame above the size limit.
var ErrTooLarge = errors.New("wire: frame too large")

// ErrForeign is returned by ReadFrame when the stream is evidently in
// another protocol (HTTP, TLS, SSH, Redis, ...).
var ErrForeign = errors.New("this endpoint does not speak the DSO protocol")

// Foreign guesses, from the first four bytes of a frame whose length is
// absurd, which other protocol the peer speaks; it returns "" if the bytes
// do not look like one.
func Foreign(hdr []byte) string {
	if len(hdr) < 4 {
		return ""
	}
	if (hdr[0] == 0x15 || hdr[0] == 0x16) && hdr[1] == 3 && hdr[2] <= 4 {
		return "TLS (connect with TLS: --tls-ca, Options.TLS)"
	}
	for _, c := range hdr[:4] {
		if c < 0x20 && c != '\r' && c != '\n' || c > 0x7e {
			return ""
		}
	}
	switch h := string(hdr[:4]); {
	case h == "HTTP" || h == "GET " || h == "POST" || h == "PUT " || h == "HEAD":
		return "HTTP"
	case h == "SSH-":
		return "SSH"
	case h[0] == '+' || h[0] == '-' || h[0] == '$' || h[0] == '*' || h[0] == ':':
		return fmt.Sprintf("%q: Redis?", h)
	default:
		return fmt.Sprintf("%q: text", h)
	}
}

// MaxDepth bounds the nesting of lists and maps in a value.
const MaxDepth = 32

// DefaultMaxFrame is the default limit on a frame's body, in bytes.
const DefaultMaxFrame = 16 << 20

// Op is the first byte of a frame body.
type Op uint8

// Request and reply operations.
const (
	OpCall    Op = 0x01 // invoke a method of an object
	OpCancel  Op = 0x02 // withdraw a parked call
	OpDelete  Op = 0x03 // delete an object
	OpMembers Op = 0x04 // list the cluster's endpoints
	OpList    Op = 0x05 // list the objects held by this node
	OpPing    Op = 0x06 // liveness check
	OpHello   Op = 0x07 // authenticate the connection with a token
	// OpCallP invokes a method of a persistent (replicated) object, as one
	// command of a client session: it carries the session, the call's
	// sequence number in it and the session's acknowledgement watermark.
	OpCallP Op = 0x08
	// OpMulti applies calls on several persistent objects atomically (one
	// command of a client session, multicast to the objects' groups).
	OpMulti Op = 0x09
	// OpTopology asks for the cluster's layout: members, replication
	// factor, protocol.
	OpTopology Op = 0x0a
	// OpDeleteP deletes a persistent object (one command of a session).
	OpDeleteP Op = 0x0b
	OpOK      Op = 0x81 // successful reply carrying a value
	OpOKInc   Op = 0x83 // successful reply carrying the object's incarnation and a value
	OpOKPos   Op = 0x84 // successful reply of the sequential level carrying a log position and a value
	OpError   Op = 0x82 // error reply carrying a code and a message
)

// Code classifies an error reply.
type Code uint8

// Error codes carried by OpError replies.
const (
	CodeInternal      Code = 1
	CodeMalformed     Code = 2
	CodeUnknownType   Code = 3
	CodeUnknownMethod Code = 4
	CodeBadArgs       Code = 5
	CodeCanceled      Code = 6
	CodeWrongNode     Code = 7
	CodeTooLarge      Code = 8
	CodeApp           Code = 9  // the method itself failed (index out of range, ...)
	CodeClosed        Code = 10 // the object is closed (pipe) or deleted while parked
	CodeTimeout       Code = 11
	CodeDenied        Code = 12 // the connection's credentials do not allow the request
	CodeLimit         Code = 13 // a server limit was reached (connections, objects, key length, buffered bytes)
	CodeOverflow      Code = 14 // integer arithmetic overflowed; the object is unchanged
	// CodeClosing: the server is closing gracefully. On a call (id ≠ 0),
	// a parked call withdrawn because the server closes (it did not
	// complete; whether it had effects is unknown to the client). On the
	// connection (id 0, sent once, after the answer of every call the
	// server read but persistent ones in flight): the server reads nothing
	// further from this connection, so no call still unanswered on it was
	// executed (a persistent call may have been, under its session number,
	// which the replicas execute at most once), and a client may send
	// those again on a new connection.
	CodeClosing Code = 15
)

func (c Code) String() string {
	switch c {
	case CodeInternal:
		return "internal"
	case CodeMalformed:
		return "malformed"
	case CodeUnknownType:
		return "unknown type"
	case CodeUnknownMethod:
		return "unknown method"
	case CodeBadArgs:
		return "bad arguments"
	case CodeCanceled:
		return "canceled"
	case CodeWrongNode:
		return "wrong node"
	case CodeTooLarge:
		return "too large"
	case CodeApp:
		return "failed"
	case CodeClosed:
		return "closed"
	case CodeTimeout:
		return "timeout"
	case CodeDenied:
		return "denied"
	case CodeLimit:
		return "limit"
	case CodeOverflow:
		return "overflow"
	case CodeClosing:
		return "closing"
	}
	return fmt.Sprintf("code %d", uint8(c))
}

// Value tags.
const (
	tagNil    = 0
	tagFalse  = 1
	tagTrue   = 2
	tagInt    = 3
	tagFloat  = 4
	tagString = 5
	tagBytes  = 6
	tagList   = 7
	tagMap    = 8
	tagFloats = 9
)

// Request is a decoded client-to-server frame.
type Request struct {
	Op      Op
	ID      uint64
	Timeout uint64 // milliseconds; 0 means none (OpCall only)
	Flags   uint64 // OpHello only: HelloIncarnations, ...
	Type    string // OpCall, OpDelete; type prefix for OpList
	Key     string // OpCall, OpDelete; the token of OpHello
	Method  string
	Args    []any
	Ctor    []any // constructor arguments, used if the call creates the object
	// Session, Seq and Acked identify a command of a client session
	// (OpCallP, OpMulti, OpDeleteP): a retry carries the same three, and
	// Acked promises that the client has the answer of every Seq below it.
	Session, Seq, Acked uint64
	// Parts are the calls of an OpMulti.
	Parts []Part
	// Level is the degradation level of an OpCallP's or OpDeleteP's object
	// (degradable.Level: 1 linearizable, 2 sequential, 3 weak); 0, the
	// default, is linearizable. See AppendCallPLevel.
	Level uint8
	// Seen is, for an OpCallP at the sequential level (Level 2), the log
	// position of the object's replica group the session has observed
	// (the greatest Reply.Position it got from that group at that level);
	// 0 if none. See AppendCallPLevel.
	Seen uint64
}

// Part is one call of an OpMulti.
type Part struct {
	Type, Key, Method string
	Args, Ctor        []any
}

// Command identifies a command of a client session in a frame. Seen is
// only sent by AppendCallPLevel at the sequential level (Request.Seen).
type Command struct{ Session, Seq, Acked, Seen uint64 }

func appendCommand(b []byte, c Command) []byte {
	b = binary.AppendUvarint(b, c.Session)
	b = binary.AppendUvarint(b, c.Seq)
	return binary.AppendUvarint(b, c.Acked)
}

// AppendCallP appends a complete OpCallP frame: AppendCall's fields after
// the timeout, preceded by the session command c.
func AppendCallP(b []byte, id, timeoutMs uint64, c Command, typ, key, method string, args, ctor []any) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(OpCallP))
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.AppendUvarint(b, timeoutMs)
	b = appendCommand(b, c)
	b = AppendString(b, typ)
	b = AppendString(b, key)
	b = AppendString(b, method)
	var err error
	if b, err = appendValues(b, args); err != nil {
		return b[:start], err
	}
	if b, err = appendValues(b, ctor); err != nil {
		return b[:start], err
	}
	return finish(b, start), nil
}

// MaxLevel is the largest Request.Level.
const MaxLevel = 3

// AppendCallPLevel is AppendCallP for an object of degradation level
// level (Request.Level): a level above 1 is one more byte after the
// constructor arguments; 0 and 1 (linearizable) give AppendCallP's frame.
// At level 2 (sequential) a c.Seen above 0 follows the level byte as a
// uvarint (Request.Seen).
func AppendCallPLevel(b []byte, id, timeoutMs uint64, c Command, level uint8, typ, key, method string, args, ctor []any) ([]byte, error) {
	if level > MaxLevel {
		return b, fmt.Errorf("wire: level %d (at most %d)", level, MaxLevel)
	}
	start := len(b)
	b, err := AppendCallP(b, id, timeoutMs, c, typ, key, method, args, ctor)
	if err != nil || level <= 1 {
		return b, err
	}
	b = append(b, level)
	if level == 2 && c.Seen > 0 {
		b = binary.AppendUvarint(b, c.Seen)
	}
	return finish(b, start), nil
}

// AppendMulti appends a complete OpMulti frame: the session command and
// the parts, each as type, key, method, args and ctor.
func AppendMulti(b []byte, id, timeoutMs uint64, c Command, parts []Part) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(OpMulti))
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.AppendUvarint(b, timeoutMs)
	b = appendCommand(b, c)
	b = binary.AppendUvarint(b, uint64(len(parts)))
	for _, p := range parts {
		b = AppendString(b, p.Type)
		b = AppendString(b, p.Key)
		b = AppendString(b, p.Method)
		var err error
		if b, err = appendValues(b, p.Args); err != nil {
			return b[:start], err
		}
		if b, err = appendValues(b, p.Ctor); err != nil {
			return b[:start], err
		}
	}
	return finish(b, start), nil
}

// AppendDeleteP appends a complete OpDeleteP frame.
func AppendDeleteP(b []byte, id uint64, c Command, typ, key string) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(OpDeleteP))
	b = binary.BigEndian.AppendUint64(b, id)
	b = appendCommand(b, c)
	b = AppendString(b, typ)
	b = AppendString(b, key)
	return finish(b, start)
}

// AppendDeletePLevel is AppendDeleteP for an object of degradation level
// level (Request.Level): a level above 1 is one more byte after the key;
// 0 and 1 (linearizable) give AppendDeleteP's frame.
func AppendDeletePLevel(b []byte, id uint64, c Command, level uint8, typ, key string) ([]byte, error) {
	if level > MaxLevel {
		return b, fmt.Errorf("wire: level %d (at most %d)", level, MaxLevel)
	}
	start := len(b)
	b = AppendDeleteP(b, id, c, typ, key)
	if level <= 1 {
		return b, nil
	}
	b = append(b, level)
	return finish(b, start), nil
}

// Reply is a decoded server-to-client frame.
type Reply struct {
	ID    uint64
	OK    bool
	Value any
	Code  Code
	Msg   string
	// Incarnation is the object's incarnation in an OpOKInc reply, else 0.
	Incarnation uint64
	// Position is the log position of an OpOKPos reply (a call at the
	// sequential level): the client passes the greatest it got from a
	// replica group back as Request.Seen. 0 in other replies.
	Position uint64
}

// AppendCall appends a complete OpCall frame (length prefix included).
func AppendCall(b []byte, id, timeoutMs uint64, typ, key, method string, args, ctor []any) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(OpCall))
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.AppendUvarint(b, timeoutMs)
	b = AppendString(b, typ)
	b = AppendString(b, key)
	b = AppendString(b, method)
	var err error
	if b, err = appendValues(b, args); err != nil {
		return b[:start], err
	}
	if b, err = appendValues(b, ctor); err != nil {
		return b[:start], err
	}
	return finish(b, start), nil
}

func appendValues(b []byte, vs []any) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		var err error
		if b, err = AppendValue(b, v); err != nil {
			return b, err
		}
	}
	return b, nil
}

// AppendSimple appends a frame made of an op, an id and optional strings
// (OpCancel, OpMembers, OpPing: none; OpDelete: type and key; OpList: prefix).
func AppendSimple(b []byte, op Op, id uint64, strs ...string) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(op))
	b = binary.BigEndian.AppendUint64(b, id)
	for _, s := range strs {
		b = AppendString(b, s)
	}
	return finish(b, start)
}

// HelloIncarnations, a flag of OpHello, asks the server to answer every
// successful call on the connection with OpOKInc instead of OpOK.
const HelloIncarnations = 1

// AppendHello appends an OpHello frame carrying flags (HelloIncarnations)
// and an authentication token (empty: none).
func AppendHello(b []byte, id, flags uint64, token string) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(OpHello))
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.AppendUvarint(b, flags)
	b = AppendString(b, token)
	return finish(b, start)
}

// AppendOK appends an OpOK reply frame.
func AppendOK(b []byte, id uint64, v any) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(OpOK))
	b = binary.BigEndian.AppendUint64(b, id)
	b, err := AppendValue(b, v)
	if err != nil {
		return b[:start], err
	}
	return finish(b, start), nil
}

// AppendOKInc appends an OpOKInc reply frame: an OK reply that also
// carries the incarnation of the object called (0: the object did not
// exist and the call, a read, created nothing).
func AppendOKInc(b []byte, id, inc uint64, v any) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(OpOKInc))
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.BigEndian.AppendUint64(b, inc)
	b, err := AppendValue(b, v)
	if err != nil {
		return b[:start], err
	}
	return finish(b, start), nil
}

// AppendOKPos appends an OpOKPos reply frame: an OK reply to a call at
// the sequential level that also carries the log position of the replica
// that answered (Reply.Position).
func AppendOKPos(b []byte, id, pos uint64, v any) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(OpOKPos))
	b = binary.BigEndian.AppendUint64(b, id)
	b = binary.AppendUvarint(b, pos)
	b, err := AppendValue(b, v)
	if err != nil {
		return b[:start], err
	}
	return finish(b, start), nil
}

// AppendError appends an OpError reply frame.
func AppendError(b []byte, id uint64, code Code, msg string) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, byte(OpError))
	b = binary.BigEndian.AppendUint64(b, id)
	b = append(b, byte(code))
	b = AppendString(b, msg)
	return finish(b, start)
}

func finish(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// ReadFrame reads one frame body into buf (grown as needed) and returns it.
// A body longer than max yields ErrTooLarge; the stream is then unusable.
func ReadFrame(r io.Reader, buf []byte, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n > max {
		if f := Foreign(hdr[:]); f != "" {
			return nil, fmt.Errorf("%w (got %s)", ErrForeign, f)
		}
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, max)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// DecodeRequest decodes a frame body sent by a client. Strings and byte
// values in the result do not alias body.
func DecodeRequest(body []byte) (Request, error) {
	return DecodeRequestNames(body, nil)
}

// DecodeRequestNames is DecodeRequest, taking the type and method names of
// an OpCall from names (nil: none) when it holds them, so that a
// connection that calls the same few methods does not allocate them again
// for each request.
func DecodeRequestNames(body []byte, names *NameCache) (Request, error) {
	d := Reader{b: body}
	var q Request
	q.Op = Op(d.Byte())
	q.ID = d.U64()
	switch q.Op {
	case OpCall:
		q.Timeout = d.Uvarint()
		q.Type = names.intern(d.Bytes())
		q.Key = d.String()
		q.Method = names.intern(d.Bytes())
		q.Args = d.values()
		q.Ctor = d.values()
	case OpCallP:
		q.Timeout = d.Uvarint()
		q.Session, q.Seq, q.Acked = d.Uvarint(), d.Uvarint(), d.Uvarint()
		q.Type = d.String()
		q.Key = d.String()
		q.Method = d.String()
		q.Args = d.values()
		q.Ctor = d.values()
		d.level(&q)
		if q.Level == 2 && d.err == nil && d.off < len(d.b) {
			q.Seen = d.Uvarint()
		}
	case OpMulti:
		q.Timeout = d.Uvarint()
		q.Session, q.Seq, q.Acked = d.Uvarint(), d.Uvarint(), d.Uvarint()
		n := d.Count(5) // type, key, method, args, ctor: a byte each at least
		for i := 0; i < n && d.err == nil; i++ {
			q.Parts = append(q.Parts, Part{Type: d.String(), Key: d.String(), Method: d.String(), Args: d.values(), Ctor: d.values()})
		}
	case OpDeleteP:
		q.Session, q.Seq, q.Acked = d.Uvarint(), d.Uvarint(), d.Uvarint()
		q.Type = d.String()
		q.Key = d.String()
		d.level(&q)
	case OpDelete:
		q.Type = d.String()
		q.Key = d.String()
	case OpList:
		q.Type = d.String()
	case OpHello:
		q.Flags = d.Uvarint()
		q.Key = d.String() // the token
	case OpCancel, OpMembers, OpPing, OpTopology:
	default:
		if d.err == nil {
			d.Fail("unknown op 0x%02x", uint8(q.Op))
		}
	}
	return q, d.Done()
}

// level reads the optional level byte that ends an OpCallP's or
// OpDeleteP's fixed fields into q.Level: absent for linearizable, else 2
// to MaxLevel.
func (d *Reader) level(q *Request) {
	if d.err != nil || d.off >= len(d.b) {
		return
	}
	q.Level = d.Byte()
	if q.Level < 2 || q.Level > MaxLevel {
		d.off--
		d.Fail("level %d (2 to %d; linearizable is no byte)", q.Level, MaxLevel)
	}
}

// NameCache keeps the last few type and method names a connection decoded
// (at most nameCacheSize, each at most maxCachedName bytes, so a hostile
// peer cannot make it grow). The zero value is empty and ready; it is not
// safe for concurrent use.
type NameCache struct {
	names [nameCacheSize]string
	next  int
}

const (
	nameCacheSize = 8
	maxCachedName = 64
)

// intern returns b as a string: a cached one equal to it, or a new one
// (then cached if short enough). A nil cache only converts.
func (c *NameCache) intern(b []byte) string {
	if c == nil {
		return string(b)
	}
	for _, s := range c.names {
		if s == string(b) {
			return s
		}
	}
	s := string(b)
	if len(s) > 0 && len(s) <= maxCachedName {
		c.names[c.next] = s
		c.next = (c.next + 1) % nameCacheSize
	}
	return s
}

// DecodeReply decodes a frame body sent by a server.
func DecodeReply(body []byte) (Reply, error) {
	d := Reader{b: body}
	var r Reply
	op := Op(d.Byte())
	r.ID = d.U64()
	switch op {
	case OpOK:
		r.OK = true
		r.Value = d.value(0)
	case OpOKInc:
		r.OK = true
		r.Incarnation = d.U64()
		r.Value = d.value(0)
	case OpOKPos:
		r.OK = true
		r.Position = d.Uvarint()
		r.Value = d.value(0)
	case OpError:
		r.Code = Code(d.Byte())
		r.Msg = d.String()
	default:
		if d.err == nil {
			d.Fail("unknown reply op 0x%02x", uint8(op))
		}
	}
	return r, d.Done()
}

// PeekID returns the request id of a frame body, if it has one, so that a
// server can answer a call it cannot otherwise decode.
func PeekID(body []byte) (uint64, bool) {
	if len(body) < 9 {
		return 0, false
	}
	return binary.BigEndian.Uint64(body[1:9]), true
}

// AppendString appends s with a uvarint length prefix.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendValue appends the tagged encoding of v. It accepts nil, bool, all
// integer kinds (as int64; uint64 above MaxInt64 is an error), float32 and
// float64, string, []byte, []float64, []any, []string, []int64, []int,
// map[string]any, map[string]int64 and map[string]float64.
func AppendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, tagNil), nil
	case bool:
		if x {
			return append(b, tagTrue), nil
		}
		return append(b, tagFalse), nil
	case int64:
		return binary.AppendVarint(append(b, tagInt), x), nil
	case int:
		return binary.AppendVarint(append(b, tagInt), int64(x)), nil
	case int32:
		return binary.AppendVarint(append(b, tagInt), int64(x)), nil
	case int16:
		return binary.AppendVarint(append(b, tagInt), int64(x)), nil
	case int8:
		return binary.AppendVarint(append(b, tagInt), int64(x)), nil
	case uint8:
		return binary.AppendVarint(append(b, tagInt), int64(x)), nil
	case uint16:
		return binary.AppendVarint(append(b, tagInt), int64(x)), nil
	case uint32:
		return binary.AppendVarint(append(b, tagInt), int64(x)), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return b, fmt.Errorf("wire: uint %d overflows int64", x)
		}
		return binary.AppendVarint(append(b, tagInt), int64(x)), nil
	case uint64:
		if x > math.MaxInt64 {
			return b, fmt.Errorf("wire: uint64 %d overflows int64", x)
		}
		return binary.AppendVarint(append(b, tagInt), int64(x)), nil
	case float64:
		return binary.BigEndian.AppendUint64(append(b, tagFloat), math.Float64bits(x)), nil
	case float32:
		return binary.BigEndian.AppendUint64(append(b, tagFloat), math.Float64bits(float64(x))), nil
	case string:
		return AppendString(append(b, tagString), x), nil
	case []byte:
		b = binary.AppendUvarint(append(b, tagBytes), uint64(len(x)))
		return append(b, x...), nil
	case []float64:
		b = binary.AppendUvarint(append(b, tagFloats), uint64(len(x)))
		for _, f := range x {
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(f))
		}
		return b, nil
	case []any:
		b = binary.AppendUvarint(append(b, tagList), uint64(len(x)))
		for _, e := range x {
			var err error
			if b, err = AppendValue(b, e); err != nil {
				return b, err
			}
		}
		return b, nil
	case []string:
		b = binary.AppendUvarint(append(b, tagList), uint64(len(x)))
		for _, e := range x {
			b = AppendString(append(b, tagString), e)
		}
		return b, nil
	case []int64:
		b = binary.AppendUvarint(append(b, tagList), uint64(len(x)))
		for _, e := range x {
			b = binary.AppendVarint(append(b, tagInt), e)
		}
		return b, nil
	case []int:
		b = binary.AppendUvarint(append(b, tagList), uint64(len(x)))
		for _, e := range x {
			b = binary.AppendVarint(append(b, tagInt), int64(e))
		}
		return b, nil
	case map[string]any:
		b = binary.AppendUvarint(append(b, tagMap), uint64(len(x)))
		for k, e := range x {
			b = AppendString(b, k)
			var err error
			if b, err = AppendValue(b, e); err != nil {
				return b, err
			}
		}
		return b, nil
	case map[string]int64:
		b = binary.AppendUvarint(append(b, tagMap), uint64(len(x)))
		for k, e := range x {
			b = binary.AppendVarint(append(AppendString(b, k), tagInt), e)
		}
		return b, nil
	case map[string]float64:
		b = binary.AppendUvarint(append(b, tagMap), uint64(len(x)))
		for k, e := range x {
			b = binary.BigEndian.AppendUint64(append(AppendString(b, k), tagFloat), math.Float64bits(e))
		}
		return b, nil
	}
	return b, fmt.Errorf("wire: cannot encode a value of type %T", v)
}

// DecodeValue decodes exactly one value from b.
func DecodeValue(b []byte) (any, error) {
	d := Reader{b: b}
	v := d.value(0)
	return v, d.Done()
}

// DecodeValues decodes a uvarint count followed by that many values, the
// layout of a call's arguments.
func DecodeValues(b []byte) ([]any, error) {
	d := Reader{b: b}
	vs := d.values()
	return vs, d.Done()
}

// AppendValues appends a uvarint count and the values, the layout of a
// call's arguments.
func AppendValues(b []byte, vs []any) ([]byte, error) { return appendValues(b, vs) }

// Reader reads a bounded binary encoding: every count and length is
// checked against the bytes left before anything is allocated, and the
// first error sticks (every later read returns a zero value). The frame
// decoders of this package use it, and so do the state encodings built on
// these primitives elsewhere (parked calls, replicated object tables).
type Reader struct {
	b    []byte
	off  int
	err  error
	what string // prefix of errors; "" wraps ErrMalformed
}

// NewReader returns a Reader of b whose errors read "WHAT: PROBLEM at byte
// N"; with what == "" they wrap ErrMalformed instead.
func NewReader(b []byte, what string) *Reader { return &Reader{b: b, what: what} }

// Fail records the error of a problem found at the current position,
// unless an error was recorded before.
func (d *Reader) Fail(format string, args ...any) {
	if d.err != nil {
		return
	}
	if d.what == "" {
		d.err = fmt.Errorf("%w: %s at byte %d", ErrMalformed, fmt.Sprintf(format, args...), d.off)
	} else {
		d.err = fmt.Errorf("%s: %s at byte %d", d.what, fmt.Sprintf(format, args...), d.off)
	}
}

// Err returns the first error.
func (d *Reader) Err() error { return d.err }

// SetErr records err as the Reader's error unless one was recorded before.
func (d *Reader) SetErr(err error) {
	if d.err == nil {
		d.err = err
	}
}

// Left returns the number of bytes not read yet.
func (d *Reader) Left() int { return len(d.b) - d.off }

// Done returns the first error, or an error if bytes are left unread.
func (d *Reader) Done() error {
	if d.err == nil && d.off != len(d.b) {
		d.Fail("%d trailing bytes", len(d.b)-d.off)
	}
	return d.err
}

// Byte reads one byte.
func (d *Reader) Byte() byte {
	if d.err != nil {
		return 0
	}
	if d.Left() < 1 {
		d.Fail("truncated")
		return 0
	}
	c := d.b[d.off]
	d.off++
	return c
}

// Unread steps back over the byte Byte just read, so that a Fail about
// its value reports its position.
func (d *Reader) Unread() {
	if d.err == nil && d.off > 0 {
		d.off--
	}
}

// U64 reads a big-endian uint64.
func (d *Reader) U64() uint64 {
	if d.err != nil {
		return 0
	}
	if d.Left() < 8 {
		d.Fail("truncated")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v
}

// Uvarint reads an unsigned LEB128 integer.
func (d *Reader) Uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	if n <= 0 {
		d.Fail("bad uvarint")
		return 0
	}
	d.off += n
	return v
}

// Varint reads a zig-zag signed LEB128 integer.
func (d *Reader) Varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b[d.off:])
	if n <= 0 {
		d.Fail("bad varint")
		return 0
	}
	d.off += n
	return v
}

// Count reads a uvarint count of items each at least min bytes long, and
// fails if the bytes left cannot hold them.
func (d *Reader) Count(min int) int {
	n := d.Uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(d.Left()/min) {
		d.Fail("count %d exceeds the %d bytes left", n, d.Left())
		return 0
	}
	return int(n)
}

// Bytes reads a uvarint length and that many bytes; the result aliases
// the input (with its capacity cut at its end).
func (d *Reader) Bytes() []byte {
	n := d.Count(1)
	if d.err != nil {
		return nil
	}
	p := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return p
}

// String reads what Bytes reads, as a string.
func (d *Reader) String() string { return string(d.Bytes()) }

// Value reads a value stored as bytes (a uvarint length, then the tagged
// encoding of AppendValue), decoded on its own.
func (d *Reader) Value() any {
	p := d.Bytes()
	if d.err != nil {
		return nil
	}
	v, err := DecodeValue(p)
	if err != nil {
		d.Fail("value: %v", err)
		return nil
	}
	return v
}

func (d *Reader) values() []any {
	n := d.Count(1)
	if d.err != nil || n == 0 {
		return nil
	}
	vs := make([]any, n)
	for i := range vs {
		vs[i] = d.value(0)
	}
	return vs
}

func (d *Reader) value(depth int) any {
	if depth > MaxDepth {
		d.Fail("nesting deeper than %d", MaxDepth)
		return nil
	}
	switch t := d.Byte(); t {
	case tagNil:
		return nil
	case tagFalse:
		return false
	case tagTrue:
		return true
	case tagInt:
		return d.Varint()
	case tagFloat:
		return math.Float64frombits(d.U64())
	case tagString:
		return d.String()
	case tagBytes:
		p := d.Bytes()
		if d.err != nil {
			return nil
		}
		return append([]byte{}, p...)
	case tagFloats:
		n := d.Count(8)
		if d.err != nil {
			return nil
		}
		fs := make([]float64, n)
		for i := range fs {
			fs[i] = math.Float64frombits(binary.BigEndian.Uint64(d.b[d.off:]))
			d.off += 8
		}
		return fs
	case tagList:
		n := d.Count(1)
		if d.err != nil {
			return nil
		}
		l := make([]any, n)
		for i := range l {
			l[i] = d.value(depth + 1)
		}
		return l
	case tagMap:
		n := d.Count(2)
		if d.err != nil {
			return nil
		}
		m := make(map[string]any, n)
		for i := 0; i < n && d.err == nil; i++ {
			k := d.String()
			m[k] = d.value(depth + 1)
		}
		return m
	default:
		if d.err == nil {
			d.Unread()
			d.Fail("unknown value tag %d", t)
		}
		return nil
	}
}
