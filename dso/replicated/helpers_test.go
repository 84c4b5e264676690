package replicated_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/replicated"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/stretchr/testify/require"
)

// answer is one answer given to replica.Answers.
type answer struct {
	ID     protocols.CommandID
	Result []byte
}

func (a answer) String() string { return fmt.Sprintf("%s:%x", a.ID, a.Result) }

// recorder is a replica.Answers that keeps every answer.
type recorder struct{ all []answer }

func (r *recorder) Answer(id protocols.CommandID, result []byte) {
	r.all = append(r.all, answer{ID: id, Result: bytes.Clone(result)})
}

// env drives one table with commands of one client.
type env struct {
	t   *testing.T
	tab *replicated.Table
	rec recorder
	seq uint64
}

func newEnv(t *testing.T, opts replicated.Options) *env {
	return &env{t: t, tab: replicated.New(nil, opts)}
}

// apply applies a command with the next id and returns the id and the
// answers the Apply gave.
func (e *env) apply(payload []byte, keys ...string) (protocols.CommandID, []answer) {
	e.seq++
	id := protocols.CommandID{Client: 7, Seq: e.seq}
	n := len(e.rec.all)
	e.tab.Apply(protocols.Command{ID: id, Keys: keys, Payload: payload}, &e.rec)
	return id, e.rec.all[n:]
}

// callID applies a call of method on ref as command seq of client 9 (the
// same command at every replica: the weak table's tests), and returns its
// answers.
func (e *env) callID(seq uint64, ref dso.Ref, method string, args ...any) []answer {
	e.t.Helper()
	p, err := replicated.EncodeCall(ref, method, args, nil)
	require.NoError(e.t, err)
	n := len(e.rec.all)
	e.tab.Apply(protocols.Command{ID: protocols.CommandID{Client: 9, Seq: seq}, Keys: []string{replicated.Key(ref)}, Payload: p}, &e.rec)
	return e.rec.all[n:]
}

// call applies a call of method on ref with constructor arguments ctor.
func (e *env) callCtor(ref dso.Ref, ctor []any, method string, args ...any) (protocols.CommandID, []answer) {
	e.t.Helper()
	p, err := replicated.EncodeCall(ref, method, args, ctor)
	require.NoError(e.t, err)
	return e.apply(p, replicated.Key(ref))
}

func (e *env) call(ref dso.Ref, method string, args ...any) (protocols.CommandID, []answer) {
	e.t.Helper()
	return e.callCtor(ref, nil, method, args...)
}

// value runs a call that must be answered at once, and successfully, and
// returns its value.
func (e *env) value(ref dso.Ref, method string, args ...any) any {
	e.t.Helper()
	id, as := e.call(ref, method, args...)
	require.Len(e.t, as, 1, "%s.%s: want its own answer only", ref, method)
	v, err := result(e.t, as, id)
	require.NoError(e.t, err, "%s.%s", ref, method)
	return v
}

// parks runs a call that must park: no answer at all.
func (e *env) parks(ref dso.Ref, ctor []any, method string, args ...any) protocols.CommandID {
	e.t.Helper()
	id, as := e.callCtor(ref, ctor, method, args...)
	require.Empty(e.t, as, "%s.%s should park", ref, method)
	require.Contains(e.t, e.tab.Parked(), id)
	return id
}

func (e *env) withdraw(ref dso.Ref, target protocols.CommandID, code wire.Code, msg string) (protocols.CommandID, []answer) {
	return e.apply(replicated.EncodeWithdraw(target, code, msg), replicated.Key(ref))
}

// result decodes the answer of id among as; it fails the test if there is
// none or more than one.
func result(t *testing.T, as []answer, id protocols.CommandID) (any, error) {
	t.Helper()
	var found []answer
	for _, a := range as {
		if a.ID == id {
			found = append(found, a)
		}
	}
	require.Len(t, found, 1, "answers of %s in %v", id, as)
	return replicated.DecodeResult(found[0].Result)
}

// ids lists the ids of the answers, in order.
func ids(as []answer) []protocols.CommandID {
	out := make([]protocols.CommandID, len(as))
	for i, a := range as {
		out[i] = a.ID
	}
	return out
}

func ref(typ, key string) dso.Ref { return dso.Ref{Type: typ, Key: key} }
