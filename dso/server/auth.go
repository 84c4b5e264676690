package server

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"

	"github.com/blossom-dso/blossom/dso"
)

// Rights is what a client connection may do. Each right includes the
// ones below it.
type Rights uint8

// The rights a token can grant.
const (
	// RightNone: only PING and HELLO (a connection before it authenticates).
	RightNone Rights = iota
	// RightRead: calls of read-only methods and MEMBERS; a read on an
	// object that does not exist answers as a fresh object would, without
	// creating it.
	RightRead
	// RightWrite: every call except the administrative methods.
	RightWrite
	// RightAdmin: also DELETE, LIST and the methods that wipe an object
	// (reset, clear).
	RightAdmin
)

// String returns "none", "read", "write" or "admin".
func (r Rights) String() string {
	switch r {
	case RightNone:
		return "none"
	case RightRead:
		return "read"
	case RightWrite:
		return "write"
	case RightAdmin:
		return "admin"
	}
	return fmt.Sprintf("rights(%d)", uint8(r))
}

// ParseRights reads "read", "write" or "admin".
func ParseRights(s string) (Rights, error) {
	switch s {
	case "read":
		return RightRead, nil
	case "write":
		return RightWrite, nil
	case "admin":
		return RightAdmin, nil
	}
	return RightNone, fmt.Errorf("rights %q: want read, write or admin", s)
}

// ParseTokens reads a tokens file: one "TOKEN RIGHTS" pair per line
// (RIGHTS: read, write or admin); blank lines and lines starting with #
// are skipped.
func ParseTokens(r io.Reader) (map[string]Rights, error) {
	out := map[string]Rights{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			return nil, fmt.Errorf("tokens line %d: want TOKEN RIGHTS", line)
		}
		rt, err := ParseRights(f[1])
		if err != nil {
			return nil, fmt.Errorf("tokens line %d: %w", line, err)
		}
		if _, dup := out[f[0]]; dup {
			return nil, fmt.Errorf("tokens line %d: token given twice", line)
		}
		out[f[0]] = rt
	}
	return out, sc.Err()
}

// adminMethods wipe an object's whole state; they need RightAdmin.
func adminMethod(m string) bool { return m == "reset" || m == "clear" }

// readOnly reports whether method never changes obj.
func readOnly(obj dso.Object, method string) bool {
	ro, ok := obj.(dso.ReadOnlyMethods)
	return ok && ro.ReadOnly(method)
}

// allowed checks a call against a connection's rights; it is not called
// for RightAdmin, which may do anything.
func allowed(rights Rights, ref dso.Ref, obj dso.Object, method string) error {
	switch {
	case rights >= RightWrite && !adminMethod(method):
		return nil
	case rights == RightRead && readOnly(obj, method):
		return nil
	case rights == RightNone:
		return fmt.Errorf("%w: %s.%s: this connection has not authenticated (send HELLO with a token)", dso.ErrDenied, ref, method)
	}
	need := RightWrite
	if adminMethod(method) {
		need = RightAdmin
	}
	return fmt.Errorf("%w: %s.%s needs %s rights; this connection's token has %s", dso.ErrDenied, ref, method, need, rights)
}

func hashToken(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }
