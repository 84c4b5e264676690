package lincheck

import (
	"fmt"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Now is the timestamp that asks a Recorder made by NewWallRecorder to read
// its monotonic clock: rec.Invoke(c, in, lincheck.Now). Any negative
// timestamp means the same. A Recorder made by NewRecorder has no clock and
// panics on it.
const Now int64 = -1

// status is where an operation is in its life: invoked, then ok, failed or
// info.
type status uint8

const (
	pending status = iota
	completedOk
	failed
	info
)

// record is one invocation and its completion.
type record struct {
	client int
	input  any
	call   int64
	output any
	ret    int64
	status status
}

// Recorder collects a history of invocations and their completions, as in
// Jepsen, for Check. It is safe for concurrent use by many clients.
//
// Timestamps are int64s supplied by the caller in one unit of its choosing
// (virtual microseconds in the simulator, nanoseconds since start in a real
// cluster); only their order matters. An invocation must be stamped no later
// than the request leaves the client and a completion no earlier than the
// reply arrives, so that every operation's interval contains the instant it
// took effect. Equal timestamps mean "concurrent".
//
// Completing an id that was never invoked, completing an id twice, stamping
// a completion before its invocation and passing Now to a Recorder without a
// clock are bugs in the harness, and panic.
type Recorder struct {
	start time.Time // monotonic origin for Now; zero for a Recorder without a clock

	mu      sync.Mutex
	records []record // indexed by id
	latest  int64    // greatest timestamp recorded so far
}

// NewRecorder returns an empty Recorder whose timestamps are all supplied by
// the caller, such as the simulator's virtual time.
func NewRecorder() *Recorder {
	return &Recorder{}
}

// NewWallRecorder returns an empty Recorder for clients of a real cluster.
// A timestamp of Now (any negative value) is replaced by the time elapsed
// since NewWallRecorder was called, in nanoseconds, read from Go's monotonic
// clock, so wall-clock jumps do not reorder the history. Explicit
// non-negative timestamps must then be in the same unit and origin.
func NewWallRecorder() *Recorder {
	return &Recorder{start: time.Now()}
}

// stamp resolves at, reading the clock for Now. It must be called with mu
// held, so that stamps taken through the clock are ordered as the calls that
// take them.
func (r *Recorder) stamp(at int64) int64 {
	if at < 0 {
		if r.start.IsZero() {
			panic(fmt.Sprintf("lincheck: Recorder: timestamp %d needs a clock; use NewWallRecorder", at))
		}
		at = int64(time.Since(r.start))
	}
	r.latest = max(r.latest, at)
	return at
}

// Invoke records that client invokes an operation with the given input at
// time at, and returns the id that completes it. client is the Porcupine
// ClientId: a small non-negative number, one per client process, that the
// visualization uses as the row of the operation.
func (r *Recorder) Invoke(client int, input any, at int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, record{client: client, input: input, call: r.stamp(at)})
	return len(r.records) - 1
}

// Ok records that operation id completed at time at, returning output: it
// took effect somewhere between its invocation and at.
func (r *Recorder) Ok(id int, output any, at int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.pending(id, "Ok")
	at = r.stamp(at)
	if at < rec.call {
		panic(fmt.Sprintf("lincheck: Recorder.Ok: operation %d returns at %d, before its invocation at %d", id, at, rec.call))
	}
	rec.output, rec.ret, rec.status = output, at, completedOk
}

// Fail records that operation id definitely did not take effect, for example
// because it was rejected before being proposed. Operations leaves it out of
// the history.
func (r *Recorder) Fail(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending(id, "Fail").status = failed
}

// Info records that the outcome of operation id is unknown, for example
// because the client timed out: it may or may not have taken effect, at any
// time after its invocation. Operations gives it the Output UnknownOutcome{}
// and a Return after every other event of the history.
func (r *Recorder) Info(id int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending(id, "Info").status = info
}

// pending returns the record of id, which must be invoked and not completed.
// It must be called with mu held.
func (r *Recorder) pending(id int, method string) *record {
	if id < 0 || id >= len(r.records) {
		panic(fmt.Sprintf("lincheck: Recorder.%s: no operation %d was invoked", method, id))
	}
	rec := &r.records[id]
	if rec.status != pending {
		panic(fmt.Sprintf("lincheck: Recorder.%s: operation %d was already completed", method, id))
	}
	return rec
}

// Operations returns the history recorded so far, in invocation order, as
// Porcupine operations for Check:
//
//   - an ok operation has the Output and Return given to Ok;
//   - a failed operation is left out;
//   - an info operation, and one still pending, has Output UnknownOutcome{}
//     and Return one past the greatest timestamp recorded so far, so that it
//     may be linearized anywhere after its invocation, including after every
//     other operation (that is, it did not take effect); if its Input
//     implements ReadOnly and reports true, it is left out.
//
// The returned slice is a snapshot that the caller owns.
func (r *Recorder) Operations() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	end := r.latest + 1
	ops := make([]porcupine.Operation, 0, len(r.records))
	for _, rec := range r.records {
		switch rec.status {
		case completedOk:
			ops = append(ops, porcupine.Operation{
				ClientId: rec.client, Input: rec.input, Call: rec.call, Output: rec.output, Return: rec.ret,
			})
		case pending, info:
			if ro, ok := rec.input.(ReadOnly); ok && ro.ReadOnly() {
				continue
			}
			ops = append(ops, porcupine.Operation{
				ClientId: rec.client, Input: rec.input, Call: rec.call, Output: UnknownOutcome{}, Return: end,
			})
		}
	}
	return ops
}
