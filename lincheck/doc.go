// Package lincheck checks histories of operations on Blossom's distributed
// shared objects for linearizability, using Porcupine
// (github.com/anishathalye/porcupine), and a polynomial-time checker for
// key-value histories whose puts write unique values.
//
// # Recording
//
// A Recorder collects a history in the manner of Jepsen: every operation is
// invoked (Recorder.Invoke) and then completes in one of three ways:
//
//   - ok (Recorder.Ok): it took effect and returned the given output;
//   - fail (Recorder.Fail): it definitely did not take effect, so it is
//     dropped from the history;
//   - info (Recorder.Info): its outcome is unknown (a timeout, a crashed
//     coordinator), so it may or may not have taken effect.
//
// An info operation is not a failure. Recorder.Operations models it as an
// operation that returns after every other event of the history and whose
// Output is UnknownOutcome{}, which every model of this package accepts as
// any result. Linearizing it before some later operation means "it took
// effect there"; linearizing it at the very end, where no operation can
// observe it, means "it did not take effect". An invocation still pending
// when Operations is called is treated as info. An info operation that
// cannot change the state (its Input implements ReadOnly) constrains nothing
// and is left out of the history.
//
// Timestamps are supplied by the caller: virtual microseconds in the
// simulator, or time since start in a real cluster. A Recorder made by
// NewWallRecorder also accepts the timestamp Now, for which it reads a
// monotonic clock itself.
//
// # Checking
//
// Check runs Porcupine with a timeout and returns a Result whose Verdict is
// Ok, Illegal or Unknown. Unknown means the checker ran out of time: it is
// never a pass, and Result.Err reports it as an error just like Illegal.
// Result.WriteHTML writes Porcupine's interactive visualization of the
// history and its (partial) linearizations; write it for every violation.
//
// Porcupine searches the orders of the operations and can run out of time
// on many clients contending for few keys. For KVModel histories whose puts
// write unique values, CheckUniqueKV decides linearizability in O(n log n)
// instead: each get's value names the put it read from, which turns the
// question into one about the order of clusters (a put and its gets), as
// in Gibbons and Korach's algorithm for read-mapped histories. CheckKV
// picks it whenever UniqueKV allows, and Porcupine otherwise; on a
// violation it still runs Porcupine on the failing key, for WriteHTML.
//
// # Models
//
// KVModel (a register per key), CounterModel (a counter per name) and
// CASModel (a compare-and-set register per key) are porcupine.Model values
// partitioned by key, so each key is checked on its own. In the
// visualization an operation reads like "put(x, 3)", "get(x) → 3" or
// "cas(k, 1, 2) → true"; "→ ?" marks an operation whose outcome is unknown.
//
// A model written elsewhere handles unknown outcomes the same way: its Step
// accepts any output for which IsUnknownOutcome reports true, its read-only
// inputs implement ReadOnly, and it can partition with PartitionBy.
package lincheck
