package replicated

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/protocols"
)

// Payload kinds: the first byte of a command's payload.
const (
	kindCall           = 1
	kindWithdraw       = 2
	kindDelete         = 3
	kindMulti          = 4
	kindWithdrawParked = 5
	kindDeclare        = 6
)

// Key returns the command key of the object ref, the string a command
// about ref carries in protocols.Command.Keys: the decimal length of the
// type name, a colon, the type, a slash and the object's key
// ("10:AtomicLong/hits"). The length prefix keeps it unambiguous whatever
// bytes the type name and the key hold; ParseKey inverts it.
func Key(ref dso.Ref) string {
	return strconv.Itoa(len(ref.Type)) + ":" + ref.Type + "/" + ref.Key
}

// ParseKey returns the object whose command key (Key) is k, or an error
// if k is not one.
func ParseKey(k string) (dso.Ref, error) {
	bad := fmt.Errorf("replicated: %q is not an object key (length:type/key)", k)
	colon := strings.IndexByte(k, ':')
	if colon < 1 || (colon > 1 && k[0] == '0') || strings.Trim(k[:colon], "0123456789") != "" {
		return dso.Ref{}, bad
	}
	n, err := strconv.Atoi(k[:colon])
	rest := k[colon+1:]
	if err != nil || n >= len(rest) || rest[n] != '/' {
		return dso.Ref{}, bad
	}
	return dso.Ref{Type: rest[:n], Key: rest[n+1:]}, nil
}

// EncodeCall returns the payload of a command that calls method on the
// object ref with args. The command creates the object, with the
// constructor arguments ctor, if it is absent and the call may change it
// (see Table). The command's Keys must hold Key(ref). It fails if a value
// cannot be encoded or nests more than wire.MaxDepth-2 lists and maps.
//
// Layout: kind 1, type, key, method (strings: uvarint length and bytes),
// args and ctor (each a uvarint count and, per value, a uvarint length and
// its dso.AppendCanonical encoding).
func EncodeCall(ref dso.Ref, method string, args, ctor []any) ([]byte, error) {
	return appendCall([]byte{kindCall}, dso.Call{Ref: ref, Method: method, Args: args, Ctor: ctor})
}

func appendCall(b []byte, c dso.Call) ([]byte, error) {
	if err := checkDepth("argument", c.Args); err != nil {
		return nil, err
	}
	if err := checkDepth("constructor argument", c.Ctor); err != nil {
		return nil, err
	}
	b = appendString(b, c.Ref.Type)
	b = appendString(b, c.Ref.Key)
	b = appendString(b, c.Method)
	b, err := appendValues(b, c.Args)
	if err != nil {
		return nil, fmt.Errorf("replicated: %s.%s: argument: %w", c.Ref, c.Method, err)
	}
	if b, err = appendValues(b, c.Ctor); err != nil {
		return nil, fmt.Errorf("replicated: %s.%s: constructor argument: %w", c.Ref, c.Method, err)
	}
	return b, nil
}

// EncodeWithdraw returns the payload of a command that withdraws the call
// target because its client gave up (cancel, deadline): if it is parked
// it is answered with the error of code and msg; if it has not executed
// yet it never will (it is answered with that error when it arrives). The
// command's Keys must hold the key (Key) of the object the target was
// called on: the withdraw acts only on a call parked on an object whose
// key it carries, so that it is ordered with every command on that object
// (see Table).
//
// Layout: kind 2, target client and sequence (uvarints), code (one byte),
// message (string).
func EncodeWithdraw(target protocols.CommandID, code wire.Code, msg string) []byte {
	return encodeWithdraw(kindWithdraw, target, code, msg)
}

// EncodeWithdrawParked is EncodeWithdraw for a call that its client may
// still retry through another replica (its connection closed): it acts
// only if the call is parked, and leaves a call that has not executed yet
// free to run. Layout: as EncodeWithdraw's, kind 5.
func EncodeWithdrawParked(target protocols.CommandID, code wire.Code, msg string) []byte {
	return encodeWithdraw(kindWithdrawParked, target, code, msg)
}

func encodeWithdraw(kind byte, target protocols.CommandID, code wire.Code, msg string) []byte {
	b := binary.AppendUvarint([]byte{kind}, target.Client)
	b = binary.AppendUvarint(b, target.Seq)
	b = append(b, byte(code))
	return appendString(b, msg)
}

// EncodeDelete returns the payload of a command that deletes the object
// ref. The command's Keys must hold Key(ref).
//
// Layout: kind 3, type, key.
func EncodeDelete(ref dso.Ref) []byte {
	return appendString(appendString([]byte{kindDelete}, ref.Type), ref.Key)
}

// EncodeMulti returns the payload of a command that applies several calls
// in one Apply, in order (see Table for what that promises). The
// command's Keys must hold the key (Key) of every object called. It fails
// for an empty list, a value that cannot be encoded or nests more than
// wire.MaxDepth-2 lists and maps.
//
// Layout: kind 4, the number of calls (uvarint), and per call its type,
// key, method, args and ctor laid out as in EncodeCall.
func EncodeMulti(calls []dso.Call) ([]byte, error) {
	if len(calls) == 0 {
		return nil, errors.New("replicated: a multi-object call needs at least one call")
	}
	b := binary.AppendUvarint([]byte{kindMulti}, uint64(len(calls)))
	for _, c := range calls {
		var err error
		if b, err = appendCall(b, c); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// command is a decoded payload.
type command struct {
	kind   byte
	calls  []dso.Call // kindCall: one; kindDelete: one (Ref only); kindMulti: several
	target protocols.CommandID
	code   wire.Code
	msg    string
	level  degradable.Level // kindDeclare
}

// decodeCommand decodes a payload; its errors wrap dso.ErrMalformed.
func decodeCommand(p []byte) (command, error) {
	r := wire.NewReader(p, "payload")
	var c command
	c.kind = r.Byte()
	readCall := func(withMethod bool) dso.Call {
		var cl dso.Call
		cl.Ref.Type = r.String()
		cl.Ref.Key = r.String()
		if withMethod {
			cl.Method = r.String()
			cl.Args = readValues(r)
			cl.Ctor = readValues(r)
		}
		return cl
	}
	switch c.kind {
	case kindCall:
		c.calls = []dso.Call{readCall(true)}
	case kindDelete:
		c.calls = []dso.Call{readCall(false)}
	case kindDeclare:
		c.calls = []dso.Call{readCall(false)}
		c.level = degradable.Level(r.Byte())
		if r.Err() == nil && c.level != degradable.Sequential && c.level != degradable.Weak {
			r.Fail("declare of level %d (sequential %d or weak %d)", c.level, degradable.Sequential, degradable.Weak)
		}
	case kindWithdraw, kindWithdrawParked:
		c.target.Client = r.Uvarint()
		c.target.Seq = r.Uvarint()
		c.code = wire.Code(r.Byte())
		c.msg = r.String()
		if r.Err() == nil && c.code == 0 {
			r.Fail("withdraw with error code 0")
		}
	case kindMulti:
		n := r.Count(5) // type, key, method, args, ctor: a byte each at least
		if r.Err() == nil && n == 0 {
			r.Fail("multi-object call of no calls")
		}
		for i := 0; i < n && r.Err() == nil; i++ {
			c.calls = append(c.calls, readCall(true))
		}
	default:
		if r.Err() == nil {
			r.Unread()
			r.Fail("unknown command kind %d", c.kind)
		}
	}
	if err := r.Done(); err != nil {
		return command{}, fmt.Errorf("%w: replicated %w", dso.ErrMalformed, err)
	}
	return c, nil
}

// Result markers: the first byte of an answer.
const (
	resultOK    = byte(wire.OpOK)
	resultError = byte(wire.OpError)
)

// EncodeResult returns the answer of a command: the value v if err is nil,
// else err's code (dso.CodeOf) and message. A value that cannot be encoded
// becomes an internal error. Equal values give equal bytes.
//
// Layout: 0x81 and the value's dso.AppendCanonical encoding, or 0x82, the
// code (one byte) and the message (uvarint length and bytes).
func EncodeResult(v any, err error) []byte {
	if err == nil {
		b, encErr := dso.AppendCanonical([]byte{resultOK}, v)
		if encErr == nil {
			return b
		}
		err = fmt.Errorf("%w: result cannot be encoded: %v", dso.ErrInternal, encErr)
	}
	return appendString([]byte{resultError, byte(dso.CodeOf(err))}, err.Error())
}

// DecodeResult decodes an answer made by EncodeResult. An error answer
// comes back as a *dso.RemoteError, which matches the sentinel error of
// its code with errors.Is (dso.ErrBadArgs, dso.ErrTimeout, ...). Bytes
// that are not an answer give an error wrapping dso.ErrMalformed.
func DecodeResult(b []byte) (any, error) {
	r := wire.NewReader(b, "result")
	switch r.Byte() {
	case resultOK:
		if r.Err() == nil {
			v, err := wire.DecodeValue(b[1:])
			if err != nil {
				return nil, fmt.Errorf("%w: replicated result: %v", dso.ErrMalformed, err)
			}
			return v, nil
		}
	case resultError:
		code := wire.Code(r.Byte())
		msg := r.String()
		if r.Err() == nil && code == 0 {
			r.Fail("error code 0")
		}
		if r.Done() == nil {
			return nil, &dso.RemoteError{Code: code, Msg: msg}
		}
	default:
		if r.Err() == nil {
			r.Unread()
			r.Fail("unknown result marker 0x%02x", b[0])
		}
	}
	return nil, fmt.Errorf("%w: replicated %v", dso.ErrMalformed, r.Err())
}
